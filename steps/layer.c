// layer.c: one transformer layer with the tutorial's names, the CPU reference and the CUDA path op by op (layer.h).
#include "layer.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"

static float *alloc_f(size_t n) { return xcalloc(n, sizeof(float)); }

void layer_trace_alloc(LayerTrace *lt, const Step *s, int layer, int head) {
    const Config *c = s->cfg;
    memset(lt, 0, sizeof *lt);
    lt->layer = layer, lt->head = head, lt->kv_head = gqa_kv_head(head, c->n_heads, c->n_kv_heads);
    lt->T = s->T, lt->D = c->dim, lt->H = c->n_heads, lt->Hkv = c->n_kv_heads, lt->Dh = c->head_dim, lt->F = c->ffn_hidden;
    size_t T = (size_t)lt->T, D = (size_t)lt->D, Dh = (size_t)lt->Dh, F = (size_t)lt->F;
    size_t H = (size_t)lt->H, Hkv = (size_t)lt->Hkv;
    lt->x_in = alloc_f(T * D), lt->x_norm = alloc_f(T * D), lt->rstd = alloc_f(T);
    lt->q_per_token = alloc_f(T * Dh), lt->k_per_token = alloc_f(T * Dh), lt->v_per_token = alloc_f(T * Dh);
    lt->q_per_token_rotated = alloc_f(T * Dh), lt->k_per_token_rotated = alloc_f(T * Dh);
    lt->qk_per_token = alloc_f(T * T), lt->mask = alloc_f(T * T), lt->qk_per_token_after_masking = alloc_f(T * T);
    lt->qk_per_token_after_masking_after_softmax = alloc_f(T * T), lt->qkv_attention = alloc_f(T * Dh);
    lt->q_all = alloc_f(T * H * Dh), lt->k_all = alloc_f(T * Hkv * Dh), lt->v_all = alloc_f(T * Hkv * Dh);
    lt->attn_weights_all = alloc_f(H * T * T), lt->stacked_qkv_attention = alloc_f(T * D);
    lt->embedding_delta = alloc_f(T * D), lt->embedding_after_edit = alloc_f(T * D);
    lt->embedding_after_edit_normalized = alloc_f(T * D);
    lt->ffn_gate = alloc_f(T * F), lt->ffn_up = alloc_f(T * F), lt->ffn_hidden = alloc_f(T * F);
    lt->output_after_feedforward = alloc_f(T * D), lt->layer_embedding = alloc_f(T * D);
    lt->is_moe = config_is_moe(c);
    if (lt->is_moe) moe_trace_alloc(&lt->moe, lt->T, lt->D, lt->F, c->n_routed_experts, c->num_experts_per_tok, c->n_shared_experts);
}

void layer_trace_free(LayerTrace *lt) {
    float **all[] = {&lt->x_in, &lt->x_norm, &lt->rstd, &lt->q_per_token, &lt->k_per_token, &lt->v_per_token,
                     &lt->q_per_token_rotated, &lt->k_per_token_rotated, &lt->qk_per_token, &lt->mask,
                     &lt->qk_per_token_after_masking, &lt->qk_per_token_after_masking_after_softmax,
                     &lt->qkv_attention, &lt->q_all, &lt->k_all, &lt->v_all, &lt->attn_weights_all,
                     &lt->stacked_qkv_attention, &lt->embedding_delta, &lt->embedding_after_edit,
                     &lt->embedding_after_edit_normalized, &lt->ffn_gate, &lt->ffn_up, &lt->ffn_hidden,
                     &lt->output_after_feedforward, &lt->layer_embedding};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(*all[i]), *all[i] = NULL;
    if (lt->is_moe) moe_trace_free(&lt->moe);
}

static const uint16_t *weight_host(void *ctx, const char *name) { return step_weight(ctx, NULL, "%s", name); }
static const uint16_t *weight_dev(void *ctx, const char *name) { return step_weight_dev(ctx, "%s", name); }
void layer_moe_weights(Step *s, int layer, MoeWeights *w) { moe_weights_bind(w, s->cfg, layer, weight_host, s); }
void layer_moe_weights_dev(Step *s, int layer, MoeWeights *w) { moe_weights_bind(w, s->cfg, layer, weight_dev, s); }

