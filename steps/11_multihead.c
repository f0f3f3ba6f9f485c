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
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "11_multihead");
    const Config *c = s.cfg;
    const int T = s.T, H = c->n_heads, Dh = c->head_dim;
    LayerTrace lt;
    layer_trace_run(&s, &lt);

    for (int h = 0; h < H; h++)
        if (h < 3 || h == H - 1 || h % c->n_rep == 0)
            step_say(&s, "head %2d -> kv head %d", h, gqa_kv_head(h, H, c->n_kv_heads));
    step_say(&s, "len(qkv_attention_store) = %d", H);
    int64_t sh_att[3] = {H, T, T}, sh_stack[2] = {T, (int64_t)H * Dh}, sh_head[2] = {T, Dh};
    step_show(&s, "attn_weights_all", lt.attn_weights_all, sh_att, 3, step_act_dtype(&s));
    step_show(&s, "stacked_qkv_attention", lt.stacked_qkv_attention, sh_stack, 2, step_act_dtype(&s));

    // head --head of the batch equals the one-head path (chapters 04-10), exactly: same arithmetic, same order (a
    // self-check of the CPU reference, so not in a --no-compare run)
    if (s.compare) {
        float *col = xmalloc((size_t)T * Dh * sizeof(float));
        for (int t = 0; t < T; t++)
            memcpy(col + (size_t)t * Dh, lt.stacked_qkv_attention + ((size_t)t * H + s.head) * Dh,
                   (size_t)Dh * sizeof(float));
        step_say(&s, step_text(&s, "head %d of the batched pass against the one-head path of chapter 10:",
                               "批量计算中的头 %d 与第 10 章的单头路径对比："), s.head);
        step_compare(&s, "qkv_attention (batched head vs one-head path)", lt.qkv_attention, col, sh_head, 2, 0.0, 0.0);
        free(col);
    }

    float *att_cuda = NULL;
    if (s.cuda && s.cpu) {
        layer_check_op(&s, &lt, OP_Q_ALL, NULL);
        layer_check_op(&s, &lt, OP_K_ALL, NULL);
        layer_check_op(&s, &lt, OP_V_ALL, NULL);
        layer_check_op(&s, &lt, OP_ATTENTION_ALL, NULL);
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
    figure_heatmap_grid(png, att_cuda ? att_cuda : lt.attn_weights_all, H, T, T, c->n_rep, &opt);
    free(png), free(causal);
    step_image(&s, "heads.png", title);
    layer_trace_free(&lt);
    return step_finish(&s);
}
