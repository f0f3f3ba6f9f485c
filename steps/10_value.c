// 10_value: values and the attention of one head.
//
// wv [Hkv*Dh, D] viewed [Hkv, Dh, D]; v_per_token = token_embeddings · wv[kv head]ᵀ [T, Dh];
// qkv_attention = attention weights · v_per_token [T, Dh].
// Run: build/steps/10_value [--layer L] [--head H]
// Outputs: OUT/10_value/{v_layerL, v_layerL_headK, v_per_token, qkv_attention}.npy
#include <stdlib.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "10_value");
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
