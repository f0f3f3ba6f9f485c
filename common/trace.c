// trace.c: OUT/trace.json through Jansson: load and check, record a step's lines/tensors/images/timings/comparisons,
// merge-and-save under a lock. See trace.h for the format.
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "draw/font.h"
#include "formats/npy.h"
#include "util.h"

struct Trace {
    char *out_dir;
    char *path;          // OUT/trace.json
    json_t *root;        // the index as this process sees it
    json_t *run_fields;  // top-level fields this process set (merged into the file on save)
    json_t *touched;     // {step id: true} for every step this process began or changed
    bool apart;          // a step of this process stands apart (TraceRun.apart): see set_model_field
};

// ---- small helpers --------------------------------------------------------------------------------------------------

// A JSON number, or null for NaN/Inf (JSON has no such numbers; Jansson refuses them).
static json_t *json_number_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

// A JSON string from bytes that may not be UTF-8 (a token piece can be half a character): bad bytes become \xHH.
static json_t *json_string_lossless(const char *s) {
    if (!s) return json_null();
    size_t cap = strlen(s) * 4 + 1, len = 0;
    char *buf = xmalloc(cap);
    for (const char *p = s; *p;) {
        const char *start = p;
        uint32_t cp = font_utf8_next(&p);
        if (cp & FONT_INVALID_BYTE) len += (size_t)snprintf(buf + len, cap - len, "\\x%02X", cp & 0xFF);
        else { memcpy(buf + len, start, (size_t)(p - start)); len += (size_t)(p - start); }
    }
    buf[len] = 0;
    json_t *j = json_string(buf);
    free(buf);
    if (!j) fatal("trace: cannot make a JSON string");
    return j;
}

static void check_plain_name(const char *what, const char *name) {
    if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        fatal("trace: %s \"%s\" must be a plain file name (no '/')", what, name ? name : "(null)");
}

static json_t *new_document(void) {
    json_t *root = json_object();
    json_object_set_new(root, "format", json_string(TRACE_FORMAT));
    json_object_set_new(root, "model", json_null());
    json_object_set_new(root, "prompt", json_null());
    json_object_set_new(root, "device", json_null());
    json_object_set_new(root, "precision", json_null());
    json_t *tokens = json_object();
    json_object_set_new(tokens, "ids", json_array());
    json_object_set_new(tokens, "pieces", json_array());
    json_object_set_new(root, "tokens", tokens);
    json_object_set_new(root, "steps", json_array());
    return root;
}

// Type checks of a loaded document. They return an error message (in a static buffer) instead of exiting, so the
// caller can free the document first: input_error() exits, and nothing should be left allocated when it does.
static char validate_message[160];

static bool has_wrong_type(json_t *parent, const char *key, json_type type, const char *where) {
    static const char *names[] = {"an object", "an array", "a string", "an integer", "a number", "true", "false", "null"};
    json_t *v = json_object_get(parent, key);
    if (!v || json_typeof(v) == type) return false;
    snprintf(validate_message, sizeof validate_message, "%s%s: expected %s", where, key, names[type]);
    return true;
}

// Checks that a loaded document is a trace and fills in missing top-level fields; NULL if fine, else the message.
static const char *validate(json_t *root) {
    if (!json_is_object(root)) return "expected a JSON object at the top level (a trace index)";
    json_t *format = json_object_get(root, "format");
    if (format && (!json_is_string(format) || strcmp(json_string_value(format), TRACE_FORMAT) != 0))
        return "format: expected \"" TRACE_FORMAT "\"";
    if (has_wrong_type(root, "steps", JSON_ARRAY, "") || has_wrong_type(root, "tokens", JSON_OBJECT, "")) return validate_message;
    json_t *defaults = new_document();
    const char *key;
    json_t *value;
    json_object_foreach(defaults, key, value) {
        if (!json_object_get(root, key)) json_object_set(root, key, value);
    }
    json_decref(defaults);
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(root, "steps"), i, step) {
        char where[48];
        snprintf(where, sizeof where, "steps[%zu].", i);
        if (!json_is_object(step) || !json_is_string(json_object_get(step, "id"))) {
            snprintf(validate_message, sizeof validate_message, "steps[%zu].id: expected a step object with a string id", i);
            return validate_message;
        }
        if (has_wrong_type(step, "lines", JSON_ARRAY, where) || has_wrong_type(step, "tensors", JSON_ARRAY, where) ||
            has_wrong_type(step, "images", JSON_ARRAY, where) || has_wrong_type(step, "timings", JSON_OBJECT, where) ||
            has_wrong_type(step, "comparisons", JSON_ARRAY, where) || has_wrong_type(step, "vocab", JSON_OBJECT, where))
            return validate_message;
    }
    return NULL;
}

