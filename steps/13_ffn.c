// 13_ffn: RMSNorm and the SwiGLU feed-forward network; the second residual gives the layer's output.
//
// embedding_after_edit_normalized = rms_norm(embedding_after_edit, ffn_norm) [T, D];
// output_after_feedforward = (silu(x · w1ᵀ) * (x · w3ᵀ)) · w2ᵀ with w1, w3 [F, D] and w2 [D, F];
// layer_0_embedding = embedding_after_edit + output_after_feedforward [T, D].
// On a mixture-of-experts model the feed-forward is MiniMind's MoE (chapter 20) and its weights are listed instead.
// Run: build/steps/13_ffn [--layer L]
// Outputs: OUT/13_ffn/{embedding_after_edit_normalized, output_after_feedforward, layer_L_embedding}.npy
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "13_ffn");
    const int L = s.layer;
    LayerTrace lt;
    layer_trace_run(&s, &lt);
    int64_t sh[2] = {s.T, s.cfg->dim};
    step_show(&s, "embedding_after_edit_normalized", lt.embedding_after_edit_normalized, sh, 2, step_act_dtype(&s));
    if (lt.is_moe) {  // MiniMind's mixture of experts in place of SwiGLU (chapter 20 traces its routing)
        const Config *c = s.cfg;
        step_say(&s, "%s", step_text(&s, "a mixture-of-experts model: the feed-forward is MiniMind's MoE (chapter 20 "
                                         "traces its routing); its weights:",
                                     "混合专家模型：前馈网络是 MiniMind 的 MoE（第 20 章追踪它的路由）；它的权重："));
        for (int kind = -1; kind < 2; kind++)  // -1 the gate, 0 the routed experts, 1 the shared ones
            for (int e = 0; e < (kind < 0 ? 1 : kind ? c->n_shared_experts : c->n_routed_experts); e++)
                for (int i = 0; i < (kind < 0 ? 1 : 3); i++) {
                    const Tensor *w;
                    char name[96];
                    moe_weight_name(name, sizeof name, L, kind < 0 ? "gate" : (const char *[]){"w1", "w2", "w3"}[i],
                                    e, kind == 1);
                    step_weight(&s, &w, "%s", name);
                    step_shape(&s, name, w->shape, w->ndim, dtype_name(w->dtype));
                }
        step_say(&s, "output_after_feedforward = self.mlp(x): sum_j topk_weight[j] * expert[topk_idx[j]](x) + "
                     "shared_experts(x)");
    } else {
        step_say(&s, "%s", step_text(&s, "the feed-forward weights (the tutorial never prints them):",
                                     "前馈网络的权重（教程没有打印它们）："));
        const char *ws[3] = {"w1", "w2", "w3"};
        for (int i = 0; i < 3; i++) {
            const Tensor *w;
            char name[96];
            step_weight(&s, &w, "layers.%d.feed_forward.%s.weight", L, ws[i]);
            snprintf(name, sizeof name, "layers.%d.feed_forward.%s.weight", L, ws[i]);
            step_shape(&s, name, w->shape, w->ndim, dtype_name(w->dtype));
        }
        step_say(&s, "output_after_feedforward = torch.matmul(F.silu(torch.matmul(x, w1.T)) * torch.matmul(x, w3.T), w2.T)");
    }
    step_show(&s, "output_after_feedforward", lt.output_after_feedforward, sh, 2, step_act_dtype(&s));
    char name[64];
    snprintf(name, sizeof name, "layer_%d_embedding", L);
    step_say(&s, "%s = embedding_after_edit + output_after_feedforward", name);
    step_show(&s, name, lt.layer_embedding, sh, 2, step_act_dtype(&s));
    if (s.cuda && s.cpu) {
        const LayerOp ops[] = {OP_FFN_NORM, OP_FFN_GATE, OP_FFN_UP, OP_SWIGLU, OP_FFN_DOWN, OP_RESIDUAL_FFN};
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
            if (!lt.is_moe || ops[i] == OP_FFN_NORM || ops[i] >= OP_FFN_DOWN) layer_check_op(&s, &lt, ops[i], NULL);
    }
    step_explain(&s,
                 "That is one whole layer: the embeddings went in, the same shape came out, edited twice (attention, "
                 "then the feed-forward network). The other layers repeat it with their own weights.",
                 "这就是完整的一层：嵌入进去，同样形状的结果出来，被修改了两次（先注意力，后前馈网络）。其他层用各自的权重重复这一过程。");
    layer_trace_free(&lt);
    return step_finish(&s);
}
