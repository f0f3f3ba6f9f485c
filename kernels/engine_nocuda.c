// engine_nocuda.c: engine.h for a build without nvcc (and the sanitizer build): there is no GPU engine here.
// engine_available() says false, so generate, chapter 16 and the bench use the CPU reference or stop with a clear
// message; any other call is a bug in the caller and exits saying the build has no CUDA.
#include "engine.h"
#include "util.h"

#define NO_ENGINE(name) fatal("%s: this build has no CUDA (nvcc was not found when it was built): use --device cpu", name)

void engine_options_default(EngineOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_seq_len = 2048;
    o->use_graphs = true;
    o->load_threads = 8;
}
bool engine_available(void) { return false; }
Engine *engine_create(const Checkpoint *ck, const EngineOptions *o) { NO_ENGINE("engine_create"); }
void engine_free(Engine *e) { NO_ENGINE("engine_free"); }
const EngineInfo *engine_info(const Engine *e) { NO_ENGINE("engine_info"); }
const float *engine_forward(Engine *e, const int32_t *tokens, int T, int start_pos) { NO_ENGINE("engine_forward"); }
const float *engine_decode(Engine *e, int32_t token, int pos) { NO_ENGINE("engine_decode"); }
void engine_set_gemv(Engine *e, EngineGemv gemv) { NO_ENGINE("engine_set_gemv"); }
double engine_time_prefill_ms(Engine *e, const int32_t *tokens, int T) { NO_ENGINE("engine_time_prefill_ms"); }
double engine_time_decode_ms(Engine *e, int32_t token, int pos0, int n) { NO_ENGINE("engine_time_decode_ms"); }
double engine_copy_bandwidth(int device, size_t bytes, int reps) { NO_ENGINE("engine_copy_bandwidth"); }
size_t engine_peak_gpu_bytes(const Engine *e) { NO_ENGINE("engine_peak_gpu_bytes"); }
