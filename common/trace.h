// trace.h: the index of a trace directory, OUT/trace.json (DESIGN.md "Trace directory").
//
// A trace directory holds what the walkthrough's steps wrote: OUT/<step>/<name>.npy tensors, OUT/<step>/*.png
// figures, and OUT/trace.json, which says what is where:
//   {"format": "llama3-trace/1", "model": ..., "prompt": ..., "device": ..., "precision": ..., "mode": ...,
//    "tokens": {"ids": [...], "pieces": [...]},
//    "config": {"name", "dim", "n_layers", "n_heads", ..., "dtypes": {tensor: dtype}}  (the model facts of the map,
//              draw/diagram.h; optional),
//    "steps": [ {"id": "05_rope", "title": ..., "mode": ..., "lines": [printed lines],
//                "run": {"model", "fingerprint", "tokens": [ids], "layer", "head", "precision", "device"[, "apart"]},
//                "error": the line a step stopped with (absent when it finished),
//                "tensors": [{"name", "shape", "dtype", "file", "min", "max", "mean", "std", "n_nan", "n_inf",
//                             "checksum"}],
//                "images": [{"file", "caption"}], "timings": {"name": ms},
//                "vocab": {"ids": [...], "pieces": [...]}  (optional: the text of token ids a tensor holds),
//                "comparisons": [{"name", "metric", "max_abs", "max_rel", "tolerance": {"atol", "rtol"},
//                                 "tol_used", "n", "n_mismatch", "verdict": "OK" | "FAIL"}]}, ... ]}
// mode says which paths ran and whether anything was compared: "cuda+cpu" (the CUDA path and the CPU reference,
// compared), "cpu" (the CPU reference alone, its self-checks run), "cuda-only" or "cpu-only" (one path alone,
// nothing compared: --no-compare). Each step records its own; the run's is the last one recorded.
// A trace is one run: each step records the run it computed ("fingerprint": checkpoint_fingerprint of the model,
// the prompt's token ids, layer, head, precision, device); a step writing into a trace of another run is refused
// unless forced (steps/step.c), and trace_read says when the steps of a trace disagree (TraceIndex.mixed).
// Steps are sorted by id. File names are relative to OUT. Statistics cover the finite values (a masked score is
// -inf): n_nan and n_inf count the rest; a statistic with no finite value is null. checksum is
// "fnv1a64:<16 hex digits>" of the float32 little-endian bytes, the data of the .npy file.
//
// Each step is its own process and they run one after another into the same OUT, so trace_save() re-reads
// trace.json (under an flock of OUT), replaces only the steps this process began (and the run fields if it set
// them), and writes it back atomically. Use:
//     Trace *t = trace_open(out_dir);                    // exit 2 if OUT/trace.json is not a valid trace
//     trace_set_run(t, model_dir, prompt, "cpu", "bf16");
//     trace_step_begin(t, "05_rope", "positions by rotating complex pairs");
//     trace_printf(t, "05_rope", "q_per_token_as_complex %s", shape);  // printed and recorded
//     trace_tensor_f32(t, "05_rope", "q_rotated", q, shape, 2, "bf16");  // writes OUT/05_rope/q_rotated.npy
//     char *png = trace_path(t, "05_rope", "freqs_cis.png");  figure_complex_rays(png, ...);
//     trace_image(t, "05_rope", "freqs_cis.png", "freqs_cis[3] in the complex plane");  free(png);
//     trace_close(t);                                    // saves
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"  // MAX_DIMS

typedef struct Trace Trace;

#define TRACE_FORMAT "llama3-trace/1"

// Makes OUT if needed and loads OUT/trace.json when it exists (exit 2, naming the file and the field, if it is
// not JSON or not a trace).
Trace *trace_open(const char *out_dir);
void trace_save(Trace *t);   // merge into OUT/trace.json as described above; atomic
void trace_close(Trace *t);  // trace_save, then free
const char *trace_dir(const Trace *t);
// The whole index as JSON text (malloc'd), e.g. for tests; keys in a stable order.
char *trace_dump(const Trace *t);

// Run fields; NULL leaves a field as it is. After trace_step_run of a run that stands apart (TraceRun.apart), the
// model, the prompt, the tokens and the config are left as they are: they belong to the other steps' run.
void trace_set_run(Trace *t, const char *model, const char *prompt, const char *device, const char *precision);
// How the step ran (see "mode" above): recorded in the step's entry and as the run's mode.
void trace_mode(Trace *t, const char *step, const char *mode);
// The model's facts as a JSON object (text), recorded as "config": what the page's map is drawn from
// (draw/diagram.h: diagram_model_to_json). Exits 1 when the text is not a JSON object (a bug of the caller).
void trace_set_config_json(Trace *t, const char *json_text);
// pieces may be NULL; a piece that is not UTF-8 (a split multi-byte character) is stored with \xHH escapes.
void trace_set_tokens(Trace *t, const int64_t *ids, const char *const *pieces, int n);

// Starts (or restarts) a step: its previous entry, from an earlier run, is replaced by an empty one.
void trace_step_begin(Trace *t, const char *step, const char *title);
// The functions below create the step if it was not begun.
void trace_line(Trace *t, const char *step, const char *line);  // records (one entry per '\n'-separated line)
void trace_printf(Trace *t, const char *step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));  // prints to stdout and records

typedef struct {
    int64_t n, n_nan, n_inf;  // elements, and the non-finite ones among them
    double min, max, mean, std;  // over the finite values (std: population, like numpy's default); NAN if none
    uint64_t checksum;        // FNV-1a 64 of the float32 bytes
} TensorStats;
void tensor_stats_f32(const float *data, int64_t n, TensorStats *s);

