// 20_moe: MiniMind's mixture-of-experts feed-forward: a gate scores every expert, each token goes to its top k,
// shared experts always run, and an auxiliary loss keeps the load balanced (common/ref/ref_moe.h has the math).
//
// x = embedding_after_edit_normalized [T, D] of --layer L (ffn_norm of the stream after attention: the FFN's input)
//   gate_logits = x · Wgᵀ [T, E];  gate_scores = softmax(gate_logits) [T, E]
//   topk_idx, topk_weight [T, k] (renormalised);  routing_weights [T, E]: the picked weights, 0 elsewhere
//   the T·k picks grouped by expert; expert e on its n_e tokens: expert_e_out [n_e, D]
//   routed_out = Σ_j topk_weight · expert(x) [T, D];  shared_out [S, T, D];  moe_out = routed_out + shared [T, D]
//   layer_L_embedding = embedding_after_edit + moe_out;  aux loss, both of MiniMind's forms
// On a dense model the chapter says so and traces the MoE demo model (build/models/llama3-tiny-moe), so that the
// walkthrough always shows routing. The CUDA path (kernels/moe_gate.cu, kernels/moe_experts.cu: tokens sorted by
// expert, one cuBLAS product per expert segment) is checked op by op from the CPU's inputs, then as a whole.
// Run: build/steps/20_moe [--layer L] [--model DIR]
// Outputs: OUT/20_moe/{moe_input, gate_logits, gate_scores, topk_idx, topk_weight, routing_weights, expert_load,
//          aux_loss, expert_E_tokens, expert_E_out (experts with tokens), routed_out, shared_out, moe_out,
//          layer_L_embedding}.npy,
//          gate_scores.png, routing_weights.png, expert_load.png
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "kernels.h"
#include "layer.h"


static float *as_float_i32(const int32_t *v, size_t n) {
    float *f = xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = (float)v[i];
    return f;
}

// An exact comparison of integer results (ids, positions) through the validator: tolerance 0.
static void compare_ints(Step *s, const char *name, const int32_t *ref, const int32_t *out, size_t n) {
    float *a = as_float_i32(ref, n), *b = as_float_i32(out, n);
    int64_t sh[1] = {(int64_t)n};
    step_compare(s, name, a, b, sh, 1, 0.0, 0.0);
    free(a), free(b);
}

static void compare_act(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim,
                        double scale) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    double atol, rtol;
    step_tolerance_act(s, ref, n, &atol, &rtol);
    step_compare(s, name, ref, out, shape, ndim, scale * atol, scale * rtol);
}

static void compare_fp32(Step *s, const char *name, const float *ref, const float *out, const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    double atol, rtol;
    step_tolerance_f32(s, ref, n, &atol, &rtol);
    step_compare(s, name, ref, out, shape, ndim, atol, rtol);
}

