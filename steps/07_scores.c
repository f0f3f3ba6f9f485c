// 07_scores: queries times keys.
//
// qk_per_token [T, T] = q_per_token_rotated · k_per_token_rotatedᵀ / sqrt(Dh), in fp32: entry [i, j] says how much
// token i's query matches token j's key. Figure F2: the raw scores as a heatmap with the tokens on both axes.
// Run: build/steps/07_scores [--layer L] [--head H]   Outputs: OUT/07_scores/qk_per_token.npy, scores.png
#include <stdlib.h>

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "07_scores");
    const int T = s.T, Dh = s.cfg->head_dim;
    const size_t TT = (size_t)T * T;
    LayerTrace in;
    layer_inputs_upto(&s, OP_SCORES, &in);  // q_per_token_rotated, k_per_token_rotated [T, Dh] (chapters 02-06)
    step_say(&s, "qk_per_token = torch.matmul(q_per_token_rotated, k_per_token_rotated.T) / (head_dim)**0.5,  "
                 "head_dim = %d", Dh);

    // qk_per_token = torch.matmul(q_per_token_rotated, k_per_token_rotated.T)/(head_dim)**0.5
    float *qk_cpu = NULL, *qk_cuda = NULL;  // [T, T] fp32
    if (s.cpu) {  // common/ref/ref_attention.c: the ground truth
        double t0 = step_clock();
        qk_cpu = step_buf(&s, TT);
        attention_scores_cpu(qk_cpu, in.q_per_token_rotated, in.k_per_token_rotated, T, T, Dh, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/attention.cu on the same rotated q and k
        double t0 = step_clock();
        float *d_qk = step_dev_f32(&s, NULL, TT);
        attention_scores_cuda(d_qk, step_dev_act(&s, in.q_per_token_rotated, (size_t)T * Dh),
                              step_dev_act(&s, in.k_per_token_rotated, (size_t)T * Dh), T, T, Dh, s.prec);
        qk_cuda = step_get_f32(&s, d_qk, TT);
        step_add_ms(&s, true, t0);
    }
    int64_t sh[2] = {T, T};
    // fp32 dot products of the same bf16 values against double: an fp32 result (step_tolerance_f32)
    if (s.cpu && s.cuda) step_compare_f32(&s, "qk_per_token", qk_cpu, qk_cuda, sh, 2);

    step_show(&s, "qk_per_token", s.cpu ? qk_cpu : qk_cuda, sh, 2, "f32");
    step_token_heatmap(&s, "scores", qk_cpu, qk_cuda,
                       step_text(&s, "qk_per_token: raw attention scores", "qk_per_token：原始注意力分数"), "score", false);
    step_explain(&s,
                 "The upper right half is filled too: so far every token may look at tokens that come after it. "
                 "The next chapter masks that out.",
                 "右上半部分也有数值：到目前为止每个 token 都能看到它后面的 token。下一章会把这些屏蔽掉。");
    layer_trace_free(&in);
    return step_finish(&s);
}
