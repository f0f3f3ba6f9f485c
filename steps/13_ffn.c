// 13_ffn: RMSNorm and the SwiGLU feed-forward network; the second residual gives the layer's output.
//
// embedding_after_edit_normalized = rms_norm(embedding_after_edit, ffn_norm) [T, D];
// output_after_feedforward = (silu(x · w1ᵀ) * (x · w3ᵀ)) · w2ᵀ with w1, w3 [F, D] and w2 [D, F];
// layer_0_embedding = embedding_after_edit + output_after_feedforward [T, D].
// On a mixture-of-experts model the feed-forward is MiniMind's MoE (chapter 20) and its weights are listed instead.
// Run: build/steps/13_ffn [--layer L]
// Outputs: OUT/13_ffn/{embedding_after_edit_normalized, output_after_feedforward, layer_L_embedding}.npy
#include "kernels.h"
#include "layer.h"

static void explain_whole_layer(Step *s) {
    step_explain(s,
                 "That is one whole layer: the embeddings went in, the same shape came out, edited twice (attention, "
                 "then the feed-forward network). The other layers repeat it with their own weights.",
                 "这就是完整的一层：嵌入进去，同样形状的结果出来，被修改了两次（先注意力，后前馈网络）。其他层用各自的权重重复这一过程。");
}

// A mixture-of-experts model: the whole layer (layer_inputs_upto runs MiniMind's MoE in place of SwiGLU, on the CPU
// reference, or on the CUDA path alone with --no-compare), its weights listed; with both paths the feed-forward's
// three steps run again on the GPU from the reference's inputs and are compared. Chapter 20 traces the routing and
// compares each MoE launcher with its CPU twin.
static int moe_ffn_chapter(Step *s) {
    const Config *c = s->cfg;
    const int L = s->layer, T = s->T, D = c->dim;
    const size_t TD = (size_t)T * D;
    LayerTrace lt;
    layer_inputs_upto(s, OP_COUNT, &lt);
    int64_t sh[2] = {s->T, c->dim};
    if (s->cpu && s->cuda) {  // kernels/rmsnorm_bf16.cu, kernels/moe_gate.cu + moe_experts.cu, kernels/residual.cu
        double t0 = step_clock();
        void *d_edit = step_dev_act(s, lt.embedding_after_edit, TD), *d_xn = step_dev_act(s, NULL, TD);
        void *d_ffn = step_dev_act(s, NULL, TD), *d_out = step_dev_act(s, NULL, TD);
        rmsnorm_forward_cuda(d_xn, NULL, d_edit, step_weight_dev(s, "layers.%d.ffn_norm.weight", L), T, D,
                             (float)c->norm_eps, s->prec);
        float *xn_cuda = step_get_act(s, d_xn, TD);
        MoeWeights mw;
        layer_moe_weights_dev(s, L, &mw);
        moe_forward_cuda(d_ffn, NULL, step_dev_act(s, lt.embedding_after_edit_normalized, TD), &mw, T, D, c->ffn_hidden,
                         s->prec);
        moe_weights_free_tables(&mw);
        float *ffn_cuda = step_get_act(s, d_ffn, TD);
        residual_forward_cuda(d_out, d_edit, step_dev_act(s, lt.output_after_feedforward, TD), TD, s->prec);
        float *out_cuda = step_get_act(s, d_out, TD);
        step_add_ms(s, true, t0);
        step_compare_act(s, "embedding_after_edit_normalized", lt.embedding_after_edit_normalized, xn_cuda, sh, 2);
        step_compare_act(s, "output_after_feedforward", lt.output_after_feedforward, ffn_cuda, sh, 2);
        step_compare_act(s, "layer_embedding", lt.layer_embedding, out_cuda, sh, 2);
    }
    step_show(s, "embedding_after_edit_normalized", lt.embedding_after_edit_normalized, sh, 2, step_act_dtype(s));
    step_say(s, "%s", step_text(s, "a mixture-of-experts model: the feed-forward is MiniMind's MoE (chapter 20 "
                                   "traces its routing); its weights:",
                                "混合专家模型：前馈网络是 MiniMind 的 MoE（第 20 章追踪它的路由）；它的权重："));
    for (int kind = -1; kind < 2; kind++)  // -1 the gate, 0 the routed experts, 1 the shared ones
        for (int e = 0; e < (kind < 0 ? 1 : kind ? c->n_shared_experts : c->n_routed_experts); e++)
            for (int i = 0; i < (kind < 0 ? 1 : 3); i++) {
                const Tensor *w;
                char name[96];
                moe_weight_name(name, sizeof name, L, kind < 0 ? "gate" : (const char *[]){"w1", "w2", "w3"}[i], e,
                                kind == 1);
                step_weight(s, &w, "%s", name);
                step_shape(s, name, w->shape, w->ndim, dtype_name(w->dtype));
            }
    step_say(s, "output_after_feedforward = self.mlp(x): sum_j topk_weight[j] * expert[topk_idx[j]](x) + "
                "shared_experts(x)");
    step_show(s, "output_after_feedforward", lt.output_after_feedforward, sh, 2, step_act_dtype(s));
    char name[64];
    snprintf(name, sizeof name, "layer_%d_embedding", L);
    step_say(s, "%s = embedding_after_edit + output_after_feedforward", name);
    step_show(s, name, lt.layer_embedding, sh, 2, step_act_dtype(s));
    explain_whole_layer(s);
    layer_trace_free(&lt);
    return step_finish(s);
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "13_ffn");
    if (config_is_moe(s.cfg)) return moe_ffn_chapter(&s);  // MiniMind's MoE in place of SwiGLU (chapter 20)
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, F = c->ffn_hidden;
    const size_t TD = (size_t)T * D, TF = (size_t)T * F;
    const float eps = (float)c->norm_eps;
    LayerTrace in;
    layer_inputs_upto(&s, OP_FFN_NORM, &in);  // embedding_after_edit [T, D] (chapters 02-12)
