// step.c: the shared frame of every chapter program (see step.h).
#include "step.h"

#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "draw/figures.h"
#include "kernels.h"
#include "tp.h"

// ---- where the MoE demo model lives ----------------------------------------------------------------------------------
char *step_moe_demo_model(void) {
    char *root = repo_root();
    char *p = path_join(root, "build/models/llama3-tiny-moe"), *params = path_join(p, "params.json");
    free(root);
    if (!file_exists(params) && dir_exists("build/models/llama3-tiny-moe"))  // a build in build/asan/: from the cwd
        free(p), p = xstrdup("build/models/llama3-tiny-moe");
    free(params);
    return p;
}

// ---- command line -----------------------------------------------------------------------------------------------------
static void print_help(const Chapter *c) {
    printf("usage: %s [--model DIR] [--prompt TEXT] [--out DIR] [--device auto|cuda|cpu] [--layer L] [--head H]\n"
           "          [--precision bf16|fp32] [--lang en|zh] [--tokenizer FILE] [--tokens ID,ID,...] [--no-compare]\n"
           "          [--quiet] [--verify-checksums] [--force]%s\n\n"
           "%s\n%s\n\n"
           "  --model DIR        a Meta directory (params.json, consolidated.NN.pth, tokenizer.model) or an HF one\n"
           "                     (config.json, *.safetensors, tokenizer.json); default: the model `make demo` prepares\n"
           "  --prompt TEXT      default: the tutorial's \"%s\"\n"
           "  --out DIR          trace directory (default: trace); tensors go to OUT/%s/*.npy, the index to\n"
           "                     OUT/trace.json\n"
           "  --device D         auto (CUDA when a GPU is there), cuda (fail without one), cpu (reference alone)\n"
           "  --layer L          the layer chapters 03-13 look at (default 0)\n"
           "  --head H           the query head chapters 04-10 follow (default 0; its kv head is H / (H/Hkv))\n"
           "  --precision P      bf16 (Meta's reference, default) or fp32 (everything upcast: the cost of bf16)\n"
           "  --lang L           language of the explanations: en (default) or zh\n"
           "  --tokenizer FILE   tokenizer.model or tokenizer.json to use instead of the one beside the model\n"
           "  --tokens ID,ID,... token ids instead of --prompt (include the BOS id yourself): for a model whose\n"
           "                     tokenizer is not read here (Mixtral's SentencePiece); pieces show as #N when\n"
           "                     there is no tokenizer\n"
           "  --no-compare       run one path alone and compare nothing. With the CUDA path the CPU reference does not\n"
           "                     run at all: each op is fed by the CUDA op before it and the trace holds the CUDA values\n"
           "                     under the same names (the fast way through a large model). With --device cpu the CPU\n"
           "                     reference runs without its self-checks. The verdict says \"not compared\", never OK.\n"
           "  --quiet            print only the verdict lines\n%s"
           "  --verify-checksums first compare the CRC-32 of every zip entry of the checkpoint with the one the zip\n"
           "                     states (reads every byte: about 0.3 s of CPU per GB; off by default)\n"
           "  --force            write into a trace directory that holds chapters of another run (another model,\n"
           "                     prompt, layer, head, precision or device); refused without it (exit 2), since the\n"
           "                     trace would mix runs (export-notebook then refuses it without --allow-mixed)\n\n"
           "A value that is not finite (NaN, or an infinity where the causal mask puts none) stops the chapter with one\n"
           "line naming the tensor, the layer and the index, before anything is printed or drawn from it.\n\n"
           "Exit status: 0 when every comparison passed (with --no-compare: when the chapter ran), 1 when one failed,\n"
           "a value was not finite, or on an error, 2 on bad input.\n",
           c->id, c->takes_tp ? " [--tp N]" : "", c->title_en, c->title_zh, TUTORIAL_PROMPT, c->id,
           c->takes_tp ? "  --tp N             the number of ranks the layer and the logits are split over (see below)\n"
                       : "");
    if (c->usage_extra) printf("\n%s\n", c->usage_extra);
}

