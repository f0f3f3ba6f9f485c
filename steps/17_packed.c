// 17_packed: the serving engines' layout of one layer: packed products and the fused residual + RMSNorm.
//
// wqkv = cat(wq, wk, wv) [(H + 2·Hkv)·Dh, D]: one product qkv = x · wqkvᵀ [T, (H + 2·Hkv)·Dh], split at H·Dh and
// (H + Hkv)·Dh into q [T, H·Dh], k and v [T, Hkv·Dh] (nano-vllm's qkv_proj, vLLM's QKVParallelLinear);
// w13 = cat(w1, w3) [2F, D]: one product gate_up = x · w13ᵀ [T, 2F], split at F into gate and up (gate_up_proj);
// the fused residual + RMSNorm: h = x + delta and rms_norm(h) · w in one pass over each row (RMSNorm(x, residual)).
// Each equals the separate ops of chapters 04-13: on the CPU bit for bit (every output element is the same sum of the
// same products), on the GPU within the usual tolerance of a product against the CPU.
// Run: build/steps/17_packed [--layer L]
// Outputs: OUT/17_packed/{qkv, gate_up, embedding_after_edit, embedding_after_edit_normalized}.npy,
//          packed_weights.png
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "kernels.h"
#include "layer.h"

// Columns [c_src, c_src + n) of src [T, ld_src] to columns [c_dst, c_dst + n) of dst [T, ld_dst]: how the packed
// product's columns are split back into q, k, v (and gate, up), as qkv.split(...) does.
static void copy_columns(float *dst, int ld_dst, int c_dst, const float *src, int ld_src, int c_src, int T, int n) {
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * ld_dst + c_dst, src + (size_t)t * ld_src + c_src, (size_t)n * sizeof(float));
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "17_packed");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim, F = c->ffn_hidden;
    const int QD = H * Dh, KVD = Hkv * Dh, QKV = QD + 2 * KVD;
    const size_t TD = (size_t)T * D;
    const float eps = (float)c->norm_eps;
    LayerTrace lt;
    layer_inputs_upto(&s, OP_COUNT, &lt);  // chapters 03-13 for --layer: x_norm, the separate products, delta, the norms

    // wqkv = torch.cat([wq, wk, wv], dim=0);  w13 = torch.cat([w1, w3], dim=0)
    const LayerWeights lw = layer_weights(&s, L);
    const uint16_t *wq = lw.wq, *wk = lw.wk, *wv = lw.wv, *w1 = lw.w1, *w3 = lw.w3, *ffn_norm = lw.ffn_norm;
    uint16_t *wqkv = xmalloc((size_t)QKV * D * sizeof(uint16_t)), *w13 = xmalloc((size_t)2 * F * D * sizeof(uint16_t));
    memcpy(wqkv, wq, (size_t)QD * D * sizeof(uint16_t));
    memcpy(wqkv + (size_t)QD * D, wk, (size_t)KVD * D * sizeof(uint16_t));
    memcpy(wqkv + (size_t)(QD + KVD) * D, wv, (size_t)KVD * D * sizeof(uint16_t));
    memcpy(w13, w1, (size_t)F * D * sizeof(uint16_t));
    memcpy(w13 + (size_t)F * D, w3, (size_t)F * D * sizeof(uint16_t));

    step_heading(&s, "one matrix for q, k and v", "q、k、v 合用一个矩阵");
    step_say(&s, "wqkv = torch.cat([wq, wk, wv], dim=0)");
    int64_t sh_wqkv[2] = {QKV, D}, sh_w13[2] = {2 * F, D};
    step_shape(&s, "wqkv", sh_wqkv, 2, "bf16");
    step_say(&s, "  rows %6d .. %-6d wq   (H*Dh = %d*%d)", 0, QD - 1, H, Dh);
    step_say(&s, "  rows %6d .. %-6d wk   (Hkv*Dh = %d*%d)", QD, QD + KVD - 1, Hkv, Dh);
    step_say(&s, "  rows %6d .. %-6d wv   (Hkv*Dh = %d*%d)", QD + KVD, QKV - 1, Hkv, Dh);
    step_say(&s, "w13 = torch.cat([w1, w3], dim=0)");
    step_shape(&s, "w13", sh_w13, 2, "bf16");
    step_say(&s, "  rows %6d .. %-6d w1   (F = %d)", 0, F - 1, F);
    step_say(&s, "  rows %6d .. %-6d w3", F, 2 * F - 1);
    step_explain(&s,
                 "This project's engine goes one step further for w13: it interleaves the rows (row 2i is w1's row i, "
                 "row 2i+1 is w3's), so that each (gate, up) pair of the product lies side by side for SiLU·up.",
                 "本项目的引擎对 w13 更进一步：它把行交错排列（第 2i 行是 w1 的第 i 行，第 2i+1 行是 w3 的第 i 行），"
                 "这样乘积中每一对 (gate, up) 相邻，正好供 SiLU·up 使用。");
    {  // the figure: which rows of the packed matrices come from which weight
        char r_q[64], r_k[64], r_v[64], r_1[64], r_3[64];
        snprintf(r_q, sizeof r_q, "wq: rows 0..%d", QD - 1);
        snprintf(r_k, sizeof r_k, "wk: rows %d..%d", QD, QD + KVD - 1);
        snprintf(r_v, sizeof r_v, "wv: rows %d..%d", QD + KVD, QKV - 1);
        snprintf(r_1, sizeof r_1, "w1: rows 0..%d", F - 1);
        snprintf(r_3, sizeof r_3, "w3: rows %d..%d", F, 2 * F - 1);
        FigureBand b_qkv[3] = {{0, QD, 1u << 0, "wq"}, {QD, KVD, 1u << 1, "wk"}, {QD + KVD, KVD, 1u << 2, "wv"}};
        FigureBand b_13[2] = {{0, F, 1u << 3, "w1"}, {F, F, 1u << 4, "w3"}};
        char n_qkv[64], n_13[64];
        snprintf(n_qkv, sizeof n_qkv, "wqkv (layer %d)", L);
        snprintf(n_13, sizeof n_13, "w13 (layer %d)", L);
        FigureBandedMatrix m[2] = {{n_qkv, QKV, D, 0, 3, b_qkv}, {n_13, 2 * F, D, 0, 2, b_13}};
        const char *legend[5] = {r_q, r_k, r_v, r_1, r_3};
        char *png = step_path(&s, "packed_weights.png");
        figure_banded_matrices(png, m, 2, legend, 5, step_split_words(&s),
                               step_text(&s, "packed weights: one product instead of three and two",
                                         "合并的权重：一次乘法代替三次和两次"),
                               step_text(&s, "rows stacked with torch.cat(dim=0); the products split at the same offsets",
                                         "用 torch.cat(dim=0) 叠放各行；乘积按相同的偏移拆开"));
        free(png);
        step_image(&s, "packed_weights.png", step_text(&s, "which rows of wqkv and w13 come from which weight",
                                                       "wqkv 与 w13 的各行来自哪个权重"));
    }

    // the three ops on the path the run computes with; with both paths the CPU's are the ones shown and written
    float *qkv = xmalloc((size_t)T * QKV * sizeof(float)), *gate_up = xmalloc((size_t)T * 2 * F * sizeof(float));
    float *h = xmalloc(TD * sizeof(float)), *hn = xmalloc(TD * sizeof(float));
    float *qkv_cuda = NULL, *gate_up_cuda = NULL, *h_cuda = NULL, *hn_cuda = NULL;
    if (s.cpu) {
        double t0 = step_clock();
        // qkv = torch.matmul(token_embeddings, wqkv.T)
        matmul_forward_cpu(qkv, lt.x_norm, wqkv, T, D, QKV, s.prec);
        // gate_up = torch.matmul(embedding_after_edit_normalized, w13.T)
        matmul_forward_cpu(gate_up, lt.embedding_after_edit_normalized, w13, T, D, 2 * F, s.prec);
        // h, h_normed = fused_add_rms_norm(x, embedding_delta, ffn_norm)
        residual_rmsnorm_forward_cpu(h, hn, lt.x_in, lt.embedding_delta, ffn_norm, T, D, eps, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // the same three ops on the GPU, from the same inputs (the CPU's, or CUDA's without the CPU)
        double t0 = step_clock();
        uint16_t *d_wqkv = step_dev_alloc(&s, (size_t)QKV * D * sizeof(uint16_t));
        uint16_t *d_w13 = step_dev_alloc(&s, (size_t)2 * F * D * sizeof(uint16_t));
        cuda_memcpy_h2d(d_wqkv, wqkv, (size_t)QKV * D * sizeof(uint16_t));
        cuda_memcpy_h2d(d_w13, w13, (size_t)2 * F * D * sizeof(uint16_t));
        void *d_qkv = step_dev_act(&s, NULL, (size_t)T * QKV), *d_gu = step_dev_act(&s, NULL, (size_t)T * 2 * F);
        void *d_h = step_dev_act(&s, NULL, TD), *d_hn = step_dev_act(&s, NULL, TD);
        matmul_forward_cuda(d_qkv, step_dev_act(&s, lt.x_norm, TD), d_wqkv, T, D, QKV, s.prec);
        matmul_forward_cuda(d_gu, step_dev_act(&s, lt.embedding_after_edit_normalized, TD), d_w13, T, D, 2 * F, s.prec);
        residual_rmsnorm_forward_cuda(d_h, d_hn, step_dev_act(&s, lt.x_in, TD), step_dev_act(&s, lt.embedding_delta, TD),
                                      step_weight_dev(&s, "layers.%d.ffn_norm.weight", L), T, D, eps, s.prec);
        float **dst[4] = {&qkv_cuda, &gate_up_cuda, &h_cuda, &hn_cuda};
        size_t n[4] = {(size_t)T * QKV, (size_t)T * 2 * F, TD, TD};
        void *src[4] = {d_qkv, d_gu, d_h, d_hn};
        for (int i = 0; i < 4; i++) {
            *dst[i] = s.cpu ? xmalloc(n[i] * sizeof(float)) : NULL;
            step_host_act(&s, s.cpu ? *dst[i] : (i == 0 ? qkv : i == 1 ? gate_up : i == 2 ? h : hn), src[i], n[i]);
        }
        step_add_ms(&s, true, t0);
    }

    const char *act = step_act_dtype(&s);
    int64_t sh_qkv[2] = {T, QKV}, sh_gu[2] = {T, 2 * F}, sh[2] = {T, D};
    step_say(&s, "qkv = torch.matmul(token_embeddings, wqkv.T)");
    step_show(&s, "qkv", qkv, sh_qkv, 2, act);
    step_say(&s, "q, k, v = qkv.split([%d, %d, %d], dim=-1)", QD, KVD, KVD);
    int64_t sh_q[2] = {T, QD}, sh_kv[2] = {T, KVD};
    step_shape(&s, "q", sh_q, 2, act);
    step_shape(&s, "k", sh_kv, 2, act);
    step_shape(&s, "v", sh_kv, 2, act);
    step_heading(&s, "one matrix for the gate and the up projection", "门控与上投影合用一个矩阵");
    step_say(&s, "gate_up = torch.matmul(embedding_after_edit_normalized, w13.T)");
    step_show(&s, "gate_up", gate_up, sh_gu, 2, act);
    step_say(&s, "gate, up = gate_up.split([%d, %d], dim=-1)", F, F);
    step_heading(&s, "the residual add and RMSNorm in one pass", "残差相加与 RMSNorm 一次完成");
    step_say(&s, "embedding_after_edit, embedding_after_edit_normalized = fused_add_rms_norm(x, embedding_delta, ffn_norm)");
    step_show(&s, "embedding_after_edit", h, sh, 2, act);
    step_show(&s, "embedding_after_edit_normalized", hn, sh, 2, act);
    step_explain(&s,
                 "One kernel reads x and embedding_delta once, writes their sum (the residual stream) and, from the sum "
                 "of squares it gathered on the way, the normalised row that the FFN needs. In the engine the same "
                 "kernel also opens the next layer: the FFN's output is added and attention_norm applied in one pass.",
                 "一个内核只读一次 x 和 embedding_delta，写出它们的和（残差流），并用顺带累加的平方和写出 FFN 需要的归一化行。"
                 "在引擎里，同一个内核也开启下一层：加上 FFN 的输出并在同一遍中做 attention_norm。");

    if (s.compare && s.cpu) {
        // The packed product computes every output element from the same row of x and the same weight row as the
        // separate product, summed in the same order: the same bits (tolerance 0). Likewise the fused kernel rounds
        // h and the norm at the same points as residual_forward_cpu and rmsnorm_forward_cpu.
        step_heading(&s, "the same numbers as the separate ops (CPU, bit for bit)", "与分开计算的结果相同（CPU，逐位一致）");
        float *part = xmalloc((size_t)T * (QD > 2 * F ? QD : 2 * F) * sizeof(float));
        float *sep = xmalloc((size_t)T * (QD > F ? QD : F) * sizeof(float));
        const uint16_t *ws[3] = {wq, wk, wv};
        const int cols[3] = {QD, KVD, KVD}, at[3] = {0, QD, QD + KVD};
        const char *names[3] = {"q = qkv[:, :H*Dh] vs x·wqᵀ", "k = qkv[:, H*Dh:(H+Hkv)*Dh] vs x·wkᵀ",
                                "v = qkv[:, (H+Hkv)*Dh:] vs x·wvᵀ"};
        for (int i = 0; i < 3; i++) {
            matmul_forward_cpu(sep, lt.x_norm, ws[i], T, D, cols[i], s.prec);
            copy_columns(part, cols[i], 0, qkv, QKV, at[i], T, cols[i]);
            int64_t shp[2] = {T, cols[i]};
            step_compare(&s, names[i], sep, part, shp, 2, 0, 0);
        }
        int64_t sh_f[2] = {T, F};
        copy_columns(part, F, 0, gate_up, 2 * F, 0, T, F);
        step_compare(&s, "gate = gate_up[:, :F] vs ffn_gate (x·w1ᵀ)", lt.ffn_gate, part, sh_f, 2, 0, 0);
        copy_columns(part, F, 0, gate_up, 2 * F, F, T, F);
        step_compare(&s, "up = gate_up[:, F:] vs ffn_up (x·w3ᵀ)", lt.ffn_up, part, sh_f, 2, 0, 0);
        step_compare(&s, "fused h vs embedding_after_edit (chapter 12)", lt.embedding_after_edit, h, sh, 2, 0, 0);
        step_compare(&s, "fused norm vs embedding_after_edit_normalized (chapter 13)", lt.embedding_after_edit_normalized,
                     hn, sh, 2, 0, 0);
        free(part), free(sep);
    }
    if (s.cuda && s.cpu) {  // the CUDA path against the CPU reference, from the same inputs
        double atol, rtol;
        step_tolerance_act(&s, qkv, (int64_t)T * QKV, &atol, &rtol);
        step_compare(&s, "qkv", qkv, qkv_cuda, sh_qkv, 2, atol, rtol);
        step_tolerance_act(&s, gate_up, (int64_t)T * 2 * F, &atol, &rtol);
        step_compare(&s, "gate_up", gate_up, gate_up_cuda, sh_gu, 2, atol, rtol);
        // one IEEE add and the same rounding on both sides: exact
        step_compare(&s, "embedding_after_edit (fused kernel)", h, h_cuda, sh, 2, 0, 0);
        step_tolerance_act(&s, hn, (int64_t)TD, &atol, &rtol);
        step_compare(&s, "embedding_after_edit_normalized (fused kernel)", hn, hn_cuda, sh, 2, atol, rtol);
    }
    free(qkv_cuda), free(gate_up_cuda), free(h_cuda), free(hn_cuda);
    free(qkv), free(gate_up), free(h), free(hn), free(wqkv), free(w13);
    layer_trace_free(&lt);
    return step_finish(&s);
}