// Loads and checks OUT/trace.json, or makes a new document when there is none. Exits 2 on a bad file; callers
// hold no allocation of their own at that point (see trace_open).
static json_t *load_document(const char *path) {
    if (!file_exists(path)) return new_document();
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) input_error(path, "not valid JSON: line %d, column %d: %s", err.line, err.column, err.text);
    const char *problem = validate(root);
    if (problem) {
        json_decref(root);
        input_error(path, "%s", problem);
    }
    return root;
}

// Index of step `id` in the document's steps, or -1.
static long find_step(json_t *root, const char *id) {
    json_t *steps = json_object_get(root, "steps");
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step) {
        if (strcmp(json_string_value(json_object_get(step, "id")), id) == 0) return (long)i;
    }
    return -1;
}

// Puts `entry` (a step) into the document in id order, replacing a step of the same id. Steals the reference.
static void put_step(json_t *root, json_t *entry) {
    json_t *steps = json_object_get(root, "steps");
    const char *id = json_string_value(json_object_get(entry, "id"));
    long at = find_step(root, id);
    if (at >= 0) { json_array_set_new(steps, (size_t)at, entry); return; }
    size_t i = 0;
    while (i < json_array_size(steps) && strcmp(json_string_value(json_object_get(json_array_get(steps, i), "id")), id) < 0) i++;
    json_array_insert_new(steps, i, entry);
}

static json_t *new_step(const char *id, const char *title) {
    json_t *s = json_object();
    json_object_set_new(s, "id", json_string(id));
    json_object_set_new(s, "title", title ? json_string_lossless(title) : json_null());
    json_object_set_new(s, "lines", json_array());
    json_object_set_new(s, "tensors", json_array());
    json_object_set_new(s, "images", json_array());
    json_object_set_new(s, "timings", json_object());
    json_object_set_new(s, "comparisons", json_array());
    return s;
}

// The entry of step `id`, made if missing; marks the step as changed by this process.
static json_t *step_entry(Trace *t, const char *id) {
    check_plain_name("step id", id);
    long at = find_step(t->root, id);
    if (at < 0 || !json_object_get(t->touched, id)) {
        // First touch in this process: an entry from an earlier run is replaced, not appended to.
        put_step(t->root, new_step(id, NULL));
        json_object_set_new(t->touched, id, json_true());
        at = find_step(t->root, id);
    }
    json_t *s = json_array_get(json_object_get(t->root, "steps"), (size_t)at);
    // Entries loaded from disk may lack some lists; give them all.
    static const char *lists[] = {"lines", "tensors", "images", "comparisons"};
    for (int i = 0; i < 4; i++)
        if (!json_object_get(s, lists[i])) json_object_set_new(s, lists[i], json_array());
    if (!json_object_get(s, "timings")) json_object_set_new(s, "timings", json_object());
    return s;
}

// In an array of objects, the one whose `key` equals `value` is replaced by `item`, else item is appended.
static void upsert(json_t *array, const char *key, const char *value, json_t *item) {
    size_t i;
    json_t *old;
    json_array_foreach(array, i, old) {
        json_t *k = json_object_get(old, key);
        if (json_is_string(k) && strcmp(json_string_value(k), value) == 0) { json_array_set_new(array, i, item); return; }
    }
    json_array_append_new(array, item);
}

// ---- open, save, close ----------------------------------------------------------------------------------------------

Trace *trace_open(const char *out_dir) {
    mkdir_p(out_dir);
    // The document is loaded before anything is allocated, so a bad file exits with nothing leaked.
    char path[4096];
    if (snprintf(path, sizeof path, "%s/trace.json", out_dir) >= (int)sizeof path) fatal("trace: path too long: %s", out_dir);
    json_t *root = load_document(path);
    Trace *t = xcalloc(1, sizeof *t);
    t->out_dir = xstrdup(out_dir);
    t->path = xstrdup(path);
    t->root = root;
    t->run_fields = json_object();
    t->touched = json_object();
    return t;
}

const char *trace_dir(const Trace *t) { return t->out_dir; }

#define TRACE_DUMP_FLAGS (JSON_INDENT(1) | JSON_REAL_PRECISION(9))

char *trace_dump(const Trace *t) {
    char *s = json_dumps(t->root, TRACE_DUMP_FLAGS);
    if (!s) fatal("trace: cannot serialise the index");
    return s;
}

