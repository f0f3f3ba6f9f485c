// 19_logit_lens: the final norm and the output head applied after every layer (the "logit lens").
//
// For every layer L and position t:  logits[L, t] = rms_norm(h[L, t], norm.weight) · output.weightᵀ  [V] (fp32),
// probs[L, t] = softmax(logits[L, t]) (fp32), where h[L] is the residual stream after layer L (chapter 14's
// layer_outputs) and the norm and the head are chapter 15's. It answers "what would the model predict if it stopped
// after layer L?" at every position. The last layer at the last position is chapter 15's logits, bit for bit.
// Shapes: T tokens, D dim, V vocabulary, NL layers, K = 10 best tokens kept per cell.
// CUDA: one RMSNorm over all [NL * T, D] rows, then per layer ONE product [T, D] · [V, D]ᵀ through cuBLAS and a
// softmax over V per row; the top-k on the host. Checked against the CPU from the CPU's own inputs: the norm, each
// layer's logits, and the softmax at the k best tokens of every cell. With --no-compare on CUDA the layers, the norm,
// the products and the softmax all run on the GPU alone.
// Run: build/steps/19_logit_lens
// Outputs: OUT/19_logit_lens/
//   layer_outputs_normalized [NL, T, D]       rms_norm(h[L], norm.weight) for every layer
//   logit_lens_top_ids [NL, T, K] int64       the K most likely next tokens of each cell, best first
//   logit_lens_top_probs [NL, T, K]           their probabilities
//   logit_lens_last_token_logits [NL, V]      the whole logits row of the last position after every layer
//   final_prediction_rank [NL] int64          rank (1 = top) after each layer of the model's final prediction
//   final_prediction_prob [NL]                its probability after each layer
//   logit_lens.png (the grid), final_prediction_prob.png, final_prediction_rank.png (the line charts)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "kernels.h"
#include "layer.h"

#define LENS_TOPK 10
#define GRID_MAX_COLS 48  // the grid figure shows at most the last 48 positions (the .npy files hold them all)