static void parse_args(Step *s, int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"prompt", required_argument, 0, 'p'},
        {"out", required_argument, 0, 'o'},       {"device", required_argument, 0, 'd'},
        {"layer", required_argument, 0, 'l'},     {"head", required_argument, 0, 'H'},
        {"precision", required_argument, 0, 'P'}, {"lang", required_argument, 0, 'L'},
        {"tokenizer", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"no-compare", no_argument, 0, 'N'},      {"help", no_argument, 0, 'h'},
        {"tokens", required_argument, 0, 'k'}, {"tp", required_argument, 0, 'R'},
        {"verify-checksums", no_argument, 0, 'V'}, {"force", no_argument, 0, 'F'},
        {0, 0, 0, 0},
    };
    const char *prog = s->id;
    const char *device = "auto";
    bool no_compare = false;
    char *end;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': s->model_dir = xstrdup(optarg); break;
        case 'p': s->prompt = xstrdup(optarg); break;
        case 'o': s->out_dir = xstrdup(optarg); break;
        case 'd': device = optarg; break;
        case 'l':
            s->layer = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || s->layer < 0) usage_error(prog, "--layer: expected a layer index >= 0, got '%s'", optarg);
            break;
        case 'H':
            s->head = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || s->head < 0) usage_error(prog, "--head: expected a head index >= 0, got '%s'", optarg);
            break;
        case 'P':
            if (!precision_from_name(optarg, &s->prec)) usage_error(prog, "--precision: expected bf16 or fp32, got '%s'", optarg);
            break;
        case 'L':
            if (strcmp(optarg, "en") == 0) s->lang = LANG_EN;
            else if (strcmp(optarg, "zh") == 0) s->lang = LANG_ZH;
            else usage_error(prog, "--lang: expected en or zh, got '%s'", optarg);
            break;
        case 't': s->tokenizer_path = xstrdup(optarg); break;
        case 'k': s->tokens_arg = xstrdup(optarg); break;
        case 'q': s->quiet = true; break;
        case 'N': no_compare = true; break;
        case 'R':
            if (!s->chapter->takes_tp) usage_error(prog, "unknown option '--tp' (18_tensor_parallel takes it)");
            s->tp = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || s->tp < 1) usage_error(prog, "--tp: expected a number of ranks >= 1, got '%s'", optarg);
            break;
        case 'V': s->verify = true; break;
        case 'F': s->force = true; break;
        case 'h': print_help(s->chapter); exit(0);
        default:
            if (optopt && strncmp(argv[optind - 1], "--", 2) == 0)  // a long option given a value it takes none of, or none
                usage_error(prog, "option '%s' takes no value, or needs one", argv[optind - 1]);
            if (optopt) usage_error(prog, "option -%c needs a value or is unknown", optopt);
            usage_error(prog, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error(prog, "unexpected argument '%s'", argv[optind]);
    compare_set_chinese(s->lang == LANG_ZH);  // the verdict lines in the chapter's language
    if (strcmp(device, "auto") == 0) s->cuda = cuda_device_count() > 0;
    else if (strcmp(device, "cuda") == 0) {
        if (cuda_device_count() == 0)
            input_error(NULL, "--device cuda: no CUDA device is usable here (no GPU, no driver, or a build without "
                              "nvcc); use --device cpu");
        s->cuda = true;
    } else if (strcmp(device, "cpu") == 0) s->cuda = false, s->cpu_asked = true;
    else usage_error(prog, "--device: expected auto, cuda or cpu, got '%s'", device);
    s->compare = !no_compare;
    s->cpu = s->compare || !s->cuda;  // --no-compare on CUDA: the CUDA path alone
    if (!s->model_dir) s->model_dir = default_model_dir();
    if (s->tokens_arg && s->prompt) usage_error(prog, "--tokens and --prompt: give one of them");
    if (!s->prompt) s->prompt = xstrdup(s->tokens_arg ? "" : TUTORIAL_PROMPT);
    if (!s->out_dir) s->out_dir = xstrdup("trace");
}

// ---- model and prompt ---------------------------------------------------------------------------------------------------
// --tokens "128000,1820,4320": ids separated by commas (spaces allowed), each in 0..vocab_size-1.
static void parse_tokens(Step *s) {
    size_t cap = 16, n = 0;
    s->tokens = xmalloc(cap * sizeof(int32_t));
    const char *p = s->tokens_arg;
    while (*p) {
        while (*p == ' ') p++;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= s->cfg->vocab_size)
            input_error("--tokens", "expected token ids 0..%d separated by commas, found '%.20s'", s->cfg->vocab_size - 1, p);
        if (n == cap) s->tokens = xrealloc(s->tokens, (cap *= 2) * sizeof(int32_t));
        s->tokens[n++] = (int32_t)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) input_error("--tokens", "expected ',' between ids, found '%.20s'", p);
    }
    if (n == 0) input_error("--tokens", "no token id given");
    s->T = (int)n;
}

static void open_checkpoint(Step *s) {
    if (!dir_exists(s->model_dir) && !file_exists(s->model_dir))
        input_error(s->model_dir, "no such model directory (run `make models` for the demo model, or pass --model "
                                  "a Meta-Llama-3-8B download)");
    checkpoint_open(&s->ck, s->model_dir);
    if (!s->ck.has_config) input_error(s->model_dir, "no params.json or config.json: a model directory is needed");
    checkpoint_check_against_config(&s->ck);
    if (s->verify) checkpoint_verify_or_exit(&s->ck, s->quiet);
    s->cfg = &s->ck.cfg;
}

// Trace the model at dir instead of the one asked for (a chapter that needs the other kind of feed-forward), saying
// why in note (recorded in trace.json, naming the model as the repository does: no checkout's own path). Its own
// tokenizer then encodes the prompt.
static void trace_instead(Step *s, char *dir, char *note) {
    char *params = path_join(dir, "params.json");
    if (!file_exists(params))
        input_error(dir, step_text(s, "%s; that model is missing (run `make models`)", "%s；该模型不存在（运行 `make models`）"),
                    note);
    free(params);
    s->model_note = note;
    checkpoint_close(&s->ck);
    free(s->model_dir), free(s->tokenizer_path);
    s->model_dir = dir, s->tokenizer_path = NULL;
    open_checkpoint(s);
    if (s->layer >= s->cfg->n_layers) s->layer = s->cfg->n_layers - 1;  // --layer was meant for the other model
    if (s->head >= s->cfg->n_heads) s->head = s->cfg->n_heads - 1;
}

