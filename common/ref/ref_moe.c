// ref_moe.c: MiniMind's mixture-of-experts feed-forward on the CPU, the ground truth of the CUDA path (ref_moe.h).
#include "ref/ref_moe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/topk_torch.h"
#include "util.h"

MoeWeights moe_weights_empty(const Config *c) {
    MoeWeights w = {0};
    w.E = c->n_routed_experts, w.k = c->num_experts_per_tok, w.S = c->n_shared_experts;
    w.norm_topk_prob = c->norm_topk_prob;
    return w;
}

void moe_weights_alloc_tables(MoeWeights *w) {
    size_t e = (size_t)(w->E > 0 ? w->E : 1), s = (size_t)(w->S > 0 ? w->S : 1);
    w->w1 = xcalloc(e, sizeof *w->w1), w->w2 = xcalloc(e, sizeof *w->w2), w->w3 = xcalloc(e, sizeof *w->w3);
    w->shared_w1 = xcalloc(s, sizeof *w->shared_w1), w->shared_w2 = xcalloc(s, sizeof *w->shared_w2);
    w->shared_w3 = xcalloc(s, sizeof *w->shared_w3);
}

void moe_weight_name(char *out, size_t n, int layer, const char *which, int e, bool shared) {
    if (strcmp(which, "gate") == 0) snprintf(out, n, "layers.%d.feed_forward.gate.weight", layer);
    else snprintf(out, n, "layers.%d.feed_forward.%s.%d.%s.weight", layer, shared ? "shared_experts" : "experts", e, which);
}

void moe_weights_bind(MoeWeights *w, const Config *c, int layer, const uint16_t *(*get)(void *ctx, const char *name),
                      void *ctx) {
    *w = moe_weights_empty(c);
    moe_weights_alloc_tables(w);
    char name[128];
    moe_weight_name(name, sizeof name, layer, "gate", 0, false);
    w->gate = get(ctx, name);
    for (int shared = 0; shared < 2; shared++)
        for (int e = 0; e < (shared ? w->S : w->E); e++) {
            const uint16_t **dst[3] = {shared ? &w->shared_w1[e] : &w->w1[e], shared ? &w->shared_w2[e] : &w->w2[e],
                                       shared ? &w->shared_w3[e] : &w->w3[e]};
            static const char *const which[3] = {"w1", "w2", "w3"};
            for (int i = 0; i < 3; i++) {
                moe_weight_name(name, sizeof name, layer, which[i], e, shared);
                *dst[i] = get(ctx, name);
            }
        }
}

void moe_weights_free_tables(MoeWeights *w) {
    free(w->w1), free(w->w2), free(w->w3), free(w->shared_w1), free(w->shared_w2), free(w->shared_w3);
    w->w1 = w->w2 = w->w3 = w->shared_w1 = w->shared_w2 = w->shared_w3 = NULL;
}

void moe_trace_alloc(MoeTrace *tr, int T, int D, int F, int E, int k, int S) {
    memset(tr, 0, sizeof *tr);
    tr->T = T, tr->D = D, tr->F = F, tr->E = E, tr->k = k, tr->S = S;
    size_t t = (size_t)T, d = (size_t)D;
    tr->gate_logits = xcalloc(t * (size_t)E, sizeof(float));
    tr->gate_scores = xcalloc(t * (size_t)E, sizeof(float));
    tr->topk_idx = xcalloc(t * (size_t)k, sizeof(int32_t));
    tr->topk_w = xcalloc(t * (size_t)k, sizeof(float));
    tr->sorted = xcalloc(t * (size_t)k, sizeof(int32_t));
    tr->pos = xcalloc(t * (size_t)k, sizeof(int32_t));
    tr->offsets = xcalloc((size_t)E + 1, sizeof(int32_t));
    tr->expert_out = xcalloc(t * (size_t)k * d, sizeof(float));
    tr->routed_out = xcalloc(t * d, sizeof(float));
    tr->shared_out = xcalloc((size_t)(S > 0 ? S : 1) * t * d, sizeof(float));
    tr->moe_out = xcalloc(t * d, sizeof(float));
}

void moe_trace_free(MoeTrace *tr) {
    free(tr->gate_logits), free(tr->gate_scores), free(tr->topk_idx), free(tr->topk_w), free(tr->sorted), free(tr->pos);
    free(tr->offsets), free(tr->expert_out), free(tr->routed_out), free(tr->shared_out), free(tr->moe_out);
    memset(tr, 0, sizeof *tr);
}

