// 16_generate.c: chapter 16, generating more tokens with a KV cache.
//
// The tutorial stops at one token. To write more, the model runs again on the prompt plus the new token, and again,
// and again: every step recomputes the keys and values of every earlier token, so N new tokens cost
// O(N·(T+N)) token-passes. Meta's code keeps each layer's K and V in cache_k/cache_v [S, Hkv, Dh]; a step then runs
// the ONE new token through the layers at position start_pos, writes its K/V into row start_pos, and attends over
// rows 0..start_pos. The mask is offset by start_pos: query t of a call sits at position start_pos + t.
//
// What it shows: the cache shapes growing, the mask with its offset, the proof that cached logits equal a full
// recompute (bit for bit on the CPU, within tolerance on CUDA, where the decode products take another path), and
// the cost of one new token at positions T, 2T, 4T, ...: flat with the cache, growing with the position when
// everything is recomputed (a table and cost_per_token.png). On a CPU the output layer (V x D) costs as much as
// ~20 prompt tokens through the small model's layers, so the growth shows only over a range of positions, not
// over the 8 steps of the proof.
// With --no-compare nothing is compared: on CUDA the engine alone generates (prefill, cached decode) and the GPU's
// recompute runs only to time the other way; on the CPU the reference generates with its cache and the recompute,
// which costs minutes at 8B shape and served the proof, does not run.
// Shapes: T prompt tokens, N new tokens, S = T + N cache rows, L layers, Hkv kv heads, Dh head dim, V vocab.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "engine.h"
#include "kernels.h"
#include "ref/model_cpu.h"
#include "step.h"
#include "util.h"

#define N_NEW 8  // tokens this chapter generates (greedy)

static int count_bit_diff(const float *a, const float *b, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return d;
}

// Multiply-adds of the layers' matrix products for one token, times 2: the work a token-pass costs (attention over
// the cache and the output layer come on top).
static double layer_flops_per_token(const Config *c) {
    double D = c->dim, Dh = c->head_dim, F = c->ffn_hidden;
    return 2.0 * c->n_layers * (D * (c->n_heads + 2.0 * c->n_kv_heads) * Dh + c->n_heads * Dh * D + 3.0 * D * F);
}

// The positions of the cost sweep: T, 2T, 4T, ... (at most SWEEP_MAX) while recomputing at all of them costs at most
// `budget` FLOP. Returns how many; a smaller budget gives a prefix of a larger one's positions.
#define SWEEP_MAX 6
static int sweep_positions(const Config *c, int T, double budget, int *pos) {
    int n = 0;
    double work = 0;
    for (int p = T; n < SWEEP_MAX; p *= 2) {
        work += (p + 1) * layer_flops_per_token(c);
        if (work > budget) break;
        pos[n++] = p;
    }
    return n;
}