void trace_save(Trace *t) {
    // The lock makes load-merge-write one step even if two processes write into one OUT at the same time.
    int dir_fd = open(t->out_dir, O_RDONLY | O_DIRECTORY);
    if (dir_fd < 0) fatal("trace: cannot open %s: %s", t->out_dir, strerror(errno));
    if (flock(dir_fd, LOCK_EX) != 0) fatal("trace: cannot lock %s: %s", t->out_dir, strerror(errno));
    json_t *disk = load_document(t->path);
    const char *key;
    json_t *value;
    json_object_foreach(t->run_fields, key, value) json_object_set(disk, key, value);
    json_object_foreach(t->touched, key, value) {
        long at = find_step(t->root, key);
        if (at >= 0) put_step(disk, json_deep_copy(json_array_get(json_object_get(t->root, "steps"), (size_t)at)));
    }
    AtomicFile out;
    atomic_open(&out, t->path);
    if (json_dumpf(disk, out.f, TRACE_DUMP_FLAGS) != 0) { atomic_abort(&out); fatal("trace: cannot write %s", t->path); }
    fputc('\n', out.f);
    atomic_commit(&out);
    json_decref(t->root);
    t->root = disk;  // now what is on disk: other steps written meanwhile included
    flock(dir_fd, LOCK_UN);
    close(dir_fd);
}

void trace_close(Trace *t) {
    if (!t) return;
    trace_save(t);
    json_decref(t->root);
    json_decref(t->run_fields);
    json_decref(t->touched);
    free(t->out_dir);
    free(t->path);
    free(t);
}

// ---- run fields -----------------------------------------------------------------------------------------------------

static void set_run_field(Trace *t, const char *key, json_t *value) {
    json_object_set(t->root, key, value);
    json_object_set_new(t->run_fields, key, value);
}

// The fields that say which model and prompt the run computed. A step that stands apart (it computed another model
// on purpose: TraceRun.apart) leaves them to the other steps, as it leaves them out of the run check (run_difference).
static void set_model_field(Trace *t, const char *key, json_t *value) {
    if (t->apart) json_decref(value);
    else set_run_field(t, key, value);
}

void trace_set_run(Trace *t, const char *model, const char *prompt, const char *device, const char *precision) {
    if (model) set_model_field(t, "model", json_string_lossless(model));
    if (prompt) set_model_field(t, "prompt", json_string_lossless(prompt));
    if (device) set_run_field(t, "device", json_string_lossless(device));
    if (precision) set_run_field(t, "precision", json_string_lossless(precision));
}

void trace_mode(Trace *t, const char *step, const char *mode) {
    json_object_set_new(step_entry(t, step), "mode", json_string_lossless(mode));
    set_run_field(t, "mode", json_string_lossless(mode));
}

void trace_set_tokens(Trace *t, const int64_t *ids, const char *const *pieces, int n) {
    json_t *tokens = json_object(), *id_list = json_array(), *piece_list = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(id_list, json_integer((json_int_t)ids[i]));
        if (pieces) json_array_append_new(piece_list, json_string_lossless(pieces[i]));
    }
    json_object_set_new(tokens, "ids", id_list);
    json_object_set_new(tokens, "pieces", piece_list);
    set_model_field(t, "tokens", tokens);
}

void trace_set_config_json(Trace *t, const char *json_text) {
    json_error_t err;
    json_t *config = json_loads(json_text, 0, &err);
    if (!json_is_object(config)) fatal("trace_set_config_json: not a JSON object: %s", err.text);
    set_model_field(t, "config", config);
}

// ---- steps ----------------------------------------------------------------------------------------------------------

void trace_step_begin(Trace *t, const char *step, const char *title) {
    check_plain_name("step id", step);
    put_step(t->root, new_step(step, title));
    json_object_set_new(t->touched, step, json_true());
}

void trace_line(Trace *t, const char *step, const char *line) {
    json_t *lines = json_object_get(step_entry(t, step), "lines");
    const char *s = line;
    for (;;) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (!nl && len == 0 && s != line) break;  // a trailing newline adds no empty line
        char *one = xmalloc(len + 1);
        memcpy(one, s, len);
        one[len] = 0;
        json_array_append_new(lines, json_string_lossless(one));
        free(one);
        if (!nl) break;
        s = nl + 1;
    }
}

void trace_printf(Trace *t, const char *step, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) fatal("trace_printf: out of memory");
    va_end(ap);
    fputs(text, stdout);
    if (!*text || text[strlen(text) - 1] != '\n') fputc('\n', stdout);
    trace_line(t, step, text);
    free(text);
}

