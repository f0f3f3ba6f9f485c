// engine_nocuda.c: engine.h and engine_ops.h for a build without nvcc (and the sanitizer build): there is no GPU
// engine here. engine_available() says false, so generate, chapter 16, the bench and the engine's GPU tests use the
// CPU reference, stop with a clear message or skip; any other call is a bug in the caller and exits saying the build
// has no CUDA.
#include "engine.h"
#include "engine_ops.h"
#include "util.h"

#define NO_ENGINE(name) fatal("%s: this build has no CUDA (nvcc was not found when it was built): use --device cpu", name)

void engine_options_default(EngineOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_seq_len = 2048;
    o->use_graphs = true;
    o->load_threads = 8;
    o->pdl = true;
    o->l2_fill_per_sm = 4;
}
bool engine_available(void) { return false; }
Engine *engine_create(const Checkpoint *ck, const EngineOptions *o) { NO_ENGINE("engine_create"); }
void engine_free(Engine *e) { NO_ENGINE("engine_free"); }
const EngineInfo *engine_info(const Engine *e) { NO_ENGINE("engine_info"); }
const float *engine_forward(Engine *e, const int32_t *tokens, int T, int start_pos) { NO_ENGINE("engine_forward"); }
const float *engine_decode(Engine *e, int32_t token, int pos) { NO_ENGINE("engine_decode"); }
void engine_set_gemv(Engine *e, EngineGemv gemv) { NO_ENGINE("engine_set_gemv"); }
size_t engine_peak_gpu_bytes(Engine *e) { NO_ENGINE("engine_peak_gpu_bytes"); }
int32_t engine_tp_broadcast(Engine *e, int32_t value) { NO_ENGINE("engine_tp_broadcast"); }

// engine_ops.h: the engine's kernels (tests/unit/test_engine_ops_gpu.c skips before calling them without a GPU)
void engine_gemv(const GemvArgs *a, int pro, int epi, const EngineLaunch *launch) { NO_ENGINE("engine_gemv"); }
void engine_embedding(uint16_t *h, const int32_t *tokens, const uint16_t *table, int vocab0, int V, int T, int D,
                      const EngineLaunch *launch) {
    NO_ENGINE("engine_embedding");
}
void engine_residual_f32(uint16_t *h, const float *sum, size_t n, const EngineLaunch *launch) {
    NO_ENGINE("engine_residual_f32");
}
void engine_round_bf16(uint16_t *out, const float *in, size_t n, const EngineLaunch *launch) {
    NO_ENGINE("engine_round_bf16");
}
void engine_add_rmsnorm(uint16_t *xn, uint16_t *h, const uint16_t *delta, const uint16_t *w, int T, int D, float eps,
                        const EngineLaunch *launch) {
    NO_ENGINE("engine_add_rmsnorm");
}
void engine_rope_kv(uint16_t *q, uint16_t *cache_k, uint16_t *cache_v, const uint16_t *qkv, const float *freqs_cis,
                    const int *pos, int T, int H, int Hkv, int Dh, const EngineLaunch *launch) {
    NO_ENGINE("engine_rope_kv");
}
void engine_swiglu_pairs(uint16_t *hidden, const uint16_t *gu, int T, int F, const EngineLaunch *launch) {
    NO_ENGINE("engine_swiglu_pairs");
}
void engine_l2_fill(const void *p, size_t bytes, int *sink, int blocks, const EngineLaunch *launch) {
    NO_ENGINE("engine_l2_fill");
}
int engine_attn_splits(int T, int S) { NO_ENGINE("engine_attn_splits"); }
void engine_attention(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                      const int *pos, int T, int H, int Hkv, int Dh, int S, float *scores, float *stats,
                      float *partial, int *counters, const EngineLaunch *launch) {
    NO_ENGINE("engine_attention");
}
bool engine_attention_gemm_fits(int T, int max_keys) { NO_ENGINE("engine_attention_gemm_fits"); }
void engine_attention_gemm(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                           int start_pos, int T, int H, int Hkv, int Dh, float *scores, cublasHandle_t cublas,
                           const EngineLaunch *launch) {
    NO_ENGINE("engine_attention_gemm");
}
bool engine_attention_short_fits(int T, int max_keys) { NO_ENGINE("engine_attention_short_fits"); }
void engine_attention_short(uint16_t *out, const uint16_t *qkv, const float *freqs_cis, uint16_t *cache_k,
                            uint16_t *cache_v, const int *pos, int T, int max_keys, int H, int Hkv, int Dh,
                            const EngineLaunch *launch) {
    NO_ENGINE("engine_attention_short");
}
void engine_upload(const UploadJob *jobs, int n_jobs, uint8_t *dev_base, int device, int n_threads,
                   const MappedFile *files, int n_files, bool quiet) {
    NO_ENGINE("engine_upload");
}