void embed_tokens_cpu(Step *s, float *out) {
    const uint16_t *table = step_weight(s, NULL, "tok_embeddings.weight");
    embedding_forward_cpu(out, s->tokens, table, s->T, s->cfg->dim, s->cfg->vocab_size, s->prec);
}

// The embedding rows on the device, [T, D] activations (a step_dev_act buffer).
static void *embed_tokens_dev(Step *s) {
    const int T = s->T, D = s->cfg->dim;
    int32_t *tok = step_dev_alloc(s, (size_t)T * sizeof(int32_t));
    cuda_memcpy_h2d(tok, s->tokens, (size_t)T * sizeof(int32_t));
    void *y = step_dev_act(s, NULL, (size_t)T * D);
    embedding_forward_cuda(y, tok, step_weight_dev(s, "tok_embeddings.weight"), T, D, s->cfg->vocab_size, s->prec);
    return y;
}

void embed_tokens_cuda(Step *s, float *out) {
    double t0 = step_clock();
    step_host_act(s, out, embed_tokens_dev(s), (size_t)s->T * s->cfg->dim);
    step_add_ms(s, true, t0);
}

LayerWeights layer_weights(Step *s, int L) {
    LayerWeights w;
    w.wq = step_weight(s, NULL, "layers.%d.attention.wq.weight", L);
    w.wk = step_weight(s, NULL, "layers.%d.attention.wk.weight", L);
    w.wv = step_weight(s, NULL, "layers.%d.attention.wv.weight", L);
    w.wo = step_weight(s, NULL, "layers.%d.attention.wo.weight", L);
    w.w1 = step_weight(s, NULL, "layers.%d.feed_forward.w1.weight", L);
    w.w2 = step_weight(s, NULL, "layers.%d.feed_forward.w2.weight", L);
    w.w3 = step_weight(s, NULL, "layers.%d.feed_forward.w3.weight", L);
    w.attention_norm = step_weight(s, NULL, "layers.%d.attention_norm.weight", L);
    w.ffn_norm = step_weight(s, NULL, "layers.%d.ffn_norm.weight", L);
    return w;
}

// The LayerTrace field that holds an op's output.
static float *layer_op_slot(const LayerTrace *lt, LayerOp op) {
    switch (op) {
    case OP_EMBED: return lt->x_in;
    case OP_ATTN_NORM: return lt->x_norm;
    case OP_Q_HEAD: return lt->q_per_token;
    case OP_ROPE_Q: return lt->q_per_token_rotated;
    case OP_K_HEAD: return lt->k_per_token;
    case OP_ROPE_K: return lt->k_per_token_rotated;
    case OP_SCORES: return lt->qk_per_token;
    case OP_MASK: return lt->qk_per_token_after_masking;
    case OP_SOFTMAX: return lt->qk_per_token_after_masking_after_softmax;
    case OP_V_HEAD: return lt->v_per_token;
    case OP_HEAD_VALUES: return lt->qkv_attention;
    case OP_Q_ALL: return lt->q_all;
    case OP_K_ALL: return lt->k_all;
    case OP_V_ALL: return lt->v_all;
    case OP_ATTENTION_ALL: return lt->stacked_qkv_attention;
    case OP_WO: return lt->embedding_delta;
    case OP_RESIDUAL_ATTN: return lt->embedding_after_edit;
    case OP_FFN_NORM: return lt->embedding_after_edit_normalized;
    case OP_FFN_GATE: return lt->ffn_gate;
    case OP_FFN_UP: return lt->ffn_up;
    case OP_SWIGLU: return lt->ffn_hidden;
    case OP_FFN_DOWN: return lt->output_after_feedforward;
    case OP_RESIDUAL_FFN: return lt->layer_embedding;
    default: fatal("layer_op_slot: bad op %d", (int)op);
    }
}

// A MoE model's feed-forward is one op, MiniMind's MOEFeedForward (chapter 20), in place of OP_FFN_DOWN: the SwiGLU's
// gate, up and product before it do not exist there (ffn_* stay unused).
static bool is_moe_skipped(LayerOp op) { return op == OP_FFN_GATE || op == OP_FFN_UP || op == OP_SWIGLU; }

