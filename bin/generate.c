// generate.c: text generation with a KV cache, streaming the text as it is produced.
//
//   build/bin/generate [--model DIR] --prompt TEXT [-n N] [--temperature T] [--top-p P] [--seed S] [--chat]
//
// The prompt is prefilled in one pass, then one token at a time is decoded against the cache (Meta's
// Llama.generate for batch 1). On a GPU the engine of kernels/engine.h runs (fused kernels, one CUDA graph per
// token); with --device cpu, or without a GPU, the CPU reference of common/ref/model_cpu.h runs the same arithmetic.
// The engine has no mixture-of-experts path: a MoE model (MiniMind's, Mixtral's, the MoE demo) generates with the
// CPU reference under --device auto (a line on stderr says so) and is refused with --device cuda.
// At the end (stderr): prefill ms, decode tok/s, GPU memory, host RSS. Logits that are not finite (corrupt weights
// give NaN) stop generation with one line and exit 1: no token is sampled from them.
//
// --tp N (N > 1): tensor parallelism over N GPUs, one process per GPU (kernels/engine_ranks.h): this process checks
// the input, makes the NCCL id and starts N copies of itself (ranks 0..N-1, rank r on GPU r), which load their
// shares of the weights and run the same engine calls; rank 0 samples each token and broadcasts it (or the stop) to
// the others, and prints. A rank that fails ends them all with one line naming it.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/checkpoint.h"
#include "engine.h"
#include "engine_ranks.h"
#include "kernels.h"
#include "ref/model_cpu.h"
#include "formats/npy.h"
#include "ref/sampler.h"
#include "tokenizer/tokenizer.h"
#include "tp.h"
#include "util.h"

static const char *PROG = "generate";

static void usage(void) {
    printf("usage: generate [--model DIR] --prompt TEXT [-n N] [--max-seq-len S] [--temperature T] [--top-p P]\n"
           "                [--seed S] [--chat] [--system TEXT] [--device auto|cuda|cpu] [--tokenizer FILE]\n"
           "                [--gemv ours|cublas] [--no-graphs] [--tp N] [--ids-out FILE] [--logits-out FILE.npy]\n"
           "                [--quiet] [--verbose] [--verify-checksums]\n\n"
           "Generates text from a Llama-3 model (a Meta directory or an HF one), streaming it to stdout.\n\n"
           "  --model DIR        default: the model `make demo` prepares (build/models/llama3-tiny-trained)\n"
           "  -n N               tokens to generate at most (default 64); stops earlier at an end token\n"
           "  --max-seq-len S    positions of the KV cache: prompt + generated tokens (default 2048)\n"
           "  --temperature T    0 = greedy (argmax); default 0.6 (Meta's default)\n"
           "  --top-p P          nucleus sampling threshold in (0, 1] (default 0.9)\n"
           "  --seed S           random seed of the sampler (default 1): the same seed gives the same text\n"
           "  --chat             wrap the prompt in the Llama-3 chat format (Instruct models) and stop at <|eot_id|>\n"
           "  --system TEXT      a system message for --chat\n"
           "  --device D         auto (the GPU engine when a GPU is there), cuda, or cpu (the reference); a mixture-of-\n"
           "                     experts model runs on the CPU reference (the engine has no MoE path; cuda refuses it)\n"
           "  --tokenizer FILE   tokenizer.model or tokenizer.json to use instead of the one beside the model\n"
           "  --gemv G           decode products: ours (default) or cublas (for comparison)\n"
           "  --no-graphs        decode without CUDA graphs\n"
           "  --tp N             tensor parallelism over N GPUs (default 1): one process per GPU, each holding its\n"
           "                     share of the weights (whole heads, FFN rows, vocabulary rows), talking over NCCL;\n"
           "                     N must split the query heads, the kv heads (or be a multiple of them: replicated),\n"
           "                     the FFN rows and the vocabulary, else exit 2. NCCL_NVLS_ENABLE is set to 0 for\n"
           "                     NCCL, whatever the environment held (NVLink multicast is never used); libnccl.so.2\n"
           "                     is found through the usual library path (LD_LIBRARY_PATH)\n"
           "  --ids-out FILE     write the generated token ids (one line, space separated)\n"
           "  --logits-out FILE  write the fp32 logits of the last prompt token as .npy [V]\n"
           "  --quiet            only the generated text on stdout, no statistics\n"
           "  --verbose          with --tp: say that NCCL_NVLS_ENABLE was set to 0, show every rank's messages\n"
           "  --verify-checksums first compare the CRC-32 of every zip entry of the checkpoint with the one the zip\n"
           "                     states (reads every byte: about 0.3 s of CPU per GB; off by default)\n\n"
           "Exit status: 0 on success, 2 on bad input (a corrupt checkpoint with --verify-checksums), 1 on an internal\n"
           "or GPU failure, or when the logits are not finite.\n");
}

