// test_config.c: params.json -> Config (common/config.c): Meta's FFN rule for 8B/70B/405B, ModelArgs defaults for
// absent keys, derived values, and bad files (each must exit 2 with one line naming the file and the key).
//
// Bad input ends the process (input_error), so each such case runs in a forked child whose exit status and
// stderr are checked here.
//
// Build and run: make build/tests/test_config && build/tests/test_config   (ends with "N passed, N failed")
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "util.h"

static char dir[] = "/tmp/test_config.XXXXXX";

static char *write_params(const char *name, const char *text) {
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = xfopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

// Runs config_from_params_json(path) in a child; returns its exit status; its stdout+stderr go to *out (malloc'd).
static int load_in_child(const char *path, bool print, char **out) {
    static char log[256];  // static, not malloc'd: the child exits inside input_error, and LeakSanitizer would see a leak
    snprintf(log, sizeof log, "%s/child.log", dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        if (!f || dup2(fileno(stderr), fileno(stdout)) < 0) _exit(99);
        Config c;
        config_from_params_json(&c, path);
        if (print) config_print(&c, 2);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    *out = read_whole_file(log, NULL);
    unlink(log);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A bad params.json: exit 2, one line, naming the file and the key.
static void expect_bad(const char *text, const char *key) {
    char *path = write_params("params.json", text);
    char *out;
    int rc = load_in_child(path, false, &out);
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    CHECK(rc == 2 && strstr(out, path) && strstr(out, key) && lines == 1, "%s: rc %d, output '%s' (want exit 2 naming '%s')", text, rc, out, key);
    free(out);
    unlink(path);
    free(path);
}

static Config load(const char *name, const char *text) {
    char *path = write_params(name, text);
    Config c;
    config_from_params_json(&c, path);
    unlink(path);
    free(path);
    return c;
}

int main(void) {
    if (!mkdtemp(dir)) fatal("mkdtemp failed");

    // The FFN rule, checked against the sizes of Meta's released models (formats.md §1).
    CHECK_EQ_INT(ffn_hidden_size(4096, 1024, true, 1.3), 14336);   // Llama-3-8B
    CHECK_EQ_INT(ffn_hidden_size(8192, 4096, true, 1.3), 28672);   // Llama-3-70B
    CHECK_EQ_INT(ffn_hidden_size(16384, 4096, true, 1.2), 53248);  // Llama-3.1-405B
    CHECK_EQ_INT(ffn_hidden_size(4096, 256, false, 0), 11008);     // Llama-2-7B: int(2*16384/3) = 10922 -> 11008
    CHECK_EQ_INT(ffn_hidden_size(5120, 256, false, 0), 13824);     // Llama-2-13B
    CHECK_EQ_INT(ffn_hidden_size(64, 32, true, 1.3), 224);         // the tests' tiny model: 170 -> 221 -> 224
    CHECK_EQ_INT(ffn_hidden_size(2048, 256, true, 1.5), 8192);     // Llama-3.2-1B: 5461 -> 8191 -> 8192

    // Llama-3-8B's params.json, exactly as Meta ships it.
    Config c = load("8b.json", "{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"n_kv_heads\": 8, \"vocab_size\": 128256, "
                               "\"multiple_of\": 1024, \"ffn_dim_multiplier\": 1.3, \"norm_eps\": 1e-05, \"rope_theta\": 500000.0}");
    CHECK_EQ_INT(c.dim, 4096);
    CHECK_EQ_INT(c.n_layers, 32);
    CHECK_EQ_INT(c.n_heads, 32);
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.vocab_size, 128256);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.n_rep, 4);
    CHECK_EQ_INT(c.ffn_hidden, 14336);
    CHECK_NEAR(c.norm_eps, 1e-5, 0);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    CHECK(c.has_ffn_dim_multiplier && c.ffn_dim_multiplier == 1.3, "multiplier");
    CHECK(!c.use_scaled_rope && !c.tie_word_embeddings, "flags");

    // 70B, keys in another order and with other whitespace (as Meta's 70B file differs from the 8B one).
    c = load("70b.json", "{\n  \"n_layers\": 80,\n  \"dim\": 8192,\n  \"multiple_of\": 4096,\n  \"ffn_dim_multiplier\": 1.3,\n"
                         "  \"n_heads\": 64,\n  \"n_kv_heads\": 8,\n  \"norm_eps\": 1e-05,\n  \"vocab_size\": 128256,\n  \"rope_theta\": 500000.0\n}\n");
    CHECK_EQ_INT(c.ffn_hidden, 28672);
    CHECK_EQ_INT(c.n_rep, 8);
    CHECK_EQ_INT(c.head_dim, 128);

    // 3.1-405B with use_scaled_rope, and an unknown key that must be ignored.
    c = load("405b.json", "{\"dim\": 16384, \"n_layers\": 126, \"n_heads\": 128, \"n_kv_heads\": 8, \"vocab_size\": 128256, "
                          "\"ffn_dim_multiplier\": 1.2, \"multiple_of\": 4096, \"norm_eps\": 1e-05, \"rope_theta\": 500000.0, "
                          "\"use_scaled_rope\": true, \"some_future_key\": [1, 2]}");
    CHECK_EQ_INT(c.ffn_hidden, 53248);
    CHECK_EQ_INT(c.n_rep, 16);
    CHECK(c.use_scaled_rope, "use_scaled_rope read");
    CHECK(config_rope_scaling(&c) && config_rope_scaling(&c)->factor == 8.0 &&
          config_rope_scaling(&c)->original_max_position_embeddings == 8192.0, "Meta's scaling constants by default");

    // The scaling constants given in params.json (Llama 3.2 1B: factor 32), HF's spelling; absent keys keep Meta's.
    c = load("1b.json", "{\"dim\": 2048, \"n_layers\": 16, \"n_heads\": 32, \"n_kv_heads\": 8, \"vocab_size\": 128256, "
                        "\"ffn_dim_multiplier\": 1.5, \"multiple_of\": 256, \"rope_theta\": 500000.0, "
                        "\"rope_scaling\": {\"factor\": 32.0, \"original_max_position_embeddings\": 8192}}");
    CHECK(c.use_scaled_rope && c.rope_scaling.factor == 32.0 && c.rope_scaling.low_freq_factor == 1.0 &&
          c.rope_scaling.high_freq_factor == 4.0, "rope_scaling read");
    // ... and written back: params.json with the constants, which reads back the same
    char *p1b = path_join(dir, "1b_out.json");
    config_write_params_json(&c, p1b);
    char *text = read_whole_file(p1b, NULL);
    CHECK(strstr(text, "\"rope_scaling\": {\"factor\": 32.0") != NULL, "%s", text);
    Config back;
    config_from_params_json(&back, p1b);
    CHECK(back.use_scaled_rope && memcmp(&back.rope_scaling, &c.rope_scaling, sizeof(RopeScaling)) == 0, "round trip");
    free(text), free(p1b);

    // ModelArgs defaults for absent keys; null counts as absent (ModelArgs has n_kv_heads=None).
    c = load("defaults.json", "{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 32000, \"n_kv_heads\": null}");
    CHECK_EQ_INT(c.n_kv_heads, 32);
    CHECK_EQ_INT(c.n_rep, 1);
    CHECK_EQ_INT(c.multiple_of, 256);
    CHECK(!c.has_ffn_dim_multiplier, "no multiplier");
    CHECK_EQ_INT(c.ffn_hidden, 11008);
    CHECK_NEAR(c.norm_eps, 1e-5, 0);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    CHECK(!c.use_scaled_rope, "default use_scaled_rope");

    // config_derive on a hand-filled Config: HF's intermediate_size wins over the Meta rule.
    Config h = {.dim = 2048, .n_layers = 16, .n_heads = 32, .n_kv_heads = 8, .vocab_size = 128256, .multiple_of = 256,
                .norm_eps = 1e-5, .rope_theta = 500000, .intermediate_size = 8192};
    config_derive(&h, "hand-made");
    CHECK_EQ_INT(h.head_dim, 64);
    CHECK_EQ_INT(h.ffn_hidden, 8192);

    // The printed form names the derived values.
    char *path = write_params("print.json", "{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"n_kv_heads\": 8, \"vocab_size\": 128256, "
                                            "\"multiple_of\": 1024, \"ffn_dim_multiplier\": 1.3}");
    char *out;
    int rc = load_in_child(path, true, &out);
    CHECK(rc == 0 && strstr(out, "head_dim") && strstr(out, "128") && strstr(out, "14336") && strstr(out, "n_rep"), "printed: %s", out);
    free(out);
    unlink(path);
    free(path);

    // Bad files.
    expect_bad("{\"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256}", "dim: required key is missing");
    expect_bad("{\"dim\": 4096, \"n_heads\": 32, \"vocab_size\": 128256}", "n_layers: required key is missing");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"vocab_size\": 128256}", "n_heads: required key is missing");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32}", "vocab_size: required key is missing");
    expect_bad("{\"dim\": \"4096\", \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256}", "dim: expected a positive integer, found a JSON string");
    expect_bad("{\"dim\": 4096.0, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256}", "dim: expected a positive integer, found a JSON real");
    expect_bad("{\"dim\": 4096, \"n_layers\": 0, \"n_heads\": 32, \"vocab_size\": 128256}", "n_layers: expected a positive integer from 1 to 65536, found 0");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": -1}", "vocab_size: -1");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 99999999999}", "vocab_size");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"n_kv_heads\": 3, \"vocab_size\": 128256}", "n_kv_heads: 3 does not divide");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 30, \"vocab_size\": 128256}", "n_heads: 30 does not divide dim");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"norm_eps\": \"1e-5\"}", "norm_eps: expected a number");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"rope_theta\": -1}", "rope_theta: expected a number from 1 to 1e+15, found -1");
    // Out of range before any conversion (issue 12): a double far outside the int range, a dim whose derived sizes
    // would pass INT_MAX in config_print.
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"ffn_dim_multiplier\": 1e300}",
               "ffn_dim_multiplier: expected a number from 0.01 to 100, found 1e+300");
    expect_bad("{\"dim\": 1000000000, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256}",
               "dim: expected a positive integer from 1 to 1048576, found 1000000000");
    expect_bad("{\"dim\": 1048576, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"ffn_dim_multiplier\": 100}",
               "ffn_dim_multiplier: the FFN size");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"norm_eps\": 1e400}", "not valid JSON");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"ffn_dim_multiplier\": \"1.3\"}", "ffn_dim_multiplier");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"use_scaled_rope\": \"yes\"}", "use_scaled_rope: expected true or false");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"multiple_of\": 0}", "multiple_of");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"rope_scaling\": 8}", "rope_scaling: expected null or an object");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"rope_scaling\": {\"factor\": \"32\"}}", "rope_scaling.factor: expected a number");
    expect_bad("{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"vocab_size\": 128256, \"dim\": 8}", "not valid JSON");  // duplicate key
    expect_bad("{\"dim\": 4096, \"n_layers\": 32,", "not valid JSON");
    expect_bad("[4096, 32]", "expected a JSON object");
    expect_bad("", "not valid JSON");

    // The non-exiting readers that `make fuzz` calls: the same checks, a message in err, nothing to free.
    {
        Config t;
        char e[512];
        const char *ok = "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"vocab_size\": 256}";
        CHECK(config_from_params_json_try(&t, ok, strlen(ok), e, sizeof e) && t.ffn_hidden == 256 && t.head_dim == 16, "%s", e);
        const char *huge = "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"vocab_size\": 256, \"ffn_dim_multiplier\": 1e300}";
        CHECK(!config_from_params_json_try(&t, huge, strlen(huge), e, sizeof e) && strstr(e, "ffn_dim_multiplier: expected a number"), "%s", e);
        const char *hf_ok = "{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"intermediate_size\": 160}";
        CHECK(config_from_hf_json_try(&t, hf_ok, strlen(hf_ok), e, sizeof e) && t.ffn_hidden == 160, "%s", e);
        const struct { const char *json, *want; } hf_bad[] = {
            {"{\"hidden_size\": 1e9, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"intermediate_size\": 160}",
             "hidden_size: expected a positive integer, found a JSON real number"},
            {"{\"hidden_size\": 1000000000, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"intermediate_size\": 160}",
             "hidden_size: expected a positive integer from 1 to 1048576"},
            {"{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"intermediate_size\": 2000000000}",
             "intermediate_size: expected a positive integer from 1 to 16777216"},
            {"{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"intermediate_size\": 160, "
             "\"rms_norm_eps\": 1e300}", "rms_norm_eps: expected a number from 1e-30 to 1"},
            {"{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"intermediate_size\": 160, "
             "\"rope_theta\": -5}", "rope_theta: expected a number from 1 to 1e+15"},
            {"{\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256}", "intermediate_size: missing"},
        };
        for (size_t i = 0; i < sizeof hf_bad / sizeof hf_bad[0]; i++) {
            e[0] = 0;
            CHECK(!config_from_hf_json_try(&t, hf_bad[i].json, strlen(hf_bad[i].json), e, sizeof e) && strstr(e, hf_bad[i].want),
                  "config.json case %zu: '%s' (want '%s')", i, e, hf_bad[i].want);
        }
        // ffn_hidden_size refuses instead of converting a double out of range.
        CHECK_EQ_INT(ffn_hidden_size(4096, 1024, true, 1e300), -1);
        CHECK_EQ_INT(ffn_hidden_size(1000000000, 256, false, 0), -1);
    }

    // A missing file.
    char *missing = xasprintf("%s/absent/params.json", dir);
    rc = load_in_child(missing, false, &out);
    CHECK(rc == 2 && strstr(out, missing), "missing file: rc %d, '%s'", rc, out);
    free(out);
    free(missing);

    rmdir(dir);

    // util.c's /proc/self/status reader (host memory in generate and bench): whole keys only, 0 when absent.
    size_t rss = proc_status_bytes("VmRSS"), anon = proc_status_bytes("RssAnon");
    CHECK(rss > 0 && rss % 1024 == 0, "VmRSS read as %zu bytes", rss);
    CHECK(anon > 0 && anon <= rss + ((size_t)64 << 20), "RssAnon %zu bytes against VmRSS %zu", anon, rss);
    size_t again = host_rss_bytes();
    CHECK(again >= rss / 2 && again <= 2 * rss + ((size_t)64 << 20), "host_rss_bytes %zu vs VmRSS %zu", again, rss);
    CHECK(proc_status_bytes("Vm") == 0, "a key prefix ('Vm') must not match VmPeak/VmRSS");
    CHECK(proc_status_bytes("NoSuchKey") == 0, "an absent key reads as 0");

    // util.c's base64 (RFC 4648 test vectors: every padding case), used by the notebook, the page and tokenizer.model
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *b = base64_encode((const unsigned char *)plain[i], strlen(plain[i]));
        CHECK_EQ_STR(b, coded[i]);
        free(b);
    }
    const unsigned char high[3] = {0xFB, 0xFF, 0x00};
    char *b = base64_encode(high, 3);
    CHECK_EQ_STR(b, "+/8A");
    free(b);
    TEST_SUMMARY();
}
