// bench.c: performance of the engine on one GPU (bench/README.md): copy bandwidth, load time, prefill of 17 and 512
// tokens (with the 512-token prefill's TFLOP/s against the GPU's bf16 peak), decode tok/s at context 128 and 1024
// (our GEMV kernels and cuBLAS), peak GPU memory, host memory. Every figure is the median of --runs runs after a
// warm-up. Writes one JSON object, with the engine options it ran with.
//
//   build/bin/bench --model DIR --json FILE [--runs 5] [--decode-steps 32] [--gemv-batch 0|2|4|8] [--no-pdl]
//                   [--l2-fill N] [--attn-kernels] [--tp N] [--verbose]
//
// --tp N: the same measurements with tensor parallelism over N GPUs (one process per GPU, kernels/engine_ranks.h);
// every rank makes the same engine calls, rank 0 times them and writes the JSON.
//
// Timing: the copy bandwidth with CUDA events around cudaMemcpyAsync; prefill and decode with the monotonic clock
// around the engine's own calls (engine_forward, engine_decode), which return when the logits are in host memory:
// what a caller of the engine waits for.
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "engine.h"
#include "engine_ranks.h"
#include "formats/checkpoint.h"
#include "kernels.h"
#include "rng.h"
#include "tp.h"
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

#ifdef HAVE_CUDA
#define CUDA_OK(call)                                                                                                \
    do {                                                                                                             \
        cudaError_t err_ = (call);                                                                                   \
        if (err_ != cudaSuccess) fatal("%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(err_));        \
    } while (0)
#endif

// Device-to-device copy bandwidth of a GPU in bytes/s (cudaMemcpyAsync of `bytes`, counted as read + write), the
// median of `reps` after a warm-up: the limit decode is measured against.
static double copy_bandwidth(int device, size_t bytes, int reps) {
#ifdef HAVE_CUDA
    CUDA_OK(cudaSetDevice(device));
    void *src, *dst;
    CUDA_OK(cudaMalloc(&src, bytes));
    CUDA_OK(cudaMalloc(&dst, bytes));
    CUDA_OK(cudaMemset(src, 1, bytes));
    cudaEvent_t a, b;
    CUDA_OK(cudaEventCreate(&a));
    CUDA_OK(cudaEventCreate(&b));
    CUDA_OK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));  // warm-up
    double *bw = xmalloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        CUDA_OK(cudaEventRecord(a, 0));
        CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
        CUDA_OK(cudaEventRecord(b, 0));
        CUDA_OK(cudaEventSynchronize(b));
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, a, b));
        bw[r] = 2.0 * (double)bytes / (ms * 1e-3);  // every byte is read once and written once
    }
    double m = median(bw, reps);
    free(bw);
    CUDA_OK(cudaEventDestroy(a));
    CUDA_OK(cudaEventDestroy(b));
    CUDA_OK(cudaFree(src));
    CUDA_OK(cudaFree(dst));
    return m;
#else
    (void)device, (void)bytes, (void)reps;
    fatal("copy_bandwidth: this build has no CUDA");
#endif
}

// The dense bf16 tensor-core peak of the GPU in FLOP/s (fp32 accumulation): NVIDIA's datasheet figure for the GPUs
// below, else SMs x the maximum clock x the dense bf16 FLOPs per SM per clock of its architecture (sm_80: 2048,
// sm_86/sm_89: 512, sm_90: 4096; these reproduce the datasheets at their boost clocks). *source says which.
static double bf16_peak(int device, const char *name, const char **source) {
    static const struct {
        const char *name_has;  // the first match counts: the specific variants before the generic ones
        double tflops;
    } sheet[] = {{"H200 NVL", 835.5}, {"H200", 989.4}, {"H100 NVL", 835.5}, {"H100 PCIe", 756.5},
                 {"H100", 989.4},     {"A100", 312.0}, {"L40S", 362.05},    {"L40", 181.05}};
    for (size_t i = 0; i < sizeof sheet / sizeof sheet[0]; i++)
        if (strstr(name, sheet[i].name_has)) {
            *source = "NVIDIA datasheet, dense bf16";
            return sheet[i].tflops * 1e12;
        }
#ifdef HAVE_CUDA
    int sms = 0, khz = 0, major = 0, minor = 0;
    CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    CUDA_OK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device));
    CUDA_OK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    CUDA_OK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    double per_clock = major >= 9 ? 4096 : major == 8 && minor == 0 ? 2048 : 512;
    *source = "computed: SMs x max clock x dense bf16 FLOPs per SM per clock";
    return (double)sms * (double)khz * 1e3 * per_clock;