// Writes OUT/<step>/<name>.npy (float32) and records it with its stats. dtype_label says what the values were in
// the computation ("bf16", "f32"); bf16 values are exact in float32. name must be a plain file name.
void trace_tensor_f32(Trace *t, const char *step, const char *name, const float *data, const int64_t *shape, int ndim,
                      const char *dtype_label);
// Writes OUT/<step>/<name>.npy as int64 (token ids, ranks) and records it; the stats are those of the values as
// float32 (exact for ids below 2^24).
void trace_tensor_i64(Trace *t, const char *step, const char *name, const int64_t *data, const int64_t *shape, int ndim);
// Records the text of a token id that a tensor of the step holds (top-k ids ...), once per id, in the step's "vocab":
// a reader of the trace (the notebook, the page) shows the token without a tokenizer.
void trace_vocab(Trace *t, const char *step, int64_t id, const char *piece);
// Records a tensor written elsewhere (file relative to OUT).
void trace_tensor_record(Trace *t, const char *step, const char *name, const int64_t *shape, int ndim,
                         const char *dtype_label, const char *file, const TensorStats *stats);

// "OUT/<step>/<file>" (malloc'd); makes OUT/<step>. For figures and other files a step writes.
char *trace_path(Trace *t, const char *step, const char *file);
// Records OUT/<step>/<file> as an image of the step.
void trace_image(Trace *t, const char *step, const char *file, const char *caption);
void trace_timing(Trace *t, const char *step, const char *name, double ms);

typedef struct {
    const char *name;    // the tensor compared, e.g. "q_rotated"
    const char *metric;  // e.g. "|ref-out| <= atol + rtol*|ref|"
    double max_abs, max_rel;
    double atol, rtol;   // the tolerance
    double tol_used;     // largest share of the tolerance used (1.0 = at the limit)
    int64_t n, n_mismatch;
    bool ok;             // verdict: "OK" or "FAIL"
} TraceComparison;
void trace_comparison(Trace *t, const char *step, const TraceComparison *c);

// The run a step computed (see "run" above).
typedef struct {
    const char *model, *fingerprint;  // the path given, checkpoint_fingerprint()
    const int64_t *token_ids;
    int n_tokens;
    int layer, head;
    const char *precision, *device;
    const char *apart;                // NULL, or why this step computed another run on purpose (the note it prints):
                                      // recorded as "apart"; then no other step is held against it, and this
                                      // process leaves the run's model, prompt, tokens and config alone
} TraceRun;
void trace_step_run(Trace *t, const char *step, const TraceRun *run);
// Whether every other step of the trace as loaded (that recorded its run) computed the same run as `step`: model
// fingerprint, token ids, layer, head, precision and device. If not, false and msg gets "chapter 05_rope was computed
// for another run: the prompt (17 tokens vs 6)".
bool trace_same_run(const Trace *t, const char *step, char *msg, size_t n);
// The one line a step stopped with (a value that is not finite): recorded as the step's "error".
void trace_step_error(Trace *t, const char *step, const char *line);

// ---- reading a trace directory (export-notebook, anything that shows a trace) --------------------------------------
// trace_read() loads OUT/trace.json and checks all of it before anything is used: the type of every field, step ids
// that are plain names (they name a folder, an HTML anchor, a Python string) and unique, every file named inside OUT
// (relative, no ".."), every .npy's header against its entry (a dtype numpy loads, the shape; npy_read_header), every
// image a PNG (its signature). Bad input exits 2 with one line naming the file and the field. Strings point into the
// loaded document and live until trace_index_free(). Numbers the trace leaves null (a statistic with no finite
// value) read as NAN, absent counts as 0.
typedef struct {
    const char *name, *dtype, *file;  // dtype: the label the step gave ("bf16"), or NULL
    int ndim;
    int64_t shape[MAX_DIMS];
    int64_t numel, n_nan, n_inf;
    double min, max, mean, std;
    const char *npy_dtype;            // numpy's name of the .npy file's dtype: "float32", "int64", ...
} TraceTensorEntry;
typedef struct {
    const char *file, *caption;       // caption may be NULL
} TraceImageEntry;
typedef struct {
    const char *name, *metric, *verdict;  // verdict "OK" or "FAIL"; metric may be NULL
    double max_abs, max_rel, atol, rtol, tol_used;
    int64_t n, n_mismatch;
} TraceComparisonEntry;
typedef struct {
    const char *name;
    double ms;                        // NAN when the trace holds null
} TraceTimingEntry;
typedef struct {
    const char *id, *title, *mode;    // title, mode: NULL when absent (older traces have no mode)
    const char *error;                // the line the step stopped with, or NULL when it finished
    const char **lines;
    int n_lines;
    TraceTimingEntry *timings;
    int n_timings;
    TraceTensorEntry *tensors;
    int n_tensors;
    TraceImageEntry *images;
    int n_images;
    TraceComparisonEntry *comparisons;
    int n_comparisons;
} TraceStepEntry;
typedef struct {
    const char *dir, *index_path;     // OUT and OUT/trace.json
    const char *model, *prompt, *device, *precision;  // NULL when absent or null
    int64_t *token_ids;
    int n_token_ids;
    const char **token_pieces;
    int n_token_pieces;
    char *config_json;                // "config" (the map's model facts) as compact JSON text; NULL when absent
    TraceStepEntry *steps;            // in the order of the file
    char *mixed;                      // NULL when the steps recorded one run, else which two differ and how
    int n_steps;
    void *document;                   // the JSON document (json_t *) the strings point into
} TraceIndex;
TraceIndex *trace_read(const char *dir);
void trace_index_free(TraceIndex *ix);
