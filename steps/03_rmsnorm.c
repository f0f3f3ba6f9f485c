// 03_rmsnorm: RMS normalisation.
//
// token_embeddings = x * rsqrt(mean(x^2) + eps) * w, with w = layers.L.attention_norm.weight [D]. As in Meta's
// reference the normalisation runs in fp32 and is rounded to bf16 before the bf16 weight multiplies it.
// Run: build/steps/03_rmsnorm [--layer L]    Outputs: OUT/03_rmsnorm/token_embeddings.npy [T, D], rms.npy [T].
#include <math.h>
#include <stdlib.h>

#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "03_rmsnorm");
    LayerTrace lt;
    layer_trace_run(&s, &lt);
    step_say(&s, "rms_norm(x, w) = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps)) * w,  norm_eps = %g",
             s.cfg->norm_eps);
    int64_t shape[2] = {s.T, s.cfg->dim}, shape_t[1] = {s.T};
    const Tensor *w;
    step_weight(&s, &w, "layers.%d.attention_norm.weight", s.layer);
    char name[96];
    snprintf(name, sizeof name, "layers.%d.attention_norm.weight", s.layer);
    step_shape(&s, name, w->shape, w->ndim, "bf16");
    float *rms = xmalloc((size_t)s.T * sizeof(float));
    for (int t = 0; t < s.T; t++) rms[t] = 1.0f / lt.rstd[t];
    step_say(&s, "%s", step_text(&s, "rms of each token row before normalisation:", "归一化前每个 token 行的均方根："));
    step_print_vector(&s, "rms", rms, s.T, "%.4f");
    step_tensor(&s, "rms", rms, shape_t, 1, "f32");
    step_show(&s, "token_embeddings", lt.x_norm, shape, 2, "bf16");
    free(rms);
    if (s.cuda && s.cpu) layer_check_op(&s, &lt, OP_ATTN_NORM, NULL);
    layer_trace_free(&lt);
    return step_finish(&s);
}