// One op of the layer as the tutorial writes it, on the CPU, from the fields of lt the ops before it filled.
static void layer_op_cpu(Step *s, LayerTrace *lt, LayerOp op) {
    const int L = lt->layer, T = lt->T, D = lt->D, H = lt->H, Hkv = lt->Hkv, Dh = lt->Dh, F = lt->F;
    const Precision p = s->prec;
    if (lt->is_moe && is_moe_skipped(op)) return;
    const float eps = (float)s->cfg->norm_eps;
#define W(name) step_weight(s, NULL, "layers.%d." name, L)
    switch (op) {
    case OP_ATTN_NORM:  // token_embeddings = rms_norm(token_embeddings_unnormalized, model["layers.0.attention_norm.weight"])
        rmsnorm_forward_cpu(lt->x_norm, lt->rstd, lt->x_in, W("attention_norm.weight"), T, D, eps, p);
        break;
    case OP_Q_HEAD:  // q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)
        matmul_forward_cpu(lt->q_per_token, lt->x_norm, W("attention.wq.weight") + (size_t)lt->head * Dh * D, T, D, Dh, p);
        break;
    case OP_ROPE_Q:  // view_as_real(view_as_complex(q_per_token.float().view(T, -1, 2)) * freqs_cis), type_as
        rope_forward_complex_cpu(lt->q_per_token_rotated, lt->q_per_token, s->freqs_cis, T, 1, Dh, 0, p);
        break;
    case OP_K_HEAD:  // k_per_token = torch.matmul(token_embeddings, k_layer0_head0.T), the kv head this head reads
        matmul_forward_cpu(lt->k_per_token, lt->x_norm, W("attention.wk.weight") + (size_t)lt->kv_head * Dh * D, T, D, Dh, p);
        break;
    case OP_ROPE_K:
        rope_forward_complex_cpu(lt->k_per_token_rotated, lt->k_per_token, s->freqs_cis, T, 1, Dh, 0, p);
        break;
    case OP_SCORES:  // qk_per_token = torch.matmul(q_per_token_rotated, k_per_token_rotated.T)/(head_dim)**0.5
        attention_scores_cpu(lt->qk_per_token, lt->q_per_token_rotated, lt->k_per_token_rotated, T, T, Dh, p);
        break;
    case OP_MASK:  // mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1); qk_per_token + mask
        causal_mask_cpu(lt->mask, T, T, 0);
        memcpy(lt->qk_per_token_after_masking, lt->qk_per_token, (size_t)T * T * sizeof(float));
        attention_mask_cpu(lt->qk_per_token_after_masking, T, T, 0, p);
        break;
    case OP_SOFTMAX:  // softmax(qk_per_token_after_masking, dim=1).to(torch.bfloat16)
        softmax_forward_cpu(lt->qk_per_token_after_masking_after_softmax, lt->qk_per_token_after_masking, T, T, p);
        break;
    case OP_V_HEAD:  // v_per_token = torch.matmul(token_embeddings, v_layer0_head0.T)
        matmul_forward_cpu(lt->v_per_token, lt->x_norm, W("attention.wv.weight") + (size_t)lt->kv_head * Dh * D, T, D, Dh, p);
        break;
    case OP_HEAD_VALUES:  // qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)
        attention_values_cpu(lt->qkv_attention, lt->qk_per_token_after_masking_after_softmax, lt->v_per_token, T, T,
                             Dh, p);
        break;
    // every head at once: q, k, v for all heads, RoPE, attention with GQA (head h reads kv head h / n_rep)
    case OP_Q_ALL:
        matmul_forward_cpu(lt->q_all, lt->x_norm, W("attention.wq.weight"), T, D, H * Dh, p);
        rope_forward_cpu(lt->q_all, lt->q_all, s->freqs_cis, T, H, Dh, 0, p);
        break;
    case OP_K_ALL:
        matmul_forward_cpu(lt->k_all, lt->x_norm, W("attention.wk.weight"), T, D, Hkv * Dh, p);
        rope_forward_cpu(lt->k_all, lt->k_all, s->freqs_cis, T, Hkv, Dh, 0, p);
        break;
    case OP_V_ALL:
        matmul_forward_cpu(lt->v_all, lt->x_norm, W("attention.wv.weight"), T, D, Hkv * Dh, p);
        break;
    case OP_ATTENTION_ALL:  // stacked_qkv_attention = torch.cat(qkv_attention_store, dim=-1)
        attention_forward_cpu(lt->stacked_qkv_attention, lt->attn_weights_all, lt->q_all, lt->k_all, lt->v_all, T, T,
                              H, Hkv, Dh, 0, p);
        break;
    case OP_WO:  // embedding_delta = torch.matmul(stacked_qkv_attention, w_layer0.T)
        matmul_forward_cpu(lt->embedding_delta, lt->stacked_qkv_attention, W("attention.wo.weight"), T, H * Dh, D, p);
        break;
    case OP_RESIDUAL_ATTN:  // embedding_after_edit = token_embeddings_unnormalized + embedding_delta
        residual_forward_cpu(lt->embedding_after_edit, lt->x_in, lt->embedding_delta, (size_t)T * D, p);
        break;
    case OP_FFN_NORM:  // embedding_after_edit_normalized = rms_norm(embedding_after_edit, model["layers.0.ffn_norm.weight"])
        rmsnorm_forward_cpu(lt->embedding_after_edit_normalized, NULL, lt->embedding_after_edit, W("ffn_norm.weight"),
                            T, D, eps, p);
        break;
    // output_after_feedforward = torch.matmul(F.silu(torch.matmul(x, w1.T)) * torch.matmul(x, w3.T), w2.T)
    case OP_FFN_GATE:
        matmul_forward_cpu(lt->ffn_gate, lt->embedding_after_edit_normalized, W("feed_forward.w1.weight"), T, D, F, p);
        break;
    case OP_FFN_UP:
        matmul_forward_cpu(lt->ffn_up, lt->embedding_after_edit_normalized, W("feed_forward.w3.weight"), T, D, F, p);
        break;
    case OP_SWIGLU:
        swiglu_forward_cpu(lt->ffn_hidden, lt->ffn_gate, lt->ffn_up, (size_t)T * F, p);
        break;
    case OP_FFN_DOWN:
        if (lt->is_moe) {  // output_after_feedforward = self.mlp(x), MiniMind's MOEFeedForward: gate, top-k, experts
            MoeWeights mw;
            layer_moe_weights(s, L, &mw);
            moe_forward_cpu(&lt->moe, lt->embedding_after_edit_normalized, &mw, T, D, F, p);
            memcpy(lt->output_after_feedforward, lt->moe.moe_out, (size_t)T * D * sizeof(float));
            moe_weights_free_tables(&mw);
        } else
            matmul_forward_cpu(lt->output_after_feedforward, lt->ffn_hidden, W("feed_forward.w2.weight"), T, F, D, p);
        break;
    case OP_RESIDUAL_FFN:  // layer_0_embedding = embedding_after_edit + output_after_feedforward
        residual_forward_cpu(lt->layer_embedding, lt->embedding_after_edit, lt->output_after_feedforward, (size_t)T * D,
                             p);
        break;
    default: fatal("layer_op_cpu: bad op %d", (int)op);
    }
#undef W
}