static void load_model(Step *s) {
    open_checkpoint(s);
    // A chapter about the mixture of experts on a dense model traces the MoE demo model, so that the walkthrough
    // always shows routing; a chapter that splits the dense FFN (17, 18) on a MoE model traces the dense demo model.
    if (s->chapter->needs_moe && !config_is_moe(s->cfg))
        trace_instead(s, step_moe_demo_model(),
                      xasprintf(step_text(s, "%s has a dense SwiGLU feed-forward, no experts: this chapter traces the "
                                             "MoE demo model build/models/llama3-tiny-moe instead",
                                          "%s 的前馈层是稠密的 SwiGLU，没有专家：本章改为追踪 MoE 演示模型 "
                                          "build/models/llama3-tiny-moe"),
                                s->model_dir));
    else if (s->chapter->needs_dense && config_is_moe(s->cfg)) {
        char *dense = default_model_dir();
        const char *name = strrchr(dense, '/') ? strrchr(dense, '/') + 1 : dense;
        trace_instead(s, dense,
                      xasprintf(step_text(s, "%s has a mixture of experts, and this chapter splits a dense SwiGLU "
                                             "feed-forward (w1, w2, w3): it traces the demo model build/models/%s "
                                             "instead",
                                          "%s 的前馈层是混合专家，而本章要切分稠密的 SwiGLU 前馈层（w1、w2、w3）："
                                          "本章改为追踪演示模型 build/models/%s"),
                                s->model_dir, name));
    }
    if (s->layer >= s->cfg->n_layers)
        input_error(NULL, "--layer %d: the model has %d layers (0..%d)", s->layer, s->cfg->n_layers, s->cfg->n_layers - 1);
    if (s->head >= s->cfg->n_heads)
        input_error(NULL, "--head %d: the model has %d heads (0..%d)", s->head, s->cfg->n_heads, s->cfg->n_heads - 1);

    // tokenizer.model, else tokenizer.json: Llama 3's, or a byte-level BPE such as MiniMind's (tokenizer_load).
    const char *tok_path = s->tokenizer_path ? s->tokenizer_path : s->ck.tokenizer_path;
    if (!tok_path && s->ck.hf_tokenizer_json && !s->tokens_arg) tok_path = s->ck.hf_tokenizer_json;
    if (!tok_path && s->ck.hf_tokenizer_json) {
        // With --tokens a tokenizer only names the pieces: a tokenizer.json this code cannot read (Mixtral's
        // SentencePiece) is left out, not an error. Read it quietly; use it if it is a byte-level BPE.
        size_t len;
        char *file = read_whole_file(s->ck.hf_tokenizer_json, &len), err[512];
        s->has_tokenizer = tokenizer_init_bpe_try(&s->tok, s->ck.hf_tokenizer_json, (const uint8_t *)file, len, err, sizeof err);
        free(file);
        if (s->has_tokenizer && s->tok.vocab_size > s->cfg->vocab_size) tokenizer_free(&s->tok), s->has_tokenizer = false;
    }
    if (!tok_path && !s->tokens_arg)
        input_error(s->model_dir, "no tokenizer.model or tokenizer.json beside the weights (pass --tokenizer FILE, or "
                                  "--tokens ID,ID,...)");
    if (tok_path) {
        tokenizer_load(&s->tok, tok_path);
        s->has_tokenizer = true;
        if (s->tok.vocab_size > s->cfg->vocab_size && s->tokens_arg) {
            tokenizer_free(&s->tok);
            s->has_tokenizer = false;
        } else if (s->tok.vocab_size > s->cfg->vocab_size) {
            input_error(tok_path, "the tokenizer has %d tokens but the model's vocab_size is %d", s->tok.vocab_size,
                        s->cfg->vocab_size);
        }
    }

    if (s->tokens_arg) {
        parse_tokens(s);
    } else {
        size_t n;
        if (utf8_first_invalid(s->prompt, strlen(s->prompt)) >= 0)
            input_error("--prompt", "invalid UTF-8 at byte %lld", (long long)utf8_first_invalid(s->prompt, strlen(s->prompt)));
        tokenizer_encode(&s->tok, s->prompt, strlen(s->prompt), true, false, &s->tokens, &n);
        s->T = (int)n;
    }
    s->pieces = xcalloc((size_t)s->T, sizeof(char *));
    for (int t = 0; t < s->T; t++) s->pieces[t] = step_decode(s, &s->tokens[t], 1);

    // RoPE tables for positions 0..T (T+1 rows: chapter 16 rotates the next token too)
    int half = s->cfg->head_dim / 2;
    s->freqs = xmalloc((size_t)half * sizeof(float));
    rope_freqs_cpu(s->freqs, s->cfg->head_dim, s->cfg->rope_theta, config_rope_scaling(s->cfg));
    s->freqs_cis = xmalloc((size_t)(s->T + 1) * (size_t)half * 2 * sizeof(float));
    rope_freqs_cis_cpu(s->freqs_cis, s->freqs, s->cfg->head_dim, s->T + 1);
}

// ---- device scratch, weights on the device -----------------------------------------------------------------------------
typedef struct {
    char *name;
    void *dev;
} DevWeight;
static void **g_dev_allocs;
static int g_n_dev_allocs, g_cap_dev_allocs;
static DevWeight *g_dev_weights;
static int g_n_dev_weights;

static void remember_dev(void *p) {
    if (g_n_dev_allocs == g_cap_dev_allocs) {
        g_cap_dev_allocs = g_cap_dev_allocs ? 2 * g_cap_dev_allocs : 64;
        g_dev_allocs = xrealloc(g_dev_allocs, (size_t)g_cap_dev_allocs * sizeof(void *));
    }
    g_dev_allocs[g_n_dev_allocs++] = p;
}
void *step_dev_alloc(Step *s, size_t bytes) {
    (void)s;
    void *p = cuda_malloc(bytes);
    cuda_poison(p, bytes);  // an element no kernel wrote shows up as NaN
    remember_dev(p);
    return p;
}
void *step_dev_act(Step *s, const float *host, size_t n) {
    void *p = step_dev_alloc(s, act_bytes(n, s->prec));
    if (host) cuda_upload_act(p, host, n, s->prec);
    return p;
}
float *step_dev_f32(Step *s, const float *host, size_t n) {
    float *p = step_dev_alloc(s, n * sizeof(float));
    if (host) cuda_memcpy_h2d(p, host, n * sizeof(float));
    return p;
}
void step_host_act(const Step *s, float *host, const void *dev, size_t n) { cuda_download_act(host, dev, n, s->prec); }
void step_host_f32(float *host, const void *dev, size_t n) { cuda_memcpy_d2h(host, dev, n * sizeof(float)); }

