// 14_layers: all the layers.
//
// final_embedding = token_embeddings_unnormalized, then for each of the L layers the block of chapters 03-13:
// final_embedding = layer(final_embedding). Shapes stay [T, D] throughout. Figures: for each layer an atlas of its
// attention maps (all heads, grouped by kv head) and the growth of the residual stream's norm across layers.
// The CUDA path is checked two ways: each layer from the CPU's input of that layer (a tight, per-layer tolerance),
// and all layers free-running on the GPU, whose drift from the CPU is reported (chapter 15 checks the prediction).
// With --no-compare on CUDA the layers run on the GPU alone, each fed by the one before, and nothing is checked.
// Run: build/steps/14_layers
// Outputs: OUT/14_layers/{final_embedding, layer_outputs, attn_weights_layers, residual_norms}.npy,
//          attention_layer_NN.png, residual_norms.png
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "layer.h"

static float row_norm(const float *x, int D) {
    double ss = 0;
    for (int i = 0; i < D; i++) ss += (double)x[i] * x[i];
    return (float)sqrt(ss);
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "14_layers");
    const Config *c = s.cfg;
    const int T = s.T, D = c->dim, H = c->n_heads, NL = c->n_layers;
    const size_t TD = (size_t)T * D, HTT = (size_t)H * T * T;
    float *layer_in = xmalloc((size_t)(NL + 1) * TD * sizeof(float));  // [NL+1][T][D]: the stream before each layer
    float *att = xmalloc((size_t)NL * HTT * sizeof(float));
    if (s.cpu) {
        double t0 = step_clock();
        // final_embedding = token_embeddings_unnormalized; for layer in range(n_layers): ... (chapters 03-13)
        model_layers_cpu(&s, layer_in, att);
        step_add_ms(&s, false, t0);
    } else {  // --no-compare: the CUDA path alone, every layer's output and attention maps brought back
        embed_tokens_cuda(&s, layer_in);
        model_layers_cuda(&s, layer_in, 0, NL, layer_in + (size_t)NL * TD, layer_in + TD, att);
    }
    const float *final_embedding = layer_in + (size_t)NL * TD;
    int64_t sh[2] = {T, D}, sh_layers[3] = {NL, T, D}, sh_att[4] = {NL, H, T, T}, sh_norm[2] = {NL + 1, T};
    step_say(&s, "for layer in range(n_layers): ...   # n_layers = %d", NL);
    step_show(&s, "final_embedding", final_embedding, sh, 2, step_act_dtype(&s));
    step_tensor(&s, "layer_outputs", layer_in + TD, sh_layers, 3, step_act_dtype(&s));
    step_tensor(&s, "attn_weights_layers", att, sh_att, 4, step_act_dtype(&s));

    // the residual stream's norm before layer 0 (the embeddings) and after each layer, per token
    float *norms = xmalloc((size_t)(NL + 1) * T * sizeof(float));
    for (int L = 0; L <= NL; L++)
        for (int t = 0; t < T; t++) norms[(size_t)L * T + t] = row_norm(layer_in + (size_t)L * TD + (size_t)t * D, D);
    step_tensor(&s, "residual_norms", norms, sh_norm, 2, "f32");
    float *mean = xmalloc((size_t)(NL + 1) * sizeof(float)), *first = xmalloc((size_t)(NL + 1) * sizeof(float));
    float *last = xmalloc((size_t)(NL + 1) * sizeof(float));
    for (int L = 0; L <= NL; L++) {
        double m = 0;
        for (int t = 0; t < T; t++) m += norms[(size_t)L * T + t];
        mean[L] = (float)(m / T), first[L] = norms[(size_t)L * T], last[L] = norms[(size_t)L * T + T - 1];
    }
    step_say(&s, "%s", step_text(&s, "|residual| (mean over tokens) after each layer:", "每层之后残差流的范数（对 token 取平均）："));
    step_print_vector(&s, "residual_norm_mean", mean, NL + 1, "%.2f");
    char first_name[160], last_name[160], first_piece[96], last_piece[96];  // pieces shown as in every figure ('␣')
    token_display(s.pieces[0], first_piece, sizeof first_piece);
    token_display(s.pieces[T - 1], last_piece, sizeof last_piece);
    snprintf(first_name, sizeof first_name, "%s (%s)", step_text(&s, "first token", "第一个 token"), first_piece);
    snprintf(last_name, sizeof last_name, "%s (%s)", step_text(&s, "last token", "最后一个 token"), last_piece);
    ChartSeries series[3] = {{step_text(&s, "mean over tokens", "所有 token 的平均"), mean}, {first_name, first},
                             {last_name, last}};
    char *png = step_path(&s, "residual_norms.png");
    figure_line_chart(png, NULL, NL + 1, series, 3,
                      step_text(&s, "norm of the residual stream across layers", "残差流范数随层数的变化"),
                      step_text(&s, "after layer (0 = the embeddings)", "经过的层数（0 = 嵌入）"), "L2 norm");
    free(png);
    step_image(&s, "residual_norms.png", step_text(&s, "residual-norm growth", "残差范数增长"));

    // the CUDA path: layer by layer from the CPU's inputs, then free-running
    float *att_cuda = NULL;
    if (s.cuda && s.cpu) {
        float *out = xmalloc(TD * sizeof(float));
        att_cuda = xmalloc((size_t)NL * HTT * sizeof(float));
        for (int L = 0; L < NL; L++) {
            model_layers_cuda(&s, layer_in + (size_t)L * TD, L, 1, out, NULL, att_cuda + (size_t)L * HTT);
            // A layer is a chain of about a dozen bf16 rounding points; a one-ulp difference early in the chain (an
            // accumulation-order tie) reaches the output through the products. Allow 4 bf16 ulps of the output's
            // RMS absolute and 2^-6 relative.
            double atol, rtol;
            step_tolerance_act(&s, layer_in + (size_t)(L + 1) * TD, (int64_t)TD, &atol, &rtol);
            char name[64];
            snprintf(name, sizeof name, "layer_%d_output (from the CPU's input)", L);
            step_compare(&s, name, layer_in + (size_t)(L + 1) * TD, out, sh, 2, 4 * atol, 2 * rtol);
        }
        model_layers_cuda(&s, layer_in, 0, NL, out, NULL, NULL);
        double num = 0, den = 0, worst = 0;
        for (size_t i = 0; i < TD; i++) {
            double d = (double)out[i] - final_embedding[i];
            num += d * d, den += (double)final_embedding[i] * final_embedding[i];
            if (fabs(d) > worst) worst = fabs(d);
        }
        step_say(&s, step_text(&s, "all %d layers free-running on the GPU against the CPU: normalised MSE %.2e, max abs "
                                   "difference %.3g (drift of bf16 rounding through the layers; chapter 15 checks the "
                                   "prediction)",
                               "GPU 上连续运行全部 %d 层与 CPU 对比：归一化 MSE %.2e，最大绝对差 %.3g（bf16 舍入在各层间的漂移；"
                               "第 15 章检查预测结果）"),
                 NL, den > 0 ? num / den : 0.0, worst);
        free(out);
    }
    // one atlas per layer (all heads, grouped by kv head)
    uint8_t *causal = step_causal_cells(&s);
    for (int L = 0; L < NL; L++) {
        char file[64], title[128], sub[128];
        snprintf(file, sizeof file, "attention_layer_%02d.png", L);
        snprintf(title, sizeof title, step_text(&s, "layer %d: attention weights of all %d heads", "第 %d 层：全部 %d 个头的注意力权重"), L, H);
        snprintf(sub, sizeof sub, step_text(&s, "%s; framed: query heads sharing a kv head", "%s；框：共用一个 kv 头的 query 头"),
                 att_cuda || !s.cpu ? "CUDA" : "CPU");
        HeatmapOptions opt = {.title = title, .subtitle = sub, .x_label = step_text(&s, "key token", "key token"),
                              .y_label = step_text(&s, "query token", "query token"), .value_label = "weight",
                              .fixed_range = true, .vmin = 0, .vmax = 1, .mask = causal,
                              .row_labels = step_labels(&s), .col_labels = step_labels(&s)};
        png = step_path(&s, file);
        figure_heatmap_grid(png, (att_cuda ? att_cuda : att) + (size_t)L * HTT, H, T, T, c->n_rep, &opt);
        free(png);
        trace_image(s.trace, s.id, file, title);
    }
    step_say(&s, step_text(&s, "figures: %s/%s/attention_layer_00.png .. attention_layer_%02d.png",
                           "图：%s/%s/attention_layer_00.png .. attention_layer_%02d.png"), s.out_dir, s.id, NL - 1);
    free(causal), free(att_cuda), free(norms), free(mean), free(first), free(last), free(att), free(layer_in);
    return step_finish(&s);
}