void moe_gate_forward_cpu(float *gate_logits, float *gate_scores, const float *x, const uint16_t *gate, int T, int D,
                          int E, Precision p) {
    // logits = F.linear(hidden_states, self.weight, None): an nn.Linear product, rounded like every activation
    matmul_forward_cpu(gate_logits, x, gate, T, D, E, p);
    // scores = logits.softmax(dim=-1), kept in fp32 (autocast runs a softmax in fp32)
    softmax_forward_cpu(gate_scores, gate_logits, T, E, PREC_FP32);
}

void moe_topk_cpu(int32_t *topk_idx, float *topk_w, const float *gate_scores, int T, int E, int k, bool norm_topk_prob) {
    if (k < 1 || k > E) fatal("moe_topk_cpu: k = %d must be in 1..E = %d", k, E);
    TopkItem *buf = xmalloc((size_t)E * sizeof(TopkItem));
    for (int t = 0; t < T; t++) {
        // topk_weight, topk_idx = torch.topk(scores, k=self.top_k, dim=-1): largest first, ties as torch orders them
        topk_torch_order(buf, gate_scores + (size_t)t * E, E, k);
        float sum = 0.0f;  // torch sums the k fp32 weights in fp32, in order
        for (int j = 0; j < k; j++) {
            if (isnan(buf[j].v)) fatal("moe_topk_cpu: token %d has NaN gate scores", t);
            sum += buf[j].v;
        }
        for (int j = 0; j < k; j++) {
            topk_idx[(size_t)t * k + j] = buf[j].i;
            // if self.top_k > 1 and self.norm_topk_prob: topk_weight = topk_weight / (denominator + 1e-20)
            topk_w[(size_t)t * k + j] = (k > 1 && norm_topk_prob) ? buf[j].v / (sum + 1e-20f) : buf[j].v;
        }
    }
    free(buf);
}

void moe_sort_cpu(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int T, int k, int E) {
    // idxs = flat_expert_indices.argsort(); tokens_per_expert = bincount(...).cumsum(0): a counting sort, stable
    const int n = T * k;
    for (int e = 0; e <= E; e++) offsets[e] = 0;
    for (int a = 0; a < n; a++) offsets[topk_idx[a] + 1]++;
    for (int e = 0; e < E; e++) offsets[e + 1] += offsets[e];
    int32_t *fill = xmalloc((size_t)(E > 0 ? E : 1) * sizeof(int32_t));
    memcpy(fill, offsets, (size_t)E * sizeof(int32_t));
    for (int a = 0; a < n; a++) sorted[fill[topk_idx[a]]++] = a;
    for (int i = 0; i < n; i++) pos[sorted[i]] = i;
    free(fill);
}

void moe_expert_forward_cpu(float *out, const float *x, int n, const uint16_t *w1, const uint16_t *w2,
                            const uint16_t *w3, int D, int F, Precision p) {
    if (n == 0) return;
    float *gate = xmalloc((size_t)n * F * sizeof(float)), *up = xmalloc((size_t)n * F * sizeof(float));
    // self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x)), in Meta's names w2(silu(w1 x) * w3 x)
    matmul_forward_cpu(gate, x, w1, n, D, F, p);
    matmul_forward_cpu(up, x, w3, n, D, F, p);
    swiglu_forward_cpu(gate, gate, up, (size_t)n * F, p);
    matmul_forward_cpu(out, gate, w2, n, F, D, p);
    free(gate), free(up);
}

void moe_combine_cpu(float *routed_out, const float *expert_out, const int32_t *pos, const int32_t *topk_idx,
                     const float *topk_w, int T, int k, int D, Precision p) {
    if (k > 64) fatal("moe_combine_cpu: k = %d > 64", k);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        // the token's picks in expert-id order (a token picks an expert at most once)
        int order[64], m = k;
        for (int j = 0; j < m; j++) order[j] = j;
        for (int i = 1; i < m; i++)
            for (int j = i; j > 0 && topk_idx[(size_t)t * k + order[j]] < topk_idx[(size_t)t * k + order[j - 1]]; j--) {
                int tmp = order[j];
                order[j] = order[j - 1], order[j - 1] = tmp;
            }
        for (int d = 0; d < D; d++) {
            double acc = 0.0;  // a product of an fp32 weight and a bf16 value is exact in double
            for (int j = 0; j < m; j++) {
                int a = t * k + order[j];
                acc += (double)topk_w[a] * (double)expert_out[(size_t)pos[a] * D + d];
            }
            routed_out[(size_t)t * D + d] = act_round((float)acc, p);
        }
    }
}

