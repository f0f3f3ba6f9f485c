// 08_mask: the causal mask.
//
// mask = triu(full((T, T), -inf), diagonal=1); qk_per_token_after_masking = qk_per_token + mask. The whole mask is
// printed as torch prints it. Figure F3: the masked scores, masked cells drawn as masked.
// Run: build/steps/08_mask [--layer L] [--head H]
// Outputs: OUT/08_mask/mask.npy, qk_per_token_after_masking.npy, scores_masked.png
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

static const Chapter CHAPTER = {
    .id = "08_mask",
    .title_en = "the causal mask",
    .title_zh = "因果掩码",
    .intro_en = "During training Llama 3 learns to predict each token from the tokens before it only, so at inference "
                "a token must not see the ones after it. Adding -inf above the diagonal does that: after the softmax "
                "those entries become exactly 0.",
    .intro_zh = "训练时 Llama 3 只学习用前面的 token 预测下一个 token，所以推理时一个 token 不能看到它后面的 token。在对角线"
                "以上加上 -inf 就做到了这一点：softmax 之后这些位置恰好变成 0。",
};

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, &CHAPTER);
    const int T = s.T;
    LayerTrace lt;
    layer_trace_run(&s, &lt);

    step_say(&s, "mask = torch.triu(torch.full((%d, %d), float(\"-inf\")), diagonal=1)", T, T);
    char *line = xmalloc((size_t)T * 8 + 32);
    for (int i = 0; i < T; i++) {
        size_t k = (size_t)sprintf(line, "%s", i == 0 ? "tensor([[" : "        [");
        for (int j = 0; j < T; j++)
            k += (size_t)sprintf(line + k, "%s%s", isinf(lt.mask[(size_t)i * T + j]) ? "-inf" : "0.", j + 1 < T ? ", " : "]");
        sprintf(line + k, "%s", i + 1 < T ? "," : "])");
        step_say(&s, "%s", line);
    }
    free(line);
    int64_t sh[2] = {T, T};
    step_show(&s, "mask", lt.mask, sh, 2, "f32");
    step_show(&s, "qk_per_token_after_masking", lt.qk_per_token_after_masking, sh, 2, "f32");
    float *cuda = NULL;
    if (s.cuda && s.cpu) layer_check_op(&s, &lt, OP_MASK, &cuda);
    step_token_heatmap(&s, "scores_masked",
                       lt.qk_per_token_after_masking, cuda,
                       step_text(&s, "qk_per_token_after_masking (hatched: -inf)", "qk_per_token_after_masking（斜线：-inf）"),
                       "score", false);
    free(cuda);
    layer_trace_free(&lt);
    return step_finish(&s);
}
