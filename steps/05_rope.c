// 05_rope: positions by rotating complex pairs.
//
// q_per_token [T, Dh] is split into Dh/2 pairs [T, Dh/2, 2]; pair i of the token at position m is read as a complex
// number and multiplied by freqs_cis[m][i] = exp(i * m * freqs[i]), freqs[i] = 1/theta^(i/(Dh/2)); back to real
// pairs and to [T, Dh]. Done in fp32 from the bf16 query; the result is rounded to bf16 as Meta's `type_as(xq)`.
// Figure F1: one row of freqs_cis (position 3) as rays from the origin of the complex plane.
// Run: build/steps/05_rope [--layer L] [--head H]
// Outputs: OUT/05_rope/{q_per_token_split_into_pairs, zero_to_one_split_into_<Dh/2>_parts, freqs, freqs_for_each_token,
//          freqs_cis, q_per_token_as_complex_numbers, q_per_token_as_complex_numbers_rotated,
//          q_per_token_split_into_pairs_rotated, q_per_token_rotated}.npy, freqs_cis.png
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/figures.h"
#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "05_rope");
    const Config *c = s.cfg;
    const int T = s.T, Dh = c->head_dim, half = Dh / 2;
    LayerTrace in;
    layer_inputs_upto(&s, OP_ROPE_Q, &in);  // q_per_token [T, Dh] of --layer, --head (chapters 02-04)

    // q_per_token_split_into_pairs = q_per_token.float().view(q_per_token.shape[0], -1, 2)
    int64_t sh_pairs[3] = {T, half, 2}, sh_half[1] = {half}, sh_tc[2] = {T, half}, sh_q[2] = {T, Dh};
    step_show(&s, "q_per_token_split_into_pairs", in.q_per_token, sh_pairs, 3, "f32");

    step_heading(&s, "the rotation frequencies", "旋转频率");
    float *parts = xmalloc((size_t)half * sizeof(float));
    for (int i = 0; i < half; i++) parts[i] = (float)i / (float)half;  // torch.tensor(range(64))/64 for Dh = 128
    char name[64];
    snprintf(name, sizeof name, "zero_to_one_split_into_%d_parts", half);
    step_print_vector(&s, name, parts, half, "%.4f");
    step_shape(&s, name, sh_half, 1, "f32");
    step_tensor(&s, name, parts, sh_half, 1, "f32");
    char scaling[160] = "";
    const RopeScaling *rs = config_rope_scaling(c);
    if (rs)
        snprintf(scaling, sizeof scaling, step_text(&s, "  (then Meta's apply_scaling: factor %g, low/high_freq_factor %g/%g, "
                                                        "original context %g)",
                                                    "（然后是 Meta 的 apply_scaling：factor %g，low/high_freq_factor %g/%g，"
                                                    "原始上下文 %g）"),
                 rs->factor, rs->low_freq_factor, rs->high_freq_factor, rs->original_max_position_embeddings);
    step_say(&s, "freqs = 1.0 / (rope_theta ** %s),  rope_theta = %.1f%s", name, c->rope_theta, scaling);
    step_print_vector(&s, "freqs", s.freqs, half, "%.4e");
    step_tensor(&s, "freqs", s.freqs, sh_half, 1, "f32");
    char slowest[16], en[256], zh[256];  // the last pair's angle per position, as "2.5e-6"
    snprintf(slowest, sizeof slowest, "%.1e", s.freqs[half - 1]);
    char *e = strchr(slowest, 'e');
    if (e && (e[1] == '-' || e[1] == '+') && e[2] == '0') memmove(e + 2, e + 3, strlen(e + 3) + 1);  // e-06 -> e-6
    snprintf(en, sizeof en, "Pair 0 turns by %.3g radian per position, pair %d by about %s: the fast pairs tell "
             "neighbours apart, the slow ones still change over thousands of positions.", s.freqs[0], half - 1, slowest);
    snprintf(zh, sizeof zh, "第 0 对每个位置转 %.3g 弧度，第 %d 对只转约 %s：转得快的对能区分相邻位置，转得慢的对在几千个"
             "位置上仍在变化。", s.freqs[0], half - 1, slowest);
    step_explain(&s, en, zh);

    // freqs_for_each_token = torch.outer(torch.arange(T), freqs); freqs_cis = torch.polar(1, that)
    float *angles = xmalloc((size_t)T * half * sizeof(float));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) angles[(size_t)t * half + i] = (float)t * s.freqs[i];
    step_show(&s, "freqs_for_each_token", angles, sh_tc, 2, "f32");
    step_shape(&s, "freqs_cis", sh_tc, 2, "complex64");
    char as_pairs[48];  // how the .npy of a complex tensor holds it: [T, Dh/2, 2] floats
    snprintf(as_pairs, sizeof as_pairs, "complex64 as [T, %d, 2]", half);
    char as_pairs_ri[64];
    snprintf(as_pairs_ri, sizeof as_pairs_ri, "%s (real, imag)", as_pairs);
    step_tensor(&s, "freqs_cis", s.freqs_cis, sh_pairs, 3, as_pairs_ri);
    free(angles);

    // F1: freqs_cis[3] (the tutorial plots the first 17 of its 64 entries; we draw all Dh/2, labelled)
    int row = T > 3 ? 3 : T - 1;
    char *png = step_path(&s, "freqs_cis.png");
    char title[128], subtitle[160];
    snprintf(title, sizeof title, step_text(&s, "one row of freqs_cis (position %d)", "freqs_cis 的一行（位置 %d）"), row);
    snprintf(subtitle, sizeof subtitle, "exp(i * %d * freqs[k]), k = 0..%d; %s", row, half - 1,
             step_text(&s, "ray k is labelled k", "第 k 条射线标注为 k"));
    figure_complex_rays(png, s.freqs_cis + (size_t)row * half * 2, half, title, subtitle, true);
    free(png);
    step_image(&s, "freqs_cis.png", title);

    step_heading(&s, "rotating the query", "旋转 query");
    // q_per_token_as_complex_numbers = torch.view_as_complex(q_per_token_split_into_pairs): the same numbers,
    // [T, Dh/2] complex
    step_shape(&s, "q_per_token_as_complex_numbers", sh_tc, 2, "complex64");
    step_tensor(&s, "q_per_token_as_complex_numbers", in.q_per_token, sh_pairs, 3, as_pairs);

    // q_per_token_as_complex_numbers_rotated = q_per_token_as_complex_numbers * freqs_cis
    // q_per_token_split_into_pairs_rotated = torch.view_as_real(q_per_token_as_complex_numbers_rotated)
    // q_per_token_rotated = q_per_token_split_into_pairs_rotated.view(q_per_token.shape), then Meta's type_as(xq)
    const size_t n = (size_t)T * Dh;
    float *rot_f32 = NULL, *rot_cpu = NULL, *rot_cuda = NULL;  // the product in fp32; rounded to the activation's type
    if (s.cpu) {  // common/ref/ref_rope.c: the ground truth
        double t0 = step_clock();
        rot_f32 = step_buf(&s, n), rot_cpu = step_buf(&s, n);
        rope_forward_complex_cpu(rot_f32, in.q_per_token, s.freqs_cis, T, 1, Dh, 0, PREC_FP32);
        rope_forward_complex_cpu(rot_cpu, in.q_per_token, s.freqs_cis, T, 1, Dh, 0, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // kernels/rope.cu on the same query, with the same freqs_cis table uploaded
        double t0 = step_clock();
        void *d_rot = step_dev_act(&s, in.q_per_token, n);
        rope_forward_cuda(d_rot, d_rot, s.freqs_cis_dev, T, 1, Dh, 0, s.prec);
        rot_cuda = step_get_act(&s, d_rot, n);
        if (!s.cpu) {  // without the reference, the fp32 product the trace shows comes from the GPU too
            float *d_rot_f32 = step_dev_f32(&s, in.q_per_token, n);
            rope_forward_cuda(d_rot_f32, d_rot_f32, s.freqs_cis_dev, T, 1, Dh, 0, PREC_FP32);
            rot_f32 = step_get_f32(&s, d_rot_f32, n);
        }
        step_add_ms(&s, true, t0);
    }
    // the same fp32 products of the same cos/sin, each rounded once: one bf16 rounding apart at most
    if (s.cpu && s.cuda) step_compare_act(&s, "q_per_token_rotated", rot_cpu, rot_cuda, sh_q, 2);

    const float *q_rotated = s.cpu ? rot_cpu : rot_cuda;
    step_shape(&s, "q_per_token_as_complex_numbers_rotated", sh_tc, 2, "complex64");
    step_tensor(&s, "q_per_token_as_complex_numbers_rotated", rot_f32, sh_pairs, 3, as_pairs);
    step_show(&s, "q_per_token_split_into_pairs_rotated", rot_f32, sh_pairs, 3, "f32");
    step_show(&s, "q_per_token_rotated", q_rotated, sh_q, 2, step_act_dtype(&s));
    step_explain(&s,
                 "The tutorial keeps q_per_token_rotated in float32; Meta's model casts it back to bf16 "
                 "(type_as(xq)), and so do we (the .npy of the pairs above holds the float32 values).",
                 "教程把 q_per_token_rotated 保留为 float32；Meta 的模型把它转回 bf16（type_as(xq)），我们也这样做"
                 "（上面各个 pairs 的 .npy 保存的是 float32 值）。");

    // The same rotation in the cos/sin form of MiniMind-style code (x0*c - x1*s, x0*s + x1*c on the even/odd
    // elements): bit-identical. A self-check of the CPU reference, so not in a --no-compare run.
    if (s.compare) {
        float *rot_cossin = step_buf(&s, n);
        rope_forward_cpu(rot_cossin, in.q_per_token, s.freqs_cis, T, 1, Dh, 0, s.prec);
        step_say(&s, "%s", step_text(&s, "complex product vs. cos/sin on even/odd elements (must be bit-identical):",
                                     "复数乘法 vs. 偶/奇元素上的 cos/sin（必须逐位相同）："));
        step_compare(&s, "q_per_token_rotated (cos/sin form vs complex form)", rot_cpu, rot_cossin, sh_q, 2, 0.0,
                     0.0);  // the same fp32 arithmetic in the same order: no tolerance at all
    }
    free(parts);
    layer_trace_free(&in);
    return step_finish(&s);
}
