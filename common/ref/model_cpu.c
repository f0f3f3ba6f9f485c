// model_cpu.c: Meta's Transformer.forward(tokens, start_pos) for batch 1 on the CPU, with the KV cache (model_cpu.h).
#include "ref/model_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

// A weight as contiguous bf16: in place when the checkpoint has it so, else a converted copy owned by the model.
static const uint16_t *weight_bf16(CpuModel *m, const Checkpoint *ck, const char *name) {
    return checkpoint_weight_bf16(ck, name, &m->owned, &m->n_owned);
}

struct WeightSource {
    CpuModel *m;
    const Checkpoint *ck;
};
static const uint16_t *weight_of_source(void *ctx, const char *name) {
    struct WeightSource *src = ctx;
    return weight_bf16(src->m, src->ck, name);
}

void model_cpu_init(CpuModel *m, const Checkpoint *ck, int max_seq_len, Precision p) {
    memset(m, 0, sizeof *m);
    if (!ck->has_config) input_error(ck->path, "no params.json or config.json: the model's shape is unknown");
    if (max_seq_len < 1) fatal("model_cpu_init: max_seq_len %d", max_seq_len);
    checkpoint_check_against_config(ck);
    m->cfg = ck->cfg;
    m->max_seq_len = max_seq_len;
    m->prec = p;
    const Config *c = &m->cfg;
    m->tok_embeddings = weight_bf16(m, ck, "tok_embeddings.weight");
    m->norm = weight_bf16(m, ck, "norm.weight");
    m->output = checkpoint_find(ck, "output.weight") ? weight_bf16(m, ck, "output.weight") : m->tok_embeddings;
    m->layers = xcalloc((size_t)c->n_layers, sizeof(CpuLayerWeights));
    char name[128];
#define LAYER_W(field, fmt)                                   \
    snprintf(name, sizeof name, fmt, l);                      \
    m->layers[l].field = weight_bf16(m, ck, name);
    for (int l = 0; l < c->n_layers; l++) {
        LAYER_W(attention_norm, "layers.%d.attention_norm.weight");
        LAYER_W(wq, "layers.%d.attention.wq.weight");
        LAYER_W(wk, "layers.%d.attention.wk.weight");
        LAYER_W(wv, "layers.%d.attention.wv.weight");
        LAYER_W(wo, "layers.%d.attention.wo.weight");
        LAYER_W(ffn_norm, "layers.%d.ffn_norm.weight");
        if (config_is_moe(c)) {
            struct WeightSource src = {m, ck};
            moe_weights_bind(&m->layers[l].moe, c, l, weight_of_source, &src);
            continue;
        }
        LAYER_W(w1, "layers.%d.feed_forward.w1.weight");
        LAYER_W(w2, "layers.%d.feed_forward.w2.weight");
        LAYER_W(w3, "layers.%d.feed_forward.w3.weight");
    }
#undef LAYER_W
    size_t kv = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t cache_elems = (size_t)c->n_layers * (size_t)max_seq_len * kv;
    // zeroed like Meta's torch.zeros caches: a row is only read after it was written, but zeros make dumps readable
    m->cache_k = xcalloc(cache_elems, sizeof(float));
    m->cache_v = xcalloc(cache_elems, sizeof(float));
    int half = c->head_dim / 2;
    float *freqs = xmalloc((size_t)half * sizeof(float));
    rope_freqs_cpu(freqs, c->head_dim, c->rope_theta, config_rope_scaling(c));
    m->freqs_cis = xmalloc((size_t)max_seq_len * (size_t)half * 2 * sizeof(float));
    rope_freqs_cis_cpu(m->freqs_cis, freqs, c->head_dim, max_seq_len);
    free(freqs);
}

void model_cpu_free(CpuModel *m) {
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (int l = 0; m->layers && l < m->cfg.n_layers; l++) moe_weights_free_tables(&m->layers[l].moe);
    free(m->layers);
    free(m->cache_k);
    free(m->cache_v);
    free(m->freqs_cis);
    memset(m, 0, sizeof *m);
}

size_t kv_cache_bytes(const Config *c, int n_positions, Precision p) {
    return 2 * (size_t)c->n_layers * (size_t)n_positions * (size_t)c->n_kv_heads * (size_t)c->head_dim * act_bytes(1, p);
}