// The k best tokens of each of the T rows of logits [T, V] (ordered by logit: probabilities can tie where the logits
// do not), with their probabilities from probs [T, V]. ids, p: [T, k].
static void top_k_cells(int64_t *ids, float *p, const float *logits, const float *probs, int T, int V, int k) {
    for (int t = 0; t < T; t++) {
        float val[LENS_TOPK];
        topk_cpu(ids + (size_t)t * k, val, logits + (size_t)t * V, V, k);
        for (int j = 0; j < k; j++) p[(size_t)t * k + j] = probs[(size_t)t * V + ids[(size_t)t * k + j]];
    }
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "19_logit_lens");
    const Config *c = s.cfg;
    const int T = s.T, D = c->dim, V = c->vocab_size, NL = c->n_layers, K = V < LENS_TOPK ? V : LENS_TOPK;
    const size_t TD = (size_t)T * D, TV = (size_t)T * V, TK = (size_t)T * K;
    const float eps = (float)c->norm_eps;
    float *stream = xmalloc((size_t)(NL + 1) * TD * sizeof(float));  // [NL+1][T][D]: embeddings, then each layer
    float *xn = xmalloc((size_t)NL * TD * sizeof(float));            // [NL][T][D]: layer_outputs_normalized
    float *logits = xmalloc(TV * sizeof(float)), *probs = xmalloc(TV * sizeof(float));  // one layer [T][V]
    float *last_logits = xmalloc((size_t)NL * V * sizeof(float)), *last_probs = xmalloc((size_t)NL * V * sizeof(float));
    int64_t *top_ids = xmalloc((size_t)NL * TK * sizeof(int64_t));
    float *top_probs = xmalloc((size_t)NL * TK * sizeof(float));
    const uint16_t *norm_w = step_weight(&s, NULL, "norm.weight");
    const uint16_t *out_w = step_weight(&s, NULL, "output.weight");
    const bool check = s.cuda && s.cpu;
    float *logits_cuda = check ? xmalloc(TV * sizeof(float)) : NULL, *probs_cuda = check ? xmalloc(TV * sizeof(float)) : NULL;
    float *top_probs_cuda = check ? xmalloc((size_t)NL * TK * sizeof(float)) : NULL;
    void *xnd = NULL, *ld = NULL, *pd = NULL;  // device: the normalised stream [NL][T][D], one layer's logits, probs

    // h[L] for every layer, then the final norm over all NL * T rows at once
    if (s.cpu) {
        double t0 = step_clock();
        model_layers_cpu(&s, stream, NULL);
        // rms_norm(h[L], model["norm.weight"]) for every L: chapter 15's final norm, applied early
        rmsnorm_forward_cpu(xn, NULL, stream + TD, norm_w, NL * T, D, eps, s.prec);
        step_add_ms(&s, false, t0);
    } else {  // --no-compare on CUDA: the layers and the norm on the GPU alone
        embed_tokens_cuda(&s, stream);
        model_layers_cuda(&s, stream, 0, NL, stream + (size_t)NL * TD, stream + TD, NULL);
    }
    if (s.cuda) {
        double t0 = step_clock();
        void *xd = step_dev_act(&s, stream + TD, (size_t)NL * TD);
        xnd = step_dev_act(&s, NULL, (size_t)NL * TD);
        ld = step_dev_alloc(&s, TV * sizeof(float));
        pd = step_dev_alloc(&s, TV * sizeof(float));
        rmsnorm_forward_cuda(xnd, NULL, xd, step_weight_dev(&s, "norm.weight"), NL * T, D, eps, s.prec);
        if (!s.cpu) step_host_act(&s, xn, xnd, (size_t)NL * TD);
        step_add_ms(&s, true, t0);
        if (check) {
            float *xn_cuda = xmalloc((size_t)NL * TD * sizeof(float));
            step_host_act(&s, xn_cuda, xnd, (size_t)NL * TD);
            double atol, rtol;
            int64_t sh[3] = {NL, T, D};
            step_tolerance_act(&s, xn, (int64_t)NL * (int64_t)TD, &atol, &rtol);
            step_compare(&s, "layer_outputs_normalized", xn, xn_cuda, sh, 3, atol, rtol);
            free(xn_cuda);
            // the products below start from the CPU's normalised rows, so that each comparison measures one kernel
            cuda_upload_act(xnd, xn, (size_t)NL * TD, s.prec);
        }
    }

    // every layer: the logits of all T positions (one product over the vocabulary), softmax, the k best of each cell
    for (int L = 0; L < NL; L++) {
        const float *xl = xn + (size_t)L * TD;
        void *xld = s.cuda ? (char *)xnd + act_bytes((size_t)L * TD, s.prec) : NULL;
        if (s.cpu) {
            double t0 = step_clock();
            // logits = torch.matmul(rms_norm(h[L], norm.weight), model["output.weight"].T)   (fp32, all positions)
            logits_forward_cpu(logits, xl, out_w, T, D, V, s.prec);
            // probs = torch.softmax(logits.float(), dim=-1)   (fp32, as Meta's generate)
            softmax_forward_cpu(probs, logits, T, V, PREC_FP32);
            step_add_ms(&s, false, t0);
        }
        if (s.cuda) {
            double t0 = step_clock();
            logits_forward_cuda(ld, xld, step_weight_dev(&s, "output.weight"), T, D, V, s.prec);
            if (check) step_host_f32(logits_cuda, ld, TV);
            else {
                softmax_forward_cuda(pd, ld, T, V, PREC_FP32);
                step_host_f32(logits, ld, TV);
                step_host_f32(probs, pd, TV);
            }
            step_add_ms(&s, true, t0);
        }
        top_k_cells(top_ids + (size_t)L * TK, top_probs + (size_t)L * TK, logits, probs, T, V, K);
        memcpy(last_logits + (size_t)L * V, logits + (size_t)(T - 1) * V, (size_t)V * sizeof(float));
        memcpy(last_probs + (size_t)L * V, probs + (size_t)(T - 1) * V, (size_t)V * sizeof(float));
        if (check) {
            // the product: fp32 accumulation (cuBLAS) against double (CPU) from the same bf16 rows
            double atol, rtol;
            int64_t sh[2] = {T, V};
            char name[96];
            step_tolerance_dot(&s, logits, (int64_t)TV, D, &atol, &rtol);  // fp32 sums of dim products
            snprintf(name, sizeof name, "logits after layer %d (from the CPU's normalised rows)", L);
            step_compare(&s, name, logits, logits_cuda, sh, 2, atol, rtol);
            // the softmax kernel on the CPU's logits, read at the CPU's k best tokens of every cell
            double t0 = step_clock();
            cuda_memcpy_h2d(ld, logits, TV * sizeof(float));
            softmax_forward_cuda(pd, ld, T, V, PREC_FP32);
            step_host_f32(probs_cuda, pd, TV);
            step_add_ms(&s, true, t0);
            for (int t = 0; t < T; t++)
                for (int j = 0; j < K; j++) {
                    size_t cell = (size_t)L * TK + (size_t)t * K + (size_t)j;
                    top_probs_cuda[cell] = probs_cuda[(size_t)t * V + top_ids[cell]];
                }
        }
        if (!s.quiet && NL > 8) fprintf(stderr, "\r  logit lens: layer %d/%d", L + 1, NL);
    }
    if (!s.quiet && NL > 8) fprintf(stderr, "\n");
    if (check) {
        // exp() of the same fp32 logits agrees within 2 ulps; the sum over V runs in fp32 on the GPU, 256 threads each
        // adding V/256 positive terms before a tree: a relative error of at most (V/256 + 8) fp32 ulps (2^-24 each),
        // 3e-5 for V = 128256, against the CPU's sum in double. atol: probabilities below 1e-12 are never shown.
        int64_t sh[3] = {NL, T, K};
        double rtol = 1e-5 + ((double)V / 256 + 8) * ldexp(1.0, -24);
        step_compare(&s, "logit_lens_top_probs (softmax over V at the k best tokens)", top_probs, top_probs_cuda, sh, 3,
                     1e-12, rtol);
    }

    // the model's final prediction: the top token after the last layer at the last position (chapter 15's next token)
    const int64_t target = top_ids[(size_t)(NL - 1) * TK + (size_t)(T - 1) * K];
    int64_t *rank = xmalloc((size_t)NL * sizeof(int64_t));
    float *rank_log10 = xmalloc((size_t)NL * sizeof(float)), *target_prob = xmalloc((size_t)NL * sizeof(float));
    for (int L = 0; L < NL; L++) {
        const float *row = last_logits + (size_t)L * V;
        int64_t above = 0;  // rank = 1 + the number of tokens with a larger logit
        for (int i = 0; i < V; i++) above += row[i] > row[target];
        rank[L] = above + 1;
        rank_log10[L] = (float)log10((double)rank[L]);
        target_prob[L] = last_probs[(size_t)L * V + target];
    }

    // what it prints and writes
    int64_t sh_n[3] = {NL, T, D}, sh_k[3] = {NL, T, K}, sh_last[2] = {NL, V}, sh_l[1] = {NL};
    step_say(&s, "for L in range(n_layers):   # n_layers = %d", NL);
    step_say(&s, "    logits = torch.matmul(rms_norm(layer_outputs[L], model[\"norm.weight\"]), model[\"output.weight\"].T)");
    step_say(&s, "    probs = torch.softmax(logits, dim=-1)");
    step_show(&s, "layer_outputs_normalized", xn, sh_n, 3, step_act_dtype(&s));
    step_shape(&s, "logit_lens_top_ids", sh_k, 3, "i64");
    step_tensor_i64(&s, "logit_lens_top_ids", top_ids, sh_k, 3);
    step_show(&s, "logit_lens_top_probs", top_probs, sh_k, 3, "f32");
    step_show(&s, "logit_lens_last_token_logits", last_logits, sh_last, 2, "f32");
    step_shape(&s, "final_prediction_rank", sh_l, 1, "i64");
    step_tensor_i64(&s, "final_prediction_rank", rank, sh_l, 1);
    step_show(&s, "final_prediction_prob", target_prob, sh_l, 1, "f32");
    for (size_t i = 0; i < (size_t)NL * TK; i++) step_vocab(&s, top_ids[i]);

    // the grid as text: the top-1 token of every cell (the last GRID_MAX_COLS positions)
    const int t0 = T > GRID_MAX_COLS ? T - GRID_MAX_COLS : 0, cols = T - t0;
    char **top1 = xcalloc((size_t)NL * cols, sizeof(char *));
    float *top1_p = xmalloc((size_t)NL * cols * sizeof(float));
    for (int L = 0; L < NL; L++)
        for (int t = t0; t < T; t++) {
            size_t cell = (size_t)L * TK + (size_t)t * K;
            int32_t id = (int32_t)top_ids[cell];
            top1[(size_t)L * cols + (t - t0)] = tokenizer_decode_text(&s.tok, &id, 1, NULL);
            top1_p[(size_t)L * cols + (t - t0)] = top_probs[cell];
        }
    step_say(&s, "%s", step_text(&s, "the top-1 next token after each layer (columns: the prompt's positions):",
                                 "每一层之后最可能的下一个 token（列：提示词的各个位置）："));
    for (int L = 0; L < NL; L++) {
        StrBuf line = {0};
        strbuf_addf(&line, "  L%-3d", L);
        for (int t = 0; t < cols; t++) {
            char shown[64];
            token_display(top1[(size_t)L * cols + t], shown, sizeof shown);
            strbuf_addf(&line, " %s", shown);
        }
        step_say(&s, "%s", line.data);
        free(strbuf_take(&line));
    }
    int32_t tid = (int32_t)target;
    char *target_text = tokenizer_decode_text(&s.tok, &tid, 1, NULL), target_shown[96];
    token_display(target_text, target_shown, sizeof target_shown);
    step_say(&s, step_text(&s, "the final prediction %lld '%s' at the last position, after each layer:",
                           "最终预测 %lld '%s' 在最后一个位置、每一层之后的情况："), (long long)target, target_text);
    step_say(&s, "  %-6s %-8s %-10s %-22s %8s", "layer", "rank", "p", step_text(&s, "top-1 there", "该层的第一名"), "p(top-1)");
    for (int L = 0; L < NL; L++) {
        char shown[96];
        token_display(top1[(size_t)L * cols + (cols - 1)], shown, sizeof shown);
        step_say(&s, "  %-6d %-8lld %-10.4g %-22s %8.4f", L, (long long)rank[L], target_prob[L], shown,
                 top1_p[(size_t)L * cols + (cols - 1)]);
    }
    int first_top = NL;  // the first layer from which on the prediction stays the top token
    while (first_top > 0 && rank[first_top - 1] == 1) first_top--;
    if (first_top < NL)
        step_say(&s, step_text(&s, "'%s' is the top token from layer %d on.", "'%s' 从第 %d 层起一直排第一。"), target_shown, first_top);

    // figures
    {
        char **row_labels = xcalloc((size_t)NL, sizeof(char *));
        for (int L = 0; L < NL; L++) row_labels[L] = xasprintf(step_text(&s, "layer %d", "第 %d 层"), L);
        char subtitle[256];
        snprintf(subtitle, sizeof subtitle,
                 step_text(&s, "cell: the most likely next token after that layer at that position, coloured by its "
                               "probability%s",
                           "格子：该层之后、该位置上最可能的下一个 token，颜色表示它的概率%s"),
                 t0 ? step_text(&s, " (the last positions)", "（最后的若干位置）") : "");
        HeatmapOptions opt = {.title = step_text(&s, "logit lens: the top-1 next token after every layer",
                                                 "logit lens：每一层之后排第一的下一个 token"),
                              .subtitle = subtitle, .x_label = step_text(&s, "position (its input token)", "位置（该位置输入的 token）"),
                              .y_label = step_text(&s, "after layer", "经过的层"), .value_label = step_text(&s, "probability", "概率"),
                              .fixed_range = true, .vmin = 0, .vmax = 1};
        char *png = step_path(&s, "logit_lens.png");
        figure_text_grid(png, top1_p, (const char *const *)top1, NL, cols, (const char *const *)row_labels,
                         step_labels(&s) + t0, &opt);
        free(png);
        step_image(&s, "logit_lens.png", step_text(&s, "the logit lens grid", "logit lens 网格"));
        for (int L = 0; L < NL; L++) free(row_labels[L]);
        free(row_labels);

        // the final prediction after each layer: its probability, and its rank (log10, so that 1 is 0)
        char name[160], title[256];
        snprintf(name, sizeof name, "'%s' (%lld)", target_shown, (long long)target);
        const struct { const char *file, *title_en, *title_zh, *y_en, *y_zh, *caption_en, *caption_zh; const float *values; } charts[2] = {
            {"final_prediction_prob.png", "the final prediction %s: its probability after each layer", "最终预测 %s：每一层之后的概率",
             "probability at the last position", "最后一个位置上的概率", "probability of the final prediction per layer",
             "最终预测在每层的概率", target_prob},
            {"final_prediction_rank.png", "the final prediction %s: its rank after each layer", "最终预测 %s：每一层之后的排名",
             "log10(rank); 0 = the top token", "log10(排名)；0 = 排第一", "rank of the final prediction per layer",
             "最终预测在每层的排名", rank_log10},
        };
        for (int k = 0; k < 2; k++) {
            ChartSeries series = {name, charts[k].values};
            snprintf(title, sizeof title, step_text(&s, charts[k].title_en, charts[k].title_zh), name);
            png = step_path(&s, charts[k].file);
            figure_line_chart(png, NULL, NL, &series, 1, title, step_text(&s, "after layer", "经过的层"),
                              step_text(&s, charts[k].y_en, charts[k].y_zh));
            free(png);
            step_image(&s, charts[k].file, step_text(&s, charts[k].caption_en, charts[k].caption_zh));
        }
    }

    for (size_t i = 0; i < (size_t)NL * cols; i++) free(top1[i]);
    free(top1), free(top1_p), free(target_text), free(rank), free(rank_log10), free(target_prob);
    free(stream), free(xn), free(logits), free(probs), free(last_logits), free(last_probs), free(top_ids), free(top_probs);
    free(logits_cuda), free(probs_cuda), free(top_probs_cuda);
    return step_finish(&s);
}