void layer_forward_cpu(Step *s, LayerTrace *lt) {
    for (LayerOp op = OP_ATTN_NORM; op < OP_COUNT; op++) layer_op_cpu(s, lt, op);
}

void layer_input_cpu(Step *s, int layer, float *out) {
    embed_tokens_cpu(s, out);
    if (layer == 0) return;
    LayerTrace lt;
    for (int l = 0; l < layer; l++) {
        layer_trace_alloc(&lt, s, l, 0);
        memcpy(lt.x_in, out, (size_t)s->T * s->cfg->dim * sizeof(float));
        layer_forward_cpu(s, &lt);
        memcpy(out, lt.layer_embedding, (size_t)s->T * s->cfg->dim * sizeof(float));
        layer_trace_free(&lt);
    }
}

void model_layers_cpu(Step *s, float *stream, float *att_maps) {
    const int NL = s->cfg->n_layers;
    const size_t TD = (size_t)s->T * s->cfg->dim, HTT = (size_t)s->cfg->n_heads * s->T * s->T;
    embed_tokens_cpu(s, stream);
    for (int L = 0; L < NL; L++) {
        LayerTrace lt;
        layer_trace_alloc(&lt, s, L, 0);
        memcpy(lt.x_in, stream + (size_t)L * TD, TD * sizeof(float));
        layer_forward_cpu(s, &lt);
        memcpy(stream + (size_t)(L + 1) * TD, lt.layer_embedding, TD * sizeof(float));
        if (att_maps) memcpy(att_maps + (size_t)L * HTT, lt.attn_weights_all, HTT * sizeof(float));
        layer_trace_free(&lt);
        if (!s->quiet) fprintf(stderr, step_text(s, "\r  layer %d/%d (CPU reference)", "\r  第 %d/%d 层（CPU 参考实现）"), L + 1, NL);
    }
    if (!s->quiet) fprintf(stderr, "\n");
}