// The first index at which logits are not finite, or -1. NaN (corrupt weights, a broken kernel) must stop generation:
// a sampler given NaN picks some token, and "!!!!!!!!" would look like the model's output.
static int first_non_finite(const float *logits, int V) {
    bool bad = false;
    for (int i = 0; i < V; i++) bad |= !isfinite(logits[i]);  // no early exit: the loop vectorises
    if (!bad) return -1;
    int i = 0;
    while (isfinite(logits[i])) i++;
    return i;
}

static long parse_long(const char *flag, const char *s, long lo, long hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) usage_error(PROG, "%s: expected an integer in [%ld, %ld], got '%s'", flag, lo, hi, s);
    return v;
}
static double parse_double(const char *flag, const char *s, double lo, double hi) {
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end || !(v >= lo && v <= hi)) usage_error(PROG, "%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, s);
    return v;
}

// Ranks 1..N-1 of --tp N: the same engine calls as rank 0, with the tokens rank 0 chose.
static void follow_rank0(Engine *e, const int32_t *prompt_ids, int T) {
    engine_forward(e, prompt_ids, T, 0);
    for (int pos = T;; pos++) {
        int32_t next = engine_tp_broadcast(e, 0);
        if (next < 0) return;
        engine_decode(e, next, pos);
    }
}