void tensor_stats_f32(const float *data, int64_t n, TensorStats *s) {
    memset(s, 0, sizeof *s);
    s->n = n;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    int64_t finite = 0;
    uint64_t hash = FNV1A64_INIT;
    for (int64_t i = 0; i < n; i++) {
        float v = data[i];
        hash = fnv1a64(hash, &data[i], sizeof v);  // little-endian hosts: the .npy's bytes
        if (isnan(v)) { s->n_nan++; continue; }
        if (isinf(v)) { s->n_inf++; continue; }
        finite++;
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    s->checksum = hash;
    if (finite == 0) { s->min = s->max = s->mean = s->std = NAN; return; }
    double mean = sum / (double)finite, squares = 0;
    for (int64_t i = 0; i < n; i++)  // second pass: sum of squared deviations, exact enough in double
        if (isfinite(data[i])) squares += ((double)data[i] - mean) * ((double)data[i] - mean);
    s->min = lo;
    s->max = hi;
    s->mean = mean;
    s->std = sqrt(squares / (double)finite);
}

void trace_tensor_record(Trace *t, const char *step, const char *name, const int64_t *shape, int ndim,
                         const char *dtype_label, const char *file, const TensorStats *stats) {
    json_t *item = json_object(), *dims = json_array();
    for (int d = 0; d < ndim; d++) json_array_append_new(dims, json_integer((json_int_t)shape[d]));
    json_object_set_new(item, "name", json_string_lossless(name));
    json_object_set_new(item, "shape", dims);
    json_object_set_new(item, "dtype", json_string_lossless(dtype_label ? dtype_label : "f32"));
    json_object_set_new(item, "file", file ? json_string_lossless(file) : json_null());
    json_object_set_new(item, "min", json_number_or_null(stats->min));
    json_object_set_new(item, "max", json_number_or_null(stats->max));
    json_object_set_new(item, "mean", json_number_or_null(stats->mean));
    json_object_set_new(item, "std", json_number_or_null(stats->std));
    json_object_set_new(item, "n_nan", json_integer(stats->n_nan));
    json_object_set_new(item, "n_inf", json_integer(stats->n_inf));
    char checksum[32];
    snprintf(checksum, sizeof checksum, "fnv1a64:%016llx", (unsigned long long)stats->checksum);
    json_object_set_new(item, "checksum", json_string(checksum));
    upsert(json_object_get(step_entry(t, step), "tensors"), "name", name, item);
}

char *trace_path(Trace *t, const char *step, const char *file) {
    check_plain_name("step id", step);
    check_plain_name("file", file);
    char *dir = path_join(t->out_dir, step);
    mkdir_p(dir);
    char *path = path_join(dir, file);
    free(dir);
    return path;
}

// OUT/<step>/<name>.npy (made ready to write) and the same relative to OUT, both malloc'd; returns prod(shape).
static int64_t tensor_paths(Trace *t, const char *step, const char *name, const int64_t *shape, int ndim, char **path,
                            char **relative) {
    check_plain_name("tensor name", name);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    char *file_name = xasprintf("%s.npy", name);
    *path = trace_path(t, step, file_name);
    *relative = xasprintf("%s/%s", step, file_name);
    free(file_name);
    return n;
}

void trace_tensor_f32(Trace *t, const char *step, const char *name, const float *data, const int64_t *shape, int ndim,
                      const char *dtype_label) {
    char *path, *relative;
    int64_t n = tensor_paths(t, step, name, shape, ndim, &path, &relative);
    npy_write_f32(path, data, shape, ndim);
    TensorStats stats;
    tensor_stats_f32(data, n, &stats);
    trace_tensor_record(t, step, name, shape, ndim, dtype_label, relative, &stats);
    free(relative), free(path);
}

void trace_tensor_i64(Trace *t, const char *step, const char *name, const int64_t *data, const int64_t *shape, int ndim) {
    char *path, *relative;
    int64_t n = tensor_paths(t, step, name, shape, ndim, &path, &relative);
    npy_write_i64(path, data, shape, ndim);
    float *as_f32 = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) as_f32[i] = (float)data[i];
    TensorStats stats;
    tensor_stats_f32(as_f32, n, &stats);
    trace_tensor_record(t, step, name, shape, ndim, "i64", relative, &stats);
    free(relative), free(as_f32), free(path);
}

void trace_vocab(Trace *t, const char *step, int64_t id, const char *piece) {
    json_t *entry = step_entry(t, step), *vocab = json_object_get(entry, "vocab");
    if (!json_is_object(vocab)) {
        vocab = json_object();
        json_object_set_new(vocab, "ids", json_array());
        json_object_set_new(vocab, "pieces", json_array());
        json_object_set_new(entry, "vocab", vocab);
    }
    json_t *ids = json_object_get(vocab, "ids");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) if (json_integer_value(v) == id) return;
    json_array_append_new(ids, json_integer((json_int_t)id));
    json_array_append_new(json_object_get(vocab, "pieces"), json_string_lossless(piece));
}

void trace_image(Trace *t, const char *step, const char *file, const char *caption) {
    check_plain_name("image file", file);
    char *relative = xasprintf("%s/%s", step, file);
    json_t *item = json_object();
    json_object_set_new(item, "file", json_string_lossless(relative));
    json_object_set_new(item, "caption", caption ? json_string_lossless(caption) : json_null());
    upsert(json_object_get(step_entry(t, step), "images"), "file", relative, item);
    free(relative);
}

void trace_timing(Trace *t, const char *step, const char *name, double ms) {
    json_object_set_new(json_object_get(step_entry(t, step), "timings"), name, json_number_or_null(ms));
}

