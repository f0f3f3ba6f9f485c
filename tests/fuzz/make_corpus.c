// make_corpus.c: the starting inputs of every fuzz harness, OUT/<harness>/NAME, in two kinds:
//
//   seed_*   valid files written by the project's own writers (pth_write, safetensors_writer, npy_write,
//            config_write_params_json, hf_config_write_json; the head of the tokenizer.model that wt-convert made;
//            a MiniMind-shaped tokenizer.json from bpe_seed.h),
//            so that the fuzzer starts from the formats as they really are;
//   repro_*  the inputs of issue 12 that hung, overflowed or hit undefined behaviour before the fixes: a 2^62-element
//            stride-0 view on a one-element storage, element counts that overflow 64 bits, the 2-byte pickle "(d",
//            nested shared tuples that made pickle_to_text exponential, a name with a newline, a .npy of shape
//            (2^62,) with no data, shapes that strtoll would saturate, ffn_dim_multiplier 1e300, dim 1e9.
//
// `make test` replays all of them under AddressSanitizer + UBSan (tests/test_fuzz_corpus.sh, which also checks what
// the command-line tools say about the repro_* files); `make fuzz` seeds libFuzzer with them.
//
// Usage: make_corpus OUT [--tokenizer build/models/tokenizer.model]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "formats/convert.h"
#include "formats/npy.h"
#include "formats/pth_write.h"
#include "formats/safetensors.h"
#include "formats/zip.h"
#include "bpe_seed.h"  // tests/fuzz
#include "pickle_build.h"
#include "util.h"

static const char *OUT;

static char *out_path(const char *harness, const char *name) {
    char *dir = path_join(OUT, harness);
    mkdir_p(dir);
    char *p = path_join(dir, name);
    free(dir);
    return p;
}

static void write_bytes(const char *harness, const char *name, const void *data, size_t n) {
    char *p = out_path(harness, name);
    FILE *f = xfopen(p, "wb");
    xfwrite(data, n, f, p);
    xfclose(f, p);
    free(p);
}

