// 08_mask: the causal mask.
//
// mask = triu(full((T, T), -inf), diagonal=1); qk_per_token_after_masking = qk_per_token + mask. The mask is printed
// as torch prints it (whole up to 1000 elements, else summarised with "..."). Figure F3: the masked scores, masked
// cells drawn as masked.
// Run: build/steps/08_mask [--layer L] [--head H]
// Outputs: OUT/08_mask/mask.npy, qk_per_token_after_masking.npy, scores_masked.png
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "08_mask");
    const int T = s.T;
    LayerTrace lt;
    layer_trace_run(&s, &lt);

    step_say(&s, "mask = torch.triu(torch.full((%d, %d), float(\"-inf\")), diagonal=1)", T, T);
    // torch prints the whole mask up to 1000 elements; beyond, the first and last 3 rows and columns around "..."
    bool summarise = (int64_t)T * T > TORCH_THRESHOLD;
    const int edge = TORCH_EDGEITEMS;
    char *line = xmalloc((size_t)T * 8 + 32);
    for (int i = 0; i < T; i++) {
        if (summarise && i == edge) {
            step_say(&s, "        ...,");
            i = T - edge;
        }
        size_t k = (size_t)sprintf(line, "%s", i == 0 ? "tensor([[" : "        [");
        for (int j = 0; j < T; j++) {
            if (summarise && j == edge) {
                k += (size_t)sprintf(line + k, " ..., ");
                j = T - edge;
            }
            k += (size_t)sprintf(line + k, "%s%s", isinf(lt.mask[(size_t)i * T + j]) ? "-inf" : "0.", j + 1 < T ? ", " : "]");
        }
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