// ---- host results ------------------------------------------------------------------------------------------------------
static float **g_host_bufs;
static int g_n_host_bufs;
float *step_buf(Step *s, size_t n) {
    (void)s;
    g_host_bufs = xrealloc(g_host_bufs, (size_t)(g_n_host_bufs + 1) * sizeof(float *));
    return g_host_bufs[g_n_host_bufs++] = xcalloc(n ? n : 1, sizeof(float));
}
float *step_get_act(Step *s, const void *dev, size_t n) {
    float *h = step_buf(s, n);
    step_host_act(s, h, dev, n);
    return h;
}
float *step_get_f32(Step *s, const float *dev, size_t n) {
    float *h = step_buf(s, n);
    step_host_f32(h, dev, n);
    return h;
}

// Weights the checkpoint holds in another float dtype (f16/f32), converted once each (weight_copies: the bf16 copy
// of tensor weight_of[i]), freed by step_finish.
static void **g_weight_copies;
static const Tensor **g_weight_of;
static int g_n_weight_copies;

static const uint16_t *weight_v(Step *s, const Tensor **t_out, const char *fmt, va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    const Tensor *t = checkpoint_find(&s->ck, name);
    if (t_out) *t_out = t;
    for (int i = 0; t && i < g_n_weight_copies; i++)
        if (g_weight_of[i] == t) return g_weight_copies[i];
    int n = g_n_weight_copies;
    const uint16_t *w = checkpoint_weight_bf16(&s->ck, name, &g_weight_copies, &g_n_weight_copies);
    if (g_n_weight_copies > n) {  // a copy was made: remember whose
        g_weight_of = xrealloc(g_weight_of, (size_t)g_n_weight_copies * sizeof(const Tensor *));
        g_weight_of[n] = t;
    }
    return w;
}
const uint16_t *step_weight(Step *s, const Tensor **t_out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const uint16_t *w = weight_v(s, t_out, fmt, ap);
    va_end(ap);
    return w;
}
const uint16_t *step_weight_dev(Step *s, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    for (int i = 0; i < g_n_dev_weights; i++)
        if (strcmp(g_dev_weights[i].name, name) == 0) return g_dev_weights[i].dev;
    step_weights_dev_prefetch(s, (const char *const[]){name}, 1);
    return g_dev_weights[g_n_dev_weights - 1].dev;
}

// Large uploads go through the engine's loader (pinned staging, 8 threads): its buffers cost ~0.1 s to set up, so
// below this many bytes in one call the plain pageable copies are as fast.
#define STEP_UPLOAD_BATCH_BYTES ((size_t)256 << 20)

void step_weights_dev_prefetch(Step *s, const char *const *names, int n) {
    void **dst = xmalloc(sizeof(void *) * (size_t)(n + 1));
    const void **src = xmalloc(sizeof(void *) * (size_t)(n + 1));
    size_t *bytes = xmalloc(sizeof(size_t) * (size_t)(n + 1)), total = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        bool have = false;
        for (int j = 0; j < g_n_dev_weights && !have; j++) have = strcmp(g_dev_weights[j].name, names[i]) == 0;
        if (have) continue;
        const Tensor *t;
        src[m] = step_weight(s, &t, "%s", names[i]);
        bytes[m] = (size_t)tensor_numel(t) * sizeof(uint16_t);
        dst[m] = cuda_malloc(bytes[m]);
        total += bytes[m];
        g_dev_weights = xrealloc(g_dev_weights, (size_t)(g_n_dev_weights + 1) * sizeof(DevWeight));
        g_dev_weights[g_n_dev_weights++] = (DevWeight){xstrdup(names[i]), dst[m]};
        m++;
    }
    if (total >= STEP_UPLOAD_BATCH_BYTES) cuda_memcpy_h2d_many(dst, src, bytes, m);
    else
        for (int i = 0; i < m; i++) cuda_memcpy_h2d(dst[i], src[i], bytes[i]);
    free(dst), free(src), free(bytes);
}

// ---- printing ------------------------------------------------------------------------------------------------------------
const char *step_text(const Step *s, const char *en, const char *zh) { return (s->lang == LANG_ZH && zh) ? zh : en; }
const char *const *step_split_words(const Step *s) {
    static const char *const en[3] = {"(rows)", "(columns)", "(whole)"}, *const zh[3] = {"（按行）", "（按列）", "（完整）"};
    return s->lang == LANG_ZH ? zh : en;
}
const char *step_act_dtype(const Step *s) { return s->prec == PREC_BF16 ? "bf16" : "f32"; }

void step_say(Step *s, const char *fmt, ...) {
    char *line;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0) fatal("out of memory");
    va_end(ap);
    if (!s->quiet) puts(line);
    trace_line(s->trace, s->id, line);
    free(line);
}