void trace_comparison(Trace *t, const char *step, const TraceComparison *c) {
    json_t *item = json_object(), *tolerance = json_object();
    json_object_set_new(item, "name", json_string_lossless(c->name));
    json_object_set_new(item, "metric", json_string_lossless(c->metric ? c->metric : "|ref-out| <= atol + rtol*|ref|"));
    json_object_set_new(item, "max_abs", json_number_or_null(c->max_abs));
    json_object_set_new(item, "max_rel", json_number_or_null(c->max_rel));
    json_object_set_new(tolerance, "atol", json_number_or_null(c->atol));
    json_object_set_new(tolerance, "rtol", json_number_or_null(c->rtol));
    json_object_set_new(item, "tolerance", tolerance);
    json_object_set_new(item, "tol_used", json_number_or_null(c->tol_used));
    json_object_set_new(item, "n", json_integer(c->n));
    json_object_set_new(item, "n_mismatch", json_integer(c->n_mismatch));
    json_object_set_new(item, "verdict", json_string(c->ok ? "OK" : "FAIL"));
    upsert(json_object_get(step_entry(t, step), "comparisons"), "name", c->name, item);
}

// ---- one trace, one run ---------------------------------------------------------------------------------------------
// The fields of a step's "run" that say which computation it belongs to, in the order a difference is reported. The
// model's path is recorded but not compared: the same model copied elsewhere computes the same numbers.
static const char *const RUN_KEYS[] = {"fingerprint", "tokens", "layer", "head", "precision", "device"};

// The first field in which two "run" objects differ, or NULL when they are the same run. A run that stands apart
// (its "apart" says why: a chapter that traces another model on purpose, and says so) differs from none.
static const char *run_difference(json_t *a, json_t *b) {
    if (json_object_get(a, "apart") || json_object_get(b, "apart")) return NULL;
    for (size_t i = 0; i < sizeof RUN_KEYS / sizeof *RUN_KEYS; i++) {
        json_t *x = json_object_get(a, RUN_KEYS[i]), *y = json_object_get(b, RUN_KEYS[i]);
        if (!x || !y || !json_equal(x, y)) return RUN_KEYS[i];
    }
    return NULL;
}

// "the model (fingerprint fnv1a64:... vs fnv1a64:...)", "the prompt (17 tokens vs 6)", "layer (0 vs 1)", ...
static void describe_difference(const char *key, json_t *a, json_t *b, char *msg, size_t n) {
    json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
    if (strcmp(key, "tokens") == 0) {
        snprintf(msg, n, "the prompt (%zu tokens vs %zu%s)", json_array_size(x), json_array_size(y),
                 json_array_size(x) == json_array_size(y) ? ", other ids" : "");
        return;
    }
    char *vx = x ? json_dumps(x, JSON_ENCODE_ANY) : NULL, *vy = y ? json_dumps(y, JSON_ENCODE_ANY) : NULL;
    snprintf(msg, n, "%s (%s vs %s)", strcmp(key, "fingerprint") == 0 ? "the model's fingerprint" : key,
             vx ? vx : "none", vy ? vy : "none");
    free(vx), free(vy);
}

void trace_step_run(Trace *t, const char *step, const TraceRun *run) {
    json_t *r = json_object(), *ids = json_array();
    json_object_set_new(r, "model", json_string_lossless(run->model));
    json_object_set_new(r, "fingerprint", json_string_lossless(run->fingerprint));
    for (int i = 0; i < run->n_tokens; i++) json_array_append_new(ids, json_integer((json_int_t)run->token_ids[i]));
    json_object_set_new(r, "tokens", ids);
    json_object_set_new(r, "layer", json_integer(run->layer));
    json_object_set_new(r, "head", json_integer(run->head));
    json_object_set_new(r, "precision", json_string_lossless(run->precision));
    json_object_set_new(r, "device", json_string_lossless(run->device));
    if (run->apart) {
        json_object_set_new(r, "apart", json_string_lossless(run->apart));
        t->apart = true;
    }
    json_object_set_new(step_entry(t, step), "run", r);
}

bool trace_same_run(const Trace *t, const char *step, char *msg, size_t n) {
    long at = find_step(t->root, step);
    json_t *steps = json_object_get(t->root, "steps");
    json_t *mine = at >= 0 ? json_object_get(json_array_get(steps, (size_t)at), "run") : NULL;
    size_t i;
    json_t *other;
    json_array_foreach(steps, i, other) {
        json_t *theirs = json_object_get(other, "run");
        if (!mine || (long)i == at || !json_is_object(theirs)) continue;  // a trace from before runs were recorded
        const char *key = run_difference(theirs, mine);
        if (!key) continue;
        char what[256];
        describe_difference(key, theirs, mine, what, sizeof what);
        snprintf(msg, n, "chapter %s was computed for another run: %s", json_string_value(json_object_get(other, "id")), what);
        return false;
    }
    return true;
}

