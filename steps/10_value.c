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
    const int T = s.T, Dh = c->head_dim;
    LayerTrace lt;
    layer_trace_run(&s, &lt);
    int64_t sh_v[2] = {T, Dh};
    show_head_weights(&s, "v", "wv", c->n_kv_heads, lt.kv_head);
    step_show(&s, "v_per_token", lt.v_per_token, sh_v, 2, step_act_dtype(&s));
    step_say(&s, "qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)");
    step_show(&s, "qkv_attention", lt.qkv_attention, sh_v, 2, step_act_dtype(&s));
    if (s.cuda && s.cpu) {
        layer_check_op(&s, &lt, OP_V_HEAD, NULL);
        layer_check_op(&s, &lt, OP_HEAD_VALUES, NULL);
    }
    layer_trace_free(&lt);
    return step_finish(&s);
}
