// 12_output: the output projection Wo and the first residual connection.
//
// embedding_delta = stacked_qkv_attention · woᵀ [T, D]; embedding_after_edit = token_embeddings_unnormalized +
// embedding_delta (the residual: attention adds a change to the stream, it does not replace it).
// Run: build/steps/12_output [--layer L]
// Outputs: OUT/12_output/embedding_delta.npy, embedding_after_edit.npy
#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "12_output");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, HDh = c->n_heads * c->head_dim;
    const size_t TD = (size_t)T * D;
    LayerTrace in;
    layer_inputs_upto(&s, OP_WO, &in);  // stacked_qkv_attention [T, H*Dh] (chapter 11), x_in [T, D] (the layer's input)
    const Tensor *wo;
    const uint16_t *w_layer = step_weight(&s, &wo, "layers.%d.attention.wo.weight", L);  // bf16 [D, H*Dh]
    char name[64];
    snprintf(name, sizeof name, "w_layer%d", L);
    step_shape(&s, name, wo->shape, wo->ndim, "bf16");

    // embedding_delta = torch.matmul(stacked_qkv_attention, w_layer0.T)
    // embedding_after_edit = token_embeddings_unnormalized + embedding_delta
    float *delta_cpu = NULL, *edit_cpu = NULL, *delta_cuda = NULL, *edit_cuda = NULL;  // [T, D]
    if (s.cpu) {  // common/ref/ref_ops.c: the ground truth
        double t0 = step_clock();
        delta_cpu = step_buf(&s, TD), edit_cpu = step_buf(&s, TD);
        matmul_forward_cpu(delta_cpu, in.stacked_qkv_attention, w_layer, T, HDh, D, s.prec);
        residual_forward_cpu(edit_cpu, in.x_in, delta_cpu, TD, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // cuBLAS and kernels/residual.cu; the sum reads the reference's delta when the reference ran
        double t0 = step_clock();
        void *d_delta = step_dev_act(&s, NULL, TD), *d_edit = step_dev_act(&s, NULL, TD);
        matmul_forward_cuda(d_delta, step_dev_act(&s, in.stacked_qkv_attention, (size_t)T * HDh),
                            step_weight_dev(&s, "layers.%d.attention.wo.weight", L), T, HDh, D, s.prec);
        delta_cuda = step_get_act(&s, d_delta, TD);
        void *d_delta_in = s.cpu ? step_dev_act(&s, delta_cpu, TD) : d_delta;
        residual_forward_cuda(d_edit, step_dev_act(&s, in.x_in, TD), d_delta_in, TD, s.prec);
        edit_cuda = step_get_act(&s, d_edit, TD);
        step_add_ms(&s, true, t0);
    }
    int64_t sh[2] = {T, D};
    if (s.cpu && s.cuda) {  // each from the same inputs: one bf16 rounding apart (fp32 sums against double)
        step_compare_act(&s, "embedding_delta", delta_cpu, delta_cuda, sh, 2);
        step_compare_act(&s, "embedding_after_edit", edit_cpu, edit_cuda, sh, 2);
    }

    step_say(&s, "embedding_delta = torch.matmul(stacked_qkv_attention, w_layer%d.T)", L);
    step_show(&s, "embedding_delta", s.cpu ? delta_cpu : delta_cuda, sh, 2, step_act_dtype(&s));
    step_say(&s, "embedding_after_edit = %s + embedding_delta",
             L == 0 ? "token_embeddings_unnormalized" : "final_embedding");
    step_show(&s, "embedding_after_edit", s.cpu ? edit_cpu : edit_cuda, sh, 2, step_act_dtype(&s));
    layer_trace_free(&in);
    return step_finish(&s);
}
