// step.h: what every chapter program of the walkthrough shares: the command line, the model and the prompt, the
// choice of backend, printing like the tutorial, writing tensors and figures into the trace, and the comparisons
// between the CUDA path and the CPU reference.
//
// A chapter (steps/NN_name.c) reads like the tutorial's cell: the operation it teaches, on both backends, in main():
//     Step s;
//     step_init(&s, argc, argv, "04_query");  // flags, model, tokenizer, device; its entry in steps/chapters.c
//     LayerTrace in;
//     layer_inputs_upto(&s, OP_Q_HEAD, &in);  // what the chapters before it computed (layer.h)
//     // q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)
//     if (s.cpu) matmul_forward_cpu(q_cpu, in.x_norm, wq_head, T, D, Dh, s.prec);              // common/ref
//     if (s.cuda) matmul_forward_cuda(d_q, step_dev_act(&s, in.x_norm, T * D), d_wq_head, ...);  // kernels/
//     if (s.cpu && s.cuda) step_compare_act(&s, "q_per_token", q_cpu, q_cuda, shape, 2);  // tolerance: why, here
//     step_show(&s, "q_per_token", s.cpu ? q_cpu : q_cuda, shape, 2, "bf16");  // prints the shape, writes the .npy
//     return step_finish(&s);                 // 0 only if every comparison passed
// The trace holds the CPU reference's values when it ran (the ground truth), the CUDA path's otherwise; figures
// show the CUDA result whenever CUDA ran.
//
// Command line (DESIGN.md "Command-line contract"), the same for every chapter and for build/bin/walkthrough:
//     --model DIR  --prompt TEXT  --out DIR  --device auto|cuda|cpu  --layer L  --head H  --precision bf16|fp32
//     --lang en|zh  --no-compare  --quiet  --verify-checksums  --force  --help  --tokens ID,ID,... (token ids instead
//     of a prompt: for a model whose tokenizer we do not read, e.g. Mixtral's SentencePiece; no tokenizer is then needed)
//     --tp N (only the chapter whose entry says takes_tp)
//
// --no-compare runs ONE path and compares nothing: with the CUDA path the CPU reference does not run at all (each
// op is fed by the CUDA op before it, and the trace holds the CUDA values under the same names); with --device cpu
// the CPU reference runs without its self-checks. The verdict line then says "not compared", never OK.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "chapters.h"
#include "formats/checkpoint.h"
#include "compare.h"
#include "draw/diagram.h"
#include "ref/ref_ops.h"
#include "tokenizer/tokenizer.h"
#include "trace.h"

#define TUTORIAL_PROMPT "the answer to the ultimate question of life, the universe, and everything is "
#define STEP_MAX_COMPARISONS 256

typedef enum { LANG_EN = 0, LANG_ZH = 1 } Lang;

typedef struct {
    const Chapter *chapter;
    const char *id;
    // the command line
    char *model_dir, *prompt, *out_dir, *tokenizer_path;
    char *tokens_arg;       // --tokens ID,ID,... (NULL: the prompt is tokenized)
    char *model_note;       // why the model is not the one asked for (a MoE chapter on a dense model), or NULL
    bool cuda;              // the CUDA path runs
    bool cpu;               // the CPU reference runs (always, except with --no-compare on the CUDA path)
    bool compare;           // comparisons and self-checks run (false with --no-compare)
    int layer, head;        // --layer, --head (default 0, 0), checked against the config
    int tp;                 // --tp N, the number of ranks (0 when not given; only chapters whose entry takes_tp)
    Precision prec;
    Lang lang;
    bool quiet;
    bool cpu_asked;         // --device cpu (else the CPU reference runs alone because there is no GPU)
    bool verify;            // --verify-checksums: the CRC-32 of every zip entry before anything is computed
    bool force;             // --force: write into a trace of another run (the trace is then mixed)
    // the model and the prompt
    Checkpoint ck;
    const Config *cfg;
    Tokenizer tok;
    bool has_tokenizer;     // false with --tokens and no tokenizer beside the model: pieces are shown as "#N"
    int T;                  // tokens in the prompt (17 for the tutorial's)
    int32_t *tokens;        // [T]
    char **pieces;          // [T] each token decoded alone, as the tutorial prints it ("<|begin_of_text|>", " answer")
    // the freqs_cis table of the CPU reference, [T + 1, Dh/2, 2] (one spare position for chapter 16's next token)
    float *freqs, *freqs_cis;
    void *freqs_cis_dev;    // the same table on the device (s.cuda only)
    // results
    Trace *trace;
    CompareResult results[STEP_MAX_COMPARISONS];
    int n_results;
    double t_start;
    double ms_cpu, ms_cuda; // time spent in each backend's compute (what the chapter put between step_time_* calls)
} Step;

