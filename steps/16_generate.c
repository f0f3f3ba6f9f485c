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
// the time of both ways, step by step.
// With --no-compare nothing is compared: on CUDA the engine alone generates (prefill, cached decode) and the GPU's
// recompute runs only to time the other way; on the CPU the reference generates with its cache and the recompute,
// which costs minutes at 8B shape and served the proof, does not run.
// Shapes: T prompt tokens, N new tokens, S = T + N cache rows, L layers, Hkv kv heads, Dh head dim, V vocab.
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

// K and V of every layer for n positions, in bytes: bf16 values take 2 bytes (as the GPU stores them), fp32 4.
static size_t kv_cache_bytes(const Config *c, int n, Precision p) {
    return 2 * (size_t)c->n_layers * (size_t)n * (size_t)c->n_kv_heads * (size_t)c->head_dim * (p == PREC_BF16 ? 2 : 4);
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
        size_t k = (size_t)snprintf(line, sizeof line, "  query at position %3d: ", start_pos + t);
        for (int j = 0; j < cols && k + 8 < sizeof line; j++)
            k += (size_t)snprintf(line + k, sizeof line - k, "%s", isinf(mask[(size_t)t * cols + j]) ? " -inf" : "    0");
        step_say(s, "%s", line);
    }
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
    step_say(&s, "  %.1f KiB per position (K and V, %d layers), %.2f MiB for S = %d", kv_cache_bytes(c, 1, s.prec) / 1024.0,
             L, kv_cache_bytes(c, S, s.prec) / 1048576.0, S);
    Engine *e = NULL;  // --no-compare on CUDA: the engine is the only path
    if (!s.cpu) e = open_engine(&s, S);

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
    memcpy(step_logits, logits, (size_t)V * sizeof(float));
    int64_t filled[3] = {T, Hkv, Dh};
    step_shape(&s, "cache_k[layer][0:start_pos+T] after prefill", filled, 3, step_act_dtype(&s));
    int show = T < 12 ? T : 12;
    float *mask = xmalloc((size_t)(T + 4) * (T + 4) * sizeof(float));
    causal_mask_cpu(mask, show, show, 0);
    step_say(&s, "mask of the prefill (first %d of %d positions): -inf above the diagonal", show, T);
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
            step_say(&s, "step %d: token %6d %-16s start_pos %3d  q [1, %d, %d]  cache rows %s  mask [1, %d]  "
                         "logits differ from a full recompute in %d of %d places",
                     i + 1, next, piece, pos, c->n_heads, Dh, shape_str(sh, 3, shape, sizeof shape), pos + 1, diff, V);
        } else {
            step_say(&s, "step %d: token %6d %-16s start_pos %3d  q [1, %d, %d]  cache rows %s  mask [1, %d]",
                     i + 1, next, piece, pos, c->n_heads, Dh, shape_str(sh, 3, shape, sizeof shape), pos + 1);
        }
    }
    // the mask of a decode step is one row with nothing masked; a chunk of 3 tokens at start_pos T shows the offset
    causal_mask_cpu(mask, 3, T + 3, T);
    step_say(&s, "mask of a 3-token chunk at start_pos %d ([3, %d]): keys 0..%d are visible to the first query, the "
                 "offset diagonal masks the future (the last %d columns):", T, T + 3, T, 3);
    {
        float *tail = xmalloc(3 * 4 * sizeof(float));  // the last 4 columns only, for width
        for (int t = 0; t < 3; t++)
            for (int j = 0; j < 4; j++) tail[t * 4 + j] = mask[(size_t)t * (T + 3) + (T - 1 + j)];
        step_say(&s, "  (columns %d..%d)", T - 1, T + 2);
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
        step_say(&s, "every one of the %d steps: %s", n_new - 1, all_equal ? "bit-identical" : "DIFFERENT");
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
    {
        char *text = step_decode(&s, seq + T, (size_t)n_new);
        step_say(&s, "generated: %s", text);
        free(text);
    }
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
        e = open_engine(&s, S);
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
        engine_free(e), e = NULL;
    }

    // ---- the cost of both ways
    step_heading(&s, "Time: cached O(n) per token vs recomputed O(n) per token, O(n²) in total",
                 "时间：缓存每个 token O(n)，重算每个 token 也要处理 n 个 token，总计 O(n²)");
    double sum_c = 0, sum_f = 0, sum_gc = 0, sum_gf = 0;
    for (int i = 0; i < n_new - 1; i++)
        sum_c += cached_ms[i], sum_f += full_ms[i], sum_gc += gpu_cached_ms[i], sum_gf += gpu_full_ms[i];
    if (!s.cpu) {  // --no-compare on CUDA: the engine's times
        step_say(&s, "%-6s %-10s %16s %15s", "step", "position", "cuda cached ms", "cuda recompute");
        for (int i = 0; i < n_new - 1; i++)
            step_say(&s, "%-6d %-10d %16.3f %15.3f", i + 1, T + i, cached_ms[i], full_ms[i]);
        step_say(&s, "total: cuda %.2f ms cached vs %.2f ms recomputed (x%.1f)", sum_c, sum_f, sum_f / fmax(sum_c, 1e-9));
    } else if (!s.compare) {  // --no-compare on the CPU: the cached way alone
        step_say(&s, "%-6s %-10s %14s", "step", "position", "cpu cached ms");
        for (int i = 0; i < n_new - 1; i++) step_say(&s, "%-6d %-10d %14.2f", i + 1, T + i, cached_ms[i]);
        step_say(&s, "total: cpu %.1f ms cached (the recompute did not run: --no-compare)", sum_c);
    } else {
        step_say(&s, "%-6s %-10s %14s %14s%s", "step", "position", "cpu cached ms", "cpu recompute",
                 s.cuda ? "   cuda cached ms  cuda recompute" : "");
        for (int i = 0; i < n_new - 1; i++) {
            if (s.cuda)
                step_say(&s, "%-6d %-10d %14.2f %14.2f %16.3f %15.3f", i + 1, T + i, cached_ms[i], full_ms[i],
                         gpu_cached_ms[i], gpu_full_ms[i]);
            else step_say(&s, "%-6d %-10d %14.2f %14.2f", i + 1, T + i, cached_ms[i], full_ms[i]);
        }
        step_say(&s, "total: cpu %.1f ms cached vs %.1f ms recomputed (x%.1f)%s", sum_c, sum_f,
                 sum_f / fmax(sum_c, 1e-9), "");
        if (s.cuda)
            step_say(&s, "total: cuda %.2f ms cached vs %.2f ms recomputed (x%.1f)", sum_gc, sum_gf,
                     sum_gf / fmax(sum_gc, 1e-9));
    }
    step_explain(&s, "A cached step processes one token whatever the position, so its time stays flat; a recompute "
                     "processes position+1 tokens, so its time grows with the position and N tokens cost about "
                     "N·(T + N/2) token-passes instead of N. The cache costs memory instead: the bytes per position "
                     "printed above, times S.",
                 "缓存的一步无论在哪个位置都只处理一个 token，所以时间保持平稳；重算要处理 position+1 个 token，时间随位置增长，"
                 "N 个 token 大约需要 N·(T + N/2) 次 token 计算，而不是 N 次。代价是内存：上面打印的每个位置的字节数乘以 S。");

    free(logits), free(logits_full), free(step_logits), free(seq), free(mask);
    if (e) engine_free(e);
    model_cpu_free(&cached), model_cpu_free(&full);
    return step_finish(&s);
}
