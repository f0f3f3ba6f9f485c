// 04_query: unwrapping the query, one head of one layer.
//
// wq [H*Dh, D] viewed as [H, Dh, D]; head h is q_layerL_headH [Dh, D]; q_per_token = token_embeddings · q_headᵀ
// [T, Dh]. Also prints the shapes of the layer's four attention weights (wq wk wv wo).
// Run: build/steps/04_query [--layer L] [--head H]
// Outputs: OUT/04_query/q_layerL.npy [H, Dh, D], q_layerL_headH.npy [Dh, D], q_per_token.npy [T, Dh].
#include <stdlib.h>

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "04_query");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, Dh = c->head_dim;
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

    LayerTrace in;
    layer_inputs_upto(&s, OP_Q_HEAD, &in);  // token_embeddings [T, D] of --layer (chapters 02-03)
    show_head_weights(&s, "q", "wq", c->n_heads, s.head);

    // q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)
    const size_t head_rows = (size_t)s.head * Dh * D;  // head h: rows h*Dh .. h*Dh+Dh-1 of wq [H*Dh, D]
    float *q_cpu = NULL, *q_cuda = NULL;
    if (s.cpu) {  // common/ref/ref_ops.c: the ground truth
        double t0 = step_clock();
        q_cpu = step_buf(&s, (size_t)T * Dh);
        const uint16_t *wq = step_weight(&s, NULL, "layers.%d.attention.wq.weight", L);
        matmul_forward_cpu(q_cpu, in.x_norm, wq + head_rows, T, D, Dh, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // cuBLAS (kernels/matmul_cublas.cu) on the same embeddings
        double t0 = step_clock();
        void *d_q = step_dev_act(&s, NULL, (size_t)T * Dh);
        const uint16_t *d_wq = step_weight_dev(&s, "layers.%d.attention.wq.weight", L);
        matmul_forward_cuda(d_q, step_dev_act(&s, in.x_norm, (size_t)T * D), d_wq + head_rows, T, D, Dh, s.prec);
        q_cuda = step_get_act(&s, d_q, (size_t)T * Dh);
        step_add_ms(&s, true, t0);
    }
    int64_t shape_q[2] = {T, Dh};
    // fp32 accumulation on the GPU against double here, then one bf16 rounding each: one rounding apart
    if (s.cpu && s.cuda) step_compare_act(&s, "q_per_token", q_cpu, q_cuda, shape_q, 2);

    step_show(&s, "q_per_token", s.cpu ? q_cpu : q_cuda, shape_q, 2, step_act_dtype(&s));
    step_explain(&s,
                 "q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T): every one of the T tokens now has "
                 "a query of head_dim numbers, what this head is looking for in the other tokens.",
                 "q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)：T 个 token 各有一个 head_dim 维的 query，"
                 "表示这个头要在其他 token 中寻找什么。");
    layer_trace_free(&in);
    return step_finish(&s);
}