// Parses the command line (exit 0 for --help, 2 on a bad flag), loads the model, tokenizes the prompt, opens the
// trace, prints the chapter's title and introduction (its entry in the table of steps/chapters.c, found by id).
// Exits 2 on bad input with a one-line message.
void step_init(Step *s, int argc, char **argv, const char *chapter_id);
// Saves the trace, prints the verdict summary; returns the exit status (0 when every comparison passed; with
// --no-compare, 0 when the chapter ran: nothing was checked, and the verdict line says "not compared").
int step_finish(Step *s);

// Non-finite values stop a chapter. Stops it (exit 1) at the first value of x [shape] that is not finite, before
// anything is printed or drawn from it, with one line naming the tensor, the layer and the index, recorded in the
// trace as the chapter's error. A -inf passes only where the causal mask puts it: in a tensor whose last two dims
// are [Tq, Tk] with Tk >= Tq, at key j > query i + Tk - Tq (masked scores, the mask itself). step_tensor,
// step_compare (both sides), step_print_vector and step_token_heatmap call it; a chapter calls it itself on
// values it uses otherwise (the logits it takes the argmax of).
void step_check_finite(Step *s, const char *name, const float *x, const int64_t *shape, int ndim);
// The line said once at the start of a run without the CUDA path (each chapter, the walkthrough, make demo):
// "no GPU: CPU reference only, nothing compared", or "--device cpu: ..." when that was asked for.
const char *step_no_gpu_line(bool cpu_asked, bool zh);
// How this run computes, as trace.json records it: "cuda+cpu", "cpu", "cuda-only" or "cpu-only" (trace.h).
const char *step_mode(const Step *s);