void trace_step_error(Trace *t, const char *step, const char *line) {
    json_object_set_new(step_entry(t, step), "error", json_string_lossless(line));
}

// ---- reading a trace directory ----------------------------------------------------------------------------------------
// Everything trace_read allocates hangs off g_reading until it returns, so that an exit through input_error() leaves
// nothing LeakSanitizer would call a leak; g_checking is the path of the file being checked.
static TraceIndex *g_reading;
static char *g_checking;

static const char *opt_string(json_t *obj, const char *key, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) input_error(g_reading->index_path, "%s%s: expected a string", where, key);
    return json_string_value(v);
}
static const char *req_string(json_t *obj, const char *key, const char *where) {
    const char *s = opt_string(obj, key, where);
    if (!s) input_error(g_reading->index_path, "%s%s: expected a string", where, key);
    return s;
}
static double opt_number(json_t *obj, const char *key, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return NAN;
    if (!json_is_number(v)) input_error(g_reading->index_path, "%s%s: expected a number or null", where, key);
    return json_number_value(v);
}
static int64_t opt_count(json_t *obj, const char *key, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        input_error(g_reading->index_path, "%s%s: expected a count (an integer >= 0)", where, key);
    return (int64_t)json_integer_value(v);
}
static json_t *opt_array(json_t *obj, const char *key, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!v) return NULL;
    if (!json_is_array(v)) input_error(g_reading->index_path, "%s%s: expected an array", where, key);
    return v;
}
// The strings of an array of strings (each checked), into *out [n].
static int string_array(json_t *a, const char ***out, const char *where) {
    int n = a ? (int)json_array_size(a) : 0;
    *out = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_string(v)) input_error(g_reading->index_path, "%s[%d]: expected a string", where, i);
        (*out)[i] = json_string_value(v);
    }
    return n;
}

// A file named by the trace must stay inside the trace directory: relative, no "..", no empty parts.
static void check_relative_path(const char *file, const char *where) {
    bool bad = !*file || file[0] == '/' || strstr(file, "//");
    for (const char *p = file; !bad && *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.')) bad = true;
        p = slash ? slash + 1 : p + n;
    }
    if (bad)
        input_error(g_reading->index_path, "%s: expected a path relative to the trace directory, got \"%s\"", where, file);
}

// An entry of a list (w: "steps[4].tensors[2]") must be an object; wd receives "steps[4].tensors[2]." for its fields.
static void entry_object(json_t *o, const char *w, char *wd, size_t n) {
    if (!json_is_object(o)) input_error(g_reading->index_path, "%s: expected an object", w);
    snprintf(wd, n, "%s.", w);
}

// The file that entry w names (its field "file"), checked to be inside OUT and opened; g_checking holds its path
// until the caller is done with it. kind: "the .npy", "the image".
static FILE *open_entry_file(const char *file, const char *w, const char *kind) {
    char wf[176];
    snprintf(wf, sizeof wf, "%s.file", w);
    check_relative_path(file, wf);
    g_checking = path_join(g_reading->dir, file);
    FILE *f = fopen(g_checking, "rb");
    if (!f) input_error(g_checking, "cannot open %s named by %s: %s", kind, wf, strerror(errno));
    return f;
}

static void read_tensor(json_t *o, TraceTensorEntry *t, const char *w) {
    char wd[160];
    entry_object(o, w, wd, sizeof wd);
    t->name = req_string(o, "name", wd);
    t->dtype = opt_string(o, "dtype", wd);
    t->file = req_string(o, "file", wd);
    json_t *shape = opt_array(o, "shape", wd);
    if (!shape || json_array_size(shape) > MAX_DIMS)
        input_error(g_reading->index_path, "%s.shape: expected up to %d sizes", w, MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            input_error(g_reading->index_path, "%s.shape[%d]: expected a size >= 0", w, d);
        t->shape[d] = (int64_t)json_integer_value(v);
        t->numel *= t->shape[d];
    }
    t->min = opt_number(o, "min", wd), t->max = opt_number(o, "max", wd);
    t->mean = opt_number(o, "mean", wd), t->std = opt_number(o, "std", wd);
    t->n_nan = opt_count(o, "n_nan", wd), t->n_inf = opt_count(o, "n_inf", wd);
    // the .npy's header against the entry: only the header is read (a tensor of the real model can be hundreds of MB)
    fclose(open_entry_file(t->file, w, "the .npy"));
    NpyHeader h;
    npy_read_header(g_checking, &h);
    t->npy_dtype = h.numpy_dtype;
    bool same = h.ndim == t->ndim;
    for (int i = 0; same && i < h.ndim; i++) same = h.shape[i] == t->shape[i];
    if (!same) input_error(g_checking, "shape: the .npy's shape differs from %s.shape in trace.json", w);
    free(g_checking), g_checking = NULL;
}

