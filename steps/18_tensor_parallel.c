// 18_tensor_parallel: one layer and the logits split over N ranks, as Meta's fairscale layers split Llama-3.
//
// Rank r of N (common/tp.h) holds the rows of its H/N heads of wq, wk, wv (column-parallel; kv heads replicated when
// N > Hkv), the matching columns of wo (row-parallel), F/N rows of w1 and w3 and the matching columns of w2, V/N
// vocabulary rows of tok_embeddings and output; the norms whole. One layer on N ranks:
//   token_embeddings = all_reduce(rows of the ids in rank r's range, zeros elsewhere)    VocabParallelEmbedding
//   x_norm = rms_norm(x)                                   every rank, the whole row
//   q_r, k_r, v_r = x_norm · wq_rᵀ, wk_rᵀ, wv_rᵀ            [T, H/N·Dh], [T, kv·Dh]: no communication
//   attn_r = attention(rope(q_r), rope(k_r), v_r)           its own heads
//   embedding_delta = all_reduce(attn_r · wo_rᵀ)             the 1st all-reduce: N partial [T, D] summed
//   h = x + embedding_delta, hn = rms_norm(h)                every rank
//   hidden_r = silu(hn · w1_rᵀ) * (hn · w3_rᵀ)              [T, F/N]
//   output_after_feedforward = all_reduce(hidden_r · w2_rᵀ)  the 2nd all-reduce
//   logits = all_gather(xn_last · output_rᵀ)                 each rank's V/N logits of the last token
// On the CPU the ranks are emulated one after another, and the all-reduce adds the partial sums in rank order,
// rounding after each addition as a ring all-reduce does (for N = 2 the very bits of NCCL's bf16 sum). With
// --device cuda and N GPUs each rank is a process on its own GPU and the all-reduces are NCCL's; with fewer GPUs the
// ranks run one after another on GPU 0 (steps/tp_ranks.c).
// Compared: the split results against chapters 02, 11-13 and 15 computed whole (exact where no sum is split; within
// a bound of the roundings for the two all-reduces), and the CUDA ranks against the CPU's.
// Run: build/steps/18_tensor_parallel [--tp N] [--layer L]     (N: default 2, or 1 when the model cannot split in 2)
// Outputs: OUT/18_tensor_parallel/*.npy (per-rank tensors with a leading [N] axis), weight_split.png,
//          partial_sums_wo.png, partial_sums_w2.png
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "engine_ranks.h"
#include "formats/pth.h"
#include "kernels.h"
#include "layer.h"
#include "tp_ranks.h"

// dist.all_reduce(partial, op=SUM): the N partials added one rank at a time, rounded after each addition (what a
// ring all-reduce does: NCCL's bf16 sum rounds each of its N-1 additions; the order of the ring differs per chunk,
// so for N > 2 NCCL may differ from this by an ulp per addition). parts [N][n] -> out [n].
static void all_reduce_sum_cpu(float *out, const float *parts, int N, size_t n, Precision p) {
    memcpy(out, parts, n * sizeof(float));
    for (int r = 1; r < N; r++) residual_forward_cpu(out, out, parts + (size_t)r * n, n, p);
}

// The N ranks of this run: --tp, or 2 when it splits the model, else 1.
static int ranks_of(Step *s) {
    char why[256];
    if (s->tp) return s->tp;  // step_init checked it (tp_check)
    if (tp_check(s->cfg, 2, why, sizeof why)) return 2;
    step_say(s, step_text(s, "(--tp not given and 2 ranks cannot split this model: %s; N = 1)",
                          "（未给出 --tp，且这个模型不能分成 2 份：%s；N = 1）"), why);
    return 1;
}

