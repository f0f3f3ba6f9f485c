// bench.c: performance of the engine on one GPU (bench/README.md): copy bandwidth, load time, prefill of 17 and 512
// tokens, decode tok/s at context 128 and 1024 (our GEMV kernels and cuBLAS), peak GPU memory, host memory.
// Times are CUDA events; every figure is the median of --runs runs after a warm-up. Writes one JSON object.
//
//   build/bin/bench --model DIR --json FILE [--runs 5] [--decode-steps 32]
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/checkpoint.h"
#include "engine.h"
#include "rng.h"
#include "util.h"

static const char *PROG = "bench";

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *json_path = NULL;
    int runs = 5, steps = 32;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"json", required_argument, 0, 'j'},
                                         {"runs", required_argument, 0, 'r'},  {"decode-steps", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'j': json_path = optarg; break;
        case 'r':
            runs = (int)strtol(optarg, &end, 10);
            if (*end || runs < 1 || runs > 1000) usage_error(PROG, "--runs: expected 1..1000, got '%s'", optarg);
            break;
        case 's':
            steps = (int)strtol(optarg, &end, 10);
            if (*end || steps < 1 || steps > 4096) usage_error(PROG, "--decode-steps: expected 1..4096, got '%s'", optarg);
            break;
        case 'h':
            printf("usage: bench --model DIR --json FILE [--runs N] [--decode-steps N]\n\n"
                   "Measures the engine on GPU 0: device-to-device copy bandwidth, weight load time, prefill of 17 and\n"
                   "512 tokens, decode tok/s at context 128 and 1024 (our GEMV and cuBLAS), peak GPU memory and host\n"
                   "memory. Each figure is the median of --runs (default 5) runs after a warm-up, timed with CUDA\n"
                   "events. Writes a JSON object to FILE; bench/run.sh adds the HF peers and prints the table.\n");
            return 0;
        default:
            if (optopt) usage_error(PROG, "option -%c needs a value or is unknown", optopt);
            usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!model_dir || !json_path) usage_error(PROG, "--model DIR and --json FILE are required");
    if (!engine_available()) input_error(NULL, "no CUDA device: the bench needs an NVIDIA GPU");

    json_t *out = json_object();
    // ---- the limit: what the memory system can move
    double copy_bw = engine_copy_bandwidth(0, (size_t)1 << 30, 20);
    fprintf(stderr, "device-to-device copy: %.1f GB/s (read + write)\n", copy_bw / 1e9);
    json_object_set_new(out, "copy_bandwidth_GBps", json_real(copy_bw / 1e9));

    Checkpoint ck;
    checkpoint_open(&ck, model_dir);
    EngineOptions o;
    engine_options_default(&o);
    o.max_seq_len = 1024 + steps + 1;
    o.max_prefill = 512;
    Engine *e = engine_create(&ck, &o);
    const EngineInfo *info = engine_info(e);
    json_object_set_new(out, "gpu", json_string(info->device_name));
    json_object_set_new(out, "load_s", json_real(info->load_s));
    json_object_set_new(out, "weight_bytes", json_integer((json_int_t)info->weight_bytes));
    json_object_set_new(out, "bytes_per_token", json_integer((json_int_t)info->bytes_per_token));
    double limit = copy_bw / (double)info->bytes_per_token;
    json_object_set_new(out, "limit_tok_s", json_real(limit));
    fprintf(stderr, "weights %.2f GB, %.2f GB read per token: limit %.1f tok/s; loaded in %.2f s\n",
            info->weight_bytes / 1e9, info->bytes_per_token / 1e9, limit, info->load_s);

    // tokens: the tutorial's prompt for 17, pseudo-random ordinary ids for the long contexts
    const int32_t tutorial[17] = {128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220};
    int32_t *ids = xmalloc(2048 * sizeof(int32_t));
    ids[0] = 128000;
    for (int i = 1; i < 2048; i++) ids[i] = (int32_t)(rng_u64(rng_key(3, 0), (uint64_t)i) % 100000);
    double *v = xmalloc((size_t)(runs + 1) * sizeof(double));

    // ---- prefill
    int prefill_T[2] = {17, 512};
    for (int k = 0; k < 2; k++) {
        const int32_t *toks = prefill_T[k] == 17 ? tutorial : ids;
        for (int w = 0; w < 2; w++) engine_time_prefill_ms(e, toks, prefill_T[k]);
        for (int r = 0; r < runs; r++) v[r] = engine_time_prefill_ms(e, toks, prefill_T[k]);
        double ms = median(v, runs);
        char key[64];
        snprintf(key, sizeof key, "prefill_%d_ms", prefill_T[k]);
        json_object_set_new(out, key, json_real(ms));
        fprintf(stderr, "prefill %4d tokens: %.2f ms\n", prefill_T[k], ms);
    }
    // ---- decode at two contexts, two product paths
    int ctx[2] = {128, 1024};
    const char *gemv_name[2] = {"ours", "cublas"};
    for (int g = 0; g < 2; g++) {
        engine_set_gemv(e, g == 0 ? ENGINE_GEMV_OURS : ENGINE_GEMV_CUBLAS);
        for (int k = 0; k < 2; k++) {
            engine_forward(e, ids, ctx[k], 0);                    // cache rows 0..ctx-1
            engine_time_decode_ms(e, ids[ctx[k]], ctx[k], 4);     // warm-up (and graph capture)
            for (int r = 0; r < runs; r++) v[r] = steps / (engine_time_decode_ms(e, ids[ctx[k]], ctx[k], steps) * 1e-3);
            double tps = median(v, runs);
            char key[64];
            snprintf(key, sizeof key, "decode_%d_tok_s%s", ctx[k], g == 0 ? "" : "_cublas");
            json_object_set_new(out, key, json_real(tps));
            fprintf(stderr, "decode at context %4d (%s): %.1f tok/s = %.1f%% of the limit\n", ctx[k], gemv_name[g], tps,
                    100.0 * tps / limit);
        }
    }
    engine_set_gemv(e, ENGINE_GEMV_OURS);
    json_object_set_new(out, "peak_gpu_bytes", json_integer((json_int_t)engine_peak_gpu_bytes(e)));
    // read once: the JSON and the line below give the same numbers
    const size_t rss = host_rss_bytes(), rss_anon = proc_status_bytes("RssAnon");
    json_object_set_new(out, "host_rss_bytes", json_integer((json_int_t)rss));
    json_object_set_new(out, "host_rss_anon_bytes", json_integer((json_int_t)rss_anon));
    json_object_set_new(out, "runs", json_integer(runs));
    json_object_set_new(out, "decode_steps", json_integer(steps));
    fprintf(stderr, "peak GPU memory %.2f GiB; host RSS %.2f GiB (anonymous %.2f GiB)\n",
            engine_peak_gpu_bytes(e) / 1073741824.0, rss / 1073741824.0, rss_anon / 1073741824.0);

    char *partial = xasprintf("%s.partial", json_path);
    if (json_dump_file(out, partial, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) fatal("cannot write %s", partial);
    if (rename(partial, json_path) != 0) fatal("cannot rename %s", partial);
    free(partial);
    json_decref(out);
    free(ids), free(v);
    engine_free(e);
    checkpoint_close(&ck);
    return 0;
}