#else
    (void)device;
    *source = "unknown";
    return 0;
#endif
}

// FLOPs of the engine's prefill of T tokens at start_pos 0: the products of every layer (2 per multiply-add:
// wq|wk|wv, wo, w1|w3, w2) for T rows, causal attention (q·k and p·v over keys 0..t for each query t: 2 * 2 * H * Dh
// per key), and the output product for the last row only (the engine computes only the last token's logits).
static double prefill_flops(const Config *c, int T) {
    const double D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim, F = c->ffn_hidden;
    const double per_row = 2.0 * (D * (H + 2 * Hkv) * Dh + H * Dh * D + D * 2 * F + F * D);
    const double keys = (double)T * (T + 1) / 2;  // sum over t of (t + 1)
    return c->n_layers * (per_row * T + 4.0 * H * Dh * keys) + 2.0 * D * c->vocab_size;
}

// Milliseconds of one engine_forward of T tokens at start_pos 0 (the cache rows it writes are its own).
static double time_prefill_ms(Engine *e, const int32_t *tokens, int T) {
    double t0 = now_seconds();
    engine_forward(e, tokens, T, 0);
    return 1e3 * (now_seconds() - t0);
}
#define DECODE_WARMUP 4  // decode steps before the timed ones (the first captures the CUDA graph)

// Milliseconds of n engine_decode steps at positions pos0..pos0+n-1 (cache rows before pos0 filled), one token per
// step synchronised, as generation needs the logits before the next step.
static double time_decode_ms(Engine *e, int32_t token, int pos0, int n) {
    double t0 = now_seconds();
    for (int i = 0; i < n; i++) engine_decode(e, token, pos0 + i);
    return 1e3 * (now_seconds() - t0);
}

static int parse_int(const char *flag, const char *s, int lo, int hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) usage_error(PROG, "%s: expected an integer in [%d, %d], got '%s'", flag, lo, hi, s);
    return (int)v;
}

static void usage(void) {
    printf("usage: bench --model DIR --json FILE [--runs N] [--decode-steps N] [--gemv-batch 0|2|4|8] [--no-pdl]\n"
           "             [--l2-fill N] [--attn-kernels] [--tp N] [--verbose]\n\n"
           "Measures the engine on GPU 0: device-to-device copy bandwidth, weight load time, prefill of 17 and\n"
           "512 tokens (and the 512-token prefill's TFLOP/s against the GPU's dense bf16 peak), decode tok/s at\n"
           "context 128 and 1024 (our GEMV and cuBLAS), peak GPU memory and host memory. Each figure is the\n"
           "median of --runs (default 5) runs after a warm-up. Writes a JSON object to FILE; bench/run.sh adds the\n"
           "peers (HF transformers, gpt-fast) and prints the table.\n\n"
           "Engine switches (each measured in bench/NOTES.md; recorded in the JSON under \"options\"):\n"
           "  --gemv-batch N   16-byte loads per row per lane in one step of the decode GEMV: 2, 4 or 8;\n"
           "                   0 (default) chooses per product shape\n"
           "  --no-pdl         no programmatic dependent launch (it is on by default on sm_90 and later)\n"
           "  --l2-fill N      blocks per SM that read each layer's wo into L2 beside decode attention\n"
           "                   (default 4; 0 turns it off)\n"
           "  --attn-kernels   a long prefill's attention through the split kernels too (by default from 64 tokens\n"
           "                   its two products are cuBLAS batched products on tensor cores)\n"
           "  --tp N           tensor parallelism over GPUs 0..N-1, one process each (as generate --tp N; N must split\n"
           "                   the heads, FFN rows and vocabulary, else exit 2); rank 0 times and writes the JSON.\n"
           "                   NCCL_NVLS_ENABLE is set to 0, whatever the environment held (no NVLink multicast)\n"
           "  --verbose        with --tp: say that NCCL_NVLS_ENABLE was set to 0, show every rank's messages\n");
}

