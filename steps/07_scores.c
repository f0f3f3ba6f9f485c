// 07_scores: queries times keys.
//
// qk_per_token [T, T] = q_per_token_rotated · k_per_token_rotatedᵀ / sqrt(Dh), in fp32: entry [i, j] says how much
// token i's query matches token j's key. Figure F2: the raw scores as a heatmap with the tokens on both axes.
// Run: build/steps/07_scores [--layer L] [--head H]   Outputs: OUT/07_scores/qk_per_token.npy, scores.png
#include <stdlib.h>

#include "layer.h"

static const Chapter CHAPTER = {
    .id = "07_scores",
    .title_en = "queries times keys: the attention scores",
    .title_zh = "query 乘以 key：注意力分数",
    .intro_en = "Every query is compared with every key by a dot product, divided by sqrt(head_dim) so the numbers "
                "keep a moderate size whatever the head dimension. Row i, column j: how relevant token j looks to "
                "token i. This is self-attention.",
    .intro_zh = "每个 query 与每个 key 做点积，再除以 sqrt(head_dim)，让数值大小不随头维度变化。第 i 行第 j 列：token j 对 "
                "token i 看起来有多相关。这就是自注意力。",
};

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, &CHAPTER);
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
