// test_safetensors.c: the safetensors reader and writer, the HF q/k row order, config.json and the HF directory reader.
//
// Good files are built by hand (header text written here) and by our writer, and read back. Each bad file must make
// the reader exit 2 with one line "error: PATH: ..." naming the problem: those cases run in a forked child whose
// exit status and stderr are checked. Build and run: make build/tests/test_safetensors && build/tests/test_safetensors
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "formats/checkpoint.h"
#include "config.h"
#include "formats/hf.h"
#include "formats/safetensors.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define CHILD_IGNORES_LEAKS() __lsan_disable()  // the child exits from inside the reader, on purpose
#else
#define CHILD_IGNORES_LEAKS() ((void)0)
#endif

static char tmp_dir[64];

// ---- building files ---------------------------------------------------------------------------------------------
static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = xfopen(path, "wb");
    xfwrite(p, n, f, path);
    xfclose(f, path);
}
// u64 N | header (padded with spaces to a multiple of 8 when pad) | data. n_override replaces N when nonzero.
static char *make_file(const char *name, const char *header, bool pad, const void *data, size_t data_len, uint64_t n_override) {
    char *path = path_join(tmp_dir, name);
    size_t hl = strlen(header), padded = pad ? (hl + 7) / 8 * 8 : hl;
    size_t total = 8 + padded + data_len;
    uint8_t *buf = xcalloc(total, 1);
    uint64_t n = n_override ? n_override : padded;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    write_bytes(path, buf, total);
    free(buf);
    return path;
}

// Runs fn(arg) in a child; returns its exit status and its stderr in err.
static int run_in_child(void (*fn)(const char *), const char *arg, char *err, size_t err_size) {
    int fds[2];
    if (pipe(fds) != 0) fatal("pipe failed");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) fatal("fork failed");
    if (pid == 0) {
        CHILD_IGNORES_LEAKS();
        close(fds[0]);
        dup2(fds[1], 2);
        fn(arg);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], err + got, err_size - 1 - got)) > 0) got += (size_t)r;
    err[got] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void open_and_close(const char *path) {
    SafetensorsFile sf;
    safetensors_open(&sf, path);
    safetensors_close(&sf);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// The reader must exit 2 with exactly one line "error: PATH: ...WANT...".
static void expect_rejected(const char *what, const char *path, const char *want) {
    char err[4096];
    int rc = run_in_child(open_and_close, path, err, sizeof err);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "error: %s: ", path);
    CHECK(rc == 2, "%s: exit %d, want 2 (stderr: %s)", what, rc, err);
    CHECK(strncmp(err, prefix, strlen(prefix)) == 0 && count_lines(err) == 1, "%s: stderr is not one error line: %s", what, err);
    CHECK(strstr(err, want) != NULL, "%s: stderr lacks \"%s\": %s", what, want, err);
}

// ---- good files ---------------------------------------------------------------------------------------------------
static void test_hand_built_good_file(void) {
    // Keys deliberately not in buffer order; the buffer holds b (F32 [2]) then a (BF16 [2, 3]) then an empty tensor.
    const char *header = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[8,20]},"
                         "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"},"
                         "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[20,20]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    uint8_t data[20];
    float b[2] = {1.5f, -2.25f};
    uint16_t a[6];
    for (int i = 0; i < 6; i++) a[i] = f32_to_bf16((float)i - 2.5f);
    memcpy(data, b, 8);
    memcpy(data + 8, a, 12);
    char *path = make_file("good.safetensors", header, true, data, sizeof data, 0);
    SafetensorsFile sf;
    safetensors_open(&sf, path);
    CHECK_EQ_INT(sf.n_tensors, 3);
    CHECK(sf.metadata_format && strcmp(sf.metadata_format, "pt") == 0);
    CHECK_EQ_INT(sf.header_len % 8, 0);
    const Tensor *ta = safetensors_find(&sf, "a"), *tb = safetensors_find(&sf, "b"), *te = safetensors_find(&sf, "empty");
    CHECK(ta && tb && te);
    if (ta && tb && te) {
        CHECK_EQ_INT(ta->dtype, DT_BF16);
        CHECK_EQ_INT(ta->ndim, 2);
        CHECK_EQ_INT(ta->shape[0], 2);
        CHECK_EQ_INT(ta->shape[1], 3);
        CHECK(tensor_is_contiguous(ta));
        CHECK(memcmp(ta->data, a, 12) == 0, "a's bytes differ");
        CHECK_EQ_INT(tb->dtype, DT_F32);
        CHECK(memcmp(tb->data, b, 8) == 0, "b's bytes differ");
        CHECK_EQ_INT(te->dtype, DT_F16);
        CHECK_EQ_INT(tensor_numel(te), 0);
        // a view into the map, not a copy
        CHECK((const uint8_t *)tb->data == sf.file.data + sf.buffer_offset);
        float out[6];
        tensor_to_f32(ta, out);
        CHECK_NEAR(out[5], 2.5, 0);
    }
    CHECK(safetensors_find(&sf, "__metadata__") == NULL);
    safetensors_close(&sf);
    free(path);
}