static void read_image(json_t *o, TraceImageEntry *im, const char *w) {
    char wd[160];
    entry_object(o, w, wd, sizeof wd);
    im->file = req_string(o, "file", wd);
    im->caption = opt_string(o, "caption", wd);
    FILE *f = open_entry_file(im->file, w, "the image");
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, f);
    fclose(f);
    if (got < 8 || memcmp(sig, "\x89PNG\r\n\x1a\n", 8) != 0) input_error(g_checking, "signature: expected a PNG file");
    free(g_checking), g_checking = NULL;
}

static void read_comparison(json_t *o, TraceComparisonEntry *c, const char *w) {
    char wd[160];
    entry_object(o, w, wd, sizeof wd);
    c->name = req_string(o, "name", wd);
    c->metric = opt_string(o, "metric", wd);
    c->verdict = req_string(o, "verdict", wd);
    if (strcmp(c->verdict, "OK") != 0 && strcmp(c->verdict, "FAIL") != 0)
        input_error(g_reading->index_path, "%sverdict: expected \"OK\" or \"FAIL\", got \"%s\"", wd, c->verdict);
    c->max_abs = opt_number(o, "max_abs", wd), c->max_rel = opt_number(o, "max_rel", wd);
    c->tol_used = opt_number(o, "tol_used", wd);
    c->n = opt_count(o, "n", wd), c->n_mismatch = opt_count(o, "n_mismatch", wd);
    json_t *tol = json_object_get(o, "tolerance");
    c->atol = c->rtol = NAN;
    if (tol && !json_is_null(tol)) {
        if (!json_is_object(tol)) input_error(g_reading->index_path, "%stolerance: expected {atol, rtol}", wd);
        char wt[176];
        snprintf(wt, sizeof wt, "%stolerance.", wd);
        c->atol = opt_number(tol, "atol", wt), c->rtol = opt_number(tol, "rtol", wt);
    }
}