// "a..b" of a range, or "a" when it has one element.
static const char *range_str(char *buf, size_t n, int64_t a, int64_t count) {
    if (count == 1) snprintf(buf, n, "%lld", (long long)a);
    else snprintf(buf, n, "%lld..%lld", (long long)a, (long long)(a + count - 1));
    return buf;
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

// What each rank holds, printed and drawn (weight_split.png).
static void show_split(Step *s, int N) {
    const Config *c = s->cfg;
    const int L = s->layer, Dh = c->head_dim;
    char a[48], b[48], d[48], e[48];
    step_heading(s, "what each rank holds", "每个 rank 持有什么");
    step_say(s, "%-5s %-12s %-12s %-16s %s", "rank", "heads", "kv heads", "FFN rows", "vocabulary rows");
    for (int r = 0; r < N; r++) {
        TpSlice sl = tp_slice(c, N, r);
        step_say(s, "%-5d %-12s %-12s %-16s %s", r, range_str(a, sizeof a, sl.head0, sl.heads),
                 range_str(b, sizeof b, sl.kv_head0, sl.kv_heads), range_str(d, sizeof d, sl.ffn0, sl.ffn),
                 range_str(e, sizeof e, sl.vocab0, sl.vocab));
    }
    TpSlice s0 = tp_slice(c, N, 0);
    if (s0.kv_replicas > 1)
        step_say(s, step_text(s, "%d ranks and %d kv head%s: each kv head is replicated on %d ranks (its query heads "
                                 "are split over them), as vLLM and Meta's resharding do",
                              "%d 个 rank、%d 个 kv 头%.0s：每个 kv 头在 %d 个 rank 上复制（共用它的 query 头分布在这些 rank "
                              "上），vLLM 和 Meta 的重新分片也是这样做的"),
                 N, c->n_kv_heads, c->n_kv_heads == 1 ? "" : "s", s0.kv_replicas);

    // every weight of the layer and the two vocabulary matrices: whole shape, one rank's shape, how it is cut
    const char *names[10] = {"tok_embeddings.weight", "attention.wq.weight", "attention.wk.weight",
                             "attention.wv.weight", "attention.wo.weight", "feed_forward.w1.weight",
                             "feed_forward.w3.weight", "feed_forward.w2.weight", "attention_norm.weight",
                             "output.weight"};
    const char *how_en[10] = {"rows: vocabulary (VocabParallelEmbedding)", "rows: whole heads (ColumnParallelLinear)",
                              "rows: whole kv heads (ColumnParallelLinear)", "rows: whole kv heads (ColumnParallelLinear)",
                              "columns: partial sums (RowParallelLinear)", "rows (ColumnParallelLinear)",
                              "rows (ColumnParallelLinear)", "columns: partial sums (RowParallelLinear)",
                              "whole on every rank (so are ffn_norm, norm)", "rows: vocabulary (ColumnParallelLinear)"};
    const char *how_zh[10] = {"按行：词表（VocabParallelEmbedding）", "按行：整头（ColumnParallelLinear）",
                              "按行：整个 kv 头（ColumnParallelLinear）", "按行：整个 kv 头（ColumnParallelLinear）",
                              "按列：部分和（RowParallelLinear）", "按行（ColumnParallelLinear）",
                              "按行（ColumnParallelLinear）", "按列：部分和（RowParallelLinear）",
                              "每个 rank 都有完整的一份（ffn_norm、norm 也是）", "按行：词表（ColumnParallelLinear）"};
    step_say(s, "%s", "");
    step_say(s, "%-36s %-16s %-16s %s", "weight", "whole", "rank 0", step_text(s, "split", "切分方式"));
    FigureBandedMatrix m[10];
    FigureBand *bands = xcalloc((size_t)10 * N, sizeof(FigureBand));
    char (*labels)[24] = xcalloc((size_t)10 * N, sizeof *labels);
    char full_names[10][64];
    double bytes_whole = 0, bytes_rank0 = 0;
    for (int i = 0; i < 10; i++) {
        bool per_layer = i >= 1 && i <= 8;
        if (per_layer) snprintf(full_names[i], sizeof full_names[i], "layers.%d.%s", L, names[i]);
        else snprintf(full_names[i], sizeof full_names[i], "%s", names[i]);
        const Tensor *t;
        step_weight(s, &t, "%s", full_names[i]);
        TpPart p0 = tp_part(c, full_names[i], N, 0);
        int64_t shape0[2] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0};
        if (p0.dim >= 0) shape0[p0.dim] = p0.count;
        char whole[48], part[48];
        shape_str(t->shape, t->ndim, whole, sizeof whole);
        shape_str(shape0, t->ndim, part, sizeof part);
        step_say(s, "%-36s %-16s %-16s %s", full_names[i], whole, part, step_text(s, how_en[i], how_zh[i]));
        size_t es = sizeof(uint16_t);
        bytes_whole += (double)tensor_numel(t) * es;
        bytes_rank0 += (double)shape0[0] * (t->ndim > 1 ? (double)shape0[1] : 1.0) * es;
        // the figure: one band per rank (or one band held by all, for the norm; stripes for a replicated kv head)
        m[i] = (FigureBandedMatrix){full_names[i], t->shape[0], t->ndim > 1 ? t->shape[1] : 0, p0.dim < 0 ? 0 : p0.dim,
                                    0, bands + (size_t)i * N};
        if (p0.dim < 0) {
            bands[(size_t)i * N] = (FigureBand){0, t->shape[0], N >= 32 ? ~0u : (1u << N) - 1u, "all"};
            m[i].n_bands = 1;
            continue;
        }
        for (int r = 0; r < N; r++) {
            TpPart p = tp_part(c, full_names[i], N, r);
            FigureBand *prev = m[i].n_bands ? &bands[(size_t)i * N + m[i].n_bands - 1] : NULL;
            if (prev && prev->start == p.start) {  // the same rows as the rank before: a replicated kv head
                prev->colors |= 1u << (r % 32);
                snprintf(labels[(size_t)i * N + m[i].n_bands - 1], sizeof labels[0], "r%d-%d", r - __builtin_popcount(prev->colors) + 1, r);
                continue;
            }
            snprintf(labels[(size_t)i * N + m[i].n_bands], sizeof labels[0], "r%d", r);
            bands[(size_t)i * N + m[i].n_bands] = (FigureBand){p.start, p.count, 1u << (r % 32),
                                                               labels[(size_t)i * N + m[i].n_bands]};
            m[i].n_bands++;
        }
    }
    step_say(s, step_text(s, "bytes of these weights: %.2f MiB whole, %.2f MiB on each rank (1/%d = %.2f MiB, plus the "
                             "norms%s)",
                          "这些权重的字节数：完整 %.2f MiB，每个 rank %.2f MiB（1/%d = %.2f MiB，加上复制的 norm%s）"),
             mib(bytes_whole), mib(bytes_rank0), N, mib(bytes_whole / N),
             s0.kv_replicas > 1 ? step_text(s, " and the replicated kv heads", " 和复制的 kv 头") : "");
    char **legend = xcalloc((size_t)N, sizeof(char *));
    for (int r = 0; r < N; r++) legend[r] = xasprintf("rank %d", r);
    char title[128], sub[160];
    snprintf(title, sizeof title, step_text(s, "which rank holds which rows and columns (N = %d)",
                                            "哪个 rank 持有哪些行和列（N = %d）"), N);
    snprintf(sub, sizeof sub, step_text(s, "layer %d and the vocabulary matrices; stripes: a part several ranks hold",
                                        "第 %d 层及词表矩阵；条纹：多个 rank 都持有的部分"), L);
    char *png = step_path(s, "weight_split.png");
    figure_banded_matrices(png, m, 10, (const char *const *)legend, N, step_split_words(s), title, sub);
    free(png);
    step_image(s, "weight_split.png", title);
    for (int r = 0; r < N; r++) free(legend[r]);
    free(legend), free(bands), free(labels);

    // where the ranks talk
    const int T = s->T, D = c->dim, NL = c->n_layers;
    size_t act = act_bytes(1, s->prec);
    step_heading(s, "where the ranks talk", "rank 之间在哪里通信");
    step_say(s, step_text(s, "per layer: 2 all-reduces of [T, D] = [%d, %d] %s (%zu bytes each): after wo and after w2",
                          "每层 2 次 all-reduce，每次 [T, D] = [%d, %d] %s（%zu 字节）：wo 之后和 w2 之后"),
             T, D, step_act_dtype(s), (size_t)T * D * act);
    step_say(s, step_text(s, "per forward pass: 1 (embedding) + 2 x %d (layers) = %d all-reduces, and 1 all-gather of the "
                             "logits (%d floats per rank)",
                          "每次前向：1（嵌入）+ 2 x %d（层）= %d 次 all-reduce，以及 1 次 logits 的 all-gather（每个 rank "
                          "%d 个 float）"),
             NL, 1 + 2 * NL, c->vocab_size / N);
    step_say(s, step_text(s, "per generated token (T = 1): %d all-reduces of %d values (%zu bytes)",
                          "每生成一个 token（T = 1）：%d 次 all-reduce，每次 %d 个值（%zu 字节）"),
             1 + 2 * NL, D, (size_t)D * act);
    (void)Dh;
}