// Wraps a paragraph at ~100 columns (counting UTF-8 code points; a CJK character counts 2) with two spaces of indent.
void step_explain(Step *s, const char *en, const char *zh) {
    const char *text = step_text(s, en, zh);
    const int width = 100;
    char line[1024];
    size_t len = 0;
    int cols = 0;
    const char *p = text, *last_break = NULL;
    size_t last_break_len = 0;
    while (*p) {
        unsigned char ch = (unsigned char)*p;
        int nbytes = ch < 0x80 ? 1 : ch < 0xe0 ? 2 : ch < 0xf0 ? 3 : 4;
        int w = nbytes >= 3 ? 2 : 1;
        if (*p == '\n') {
            line[len] = 0;
            step_say(s, "  %s", line);
            len = 0, cols = 0, last_break = NULL, p++;
            continue;
        }
        if (cols + w > width || len + (size_t)nbytes >= sizeof line - 1) {
            if (last_break && *p != ' ') {  // break at the last space (English) ...
                line[last_break_len] = 0;
                step_say(s, "  %s", line);
                p = last_break + 1;
            } else {  // ... or anywhere (Chinese)
                line[len] = 0;
                step_say(s, "  %s", line);
                if (*p == ' ') p++;
            }
            len = 0, cols = 0, last_break = NULL;
            continue;
        }
        if (*p == ' ') last_break = p, last_break_len = len;
        memcpy(line + len, p, (size_t)nbytes);
        len += (size_t)nbytes, cols += w, p += nbytes;
    }
    if (len) {
        line[len] = 0;
        step_say(s, "  %s", line);
    }
}

void step_heading(Step *s, const char *en, const char *zh) {
    step_say(s, "%s", "");
    step_say(s, "-- %s", step_text(s, en, zh));
}

void step_shape(Step *s, const char *name, const int64_t *shape, int ndim, const char *dtype) {
    char buf[128];
    step_say(s, "%-40s %-18s %s", name, shape_str(shape, ndim, buf, sizeof buf), dtype);
}

void step_print_vector(Step *s, const char *name, const float *v, int n, const char *fmt) {
    step_check_finite(s, name, v, (int64_t[]){n}, 1);
    // torch prints several values per line; we print 8 per line, aligned. Beyond torch's threshold it prints the
    // first and last TORCH_EDGEITEMS values around "...".
    bool summarise = n > TORCH_THRESHOLD;
    char line[1024];
    size_t k = (size_t)snprintf(line, sizeof line, "%s = tensor([", name);
    size_t indent = k;
    int per_line = 8, on_line = 0;
    for (int i = 0; i < n; i++) {
        if (summarise && i == TORCH_EDGEITEMS) {
            k += (size_t)snprintf(line + k, sizeof line - k, " ..., ");
            i = n - TORCH_EDGEITEMS;
        }
        char val[64];
        snprintf(val, sizeof val, fmt, (double)v[i]);
        k += (size_t)snprintf(line + k, sizeof line - k, "%s%s", val, i + 1 < n ? ", " : "])");
        if (++on_line == per_line && i + 1 < n) {
            if (k > 0 && line[k - 1] == ' ') line[--k] = 0;  // torch ends a wrapped line with ","
            step_say(s, "%s", line);
            memset(line, ' ', indent);
            k = indent;
            line[k] = 0;
            on_line = 0;
        }
    }
    step_say(s, "%s", line);
}

// ---- values that are not finite ---------------------------------------------------------------------------------------
// Corrupt weights give NaN, which no comparison between two paths that read the same weights catches (both are NaN),
// and which prints as a prediction ('!', token 0) and draws as an empty figure. So a value that is not finite stops
// the chapter; the one exception is the -inf the causal mask writes: in a [.., Tq, Tk] tensor, key j > i + Tk - Tq.
static bool causally_masked(int64_t i, const int64_t *shape, int ndim) {
    if (ndim < 2 || shape[ndim - 1] < shape[ndim - 2]) return false;
    int64_t tq = shape[ndim - 2], tk = shape[ndim - 1];
    return i % tk > (i / tk) % tq + (tk - tq);
}

void step_check_finite(Step *s, const char *name, const float *x, const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    bool all_finite = true;
    for (int64_t i = 0; i < n; i++) all_finite &= isfinite(x[i]) != 0;  // no early exit: the loop vectorises
    if (all_finite) return;
    int64_t bad = 0;
    while (bad < n && (isfinite(x[bad]) || (x[bad] == -INFINITY && causally_masked(bad, shape, ndim)))) bad++;
    if (bad == n) return;  // only the mask's -inf
    char where[64] = "", sh[96], at[96], *line;
    int chapter = atoi(s->id);  // 03..13 look at one layer (--layer); 14..16 run them all
    if (chapter >= 3 && chapter <= 13) snprintf(where, sizeof where, " (layer %d)", s->layer);
    else if (chapter >= 14) snprintf(where, sizeof where, " (layers 0..%d)", s->cfg->n_layers - 1);
    line = xasprintf("%s: %s %s%s is not finite at %s (%s): the weights or the computation are broken; nothing is "
                     "printed or drawn from it (check the checkpoint with --verify-checksums)",
                     s->id, name, shape_str(shape, ndim, sh, sizeof sh), where, index_str(bad, shape, ndim, at, sizeof at),
                     isnan(x[bad]) ? "NaN" : x[bad] > 0 ? "inf" : "-inf outside the causal mask");
    fflush(stdout);
    fprintf(stderr, "error: %s\n", line);
    trace_step_error(s->trace, s->id, line);
    trace_mode(s->trace, s->id, step_mode(s));
    trace_close(s->trace);
    exit(1);
}