// Deterministic bytes for tensor data (the values do not matter to a parser).
static void fill(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

// ---- .pth -----------------------------------------------------------------------------------------------------------
// Writes a .pth of the given tensors (contiguous data) with the project's writer; raw_pickle replaces its data.pkl.
static void write_pth(const char *name, const PthTensorSpec *specs, int n, const PthWriterOptions *opt) {
    char *p = out_path("pth", name);
    PthWriter *w = pth_writer_open_opts(p, specs, n, opt);
    for (int i = 0; i < n; i++) {
        int64_t nbytes = 0;
        if (!shape_nbytes_checked(specs[i].shape, specs[i].ndim, dtype_size(specs[i].dtype), &nbytes)) fatal("make_corpus: bad spec");
        uint8_t *buf = xmalloc((size_t)nbytes);
        fill(buf, (size_t)nbytes, (uint32_t)i);
        pth_writer_append(w, buf, (size_t)nbytes);
        free(buf);
    }
    pth_writer_close(w);
    free(p);
}

// The data.pkl entry of a .pth just written, as a pickle seed.
static void copy_pickle_of(const char *pth_name, const char *pkl_name) {
    char *p = out_path("pth", pth_name);
    size_t len;
    char *bytes = read_whole_file(p, &len);
    ZipArchive z;
    char err[256];
    if (!zip_index(&z, (const uint8_t *)bytes, len, err, sizeof err)) fatal("make_corpus: %s: %s", p, err);
    for (int i = 0; i < z.n_entries; i++)
        if (strstr(z.entries[i].name, "/data.pkl")) write_bytes("pickle", pkl_name, bytes + z.entries[i].data_offset, (size_t)z.entries[i].size);
    zip_free(&z);
    free(bytes);
    free(p);
}

// The same pickle as data.pkl of a zip written by pth_write, whose storage data/0 holds storage_elems bf16 values
// (so that the CRC-32s are right and a reader refuses the file for what the pickle claims).
static void write_view_pth(const char *pth_name, const char *pkl_name, Buf pkl, int64_t storage_elems) {
    PthTensorSpec storage = {"storage", DT_BF16, 1, {storage_elems}};
    PthWriterOptions opt = {.raw_pickle = pkl.p, .raw_pickle_len = pkl.len};
    write_pth(pth_name, &storage, 1, &opt);
    write_bytes("pickle", pkl_name, pkl.p, pkl.len);
    free(pkl.p);
}

static void make_pth_and_pickle(void) {
    PthTensorSpec specs[] = {
        {"tok_embeddings.weight", DT_BF16, 2, {8, 4}}, {"layers.0.attention.wq.weight", DT_BF16, 2, {4, 4}},
        {"norm.weight", DT_F32, 1, {4}},             {"h", DT_F16, 2, {2, 3}},
        {"empty", DT_BF16, 2, {0, 4}},               {"scalar", DT_F32, 0, {0}},
    };
    int n = (int)(sizeof specs / sizeof specs[0]);
    write_pth("seed_state_dict.pth", specs, n, NULL);
    write_pth("seed_torch113.pth", specs, n, &(PthWriterOptions){.no_byteorder = true});
    write_pth("seed_zip64.pth", specs, n, &(PthWriterOptions){.zip64_threshold = 1});  // every zip64 record and extra
    copy_pickle_of("seed_state_dict.pth", "seed_state_dict.pkl");

    // A legal view: t[1:, ::2] of a 3x4 storage.
    int64_t vs[2] = {2, 2}, vt[2] = {4, 2};
    write_view_pth("seed_view.pth", "seed_view.pkl", p_one_tensor("view", "BFloat16Storage", 12, 4, 2, vs, vt), 12);

    // Issue 12, item 1: stride 0 (torch's expand()) claiming 2^62 elements on one element. Before the fix wt-inspect
    // checksummed 2^62 elements and --dump wrote past a 1-byte buffer.
    int64_t huge[2] = {INT64_C(1) << 31, INT64_C(1) << 31}, zero[2] = {0, 0};
    write_view_pth("repro_stride0_expand.pth", "repro_stride0_expand.pkl", p_one_tensor("expanded", "BFloat16Storage", 1, 0, 2, huge, zero), 1);
    // An element count that overflows 64 bits (2^96).
    int64_t over[3] = {INT64_C(1) << 32, INT64_C(1) << 32, INT64_C(1) << 32}, zero3[3] = {0, 0, 0};
    write_view_pth("repro_count_overflow.pth", "repro_count_overflow.pkl", p_one_tensor("over", "BFloat16Storage", 1, 0, 3, over, zero3), 1);
    // A view whose elements overlap (stride 1 on a 2-D shape) and so claims more elements than the storage holds.
    int64_t ov[2] = {4, 4}, os[2] = {1, 1};
    write_view_pth("repro_overlap.pth", "repro_overlap.pkl", p_one_tensor("overlap", "BFloat16Storage", 8, 0, 2, ov, os), 8);
    // A tensor name with a newline (and an escape sequence), twice: the error message names it, on one line.
    Buf nl = {0};
    int64_t s1[1] = {2}, t1[1] = {1};
    p_begin_dict(&nl);
    p_tensor(&nl, "evil\nname\x1b[31m", "BFloat16Storage", "0", 2, 0, 1, s1, t1);
    p_tensor(&nl, "evil\nname\x1b[31m", "BFloat16Storage", "0", 2, 0, 1, s1, t1);
    p_end_dict(&nl);
    write_view_pth("repro_newline_name.pth", "repro_newline_name.pkl", nl, 2);

    // The pickle VM: "(d" made pointer arithmetic on a NULL stack and a memcpy from NULL.
    write_bytes("pickle", "repro_mark_dict.pkl", "(d.", 3);
    write_bytes("pickle", "repro_mark_dict_nostop.pkl", "(d", 2);
    // Shared nested tuples: each level is (t, t) of the one below, 2^40 leaves in 85 bytes.
    Buf nest = {0};
    u8(&nest, 0x80); u8(&nest, 2); u8(&nest, 'N');
    for (int i = 0; i < 40; i++) { u8(&nest, '2'); u8(&nest, 0x86); }  // DUP, TUPLE2
    u8(&nest, '.');
    write_bytes("pickle", "repro_shared_tuples.pkl", nest.p, nest.len);
    free(nest.p);
}

// ---- safetensors ----------------------------------------------------------------------------------------------------
static void make_safetensors(void) {
    SafetensorsSpec specs[] = {{"model.embed_tokens.weight", DT_BF16, 2, {8, 4}}, {"model.norm.weight", DT_F32, 1, {4}},
                               {"a.half", DT_F16, 1, {3}},                       {"b.bytes", DT_U8, 1, {5}},
                               {"empty", DT_BF16, 2, {0, 3}}};
    int n = (int)(sizeof specs / sizeof specs[0]);
    char *p = out_path("safetensors", "seed.safetensors");
    SafetensorsWriter *w = safetensors_writer_open(p, specs, n);
    for (int i = 0; i < n; i++) {
        int64_t nbytes;
        shape_nbytes_checked(specs[i].shape, specs[i].ndim, dtype_size(specs[i].dtype), &nbytes);
        uint8_t *buf = xmalloc((size_t)nbytes);
        fill(buf, (size_t)nbytes, (uint32_t)i);
        safetensors_writer_write(w, i, buf);
        free(buf);
    }
    safetensors_writer_close(w);
    free(p);
    // A header whose shape overflows 64 bits and whose offsets wrap: must be refused, not multiplied.
    const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,0]}}";
    Buf b = {0};
    u64(&b, sizeof hdr - 1);
    put(&b, hdr, sizeof hdr - 1);
    write_bytes("safetensors", "repro_shape_overflow.safetensors", b.p, b.len);
    free(b.p);
}

