// 11_multihead: all heads of one layer.
//
// The tutorial loops over the H heads, head h using kv head h // n_rep (GQA), and concatenates the H outputs
// [T, Dh] into stacked_qkv_attention [T, H*Dh]. Here all heads are computed in one batched pass (q, k, v for every
// head, RoPE, attention that reads the shared kv head in place) and head --head of the batch is shown to equal the
// one-head path of chapters 04-10. Figure: the H attention maps of the layer, grouped by the kv head they share.
// Run: build/steps/11_multihead [--layer L] [--head H]
// Outputs: OUT/11_multihead/attn_weights_all.npy [H, T, T], stacked_qkv_attention.npy [T, D], heads.png
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "11_multihead");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim;
    const size_t nq = (size_t)T * H * Dh, nkv = (size_t)T * Hkv * Dh, HTT = (size_t)H * T * T;
    LayerTrace in;
    layer_inputs_upto(&s, OP_Q_ALL, &in);  // token_embeddings [T, D]; chapter 10's qkv_attention of --head

    for (int h = 0; h < H; h++)
        if (h < 3 || h == H - 1 || h % c->n_rep == 0)
            step_say(&s, "head %2d -> kv head %d", h, gqa_kv_head(h, H, Hkv));
    step_say(&s, "len(qkv_attention_store) = %d", H);

    // for head in range(n_heads): q, k and v of the head (k and v of kv head head // n_rep), RoPE on q and k, then
    //     chapters 07-10: qkv_attention_store.append(qkv_attention)
    // stacked_qkv_attention = torch.cat(qkv_attention_store, dim=-1)
    // Here every head at once: q [T, H*Dh], k and v [T, Hkv*Dh] in one product each, and one attention over all heads
    // that reads each query head's kv head in place.
    float *q_cpu = NULL, *k_cpu = NULL, *v_cpu = NULL, *out_cpu = NULL, *att_cpu = NULL;
    float *q_cuda = NULL, *k_cuda = NULL, *v_cuda = NULL, *out_cuda = NULL, *att_cuda = NULL;
    const char *wq = "layers.%d.attention.wq.weight", *wk = "layers.%d.attention.wk.weight",
               *wv = "layers.%d.attention.wv.weight";
    if (s.cpu) {  // common/ref: the ground truth
        double t0 = step_clock();
        q_cpu = step_buf(&s, nq), k_cpu = step_buf(&s, nkv), v_cpu = step_buf(&s, nkv);
        out_cpu = step_buf(&s, (size_t)T * D), att_cpu = step_buf(&s, HTT);
        matmul_forward_cpu(q_cpu, in.x_norm, step_weight(&s, NULL, wq, L), T, D, H * Dh, s.prec);
        matmul_forward_cpu(k_cpu, in.x_norm, step_weight(&s, NULL, wk, L), T, D, Hkv * Dh, s.prec);
        matmul_forward_cpu(v_cpu, in.x_norm, step_weight(&s, NULL, wv, L), T, D, Hkv * Dh, s.prec);
        rope_forward_cpu(q_cpu, q_cpu, s.freqs_cis, T, H, Dh, 0, s.prec);
        rope_forward_cpu(k_cpu, k_cpu, s.freqs_cis, T, Hkv, Dh, 0, s.prec);
        attention_forward_cpu(out_cpu, att_cpu, q_cpu, k_cpu, v_cpu, T, T, H, Hkv, Dh, 0, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // cuBLAS, kernels/rope.cu and kernels/attention.cu; the attention reads the reference's q, k, v
                   // when the reference ran (the same inputs), else the GPU's
        double t0 = step_clock();
        void *d_x = step_dev_act(&s, in.x_norm, (size_t)T * D);
        void *d_q = step_dev_act(&s, NULL, nq), *d_k = step_dev_act(&s, NULL, nkv), *d_v = step_dev_act(&s, NULL, nkv);
        matmul_forward_cuda(d_q, d_x, step_weight_dev(&s, wq, L), T, D, H * Dh, s.prec);
        matmul_forward_cuda(d_k, d_x, step_weight_dev(&s, wk, L), T, D, Hkv * Dh, s.prec);
        matmul_forward_cuda(d_v, d_x, step_weight_dev(&s, wv, L), T, D, Hkv * Dh, s.prec);
        rope_forward_cuda(d_q, d_q, s.freqs_cis_dev, T, H, Dh, 0, s.prec);
        rope_forward_cuda(d_k, d_k, s.freqs_cis_dev, T, Hkv, Dh, 0, s.prec);
        q_cuda = step_get_act(&s, d_q, nq), k_cuda = step_get_act(&s, d_k, nkv), v_cuda = step_get_act(&s, d_v, nkv);
        if (s.cpu)
            d_q = step_dev_act(&s, q_cpu, nq), d_k = step_dev_act(&s, k_cpu, nkv), d_v = step_dev_act(&s, v_cpu, nkv);
        void *d_out = step_dev_act(&s, NULL, (size_t)T * D);
        float *d_att = step_dev_f32(&s, NULL, HTT);
        attention_forward_cuda(d_out, d_att, d_q, d_k, d_v, T, T, H, Hkv, Dh, 0, s.prec);
        out_cuda = step_get_act(&s, d_out, (size_t)T * D), att_cuda = step_get_f32(&s, d_att, HTT);
        step_add_ms(&s, true, t0);
    }
    int64_t sh_att[3] = {H, T, T}, sh_stack[2] = {T, (int64_t)H * Dh}, sh_head[2] = {T, Dh};
    int64_t sh_q[2] = {T, (int64_t)H * Dh}, sh_kv[2] = {T, (int64_t)Hkv * Dh};
    if (s.cpu && s.cuda) {  // each from the same inputs: one bf16 rounding apart (fp32 sums against double)
        step_compare_act(&s, "q_all_heads", q_cpu, q_cuda, sh_q, 2);
        step_compare_act(&s, "k_all_heads", k_cpu, k_cuda, sh_kv, 2);
        step_compare_act(&s, "v_all_heads", v_cpu, v_cuda, sh_kv, 2);
        step_compare_act(&s, "stacked_qkv_attention", out_cpu, out_cuda, sh_stack, 2);
    }

    const float *stacked = s.cpu ? out_cpu : out_cuda;
    step_show(&s, "attn_weights_all", s.cpu ? att_cpu : att_cuda, sh_att, 3, step_act_dtype(&s));
    step_show(&s, "stacked_qkv_attention", stacked, sh_stack, 2, step_act_dtype(&s));

    // head --head of the batch equals the one-head path (chapters 04-10), exactly: same arithmetic, same order (a
    // self-check of the CPU reference, so not in a --no-compare run)
    if (s.compare) {
        float *col = step_buf(&s, (size_t)T * Dh);
        for (int t = 0; t < T; t++)
            memcpy(col + (size_t)t * Dh, stacked + ((size_t)t * H + s.head) * Dh, (size_t)Dh * sizeof(float));
        step_say(&s, step_text(&s, "head %d of the batched pass against the one-head path of chapter 10:",
                               "批量计算中的头 %d 与第 10 章的单头路径对比："), s.head);
        step_compare(&s, "qkv_attention (batched head vs one-head path)", in.qkv_attention, col, sh_head, 2, 0.0, 0.0);
    }

    char *png = step_path(&s, "heads.png");
    char title[128], sub[128];
    snprintf(title, sizeof title, step_text(&s, "attention weights of the %d heads of layer %d", "第 %d 层的 %d 个头的注意力权重"),
             s.lang == LANG_ZH ? s.layer : H, s.lang == LANG_ZH ? H : s.layer);
    snprintf(sub, sizeof sub, step_text(&s, "framed in groups of %d: the query heads that share one kv head",
                                        "每 %d 个一组加框：共用一个 kv 头的 query 头"), c->n_rep);
    uint8_t *causal = step_causal_cells(&s);
    HeatmapOptions opt = {.title = title, .subtitle = sub, .x_label = step_text(&s, "key token", "key token"),
                          .y_label = step_text(&s, "query token", "query token"), .value_label = "weight",
                          .fixed_range = true, .vmin = 0, .vmax = 1, .mask = causal, .row_labels = step_labels(&s),
                          .col_labels = step_labels(&s)};
    figure_heatmap_grid(png, att_cuda ? att_cuda : att_cpu, H, T, T, c->n_rep, &opt);  // the GPU's maps when it ran
    free(png), free(causal);
    step_image(&s, "heads.png", title);
    layer_trace_free(&in);
    return step_finish(&s);
}