void layer_input_cuda(Step *s, int layer, float *out) {
    embed_tokens_cuda(s, out);
    if (layer > 0) model_layers_cuda(s, out, 0, layer, out, NULL, NULL);
}

static void layer_op_cuda(Step *s, LayerTrace *lt, LayerOp op);  // below

void layer_inputs_upto(Step *s, LayerOp op, LayerTrace *lt) {
    layer_trace_alloc(lt, s, s->layer, s->head);
    if (s->cpu) {
        double t0 = step_clock();
        layer_input_cpu(s, s->layer, lt->x_in);
        for (LayerOp o = OP_ATTN_NORM; o < op; o++) layer_op_cpu(s, lt, o);
        step_add_ms(s, false, t0);
    } else {  // --no-compare on CUDA: the CUDA path alone
        layer_input_cuda(s, s->layer, lt->x_in);
        for (LayerOp o = OP_ATTN_NORM; o < op; o++) layer_op_cuda(s, lt, o);
    }
}

void show_head_weights(Step *s, const char *prefix, const char *name, int heads, int head) {
    const int D = s->cfg->dim, Dh = s->cfg->head_dim;
    const uint16_t *w = step_weight(s, NULL, "layers.%d.attention.%s.weight", s->layer, name);
    int64_t n = (int64_t)heads * Dh * D, sh3[3] = {heads, Dh, D}, sh2[2] = {Dh, D};
    float *wf = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) wf[i] = bf16_to_f32(w[i]);
    char label[64];
    snprintf(label, sizeof label, "%s_layer%d", prefix, s->layer);
    step_show(s, label, wf, sh3, 3, "bf16");
    snprintf(label, sizeof label, "%s_layer%d_head%d", prefix, s->layer, head);
    step_show(s, label, wf + (size_t)head * Dh * D, sh2, 2, "bf16");
    free(wf);
}

// ---- the ops on the CUDA path, for a run without the CPU reference -------------------------------------------------
// Elements of an op's output.
static size_t op_numel(const LayerTrace *lt, LayerOp op) {
    size_t T = (size_t)lt->T;
    switch (op) {
    case OP_Q_HEAD: case OP_K_HEAD: case OP_V_HEAD: case OP_ROPE_Q: case OP_ROPE_K: case OP_HEAD_VALUES:
        return T * (size_t)lt->Dh;
    case OP_SCORES: case OP_MASK: case OP_SOFTMAX: return T * T;
    case OP_Q_ALL: return T * (size_t)lt->H * (size_t)lt->Dh;
    case OP_K_ALL: case OP_V_ALL: return T * (size_t)lt->Hkv * (size_t)lt->Dh;
    case OP_FFN_GATE: case OP_FFN_UP: case OP_SWIGLU: return T * (size_t)lt->F;
    default: return T * (size_t)lt->D;
    }
}

