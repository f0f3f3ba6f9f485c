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

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "08_mask");
    const int T = s.T;
    const size_t TT = (size_t)T * T;
    LayerTrace in;
    layer_inputs_upto(&s, OP_MASK, &in);  // qk_per_token [T, T] (chapters 02-07)

    // mask = torch.full((len(tokens), len(tokens)), float("-inf")); mask = torch.triu(mask, diagonal=1)
    float *mask = step_buf(&s, TT);
    causal_mask_cpu(mask, T, T, 0);  // a constant: the CUDA path applies it inside attention_mask_cuda
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
            k += (size_t)sprintf(line + k, "%s%s", isinf(mask[(size_t)i * T + j]) ? "-inf" : "0.", j + 1 < T ? ", " : "]");
        }
        sprintf(line + k, "%s", i + 1 < T ? "," : "])");
        step_say(&s, "%s", line);
    }
    free(line);

    // qk_per_token_after_masking = qk_per_token + mask
    float *masked_cpu = NULL, *masked_cuda = NULL;  // [T, T] fp32
    if (s.cpu) {  // common/ref/ref_attention.c: the ground truth
        double t0 = step_clock();
        masked_cpu = step_buf(&s, TT);
        memcpy(masked_cpu, in.qk_per_token, TT * sizeof(float));
        attention_mask_cpu(masked_cpu, T, T, 0, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/attention.cu, in place on the same scores
        double t0 = step_clock();
        float *d_scores = step_dev_f32(&s, in.qk_per_token, TT);
        attention_mask_cuda(d_scores, T, T, 0, s.prec);
        masked_cuda = step_get_f32(&s, d_scores, TT);
        step_add_ms(&s, true, t0);
    }
    int64_t sh[2] = {T, T};
    // -inf on both sides above the diagonal; below it the scores are copied: an fp32 result (step_tolerance_f32)
    if (s.cpu && s.cuda) step_compare_f32(&s, "qk_per_token_after_masking", masked_cpu, masked_cuda, sh, 2);

    step_show(&s, "mask", mask, sh, 2, "f32");
    step_show(&s, "qk_per_token_after_masking", s.cpu ? masked_cpu : masked_cuda, sh, 2, "f32");
    step_token_heatmap(&s, "scores_masked", masked_cpu, masked_cuda,
                       step_text(&s, "qk_per_token_after_masking (hatched: -inf)", "qk_per_token_after_masking（斜线：-inf）"),
                       "score", false);
    layer_trace_free(&in);
    return step_finish(&s);
}