// Printing: everything printed is also recorded in trace.json.
void step_say(Step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// A paragraph of explanation in the run's language, wrapped, indented.
void step_explain(Step *s, const char *en, const char *zh);
// A section heading in the run's language.
void step_heading(Step *s, const char *en, const char *zh);
const char *step_text(const Step *s, const char *en, const char *zh);  // picks one by --lang
// The words under a weight cut into rows, into columns, or held whole (figure_banded_matrices's how), by --lang.
const char *const *step_split_words(const Step *s);
// "name  [17, 128]  bf16" (the tutorial's `x.shape` -> `torch.Size([17, 128])`).
void step_shape(Step *s, const char *name, const int64_t *shape, int ndim, const char *dtype);
// Prints a vector like torch does: "tensor([1.0000e+00, 8.1462e-01, ...])" with the given printf format, every value
// up to torch's threshold of 1000 elements, beyond it the first and last 3 around "..." (torch's edgeitems).
#define TORCH_THRESHOLD 1000
#define TORCH_EDGEITEMS 3
void step_print_vector(Step *s, const char *name, const float *v, int n, const char *fmt);
// The activation dtype label of this run: "bf16" or "f32".
const char *step_act_dtype(const Step *s);

// Writes OUT/<id>/<name>.npy and records it (stats, checksum) in trace.json.
void step_tensor(Step *s, const char *name, const float *data, const int64_t *shape, int ndim, const char *dtype);
// The same for int64 values (token ids, ranks): OUT/<id>/<name>.npy in numpy's int64, dtype label "i64".
void step_tensor_i64(Step *s, const char *name, const int64_t *data, const int64_t *shape, int ndim);
// Records the text of token `id` (decoded alone, as the tutorial prints it) in the step's vocabulary in trace.json,
// for a tensor of ids the chapter writes: the notebook and the page then show tokens, not numbers.
void step_vocab(Step *s, int64_t id);
// step_shape + step_tensor: prints the shape line and writes the tensor.
void step_show(Step *s, const char *name, const float *data, const int64_t *shape, int ndim, const char *dtype);
// "OUT/<id>/<file>" (malloc'd) for a figure; step_image records it with a caption.
char *step_path(Step *s, const char *file);
void step_image(Step *s, const char *file, const char *caption);

// A [T, T] map over the prompt's tokens (scores, masked scores, attention weights): OUT/<id>/<file>.png with the token
// strings on both axes. cpu, cuda: the map of each path that ran (NULL for one that did not). The figure shows the
// CUDA map whenever CUDA ran; with both, also <file>_compare.png with the CUDA map, the CPU map and their absolute
// difference side by side. probs: the colour range is fixed to 0..1.
void step_token_heatmap(Step *s, const char *file, const float *cpu, const float *cuda, const char *title,
                        const char *value_label, bool probs);

// The CUDA output against the CPU reference through the validator; recorded in trace.json. Returns ok.
// Both compare functions exit (a bug) when called in a --no-compare run: such a run records no comparison.
bool step_compare(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim,
                  double atol, double rtol);
// step_compare with the tolerance of step_tolerance_act (a bf16 activation, or f32 with --precision fp32) or of
// step_tolerance_f32 (an fp32 result), computed from the same inputs on both backends.
bool step_compare_act(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim);
bool step_compare_f32(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim);
// The normalised MSE against max_nmse, for results at the end of many bf16 layers computed on two paths in different
// orders (compare_nmse_f32 in compare.h says why and its rule for NaN and Inf); recorded in trace.json like the above.
bool step_compare_nmse(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim,
                       double max_nmse);
// The tolerance of a bf16 activation produced from the SAME inputs on both backends: the two sums differ only in
// accumulation order (fp32 on the GPU, double on the CPU), so the results differ by at most one rounding of the
// output: one bf16 ulp (2^-8 relative) plus the fp32 accumulation error, which the rtol of 2^-7 (two ulps) covers.
// atol: one bf16 ulp of the tensor's typical magnitude (its RMS), for elements near zero where a sum cancelled.
// For --precision fp32 the outputs are fp32 and the rtol is 1e-5 instead, atol 1e-5 x RMS.
void step_tolerance_act(const Step *s, const float *ref, int64_t n, double *atol, double *rtol);
// The tolerance of an fp32 result (scores, softmax inputs, logits, RoPE in fp32 before rounding): fp32 accumulation
// against double: rtol 1e-5; atol 1e-5 x RMS (plus the bf16 rounding when the run rounds the result).
void step_tolerance_f32(const Step *s, const float *ref, int64_t n, double *atol, double *rtol);
// The same for fp32 dot products of length K (the logits: K = dim): the GPU's fp32 sum drifts from the CPU's double
// one like a random walk of K roundings (Higham and Mary's probabilistic bound: about sqrt(K) u, u = 2^-24, in units
// of the result's magnitude), so atol = max(1e-5, 8 sqrt(K) u) x RMS: step_tolerance_f32's up to K = 512, 3.1e-5 x RMS
// at K = 4096, where the 8B's 70 M lens logits reached 1.2e-5 x RMS on an H100 (1e-5 flat failed 1 in 10^6 values).
void step_tolerance_dot(const Step *s, const float *ref, int64_t n, int K, double *atol, double *rtol);

// Timers around each backend's work; the totals go into trace.json and the walkthrough's summary.
double step_clock(void);
void step_add_ms(Step *s, bool cuda, double t0);

// Weights: a checkpoint tensor by name (printf-style), required (exit 2 naming the tensor when absent), bf16 and
// contiguous (converted into an owned buffer once if the checkpoint holds another float dtype).
const uint16_t *step_weight(Step *s, const Tensor **t_out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// The same weight on the device (uploaded on first use, kept until step_finish).
const uint16_t *step_weight_dev(Step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Uploads the named weights not on the device yet in one go (256 MB or more: the engine's pinned, threaded loader);
// step_weight_dev then finds them.
void step_weights_dev_prefetch(Step *s, const char *const *names, int n);

// Device scratch: an activation array uploaded from host floats (rounded to bf16 for PREC_BF16), an fp32 array
// uploaded as it is, or fresh buffers (host NULL: filled with NaN, so that an element no kernel wrote shows); all
// freed by step_finish. Downloads return host floats.
void *step_dev_act(Step *s, const float *host, size_t n);
float *step_dev_f32(Step *s, const float *host, size_t n);
void *step_dev_alloc(Step *s, size_t bytes);
void step_host_act(const Step *s, float *host, const void *dev, size_t n);
void step_host_f32(float *host, const void *dev, size_t n);
// Host results: n zeroed floats freed by step_finish; the same filled from a device activation or fp32 array.
float *step_buf(Step *s, size_t n);
float *step_get_act(Step *s, const void *dev, size_t n);
float *step_get_f32(Step *s, const float *dev, size_t n);

// The map (steps/step_map.c, draw/diagram.h): step_init calls step_map, which records the model's facts in
// trace.json, draws OUT/<id>/where.png (this chapter's boxes highlighted) and prints the line naming them.
// step_map_model fills the map's facts of this model (config, the stored dtypes, the prompt's length).
void step_map(Step *s);
void step_map_model(const Step *s, DiagramModel *m);

// Token labels for the figures: the pieces as the tutorial prints them.
const char *const *step_labels(const Step *s);
// The text of n ids (malloc'd, valid UTF-8), or "#N" for each id when the run has no tokenizer (--tokens).
char *step_decode(const Step *s, const int32_t *ids, size_t n);
// The MoE demo model that chapters with needs_moe trace on a dense model: build/models/llama3-tiny-moe (malloc'd).
char *step_moe_demo_model(void);
// The cells of a [T, T] attention map that the causal mask hides (key after query): 1 there, else 0; for the figures,
// which hatch them (a masked weight is not a small weight). The caller frees it.
uint8_t *step_causal_cells(const Step *s);
