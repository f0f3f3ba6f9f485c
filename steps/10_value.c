// 10_value: values and the attention of one head.
//
// wv [Hkv*Dh, D] viewed [Hkv, Dh, D]; v_per_token = token_embeddings · wv[kv head]ᵀ [T, Dh];
// qkv_attention = attention weights · v_per_token [T, Dh].
// Run: build/steps/10_value [--layer L] [--head H]
// Outputs: OUT/10_value/{v_layerL, v_layerL_headK, v_per_token, qkv_attention}.npy
#include <stdlib.h>

#include "layer.h"

static const Chapter CHAPTER = {
    .id = "10_value",
    .title_en = "values and the attention of one head",
    .title_zh = "value 与一个头的注意力",
    .intro_en = "The weights say how much of each token to take; the values say what to take. Each token's value "
                "vector comes from the value weight (shared by n_rep query heads, like the keys), and the head's "
                "output for token i is the weighted sum of the value vectors of tokens 0..i.",
    .intro_zh = "权重说明从每个 token 取多少；value 说明取什么。每个 token 的 value 向量来自 value 权重（和 key 一样由 n_rep "
                "个 query 头共用），头对 token i 的输出是 token 0..i 的 value 向量的加权和。",
};

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, &CHAPTER);
    const Config *c = s.cfg;
    const int T = s.T, L = s.layer, D = c->dim, Dh = c->head_dim;
    LayerTrace lt;
    layer_trace_alloc(&lt, &s, L, s.head);
    double t0 = step_clock();
    layer_input_cpu(&s, L, lt.x_in);
    layer_forward_cpu(&s, &lt);
    step_add_ms(&s, false, t0);
    const uint16_t *wv = step_weight(&s, NULL, "layers.%d.attention.wv.weight", L);
    int64_t n = (int64_t)c->n_kv_heads * Dh * D;
    float *wv_f = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) wv_f[i] = bf16_to_f32(wv[i]);
    char name[64];
    int64_t sh3[3] = {c->n_kv_heads, Dh, D}, sh2[2] = {Dh, D}, sh_v[2] = {T, Dh};
    snprintf(name, sizeof name, "v_layer%d", L);
    step_show(&s, name, wv_f, sh3, 3, "bf16");
    snprintf(name, sizeof name, "v_layer%d_head%d", L, lt.kv_head);
    step_show(&s, name, wv_f + (size_t)lt.kv_head * Dh * D, sh2, 2, "bf16");
    free(wv_f);
    step_show(&s, "v_per_token", lt.v_per_token, sh_v, 2, step_act_dtype(&s));
    step_say(&s, "qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)");
    step_show(&s, "qkv_attention", lt.qkv_attention, sh_v, 2, step_act_dtype(&s));
    if (s.cuda) {
        layer_check_op(&s, &lt, OP_V_HEAD, NULL);
        layer_check_op(&s, &lt, OP_HEAD_VALUES, NULL);
    }
    layer_trace_free(&lt);
    return step_finish(&s);
}