int main(int argc, char **argv) {
    int tp_fd = -1;
    const int tp_rank = tp_rank_from_args(&argc, argv, &tp_fd);  // >= 0 in a rank process of --tp N
    const char *model_dir = NULL, *prompt = NULL, *tokenizer_path = NULL, *device = "auto", *system_msg = NULL;
    const char *ids_out = NULL, *logits_out = NULL;
    long n_new = 64, max_seq_len = 2048, tp = 1;
    unsigned long long seed = 1;
    double temperature = 0.6, top_p = 0.9;
    bool chat = false, quiet = false, graphs = true, verbose = false, verify = false;
    EngineGemv gemv = ENGINE_GEMV_OURS;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"prompt", required_argument, 0, 'p'},
        {"max-seq-len", required_argument, 0, 'S'}, {"temperature", required_argument, 0, 't'},
        {"top-p", required_argument, 0, 'P'},       {"seed", required_argument, 0, 's'},
        {"chat", no_argument, 0, 'c'},              {"system", required_argument, 0, 'y'},
        {"device", required_argument, 0, 'd'},      {"tokenizer", required_argument, 0, 'k'},
        {"gemv", required_argument, 0, 'g'},        {"no-graphs", no_argument, 0, 'G'},
        {"tp", required_argument, 0, 'T'},          {"ids-out", required_argument, 0, 'i'},
        {"logits-out", required_argument, 0, 'l'},  {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},           {"help", no_argument, 0, 'h'},
        {"verify-checksums", no_argument, 0, 'V'},  {0, 0, 0, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': n_new = parse_long("-n", optarg, 0, 1000000); break;
        case 'S': max_seq_len = parse_long("--max-seq-len", optarg, 1, 1 << 24); break;
        case 't': temperature = parse_double("--temperature", optarg, 0.0, 100.0); break;
        case 'P': top_p = parse_double("--top-p", optarg, 1e-9, 1.0); break;
        case 's': {
            char *end;
            seed = strtoull(optarg, &end, 10);
            if (*optarg == 0 || *end || *optarg == '-') usage_error(PROG, "--seed: expected an unsigned integer, got '%s'", optarg);
            break;
        }
        case 'c': chat = true; break;
        case 'y': system_msg = optarg; break;
        case 'd': device = optarg; break;
        case 'k': tokenizer_path = optarg; break;
        case 'g':
            if (strcmp(optarg, "ours") == 0) gemv = ENGINE_GEMV_OURS;
            else if (strcmp(optarg, "cublas") == 0) gemv = ENGINE_GEMV_CUBLAS;
            else usage_error(PROG, "--gemv: expected ours or cublas, got '%s'", optarg);
            break;
        case 'G': graphs = false; break;
        case 'T': tp = parse_long("--tp", optarg, 1, 64); break;
        case 'i': ids_out = optarg; break;
        case 'l': logits_out = optarg; break;
        case 'q': quiet = true; break;
        case 'v': verbose = true; break;
        case 'V': verify = true; break;
        case 'h': usage(); return 0;
        default:
            if (optopt) usage_error(PROG, "option -%c needs a value or is unknown", optopt);
            usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    char *demo_model = model_dir ? NULL : default_model_dir();  // like the chapters
    if (!model_dir) model_dir = demo_model;
    if (!prompt) usage_error(PROG, "--prompt TEXT is required");
    if (system_msg && !chat) usage_error(PROG, "--system needs --chat");
    if (tp > 1 && strcmp(device, "cpu") == 0)
        usage_error(PROG, "--tp %ld runs one process per GPU: it needs --device cuda or auto", tp);
    if (strcmp(device, "auto") != 0 && strcmp(device, "cuda") != 0 && strcmp(device, "cpu") != 0)
        usage_error(PROG, "--device: expected auto, cuda or cpu, got '%s'", device);
    // the process that prints: the only one, or rank 0 of --tp N (not the coordinator, nor the other ranks)
    const bool prints = tp == 1 || tp_rank == 0;
    if (utf8_first_invalid(prompt, strlen(prompt)) >= 0)
        input_error("--prompt", "invalid UTF-8 at byte %lld", (long long)utf8_first_invalid(prompt, strlen(prompt)));
    if (system_msg && utf8_first_invalid(system_msg, strlen(system_msg)) >= 0)
        input_error("--system", "invalid UTF-8 at byte %lld", (long long)utf8_first_invalid(system_msg, strlen(system_msg)));

    // ---- model and tokenizer
    if (!dir_exists(model_dir) && !file_exists(model_dir))
        input_error(model_dir, "no such model directory (run `make models` for the demo model)");
    Checkpoint ck;
    checkpoint_open(&ck, model_dir);
    if (!ck.has_config) input_error(model_dir, "no params.json or config.json: a model directory is needed");
    checkpoint_check_against_config(&ck);
    if (verify && tp_rank < 0) checkpoint_verify_or_exit(&ck, quiet);  // --tp N: the coordinator checks, its ranks need not
    const int V = ck.cfg.vocab_size;
    // The engine has no mixture-of-experts path: such a model generates on the CPU reference (below)
    const bool moe = config_is_moe(&ck.cfg);
    if (moe && (strcmp(device, "cuda") == 0 || tp > 1))
        input_error(model_dir, "a mixture-of-experts model (n_routed_experts %d): the GPU engine has no MoE path; use "
                               "--device cpu (chapter 20 traces its CUDA MoE path)", ck.cfg.n_routed_experts);
    // tokenizer.model, else tokenizer.json (Llama 3's, or a byte-level BPE such as MiniMind's)
    const char *tok_path = tokenizer_path ? tokenizer_path : ck.tokenizer_path ? ck.tokenizer_path : ck.hf_tokenizer_json;
    if (!tok_path) input_error(model_dir, "no tokenizer.model or tokenizer.json beside the weights (pass --tokenizer FILE)");
    Tokenizer tok;
    tokenizer_load(&tok, tok_path);
    if (tok.vocab_size > V)
        input_error(tok_path, "the tokenizer has %d tokens but the model's vocab_size is %d", tok.vocab_size, V);

    int32_t *prompt_ids;
    size_t n_prompt;
    if (chat) {
        ChatMessage msgs[2];
        size_t n_msgs = 0;
        if (system_msg) msgs[n_msgs++] = (ChatMessage){"system", system_msg};
        msgs[n_msgs++] = (ChatMessage){"user", prompt};
        tokenizer_encode_chat(&tok, msgs, n_msgs, &prompt_ids, &n_prompt);
    } else {
        tokenizer_encode(&tok, prompt, strlen(prompt), true, false, &prompt_ids, &n_prompt);
    }
    const int T = (int)n_prompt;
    if (T >= max_seq_len)
        input_error("--prompt", "%d tokens do not leave room to generate within --max-seq-len %ld", T, max_seq_len);
    if (T + n_new > max_seq_len) {
        if (!quiet && prints)
            fprintf(stderr, "note: -n %ld cut to %ld to fit --max-seq-len %ld\n", n_new, max_seq_len - T, max_seq_len);
        n_new = max_seq_len - T;
    }

    // ---- --tp N: this process coordinates N rank processes, which run everything below (engine_ranks.h)
    if (tp > 1) {
        char why[256];
        if (!tp_check(&ck.cfg, (int)tp, why, sizeof why)) input_error(model_dir, "--tp %ld: %s", tp, why);
    }
    if (tp > 1 && tp_rank < 0) {
        free(prompt_ids);
        tokenizer_free(&tok);
        checkpoint_close(&ck);
        free(demo_model);
        return tp_coordinate((int)tp, argc, argv, verbose);
    }

    // ---- backend
    bool use_gpu;
    if (tp > 1) use_gpu = true;  // a rank of --tp N: GPU tp_rank
    else if (strcmp(device, "auto") == 0) {
        use_gpu = engine_available() && !moe;
        if (moe && engine_available() && !quiet)
            fprintf(stderr, "note: a mixture-of-experts model: the GPU engine has no MoE path, the CPU reference generates\n");
    }
    else if (strcmp(device, "cuda") == 0) {
        if (!engine_available())
            input_error(NULL, "--device cuda: no CUDA device is usable here (no GPU, no driver, or a build without nvcc); use --device cpu");
        use_gpu = true;
    } else use_gpu = false;
    Engine *eng = NULL;
    CpuModel cpu;
    float *logits_buf = xmalloc((size_t)V * sizeof(float));
    uint8_t nccl_id[NCCL_ID_BYTES];
    if (use_gpu) {
        EngineOptions o;
        engine_options_default(&o);
        o.max_seq_len = (int)max_seq_len;
        o.use_graphs = graphs;
        o.gemv = gemv;
        o.quiet = quiet || !prints;
        if (tp > 1) {
            tp_rank_receive(tp_fd, nccl_id, sizeof nccl_id);
            o.tp_size = (int)tp, o.tp_rank = tp_rank, o.nccl_id = nccl_id, o.device = tp_rank;
        }
        eng = engine_create(&ck, &o);
        if (!prints) {  // ranks 1..N-1 of --tp N
            follow_rank0(eng, prompt_ids, T);
            engine_free(eng);
            free(prompt_ids), free(logits_buf);
            tokenizer_free(&tok);
            checkpoint_close(&ck);
            free(demo_model);
            return 0;
        }
    } else {
        model_cpu_init(&cpu, &ck, (int)max_seq_len, PREC_BF16);
    }
    Sampler sampler;
    sampler_init(&sampler, V, (float)temperature, (float)top_p, seed);

    // ---- prefill
    if (!quiet && !chat) fputs(prompt, stdout), fflush(stdout);  // (here only the printing process runs)
    double t0 = now_seconds();
    const float *logits;
    if (eng) logits = engine_forward(eng, prompt_ids, T, 0);
    else {
        model_cpu_forward(&cpu, prompt_ids, T, 0, logits_buf, false);
        logits = logits_buf;
    }
    double prefill_s = now_seconds() - t0;
    if (logits_out) {
        int64_t shape[1] = {V};
        char *partial = xasprintf("%s.partial", logits_out);
        npy_write_f32(partial, logits, shape, 1);
        if (rename(partial, logits_out) != 0) fatal("cannot rename %s to %s", partial, logits_out);
        free(partial);
    }

    // ---- decode
    int32_t *out_ids = xmalloc((size_t)(n_new + 1) * sizeof(int32_t));
    int n_out = 0;
    TokenStream ts;
    token_stream_init(&ts);
    double t1 = now_seconds();
    for (int i = 0; i < n_new; i++) {
        int bad = first_non_finite(logits, V);
        if (bad >= 0) {
            if (eng && tp > 1) engine_tp_broadcast(eng, -1);  // the other ranks stop
            fputc('\n', stdout);                              // ends the streamed text
            fflush(stdout);
            fprintf(stderr, "error: the logits at position %d are not finite (%s at index %d): the weights or the computation "
                            "are broken; nothing was sampled from them (check the checkpoint with --verify-checksums)\n",
                    T - 1 + i, isnan(logits[bad]) ? "NaN" : "inf", bad);
            exit(1);
        }
        int32_t next = sampler_sample(&sampler, logits);
        out_ids[n_out++] = next;
        if (tokenizer_is_stop_token(&tok, next)) break;
        size_t len;
        const char *text = token_stream_push(&ts, &tok, next, &len);
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        if (i + 1 == n_new) break;  // the last token needs no forward pass
        int pos = T + i;
        if (eng) {
            if (tp > 1) engine_tp_broadcast(eng, next);  // the other ranks decode the same token
            logits = engine_decode(eng, next, pos);
        }
        else {
            model_cpu_forward(&cpu, &next, 1, pos, logits_buf, false);
            logits = logits_buf;
        }
    }
    double decode_s = now_seconds() - t1;
    if (eng && tp > 1) engine_tp_broadcast(eng, -1);  // the other ranks stop
    size_t len;
    const char *rest = token_stream_flush(&ts, &len);
    fwrite(rest, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);

    if (ids_out) {
        AtomicFile af;
        atomic_open(&af, ids_out);
        for (int i = 0; i < n_out; i++) fprintf(af.f, "%s%d", i ? " " : "", out_ids[i]);
        fputc('\n', af.f);
        atomic_commit(&af);
    }
    if (!quiet) {
        // decode steps that ran a forward pass: every token but the last (and not after a stop token)
        int steps = n_out > 0 ? n_out - 1 : 0;
        if (tp > 1) fprintf(stderr, "\n%s x %ld (tensor parallelism, rank 0's figures below)", engine_info(eng)->device_name, tp);
        else fprintf(stderr, "\n%s", eng ? engine_info(eng)->device_name : "CPU reference");
        fprintf(stderr, " | prompt %d token%s | generated %d\n", T, plural(T), n_out);
        fprintf(stderr, "prefill: %.2f ms (%d token%s)\n", 1e3 * prefill_s, T, plural(T));
        if (steps > 0)
            fprintf(stderr, "decode:  %.2f tok/s (%d step%s, %.2f ms each)\n", steps / decode_s, steps, plural(steps),
                    1e3 * decode_s / steps);
        if (eng) {
            const EngineInfo *in = engine_info(eng);
            fprintf(stderr, "GPU memory: %.2f GiB in use (weights %.2f GiB, KV cache %.2f GiB, activations %.2f GiB); "
                            "weights loaded in %.2f s\n",
                    (double)engine_peak_gpu_bytes(eng) / 1073741824.0, (double)in->weight_bytes / 1073741824.0,
                    (double)in->cache_bytes / 1073741824.0,
                    (double)(in->state_bytes - in->cache_bytes) / 1073741824.0, in->load_s);
        }
        fprintf(stderr, "host RSS: %.2f GiB (the mapped checkpoint pages included)\n",
                (double)host_rss_bytes() / 1073741824.0);
    }
    free(out_ids);
    free(prompt_ids);
    free(logits_buf);
    sampler_free(&sampler);
    if (eng) engine_free(eng);
    else model_cpu_free(&cpu);
    tokenizer_free(&tok);
    checkpoint_close(&ck);
    free(demo_model);
    return 0;
}