void model_cpu_forward(CpuModel *m, const int32_t *tokens, int T, int start_pos, float *logits, bool all_logits) {
    const Config *c = &m->cfg;
    Precision p = m->prec;
    if (T < 1 || start_pos < 0 || start_pos + T > m->max_seq_len)
        fatal("model_cpu_forward: positions %d..%d do not fit max_seq_len %d", start_pos, start_pos + T - 1,
              m->max_seq_len);
    const int D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim, F = c->ffn_hidden,
              V = c->vocab_size, Tk = start_pos + T;
    const size_t kv = (size_t)Hkv * (size_t)Dh, qd = (size_t)H * (size_t)Dh;
    const float eps = (float)c->norm_eps;
    float *x = xmalloc((size_t)T * D * sizeof(float));      // the residual stream h [T, D]
    float *xn = xmalloc((size_t)T * D * sizeof(float));     // normalised [T, D]
    float *q = xmalloc((size_t)T * qd * sizeof(float));     // [T, H, Dh]
    float *att_out = xmalloc((size_t)T * qd * sizeof(float));
    float *att = xmalloc((size_t)H * T * Tk * sizeof(float));  // [H, T, Tk]
    float *delta = xmalloc((size_t)T * D * sizeof(float));
    float *gate = xmalloc((size_t)T * F * sizeof(float)), *up = xmalloc((size_t)T * F * sizeof(float));

    embedding_forward_cpu(x, tokens, m->tok_embeddings, T, D, V, p);  // h = self.tok_embeddings(tokens)
    for (int l = 0; l < c->n_layers; l++) {
        const CpuLayerWeights *w = &m->layers[l];
        float *ck = m->cache_k + (size_t)l * (size_t)m->max_seq_len * kv;  // this layer's cache_k [S, Hkv, Dh]
        float *cv = m->cache_v + (size_t)l * (size_t)m->max_seq_len * kv;
        float *k_new = ck + (size_t)start_pos * kv, *v_new = cv + (size_t)start_pos * kv;
        // xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)  on x = self.attention_norm(h)
        rmsnorm_forward_cpu(xn, NULL, x, w->attention_norm, T, D, eps, p);
        matmul_forward_cpu(q, xn, w->wq, T, D, (int)qd, p);
        matmul_forward_cpu(k_new, xn, w->wk, T, D, (int)kv, p);  // straight into cache rows start_pos..
        matmul_forward_cpu(v_new, xn, w->wv, T, D, (int)kv, p);
        // xq, xk = apply_rotary_emb(xq, xk, freqs_cis[start_pos : start_pos + T]); self.cache_k[:, pos] = xk
        rope_forward_cpu(q, q, m->freqs_cis, T, H, Dh, start_pos, p);
        rope_forward_cpu(k_new, k_new, m->freqs_cis, T, Hkv, Dh, start_pos, p);
        // scores over keys 0..start_pos+T-1, mask offset by start_pos, softmax, weights · values
        attention_forward_cpu(att_out, att, q, ck, cv, T, Tk, H, Hkv, Dh, start_pos, p);
        // h = x + self.attention.forward(...)   (wo)
        matmul_forward_cpu(delta, att_out, w->wo, T, (int)qd, D, p);
        residual_forward_cpu(x, x, delta, (size_t)T * D, p);
        // out = h + self.feed_forward(self.ffn_norm(h)) = h + w2(silu(w1(n)) * w3(n))
        rmsnorm_forward_cpu(xn, NULL, x, w->ffn_norm, T, D, eps, p);
        if (config_is_moe(c)) {  // MiniMind: h + self.mlp(self.post_attention_layernorm(h)), mlp = MOEFeedForward
            MoeTrace tr;
            moe_trace_alloc(&tr, T, D, F, w->moe.E, w->moe.k, w->moe.S);
            moe_forward_cpu(&tr, xn, &w->moe, T, D, F, p);
            residual_forward_cpu(x, x, tr.moe_out, (size_t)T * D, p);
            moe_trace_free(&tr);
            continue;
        }
        matmul_forward_cpu(gate, xn, w->w1, T, D, F, p);
        matmul_forward_cpu(up, xn, w->w3, T, D, F, p);
        swiglu_forward_cpu(gate, gate, up, (size_t)T * F, p);
        matmul_forward_cpu(delta, gate, w->w2, T, F, D, p);
        residual_forward_cpu(x, x, delta, (size_t)T * D, p);
    }
    // h = self.norm(h); output = self.output(h).float()
    int first = all_logits ? 0 : T - 1, rows = all_logits ? T : 1;
    rmsnorm_forward_cpu(xn, NULL, x + (size_t)first * D, m->norm, rows, D, eps, p);
    logits_forward_cpu(logits, xn, m->output, rows, D, V, p);
    free(x), free(xn), free(q), free(att_out), free(att), free(delta), free(gate), free(up);
}