int main(int argc, char **argv) {
    int tp_fd = -1;
    const int tp_rank = tp_rank_from_args(&argc, argv, &tp_fd);  // >= 0 in a rank process of --tp N
    const char *model_dir = NULL, *json_path = NULL;
    int runs = 5, steps = 32, tp = 1;
    bool verbose = false;
    EngineOptions o;
    engine_options_default(&o);
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},      {"json", required_argument, 0, 'j'},
                                         {"runs", required_argument, 0, 'r'},       {"decode-steps", required_argument, 0, 's'},
                                         {"gemv-batch", required_argument, 0, 'b'}, {"no-pdl", no_argument, 0, 'P'},
                                         {"l2-fill", required_argument, 0, 'l'},    {"tp", required_argument, 0, 'T'},
                                         {"attn-kernels", no_argument, 0, 'A'},     {"verbose", no_argument, 0, 'v'},          {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'j': json_path = optarg; break;
        case 'r': runs = parse_int("--runs", optarg, 1, 1000); break;
        case 's': steps = parse_int("--decode-steps", optarg, 1, 4096); break;
        case 'b':
            o.gemv_batch = parse_int("--gemv-batch", optarg, 0, 8);
            if (o.gemv_batch != 0 && o.gemv_batch != 2 && o.gemv_batch != 4 && o.gemv_batch != 8)
                usage_error(PROG, "--gemv-batch: expected 0, 2, 4 or 8, got '%s'", optarg);
            break;
        case 'P': o.pdl = false; break;
        case 'A': o.attn_kernels = true; break;
        case 'l': o.l2_fill_per_sm = parse_int("--l2-fill", optarg, 0, 64); break;
        case 'T': tp = parse_int("--tp", optarg, 1, 64); break;
        case 'v': verbose = true; break;
        case 'h': usage(); return 0;
        default:
            if (optopt) usage_error(PROG, "option -%c needs a value or is unknown", optopt);
            usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!model_dir || !json_path) usage_error(PROG, "--model DIR and --json FILE are required");
    if (!dir_exists(model_dir)) input_error(model_dir, "no such model directory");
    Checkpoint ck;
    checkpoint_open(&ck, model_dir);
    if (!ck.has_config) input_error(model_dir, "no params.json or config.json: a model directory is needed");
    if (tp > 1) {
        char why[256];
        if (!tp_check(&ck.cfg, tp, why, sizeof why)) input_error(model_dir, "--tp %d: %s", tp, why);
    }
    if (tp > 1 && tp_rank < 0) {  // the coordinator of the rank processes (engine_ranks.h); it never touches the GPU
        checkpoint_close(&ck);
        return tp_coordinate(tp, argc, argv, verbose);
    }
    const bool rank0 = tp_rank <= 0;  // times, prints and writes the JSON
    if (!engine_available()) {
        if (tp > 1) fatal("no CUDA device: rank %d of --tp %d needs GPU %d", tp_rank, tp, tp_rank);
        input_error(NULL, "no CUDA device: the bench needs an NVIDIA GPU");
    }

    json_t *out = json_object();
    // ---- the limit: what the memory system can move (rank 0's GPU)
    double copy_bw = 0;
    if (rank0) {
        copy_bw = copy_bandwidth(0, (size_t)1 << 30, 20);
        fprintf(stderr, "device-to-device copy: %.1f GB/s (read + write)\n", copy_bw / 1e9);
        json_object_set_new(out, "copy_bandwidth_GBps", json_real(copy_bw / 1e9));
    }

    o.max_seq_len = 1024 + (steps > DECODE_WARMUP ? steps : DECODE_WARMUP) + 1;  // as before for steps >= 4 (1057)
    o.max_prefill = 512;
    uint8_t nccl_id[NCCL_ID_BYTES];
    if (tp > 1) {
        tp_rank_receive(tp_fd, nccl_id, sizeof nccl_id);
        o.tp_size = tp, o.tp_rank = tp_rank, o.nccl_id = nccl_id, o.device = tp_rank, o.quiet = !rank0;
    }
    Engine *e = engine_create(&ck, &o);
    const EngineInfo *info = engine_info(e);
    json_object_set_new(out, "gpu", json_string(info->device_name));
    json_object_set_new(out, "load_s", json_real(info->load_s));
    json_object_set_new(out, "weight_bytes", json_integer((json_int_t)info->weight_bytes));
    json_object_set_new(out, "bytes_per_token", json_integer((json_int_t)info->bytes_per_token));
    json_t *jo = json_object();
    json_object_set_new(jo, "gemv_batch", json_integer(o.gemv_batch));
    json_object_set_new(jo, "pdl", json_boolean(o.pdl));
    json_object_set_new(jo, "pdl_in_effect", json_boolean(info->pdl));
    json_object_set_new(jo, "l2_fill_per_sm", json_integer(o.l2_fill_per_sm));
    json_object_set_new(jo, "attn_kernels", json_boolean(o.attn_kernels));
    json_object_set_new(jo, "tp", json_integer(tp));
    json_object_set_new(out, "options", jo);
    fprintf(stderr, "options: gemv batch %d%s, PDL %s, L2 fill %d blocks per SM, prefill attention %s\n",
            o.gemv_batch, o.gemv_batch ? "" : " (per shape)", info->pdl ? "on" : o.pdl ? "off (GPU below sm_90)" : "off",
            o.l2_fill_per_sm, o.attn_kernels ? "split kernels" : "cuBLAS from 64 tokens");
    // (with --tp N each rank reads its own share of the weights at the same time: the limit is set by one share)
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
        for (int w = 0; w < 2; w++) time_prefill_ms(e, toks, prefill_T[k]);
        for (int r = 0; r < runs; r++) v[r] = time_prefill_ms(e, toks, prefill_T[k]);
        double ms = median(v, runs);
        char key[64];
        snprintf(key, sizeof key, "prefill_%d_ms", prefill_T[k]);
        json_object_set_new(out, key, json_real(ms));
        fprintf(stderr, "prefill %4d tokens: %.2f ms\n", prefill_T[k], ms);
        if (prefill_T[k] == 512) {  // compute-bound: the achieved rate against the tensor cores' peak
            const char *source = "";
            // with --tp N, N GPUs share the work: N times one GPU's peak
            double flops = prefill_flops(&ck.cfg, 512), peak = tp * bf16_peak(0, info->device_name, &source);
            double tflops = flops / (ms * 1e-3) / 1e12;
            json_object_set_new(out, "prefill_512_flops", json_real(flops));
            json_object_set_new(out, "prefill_512_tflops", json_real(tflops));
            json_object_set_new(out, "bf16_peak_tflops", json_real(peak / 1e12));
            json_object_set_new(out, "bf16_peak_source", json_string(source));
            if (peak > 0) json_object_set_new(out, "prefill_512_of_peak", json_real(tflops * 1e12 / peak));
            fprintf(stderr, "prefill  512 tokens: %.2f TFLOP, %.1f TFLOP/s = %.1f%% of the bf16 peak %.1f TFLOP/s (%s)\n",
                    flops / 1e12, tflops, peak > 0 ? 100 * tflops * 1e12 / peak : 0.0, peak / 1e12, source);
        }
    }
    // ---- decode at two contexts, two product paths
    int ctx[2] = {128, 1024};
    const char *gemv_name[2] = {"ours", "cublas"};
    for (int g = 0; g < 2; g++) {
        engine_set_gemv(e, g == 0 ? ENGINE_GEMV_OURS : ENGINE_GEMV_CUBLAS);
        for (int k = 0; k < 2; k++) {
            engine_forward(e, ids, ctx[k], 0);                // cache rows 0..ctx-1
            time_decode_ms(e, ids[ctx[k]], ctx[k], DECODE_WARMUP);  // warm-up (and graph capture)
            for (int r = 0; r < runs; r++) v[r] = steps / (time_decode_ms(e, ids[ctx[k]], ctx[k], steps) * 1e-3);
            double tps = median(v, runs);
            char key[64];
            snprintf(key, sizeof key, "decode_%d_tok_s%s", ctx[k], g == 0 ? "" : "_cublas");
            json_object_set_new(out, key, json_real(tps));
            fprintf(stderr, "decode at context %4d (%s): %.1f tok/s = %.1f%% of the limit\n", ctx[k], gemv_name[g], tps,
                    100.0 * tps / limit);
        }
    }
    engine_set_gemv(e, ENGINE_GEMV_OURS);
    const size_t peak_gpu = engine_peak_gpu_bytes(e);
    json_object_set_new(out, "peak_gpu_bytes", json_integer((json_int_t)peak_gpu));
    // read once: the JSON and the line below give the same numbers
    const size_t rss = host_rss_bytes(), rss_anon = proc_status_bytes("RssAnon");
    json_object_set_new(out, "host_rss_bytes", json_integer((json_int_t)rss));
    json_object_set_new(out, "host_rss_anon_bytes", json_integer((json_int_t)rss_anon));
    json_object_set_new(out, "runs", json_integer(runs));
    json_object_set_new(out, "decode_steps", json_integer(steps));
    fprintf(stderr, "peak GPU memory %.2f GiB; host RSS %.2f GiB (anonymous %.2f GiB)\n", peak_gpu / 1073741824.0,
            rss / 1073741824.0, rss_anon / 1073741824.0);

    if (rank0) {
        char *partial = xasprintf("%s.partial", json_path);
        if (json_dump_file(out, partial, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) fatal("cannot write %s", partial);
        if (rename(partial, json_path) != 0) fatal("cannot rename %s", partial);
        free(partial);
    }
    json_decref(out);
    free(ids), free(v);
    engine_free(e);
    checkpoint_close(&ck);
    return 0;
}
