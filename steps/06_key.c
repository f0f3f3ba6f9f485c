// 06_key: keys, almost the same as queries.
//
// wk [Hkv*Dh, D] viewed [Hkv, Dh, D]; the kv head that query head H reads (H / n_rep) gives k_per_token [T, Dh],
// rotated by the same freqs_cis as the query.
// Run: build/steps/06_key [--layer L] [--head H]
// Outputs: OUT/06_key/{k_layerL, k_layerL_headK, k_per_token, k_per_token_split_into_pairs,
//          k_per_token_as_complex_numbers, k_per_token_split_into_pairs_rotated, k_per_token_rotated}.npy
#include <stdlib.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "06_key");
    const Config *c = s.cfg;
    const int T = s.T, Dh = c->head_dim, half = Dh / 2;
    LayerTrace lt;
    layer_trace_run(&s, &lt);

    int64_t sh_k[2] = {T, Dh}, sh_pairs[3] = {T, half, 2}, sh_tc[2] = {T, half};
    step_say(&s, step_text(&s, "query head %d reads kv head %d = %d // %d", "query 头 %d 使用 kv 头 %d = %d // %d"), s.head,
             lt.kv_head, s.head, c->n_rep);
    show_head_weights(&s, "k", "wk", c->n_kv_heads, lt.kv_head);
    step_show(&s, "k_per_token", lt.k_per_token, sh_k, 2, step_act_dtype(&s));
    step_show(&s, "k_per_token_split_into_pairs", lt.k_per_token, sh_pairs, 3, "f32");
    step_shape(&s, "k_per_token_as_complex_numbers", sh_tc, 2, "complex64");
    step_tensor(&s, "k_per_token_as_complex_numbers", lt.k_per_token, sh_pairs, 3, "complex64 as [T, 64, 2]");
    float *rot_f32 = xmalloc((size_t)T * Dh * sizeof(float));
    rope_head_f32(&s, rot_f32, lt.k_per_token);
    step_show(&s, "k_per_token_split_into_pairs_rotated", rot_f32, sh_pairs, 3, "f32");
    step_show(&s, "k_per_token_rotated", lt.k_per_token_rotated, sh_k, 2, step_act_dtype(&s));
    free(rot_f32);
    if (s.cuda && s.cpu) {
        layer_check_op(&s, &lt, OP_K_HEAD, NULL);
        layer_check_op(&s, &lt, OP_ROPE_K, NULL);
    }
    layer_trace_free(&lt);
    return step_finish(&s);
}