static void test_unpadded_header_is_copied_aligned(void) {
    // 7 + 8 bytes of header make the F32 data start at an odd address: the reader must hand out an aligned copy.
    const char *header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
    float x[3] = {3.0f, 4.0f, 5.0f};
    char *path = make_file("unpadded.safetensors", header, false, x, sizeof x, 0);
    SafetensorsFile sf;
    safetensors_open(&sf, path);
    const Tensor *t = safetensors_find(&sf, "x");
    CHECK(t != NULL);
    if (t) {
        CHECK(((uintptr_t)t->data % 4) == 0, "data not 4-aligned");
        CHECK(memcmp(t->data, x, sizeof x) == 0);
        CHECK_EQ_INT(sf.n_copies, (8 + strlen(header)) % 4 ? 1 : 0);
    }
    safetensors_close(&sf);
    free(path);
}

static void test_writer_round_trip(void) {
    char *path = path_join(tmp_dir, "written.safetensors");
    SafetensorsSpec specs[4] = {
        {"model.z_bf16", DT_BF16, 2, {3, 5}},
        {"model.a_f32", DT_F32, 1, {7}},
        {"scalar_i64", DT_I64, 0, {0}},
        {"model.m_f16", DT_F16, 3, {2, 1, 3}},
    };
    uint16_t zb[15], mf[6];
    float af[7];
    int64_t sc = -42;
    for (int i = 0; i < 15; i++) zb[i] = f32_to_bf16(0.25f * (float)i);
    for (int i = 0; i < 7; i++) af[i] = (float)i * -1.125f;
    for (int i = 0; i < 6; i++) mf[i] = f32_to_f16((float)i + 0.5f);
    SafetensorsWriter *w = safetensors_writer_open(path, specs, 4);
    safetensors_writer_write(w, 3, mf);  // any order
    safetensors_writer_write(w, 0, zb);
    safetensors_writer_write(w, 2, &sc);
    char *partial = xasprintf("%s.partial", path);
    CHECK(file_exists(partial) && !file_exists(path), "the file must appear only on close");
    safetensors_writer_write(w, 1, af);
    safetensors_writer_close(w);
    CHECK(!file_exists(partial) && file_exists(path));

    SafetensorsFile sf;
    safetensors_open(&sf, path);
    CHECK_EQ_INT(sf.n_tensors, 4);
    CHECK_EQ_INT(sf.header_len % 8, 0);
    CHECK_EQ_INT(sf.file.data[8], '{');
    CHECK(sf.metadata_format && !strcmp(sf.metadata_format, "pt"));
    // Layout: larger elements first, then by name: i64 scalar, f32, then the 2-byte ones by name.
    if (sf.n_tensors == 4) {
        CHECK_EQ_STR(sf.tensors[0].name, "scalar_i64");
        CHECK_EQ_STR(sf.tensors[1].name, "model.a_f32");
        CHECK_EQ_STR(sf.tensors[2].name, "model.m_f16");
        CHECK_EQ_STR(sf.tensors[3].name, "model.z_bf16");
    }
    const Tensor *t;
    CHECK((t = safetensors_find(&sf, "model.z_bf16")) && t->dtype == DT_BF16 && t->ndim == 2 && t->shape[1] == 5 &&
          !memcmp(t->data, zb, sizeof zb));
    CHECK((t = safetensors_find(&sf, "model.a_f32")) && t->dtype == DT_F32 && !memcmp(t->data, af, sizeof af));
    CHECK((t = safetensors_find(&sf, "scalar_i64")) && t->ndim == 0 && !memcmp(t->data, &sc, 8));
    CHECK((t = safetensors_find(&sf, "model.m_f16")) && t->ndim == 3 && t->shape[2] == 3 && !memcmp(t->data, mf, sizeof mf));
    for (int i = 0; i < sf.n_tensors; i++)
        CHECK(((uintptr_t)sf.tensors[i].data % dtype_size(sf.tensors[i].dtype)) == 0, "%s misaligned", sf.tensors[i].name);
    CHECK_EQ_INT((uintptr_t)sf.file.data % 8, 0);
    CHECK_EQ_INT(sf.buffer_offset % 8, 0);
    safetensors_close(&sf);
    free(partial);
    free(path);
}