// One op on the CUDA path from lt's fields (uploaded), its output brought back into its field of lt, and the rstd
// of OP_ATTN_NORM and the attention weights of every head of OP_ATTENTION_ALL into theirs. The mask is the constant
// triangle, which the CUDA path applies inside attention_mask_cuda; the tensor itself is written for the learner.
static void layer_op_cuda(Step *s, LayerTrace *lt, LayerOp op) {
    if (lt->is_moe && is_moe_skipped(op)) return;
    const int L = lt->layer, T = lt->T, D = lt->D, H = lt->H, Hkv = lt->Hkv, Dh = lt->Dh, F = lt->F;
    const Precision p = s->prec;
    const float eps = (float)s->cfg->norm_eps;
    const size_t n_out = op_numel(lt, op);
    double t0 = step_clock();
    void *y = NULL;     // activation output on the device
    float *yf = NULL;   // fp32 output on the device
    float *rstd = op == OP_ATTN_NORM ? step_dev_alloc(s, (size_t)T * sizeof(float)) : NULL;
    float *att = NULL;  // [H, T, T] of OP_ATTENTION_ALL
#define W(name) step_weight_dev(s, "layers.%d." name, L)
    switch (op) {
    case OP_EMBED: y = embed_tokens_dev(s); break;
    case OP_ATTN_NORM:
        y = step_dev_act(s, NULL, n_out);
        rmsnorm_forward_cuda(y, rstd, step_dev_act(s, lt->x_in, (size_t)T * D), W("attention_norm.weight"), T, D, eps, p);
        break;
    case OP_Q_HEAD: case OP_K_HEAD: case OP_V_HEAD: {
        const uint16_t *w = op == OP_Q_HEAD ? W("attention.wq.weight") : op == OP_K_HEAD ? W("attention.wk.weight") : W("attention.wv.weight");
        int row_head = op == OP_Q_HEAD ? lt->head : lt->kv_head;
        y = step_dev_act(s, NULL, n_out);
        matmul_forward_cuda(y, step_dev_act(s, lt->x_norm, (size_t)T * D), w + (size_t)row_head * Dh * D, T, D, Dh, p);
        break;
    }
    case OP_ROPE_Q: case OP_ROPE_K:
        y = step_dev_act(s, op == OP_ROPE_Q ? lt->q_per_token : lt->k_per_token, n_out);
        rope_forward_cuda(y, y, s->freqs_cis_dev, T, 1, Dh, 0, p);
        break;
    case OP_SCORES:
        yf = step_dev_alloc(s, n_out * sizeof(float));
        attention_scores_cuda(yf, step_dev_act(s, lt->q_per_token_rotated, (size_t)T * Dh),
                              step_dev_act(s, lt->k_per_token_rotated, (size_t)T * Dh), T, T, Dh, p);
        break;
    case OP_MASK:
        yf = step_dev_alloc(s, n_out * sizeof(float));
        cuda_memcpy_h2d(yf, lt->qk_per_token, n_out * sizeof(float));
        attention_mask_cuda(yf, T, T, 0, p);
        break;
    case OP_SOFTMAX: {
        float *scores = step_dev_alloc(s, n_out * sizeof(float));
        cuda_memcpy_h2d(scores, lt->qk_per_token_after_masking, n_out * sizeof(float));
        yf = step_dev_alloc(s, n_out * sizeof(float));
        softmax_forward_cuda(yf, scores, T, T, p);
        break;
    }
    case OP_HEAD_VALUES: {
        float *probs = step_dev_alloc(s, (size_t)T * T * sizeof(float));
        cuda_memcpy_h2d(probs, lt->qk_per_token_after_masking_after_softmax, (size_t)T * T * sizeof(float));
        y = step_dev_act(s, NULL, n_out);
        attention_values_cuda(y, probs, step_dev_act(s, lt->v_per_token, (size_t)T * Dh), T, T, Dh, p);
        break;
    }
    case OP_Q_ALL: case OP_K_ALL: case OP_V_ALL: {
        const uint16_t *w = op == OP_Q_ALL ? W("attention.wq.weight") : op == OP_K_ALL ? W("attention.wk.weight") : W("attention.wv.weight");
        int heads = op == OP_Q_ALL ? H : Hkv;
        y = step_dev_act(s, NULL, n_out);
        matmul_forward_cuda(y, step_dev_act(s, lt->x_norm, (size_t)T * D), w, T, D, heads * Dh, p);
        if (op != OP_V_ALL) rope_forward_cuda(y, y, s->freqs_cis_dev, T, heads, Dh, 0, p);
        break;
    }
    case OP_ATTENTION_ALL: {
        att = step_dev_alloc(s, (size_t)H * T * T * sizeof(float));
        y = step_dev_act(s, NULL, n_out);
        attention_forward_cuda(y, att, step_dev_act(s, lt->q_all, (size_t)T * H * Dh),
                               step_dev_act(s, lt->k_all, (size_t)T * Hkv * Dh),
                               step_dev_act(s, lt->v_all, (size_t)T * Hkv * Dh), T, T, H, Hkv, Dh, 0, p);
        break;
    }
    case OP_WO:
        y = step_dev_act(s, NULL, n_out);
        matmul_forward_cuda(y, step_dev_act(s, lt->stacked_qkv_attention, (size_t)T * D), W("attention.wo.weight"), T,
                            H * Dh, D, p);
        break;
    case OP_RESIDUAL_ATTN: case OP_RESIDUAL_FFN: {
        const float *a = op == OP_RESIDUAL_ATTN ? lt->x_in : lt->embedding_after_edit;
        const float *b = op == OP_RESIDUAL_ATTN ? lt->embedding_delta : lt->output_after_feedforward;
        y = step_dev_act(s, NULL, n_out);
        residual_forward_cuda(y, step_dev_act(s, a, n_out), step_dev_act(s, b, n_out), n_out, p);
        break;
    }
    case OP_FFN_NORM:
        y = step_dev_act(s, NULL, n_out);
        rmsnorm_forward_cuda(y, NULL, step_dev_act(s, lt->embedding_after_edit, (size_t)T * D), W("ffn_norm.weight"), T,
                             D, eps, p);
        break;
    case OP_FFN_GATE: case OP_FFN_UP:
        y = step_dev_act(s, NULL, n_out);
        matmul_forward_cuda(y, step_dev_act(s, lt->embedding_after_edit_normalized, (size_t)T * D),
                            op == OP_FFN_GATE ? W("feed_forward.w1.weight") : W("feed_forward.w3.weight"), T, D, F, p);
        break;
    case OP_SWIGLU:
        y = step_dev_act(s, NULL, n_out);
        swiglu_forward_cuda(y, step_dev_act(s, lt->ffn_gate, n_out), step_dev_act(s, lt->ffn_up, n_out), n_out, p);
        break;
    case OP_FFN_DOWN:
        y = step_dev_act(s, NULL, n_out);
        if (lt->is_moe) {  // the MoE feed-forward in one call, its intermediates into lt->moe
            MoeWeights mw;
            layer_moe_weights_dev(s, L, &mw);
            moe_forward_cuda(y, &lt->moe, step_dev_act(s, lt->embedding_after_edit_normalized, (size_t)T * D), &mw, T,
                             D, F, p);
            moe_weights_free_tables(&mw);
        } else
            matmul_forward_cuda(y, step_dev_act(s, lt->ffn_hidden, (size_t)T * F), W("feed_forward.w2.weight"), T, F, D, p);
        break;
    default: fatal("layer_op_cuda: bad op %d", (int)op);
    }
#undef W
    float *out = layer_op_slot(lt, op);
    if (y) step_host_act(s, out, y, n_out);
    else step_host_f32(out, yf, n_out);
    if (rstd) step_host_f32(lt->rstd, rstd, (size_t)T);
    if (att) step_host_f32(lt->attn_weights_all, att, (size_t)H * T * T);
    if (op == OP_MASK) causal_mask_cpu(lt->mask, T, T, 0);
    step_add_ms(s, true, t0);
}

