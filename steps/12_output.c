// 12_output: the output projection Wo and the first residual connection.
//
// embedding_delta = stacked_qkv_attention · woᵀ [T, D]; embedding_after_edit = token_embeddings_unnormalized +
// embedding_delta (the residual: attention adds a change to the stream, it does not replace it).
// Run: build/steps/12_output [--layer L]
// Outputs: OUT/12_output/embedding_delta.npy, embedding_after_edit.npy
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "12_output");
    LayerTrace lt;
    layer_trace_run(&s, &lt);
    const Tensor *wo;
    step_weight(&s, &wo, "layers.%d.attention.wo.weight", s.layer);
    char name[64];
    snprintf(name, sizeof name, "w_layer%d", s.layer);
    step_shape(&s, name, wo->shape, wo->ndim, "bf16");
    int64_t sh[2] = {s.T, s.cfg->dim};
    step_say(&s, "embedding_delta = torch.matmul(stacked_qkv_attention, w_layer%d.T)", s.layer);
    step_show(&s, "embedding_delta", lt.embedding_delta, sh, 2, step_act_dtype(&s));
    step_say(&s, "embedding_after_edit = %s + embedding_delta",
             s.layer == 0 ? "token_embeddings_unnormalized" : "final_embedding");
    step_show(&s, "embedding_after_edit", lt.embedding_after_edit, sh, 2, step_act_dtype(&s));
    if (s.cuda && s.cpu) {
        layer_check_op(&s, &lt, OP_WO, NULL);
        layer_check_op(&s, &lt, OP_RESIDUAL_ATTN, NULL);
    }
    layer_trace_free(&lt);
    return step_finish(&s);
}