// The CUDA path, op by op from the CPU's own inputs (each comparison measures one kernel), then the whole MoE.
static void check_cuda(Step *s, const LayerTrace *lt, const MoeWeights *mw_host) {
    const MoeTrace *m = &lt->moe;
    const int T = m->T, D = m->D, F = m->F, E = m->E, k = m->k, S = m->S, n = T * k;
    const Precision p = s->prec;
    const size_t TD = (size_t)T * D;
    MoeWeights mw;
    layer_moe_weights_dev(s, lt->layer, &mw);
    double t0 = step_clock();
    void *x = step_dev_act(s, lt->embedding_after_edit_normalized, TD);
    // gate_logits: a cuBLAS product with the gate weight
    float *h_logits = xmalloc((size_t)T * E * sizeof(float));
    void *logits = step_dev_act(s, NULL, (size_t)T * E);
    matmul_forward_cuda(logits, x, mw.gate, T, D, E, p);
    step_host_act(s, h_logits, logits, (size_t)T * E);
    // the router kernel on the CPU's logits
    float *scores = step_dev_alloc(s, (size_t)T * E * sizeof(float)), *w = step_dev_alloc(s, (size_t)n * sizeof(float));
    int32_t *idx = step_dev_alloc(s, (size_t)n * sizeof(int32_t));
    moe_gate_topk_cuda(scores, idx, w, step_dev_act(s, m->gate_logits, (size_t)T * E), T, E, k, mw.norm_topk_prob, p);
    float *h_scores = xmalloc((size_t)T * E * sizeof(float)), *h_w = xmalloc((size_t)n * sizeof(float));
    int32_t *h_idx = xmalloc((size_t)n * sizeof(int32_t));
    step_host_f32(h_scores, scores, (size_t)T * E), step_host_f32(h_w, w, (size_t)n);
    cuda_memcpy_d2h(h_idx, idx, (size_t)n * sizeof(int32_t));
    // the grouping on the CPU's picks
    int32_t *d_idx = step_dev_alloc(s, (size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(d_idx, m->topk_idx, (size_t)n * sizeof(int32_t));
    int32_t *sorted = step_dev_alloc(s, (size_t)n * sizeof(int32_t)), *pos = step_dev_alloc(s, (size_t)n * sizeof(int32_t));
    int32_t *offsets = step_dev_alloc(s, (size_t)(E + 1) * sizeof(int32_t));
    moe_sort_cuda(sorted, pos, offsets, d_idx, T, k, E);
    int32_t *h_sorted = xmalloc((size_t)n * sizeof(int32_t)), *h_off = xmalloc((size_t)(E + 1) * sizeof(int32_t));
    cuda_memcpy_d2h(h_sorted, sorted, (size_t)n * sizeof(int32_t));
    cuda_memcpy_d2h(h_off, offsets, (size_t)(E + 1) * sizeof(int32_t));
    // gather + each expert on its segment, from the CPU's grouping: one product per weight per expert
    void *rows = step_dev_act(s, NULL, (size_t)n * D), *eo = step_dev_act(s, NULL, (size_t)n * D);
    int32_t *d_sorted = step_dev_alloc(s, (size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(d_sorted, m->sorted, (size_t)n * sizeof(int32_t));
    moe_gather_cuda(rows, x, d_sorted, n, k, D, p);
    const size_t row_bytes = act_bytes((size_t)D, p);
    for (int e = 0; e < E; e++) {
        int cnt = m->offsets[e + 1] - m->offsets[e];
        moe_expert_forward_cuda((char *)eo + (size_t)m->offsets[e] * row_bytes, (char *)rows + (size_t)m->offsets[e] * row_bytes,
                                cnt, mw.w1[e], mw.w2[e], mw.w3[e], D, F, p);
    }
    float *h_eo = xmalloc((size_t)n * D * sizeof(float));
    step_host_act(s, h_eo, eo, (size_t)n * D);
    // the weighted sum from the CPU's expert outputs and weights
    int32_t *d_pos = step_dev_alloc(s, (size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(d_pos, m->pos, (size_t)n * sizeof(int32_t));
    float *d_w = step_dev_alloc(s, (size_t)n * sizeof(float));
    cuda_memcpy_h2d(d_w, m->topk_w, (size_t)n * sizeof(float));
    void *routed = step_dev_act(s, NULL, TD);
    moe_combine_cuda(routed, step_dev_act(s, m->expert_out, (size_t)n * D), d_pos, d_idx, d_w, T, k, D, p);
    float *h_routed = xmalloc(TD * sizeof(float));
    step_host_act(s, h_routed, routed, TD);
    // the shared experts
    float *h_shared = xmalloc((S ? (size_t)S : 1) * TD * sizeof(float));
    void *so = step_dev_act(s, NULL, TD);
    for (int sh = 0; sh < S; sh++) {
        moe_expert_forward_cuda(so, x, T, mw.shared_w1[sh], mw.shared_w2[sh], mw.shared_w3[sh], D, F, p);
        step_host_act(s, h_shared + (size_t)sh * TD, so, TD);
    }
    // the whole MoE free-running from the CPU's input
    MoeTrace whole;
    moe_trace_alloc(&whole, T, D, F, E, k, S);
    void *out = step_dev_act(s, NULL, TD);
    moe_forward_cuda(out, &whole, x, &mw, T, D, F, p);
    step_add_ms(s, true, t0);

    int64_t sh_te[2] = {T, E}, sh_tk[2] = {T, k}, sh_td[2] = {T, D}, sh_nd[2] = {n, D}, sh_std[3] = {S, T, D};
    compare_act(s, "gate_logits", m->gate_logits, h_logits, sh_te, 2, 1.0);
    compare_fp32(s, "gate_scores", m->gate_scores, h_scores, sh_te, 2);
    compare_ints(s, "topk_idx", m->topk_idx, h_idx, (size_t)n);
    compare_fp32(s, "topk_weight", m->topk_w, h_w, sh_tk, 2);
    compare_ints(s, "sorted (picks grouped by expert)", m->sorted, h_sorted, (size_t)n);
    compare_ints(s, "offsets (expert segments)", m->offsets, h_off, (size_t)E + 1);
    compare_act(s, "expert_out (every segment, one product per expert)", m->expert_out, h_eo, sh_nd, 2, 1.0);
    compare_act(s, "routed_out", m->routed_out, h_routed, sh_td, 2, 1.0);
    if (S) compare_act(s, "shared_out", m->shared_out, h_shared, sh_std, 3, 1.0);
    // free-running: the router may see logits a rounding away from the CPU's, and the products accumulate in
    // another order; as in chapter 14, 4 bf16 ulps of the output's RMS absolute and 2^-6 relative
    compare_ints(s, "topk_idx (whole MoE on CUDA)", m->topk_idx, whole.topk_idx, (size_t)n);
    compare_act(s, "moe_out (whole MoE on CUDA)", m->moe_out, whole.moe_out, sh_td, 2, 2.0);
    double aux_cpu[2], aux_gpu[2];
    for (int f = 0; f < 2; f++) {
        aux_cpu[f] = moe_aux_loss_cpu(m->gate_scores, m->topk_idx, 1, T, E, k, s->cfg->aux_loss_alpha, f == 0);
        aux_gpu[f] = moe_aux_loss_cpu(whole.gate_scores, whole.topk_idx, 1, T, E, k, s->cfg->aux_loss_alpha, f == 0);
    }
    float a_cpu[2] = {(float)aux_cpu[0], (float)aux_cpu[1]}, a_gpu[2] = {(float)aux_gpu[0], (float)aux_gpu[1]};
    int64_t sh2[1] = {2};
    compare_fp32(s, "aux_loss (from the CUDA router's scores and picks)", a_cpu, a_gpu, sh2, 1);
    moe_trace_free(&whole);
    moe_weights_free_tables(&mw);
    (void)mw_host;
    free(h_logits), free(h_scores), free(h_w), free(h_idx), free(h_sorted), free(h_off), free(h_eo), free(h_routed);
    free(h_shared);
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "20_moe");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, F = c->ffn_hidden, E = c->n_routed_experts,
              k = c->num_experts_per_tok, S = c->n_shared_experts;
    LayerTrace lt;
    layer_inputs_upto(&s, OP_COUNT, &lt);  // the whole layer, the MoE too (the CUDA path's values with --no-compare)
    const MoeTrace *m = &lt.moe;
    const char *act = step_act_dtype(&s);
    char name[160];

    // ---- the configuration and the weights
    step_heading(&s, "the experts of layer L", "第 L 层的专家");
    step_say(&s, "n_routed_experts = %d   num_experts_per_tok = %d   n_shared_experts = %d   scoring_func = 'softmax'", E,
             k, S);
    step_say(&s, "norm_topk_prob = %s   aux_loss_alpha = %g   seq_aux = %s   (layer %d of %d)",
             c->norm_topk_prob ? "True" : "False", c->aux_loss_alpha, c->seq_aux ? "True" : "False", L, c->n_layers);
    const Tensor *t;
    moe_weight_name(name, sizeof name, L, "gate", 0, false);
    step_weight(&s, &t, "%s", name);
    step_shape(&s, name, t->shape, t->ndim, dtype_name(t->dtype));
    for (int sh = 0; sh < 2; sh++) {
        if (sh && S == 0) break;
        for (int i = 0; i < 3; i++) {
            moe_weight_name(name, sizeof name, L, (const char *[]){"w1", "w2", "w3"}[i], 0, sh);
            step_weight(&s, &t, "%s", name);
            step_shape(&s, name, t->shape, t->ndim, dtype_name(t->dtype));
        }
    }
    step_say(&s, step_text(&s, "... and so on for all %d routed and %d shared experts: each is a SwiGLU FFN of hidden "
                               "size F = %d",
                           "……其余专家相同（共 %d 个路由专家、%d 个共享专家）：每个都是隐藏维度 F = %d 的 SwiGLU 前馈网络"),
             E, S, F);
    int64_t sh_td[2] = {T, D}, sh_te[2] = {T, E}, sh_tk[2] = {T, k};
    step_say(&s, "x = post_attention_layernorm(h)   # embedding_after_edit_normalized of chapter 13");
    step_show(&s, "moe_input", lt.embedding_after_edit_normalized, sh_td, 2, act);

    // ---- the gate
    step_heading(&s, "the gate: a score for every expert", "门控：给每个专家打分");
    step_say(&s, "logits = F.linear(x, gate.weight)      # MoEGate");
    step_show(&s, "gate_logits", m->gate_logits, sh_te, 2, act);
    step_say(&s, "scores = logits.softmax(dim=-1)        # fp32");
    step_show(&s, "gate_scores", m->gate_scores, sh_te, 2, "f32");
    char **expert_labels = xcalloc((size_t)E, sizeof(char *));
    for (int e = 0; e < E; e++) expert_labels[e] = xasprintf("e%d", e);
    char sub[256], title[160];
    snprintf(sub, sizeof sub, "%s, layer %d, [%d, %d], %s", s.id, L, T, E, s.cuda && !s.cpu ? "CUDA" : "CPU");
    snprintf(title, sizeof title, "%s", step_text(&s, "gate scores: softmax over the experts, per token", "门控分数：每个 token 在专家上的 softmax"));
    HeatmapOptions opt = {.title = title, .subtitle = sub, .x_label = step_text(&s, "expert", "专家"),
                          .y_label = step_text(&s, "token", "token"), .value_label = "score", .fixed_range = true,
                          .vmin = 0, .vmax = 1, .show_values = true};
    char *png = step_path(&s, "gate_scores.png");
    figure_heatmap(png, m->gate_scores, T, E, step_labels(&s), (const char *const *)expert_labels, &opt);
    free(png);
    step_image(&s, "gate_scores.png", title);

    // ---- top-k and the renormalised weights
    step_heading(&s, "each token's top-k experts", "每个 token 的前 k 个专家");
    step_say(&s, "topk_weight, topk_idx = torch.topk(scores, k=%d, dim=-1)", k);
    if (k > 1 && c->norm_topk_prob) step_say(&s, "topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)");
    else step_say(&s, "%s", step_text(&s, "(no renormalisation: norm_topk_prob is off or k = 1)", "（不重新归一化：norm_topk_prob 关闭或 k = 1）"));
    float *idx_f = as_float_i32(m->topk_idx, (size_t)T * k);
    step_show(&s, "topk_idx", idx_f, sh_tk, 2, "i32");
    step_show(&s, "topk_weight", m->topk_w, sh_tk, 2, "f32");
    for (int tt = 0; tt < T; tt++) {
        char shown[64], line[256];
        token_display(s.pieces[tt], shown, sizeof shown);
        int cols = 0;  // printf pads bytes; '␣' is 3 bytes and one column
        for (const char *q = shown; *q; q++) cols += ((unsigned char)*q & 0xC0) != 0x80;
        size_t len = (size_t)snprintf(line, sizeof line, "  %3d %s%*s ->", tt, shown, cols < 16 ? 16 - cols : 0, "");
        for (int j = 0; j < k && len < sizeof line; j++)
            len += (size_t)snprintf(line + len, sizeof line - len, "  e%d %.3f (score %.3f)", m->topk_idx[(size_t)tt * k + j],
                                    m->topk_w[(size_t)tt * k + j],
                                    m->gate_scores[(size_t)tt * E + m->topk_idx[(size_t)tt * k + j]]);
        step_say(&s, "%s", line);
    }
    // the same as a dense [T, E] matrix: the weight where a token picked the expert, 0 elsewhere
    float *routing = xcalloc((size_t)T * E, sizeof(float));
    uint8_t *unpicked = xmalloc((size_t)T * E);
    memset(unpicked, 1, (size_t)T * E);
    for (int tt = 0; tt < T; tt++)
        for (int j = 0; j < k; j++) {
            int e = m->topk_idx[(size_t)tt * k + j];
            routing[(size_t)tt * E + e] = m->topk_w[(size_t)tt * k + j];
            unpicked[(size_t)tt * E + e] = 0;
        }
    step_show(&s, "routing_weights", routing, sh_te, 2, "f32");
    snprintf(title, sizeof title, "%s", step_text(&s, "routing weights: the top-k picks, renormalised (grey: not picked)",
                                                 "路由权重：前 k 个选择，重新归一化（灰色：未选中）"));
    opt.title = title, opt.value_label = "weight", opt.mask = unpicked;
    png = step_path(&s, "routing_weights.png");
    figure_heatmap(png, routing, T, E, step_labels(&s), (const char *const *)expert_labels, &opt);
    free(png);
    step_image(&s, "routing_weights.png", title);

    // ---- the load of each expert, and the auxiliary loss
    step_heading(&s, "the load of each expert, and the auxiliary loss", "每个专家的负载与辅助损失");
    float *load = xcalloc((size_t)E, sizeof(float));
    for (int a = 0; a < T * k; a++) load[m->topk_idx[a]] += 1.0f;
    const float balanced = (float)T * k / E;
    int64_t sh_e[1] = {E};
    step_show(&s, "expert_load", load, sh_e, 1, "f32");
    for (int e = 0; e < E; e++) {
        if (s.lang == LANG_ZH)
            step_say(&s, "  专家 %d：%d 次选择中的 %.0f 次（均衡份额 %.2f 的 %.2f 倍）", e, T * k, (double)load[e],
                     (double)balanced, (double)(load[e] / balanced));
        else
            step_say(&s, "  expert %d: %2.0f of the %d picks (%.2f x the balanced share %.2f)", e, (double)load[e], T * k,
                     (double)(load[e] / balanced), (double)balanced);
    }
    char **load_labels = xcalloc((size_t)E, sizeof(char *));
    for (int e = 0; e < E; e++) load_labels[e] = xasprintf("%s %d", step_text(&s, "expert", "专家"), e);
    snprintf(title, sizeof title, step_text(&s, "load per expert, layer %d: picks of %d tokens x top-%d",
                                            "第 %d 层每个专家的负载：%d 个 token x 前 %d"), L, T, k);
    png = step_path(&s, "expert_load.png");
    figure_bar_chart_h_ref(png, load, (const char *const *)load_labels, E, title, step_text(&s, "picks", "被选次数"),
                           balanced, step_text(&s, "balanced share T*k/E", "均衡份额 T*k/E"));
    free(png);
    step_image(&s, "expert_load.png", title);
    double aux_seq = moe_aux_loss_cpu(m->gate_scores, m->topk_idx, 1, T, E, k, c->aux_loss_alpha, true);
    double aux_all = moe_aux_loss_cpu(m->gate_scores, m->topk_idx, 1, T, E, k, c->aux_loss_alpha, false);
    step_say(&s, "seq_aux: ce = count / (T*k/E); aux_loss = alpha * (ce * scores.mean(dim=1)).sum(dim=1).mean() = %.6g", aux_seq);
    step_say(&s, "batch:   fi = E * count / (T*k); aux_loss = alpha * (scores.mean(0) * fi).sum()          = %.6g", aux_all);
    step_explain(&s,
                 "The model's form is the first when seq_aux is true. For one sequence both forms are the same number "
                 "(ce and fi coincide); they differ over a batch, where seq_aux balances each sequence on its own. "
                 "MiniMind adds this loss to the cross-entropy in training only; at inference it is 0.",
                 "seq_aux 为 true 时模型用第一种形式。对单个序列两种形式数值相同（ce 与 fi 一致）；在一个 batch 上它们不同，"
                 "seq_aux 让每个序列各自均衡。MiniMind 只在训练时把这个损失加到交叉熵上；推理时它为 0。");
    float aux[2] = {(float)aux_seq, (float)aux_all};
    int64_t sh2[1] = {2};
    step_tensor(&s, "aux_loss", aux, sh2, 1, "f32");

    // ---- the experts, each on the tokens it got
    step_heading(&s, "each expert on the tokens routed to it", "每个专家处理分给它的 token");
    step_say(&s, "idxs = flat_expert_indices.argsort(); tokens_per_expert = flat_expert_indices.bincount().cumsum(0)");
    for (int e = 0; e < E; e++) {
        int off = m->offsets[e], cnt = m->offsets[e + 1] - off;
        float *tok = xmalloc((size_t)(cnt ? cnt : 1) * sizeof(float));
        char line[512];
        size_t len = (size_t)snprintf(line, sizeof line, "  expert %d <- %d tokens:", e, cnt);
        for (int i = 0; i < cnt; i++) {
            int tt = m->sorted[off + i] / k;
            tok[i] = (float)tt;
            char shown[48];
            token_display(s.pieces[tt], shown, sizeof shown);
            if (len < sizeof line - 64) len += (size_t)snprintf(line + len, sizeof line - len, " %d:%s", tt, shown);
        }
        step_say(&s, "%s", line);
        int64_t sh_n[1] = {cnt}, sh_nd[2] = {cnt, D};
        if (cnt) {  // an expert no token picked has no rows: nothing to write
            snprintf(name, sizeof name, "expert_%d_tokens", e);
            step_tensor(&s, name, tok, sh_n, 1, "i32");
            snprintf(name, sizeof name, "expert_%d_out", e);
            step_show(&s, name, m->expert_out + (size_t)off * D, sh_nd, 2, act);
        }
        free(tok);
    }

    // ---- the weighted sum, the shared experts, the layer's output
    step_heading(&s, "the weighted sum and the shared experts", "加权求和与共享专家");
    step_say(&s, "y = sum_j topk_weight[:, j] * expert_{topk_idx[:, j]}(x)");
    step_show(&s, "routed_out", m->routed_out, sh_td, 2, act);
    if (S > 0) {
        int64_t sh_std[3] = {S, T, D};
        step_say(&s, "for expert in shared_experts: y = y + expert(x)");
        step_show(&s, "shared_out", m->shared_out, sh_std, 3, act);
    }
    step_show(&s, "moe_out", m->moe_out, sh_td, 2, act);
    snprintf(name, sizeof name, "layer_%d_embedding", L);
    step_say(&s, "%s = embedding_after_edit + moe_out", name);
    step_show(&s, name, lt.layer_embedding, sh_td, 2, act);

    // ---- self-check: routing only skips work. Every expert on every token, weighted by routing_weights (0 where not
    // picked), gives the same routed_out bit for bit (each row is computed alone; the zero weights add exact zeros).
    if (s.compare) {
        MoeWeights mw;
        layer_moe_weights(&s, L, &mw);
        float *dense = xmalloc((size_t)T * D * sizeof(float));
        double t0 = step_clock();
        moe_dense_routed_cpu(dense, lt.embedding_after_edit_normalized, &mw, m->topk_idx, m->topk_w, T, D, F, s.prec);
        step_add_ms(&s, false, t0);
        step_compare(&s, "routed_out (dense: all experts on all tokens, weights 0 where not picked)", m->routed_out,
                     dense, sh_td, 2, 0.0, 0.0);
        if (s.cuda) check_cuda(&s, &lt, &mw);
        moe_weights_free_tables(&mw);
        free(dense);
    }
    for (int e = 0; e < E; e++) free(expert_labels[e]), free(load_labels[e]);
    free(expert_labels), free(load_labels), free(load), free(routing), free(unpicked), free(idx_f);
    layer_trace_free(&lt);
    return step_finish(&s);
}