// ---- the whole model, free-running on the GPU ---------------------------------------------------------------------------
void model_layers_cuda(Step *s, const float *x_in, int first_layer, int n_layers, float *out, float *per_layer,
                       float *att_maps) {
    const Config *c = s->cfg;
    const int T = s->T, D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim, F = c->ffn_hidden;
    const Precision p = s->prec;
    const float eps = (float)c->norm_eps;
    size_t TD = (size_t)T * D;
    void *x = step_dev_act(s, x_in, TD), *xn = step_dev_act(s, NULL, TD);
    void *q = step_dev_act(s, NULL, (size_t)T * H * Dh), *k = step_dev_act(s, NULL, (size_t)T * Hkv * Dh);
    void *v = step_dev_act(s, NULL, (size_t)T * Hkv * Dh), *att_out = step_dev_act(s, NULL, TD);
    void *delta = step_dev_act(s, NULL, TD), *gate = step_dev_act(s, NULL, (size_t)T * F);
    void *up = step_dev_act(s, NULL, (size_t)T * F);
    float *att = step_dev_alloc(s, (size_t)H * T * T * sizeof(float));
    double t0 = step_clock();
    {  // every weight of these layers in one upload (step_weights_dev_prefetch: pinned buffers, threads)
        static const char *const per_layer[] = {"attention_norm", "attention.wq", "attention.wk", "attention.wv",
                                                "attention.wo", "ffn_norm", "feed_forward.w1", "feed_forward.w3",
                                                "feed_forward.w2"};
        const bool moe = config_is_moe(c);
        const int nw = moe ? 6 : (int)(sizeof per_layer / sizeof per_layer[0]);  // a MoE layer: its experts below
        const int n_moe = moe ? 1 + 3 * (c->n_routed_experts + c->n_shared_experts) : 0;
        const int per = nw + n_moe;
        char (*names)[96] = xmalloc(sizeof(*names) * (size_t)n_layers * (size_t)per);
        const char **ptrs = xmalloc(sizeof(char *) * (size_t)n_layers * (size_t)per);
        for (int i = 0; i < n_layers; i++) {
            char (*row)[96] = names + (size_t)i * per;
            for (int j = 0; j < nw; j++) snprintf(row[j], sizeof row[0], "layers.%d.%s.weight", first_layer + i, per_layer[j]);
            if (moe) {
                int m = nw;
                moe_weight_name(row[m++], sizeof row[0], first_layer + i, "gate", 0, false);
                for (int sh = 0; sh < 2; sh++)
                    for (int e = 0; e < (sh ? c->n_shared_experts : c->n_routed_experts); e++)
                        for (int w = 0; w < 3; w++)
                            moe_weight_name(row[m++], sizeof row[0], first_layer + i, (const char *[]){"w1", "w2", "w3"}[w], e, sh);
            }
            for (int j = 0; j < per; j++) ptrs[i * per + j] = row[j];
        }
        step_weights_dev_prefetch(s, ptrs, n_layers * per);
        free(ptrs), free(names);
    }
    for (int i = 0; i < n_layers; i++) {
        const int L = first_layer + i;
#define W(name) step_weight_dev(s, "layers.%d." name, L)
        rmsnorm_forward_cuda(xn, NULL, x, W("attention_norm.weight"), T, D, eps, p);
        matmul_forward_cuda(q, xn, W("attention.wq.weight"), T, D, H * Dh, p);
        matmul_forward_cuda(k, xn, W("attention.wk.weight"), T, D, Hkv * Dh, p);
        matmul_forward_cuda(v, xn, W("attention.wv.weight"), T, D, Hkv * Dh, p);
        rope_forward_cuda(q, q, s->freqs_cis_dev, T, H, Dh, 0, p);
        rope_forward_cuda(k, k, s->freqs_cis_dev, T, Hkv, Dh, 0, p);
        attention_forward_cuda(att_out, att, q, k, v, T, T, H, Hkv, Dh, 0, p);
        matmul_forward_cuda(delta, att_out, W("attention.wo.weight"), T, H * Dh, D, p);
        residual_forward_cuda(x, x, delta, TD, p);
        rmsnorm_forward_cuda(xn, NULL, x, W("ffn_norm.weight"), T, D, eps, p);
        if (config_is_moe(c)) {  // MiniMind's MoE feed-forward (chapter 20) in place of SwiGLU
            MoeWeights mw;
            layer_moe_weights_dev(s, L, &mw);
            moe_forward_cuda(delta, NULL, xn, &mw, T, D, F, p);
            moe_weights_free_tables(&mw);
        } else {
            matmul_forward_cuda(gate, xn, W("feed_forward.w1.weight"), T, D, F, p);
            matmul_forward_cuda(up, xn, W("feed_forward.w3.weight"), T, D, F, p);
            swiglu_forward_cuda(gate, gate, up, (size_t)T * F, p);
            matmul_forward_cuda(delta, gate, W("feed_forward.w2.weight"), T, F, D, p);
        }
        residual_forward_cuda(x, x, delta, TD, p);
#undef W
        if (per_layer) step_host_act(s, per_layer + (size_t)i * TD, x, TD);
        if (att_maps) step_host_f32(att_maps + (size_t)i * H * T * T, att, (size_t)H * T * T);
    }
    step_host_act(s, out, x, TD);
    step_add_ms(s, true, t0);
}