// When the checkpoint is Meta's layout in exactly N files, rank r's parts are what consolidated.<r>.pth holds (the
// file Meta's code loads on rank r): checked byte for byte for the weights shown.
static void check_checkpoint_files(Step *s, int N) {
    if (s->ck.kind != CKPT_META_DIR || s->ck.n_files != N || N == 1) return;
    const Config *c = s->cfg;
    float *mismatch = xcalloc((size_t)N, sizeof(float)), *zero = xcalloc((size_t)N, sizeof(float));
    const char *per_layer[9] = {"attention.wq.weight", "attention.wk.weight", "attention.wv.weight",
                                "attention.wo.weight", "feed_forward.w1.weight", "feed_forward.w3.weight",
                                "feed_forward.w2.weight", "attention_norm.weight", "ffn_norm.weight"};
    for (int r = 0; r < N; r++) {
        PthFile f;
        pth_open(&f, s->ck.files[r].path);
        for (int i = 0; i < 11; i++) {
            char name[96];
            if (i < 9) snprintf(name, sizeof name, "layers.%d.%s", s->layer, per_layer[i]);
            else snprintf(name, sizeof name, "%s", i == 9 ? "tok_embeddings.weight" : "output.weight");
            const Tensor *whole = checkpoint_find(&s->ck, name), *mine = NULL;
            for (int k = 0; k < f.index.n_tensors && !mine; k++)
                if (!strcmp(f.index.tensors[k].name, name)) mine = &f.index.tensors[k];
            if (!whole || !mine || whole->dtype != mine->dtype || !tensor_is_contiguous(mine)) {
                mismatch[r] += 1;
                continue;
            }
            TpPart p = tp_part(c, name, N, r);
            size_t es = dtype_size(whole->dtype);
            int64_t rows = whole->shape[0], cols = whole->ndim > 1 ? whole->shape[1] : 1;
            int64_t r0 = p.dim == 0 ? p.start : 0, nr = p.dim == 0 ? p.count : rows;
            int64_t c0 = p.dim == 1 ? p.start : 0, nc = p.dim == 1 ? p.count : cols;
            if (tensor_numel(mine) != nr * nc) {
                mismatch[r] += 1;
                continue;
            }
            for (int64_t y = 0; y < nr; y++)
                if (memcmp((const uint8_t *)whole->data + ((size_t)(r0 + y) * cols + c0) * es,
                           (const uint8_t *)mine->data + (size_t)y * nc * es, (size_t)nc * es) != 0) {
                    mismatch[r] += 1;
                    break;
                }
        }
        pth_close(&f);
    }
    step_say(s, step_text(s, "this checkpoint is %d files (Meta's layout for N = %d): rank r's parts above should be "
                             "the tensors of consolidated.%02d..%02d.pth",
                          "这个检查点有 %d 个文件（Meta 在 N = %d 时的布局）：上面 rank r 的部分应当正是 "
                          "consolidated.%02d..%02d.pth 中的张量"),
             N, N, 0, N - 1);
    int64_t sh[1] = {N};
    step_compare(s, "weights of layer --layer and the vocabulary not equal to consolidated.<rank>.pth's (count per rank)",
                 zero, mismatch, sh, 1, 0, 0);
    free(mismatch), free(zero);
}

