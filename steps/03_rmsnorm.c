// 03_rmsnorm: RMS normalisation.
//
// token_embeddings = x * rsqrt(mean(x^2) + eps) * w, with w = layers.L.attention_norm.weight [D]. As in Meta's
// reference the normalisation runs in fp32 and is rounded to bf16 before the bf16 weight multiplies it.
// Run: build/steps/03_rmsnorm [--layer L]    Outputs: OUT/03_rmsnorm/token_embeddings.npy [T, D], rms.npy [T].
#include <math.h>
#include <stdlib.h>

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "03_rmsnorm");
    const int T = s.T, D = s.cfg->dim;
    const float eps = (float)s.cfg->norm_eps;
    LayerTrace in;
    layer_inputs_upto(&s, OP_ATTN_NORM, &in);  // x_in [T, D]: the embeddings through the layers before --layer
    step_say(&s, "rms_norm(x, w) = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps)) * w,  norm_eps = %g",
             s.cfg->norm_eps);
    const Tensor *w;
    step_weight(&s, &w, "layers.%d.attention_norm.weight", s.layer);
    char name[96];
    snprintf(name, sizeof name, "layers.%d.attention_norm.weight", s.layer);
    step_shape(&s, name, w->shape, w->ndim, "bf16");

    // token_embeddings = rms_norm(token_embeddings_unnormalized, model["layers.0.attention_norm.weight"])
    float *x_cpu = NULL, *rstd_cpu = NULL, *x_cuda = NULL, *rstd_cuda = NULL;  // [T, D] and 1/rms of each row [T]
    if (s.cpu) {  // common/ref/ref_ops.c: the ground truth
        double t0 = step_clock();
        x_cpu = step_buf(&s, (size_t)T * D), rstd_cpu = step_buf(&s, (size_t)T);
        rmsnorm_forward_cpu(x_cpu, rstd_cpu, in.x_in, step_weight(&s, NULL, "%s", name), T, D, eps, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/rmsnorm_bf16.cu on the same rows
        double t0 = step_clock();
        void *d_x = step_dev_act(&s, NULL, (size_t)T * D);
        float *d_rstd = step_dev_f32(&s, NULL, (size_t)T);
        rmsnorm_forward_cuda(d_x, d_rstd, step_dev_act(&s, in.x_in, (size_t)T * D), step_weight_dev(&s, "%s", name), T,
                             D, eps, s.prec);
        x_cuda = step_get_act(&s, d_x, (size_t)T * D), rstd_cuda = step_get_f32(&s, d_rstd, (size_t)T);
        step_add_ms(&s, true, t0);
    }
    int64_t shape[2] = {T, D}, shape_t[1] = {T};
    // the sum of squares in fp32 on the GPU, in double here, then the same roundings: one bf16 rounding apart
    if (s.cpu && s.cuda) step_compare_act(&s, "token_embeddings", x_cpu, x_cuda, shape, 2);

    const float *rstd = s.cpu ? rstd_cpu : rstd_cuda;
    float *rms = step_buf(&s, (size_t)T);
    for (int t = 0; t < T; t++) rms[t] = 1.0f / rstd[t];
    step_say(&s, "%s", step_text(&s, "rms of each token row before normalisation:", "归一化前每个 token 行的均方根："));
    step_print_vector(&s, "rms", rms, T, "%.4f");
    step_tensor(&s, "rms", rms, shape_t, 1, "f32");
    step_show(&s, "token_embeddings", s.cpu ? x_cpu : x_cuda, shape, 2, "bf16");
    layer_trace_free(&in);
    return step_finish(&s);
}
