// test_trace.c: trace.h: stats and checksums, trace.json round trip, step replacement and ordering across
// "processes" (separate Trace handles), merging, and rejection (exit 2) of a trace.json that is not a trace.
//
//   build/tests/test_trace                unit tests, ends with "N passed, N failed"
//   build/tests/test_trace --write DIR    writes a sample trace into DIR (tests/test_figures.sh checks it in Python)
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "formats/npy.h"
#include "trace.h"
#include "util.h"

static char *make_temp_dir(void) {
    char tmpl[] = "/tmp/test_trace.XXXXXX";
    if (!mkdtemp(tmpl)) fatal("mkdtemp failed");
    return xstrdup(tmpl);
}

static void remove_dir(const char *dir) {
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    free(cmd);
}

static void write_text(const char *path, const char *text) {
    FILE *f = xfopen(path, "wb");
    xfwrite(text, strlen(text), f, path);
    xfclose(f, path);
}

// Runs trace_open(dir) (or trace_read(dir) with read) in a child process; returns its exit status, and its stderr in
// err (size n).
static int run_in_child(const char *dir, bool read, char *err, size_t n) {
    char *err_path = xasprintf("%s/stderr.txt", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        // dup2, not freopen: stderr stays unbuffered, so the message is on disk even if the process dies early.
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(99);
        close(fd);
        free(err_path);
        if (read) trace_index_free(trace_read(dir));
        else trace_close(trace_open(dir));
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    err[0] = 0;
    FILE *f = fopen(err_path, "r");
    if (f) {
        size_t got = fread(err, 1, n - 1, f);
        err[got] = 0;
        fclose(f);
    }
    unlink(err_path);
    free(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static json_t *load_json(const char *dir) {
    char *path = path_join(dir, "trace.json");
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    free(path);
    return j;
}

static const char *step_id_at(json_t *root, size_t i) {
    return json_string_value(json_object_get(json_array_get(json_object_get(root, "steps"), i), "id"));
}

static json_t *step_by_id(json_t *root, const char *id) {
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(root, "steps"), i, s) {
        if (strcmp(json_string_value(json_object_get(s, "id")), id) == 0) return s;
    }
    return NULL;
}

// A sample step like 05_rope would write.
static void write_sample(Trace *t) {
    static const int64_t ids[17] = {128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220};
    static const char *pieces[17] = {"<|begin_of_text|>", "the", " answer", " to", " the", " ultimate", " question", " of",
                                     " life", ",", " the", " universe", ",", " and", " everything", " is", " "};
    trace_set_run(t, "build/models/tiny", "the answer to the ultimate question of life, the universe, and everything is ", "cpu", "bf16");
    trace_set_tokens(t, ids, pieces, 17);
    trace_step_begin(t, "05_rope", "positions by rotating complex pairs");
    trace_line(t, "05_rope", "q_per_token_split_into_pairs [17, 64, 2]");
    trace_line(t, "05_rope", "freqs_cis [17, 64]\nq_rotated [17, 128]\n");
    float q[6] = {1, 2, 3, 4, -5, 0.5f};
    int64_t shape[2] = {2, 3};
    trace_tensor_f32(t, "05_rope", "q_rotated", q, shape, 2, "bf16");
    float masked[4] = {1.5f, -INFINITY, 0.25f, -INFINITY};
    int64_t shape_m[2] = {2, 2};
    trace_tensor_f32(t, "05_rope", "scores_masked", masked, shape_m, 2, "f32");
    trace_image(t, "05_rope", "freqs_cis.png", "freqs_cis[3] in the complex plane");
    trace_timing(t, "05_rope", "rope_cpu", 0.125);
    trace_timing(t, "05_rope", "rope_cuda", 0.0075);
    TraceComparison c = {"q_rotated", NULL, 3.1e-7, 1.2e-6, 1e-5, 1.6e-2, 0.02, 2176, 0, true};
    trace_comparison(t, "05_rope", &c);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("usage: %s [--write DIR]\n  no argument: unit tests of trace.h\n"
               "  --write DIR: a sample trace (two steps, three tensors) into DIR\n", argv[0]);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        Trace *t = trace_open(argv[2]);
        write_sample(t);
        float big[1000];
        for (int i = 0; i < 1000; i++) big[i] = (float)sin(i * 0.37) * (float)(i % 17) - 3.0f;
        int64_t shape[2] = {40, 25};
        trace_tensor_f32(t, "07_scores", "scores", big, shape, 2, "f32");
        trace_close(t);
        return 0;
    }
    if (argc > 1) { fprintf(stderr, "usage: %s [--write DIR]\n", argv[0]); return 2; }

    // Stats over finite values; non-finite ones counted.
    {
        float v[6] = {1, 2, 3, 4, -INFINITY, NAN};
        TensorStats s;
        tensor_stats_f32(v, 6, &s);
        CHECK_EQ_INT(s.n, 6);
        CHECK_EQ_INT(s.n_inf, 1);
        CHECK_EQ_INT(s.n_nan, 1);
        CHECK_NEAR(s.min, 1, 0);
        CHECK_NEAR(s.max, 4, 0);
        CHECK_NEAR(s.mean, 2.5, 1e-12);
        CHECK_NEAR(s.std, sqrt(1.25), 1e-12);
        float none[2] = {NAN, INFINITY};
        tensor_stats_f32(none, 2, &s);
        CHECK(isnan(s.mean) && isnan(s.min), "no finite value: stats are NaN (null in JSON)");
        // FNV-1a 64 of no bytes is its offset basis; a change of one bit changes the checksum.
        tensor_stats_f32(v, 0, &s);
        CHECK(s.checksum == 0xcbf29ce484222325ull, "%llx", (unsigned long long)s.checksum);
        TensorStats a, b;
        float x[3] = {1, 2, 3}, y[3] = {1, 2, 3.0000002f};
        tensor_stats_f32(x, 3, &a);
        tensor_stats_f32(y, 3, &b);
        CHECK(a.checksum != b.checksum, "checksum must see a one-ulp change");
    }

    // Round trip: write, save, load in a new handle: the same document.
    char *dir = make_temp_dir();
    {
        Trace *t = trace_open(dir);
        write_sample(t);
        trace_save(t);
        char *before = trace_dump(t);
        trace_close(t);
        Trace *again = trace_open(dir);
        char *after = trace_dump(again);
        CHECK(strcmp(before, after) == 0, "trace changed on reload");
        trace_close(again);
        free(before);
        free(after);

        json_t *root = load_json(dir);
        CHECK(root != NULL, "trace.json is JSON");
        CHECK_EQ_STR(json_string_value(json_object_get(root, "format")), TRACE_FORMAT);
        CHECK_EQ_STR(json_string_value(json_object_get(root, "device")), "cpu");
        json_t *tokens = json_object_get(root, "tokens");
        CHECK_EQ_INT(json_array_size(json_object_get(tokens, "ids")), 17);
        CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(tokens, "ids"), 0)), 128000);
        CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(tokens, "pieces"), 2)), " answer");
        json_t *step = step_by_id(root, "05_rope");
        CHECK(step != NULL, "step 05_rope recorded");
        CHECK_EQ_INT(json_array_size(json_object_get(step, "lines")), 3);  // "a\nb\n" is two lines, not three
        CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(step, "lines"), 2)), "q_rotated [17, 128]");
        json_t *tensor = json_array_get(json_object_get(step, "tensors"), 0);
        CHECK_EQ_STR(json_string_value(json_object_get(tensor, "file")), "05_rope/q_rotated.npy");
        CHECK_EQ_STR(json_string_value(json_object_get(tensor, "dtype")), "bf16");
        CHECK_NEAR(json_real_value(json_object_get(tensor, "min")), -5, 0);
        CHECK_NEAR(json_real_value(json_object_get(tensor, "max")), 4, 0);
        CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(tensor, "shape"), 1)), 3);
        json_t *masked = json_array_get(json_object_get(step, "tensors"), 1);
        CHECK_EQ_INT(json_integer_value(json_object_get(masked, "n_inf")), 2);
        CHECK_NEAR(json_real_value(json_object_get(masked, "min")), 0.25, 0);
        json_t *cmp = json_array_get(json_object_get(step, "comparisons"), 0);
        CHECK_EQ_STR(json_string_value(json_object_get(cmp, "verdict")), "OK");
        CHECK_NEAR(json_real_value(json_object_get(json_object_get(cmp, "tolerance"), "rtol")), 1.6e-2, 1e-12);
        CHECK_NEAR(json_real_value(json_object_get(json_object_get(step, "timings"), "rope_cuda")), 0.0075, 1e-12);
        CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(step, "images"), 0), "file")), "05_rope/freqs_cis.png");
        json_decref(root);

        // The .npy holds the data.
        char *npy_path = xasprintf("%s/05_rope/q_rotated.npy", dir);
        NpyArray a;
        npy_read(npy_path, &a);
        CHECK_EQ_INT(a.ndim, 2);
        CHECK_EQ_INT(a.shape[0], 2);
        CHECK(a.dtype == DT_F32 && ((float *)a.data)[4] == -5.0f, "npy data");
        npy_free(&a);
        free(npy_path);
    }

    // The reader gives back what was written, and checks every file an entry names.
    {
        char *png = xasprintf("%s/05_rope/freqs_cis.png", dir), *index = path_join(dir, "trace.json");
        write_text(png, "\x89PNG\r\n\x1a\n(the rest of a PNG)");
        TraceIndex *ix = trace_read(dir);
        CHECK_EQ_STR(ix->device, "cpu");
        CHECK(ix->n_token_ids == 17 && ix->token_ids[1] == 1820 && ix->n_token_pieces == 17);
        CHECK_EQ_STR(ix->token_pieces[2], " answer");
        CHECK_EQ_INT(ix->n_steps, 1);
        const TraceStepEntry *st = &ix->steps[0];
        CHECK_EQ_STR(st->id, "05_rope");
        CHECK(st->n_lines == 3 && strcmp(st->lines[2], "q_rotated [17, 128]") == 0);
        CHECK(st->n_tensors == 2 && st->tensors[0].ndim == 2 && st->tensors[0].shape[1] == 3 && st->tensors[0].numel == 6);
        CHECK_EQ_STR(st->tensors[0].npy_dtype, "float32");
        CHECK_EQ_STR(st->tensors[0].dtype, "bf16");
        CHECK(st->tensors[0].min == -5 && st->tensors[1].n_inf == 2);
        CHECK(st->n_images == 1 && strcmp(st->images[0].caption, "freqs_cis[3] in the complex plane") == 0);
        CHECK(st->n_comparisons == 1 && strcmp(st->comparisons[0].verdict, "OK") == 0);
        CHECK_NEAR(st->comparisons[0].rtol, 1.6e-2, 1e-12);
        CHECK(st->n_timings == 2 && strcmp(st->timings[0].name, "rope_cpu") == 0 && st->timings[0].ms == 0.125);
        trace_index_free(ix);

        // Bad entries: exit 2 with one line naming the file and the field.
        char *good = read_whole_file(index, NULL), err[1024];
        static const struct { const char *from, *to, *says; } bad[] = {
            {"05_rope/q_rotated.npy", "../q_rotated.npy", "steps[0].tensors[0].file: expected a path relative"},
            {"05_rope/freqs_cis.png", "05_rope/q_rotated.npy", "signature: expected a PNG"},
            {"\"verdict\": \"OK\"", "\"verdict\": \"fine\"", "steps[0].comparisons[0].verdict"},
            {"\"id\": \"05_rope\"", "\"id\": \"05 rope\"", "steps[0].id: expected a plain step name"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char *at = strstr(good, bad[i].from);
            CHECK(at != NULL, "case %zu: '%s' is in trace.json", i, bad[i].from);
            if (!at) continue;
            char *text = xasprintf("%.*s%s%s", (int)(at - good), good, bad[i].to, at + strlen(bad[i].from));
            write_text(index, text);
            free(text);
            CHECK_EQ_INT(run_in_child(dir, true, err, sizeof err), 2);
            CHECK(strstr(err, bad[i].says) != NULL && strchr(err, '\n') == strrchr(err, '\n'), "case %zu: %s", i, err);
        }
        write_text(index, good);
        CHECK_EQ_INT(run_in_child(dir, true, err, sizeof err), 0);
        // the map's "config": read back as JSON text; anything but an object is bad input
        Trace *t = trace_open(dir);
        trace_set_config_json(t, "{\"name\": \"tiny\", \"dim\": 64}");
        trace_close(t);
        ix = trace_read(dir);
        CHECK(ix->config_json && strcmp(ix->config_json, "{\"name\":\"tiny\",\"dim\":64}") == 0, "config: %s",
              ix->config_json ? ix->config_json : "(null)");
        trace_index_free(ix);
        json_t *root = load_json(dir);
        json_object_set_new(root, "config", json_integer(3));
        CHECK_EQ_INT(json_dump_file(root, index, JSON_INDENT(1)), 0);
        json_decref(root);
        CHECK_EQ_INT(run_in_child(dir, true, err, sizeof err), 2);
        CHECK(strstr(err, "trace.json: config: expected an object") != NULL, "%s", err);
        write_text(index, good);
        ix = trace_read(dir);
        CHECK(ix->config_json == NULL);
        trace_index_free(ix);
        // a .npy whose shape is not its entry's
        char *npy = xasprintf("%s/05_rope/q_rotated.npy", dir);
        float q[6] = {1, 2, 3, 4, -5, 0.5f};
        npy_write_f32(npy, q, (int64_t[]){3, 2}, 2);
        CHECK_EQ_INT(run_in_child(dir, true, err, sizeof err), 2);
        CHECK(strstr(err, "q_rotated.npy: shape: the .npy's shape differs from steps[0].tensors[0].shape") != NULL, "%s", err);
        npy_write_f32(npy, q, (int64_t[]){2, 3}, 2);
        CHECK_EQ_INT(run_in_child(dir, true, err, sizeof err), 0);
        free(npy);
        free(good), free(png), free(index);
    }

    // Steps as separate processes: each adds its step; the file keeps them sorted by id; a rerun replaces.
    {
        Trace *t = trace_open(dir);
        trace_step_begin(t, "07_scores", "queries times keys");
        trace_line(t, "07_scores", "qk_per_token [17, 17]");
        trace_close(t);
        t = trace_open(dir);
        trace_step_begin(t, "02_embed", "tokens to embeddings");
        trace_close(t);
        json_t *root = load_json(dir);
        CHECK_EQ_INT(json_array_size(json_object_get(root, "steps")), 3);
        CHECK_EQ_STR(step_id_at(root, 0), "02_embed");
        CHECK_EQ_STR(step_id_at(root, 1), "05_rope");
        CHECK_EQ_STR(step_id_at(root, 2), "07_scores");
        CHECK_EQ_STR(json_string_value(json_object_get(root, "model")), "build/models/tiny");  // kept from the first
        json_decref(root);

        t = trace_open(dir);
        trace_step_begin(t, "05_rope", "RoPE, second run");
        trace_line(t, "05_rope", "only this line");
        trace_close(t);
        root = load_json(dir);
        json_t *step = step_by_id(root, "05_rope");
        CHECK_EQ_STR(json_string_value(json_object_get(step, "title")), "RoPE, second run");
        CHECK_EQ_INT(json_array_size(json_object_get(step, "lines")), 1);
        CHECK_EQ_INT(json_array_size(json_object_get(step, "tensors")), 0);
        CHECK_EQ_INT(json_array_size(json_object_get(root, "steps")), 3);
        CHECK_EQ_INT(json_array_size(json_object_get(step_by_id(root, "07_scores"), "lines")), 1);  // untouched
        json_decref(root);

        // Two handles open at once (two processes): saving one does not lose the other's step.
        Trace *a = trace_open(dir), *b = trace_open(dir);
        trace_step_begin(a, "10_value", NULL);
        trace_step_begin(b, "11_multihead", NULL);
        trace_set_run(b, NULL, NULL, "cuda", NULL);
        trace_close(a);
        trace_close(b);
        root = load_json(dir);
        CHECK(step_by_id(root, "10_value") && step_by_id(root, "11_multihead"), "both steps kept");
        CHECK_EQ_STR(json_string_value(json_object_get(root, "device")), "cuda");
        CHECK_EQ_STR(json_string_value(json_object_get(root, "precision")), "bf16");
        CHECK_EQ_INT(json_array_size(json_object_get(root, "steps")), 5);
        json_decref(root);

        // Recording the same tensor twice keeps one entry (the newer).
        t = trace_open(dir);
        float one[1] = {1}, two[1] = {2};
        int64_t shape[1] = {1};
        trace_tensor_f32(t, "12_output", "delta", one, shape, 1, "f32");
        trace_tensor_f32(t, "12_output", "delta", two, shape, 1, "f32");
        trace_close(t);
        root = load_json(dir);
        json_t *tensors = json_object_get(step_by_id(root, "12_output"), "tensors");
        CHECK_EQ_INT(json_array_size(tensors), 1);
        CHECK_NEAR(json_real_value(json_object_get(json_array_get(tensors, 0), "max")), 2, 0);
        json_decref(root);
    }

    // Token pieces that are not UTF-8 (half of a Chinese character) are kept as \xHH text.
    {
        char *d2 = make_temp_dir();
        Trace *t = trace_open(d2);
        int64_t ids[2] = {1, 2};
        const char *pieces[2] = {"\xE7\x94\x9F", "\xE7\xAD"};
        trace_set_tokens(t, ids, pieces, 2);
        trace_close(t);
        json_t *root = load_json(d2);
        json_t *p = json_object_get(json_object_get(root, "tokens"), "pieces");
        CHECK_EQ_STR(json_string_value(json_array_get(p, 0)), "\xE7\x94\x9F");
        CHECK_EQ_STR(json_string_value(json_array_get(p, 1)), "\\xE7\\xAD");
        json_decref(root);
        remove_dir(d2);
        free(d2);
    }

    // One trace, one run; a step that stands apart (TraceRun.apart: 20_moe tracing the MoE demo model on a dense
    // model's run) is held against no other step and leaves the run's model, prompt, tokens and config alone.
    {
        char *d4 = make_temp_dir();
        int64_t ids_a[3] = {128000, 1820, 4320}, ids_b[2] = {128000, 9};
        char msg[512] = "";
        Trace *t = trace_open(d4);
        trace_step_begin(t, "05_rope", NULL);
        TraceRun run_a = {.model = "dense", .fingerprint = "fnv1a64:aa", .token_ids = ids_a, .n_tokens = 3,
                          .layer = 0, .head = 0, .precision = "bf16", .device = "cpu"};
        trace_step_run(t, "05_rope", &run_a);
        trace_set_run(t, "dense", "the answer", "cpu", "bf16");
        trace_set_tokens(t, ids_a, NULL, 3);
        trace_set_config_json(t, "{\"name\": \"dense\"}");
        trace_close(t);

        // another model, not apart: refused by the run check, and trace_read calls the trace mixed
        t = trace_open(d4);
        trace_step_begin(t, "20_moe", NULL);
        TraceRun run_b = {.model = "moe", .fingerprint = "fnv1a64:bb", .token_ids = ids_b, .n_tokens = 2,
                          .layer = 0, .head = 0, .precision = "bf16", .device = "cpu"};
        trace_step_run(t, "20_moe", &run_b);
        CHECK(!trace_same_run(t, "20_moe", msg, sizeof msg), "another model is another run");
        CHECK(strstr(msg, "chapter 05_rope was computed for another run: the model's fingerprint") != NULL, "%s", msg);
        trace_close(t);
        TraceIndex *ix = trace_read(d4);
        CHECK(ix->mixed != NULL, "a trace of two runs is mixed");
        trace_index_free(ix);

        // the same step standing apart: the same run as every other, and the run fields stay the dense model's
        t = trace_open(d4);
        trace_step_begin(t, "20_moe", NULL);
        run_b.apart = "dense has no experts: this chapter traces the MoE demo model";
        trace_step_run(t, "20_moe", &run_b);
        trace_set_run(t, "moe", "other", "cpu", "fp32");
        trace_set_tokens(t, ids_b, NULL, 2);
        trace_set_config_json(t, "{\"name\": \"moe\"}");
        CHECK(trace_same_run(t, "20_moe", msg, sizeof msg), "a step that stands apart differs from none");
        trace_close(t);
        json_t *root = load_json(d4);
        CHECK_EQ_STR(json_string_value(json_object_get(root, "model")), "dense");
        CHECK_EQ_STR(json_string_value(json_object_get(root, "prompt")), "the answer");
        CHECK_EQ_INT(json_array_size(json_object_get(json_object_get(root, "tokens"), "ids")), 3);
        CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(root, "config"), "name")), "dense");
        CHECK_EQ_STR(json_string_value(json_object_get(root, "precision")), "fp32");  // not a field of the model
        json_t *apart = json_object_get(json_object_get(step_by_id(root, "20_moe"), "run"), "apart");
        CHECK(json_is_string(apart), "the step records why it stands apart");
        json_decref(root);
        ix = trace_read(d4);
        CHECK(ix->mixed == NULL, "not mixed: %s", ix->mixed ? ix->mixed : "");
        trace_index_free(ix);
        remove_dir(d4);
        free(d4);
    }

    // int64 tensors and the vocabulary of a step: ids once each, their text kept (a half character as \xHH)
    {
        char *d3 = make_temp_dir();
        Trace *t = trace_open(d3);
        int64_t ids[4] = {2983, 128000, 2983, 3}, shape[2] = {2, 2};
        trace_tensor_i64(t, "19_logit_lens", "logit_lens_top_ids", ids, shape, 2);
        trace_vocab(t, "19_logit_lens", 2983, "42");
        trace_vocab(t, "19_logit_lens", 128000, "<|begin_of_text|>");
        trace_vocab(t, "19_logit_lens", 2983, "42");
        trace_vocab(t, "19_logit_lens", 3, "\xe4");
        trace_close(t);
        json_t *root = load_json(d3);
        json_t *step = step_by_id(root, "19_logit_lens");
        json_t *vocab = json_object_get(step, "vocab");
        CHECK_EQ_INT(json_array_size(json_object_get(vocab, "ids")), 3);
        CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(vocab, "ids"), 1)), 128000);
        CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(vocab, "pieces"), 0)), "42");
        CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(vocab, "pieces"), 2)), "\\xE4");
        json_t *tensor = json_array_get(json_object_get(step, "tensors"), 0);
        CHECK_EQ_STR(json_string_value(json_object_get(tensor, "dtype")), "i64");
        CHECK_NEAR(json_real_value(json_object_get(tensor, "max")), 128000, 0);
        json_decref(root);
        char *npy_path = xasprintf("%s/19_logit_lens/logit_lens_top_ids.npy", d3);
        NpyArray a;
        npy_read(npy_path, &a);
        CHECK(a.dtype == DT_I64 && a.ndim == 2 && ((int64_t *)a.data)[1] == 128000, "int64 .npy");
        npy_free(&a);
        free(npy_path);
        remove_dir(d3);
        free(d3);
    }

    // A trace.json that is not a trace: exit 2 with one line naming the file.
    {
        char *path = path_join(dir, "trace.json");
        char err[1024];
        const char *bad[] = {
            "{\"steps\": [",                                    // truncated JSON
            "[1, 2, 3]",                                        // not an object
            "{\"format\": \"something-else/9\", \"steps\": []}",  // another format
            "{\"steps\": {\"05_rope\": {}}}",                   // steps not an array
            "{\"steps\": [{\"title\": \"no id\"}]}",            // a step without id
            "{\"steps\": [{\"id\": \"05_rope\", \"tensors\": 3}]}",
            "{\"steps\": [{\"id\": \"19_logit_lens\", \"vocab\": [1, 2]}]}",  // vocab not an object
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            write_text(path, bad[i]);
            int code = run_in_child(dir, false, err, sizeof err);
            CHECK_EQ_INT(code, 2);
            CHECK(strstr(err, "trace.json") != NULL, "case %zu: stderr names the file: %s", i, err);
            int lines = 0;
            for (char *c = err; *c; c++) lines += *c == '\n';
            CHECK(lines == 1, "case %zu: one line of error, got %d: %s", i, lines, err);
        }
        // And a good one is accepted by the same child.
        write_text(path, "{\"format\": \"" TRACE_FORMAT "\", \"steps\": []}");
        CHECK_EQ_INT(run_in_child(dir, false, err, sizeof err), 0);
        free(path);
    }
    remove_dir(dir);
    free(dir);
    TEST_SUMMARY();
}