// A [N + 2, cols] heatmap of the last token: each rank's partial sum, their total and the unsplit product.
static void draw_partials(Step *s, const char *file, const char *what, const float *parts, const float *total,
                          const float *unsplit, int N) {
    const int T = s->T, D = s->cfg->dim, cols = D < 32 ? D : 32;  // cells wide enough for every row label
    float *rows = xmalloc((size_t)(N + 2) * cols * sizeof(float));
    char **labels = xcalloc((size_t)N + 2, sizeof(char *));
    for (int r = 0; r < N; r++) {
        memcpy(rows + (size_t)r * cols, parts + ((size_t)r * T + (T - 1)) * D, (size_t)cols * sizeof(float));
        labels[r] = xasprintf(step_text(s, "rank %d: partial", "rank %d：部分和"), r);
    }
    memcpy(rows + (size_t)N * cols, total + (size_t)(T - 1) * D, (size_t)cols * sizeof(float));
    memcpy(rows + (size_t)(N + 1) * cols, unsplit + (size_t)(T - 1) * D, (size_t)cols * sizeof(float));
    labels[N] = xstrdup(step_text(s, "all-reduce: the sum", "all-reduce：总和"));
    labels[N + 1] = xstrdup(step_text(s, "unsplit", "不切分"));
    char title[160], sub[200];
    snprintf(title, sizeof title, step_text(s, "%s: %d partial sums and their total", "%s：%d 个部分和及其总和"), what, N);
    char piece[64];
    token_display(s->pieces[T - 1], piece, sizeof piece);
    snprintf(sub, sizeof sub, step_text(s, "last token (%s), dims 0..%d of %d; layer %d",
                                        "最后一个 token（%s），第 0..%d 维（共 %d 维）；第 %d 层"),
             piece, cols - 1, D, s->layer);
    HeatmapOptions opt = {.title = title, .subtitle = sub, .x_label = step_text(s, "dimension", "维度"),
                          .y_label = NULL, .value_label = step_text(s, "value", "数值"),
                          .colormap = COLORMAP_DIVERGING, .symmetric = true, .raw_labels = true};
    char *png = step_path(s, file);
    figure_heatmap(png, rows, N + 2, cols, (const char *const *)labels, NULL, &opt);
    free(png);
    step_image(s, file, title);
    for (int r = 0; r < N + 2; r++) free(labels[r]);
    free(labels), free(rows);
}

// The validator's tolerance for an all-reduced sum against the unsplit product: each rank's partial was rounded
// once, each of the N-1 additions once, the unsplit result once. With u the unit roundoff of the activations
// (2^-8 for bf16, 2^-24 for fp32) and A = sum_r |partial_r| per element, the difference is at most u·(N·A + |ref|):
// atol = u·N·max(A), rtol = u (a bound, not an estimate: any larger difference is a wrong sum).
static void all_reduce_tolerance(const Step *s, const float *parts, int N, size_t n, double *atol, double *rtol) {
    double u = s->prec == PREC_BF16 ? 1.0 / 256 : 1.0 / 16777216, max_a = 0;
    for (size_t i = 0; i < n; i++) {
        double a = 0;
        for (int r = 0; r < N; r++) a += fabs(parts[(size_t)r * n + i]);
        if (a > max_a) max_a = a;
    }
    *atol = u * N * max_a, *rtol = u;
}

// Columns [c0, c0 + n) of each of the N rank blocks [N][T][n_r] gathered into [T, n_all] (torch.cat(dim=-1)).
static void gather_columns(float *out, const float *parts, int N, int T, int n_r, int n_all, const int *c0) {
    for (int r = 0; r < N; r++)
        for (int t = 0; t < T; t++)
            memcpy(out + (size_t)t * n_all + c0[r], parts + ((size_t)r * T + t) * n_r, (size_t)n_r * sizeof(float));
}