static void read_step(json_t *js, TraceStepEntry *st, int si) {
    TraceIndex *ix = g_reading;
    char where[96];
    snprintf(where, sizeof where, "steps[%d].", si);
    if (!json_is_object(js)) input_error(ix->index_path, "steps[%d]: expected an object", si);
    st->id = req_string(js, "id", where);
    // the id names a folder, an HTML anchor and a Python string: plain characters only
    if (!*st->id || st->id[0] == '.' ||
        strspn(st->id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(st->id))
        input_error(ix->index_path, "%sid: expected a plain step name like \"05_rope\", got \"%s\"", where, st->id);
    for (int k = 0; k < si; k++)
        if (strcmp(ix->steps[k].id, st->id) == 0) input_error(ix->index_path, "%sid: \"%s\" appears twice", where, st->id);
    st->title = opt_string(js, "title", where);
    st->mode = opt_string(js, "mode", where);
    st->error = opt_string(js, "error", where);
    json_t *run = json_object_get(js, "run");
    if (run && !json_is_object(run)) input_error(ix->index_path, "%srun: expected an object (the run the step computed)", where);
    char w[128];
    snprintf(w, sizeof w, "%slines", where);
    st->n_lines = string_array(opt_array(js, "lines", where), &st->lines, w);

    json_t *timings = json_object_get(js, "timings");
    if (timings && !json_is_object(timings)) input_error(ix->index_path, "%stimings: expected an object", where);
    st->timings = xcalloc((timings ? json_object_size(timings) : 0) + 1, sizeof(TraceTimingEntry));
    if (timings) {
        const char *key;
        json_t *v;
        json_object_foreach(timings, key, v) {
            if (!json_is_number(v) && !json_is_null(v))
                input_error(ix->index_path, "%stimings.%s: expected a number (ms)", where, key);
            st->timings[st->n_timings++] = (TraceTimingEntry){key, json_is_number(v) ? json_number_value(v) : NAN};
        }
    }

    json_t *jt = opt_array(js, "tensors", where);
    st->tensors = xcalloc((jt ? json_array_size(jt) : 0) + 1, sizeof(TraceTensorEntry));
    for (; jt && st->n_tensors < (int)json_array_size(jt); st->n_tensors++) {
        snprintf(w, sizeof w, "%stensors[%d]", where, st->n_tensors);
        read_tensor(json_array_get(jt, (size_t)st->n_tensors), &st->tensors[st->n_tensors], w);
    }
    json_t *ji = opt_array(js, "images", where);
    st->images = xcalloc((ji ? json_array_size(ji) : 0) + 1, sizeof(TraceImageEntry));
    for (; ji && st->n_images < (int)json_array_size(ji); st->n_images++) {
        snprintf(w, sizeof w, "%simages[%d]", where, st->n_images);
        read_image(json_array_get(ji, (size_t)st->n_images), &st->images[st->n_images], w);
    }
    json_t *jc = opt_array(js, "comparisons", where);
    st->comparisons = xcalloc((jc ? json_array_size(jc) : 0) + 1, sizeof(TraceComparisonEntry));
    for (; jc && st->n_comparisons < (int)json_array_size(jc); st->n_comparisons++) {
        snprintf(w, sizeof w, "%scomparisons[%d]", where, st->n_comparisons);
        read_comparison(json_array_get(jc, (size_t)st->n_comparisons), &st->comparisons[st->n_comparisons], w);
    }
}

TraceIndex *trace_read(const char *dir) {
    if (!dir_exists(dir)) input_error(dir, "expected a trace directory (made by the steps' --out)");
    TraceIndex *ix = g_reading = xcalloc(1, sizeof *ix);
    ix->dir = dir;
    ix->index_path = path_join(dir, "trace.json");
    if (!file_exists(ix->index_path))
        input_error(ix->index_path, "not found: run the walkthrough's steps with --out %s first", dir);
    json_error_t err;
    json_t *root = json_load_file(ix->index_path, 0, &err);
    if (!root) input_error(ix->index_path, "not valid JSON: line %d, column %d: %s", err.line, err.column, err.text);
    ix->document = root;
    if (!json_is_object(root)) input_error(ix->index_path, "expected a JSON object (a trace index)");
    const char *format = opt_string(root, "format", "");
    if (format && strcmp(format, TRACE_FORMAT) != 0)
        input_error(ix->index_path, "format: expected \"" TRACE_FORMAT "\", got \"%s\"", format);
    ix->model = opt_string(root, "model", "");
    ix->prompt = opt_string(root, "prompt", "");
    ix->device = opt_string(root, "device", "");
    ix->precision = opt_string(root, "precision", "");
    json_t *tokens = json_object_get(root, "tokens");
    ix->token_ids = xcalloc(1, sizeof(int64_t));
    ix->token_pieces = xcalloc(1, sizeof(char *));
    if (tokens && !json_is_null(tokens)) {
        if (!json_is_object(tokens)) input_error(ix->index_path, "tokens: expected an object {ids, pieces}");
        json_t *ids = opt_array(tokens, "ids", "tokens.");
        free(ix->token_ids), ix->token_ids = xcalloc((ids ? json_array_size(ids) : 0) + 1, sizeof(int64_t));
        for (; ids && ix->n_token_ids < (int)json_array_size(ids); ix->n_token_ids++) {
            json_t *v = json_array_get(ids, (size_t)ix->n_token_ids);
            if (!json_is_integer(v)) input_error(ix->index_path, "tokens.ids[%d]: expected an integer", ix->n_token_ids);
            ix->token_ids[ix->n_token_ids] = (int64_t)json_integer_value(v);
        }
        free(ix->token_pieces);
        ix->n_token_pieces = string_array(opt_array(tokens, "pieces", "tokens."), &ix->token_pieces, "tokens.pieces");
    }
    json_t *config = json_object_get(root, "config");
    if (config && !json_is_null(config)) {
        if (!json_is_object(config)) input_error(ix->index_path, "config: expected an object (the model's facts)");
        ix->config_json = json_dumps(config, JSON_COMPACT);
    }
    json_t *steps = opt_array(root, "steps", "");
    if (!steps || json_array_size(steps) == 0) input_error(ix->index_path, "steps: expected a non-empty array of steps");
    int n = (int)json_array_size(steps);
    ix->steps = xcalloc((size_t)n, sizeof(TraceStepEntry));
    for (; ix->n_steps < n; ix->n_steps++) read_step(json_array_get(steps, (size_t)ix->n_steps), &ix->steps[ix->n_steps], ix->n_steps);
    // one run? every step that recorded its run against the first one that did
    json_t *first = NULL;
    const char *first_id = NULL;
    for (int i = 0; i < n && !ix->mixed; i++) {
        json_t *run = json_object_get(json_array_get(steps, (size_t)i), "run");
        if (!run) continue;
        if (!first) { first = run, first_id = ix->steps[i].id; continue; }
        const char *key = run_difference(first, run);
        if (!key) continue;
        char what[256];
        describe_difference(key, first, run, what, sizeof what);
        ix->mixed = xasprintf("chapters %s and %s were computed for different runs: %s", first_id, ix->steps[i].id, what);
    }
    g_reading = NULL;
    return ix;
}

void trace_index_free(TraceIndex *ix) {
    if (!ix) return;
    for (int i = 0; i < ix->n_steps; i++) {
        TraceStepEntry *st = &ix->steps[i];
        free(st->lines), free(st->timings), free(st->tensors), free(st->images), free(st->comparisons);
    }
    free(ix->steps), free(ix->token_ids), free(ix->token_pieces), free(ix->config_json), free(ix->mixed);
    free((char *)ix->index_path);
    json_decref(ix->document);
    free(ix);
}
