// generate.c: text generation with a KV cache, streaming the text as it is produced.
//
//   build/bin/generate --model DIR --prompt TEXT [-n N] [--temperature T] [--top-p P] [--seed S] [--chat]
//
// The prompt is prefilled in one pass, then one token at a time is decoded against the cache (Meta's
// Llama.generate for batch 1). On a GPU the engine of kernels/engine.h runs (fused kernels, one CUDA graph per
// token); with --device cpu, or without a GPU, the CPU reference of common/ref/model_cpu.h runs the same arithmetic.
// At the end (stderr): prefill ms, decode tok/s, GPU memory, host RSS.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/checkpoint.h"
#include "engine.h"
#include "ref/model_cpu.h"
#include "formats/npy.h"
#include "ref/sampler.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_convert.h"
#include "util.h"

static const char *PROG = "generate";

static void usage(void) {
    printf("usage: generate --model DIR --prompt TEXT [-n N] [--max-seq-len S] [--temperature T] [--top-p P]\n"
           "                [--seed S] [--chat] [--system TEXT] [--device auto|cuda|cpu] [--tokenizer FILE]\n"
           "                [--gemv ours|cublas] [--no-graphs] [--ids-out FILE] [--logits-out FILE.npy] [--quiet]\n\n"
           "Generates text from a Llama-3 model (a Meta directory or an HF one), streaming it to stdout.\n\n"
           "  -n N               tokens to generate at most (default 64); stops earlier at an end token\n"
           "  --max-seq-len S    positions of the KV cache: prompt + generated tokens (default 2048)\n"
           "  --temperature T    0 = greedy (argmax); default 0.6 (Meta's default)\n"
           "  --top-p P          nucleus sampling threshold in (0, 1] (default 0.9)\n"
           "  --seed S           random seed of the sampler (default 1): the same seed gives the same text\n"
           "  --chat             wrap the prompt in the Llama-3 chat format (Instruct models) and stop at <|eot_id|>\n"
           "  --system TEXT      a system message for --chat\n"
           "  --device D         auto (the GPU engine when a GPU is there), cuda, or cpu (the reference)\n"
           "  --tokenizer FILE   tokenizer.model to use instead of the one beside the model\n"
           "  --gemv G           decode products: ours (default) or cublas (for comparison)\n"
           "  --no-graphs        decode without CUDA graphs\n"
           "  --tp N             tensor parallelism: only 1 in this build\n"
           "  --ids-out FILE     write the generated token ids (one line, space separated)\n"
           "  --logits-out FILE  write the fp32 logits of the last prompt token as .npy [V]\n"
           "  --quiet            only the generated text on stdout, no statistics\n\n"
           "Exit status: 0 on success, 2 on bad input, 1 on an internal or GPU failure.\n");
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

int main(int argc, char **argv) {
    const char *model_dir = NULL, *prompt = NULL, *tokenizer_path = NULL, *device = "auto", *system_msg = NULL;
    const char *ids_out = NULL, *logits_out = NULL;
    long n_new = 64, max_seq_len = 2048, tp = 1;
    unsigned long long seed = 1;
    double temperature = 0.6, top_p = 0.9;
    bool chat = false, quiet = false, graphs = true;
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
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
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
        case 'h': usage(); return 0;
        default:
            if (optopt) usage_error(PROG, "option -%c needs a value or is unknown", optopt);
            usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (!model_dir) usage_error(PROG, "--model DIR is required");
    if (!prompt) usage_error(PROG, "--prompt TEXT is required");
    if (system_msg && !chat) usage_error(PROG, "--system needs --chat");
    if (tp != 1) input_error(NULL, "--tp %ld: tensor parallelism is not implemented in this build; use --tp 1", tp);
    bool use_gpu;
    if (strcmp(device, "auto") == 0) use_gpu = engine_available();
    else if (strcmp(device, "cuda") == 0) {
        if (!engine_available())
            input_error(NULL, "--device cuda: no CUDA device is usable here (no GPU, no driver, or a build without nvcc); use --device cpu");
        use_gpu = true;
    } else if (strcmp(device, "cpu") == 0) use_gpu = false;
    else usage_error(PROG, "--device: expected auto, cuda or cpu, got '%s'", device);
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
    const int V = ck.cfg.vocab_size;
    char *converted = NULL;
    const char *tok_path = tokenizer_path ? tokenizer_path : ck.tokenizer_path;
    if (!tok_path && ck.hf_tokenizer_json) {
        converted = xasprintf("/tmp/generate-%d.tokenizer.model", (int)getpid());
        tokenizer_json_to_model(ck.hf_tokenizer_json, converted);
        tok_path = converted;
    }
    if (!tok_path) input_error(model_dir, "no tokenizer.model beside the weights (pass --tokenizer FILE)");
    Tokenizer tok;
    tokenizer_init(&tok, tok_path);
    if (converted) unlink(converted), free(converted);
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
        if (!quiet) fprintf(stderr, "note: -n %ld cut to %ld to fit --max-seq-len %ld\n", n_new, max_seq_len - T, max_seq_len);
        n_new = max_seq_len - T;
    }

    // ---- backend
    Engine *eng = NULL;
    CpuModel cpu;
    float *logits_buf = xmalloc((size_t)V * sizeof(float));
    if (use_gpu) {
        EngineOptions o;
        engine_options_default(&o);
        o.max_seq_len = (int)max_seq_len;
        o.use_graphs = graphs;
        o.gemv = gemv;
        o.quiet = quiet;
        eng = engine_create(&ck, &o);
    } else {
        model_cpu_init(&cpu, &ck, (int)max_seq_len, PREC_BF16);
    }
    Sampler sampler;
    sampler_init(&sampler, V, (float)temperature, (float)top_p, seed);

    // ---- prefill
    if (!quiet && !chat) fputs(prompt, stdout), fflush(stdout);
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
        int32_t next = sampler_sample(&sampler, logits);
        out_ids[n_out++] = next;
        if (tokenizer_is_stop_token(&tok, next)) break;
        size_t len;
        const char *text = token_stream_push(&ts, &tok, next, &len);
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        if (i + 1 == n_new) break;  // the last token needs no forward pass
        int pos = T + i;
        if (eng) logits = engine_decode(eng, next, pos);
        else {
            model_cpu_forward(&cpu, &next, 1, pos, logits_buf, false);
            logits = logits_buf;
        }
    }
    double decode_s = now_seconds() - t1;
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
        fprintf(stderr, "\n%s | prompt %d tokens | generated %d\n", eng ? engine_info(eng)->device_name : "CPU reference",
                T, n_out);
        fprintf(stderr, "prefill: %.2f ms (%d tokens)\n", 1e3 * prefill_s, T);
        if (steps > 0)
            fprintf(stderr, "decode:  %.2f tok/s (%d steps, %.2f ms each)\n", steps / decode_s, steps,
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
    return 0;
}
