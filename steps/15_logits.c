// 15_logits: the final norm, the output projection and the prediction.
//
// final_embedding = rms_norm(final_embedding, norm.weight) [T, D]; logits = final_embedding[-1] · output.weightᵀ
// [V] in fp32; next_token = argmax(logits); tokenizer.decode([next_token]). For Meta-Llama-3-8B and the tutorial's
// prompt: tensor(2983), '42'. Figure: the top-10 next tokens and their probabilities.
// The CUDA path: the final norm and the logits from the CPU's inputs (tight tolerances), and the whole model
// free-running on the GPU, whose prediction must be the CPU's (or a near-tie with it, see below). With --no-compare
// on CUDA: the whole model, the final norm and the logits on the GPU alone, nothing checked.
// Run: build/steps/15_logits
// Outputs: OUT/15_logits/{final_embedding_normalized, logits, next_token, top_k_probs}.npy, top_k.png
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "kernels.h"
#include "layer.h"

#define TOPK 10

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "15_logits");
    const Config *c = s.cfg;
    const int T = s.T, D = c->dim, V = c->vocab_size, NL = c->n_layers;
    const size_t TD = (size_t)T * D;
    float *x = xmalloc(TD * sizeof(float)), *xn = xmalloc(TD * sizeof(float)), *logits = xmalloc((size_t)V * sizeof(float));
    const uint16_t *norm_w = step_weight(&s, NULL, "norm.weight");
    const Tensor *out_w_t;
    const uint16_t *out_w = step_weight(&s, &out_w_t, "output.weight");
    if (s.cpu) {
        double t0 = step_clock();
        layer_input_cpu(&s, NL, x);  // every layer: the stream after the last one
        // final_embedding = rms_norm(final_embedding, model["norm.weight"])
        rmsnorm_forward_cpu(xn, NULL, x, norm_w, T, D, (float)c->norm_eps, s.prec);
        // logits = torch.matmul(final_embedding[-1], model["output.weight"].T)  (fp32, as Meta's .float())
        logits_forward_cpu(logits, xn + (size_t)(T - 1) * D, out_w, 1, D, V, s.prec);
        step_add_ms(&s, false, t0);
    } else {  // --no-compare: the same three lines on the CUDA path alone
        layer_input_cuda(&s, NL, x);
        double t0 = step_clock();
        void *xd = step_dev_act(&s, x, TD), *xnd = step_dev_act(&s, NULL, TD);
        float *ld = step_dev_alloc(&s, (size_t)V * sizeof(float));
        rmsnorm_forward_cuda(xnd, NULL, xd, step_weight_dev(&s, "norm.weight"), T, D, (float)c->norm_eps, s.prec);
        logits_forward_cuda(ld, (char *)xnd + act_bytes((size_t)(T - 1) * D, s.prec),
                            step_weight_dev(&s, "output.weight"), 1, D, V, s.prec);
        step_host_act(&s, xn, xnd, TD);
        step_host_f32(logits, ld, (size_t)V);
        step_add_ms(&s, true, t0);
    }
    int64_t sh[2] = {T, D}, sh_v[1] = {V}, sh_1[1] = {1}, sh_k[1] = {TOPK};
    step_show(&s, "final_embedding", xn, sh, 2, step_act_dtype(&s));
    step_tensor(&s, "final_embedding_normalized", xn, sh, 2, step_act_dtype(&s));
    step_shape(&s, "output.weight", out_w_t->shape, out_w_t->ndim, dtype_name(out_w_t->dtype));
    step_show(&s, "logits", logits, sh_v, 1, "f32");
    int64_t next = argmax_cpu(logits, V);
    step_say(&s, "next_token = torch.argmax(logits, dim=-1)");
    step_say(&s, "tensor(%lld)", (long long)next);
    step_tensor_i64(&s, "next_token", &next, sh_1, 1);  // int64, as torch.argmax returns it
    int32_t id = (int32_t)next;
    char *text = step_decode(&s, &id, 1);
    step_say(&s, "tokenizer.decode([next_token.item()])");
    step_say(&s, "'%s'", text);

    // the top-k table: softmax probabilities of the k best tokens
    int64_t idx[TOPK];
    float val[TOPK], prob[TOPK];
    int k = topk_cpu(idx, val, logits, V, TOPK);
    double mx = val[0], z = 0;
    for (int64_t i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    char *labels[TOPK];  // "2983 '42'": the id and the piece, quoted as the tutorial prints it, spaces shown as '␣'
    char bar_labels[TOPK][128];
    const char *bar_label_ptr[TOPK];
    step_say(&s, "%s", step_text(&s, "top-10 next tokens:", "最可能的 10 个下一个 token："));
    // (名次 and 概率 are 2 characters, 4 columns wide: padded by hand)
    if (s.lang == LANG_ZH) step_say(&s, "  %s %-8s %-22s %10s %s", "名次", "id", "token", "logit", "    概率");
    else step_say(&s, "  %-4s %-8s %-22s %10s %8s", "rank", "id", "token", "logit", "p");
    for (int i = 0; i < k; i++) {
        int32_t tid = (int32_t)idx[i];
        labels[i] = step_decode(&s, &tid, 1);
        prob[i] = (float)(exp((double)val[i] - mx) / z);
        char shown[96];
        token_display(labels[i], shown, sizeof shown);
        step_say(&s, "  %-4d %-8lld %-22s %10.4f %8.4f", i + 1, (long long)idx[i], shown, val[i], prob[i]);
        snprintf(bar_labels[i], sizeof bar_labels[i], "%lld '%s'", (long long)idx[i], shown);
        bar_label_ptr[i] = bar_labels[i];
    }
    step_tensor(&s, "top_k_probs", prob, sh_k, 1, "f32");
    char *png = step_path(&s, "top_k.png");
    const char *title = step_text(&s, "the next token: top 10 by probability", "下一个 token：概率最高的 10 个");
    figure_bar_chart_h(png, prob, bar_label_ptr, k, title,
                       step_text(&s, "probability (softmax of the logits)", "概率（logits 的 softmax）"), false);
    free(png);
    step_image(&s, "top_k.png", title);

    if (s.cuda && s.cpu) {
        // the final norm and the logits from the CPU's inputs
        double atol, rtol;
        void *xd = step_dev_act(&s, x, TD), *xnd = step_dev_act(&s, NULL, TD);
        float *ld = step_dev_alloc(&s, (size_t)V * sizeof(float));
        float *xn_cuda = xmalloc(TD * sizeof(float)), *logits_cuda = xmalloc((size_t)V * sizeof(float));
        double t1 = step_clock();
        rmsnorm_forward_cuda(xnd, NULL, xd, step_weight_dev(&s, "norm.weight"), T, D, (float)c->norm_eps, s.prec);
        step_host_act(&s, xn_cuda, xnd, TD);
        void *last = step_dev_act(&s, xn + (size_t)(T - 1) * D, (size_t)D);
        logits_forward_cuda(ld, last, step_weight_dev(&s, "output.weight"), 1, D, V, s.prec);
        step_host_f32(logits_cuda, ld, (size_t)V);
        step_add_ms(&s, true, t1);
        step_tolerance_act(&s, xn, (int64_t)TD, &atol, &rtol);
        step_compare(&s, "final_embedding_normalized", xn, xn_cuda, sh, 2, atol, rtol);
        step_tolerance_dot(&s, logits, V, D, &atol, &rtol);  // fp32 sums of dim products
        step_compare(&s, "logits", logits, logits_cuda, sh_v, 1, atol, rtol);

        // the whole model free-running on the GPU: the same prediction?
        float *emb = xmalloc(TD * sizeof(float)), *xg = xmalloc(TD * sizeof(float));
        embed_tokens_cpu(&s, emb);
        model_layers_cuda(&s, emb, 0, NL, xg, NULL, NULL);
        void *xgd = step_dev_act(&s, xg, TD);
        rmsnorm_forward_cuda(xgd, NULL, xgd, step_weight_dev(&s, "norm.weight"), T, D, (float)c->norm_eps, s.prec);
        logits_forward_cuda(ld, (char *)xgd + act_bytes((size_t)(T - 1) * D, s.prec), step_weight_dev(&s, "output.weight"),
                            1, D, V, s.prec);
        step_host_f32(logits_cuda, ld, (size_t)V);
        int64_t next_cuda = argmax_cpu(logits_cuda, V);
        // Free-running, bf16 rounding differences drift through the layers, so two tokens whose logits are nearly
        // tied may swap. The prediction passes when it is the CPU's, or when the CPU scores the GPU's choice within
        // three times the typical logit error (the RMS of GPU - CPU) of its own best: a tie, not a different answer.
        double se = 0;
        for (int i = 0; i < V; i++) se += ((double)logits_cuda[i] - logits[i]) * ((double)logits_cuda[i] - logits[i]);
        double rms_err = sqrt(se / V), gap = (double)logits[next] - logits[next_cuda];
        float a = (float)next, b = (float)next_cuda;
        step_say(&s, step_text(&s, "whole model free-running on the GPU predicts %lld (CPU: %lld); CPU logit gap %.4g, "
                                   "RMS logit error %.4g",
                               "GPU 上连续运行整个模型预测 %lld（CPU：%lld）；CPU logit 差 %.4g，logit 误差均方根 %.4g"),
                 (long long)next_cuda, (long long)next, gap, rms_err);
        bool tie = next != next_cuda && gap <= 3 * rms_err;
        step_compare(&s, "next_token (GPU end to end vs CPU)", &a, &b, sh_1, 1, tie ? fabs(a - b) : 0.0, 0.0);
        free(emb), free(xg), free(xn_cuda), free(logits_cuda);
    }
    for (int i = 0; i < k; i++) free(labels[i]);
    free(text), free(x), free(xn), free(logits);
    return step_finish(&s);
}