int main(int argc, char **argv) {
    int fd, rank = tp_rank_from_args(&argc, argv, &fd);  // a rank process of the NCCL path (steps/tp_ranks.c)
    if (rank >= 0) {
        if (argc != 3 || strcmp(argv[1], "--tp-worker") != 0) fatal("rank %d: expected --tp-worker DIR", rank);
        return tp_worker_main(argv[2], rank, fd);
    }
    Step s;
    step_init(&s, argc, argv, "18_tensor_parallel");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, Dh = c->head_dim, NL = c->n_layers, V = c->vocab_size;
    const size_t TD = (size_t)T * D;
    const Precision p = s.prec;
    const float eps = (float)c->norm_eps;
    const int N = ranks_of(&s);
    step_say(&s, "N = %d %s", N, step_text(&s, "ranks (model_parallel_size)", "个 rank（model_parallel_size）"));
    show_split(&s, N);
    check_checkpoint_files(&s, N);

    // the unsplit layer of chapters 11-13 from the same input, and the final embedding of chapter 15
    LayerTrace lt;
    layer_inputs_upto(&s, OP_COUNT, &lt);
    float *x_final = xmalloc(TD * sizeof(float)), *xn_final = xmalloc(TD * sizeof(float));
    const float *xn_last = xn_final + (size_t)(T - 1) * D;  // the row the logits need
    float *logits_whole = xmalloc((size_t)V * sizeof(float));
    const uint16_t *norm_w = step_weight(&s, NULL, "norm.weight"), *out_w = step_weight(&s, NULL, "output.weight");
    // The stream after the last layer: chapters 14-15 check it; here it is only the logits' input, so with a GPU
    // the layers after --layer run on the CUDA path (seconds for the 8B, where the CPU takes a minute).
    memcpy(x_final, lt.layer_embedding, TD * sizeof(float));
    if (L + 1 < NL && s.cuda) model_layers_cuda(&s, x_final, L + 1, NL - L - 1, x_final, NULL, NULL);
    if (s.cpu) {
        double t0 = step_clock();
        for (int l = L + 1; l < NL && !s.cuda; l++) {  // chapter 14's loop
            LayerTrace next;
            layer_trace_alloc(&next, &s, l, 0);
            memcpy(next.x_in, x_final, TD * sizeof(float));
            layer_forward_cpu(&s, &next);
            memcpy(x_final, next.layer_embedding, TD * sizeof(float));
            layer_trace_free(&next);
        }
        rmsnorm_forward_cpu(xn_final, NULL, x_final, norm_w, T, D, eps, p);
        logits_forward_cpu(logits_whole, xn_last, out_w, 1, D, V, p);
        step_add_ms(&s, false, t0);
    } else {  // --no-compare on CUDA: the final norm on the GPU too
        void *xd = step_dev_act(&s, x_final, TD), *xnd = step_dev_act(&s, NULL, TD);
        rmsnorm_forward_cuda(xnd, NULL, xd, step_weight_dev(&s, "norm.weight"), T, D, eps, p);
        step_host_act(&s, xn_final, xnd, TD);
    }

    TpRun run;
    tp_run_alloc(&run, c, T, N);
    if (s.cpu) {  // the N ranks emulated on the CPU, one after another
        step_heading(&s, "the ranks, emulated on the CPU one after another", "在 CPU 上依次模拟各个 rank");
        double t0 = step_clock();
        const uint16_t *emb = step_weight(&s, NULL, "tok_embeddings.weight");
        const LayerWeights lw = layer_weights(&s, L);
        const uint16_t *wq = lw.wq, *wk = lw.wk, *wv = lw.wv, *wo = lw.wo, *w1 = lw.w1, *w3 = lw.w3, *w2 = lw.w2;
        const uint16_t *ffn_norm = lw.ffn_norm;
        const int HD = run.heads * Dh, KD = run.kv_heads * Dh, FF = run.ffn, VV = run.vocab;
        float *gate = xmalloc((size_t)T * FF * sizeof(float)), *up = xmalloc((size_t)T * FF * sizeof(float));
        float *att = xmalloc((size_t)run.heads * T * T * sizeof(float));
        for (int r = 0; r < N; r++) {
            TpSlice sl = tp_slice(c, N, r);
            // VocabParallelEmbedding: the ids in [vocab0, vocab0 + V/N) look up the rank's rows, the others get 0
            float *e = run.emb_part + (size_t)r * TD;
            for (int t = 0; t < T; t++) {
                int id = s.tokens[t];
                bool mine = id >= sl.vocab0 && id < sl.vocab0 + sl.vocab;
                for (int i = 0; i < D; i++) e[(size_t)t * D + i] = mine ? bf16_to_f32(emb[(size_t)id * D + i]) : 0.0f;
            }
            // q_r, k_r, v_r = x_norm · wq_rᵀ, wk_rᵀ, wv_rᵀ: the rows of the rank's heads (every rank has x_norm)
            float *q = run.q + (size_t)r * T * HD, *k = run.k + (size_t)r * T * KD, *v = run.v + (size_t)r * T * KD;
            matmul_forward_cpu(q, lt.x_norm, wq + (size_t)sl.head0 * Dh * D, T, D, HD, p);
            matmul_forward_cpu(k, lt.x_norm, wk + (size_t)sl.kv_head0 * Dh * D, T, D, KD, p);
            matmul_forward_cpu(v, lt.x_norm, wv + (size_t)sl.kv_head0 * Dh * D, T, D, KD, p);
            rope_forward_cpu(q, q, s.freqs_cis, T, sl.heads, Dh, 0, p);
            rope_forward_cpu(k, k, s.freqs_cis, T, sl.kv_heads, Dh, 0, p);
            // attention of the rank's own heads (local head j reads local kv head j / (heads / kv_heads))
            attention_forward_cpu(run.attn + (size_t)r * T * HD, att, q, k, v, T, T, sl.heads, sl.kv_heads, Dh, 0, p);
            // partial_r = attn_r · wo_rᵀ: wo's columns of the rank's heads (RowParallelLinear)
            uint16_t *wo_r = tp_weight_columns(wo, D, c->n_heads * Dh, sl.head0 * Dh, HD);
            matmul_forward_cpu(run.delta_part + (size_t)r * TD, run.attn + (size_t)r * T * HD, wo_r, T, HD, D, p);
            free(wo_r);
        }
        // token_embeddings = all_reduce(emb_part); embedding_delta = all_reduce(partial)
        all_reduce_sum_cpu(run.token_embeddings, run.emb_part, N, TD, p);
        all_reduce_sum_cpu(run.delta, run.delta_part, N, TD, p);
        // every rank: h = x + embedding_delta, hn = rms_norm(h, ffn_norm)
        residual_forward_cpu(run.h, lt.x_in, run.delta, TD, p);
        rmsnorm_forward_cpu(run.hn, NULL, run.h, ffn_norm, T, D, eps, p);
        for (int r = 0; r < N; r++) {
            TpSlice sl = tp_slice(c, N, r);
            // hidden_r = silu(hn · w1_rᵀ) * (hn · w3_rᵀ): the rank's F/N rows
            matmul_forward_cpu(gate, run.hn, w1 + (size_t)sl.ffn0 * D, T, D, FF, p);
            matmul_forward_cpu(up, run.hn, w3 + (size_t)sl.ffn0 * D, T, D, FF, p);
            swiglu_forward_cpu(run.hidden + (size_t)r * T * FF, gate, up, (size_t)T * FF, p);
            // partial_r = hidden_r · w2_rᵀ: w2's matching columns (RowParallelLinear)
            uint16_t *w2_r = tp_weight_columns(w2, D, c->ffn_hidden, sl.ffn0, FF);
            matmul_forward_cpu(run.ffn_part + (size_t)r * TD, run.hidden + (size_t)r * T * FF, w2_r, T, FF, D, p);
            free(w2_r);
            // logits_r = xn_last · output_rᵀ: the rank's vocabulary rows (ColumnParallelLinear)
            logits_forward_cpu(run.logits_part + (size_t)r * VV, xn_last, out_w + (size_t)sl.vocab0 * D, 1, D, VV, p);
        }
        // output_after_feedforward = all_reduce(partial); the layer's output; logits = all_gather(logits_r)
        all_reduce_sum_cpu(run.ffn_out, run.ffn_part, N, TD, p);
        residual_forward_cpu(run.out, run.h, run.ffn_out, TD, p);
        memcpy(run.logits, run.logits_part, (size_t)V * sizeof(float));  // the ranks' blocks are in vocabulary order
        free(gate), free(up), free(att);
        step_add_ms(&s, false, t0);
    }

    // the CUDA path: N GPUs with NCCL, or the ranks one after another on one GPU
    TpRun run_cuda, *shown = &run;
    bool cuda_ran = false;
    if (s.cuda) {
        tp_run_alloc(&run_cuda, c, T, N);
        int gpus = cuda_device_count();
        const float *x_in = lt.x_in;  // the CPU's layer input (CUDA's own without the CPU reference)
        if (gpus >= N && N > 1 && nccl_available()) {
            step_say(&s, step_text(&s, "CUDA: %d GPUs, one process per rank, NCCL all-reduces (NCCL_NVLS_ENABLE=0)",
                                   "CUDA：%d 块 GPU，每个 rank 一个进程，用 NCCL 做 all-reduce（NCCL_NVLS_ENABLE=0）"), N);
            tp_run_nccl(&s, N, x_in, xn_last, &run_cuda);
        } else {
            if (N > 1)
                step_say(&s, step_text(&s, "CUDA: %d ranks need %d GPUs%s; %d found: the ranks run one after another on "
                                           "GPU 0, the all-reduce is a sum on the device (the same emulation as the CPU's)",
                                       "CUDA：%d 个 rank 需要 %d 块 GPU%s；只找到 %d 块：各 rank 在 GPU 0 上依次运行，"
                                       "all-reduce 是设备上的求和（与 CPU 的模拟相同）"),
                         N, N, nccl_available() ? "" : step_text(&s, " and NCCL", " 和 NCCL"), gpus);
            tp_run_cuda_one_gpu(&s, N, x_in, xn_last, &run_cuda);
        }
        cuda_ran = true;
        if (!s.cpu) shown = &run_cuda;
    }

    // what the ranks computed, with a leading [N] axis
    const char *act = step_act_dtype(&s);
    const int HD = run.heads * Dh, KD = run.kv_heads * Dh;
    int64_t sh_td[2] = {T, D}, sh_ntd[3] = {N, T, D}, sh_q[3] = {N, T, HD}, sh_kv[3] = {N, T, KD};
    int64_t sh_f[3] = {N, T, run.ffn}, sh_l[2] = {N, run.vocab}, sh_v[1] = {V};
    step_heading(&s, "the inputs every rank gets", "每个 rank 得到的输入");
    step_say(&s, step_text(&s, "the layer's input (chapter 14's stream before layer %d) and the final normalised "
                               "embedding (chapter 15's), computed unsplit%s",
                           "这一层的输入（第 14 章中第 %d 层之前的残差流）和最终归一化后的嵌入（第 15 章的），不切分计算%s"),
             L, s.cuda ? step_text(&s, " (the layers after this one on the CUDA path)", "（这一层之后的各层在 CUDA 上计算）")
                       : "");
    step_show(&s, "layer_input", lt.x_in, sh_td, 2, act);
    step_show(&s, "final_embedding_normalized", xn_final, sh_td, 2, act);
    step_heading(&s, "the embedding: each rank looks up its vocabulary rows", "嵌入：每个 rank 查自己的词表行");
    step_say(&s, "emb_part[r] = tok_embeddings_r[ids - vocab0] if vocab0 <= ids < vocab0 + V/N else 0");
    step_show(&s, "tok_embeddings_partial", shown->emb_part, sh_ntd, 3, act);
    step_say(&s, "token_embeddings_unnormalized = all_reduce(emb_part)");
    step_show(&s, "token_embeddings_unnormalized", shown->token_embeddings, sh_td, 2, act);
    step_heading(&s, "attention: each rank its own heads", "注意力：每个 rank 算自己的头");
    step_say(&s, "q_r = x_norm · wq_r.T  (%d heads), k_r, v_r = x_norm · wk_r.T, x_norm · wv_r.T  (%d kv head%s)",
             run.heads, run.kv_heads, run.kv_heads == 1 ? "" : "s");
    step_show(&s, "q_per_rank", shown->q, sh_q, 3, act);
    step_show(&s, "k_per_rank", shown->k, sh_kv, 3, act);
    step_show(&s, "v_per_rank", shown->v, sh_kv, 3, act);
    step_show(&s, "attention_per_rank", shown->attn, sh_q, 3, act);
    step_say(&s, "partial_r = attn_r · wo[:, rank r's columns].T");
    step_show(&s, "embedding_delta_partial", shown->delta_part, sh_ntd, 3, act);
    step_say(&s, "embedding_delta = all_reduce(partial)   # 1st all-reduce");
    step_show(&s, "embedding_delta", shown->delta, sh_td, 2, act);
    step_show(&s, "embedding_after_edit", shown->h, sh_td, 2, act);
    step_say(&s, "embedding_after_edit_normalized = rms_norm(embedding_after_edit, ffn_norm)   # every rank, whole");
    step_show(&s, "embedding_after_edit_normalized", shown->hn, sh_td, 2, act);
    step_heading(&s, "the feed-forward network: each rank F/N of it", "前馈网络：每个 rank 算 F/N");
    step_show(&s, "ffn_hidden_per_rank", shown->hidden, sh_f, 3, act);
    step_say(&s, "partial_r = hidden_r · w2[:, rank r's columns].T");
    step_show(&s, "output_after_feedforward_partial", shown->ffn_part, sh_ntd, 3, act);
    step_say(&s, "output_after_feedforward = all_reduce(partial)   # 2nd all-reduce");
    step_show(&s, "output_after_feedforward", shown->ffn_out, sh_td, 2, act);
    char name[64];
    snprintf(name, sizeof name, "layer_%d_embedding", L);
    step_show(&s, name, shown->out, sh_td, 2, act);
    step_heading(&s, "the logits: each rank its vocabulary rows, then gathered", "logits：每个 rank 算自己的词表行，再收集");
    step_show(&s, "logits_per_rank", shown->logits_part, sh_l, 2, "f32");
    step_say(&s, "logits = all_gather(logits_r)");
    step_show(&s, "logits", shown->logits, sh_v, 1, "f32");
    int64_t next = argmax_cpu(shown->logits, V);
    step_say(&s, "next_token = torch.argmax(logits, dim=-1)");
    step_say(&s, "tensor(%lld)", (long long)next);
    draw_partials(&s, "partial_sums_wo.png", "attn_r · wo_rᵀ", shown->delta_part, shown->delta,
                  s.cpu ? lt.embedding_delta : shown->delta, N);
    draw_partials(&s, "partial_sums_w2.png", "hidden_r · w2_rᵀ", shown->ffn_part, shown->ffn_out,
                  s.cpu ? lt.output_after_feedforward : shown->ffn_out, N);

    if (s.compare && s.cpu) {
        // against the unsplit chapters: exact where each output element is computed whole on one rank (lookups,
        // column-parallel products, attention, the gathered logits); within the rounding bound for the all-reduces
        step_heading(&s, "the split model against the unsplit one (CPU)", "切分后的模型与不切分的模型对比（CPU）");
        float *tmp = xmalloc((size_t)T * (c->ffn_hidden > D ? c->ffn_hidden : D) * sizeof(float));
        float *emb_whole = xmalloc(TD * sizeof(float));
        embed_tokens_cpu(&s, emb_whole);
        step_compare(&s, "token_embeddings_unnormalized (all-reduce) vs chapter 02", emb_whole, run.token_embeddings,
                     sh_td, 2, 0, 0);
        int *c0 = xmalloc((size_t)N * sizeof(int));
        int64_t sh_qall[2] = {T, (int64_t)c->n_heads * Dh}, sh_kvall[2] = {T, (int64_t)c->n_kv_heads * Dh};
        for (int r = 0; r < N; r++) c0[r] = tp_slice(c, N, r).head0 * Dh;
        gather_columns(tmp, run.q, N, T, HD, c->n_heads * Dh, c0);
        step_compare(&s, "q of every rank, gathered, vs chapter 11 (rotated)", lt.q_all, tmp, sh_qall, 2, 0, 0);
        gather_columns(tmp, run.attn, N, T, HD, c->n_heads * Dh, c0);
        step_compare(&s, "attention of every rank, gathered, vs stacked_qkv_attention", lt.stacked_qkv_attention, tmp,
                     sh_qall, 2, 0, 0);
        // the kv heads: one rank of each group of replicas
        TpSlice s0 = tp_slice(c, N, 0);
        int n_kv_blocks = N / s0.kv_replicas;
        for (int b = 0; b < n_kv_blocks; b++) c0[b] = tp_slice(c, N, b * s0.kv_replicas).kv_head0 * Dh;
        float *kv_distinct = xmalloc((size_t)n_kv_blocks * T * KD * sizeof(float));
        for (int b = 0; b < n_kv_blocks; b++)
            memcpy(kv_distinct + (size_t)b * T * KD, run.k + (size_t)b * s0.kv_replicas * T * KD, (size_t)T * KD * sizeof(float));
        gather_columns(tmp, kv_distinct, n_kv_blocks, T, KD, c->n_kv_heads * Dh, c0);
        step_compare(&s, "k of the ranks, gathered (one copy per kv head), vs chapter 11 (rotated)", lt.k_all, tmp,
                     sh_kvall, 2, 0, 0);
        for (int b = 0; b < n_kv_blocks; b++)
            memcpy(kv_distinct + (size_t)b * T * KD, run.v + (size_t)b * s0.kv_replicas * T * KD, (size_t)T * KD * sizeof(float));
        gather_columns(tmp, kv_distinct, n_kv_blocks, T, KD, c->n_kv_heads * Dh, c0);
        step_compare(&s, "v of the ranks, gathered (one copy per kv head), vs chapter 11", lt.v_all, tmp, sh_kvall, 2, 0, 0);
        free(kv_distinct);
        double atol, rtol;
        all_reduce_tolerance(&s, run.delta_part, N, TD, &atol, &rtol);
        step_compare(&s, "embedding_delta = all_reduce(partials) vs chapter 12 (stacked · woᵀ)", lt.embedding_delta,
                     run.delta, sh_td, 2, atol, rtol);
        // the FFN's column-parallel half: the ranks' hidden, gathered, is the unsplit FFN's of the same hn (exact)
        for (int r = 0; r < N; r++) c0[r] = tp_slice(c, N, r).ffn0;
        gather_columns(tmp, run.hidden, N, T, run.ffn, c->ffn_hidden, c0);
        const size_t TF = (size_t)T * c->ffn_hidden;
        float *gate = xmalloc(TF * sizeof(float)), *up = xmalloc(TF * sizeof(float));
        matmul_forward_cpu(gate, run.hn, step_weight(&s, NULL, "layers.%d.feed_forward.w1.weight", L), T, D,
                           c->ffn_hidden, p);
        matmul_forward_cpu(up, run.hn, step_weight(&s, NULL, "layers.%d.feed_forward.w3.weight", L), T, D,
                           c->ffn_hidden, p);
        swiglu_forward_cpu(gate, gate, up, TF, p);
        int64_t sh_tf[2] = {T, c->ffn_hidden};
        step_compare(&s, "ffn_hidden of every rank, gathered, vs silu(hn·w1ᵀ)·(hn·w3ᵀ) unsplit", gate, tmp, sh_tf, 2, 0,
                     0);
        free(gate), free(up);
        // w2 likewise, against the unsplit product of the same hidden (the ranks' hidden gathered)
        float *ffn_whole = xmalloc(TD * sizeof(float));
        matmul_forward_cpu(ffn_whole, tmp, step_weight(&s, NULL, "layers.%d.feed_forward.w2.weight", L), T,
                           c->ffn_hidden, D, p);
        all_reduce_tolerance(&s, run.ffn_part, N, TD, &atol, &rtol);
        step_compare(&s, "output_after_feedforward = all_reduce(partials) vs hidden · w2ᵀ unsplit", ffn_whole,
                     run.ffn_out, sh_td, 2, atol, rtol);
        // End to end, the layer's output against chapter 13's: every link above is exact or within its rounding
        // bound; what remains is those few roundings carried through ffn_norm and the FFN. The normalised MSE of
        // elements each off by up to 4 bf16 roundings is at most (4 * 2^-8)^2 = 2^-12 (fp32: (4 * 2^-24)^2).
        step_compare_nmse(&s, "layer output vs chapter 13's", lt.layer_embedding, run.out, sh_td, 2,
                          p == PREC_BF16 ? 1.0 / 4096 : 1.0 / 17592186044416.0);
        step_compare(&s, "logits = all_gather(logits_r) vs chapter 15's", logits_whole, run.logits, sh_v, 1, 0, 0);
        free(tmp), free(emb_whole), free(c0), free(ffn_whole);
    }
    if (cuda_ran && s.cpu) {
        // every rank's CUDA tensors against its CPU twin, from the same layer input: a chain of the layer's ops as
        // in chapter 14 (4 bf16 ulps of the RMS absolute, 2^-6 relative; twice that relative for the hidden, a product
        // silu(gate) * up of two chained values whose relative errors add: on the 8B, 1 of 243712 values went to 112%
        // of 2^-6 on an H100); the all-reduced sums within the rounding
        // bound above, doubled for the partials' own differences; the logits as chapter 15's (fp32)
        step_heading(&s, "the CUDA ranks against the CPU's", "CUDA 上的各 rank 与 CPU 的对比");
        struct { const char *name; const float *ref, *out; const int64_t *shape; int ndim, factors; } chain[] = {
            {"tok_embeddings_partial", run.emb_part, run_cuda.emb_part, sh_ntd, 3, 1},
            {"q_per_rank", run.q, run_cuda.q, sh_q, 3, 1},
            {"k_per_rank", run.k, run_cuda.k, sh_kv, 3, 1},
            {"v_per_rank", run.v, run_cuda.v, sh_kv, 3, 1},
            {"attention_per_rank", run.attn, run_cuda.attn, sh_q, 3, 1},
            {"embedding_delta_partial", run.delta_part, run_cuda.delta_part, sh_ntd, 3, 1},
            {"ffn_hidden_per_rank", run.hidden, run_cuda.hidden, sh_f, 3, 2},
            {"output_after_feedforward_partial", run.ffn_part, run_cuda.ffn_part, sh_ntd, 3, 1},
            {name, run.out, run_cuda.out, sh_td, 2, 1},
        };
        for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
            int64_t n = 1;
            for (int d = 0; d < chain[i].ndim; d++) n *= chain[i].shape[d];
            double atol, rtol;
            step_tolerance_act(&s, chain[i].ref, n, &atol, &rtol);
            step_compare(&s, chain[i].name, chain[i].ref, chain[i].out, chain[i].shape, chain[i].ndim, 4 * atol,
                         2 * chain[i].factors * rtol);
        }
        step_compare(&s, "token_embeddings_unnormalized (all-reduce)", run.token_embeddings, run_cuda.token_embeddings,
                     sh_td, 2, 0, 0);  // one non-zero term per element: exact
        double atol, rtol, a2, r2;
        all_reduce_tolerance(&s, run.delta_part, N, TD, &atol, &rtol);
        step_tolerance_act(&s, run.delta, (int64_t)TD, &a2, &r2);
        step_compare(&s, "embedding_delta (all-reduce)", run.delta, run_cuda.delta, sh_td, 2, 2 * atol + 4 * a2, 2 * r2);
        all_reduce_tolerance(&s, run.ffn_part, N, TD, &atol, &rtol);
        step_tolerance_act(&s, run.ffn_out, (int64_t)TD, &a2, &r2);
        step_compare(&s, "output_after_feedforward (all-reduce)", run.ffn_out, run_cuda.ffn_out, sh_td, 2,
                     2 * atol + 4 * a2, 2 * r2);
        step_tolerance_dot(&s, run.logits, V, D, &atol, &rtol);  // fp32 sums of dim products
        step_compare(&s, "logits (all-gather)", run.logits, run_cuda.logits, sh_v, 1, atol, rtol);
    }
    if (cuda_ran) tp_run_free(&run_cuda);
    tp_run_free(&run);
    free(x_final), free(xn_final), free(logits_whole);
    layer_trace_free(&lt);
    return step_finish(&s);
}
