// 07_scores: queries times keys.
//
// qk_per_token [T, T] = q_per_token_rotated · k_per_token_rotatedᵀ / sqrt(Dh), in fp32: entry [i, j] says how much
// token i's query matches token j's key. Figure F2: the raw scores as a heatmap with the tokens on both axes.
// Run: build/steps/07_scores [--layer L] [--head H]   Outputs: OUT/07_scores/qk_per_token.npy, scores.png
#include <stdlib.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "07_scores");
    LayerTrace lt;
    layer_trace_run(&s, &lt);
    step_say(&s, "qk_per_token = torch.matmul(q_per_token_rotated, k_per_token_rotated.T) / (head_dim)**0.5,  "
                 "head_dim = %d", s.cfg->head_dim);
    int64_t sh[2] = {s.T, s.T};
    step_show(&s, "qk_per_token", lt.qk_per_token, sh, 2, "f32");
    float *cuda = NULL;
    if (s.cuda && s.cpu) layer_check_op(&s, &lt, OP_SCORES, &cuda);
    step_token_heatmap(&s, "scores", lt.qk_per_token, cuda,
                       step_text(&s, "qk_per_token: raw attention scores", "qk_per_token：原始注意力分数"), "score", false);
    step_explain(&s,
                 "The upper right half is filled too: so far every token may look at tokens that come after it. "
                 "The next chapter masks that out.",
                 "右上半部分也有数值：到目前为止每个 token 都能看到它后面的 token。下一章会把这些屏蔽掉。");
    free(cuda);
    layer_trace_free(&lt);
    return step_finish(&s);
}
