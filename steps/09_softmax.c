// 09_softmax: softmax.
//
// qk_per_token_after_masking_after_softmax = softmax(qk_per_token_after_masking, dim=1) in fp32, then bf16: each row
// becomes weights that are >= 0 and sum to 1. Figure F4: the attention weights.
// Run: build/steps/09_softmax [--layer L] [--head H]
// Outputs: OUT/09_softmax/qk_per_token_after_masking_after_softmax.npy, attention_weights.png
#include <math.h>
#include <stdlib.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "09_softmax");
    const int T = s.T;
    LayerTrace lt;
    layer_trace_run(&s, &lt);
    const float *P = lt.qk_per_token_after_masking_after_softmax;
    int64_t sh[2] = {T, T};
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
    float *cuda = NULL;
    if (s.cuda && s.cpu) layer_check_op(&s, &lt, OP_SOFTMAX, &cuda);
    step_token_heatmap(&s, "attention_weights", P, cuda,
                       step_text(&s, "qk_per_token_after_masking_after_softmax", "qk_per_token_after_masking_after_softmax"),
                       "weight", true);
    free(cuda);
    layer_trace_free(&lt);
    return step_finish(&s);
}
