// 09_softmax: softmax.
//
// qk_per_token_after_masking_after_softmax = softmax(qk_per_token_after_masking, dim=1) in fp32, then bf16: each row
// becomes weights that are >= 0 and sum to 1. Figure F4: the attention weights.
// Run: build/steps/09_softmax [--layer L] [--head H]
// Outputs: OUT/09_softmax/qk_per_token_after_masking_after_softmax.npy, attention_weights.png
#include <math.h>
#include <stdlib.h>

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "09_softmax");
    const int T = s.T;
    const size_t TT = (size_t)T * T;
    LayerTrace in;
    layer_inputs_upto(&s, OP_SOFTMAX, &in);  // qk_per_token_after_masking [T, T] (chapters 02-08)

    // qk_per_token_after_masking_after_softmax = torch.nn.functional.softmax(qk_per_token_after_masking,
    //                                                                       dim=1).to(torch.bfloat16)
    float *probs_cpu = NULL, *probs_cuda = NULL;  // [T, T]
    if (s.cpu) {  // common/ref/ref_attention.c: the ground truth
        double t0 = step_clock();
        probs_cpu = step_buf(&s, TT);
        softmax_forward_cpu(probs_cpu, in.qk_per_token_after_masking, T, T, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/softmax.cu on the same masked scores
        double t0 = step_clock();
        float *d_probs = step_dev_f32(&s, NULL, TT);
        softmax_forward_cuda(d_probs, step_dev_f32(&s, in.qk_per_token_after_masking, TT), T, T, s.prec);
        probs_cuda = step_get_f32(&s, d_probs, TT);
        step_add_ms(&s, true, t0);
    }
    int64_t sh[2] = {T, T};
    // the same fp32 softmax of the same scores (max and sum in another order), rounded to bf16 once: one bf16 rounding
    if (s.cpu && s.cuda) step_compare_act(&s, "qk_per_token_after_masking_after_softmax", probs_cpu, probs_cuda, sh, 2);

    const float *P = s.cpu ? probs_cpu : probs_cuda;
    step_show(&s, "qk_per_token_after_masking_after_softmax", P, sh, 2, step_act_dtype(&s));
    double worst = 0, on_first = 0;
    for (int i = 0; i < T; i++) {
        double sum = 0;
        for (int j = 0; j < T; j++) sum += P[(size_t)i * T + j];
        if (fabs(sum - 1) > worst) worst = fabs(sum - 1);
        on_first += P[(size_t)i * T];
    }
    step_say(&s, step_text(&s, "row sums: 1 within %.1e (bf16 rounding of each weight)",
                           "每行之和：在 %.1e 内等于 1（每个权重的 bf16 舍入）"), worst);
    step_say(&s, step_text(&s, "mean weight on the first token (%s): %.3f", "第一个 token（%s）上的平均权重：%.3f"),
             s.pieces[0], on_first / T);
    step_explain(&s,
                 "In trained models much of the weight lands on <|begin_of_text|>: heads that have nothing useful "
                 "to attend to park their weight on the first token (an 'attention sink').",
                 "在训练好的模型中，很大一部分权重落在 <|begin_of_text|> 上：没有有用信息可关注的头把权重停放在第一个 token 上"
                 "（“注意力汇聚”，attention sink）。");
    step_token_heatmap(&s, "attention_weights", probs_cpu, probs_cuda,
                       step_text(&s, "qk_per_token_after_masking_after_softmax", "qk_per_token_after_masking_after_softmax"),
                       "weight", true);
    layer_trace_free(&in);
    return step_finish(&s);
}