// ---- outputs ---------------------------------------------------------------------------------------------------------------
void step_tensor(Step *s, const char *name, const float *data, const int64_t *shape, int ndim, const char *dtype) {
    step_check_finite(s, name, data, shape, ndim);
    trace_tensor_f32(s->trace, s->id, name, data, shape, ndim, dtype);
}
void step_tensor_i64(Step *s, const char *name, const int64_t *data, const int64_t *shape, int ndim) {
    trace_tensor_i64(s->trace, s->id, name, data, shape, ndim);
}
void step_vocab(Step *s, int64_t id) {
    int32_t tid = (int32_t)id;
    char *piece = tokenizer_decode_text(&s->tok, &tid, 1, NULL);
    trace_vocab(s->trace, s->id, id, piece);
    free(piece);
}
void step_show(Step *s, const char *name, const float *data, const int64_t *shape, int ndim, const char *dtype) {
    step_shape(s, name, shape, ndim, dtype);
    step_tensor(s, name, data, shape, ndim, dtype);
}
char *step_path(Step *s, const char *file) { return trace_path(s->trace, s->id, file); }
void step_image(Step *s, const char *file, const char *caption) {
    trace_image(s->trace, s->id, file, caption);
    step_say(s, "%s %s/%s/%s", step_text(s, "figure:", "图:"), s->out_dir, s->id, file);
}

void step_token_heatmap(Step *s, const char *file, const float *cpu, const float *cuda, const char *title,
                        const char *value_label, bool probs) {
    char subtitle[256], png_name[128];
    int64_t tt[2] = {s->T, s->T};
    if (cpu) step_check_finite(s, file, cpu, tt, 2);
    if (cuda) step_check_finite(s, file, cuda, tt, 2);
    snprintf(subtitle, sizeof subtitle, "%s, layer %d, head %d, [%d, %d], %s", s->id, s->layer, s->head, s->T, s->T,
             s->cuda ? "CUDA" : "CPU");
    uint8_t *causal = probs ? step_causal_cells(s) : NULL;  // weights after the mask: its 0s hatched as in 08
    HeatmapOptions opt = {
        .title = title, .subtitle = subtitle, .x_label = step_text(s, "key token", "key token"),
        .y_label = step_text(s, "query token", "query token"), .value_label = value_label,
        .fixed_range = probs, .vmin = 0.0f, .vmax = 1.0f, .show_values = true, .mask = causal,
    };
    snprintf(png_name, sizeof png_name, "%s.png", file);
    char *path = step_path(s, png_name);
    figure_heatmap(path, cuda ? cuda : cpu, s->T, s->T, step_labels(s), step_labels(s), &opt);
    free(path);
    step_image(s, png_name, title);
    if (!cuda || !cpu) {
        free(causal);
        return;
    }
    snprintf(png_name, sizeof png_name, "%s_compare.png", file);
    path = step_path(s, png_name);
    opt.show_values = false;
    figure_heatmap_compare(path, cuda, cpu, s->T, s->T, step_labels(s), step_labels(s), "CUDA", "CPU", &opt);
    free(path);
    char caption[256];
    snprintf(caption, sizeof caption, "%s: CUDA | CPU | |CUDA - CPU|", title);
    step_image(s, png_name, caption);
    free(causal);
}

static double rms_of(const float *x, int64_t n) {
    double ss = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) ss += (double)x[i] * x[i], k++;
    return k ? sqrt(ss / (double)k) : 0.0;
}
void step_tolerance_act(const Step *s, const float *ref, int64_t n, double *atol, double *rtol) {
    double rms = rms_of(ref, n);
    if (s->prec == PREC_BF16) *rtol = 1.0 / 128, *atol = rms / 256;
    else *rtol = 1e-5, *atol = 1e-5 * rms;
}
void step_tolerance_f32(const Step *s, const float *ref, int64_t n, double *atol, double *rtol) {
    (void)s;
    double rms = rms_of(ref, n);
    *rtol = 1e-5, *atol = 1e-5 * rms;
}
void step_tolerance_dot(const Step *s, const float *ref, int64_t n, int K, double *atol, double *rtol) {
    step_tolerance_f32(s, ref, n, atol, rtol);
    double walk = 8.0 * sqrt((double)K) * 0x1p-24;  // eight typical random-walk drifts of K fp32 additions
    if (walk > 1e-5) *atol *= walk / 1e-5;
}

// A --no-compare run must not record a comparison: its summary says that nothing was compared.
static void require_compare(const Step *s, const char *name) {
    if (!s->compare) fatal("%s: comparison '%s' requested in a --no-compare run", s->id, name);
    if (s->n_results == STEP_MAX_COMPARISONS) fatal("%s: more than %d comparisons", s->id, STEP_MAX_COMPARISONS);
}

// A result into the step's list and into trace.json (its verdict line among the printed lines).
static bool record(Step *s, const char *name, const CompareResult *r, const char *metric, double atol, double rtol,
                   double max_rel) {
    s->results[s->n_results++] = *r;
    char verdict[512];
    compare_verdict_line(r, verdict, sizeof verdict);
    trace_line(s->trace, s->id, verdict);
    TraceComparison c = {
        .name = name, .metric = metric, .max_abs = r->max_abs, .max_rel = max_rel, .atol = atol, .rtol = rtol,
        .tol_used = r->tol_used, .n = r->n, .n_mismatch = r->n_mismatch, .ok = r->ok,
    };
    trace_comparison(s->trace, s->id, &c);
    return r->ok;
}

// After a comparison (its verdict recorded): both sides finite, else the chapter stops. The validator never counts
// NaN equal to NaN, and -inf only matches -inf where the mask puts it, since nothing else gets past this check.
static void check_compared(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim) {
    char label[160];
    snprintf(label, sizeof label, "%s (reference)", name);
    step_check_finite(s, label, ref, shape, ndim);
    snprintf(label, sizeof label, "%s (compared output)", name);
    step_check_finite(s, label, out, shape, ndim);
}