// ---- params.json and config.json --------------------------------------------------------------------------------------
static void make_configs(void) {
    Config c8 = {.dim = 4096, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .vocab_size = 128256, .multiple_of = 1024,
                 .has_ffn_dim_multiplier = true, .ffn_dim_multiplier = 1.3, .norm_eps = 1e-5, .rope_theta = 500000.0};
    Config tiny = {.dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 256, .multiple_of = 32,
                   .norm_eps = 1e-5, .rope_theta = 10000.0, .use_scaled_rope = true};
    char *p = out_path("params_json", "seed_8b.json");
    config_write_params_json(&c8, p);
    free(p);
    p = out_path("params_json", "seed_tiny.json");
    config_write_params_json(&tiny, p);
    free(p);
    config_derive(&c8, "llama3-8b");
    config_derive(&tiny, "tiny");
    p = out_path("config_json", "seed_8b.json");
    hf_config_write_json(&c8, DT_BF16, false, p);
    free(p);
    p = out_path("config_json", "seed_tiny_tied.json");
    hf_config_write_json(&tiny, DT_F32, true, p);
    free(p);
    // Issue 12: 1e300 converted to int (undefined behaviour; it printed ffn_hidden 256), dim 1e9 reached config_print.
    const char *mult = "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"vocab_size\": 256, \"ffn_dim_multiplier\": 1e300}";
    write_bytes("params_json", "repro_multiplier_1e300.json", mult, strlen(mult));
    const char *dim = "{\"dim\": 1000000000, \"n_layers\": 1, \"n_heads\": 1, \"vocab_size\": 256, \"multiple_of\": 1}";
    write_bytes("params_json", "repro_dim_1e9.json", dim, strlen(dim));
    const char *hf_dim = "{\"hidden_size\": 1000000000, \"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": 256, "
                         "\"intermediate_size\": 1}";
    write_bytes("config_json", "repro_hidden_1e9.json", hf_dim, strlen(hf_dim));
    const char *hf_eps = "{\"hidden_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 256, "
                         "\"intermediate_size\": 16777216, \"rms_norm_eps\": 1e300, \"rope_theta\": 1e300}";
    write_bytes("config_json", "repro_doubles_1e300.json", hf_eps, strlen(hf_eps));
}

// ---- tokenizer --------------------------------------------------------------------------------------------------------
// texts[i] as HARNESS/seed_textI.txt
static void write_texts(const char *harness, const char *const *texts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "seed_text%zu.txt", i);
        write_bytes(harness, name, texts[i], strlen(texts[i]));
    }
}

