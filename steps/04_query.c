// 04_query: unwrapping the query, one head of one layer.
//
// wq [H*Dh, D] viewed as [H, Dh, D]; head h is q_layerL_headH [Dh, D]; q_per_token = token_embeddings · q_headᵀ
// [T, Dh]. Also prints the shapes of the layer's four attention weights (wq wk wv wo).
// Run: build/steps/04_query [--layer L] [--head H]
// Outputs: OUT/04_query/q_layerL.npy [H, Dh, D], q_layerL_headH.npy [Dh, D], q_per_token.npy [T, Dh].
#include <stdlib.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "04_query");
    const Config *c = s.cfg;
    const int L = s.layer, Dh = c->head_dim;
    const char *names[4] = {"wq", "wk", "wv", "wo"};
    char line[512] = "";
    size_t k = 0;
    for (int i = 0; i < 4; i++) {
        const Tensor *w;
        step_weight(&s, &w, "layers.%d.attention.%s.weight", L, names[i]);
        char sh[64];
        k += (size_t)snprintf(line + k, sizeof line - k, "%s%s", i ? " " : "", shape_str(w->shape, w->ndim, sh, sizeof sh));
    }
    step_say(&s, "wq wk wv wo of layer %d: %s", L, line);

    LayerTrace lt;
    layer_trace_run(&s, &lt);

    int64_t shape_q[2] = {s.T, Dh};
    show_head_weights(&s, "q", "wq", c->n_heads, s.head);
    step_show(&s, "q_per_token", lt.q_per_token, shape_q, 2, step_act_dtype(&s));
    step_explain(&s,
                 "q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T): every one of the T tokens now has "
                 "a query of head_dim numbers, what this head is looking for in the other tokens.",
                 "q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)：T 个 token 各有一个 head_dim 维的 query，"
                 "表示这个头要在其他 token 中寻找什么。");
    if (s.cuda && s.cpu) layer_check_op(&s, &lt, OP_Q_HEAD, NULL);
    layer_trace_free(&lt);
    return step_finish(&s);
}