// cache_k of layer 0 for positions 0..n-1 of seq on the CUDA path (the engine keeps its cache to itself): row p is
// rope(rms_norm(embed(seq[p])) · wkᵀ) at position p, what the engine's prefill and decode wrote there. out [n, Hkv, Dh].
static void cache_k_layer0_cuda(Step *s, const int32_t *seq, int n, float *out) {
    const Config *c = s->cfg;
    const int D = c->dim, Hkv = c->n_kv_heads, Dh = c->head_dim, half = Dh / 2;
    const size_t kv = (size_t)Hkv * (size_t)Dh, fc_bytes = (size_t)n * (size_t)half * 2 * sizeof(float);
    double t0 = step_clock();
    float *fc = xmalloc(fc_bytes);  // freqs_cis for n positions (the step's own table holds T + 1)
    rope_freqs_cis_cpu(fc, s->freqs, Dh, n);
    float *fc_dev = step_dev_alloc(s, fc_bytes);
    cuda_memcpy_h2d(fc_dev, fc, fc_bytes);
    free(fc);
    int32_t *tok = step_dev_alloc(s, (size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(tok, seq, (size_t)n * sizeof(int32_t));
    void *x = step_dev_act(s, NULL, (size_t)n * D), *xn = step_dev_act(s, NULL, (size_t)n * D);
    void *k = step_dev_act(s, NULL, (size_t)n * kv);
    embedding_forward_cuda(x, tok, step_weight_dev(s, "tok_embeddings.weight"), n, D, c->vocab_size, s->prec);
    rmsnorm_forward_cuda(xn, NULL, x, step_weight_dev(s, "layers.0.attention_norm.weight"), n, D, (float)c->norm_eps,
                         s->prec);
    matmul_forward_cuda(k, xn, step_weight_dev(s, "layers.0.attention.wk.weight"), n, D, (int)kv, s->prec);
    rope_forward_cuda(k, k, fc_dev, n, Hkv, Dh, 0, s->prec);
    step_host_act(s, out, k, (size_t)n * kv);
    step_add_ms(s, true, t0);
}

// The inference engine on the GPU for sequences of up to S tokens, with a line saying where its weights went.
static Engine *open_engine(Step *s, int S) {
    EngineOptions o;
    engine_options_default(&o);
    o.max_seq_len = S;
    o.quiet = s->quiet;
    Engine *e = engine_create(&s->ck, &o);
    step_say(s, "weights on %s: %.2f GiB in %.2f s", engine_info(e)->device_name,
             engine_info(e)->weight_bytes / 1073741824.0, engine_info(e)->load_s);
    return e;
}

static void print_mask(Step *s, const float *mask, int rows, int cols, int start_pos) {
    for (int t = 0; t < rows; t++) {
        char line[4096];
        size_t k = (size_t)snprintf(line, sizeof line, step_text(s, "  query at position %3d: ", "  位置 %3d 的 query："),
                                    start_pos + t);
        for (int j = 0; j < cols && k + 8 < sizeof line; j++)
            k += (size_t)snprintf(line + k, sizeof line - k, "%s", isinf(mask[(size_t)t * cols + j]) ? " -inf" : "    0");
        step_say(s, "%s", line);
    }
}

// The generated text, its runs of ordinary tokens quoted and the special tokens between them unquoted, so that a
// control token (the model starting a new document with <|begin_of_text|>) does not read as text:
//     generated: '42.' <|begin_of_text|> 'And the LORD spake'
static bool is_special(const Step *s, int32_t id) {
    return s->has_tokenizer && id < s->tok.vocab_size && tokenizer_is_special(&s->tok, id);
}

static void print_generated(Step *s, const int32_t *ids, int n) {
    size_t cap = 64, len = 0;
    char *line = xmalloc(cap);
    line[0] = 0;
    int n_special = 0;
    for (int i = 0; i < n;) {
        bool special = is_special(s, ids[i]);
        int j = i + 1;
        while (j < n && !special && !is_special(s, ids[j])) j++;
        char *text = step_decode(s, ids + i, (size_t)(j - i));
        char *part = special ? xasprintf("%s%s", len ? " " : "", text) : xasprintf("%s'%s'", len ? " " : "", text);
        size_t plen = strlen(part);
        while (len + plen + 1 > cap) cap *= 2, line = xrealloc(line, cap);
        memcpy(line + len, part, plen + 1);
        len += plen;
        n_special += special;
        free(part), free(text);
        i = j;
    }
    step_say(s, step_text(s, "generated: %s", "生成的文本：%s"), line);
    if (n_special)
        step_say(s, "%s", step_text(s, "  (unquoted: special tokens, control ids of the tokenizer, not text)",
                                    "  （未加引号的是特殊 token：分词器的控制符，不是文本）"));
    free(line);
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "16_generate");
    const Config *c = s.cfg;
    const int T = s.T, S = T + N_NEW, V = c->vocab_size, L = c->n_layers, Hkv = c->n_kv_heads, Dh = c->head_dim;
    if (s.prec != PREC_BF16 && s.cuda) {  // the engine is bf16 only: the fp32 run proves the cache on the CPU alone
        step_say(&s, "%s", step_text(&s, "(--precision fp32: the GPU engine runs bf16 only; this chapter runs the CPU "
                                         "reference alone)", "（--precision fp32：GPU 引擎只支持 bf16；本章只运行 CPU 参考实现）"));
        s.cuda = false;
        s.cpu = true;
    }
    if (config_is_moe(c) && s.cuda) {  // the engine has no mixture-of-experts path (chapter 20 checks the MoE on CUDA)
        step_say(&s, "%s", step_text(&s, "(a mixture-of-experts model: the GPU engine has no MoE path; this chapter runs "
                                         "the CPU reference alone)",
                                     "（混合专家模型：GPU 引擎没有 MoE 路径；本章只运行 CPU 参考实现）"));
        s.cuda = false;
        s.cpu = true;
    }

    // ---- the cache and its shapes
    step_heading(&s, "The cache", "缓存");
    CpuModel cached = {0}, full = {0};  // the CPU reference: with the cache, and recomputing (only to compare)
    if (s.cpu) model_cpu_init(&cached, &s.ck, S, s.prec);
    if (s.compare) model_cpu_init(&full, &s.ck, S, s.prec);
    int64_t cache_shape[4] = {L, S, Hkv, Dh};
    step_shape(&s, "cache_k (all layers)", cache_shape, 4, step_act_dtype(&s));
    step_shape(&s, "cache_v (all layers)", cache_shape, 4, step_act_dtype(&s));
    step_say(&s, step_text(&s, "  %.1f KiB per position (K and V, %d layers), %.2f MiB for S = %d",
                           "  每个位置 %1$.1f KiB（K 和 V，%2$d 层），S = %4$d 时共 %3$.2f MiB"),
             kv_cache_bytes(c, 1, s.prec) / 1024.0, L, kv_cache_bytes(c, S, s.prec) / 1048576.0, S);
    // The positions of the cost section at the end: T, 2T, 4T, ... within a budget in FLOP, a few seconds for the
    // demo model on a CPU (positions T, 2T, 4T), under a second on an H100. The engine holds them all in its cache,
    // so that it loads the weights once.
    int sweep_pos[SWEEP_MAX] = {0}, cuda_pos[SWEEP_MAX] = {0};
    int n_sweep_cpu = s.cpu ? sweep_positions(c, T, 5e9, sweep_pos) : 0;
    int n_sweep_cuda = s.cuda ? sweep_positions(c, T, 2e13, cuda_pos) : 0;
    if (n_sweep_cuda > n_sweep_cpu) memcpy(sweep_pos, cuda_pos, sizeof sweep_pos);
    int n_sweep = n_sweep_cpu > n_sweep_cuda ? n_sweep_cpu : n_sweep_cuda;
    const int S_engine = n_sweep_cuda && cuda_pos[n_sweep_cuda - 1] + 1 > S ? cuda_pos[n_sweep_cuda - 1] + 1 : S;
    Engine *e = NULL;  // --no-compare on CUDA: the engine is the only path
    if (!s.cpu) e = open_engine(&s, S_engine);

    // ---- prefill
    step_heading(&s, "Prefill: the prompt in one pass, start_pos = 0", "预填充：一次处理整个提示词，start_pos = 0");
    float *logits = xmalloc((size_t)V * sizeof(float)), *logits_full = xmalloc((size_t)V * sizeof(float));
    float *step_logits = xmalloc((size_t)(N_NEW + 1) * V * sizeof(float));  // the cached logits of every step
    int32_t *seq = xmalloc((size_t)S * sizeof(int32_t));
    memcpy(seq, s.tokens, (size_t)T * sizeof(int32_t));
    double t0 = step_clock();
    if (s.cpu) model_cpu_forward(&cached, seq, T, 0, logits, false);
    else memcpy(logits, engine_forward(e, seq, T, 0), (size_t)V * sizeof(float));
    step_add_ms(&s, !s.cpu, t0);
    int64_t vshape[1] = {V};
    step_check_finite(&s, "prefill logits", logits, vshape, 1);  // corrupt weights: stop before a token is picked
    memcpy(step_logits, logits, (size_t)V * sizeof(float));
    int64_t filled[3] = {T, Hkv, Dh};
    step_shape(&s, "cache_k[layer][0:start_pos+T] after prefill", filled, 3, step_act_dtype(&s));
    int show = T < 12 ? T : 12;
    float *mask = xmalloc((size_t)(T + 4) * (T + 4) * sizeof(float));
    causal_mask_cpu(mask, show, show, 0);
    step_say(&s, step_text(&s, "mask of the prefill (first %d of %d positions): -inf above the diagonal",
                           "预填充的掩码（%d 个位置中的前 %d 个）：对角线以上为 -inf"),
             show, T);
    print_mask(&s, mask, show, show, 0);

    // ---- decode with the cache, and by recomputation
    step_heading(&s, "Decode: one token per step, start_pos = position of the token",
                 "解码：每步一个 token，start_pos = 该 token 的位置");
    // times of the way the chapter's main path took: the CPU's in a run with the CPU reference, else the engine's
    double cached_ms[N_NEW] = {0}, full_ms[N_NEW] = {0};
    int n_new = 0;
    bool all_equal = true;
    for (int i = 0; i < N_NEW; i++) {
        int32_t next = (int32_t)argmax_cpu(logits, V);
        int pos = T + i;
        seq[pos] = next;
        n_new++;
        if (i == N_NEW - 1) break;
        char piece[64];
        if (s.has_tokenizer && next < s.tok.vocab_size) tokenizer_piece_display(&s.tok, next, piece, sizeof piece);
        else snprintf(piece, sizeof piece, "#%d", (int)next);
        // cached: one token at start_pos = pos
        t0 = now_seconds();
        if (s.cpu) model_cpu_forward(&cached, &next, 1, pos, logits, false);
        else memcpy(logits, engine_decode(e, next, pos), (size_t)V * sizeof(float));
        cached_ms[i] = 1e3 * (now_seconds() - t0);
        step_check_finite(&s, "decode logits", logits, vshape, 1);
        // recompute: all pos + 1 tokens from position 0 (on the CPU only to compare; on the GPU it costs milliseconds
        // and is timed even without a comparison; it rewrites the engine's cache rows 0..pos)
        t0 = now_seconds();
        if (s.compare) model_cpu_forward(&full, seq, pos + 1, 0, logits_full, false);
        else if (!s.cpu) memcpy(logits_full, engine_forward(e, seq, pos + 1, 0), (size_t)V * sizeof(float));
        full_ms[i] = 1e3 * (now_seconds() - t0);
        if (s.cpu) s.ms_cpu += cached_ms[i] + full_ms[i];  // both ways count as the CPU reference's time
        else s.ms_cuda += cached_ms[i] + full_ms[i];
        memcpy(step_logits + (size_t)(i + 1) * V, logits, (size_t)V * sizeof(float));
        char shape[64];
        int64_t sh[3] = {pos + 1, Hkv, Dh};
        if (s.compare) {
            int diff = count_bit_diff(logits, logits_full, (size_t)V);
            all_equal &= diff == 0;
            step_say(&s, step_text(&s, "step %d: token %6d %-16s start_pos %3d  q [1, %d, %d]  cache rows %s  mask [1, %d]  "
                                       "logits differ from a full recompute in %d of %d places",
                                   "第 %d 步：token %6d %-16s start_pos %3d  q [1, %d, %d]  缓存行 %s  mask [1, %d]  "
                                   "logits 与完整重算相比有 %d 处不同（共 %d 处）"),
                     i + 1, next, piece, pos, c->n_heads, Dh, shape_str(sh, 3, shape, sizeof shape), pos + 1, diff, V);
        } else {
            step_say(&s, step_text(&s, "step %d: token %6d %-16s start_pos %3d  q [1, %d, %d]  cache rows %s  mask [1, %d]",
                                   "第 %d 步：token %6d %-16s start_pos %3d  q [1, %d, %d]  缓存行 %s  mask [1, %d]"),
                     i + 1, next, piece, pos, c->n_heads, Dh, shape_str(sh, 3, shape, sizeof shape), pos + 1);
        }
    }
    // the mask of a decode step is one row with nothing masked; a chunk of 3 tokens at start_pos T shows the offset
    causal_mask_cpu(mask, 3, T + 3, T);
    step_say(&s, step_text(&s, "mask of a 3-token chunk at start_pos %d ([3, %d]): keys 0..%d are visible to the first "
                               "query, the offset diagonal masks the future (the last %d columns):",
                           "start_pos %d 处 3 个 token 的块的掩码（[3, %d]）：第一个 query 能看到 key 0..%d，"
                           "偏移的对角线遮住未来（最后 %d 列）："),
             T, T + 3, T, 3);
    {
        float *tail = xmalloc(3 * 4 * sizeof(float));  // the last 4 columns only, for width
        for (int t = 0; t < 3; t++)
            for (int j = 0; j < 4; j++) tail[t * 4 + j] = mask[(size_t)t * (T + 3) + (T - 1 + j)];
        step_say(&s, step_text(&s, "  (columns %d..%d)", "  （第 %d..%d 列）"), T - 1, T + 2);
        print_mask(&s, tail, 3, 4, T);
        free(tail);
    }
    int64_t mshape[2] = {3, T + 3};
    step_tensor(&s, "mask_chunk_at_start_pos", mask, mshape, 2, "f32");

    // ---- proof on the CPU: exactly equal
    int64_t lshape[1] = {V};
    if (s.compare) {
        step_heading(&s, "Proof: cached = recomputed", "证明：缓存 = 重算");
        // The CPU computes every row alone and the masked keys add exact zeros, so the cached logits must be the SAME
        // bits as the recomputed ones: tolerance 0.
        step_compare(&s, "cpu_logits_cached_vs_recomputed", logits_full, logits, lshape, 1, 0.0, 0.0);
        step_say(&s, step_text(&s, "every one of the %d steps: %s", "全部 %d 步：%s"), n_new - 1,
                 all_equal ? step_text(&s, "bit-identical", "逐位相同") : step_text(&s, "DIFFERENT", "不同"));
        if (!all_equal) step_compare(&s, "cpu_all_steps_bit_identical", (float[]){1.0f}, (float[]){0.0f}, lshape, 0, 0.0, 0.0);
    } else {
        step_heading(&s, "The generated tokens (--no-compare: cached and recomputed logits not compared)",
                     "生成的 token（--no-compare：不比较缓存与重算的 logits）");
    }
    int64_t seq_shape[1] = {T + n_new};
    float *seqf = xmalloc((size_t)(T + n_new) * sizeof(float));
    for (int i = 0; i < T + n_new; i++) seqf[i] = (float)seq[i];
    step_tensor(&s, "tokens", seqf, seq_shape, 1, "f32");
    free(seqf);
    print_generated(&s, seq + T, n_new);
    int64_t k0_shape[3] = {T + n_new - 1, Hkv, Dh};
    if (s.cpu) {
        step_tensor(&s, "cache_k_layer0", cached.cache_k, k0_shape, 3, step_act_dtype(&s));
    } else {
        float *k0 = xmalloc((size_t)(T + n_new - 1) * Hkv * Dh * sizeof(float));
        cache_k_layer0_cuda(&s, seq, T + n_new - 1, k0);
        step_tensor(&s, "cache_k_layer0", k0, k0_shape, 3, step_act_dtype(&s));
        free(k0);
    }

    // ---- CUDA: the engine, the same tokens
    double gpu_cached_ms[N_NEW] = {0}, gpu_full_ms[N_NEW] = {0};
    if (s.cuda && s.cpu) {
        step_heading(&s, "CUDA: the engine (fused kernels, decode in a CUDA graph)", "CUDA：推理引擎（融合算子，解码使用 CUDA graph）");
        e = open_engine(&s, S_engine);
        float *gl = xmalloc((size_t)V * sizeof(float)), *gf = xmalloc((size_t)V * sizeof(float));
        t0 = step_clock();
        memcpy(gl, engine_forward(e, seq, T, 0), (size_t)V * sizeof(float));
        step_add_ms(&s, true, t0);
        // Logits after all the bf16 layers on two paths that accumulate in different orders: single bf16 roundings
        // flip along the way and the differences grow over the layers (measured on an H200, 32-layer llama3-8b
        // preset: normalised MSE 9e-4 GPU vs CPU, 5e-4 cached vs recomputed on the GPU; 4 layers: ~1e-5). A wrong
        // cache (a wrong position, a row not written or read twice) changes the logits of a random-weight model
        // completely: normalised MSE of order 1. Threshold 1e-2 separates the two by an order of magnitude each way.
        const double max_nmse = 1e-2;
        step_compare_nmse(&s, "cuda_prefill_logits_vs_cpu", step_logits, gl, lshape, 1, max_nmse);
        for (int i = 0; i < n_new - 1; i++) {
            int pos = T + i;
            double a = now_seconds();
            memcpy(gl, engine_decode(e, seq[pos], pos), (size_t)V * sizeof(float));
            gpu_cached_ms[i] = 1e3 * (now_seconds() - a);
            a = now_seconds();
            memcpy(gf, engine_forward(e, seq, pos + 1, 0), (size_t)V * sizeof(float));  // rewrites rows 0..pos
            gpu_full_ms[i] = 1e3 * (now_seconds() - a);
            s.ms_cuda += gpu_cached_ms[i] + gpu_full_ms[i];
            const float *ref = step_logits + (size_t)(i + 1) * V;
            char name[96];
            snprintf(name, sizeof name, "cuda_step%d_cached_vs_cpu", i + 1);
            step_compare_nmse(&s, name, ref, gl, lshape, 1, max_nmse);
            // cached (GEMV kernels) vs recomputed (cuBLAS) on the GPU: the same tolerance
            snprintf(name, sizeof name, "cuda_step%d_cached_vs_recomputed", i + 1);
            step_compare_nmse(&s, name, gf, gl, lshape, 1, max_nmse);
            if (argmax_cpu(gl, V) != argmax_cpu(ref, V))
                step_say(&s, "step %d: the CUDA argmax %lld differs from the CPU's %lld", i + 1,
                         (long long)argmax_cpu(gl, V), (long long)argmax_cpu(ref, V));
        }
        free(gl), free(gf);
    }

    // ---- the cost of one new token, position by position
    step_heading(&s, "The cost of one new token: flat with the cache, growing with the position without it",
                 "生成一个新 token 的代价：有缓存时保持平稳，没有缓存时随位置增长");
    // A sequence as long as the sweep needs: the tokens so far, then the prompt again (its text does not matter to
    // the time). At position p, recomputing runs the p + 1 tokens 0..p through the layers (and fills the cache); the
    // cached step then runs token p alone against cache rows 0..p-1.
    double sw_cached[2][SWEEP_MAX] = {{0}}, sw_full[2][SWEEP_MAX] = {{0}};  // [cpu, cuda][point], ms
    bool recompute_cpu = s.compare;  // --no-compare on the CPU: the cached way alone (the recompute is the proof's)
    if (n_sweep) {
        int len = sweep_pos[n_sweep - 1] + 1;
        int32_t *toks = xmalloc((size_t)len * sizeof(int32_t));
        for (int i = 0; i < len; i++)
            toks[i] = i < T + n_new ? seq[i] : s.tokens[T > 1 ? 1 + (i - 1) % (T - 1) : 0];
        if (n_sweep_cpu) {
            CpuModel sw = {0};
            model_cpu_init(&sw, &s.ck, sweep_pos[n_sweep_cpu - 1] + 1, s.prec);
            for (int k = 0; k < n_sweep_cpu; k++) {
                int p = sweep_pos[k];
                double a = now_seconds();
                model_cpu_forward(&sw, toks, p + 1, 0, logits_full, false);  // also fills cache rows 0..p
                if (recompute_cpu) sw_full[0][k] = 1e3 * (now_seconds() - a);
                for (int r = 0; r < 3; r++) {  // the fastest of three: a cached step is short, noise is not
                    double b = now_seconds();
                    model_cpu_forward(&sw, &toks[p], 1, p, logits, false);
                    double ms = 1e3 * (now_seconds() - b);
                    if (r == 0 || ms < sw_cached[0][k]) sw_cached[0][k] = ms;
                }
                s.ms_cpu += 1e3 * (now_seconds() - a);
            }
            model_cpu_free(&sw);
        }
        if (n_sweep_cuda) {
            for (int k = 0; k < n_sweep_cuda; k++) {
                int p = sweep_pos[k];
                double a = now_seconds();
                engine_forward(e, toks, p + 1, 0);
                sw_full[1][k] = 1e3 * (now_seconds() - a);
                for (int r = 0; r < 3; r++) {  // the first decode at a position may build its CUDA graph
                    double b = now_seconds();
                    engine_decode(e, toks[p], p);
                    double ms = 1e3 * (now_seconds() - b);
                    if (r == 0 || ms < sw_cached[1][k]) sw_cached[1][k] = ms;
                }
                s.ms_cuda += 1e3 * (now_seconds() - a);
            }
        }
        free(toks);
    }
    if (!n_sweep) {
        step_say(&s, step_text(&s, "(one recompute at position %d would cost %.0f GFLOP on the CPU, minutes at this size: "
                                   "no sweep here; with a GPU, --device cuda shows it)",
                               "（在 CPU 上于位置 %d 重算一次需要 %.0f GFLOP，这个规模要几分钟：此处不做扫描；有 GPU 时用 "
                               "--device cuda 查看）"),
                 T, (T + 1) * layer_flops_per_token(c) / 1e9);
    } else {
        char list[128] = "", plus1[128] = "";
        for (int k = 0, n1 = 0, n2 = 0; k < n_sweep; k++) {
            n1 += snprintf(list + n1, sizeof list - (size_t)n1, "%s%d", k ? ", " : "", sweep_pos[k]);
            n2 += snprintf(plus1 + n2, sizeof plus1 - (size_t)n2, "%s%d", k ? ", " : "", sweep_pos[k] + 1);
        }
        step_say(&s, step_text(&s, "positions %s: a cached step runs 1 token through the layers; a recompute runs all of them, "
                                   "%s tokens",
                               "位置 %s：缓存的一步只让 1 个 token 经过各层；重算要让全部 token 经过，即 %s 个"),
                 list, plus1);
        bool cpu_cols = n_sweep_cpu > 0, cuda_cols = n_sweep_cuda > 0, full_cpu = cpu_cols && recompute_cpu;
        char head[160];
        int h = snprintf(head, sizeof head, "%s", step_text(&s, "position ", "位置     "));
        // (the Chinese headings padded by hand: 缓存 and 重算 are 4 columns wide in 6 bytes)
        if (cpu_cols) h += snprintf(head + h, sizeof head - (size_t)h, " %s", step_text(&s, " cpu cached ms", "   cpu 缓存 ms"));
        if (full_cpu) h += snprintf(head + h, sizeof head - (size_t)h, " %s", step_text(&s, " cpu recompute ms", "      cpu 重算 ms"));
        if (cuda_cols)
            snprintf(head + h, sizeof head - (size_t)h, " %s", step_text(&s, " cuda cached ms  cuda recompute ms",
                                                                          "  cuda 缓存 ms       cuda 重算 ms"));
        step_say(&s, "%s", head);
        for (int k = 0; k < n_sweep; k++) {
            char row[160];
            int r = snprintf(row, sizeof row, "%-9d", sweep_pos[k]);
            if (cpu_cols) r += k < n_sweep_cpu ? snprintf(row + r, sizeof row - (size_t)r, " %14.2f", sw_cached[0][k])
                                               : snprintf(row + r, sizeof row - (size_t)r, " %14s", "-");
            if (full_cpu) r += k < n_sweep_cpu ? snprintf(row + r, sizeof row - (size_t)r, " %17.2f", sw_full[0][k])
                                               : snprintf(row + r, sizeof row - (size_t)r, " %17s", "-");
            if (cuda_cols) snprintf(row + r, sizeof row - (size_t)r, " %15.3f %18.3f", sw_cached[1][k], sw_full[1][k]);
            step_say(&s, "%s", row);
        }
        if (!recompute_cpu && cpu_cols)
            step_say(&s, "%s", step_text(&s, "(the recompute did not run: --no-compare)", "（未运行重算：--no-compare）"));
        // the figure: the path the chapter's numbers come from (the CPU's when it ran), ms per new token
        int dev = cpu_cols ? 0 : 1, n_pts = cpu_cols ? n_sweep_cpu : n_sweep_cuda;
        float xs[SWEEP_MAX], yc[SWEEP_MAX], yf[SWEEP_MAX];
        for (int k = 0; k < n_pts; k++)
            xs[k] = (float)sweep_pos[k], yc[k] = (float)sw_cached[dev][k], yf[k] = (float)sw_full[dev][k];
        ChartSeries series[2] = {{step_text(&s, "with the cache: 1 token", "有缓存：1 个 token"), yc},
                                 {step_text(&s, "recomputing: all tokens", "重算：全部 token"), yf}};
        char title[160];
        snprintf(title, sizeof title, step_text(&s, "time of one new token (%s)", "生成一个新 token 的时间（%s）"),
                 dev ? "CUDA" : "CPU");
        char *png = step_path(&s, "cost_per_token.png");
        figure_line_chart(png, xs, n_pts, series, dev == 0 && !recompute_cpu ? 1 : 2, title,
                          step_text(&s, "position of the new token", "新 token 的位置"), "ms");
        free(png);
        step_image(&s, "cost_per_token.png", title);
    }
    step_explain(&s, "A cached step runs one token through the layers whatever the position, so its time stays flat "
                     "(only the attention over the cache grows, slowly); a recompute runs position+1 tokens, so its "
                     "time grows with the position and N new tokens cost about N·(T + N/2) token-passes instead of N. "
                     "The cache costs memory instead: the bytes per position printed above, times S.",
                 "缓存的一步无论在哪个位置都只让一个 token 经过各层，所以时间保持平稳（只有对缓存的注意力缓慢增长）；"
                 "重算要让 position+1 个 token 经过各层，时间随位置增长，N 个新 token 大约需要 N·(T + N/2) 次 token "
                 "计算，而不是 N 次。代价是内存：上面打印的每个位置的字节数乘以 S。");

    free(logits), free(logits_full), free(step_logits), free(seq), free(mask);
    if (e) engine_free(e);
    model_cpu_free(&cached), model_cpu_free(&full);
    return step_finish(&s);
}