void moe_forward_cpu(MoeTrace *tr, const float *x, const MoeWeights *w, int T, int D, int F, Precision p) {
    const int E = w->E, k = w->k;
    if (tr->T != T || tr->D != D || tr->E != E || tr->k != k || tr->S != w->S) fatal("moe_forward_cpu: trace sizes");
    moe_gate_forward_cpu(tr->gate_logits, tr->gate_scores, x, w->gate, T, D, E, p);
    moe_topk_cpu(tr->topk_idx, tr->topk_w, tr->gate_scores, T, E, k, w->norm_topk_prob);
    moe_sort_cpu(tr->sorted, tr->pos, tr->offsets, tr->topk_idx, T, k, E);
    // moe_infer: each expert on the rows of the tokens routed to it, one product per expert
    float *rows = xmalloc((size_t)(T * k > 0 ? T * k : 1) * D * sizeof(float));
    for (int i = 0; i < T * k; i++) memcpy(rows + (size_t)i * D, x + (size_t)(tr->sorted[i] / k) * D, (size_t)D * sizeof(float));
    for (int e = 0; e < E; e++) {
        int off = tr->offsets[e], n = tr->offsets[e + 1] - off;
        moe_expert_forward_cpu(tr->expert_out + (size_t)off * D, rows + (size_t)off * D, n, w->w1[e], w->w2[e],
                               w->w3[e], D, F, p);
    }
    free(rows);
    moe_combine_cpu(tr->routed_out, tr->expert_out, tr->pos, tr->topk_idx, tr->topk_w, T, k, D, p);
    // for expert in self.shared_experts: y = y + expert(identity)
    memcpy(tr->moe_out, tr->routed_out, (size_t)T * D * sizeof(float));
    for (int s = 0; s < w->S; s++) {
        float *so = tr->shared_out + (size_t)s * T * D;
        moe_expert_forward_cpu(so, x, T, w->shared_w1[s], w->shared_w2[s], w->shared_w3[s], D, F, p);
        residual_forward_cpu(tr->moe_out, tr->moe_out, so, (size_t)T * D, p);
    }
}

double moe_aux_loss_cpu(const float *gate_scores, const int32_t *topk_idx, int B, int T, int E, int k, double alpha,
                        bool seq_aux) {
    if (B < 1 || T < 1) return 0.0;
    double *count = xcalloc((size_t)E, sizeof(double)), *mean_s = xcalloc((size_t)E, sizeof(double));
    double aux = 0.0;
    if (seq_aux) {
        for (int b = 0; b < B; b++) {
            memset(count, 0, (size_t)E * sizeof(double)), memset(mean_s, 0, (size_t)E * sizeof(double));
            for (int t = 0; t < T; t++) {
                size_t r = (size_t)b * T + t;
                for (int j = 0; j < k; j++) count[topk_idx[r * k + j]] += 1;
                for (int e = 0; e < E; e++) mean_s[e] += gate_scores[r * E + e];
            }
            double sum = 0.0;  // Σ_e ce[b,e] · mean_t s[b,t,e],  ce = count / (T k / E)
            for (int e = 0; e < E; e++) sum += count[e] / ((double)T * k / E) * (mean_s[e] / T);
            aux += sum / B;
        }
    } else {
        const size_t N = (size_t)B * T;
        for (size_t r = 0; r < N; r++) {
            for (int j = 0; j < k; j++) count[topk_idx[r * k + j]] += 1;
            for (int e = 0; e < E; e++) mean_s[e] += gate_scores[r * E + e];
        }
        for (int e = 0; e < E; e++) aux += (mean_s[e] / (double)N) * (E * count[e] / ((double)N * k));  // P_e · f_e
    }
    free(count), free(mean_s);
    return alpha * aux;
}

void moe_dense_routed_cpu(float *routed_out, const float *x, const MoeWeights *w, const int32_t *topk_idx,
                          const float *topk_w, int T, int D, int F, Precision p) {
    const int E = w->E, k = w->k;
    float *dense_w = xcalloc((size_t)T * E, sizeof(float));  // [T, E]: the pick's weight, 0 where not picked
    for (int t = 0; t < T; t++)
        for (int j = 0; j < k; j++) dense_w[(size_t)t * E + topk_idx[(size_t)t * k + j]] = topk_w[(size_t)t * k + j];
    float *all = xmalloc((size_t)E * T * D * sizeof(float));  // every expert on every token
    for (int e = 0; e < E; e++) moe_expert_forward_cpu(all + (size_t)e * T * D, x, T, w->w1[e], w->w2[e], w->w3[e], D, F, p);
    for (int t = 0; t < T; t++)
        for (int d = 0; d < D; d++) {
            double acc = 0.0;
            for (int e = 0; e < E; e++) acc += (double)dense_w[(size_t)t * E + e] * (double)all[((size_t)e * T + t) * D + d];
            routed_out[(size_t)t * D + d] = act_round((float)acc, p);
        }
    free(dense_w), free(all);
}