static void make_tokenizer(const char *tokenizer_path) {
    // The first 300 lines of Meta's tokenizer.model (as wt-convert rebuilt it): the 256 single bytes and the first
    // merges, a complete byte-level vocabulary of fuzzable size.
    if (tokenizer_path && file_exists(tokenizer_path)) {
        size_t len;
        char *text = read_whole_file(tokenizer_path, &len);
        size_t cut = 0;
        for (int lines = 0; cut < len && lines < 300; cut++) lines += text[cut] == '\n';
        write_bytes("tokenizer_load", "seed_head300.model", text, cut);
        // A line whose base64 holds a newline-free name but whose rank has a control character.
        write_bytes("tokenizer_load", "repro_rank_control.model", "IQ== 0\x1b[2J\n", 12);
        free(text);
    }
    static const char *texts[] = {
        "the answer to the ultimate question of life, the universe, and everything is ",
        "This is a test sentence.",
        "Hello world!\n\n  foo123456 don't I'M we'VE",
        "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c 1234567 \xf0\x9f\x98\x80\xf0\x9f\x98\x80",
        "<|begin_of_text|><|eot_id|> tabs\t\t\tand   spaces   \r\n\r\n",
        "\xe1\xa0\x8e mongolian vowel separator\xc2\xa0nbsp",
    };
    write_texts("tokenizer_encode", texts, sizeof texts / sizeof texts[0]);
    // MiniMind's kind: a tokenizer.json byte-level BPE, merges in both forms (bpe_seed.h); and texts, which that
    // harness encodes with the seed tokenizer (added tokens whole and broken, Chinese, digits, contractions).
    for (int arrays = 0; arrays < 2; arrays++) {
        size_t len;
        char *json = bpe_seed_json(arrays, &len);
        write_bytes("tokenizer_bpe", arrays ? "seed_merge_arrays.json" : "seed_merge_strings.json", json, len);
        free(json);
    }
    static const char *bpe_texts[] = {
        "<|im_start|>user\n\xe4\xbd\xa0\xe5\xa5\xbd the answer's 123456<|im_end|>\n<think>\n\n</think>\n\n",
        "<|im_start<|im_end|>|> <think</think>>  \t\r\n  x  ",
    };
    write_texts("tokenizer_bpe", bpe_texts, sizeof bpe_texts / sizeof bpe_texts[0]);
}

// ---- .npy -------------------------------------------------------------------------------------------------------------
static void make_npy(void) {
    float f[12];
    int64_t ids[17];
    for (int i = 0; i < 12; i++) f[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 17; i++) ids[i] = 128000 + i;
    int64_t s2[2] = {3, 4}, s1[1] = {17}, s0[1] = {0};
    char *p = out_path("npy", "seed_f32.npy");
    npy_write_f32(p, f, s2, 2);
    free(p);
    p = out_path("npy", "seed_i64.npy");
    npy_write_i64(p, ids, s1, 1);
    free(p);
    p = out_path("npy", "seed_scalar.npy");
    npy_write_f32(p, f, s0, 0);
    free(p);
    uint16_t half[6] = {0x3c00, 0x4000, 0xc000, 0x7c00, 0x0001, 0x8000};
    Tensor t = {.name = "h", .dtype = DT_F16, .ndim = 2, .shape = {2, 3}, .data = half};
    tensor_set_contiguous_strides(&t);
    p = out_path("npy", "seed_f16.npy");
    npy_write_tensor(p, &t);
    free(p);
    // Issue 12: count() wrapped (2^62 float32 = 2^64 bytes = 0) and strtoll saturated out-of-range numbers.
    static const char *shapes[][2] = {{"repro_shape_2p62.npy", "(4611686018427387904,)"},
                                      {"repro_shape_saturates.npy", "(99999999999999999999999,)"},
                                      {"repro_shape_negative.npy", "(-1, 4)"}};
    for (size_t i = 0; i < 3; i++) {
        char dict[128];
        int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shapes[i][1]);
        while ((10 + n + 1) % 64) dict[n++] = ' ';
        dict[n++] = '\n';
        Buf b = {0};
        put(&b, "\x93NUMPY\x01\x00", 8);
        u16(&b, (unsigned)n);
        put(&b, dict, (size_t)n);
        write_bytes("npy", shapes[i][0], b.p, b.len);
        free(b.p);
    }
}

int main(int argc, char **argv) {
    const char *tokenizer = "build/models/tokenizer.model";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s OUT [--tokenizer FILE]\nwrites the seed and reproducer inputs of every fuzz harness into OUT/<harness>/\n", argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
            tokenizer = argv[++i];
        } else if (!OUT) {
            OUT = argv[i];
        } else {
            usage_error(argv[0], "one OUT directory only");
        }
    }
    if (!OUT) usage_error(argv[0], "OUT is required");
    mkdir_p(OUT);
    make_pth_and_pickle();
    make_safetensors();
    make_configs();
    make_tokenizer(tokenizer);
    make_npy();
    return 0;
}