#define W(name) "layers.%d." name, L

    // embedding_after_edit_normalized = rms_norm(embedding_after_edit, model["layers.0.ffn_norm.weight"])
    // output_after_feedforward = torch.matmul(torch.functional.F.silu(torch.matmul(embedding_after_edit_normalized,
    //     w1.T)) * torch.matmul(embedding_after_edit_normalized, w3.T), w2.T)
    // layer_0_embedding = embedding_after_edit+output_after_feedforward
    float *xn_cpu = NULL, *gate_cpu = NULL, *up_cpu = NULL, *hidden_cpu = NULL, *ffn_cpu = NULL, *out_cpu = NULL;
    float *xn_cuda = NULL, *gate_cuda = NULL, *up_cuda = NULL, *hidden_cuda = NULL, *ffn_cuda = NULL, *out_cuda = NULL;
    if (s.cpu) {  // common/ref/ref_ops.c: the ground truth
        double t0 = step_clock();
        xn_cpu = step_buf(&s, TD), gate_cpu = step_buf(&s, TF), up_cpu = step_buf(&s, TF);
        hidden_cpu = step_buf(&s, TF), ffn_cpu = step_buf(&s, TD), out_cpu = step_buf(&s, TD);
        const uint16_t *ffn_norm = step_weight(&s, NULL, W("ffn_norm.weight"));
        rmsnorm_forward_cpu(xn_cpu, NULL, in.embedding_after_edit, ffn_norm, T, D, eps, s.prec);
        matmul_forward_cpu(gate_cpu, xn_cpu, step_weight(&s, NULL, W("feed_forward.w1.weight")), T, D, F, s.prec);
        matmul_forward_cpu(up_cpu, xn_cpu, step_weight(&s, NULL, W("feed_forward.w3.weight")), T, D, F, s.prec);
        swiglu_forward_cpu(hidden_cpu, gate_cpu, up_cpu, TF, s.prec);  // silu(gate) * up
        matmul_forward_cpu(ffn_cpu, hidden_cpu, step_weight(&s, NULL, W("feed_forward.w2.weight")), T, F, D, s.prec);
        residual_forward_cpu(out_cpu, in.embedding_after_edit, ffn_cpu, TD, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/rmsnorm_bf16.cu, cuBLAS, kernels/swiglu.cu, kernels/residual.cu. Each op reads the
                   // reference's result of the op before it when the reference ran (the same inputs), else the GPU's
        double t0 = step_clock();
        void *d_xn = step_dev_act(&s, NULL, TD), *d_gate = step_dev_act(&s, NULL, TF);
        void *d_up = step_dev_act(&s, NULL, TF), *d_hidden = step_dev_act(&s, NULL, TF);
        void *d_ffn = step_dev_act(&s, NULL, TD), *d_out = step_dev_act(&s, NULL, TD);
        void *d_edit = step_dev_act(&s, in.embedding_after_edit, TD);
        rmsnorm_forward_cuda(d_xn, NULL, d_edit, step_weight_dev(&s, W("ffn_norm.weight")), T, D, eps, s.prec);
        xn_cuda = step_get_act(&s, d_xn, TD);
        if (s.cpu) d_xn = step_dev_act(&s, xn_cpu, TD);
        matmul_forward_cuda(d_gate, d_xn, step_weight_dev(&s, W("feed_forward.w1.weight")), T, D, F, s.prec);
        matmul_forward_cuda(d_up, d_xn, step_weight_dev(&s, W("feed_forward.w3.weight")), T, D, F, s.prec);
        gate_cuda = step_get_act(&s, d_gate, TF), up_cuda = step_get_act(&s, d_up, TF);
        if (s.cpu) d_gate = step_dev_act(&s, gate_cpu, TF), d_up = step_dev_act(&s, up_cpu, TF);
        swiglu_forward_cuda(d_hidden, d_gate, d_up, TF, s.prec);
        hidden_cuda = step_get_act(&s, d_hidden, TF);
        if (s.cpu) d_hidden = step_dev_act(&s, hidden_cpu, TF);
        matmul_forward_cuda(d_ffn, d_hidden, step_weight_dev(&s, W("feed_forward.w2.weight")), T, F, D, s.prec);
        ffn_cuda = step_get_act(&s, d_ffn, TD);
        if (s.cpu) d_ffn = step_dev_act(&s, ffn_cpu, TD);
        residual_forward_cuda(d_out, d_edit, d_ffn, TD, s.prec);
        out_cuda = step_get_act(&s, d_out, TD);
        step_add_ms(&s, true, t0);
    }
#undef W
    char name[64];
    snprintf(name, sizeof name, "layer_%d_embedding", L);
    int64_t sh[2] = {T, D}, sh_f[2] = {T, F};
    if (s.cpu && s.cuda) {  // each from the same inputs: one bf16 rounding apart (fp32 sums against double)
        step_compare_act(&s, "embedding_after_edit_normalized", xn_cpu, xn_cuda, sh, 2);
        step_compare_act(&s, "ffn_gate", gate_cpu, gate_cuda, sh_f, 2);
        step_compare_act(&s, "ffn_up", up_cpu, up_cuda, sh_f, 2);
        step_compare_act(&s, "ffn_hidden", hidden_cpu, hidden_cuda, sh_f, 2);
        step_compare_act(&s, "output_after_feedforward", ffn_cpu, ffn_cuda, sh, 2);
        step_compare_act(&s, "layer_embedding", out_cpu, out_cuda, sh, 2);
    }

    step_show(&s, "embedding_after_edit_normalized", s.cpu ? xn_cpu : xn_cuda, sh, 2, step_act_dtype(&s));
    step_say(&s, "%s", step_text(&s, "the feed-forward weights (the tutorial never prints them):",
                                 "前馈网络的权重（教程没有打印它们）："));
    const char *ws[3] = {"w1", "w2", "w3"};
    for (int i = 0; i < 3; i++) {
        const Tensor *w;
        char wname[96];
        step_weight(&s, &w, "layers.%d.feed_forward.%s.weight", L, ws[i]);
        snprintf(wname, sizeof wname, "layers.%d.feed_forward.%s.weight", L, ws[i]);
        step_shape(&s, wname, w->shape, w->ndim, dtype_name(w->dtype));
    }
    step_say(&s, "output_after_feedforward = torch.matmul(F.silu(torch.matmul(x, w1.T)) * torch.matmul(x, w3.T), w2.T)");
    step_show(&s, "output_after_feedforward", s.cpu ? ffn_cpu : ffn_cuda, sh, 2, step_act_dtype(&s));
    step_say(&s, "%s = embedding_after_edit + output_after_feedforward", name);
    step_show(&s, name, s.cpu ? out_cpu : out_cuda, sh, 2, step_act_dtype(&s));
    explain_whole_layer(&s);
    layer_trace_free(&in);
    return step_finish(&s);
}