bool step_compare(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim,
                  double atol, double rtol) {
    require_compare(s, name);
    fflush(stdout);
    CompareResult r = compare_f32(s->id, name, ref, out, shape, ndim, atol, rtol, 0);
    bool ok = record(s, name, &r, "|ref-out| <= atol + rtol*|ref|", atol, rtol, r.max_rel);
    check_compared(s, name, ref, out, shape, ndim);
    return ok;
}

typedef void ToleranceFn(const Step *, const float *, int64_t, double *, double *);
static bool compare_with(Step *s, ToleranceFn *tolerance, const char *name, const float *ref, const float *out,
                         const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    double atol, rtol;
    tolerance(s, ref, n, &atol, &rtol);
    return step_compare(s, name, ref, out, shape, ndim, atol, rtol);
}
bool step_compare_act(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim) {
    return compare_with(s, step_tolerance_act, name, ref, out, shape, ndim);
}
bool step_compare_f32(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim) {
    return compare_with(s, step_tolerance_f32, name, ref, out, shape, ndim);
}

bool step_compare_nmse(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim,
                       double max_nmse) {
    require_compare(s, name);
    fflush(stdout);
    CompareResult r = compare_nmse_f32(s->id, name, ref, out, shape, ndim, max_nmse);
    bool ok = record(s, name, &r, "sum((ref-out)^2)/sum(ref^2) <= tolerance (atol field)", max_nmse, 0, r.nmse);
    check_compared(s, name, ref, out, shape, ndim);
    return ok;
}

double step_clock(void) { return now_seconds(); }
void step_add_ms(Step *s, bool cuda, double t0) {
    if (cuda) cuda_synchronize();
    double ms = 1e3 * (now_seconds() - t0);
    if (cuda) s->ms_cuda += ms;
    else s->ms_cpu += ms;
}

const char *const *step_labels(const Step *s) { return (const char *const *)s->pieces; }
uint8_t *step_causal_cells(const Step *s) {
    uint8_t *m = xmalloc((size_t)s->T * (size_t)s->T);
    for (int q = 0; q < s->T; q++)
        for (int k = 0; k < s->T; k++) m[(size_t)q * s->T + k] = k > q;
    return m;
}

char *step_decode(const Step *s, const int32_t *ids, size_t n) {
    if (s->has_tokenizer) {
        for (size_t i = 0; i < n; i++)  // ids the model has but the tokenizer does not (vocab padding)
            if (ids[i] >= s->tok.vocab_size) return xasprintf("#%d", (int)ids[i]);
        return tokenizer_decode_text(&s->tok, ids, n, NULL);
    }
    size_t cap = 16 * n + 1, len = 0;  // "#128000" is at most 12 bytes
    char *out = xmalloc(cap);
    out[0] = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)snprintf(out + len, cap - len, "#%d", (int)ids[i]);
    return out;
}

// ---- init and finish ----------------------------------------------------------------------------------------------------
void step_init(Step *s, int argc, char **argv, const char *chapter_id) {
    memset(s, 0, sizeof *s);
    const Chapter *chapter = chapter_find(chapter_id);
    if (!chapter) fatal("%s: no entry in the table of chapters (steps/chapters.c)", chapter_id);
    s->chapter = chapter;
    s->id = chapter->id;
    s->t_start = now_seconds();
    parse_args(s, argc, argv);
    load_model(s);
    char why[256];  // --tp N must split this model into whole heads, FFN rows and vocabulary rows (common/tp.h)
    if (s->tp && !tp_check(s->cfg, s->tp, why, sizeof why)) input_error(NULL, "--tp %d: %s", s->tp, why);
    if (s->cuda) {
        cuda_init(0);
        size_t bytes = (size_t)(s->T + 1) * (size_t)s->cfg->head_dim * sizeof(float);
        s->freqs_cis_dev = step_dev_alloc(s, bytes);
        cuda_memcpy_h2d(s->freqs_cis_dev, s->freqs_cis, bytes);
    }

    s->trace = trace_open(s->out_dir);
    char device[160];
    if (s->cuda) cuda_device_describe(0, device, sizeof device);
    else snprintf(device, sizeof device, "cpu");
    trace_step_begin(s->trace, s->id, step_text(s, chapter->title_en, chapter->title_zh));
    trace_mode(s->trace, s->id, step_mode(s));
    // A trace is one run: refuse to add this chapter to chapters computed for another model, prompt, layer... A
    // chapter that traces another model on purpose (model_note: 20_moe on a dense model) stands apart: it is held
    // against no other chapter, and the run's model, prompt, tokens and config (step_map) stay the other chapters'.
    char fingerprint[40], conflict[512];
    checkpoint_fingerprint(&s->ck, fingerprint, sizeof fingerprint);
    int64_t *ids = xmalloc((size_t)s->T * sizeof(int64_t));
    for (int t = 0; t < s->T; t++) ids[t] = s->tokens[t];
    TraceRun run = {.model = s->model_dir, .fingerprint = fingerprint, .token_ids = ids, .n_tokens = s->T,
                    .layer = s->layer, .head = s->head, .precision = precision_name(s->prec),
                    .device = s->cuda ? device : "cpu", .apart = s->model_note};
    trace_step_run(s->trace, s->id, &run);
    trace_set_run(s->trace, s->model_dir, s->prompt, s->cuda ? device : "cpu", precision_name(s->prec));
    trace_set_tokens(s->trace, ids, (const char *const *)s->pieces, s->T);
    free(ids);
    if (!trace_same_run(s->trace, s->id, conflict, sizeof conflict)) {
        if (!s->force)
            input_error(trace_dir(s->trace), "%s; write into another --out, or pass --force to mix runs in this trace",
                        conflict);
        fprintf(stderr, "warning: %s: %s; written anyway (--force): this trace now mixes runs\n", trace_dir(s->trace),
                conflict);
    }

    if (!s->quiet) {
        printf("\n=== %s: %s ===\n", s->id, step_text(s, chapter->title_en, chapter->title_zh));
        char what[512];
        if (s->compare)
            snprintf(what, sizeof what, "%s", s->cuda ? device : step_no_gpu_line(s->cpu_asked, s->lang == LANG_ZH));
        else if (s->cuda)
            snprintf(what, sizeof what, "%s | %s", device,
                     step_text(s, "the CUDA path alone: no CPU reference, nothing compared (--no-compare)",
                               "仅 CUDA 路径：不运行 CPU 参考实现，不做比较（--no-compare）"));
        else
            snprintf(what, sizeof what, "%s",
                     step_text(s, "the CPU reference alone: no self-checks, nothing compared (--no-compare)",
                               "仅 CPU 参考实现：不做自检，不做比较（--no-compare）"));
        if (s->lang == LANG_ZH) printf("模型 %s | %d 个 token | %s | %s\n", s->model_dir, s->T, what, precision_name(s->prec));
        else printf("model %s | %d token%s | %s | %s\n", s->model_dir, s->T, plural(s->T), what, precision_name(s->prec));
    }
    step_map(s);  // the first line: where the chapter sits on the map (and OUT/<id>/where.png)
    step_explain(s, chapter->intro_en, chapter->intro_zh);
    if (s->model_note) step_say(s, step_text(s, "note: %s", "注意：%s"), s->model_note);
}