// ---- bad files ----------------------------------------------------------------------------------------------------
static void test_bad_files(void) {
    uint8_t data[64] = {0};
    struct {
        const char *what, *header, *want;
        size_t data_len;
        uint64_t n_override;
    } cases[] = {
        {"overlapping offsets",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "overlap", 12, 0},
        {"hole between tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
         "hole", 20, 0},
        {"hole at the start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "hole", 12, 0},
        {"offsets do not match dtype x shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
         "needs 12", 8, 0},
        {"trailing bytes (file size mismatch)", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
         "size mismatch", 12, 0},
        {"truncated data", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}", "truncated", 10, 0},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unknown dtype \"F17\"", 4, 0},
        {"unhandled dtype", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", "not supported", 4, 0},
        {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", "dtype", 4, 0},
        {"header too large", "{}", "exceeds the limit", 0, 100000001ull},
        {"header past the end of the file", "{}", "runs past the end", 0, 4000},
        {"duplicate key",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "duplicate", 8, 0},
        {"not an object", "[1, 2]", "starting with '{'", 0, 0},
        {"invalid JSON", "{\"a\": {\"dtype\": \"F32\",", "invalid JSON", 0, 0},
        {"metadata value not a string", "{\"__metadata__\":{\"format\":1}}", "__metadata__", 0, 0},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "shape[0]", 4, 0},
        {"END before BEGIN", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", "END is before BEGIN", 4, 0},
        {"one offset only", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "data_offsets", 4, 0},
        {"tensor info not an object", "{\"a\":[1,2,3]}", "expected an object", 0, 0},
        {"too many dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", "dims", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%02zu.safetensors", i);
        char *path = make_file(name, cases[i].header, true, data, cases[i].data_len, cases[i].n_override);
        expect_rejected(cases[i].what, path, cases[i].want);
        free(path);
    }
    // Shorter than the 8-byte length itself.
    char *path = path_join(tmp_dir, "short.safetensors");
    write_bytes(path, "\x10\x00\x00", 3);
    expect_rejected("file shorter than 8 bytes", path, "too short");
    free(path);
}

// ---- q/k rows -----------------------------------------------------------------------------------------------------
static void test_qk_rows(void) {
    // Dh = 8: HF rows 0..3 hold the first members (j=0) of pairs 0..3 -> Meta rows 0,2,4,6; HF 4..7 -> Meta 1,3,5,7.
    int64_t want[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};
    for (int r = 0; r < 16; r++) CHECK_EQ_INT(qk_hf_row_to_meta_row(r, 8), want[r]);
    // Round trip on 3 heads of Dh = 6, rows of 5 floats: hf_to_meta(meta_to_hf(x)) == x, and each row moves whole.
    enum { H = 3, DH = 6, C = 5 };
    float meta[H * DH][C], hf[H * DH][C], back[H * DH][C];
    for (int r = 0; r < H * DH; r++)
        for (int c = 0; c < C; c++) meta[r][c] = (float)(r * 100 + c);
    qk_rows_meta_to_hf(meta, hf, H, DH, sizeof meta[0]);
    qk_rows_hf_to_meta(hf, back, H, DH, sizeof meta[0]);
    CHECK(memcmp(meta, back, sizeof meta) == 0, "un-permute does not invert permute");
    int moved_ok = 1;
    for (int r = 0; r < H * DH; r++)
        for (int c = 0; c < C; c++) moved_ok &= hf[r][c] == meta[qk_hf_row_to_meta_row(r, DH)][c];
    CHECK(moved_ok, "HF row r must be Meta row qk_hf_row_to_meta_row(r)");
    CHECK_EQ_INT(hf[1][0], 200);  // HF row 1 = pair 1, first member = Meta row 2
    CHECK_EQ_INT(hf[3][0], 100);  // HF row 3 = pair 0, second member = Meta row 1
}

// ---- config.json --------------------------------------------------------------------------------------------------
static char *write_text(const char *dir, const char *name, const char *text) {
    char *path = path_join(dir, name);
    write_bytes(path, text, strlen(text));
    return path;
}

static void test_config_from_hf_json(void) {
    // Meta-Llama-3.1-8B's config.json (the fields that matter, as the HF repo spells them).
    char *p = write_text(tmp_dir, "config_8b.json",
                         "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4096,\"intermediate_size\":14336,"
                         "\"num_attention_heads\":32,\"num_key_value_heads\":8,\"num_hidden_layers\":32,"
                         "\"vocab_size\":128256,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,\"hidden_act\":\"silu\","
                         "\"max_position_embeddings\":131072,\"tie_word_embeddings\":false,\"rope_scaling\":{\"factor\":8.0,"
                         "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,"
                         "\"rope_type\":\"llama3\"}}");
    Config c;
    config_from_hf_json(&c, p);
    CHECK_EQ_INT(c.dim, 4096);
    CHECK_EQ_INT(c.n_layers, 32);
    CHECK_EQ_INT(c.n_heads, 32);
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.vocab_size, 128256);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.n_rep, 4);
    CHECK_EQ_INT(c.ffn_hidden, 14336);
    CHECK_EQ_INT(c.multiple_of, 1024);  // Meta's own params.json values for 8B
    CHECK(c.has_ffn_dim_multiplier && c.ffn_dim_multiplier == 1.3);
    CHECK(c.norm_eps == 1e-5 && c.rope_theta == 500000.0);
    CHECK(c.use_scaled_rope && !c.tie_word_embeddings);
    CHECK(config_rope_scaling(&c) && memcmp(config_rope_scaling(&c), &ROPE_SCALING_LLAMA31, sizeof(RopeScaling)) == 0);
    free(p);
    // Llama-3.2-1B: the same llama3 scaling with factor 32, read as given (Meta's apply_scaling hard-codes 8).
    p = write_text(tmp_dir, "config_1b.json",
                   "{\"hidden_size\":2048,\"intermediate_size\":8192,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
                   "\"num_hidden_layers\":16,\"vocab_size\":128256,\"rope_theta\":500000.0,\"tie_word_embeddings\":true,"
                   "\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
                   "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}");
    config_from_hf_json(&c, p);
    CHECK(c.use_scaled_rope && c.rope_scaling.factor == 32.0 && c.rope_scaling.low_freq_factor == 1.0 &&
          c.rope_scaling.high_freq_factor == 4.0 && c.rope_scaling.original_max_position_embeddings == 8192.0);
    free(p);
    // 70B: 28672 with 1.3 and 4096; a tiny model whose F fits no usual rule still gets a rule that reproduces it.
    p = write_text(tmp_dir, "config_70b.json",
                   "{\"hidden_size\":8192,\"intermediate_size\":28672,\"num_attention_heads\":64,\"num_key_value_heads\":8,"
                   "\"num_hidden_layers\":80,\"vocab_size\":128256,\"rope_theta\":500000.0,\"rope_scaling\":null}");
    config_from_hf_json(&c, p);
    CHECK(c.ffn_hidden == 28672 && c.multiple_of == 4096 && c.has_ffn_dim_multiplier && c.ffn_dim_multiplier == 1.3);
    CHECK(!c.use_scaled_rope && c.norm_eps == 1e-6);  // transformers' default eps when absent
    free(p);
    p = write_text(tmp_dir, "config_odd.json",
                   "{\"hidden_size\":64,\"intermediate_size\":333,\"num_attention_heads\":4,\"num_hidden_layers\":1,"
                   "\"vocab_size\":300,\"tie_word_embeddings\":true}");
    config_from_hf_json(&c, p);
    CHECK_EQ_INT(c.ffn_hidden, 333);
    CHECK_EQ_INT(c.n_kv_heads, 4);
    CHECK(c.tie_word_embeddings);
    CHECK(ffn_hidden_size(c.dim, c.multiple_of, c.has_ffn_dim_multiplier, c.ffn_dim_multiplier) == 333);
    free(p);
    // transformers 5 spelling: rope_theta and the scaling inside "rope_parameters".
    p = write_text(tmp_dir, "config_v5.json",
                   "{\"hidden_size\":2048,\"intermediate_size\":8192,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
                   "\"num_hidden_layers\":16,\"vocab_size\":128256,\"rms_norm_eps\":1e-05,\"rope_parameters\":{"
                   "\"rope_theta\":500000.0,\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                   "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}");
    config_from_hf_json(&c, p);
    CHECK(c.rope_theta == 500000.0 && c.use_scaled_rope && c.ffn_hidden == 8192 && c.head_dim == 64);
    free(p);
}

static void load_hf_config(const char *path) {
    Config c;
    config_from_hf_json(&c, path);
}

static void test_bad_configs(void) {
    static const struct {
        const char *what, *json, *want;
    } cases[] = {
        {"missing hidden_size", "{\"intermediate_size\":128,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"vocab_size\":9}",
         "hidden_size: missing"},
        {"llama3 scaling without its factor",
         "{\"hidden_size\":64,\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"vocab_size\":9,"
         "\"rope_scaling\":{\"rope_type\":\"llama3\",\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
         "\"original_max_position_embeddings\":8192}}",
         "rope_scaling.factor: missing"},
        {"llama3 scaling with a factor of 0",
         "{\"hidden_size\":64,\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"vocab_size\":9,"
         "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
         "\"original_max_position_embeddings\":8192}}",
         "rope_scaling.factor: expected a number"},
        {"llama3 scaling with low >= high freq factor",
         "{\"hidden_size\":64,\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"vocab_size\":9,"
         "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":4.0,\"high_freq_factor\":4.0,"
         "\"original_max_position_embeddings\":8192}}",
         "rope_scaling.high_freq_factor"},
        {"linear rope scaling",
         "{\"hidden_size\":64,\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"vocab_size\":9,"
         "\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}}",
         "not supported"},
        {"string where a number belongs",
         "{\"hidden_size\":\"64\",\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,\"vocab_size\":9}",
         "hidden_size"},
        {"gelu", "{\"hidden_size\":64,\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,"
                 "\"vocab_size\":9,\"hidden_act\":\"gelu\"}",
         "hidden_act"},
        {"head_dim disagrees", "{\"hidden_size\":64,\"intermediate_size\":192,\"num_attention_heads\":4,\"num_hidden_layers\":1,"
                               "\"vocab_size\":9,\"head_dim\":32}",
         "head_dim"},
        {"not JSON", "{hidden_size: 64}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "badcfg%02zu.json", i);
        char *p = write_text(tmp_dir, name, cases[i].json);
        char err[2048];
        int rc = run_in_child(load_hf_config, p, err, sizeof err);
        CHECK(rc == 2 && strstr(err, cases[i].want) && count_lines(err) == 1, "%s: exit %d, stderr: %s", cases[i].what, rc, err);
        free(p);
    }
}

// ---- an HF directory ------------------------------------------------------------------------------------------------
// A 1-layer model, D = 8, H = 2, Hkv = 1, Dh = 4, F = 16 (given), V = 5, tied embeddings, stored as two shards with
// an index, plus an inv_freq tensor that must be ignored. Every element of wq/wk is its Meta row index, so the
// un-permuted rows can be read off directly.
static void test_hf_directory(void) {
    char *dir = path_join(tmp_dir, "hf");
    mkdir_p(dir);
    free(write_text(dir, "config.json",
                    "{\"hidden_size\":8,\"intermediate_size\":16,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
                    "\"num_hidden_layers\":1,\"vocab_size\":5,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
                    "\"tie_word_embeddings\":true}"));
    free(write_text(dir, "tokenizer.json", "{}"));
    enum { D = 8, DH = 4, H = 2, HKV = 1, F = 16, V = 5 };
    float wq_meta[H * DH][D], wq_hf[H * DH][D], wk_meta[HKV * DH][D], wk_hf[HKV * DH][D];
    for (int r = 0; r < H * DH; r++)
        for (int c = 0; c < D; c++) wq_meta[r][c] = (float)r + 0.01f * (float)c;
    for (int r = 0; r < HKV * DH; r++)
        for (int c = 0; c < D; c++) wk_meta[r][c] = -(float)r - 0.01f * (float)c;
    qk_rows_meta_to_hf(wq_meta, wq_hf, H, DH, sizeof wq_hf[0]);
    qk_rows_meta_to_hf(wk_meta, wk_hf, HKV, DH, sizeof wk_hf[0]);
    float emb[V][D], wv[HKV * DH][D], wo[D][D], w1[F][D], w2[D][F], w3[F][D], n1[D], n2[D], nf[D], inv[DH / 2];
    float *all[] = {&emb[0][0], &wv[0][0], &wo[0][0], &w1[0][0], &w2[0][0], &w3[0][0], n1, n2, nf, inv};
    size_t sizes[] = {sizeof emb, sizeof wv, sizeof wo, sizeof w1, sizeof w2, sizeof w3, sizeof n1, sizeof n2, sizeof nf, sizeof inv};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        for (size_t i = 0; i < sizes[k] / 4; i++) all[k][i] = (float)(k * 1000 + i);
    SafetensorsSpec shard1[] = {
        {"model.embed_tokens.weight", DT_F32, 2, {V, D}},
        {"model.layers.0.self_attn.q_proj.weight", DT_F32, 2, {H * DH, D}},
        {"model.layers.0.self_attn.k_proj.weight", DT_F32, 2, {HKV * DH, D}},
        {"model.layers.0.self_attn.v_proj.weight", DT_F32, 2, {HKV * DH, D}},
        {"model.layers.0.self_attn.o_proj.weight", DT_F32, 2, {D, D}},
        {"model.layers.0.self_attn.rotary_emb.inv_freq", DT_F32, 1, {DH / 2}},
    };
    const void *data1[] = {emb, wq_hf, wk_hf, wv, wo, inv};
    SafetensorsSpec shard2[] = {
        {"model.layers.0.mlp.gate_proj.weight", DT_F32, 2, {F, D}},
        {"model.layers.0.mlp.down_proj.weight", DT_F32, 2, {D, F}},
        {"model.layers.0.mlp.up_proj.weight", DT_F32, 2, {F, D}},
        {"model.layers.0.input_layernorm.weight", DT_F32, 1, {D}},
        {"model.layers.0.post_attention_layernorm.weight", DT_F32, 1, {D}},
        {"model.norm.weight", DT_F32, 1, {D}},
    };
    const void *data2[] = {w1, w2, w3, n1, n2, nf};
    char *p1 = path_join(dir, "model-00001-of-00002.safetensors"), *p2 = path_join(dir, "model-00002-of-00002.safetensors");
    SafetensorsWriter *w = safetensors_writer_open(p1, shard1, 6);
    for (int i = 0; i < 6; i++) safetensors_writer_write(w, i, data1[i]);
    safetensors_writer_close(w);
    w = safetensors_writer_open(p2, shard2, 6);
    for (int i = 0; i < 6; i++) safetensors_writer_write(w, i, data2[i]);
    safetensors_writer_close(w);
    // The index lists every tensor but inv_freq: it must still not appear.
    char index[4096];
    size_t k = (size_t)snprintf(index, sizeof index, "{\"metadata\":{\"total_size\":1},\"weight_map\":{");
    for (int i = 0; i < 5; i++)
        k += (size_t)snprintf(index + k, sizeof index - k, "\"%s\":\"model-00001-of-00002.safetensors\",", shard1[i].name);
    for (int i = 0; i < 6; i++)
        k += (size_t)snprintf(index + k, sizeof index - k, "\"%s\":\"model-00002-of-00002.safetensors\"%s", shard2[i].name,
                              i < 5 ? "," : "}}");
    free(write_text(dir, "model.safetensors.index.json", index));

    Checkpoint ck;
    checkpoint_open_hf(&ck, dir);
    CHECK_EQ_INT(ck.kind, CKPT_HF_DIR);
    CHECK(ck.has_config && ck.cfg.dim == D && ck.cfg.head_dim == DH && ck.cfg.ffn_hidden == F);
    CHECK_EQ_INT(ck.n_tensors, 12);  // 11 weights + output.weight tied to the embedding
    CHECK_EQ_INT(ck.n_files, 2);
    const char *order[] = {"tok_embeddings.weight",          "layers.0.attention.wq.weight",    "layers.0.attention.wk.weight",
                           "layers.0.attention.wv.weight",   "layers.0.attention.wo.weight",    "layers.0.feed_forward.w1.weight",
                           "layers.0.feed_forward.w2.weight", "layers.0.feed_forward.w3.weight", "layers.0.attention_norm.weight",
                           "layers.0.ffn_norm.weight",       "norm.weight",                     "output.weight"};
    for (int i = 0; i < ck.n_tensors && i < 12; i++) CHECK_EQ_STR(ck.tensors[i].name, order[i]);
    if (ck.n_tensors == 12) {
        CHECK(memcmp(ck.tensors[1].data, wq_meta, sizeof wq_meta) == 0, "wq not un-permuted to Meta's rows");
        CHECK(memcmp(ck.tensors[2].data, wk_meta, sizeof wk_meta) == 0, "wk not un-permuted with n_kv_heads");
        CHECK(memcmp(ck.tensors[3].data, wv, sizeof wv) == 0, "wv must not move");
        CHECK(memcmp(ck.tensors[5].data, w1, sizeof w1) == 0 && memcmp(ck.tensors[6].data, w2, sizeof w2) == 0);
        CHECK(ck.tensors[11].data == ck.tensors[0].data, "tied output.weight must be the embedding view");
        CHECK(ck.tensors[6].shape[0] == D && ck.tensors[6].shape[1] == F);
    }
    CHECK(ck.hf_tokenizer_json && strstr(ck.hf_tokenizer_json, "tokenizer.json"));
    checkpoint_close(&ck);

    // The same shard alone, as a file: names as stored, inv_freq included, nothing permuted.
    checkpoint_open_safetensors_file(&ck, p1);
    CHECK_EQ_INT(ck.kind, CKPT_SAFETENSORS_FILE);
    CHECK(!ck.has_config && ck.n_tensors == 6);
    const Tensor *q = checkpoint_find(&ck, "model.layers.0.self_attn.q_proj.weight");
    CHECK(q && memcmp(q->data, wq_hf, sizeof wq_hf) == 0);
    CHECK(checkpoint_find(&ck, "model.layers.0.self_attn.rotary_emb.inv_freq") != NULL);
    checkpoint_close(&ck);
    free(p1);
    free(p2);
    free(dir);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_safetensors.XXXXXX");
    if (!mkdtemp(tmp_dir)) fatal("mkdtemp failed");
    test_hand_built_good_file();
    test_unpadded_header_is_copied_aligned();
    test_writer_round_trip();
    test_bad_files();
    test_qk_rows();
    test_config_from_hf_json();
    test_bad_configs();
    test_hf_directory();
    char *cmd = xasprintf("rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    free(cmd);
    TEST_SUMMARY();
}