const char *step_no_gpu_line(bool cpu_asked, bool zh) {
    if (cpu_asked) return zh ? "--device cpu：仅 CPU 参考实现，不与 GPU 比较" : "--device cpu: CPU reference only, nothing compared";
    return zh ? "无 GPU：仅 CPU 参考实现，没有比较" : "no GPU: CPU reference only, nothing compared";
}

const char *step_mode(const Step *s) {
    if (!s->compare) return s->cuda ? "cuda-only" : "cpu-only";
    return s->cuda ? "cuda+cpu" : "cpu";
}

int step_finish(Step *s) {
    if (s->cpu) trace_timing(s->trace, s->id, "cpu_ms", s->ms_cpu);
    if (s->cuda) trace_timing(s->trace, s->id, "cuda_ms", s->ms_cuda);
    trace_timing(s->trace, s->id, "total_ms", 1e3 * (now_seconds() - s->t_start));
    trace_mode(s->trace, s->id, step_mode(s));  // a chapter may have changed paths (16_generate with fp32)
    trace_close(s->trace);
    int failed = 0;
    for (int i = 0; i < s->n_results; i++) failed += !s->results[i].ok;
    if (!s->compare)  // the verdict line of a run that checked nothing: never "OK"
        printf("%s %s: %s\n", step_mode(s), s->id,
               s->cuda ? step_text(s, "not compared (--no-compare: the CUDA path ran alone)", "未比较（--no-compare：只运行了 CUDA 路径）")
                       : step_text(s, "not compared (--no-compare: the CPU reference ran alone)",
                                   "未比较（--no-compare：只运行了 CPU 参考实现）"));
    else if (!s->cuda && !s->quiet)
        printf("(%s)\n", step_text(s, "no CUDA path in this run: nothing to compare, the CPU reference alone ran",
                                   "本次运行没有 CUDA 路径：只运行了 CPU 参考实现，无可比较"));
    if (s->cuda && s->compare && s->lang == LANG_ZH)
        printf("%s %s: %d 项比较中 %d 项通过\n", failed ? "FAIL" : "OK  ", s->id, s->n_results, s->n_results - failed);
    else if (s->cuda && s->compare)
        printf("%s %s: %d of %d comparison%s passed\n", failed ? "FAIL" : "OK  ", s->id, s->n_results - failed,
               s->n_results, plural(s->n_results));
    // device memory: weights and scratch
    for (int i = 0; i < g_n_dev_allocs; i++) cuda_free(g_dev_allocs[i]);
    for (int i = 0; i < g_n_dev_weights; i++) cuda_free(g_dev_weights[i].dev), free(g_dev_weights[i].name);
    free(g_dev_allocs), free(g_dev_weights);
    for (int i = 0; i < g_n_host_bufs; i++) free(g_host_bufs[i]);
    for (int i = 0; i < g_n_weight_copies; i++) free(g_weight_copies[i]);
    free(g_weight_copies), free(g_weight_of), g_weight_copies = NULL, g_weight_of = NULL, g_n_weight_copies = 0;
    free(g_host_bufs), g_host_bufs = NULL, g_n_host_bufs = 0;
    if (s->cuda) cuda_shutdown();
    g_dev_allocs = NULL, g_dev_weights = NULL, g_n_dev_allocs = g_cap_dev_allocs = g_n_dev_weights = 0;
    for (int t = 0; t < s->T; t++) free(s->pieces[t]);
    free(s->pieces), free(s->tokens), free(s->freqs), free(s->freqs_cis);
    tokenizer_free(&s->tok);
    checkpoint_close(&s->ck);
    free(s->model_dir), free(s->prompt), free(s->out_dir), free(s->tokenizer_path), free(s->tokens_arg), free(s->model_note);
    return failed ? 1 : 0;
}
