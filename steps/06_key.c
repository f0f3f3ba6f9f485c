// 06_key: keys, almost the same as queries.
//
// wk [Hkv*Dh, D] viewed [Hkv, Dh, D]; the kv head that query head H reads (H / n_rep) gives k_per_token [T, Dh],
// rotated by the same freqs_cis as the query.
// Run: build/steps/06_key [--layer L] [--head H]
// Outputs: OUT/06_key/{k_layerL, k_layerL_headK, k_per_token, k_per_token_split_into_pairs,
//          k_per_token_as_complex_numbers, k_per_token_split_into_pairs_rotated, k_per_token_rotated}.npy
#include <stdlib.h>

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "06_key");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, Dh = c->head_dim, half = Dh / 2;
    const size_t n = (size_t)T * Dh;
    LayerTrace in;
    layer_inputs_upto(&s, OP_K_HEAD, &in);  // token_embeddings [T, D] of --layer (chapters 02-03)

    int64_t sh_k[2] = {T, Dh}, sh_pairs[3] = {T, half, 2}, sh_tc[2] = {T, half};
    step_say(&s, step_text(&s, "query head %d reads kv head %d = %d // %d", "query 头 %d 使用 kv 头 %d = %d // %d"), s.head,
             in.kv_head, s.head, c->n_rep);
    show_head_weights(&s, "k", "wk", c->n_kv_heads, in.kv_head);

    // k_per_token = torch.matmul(token_embeddings, k_layer0_head0.T)
    // k_per_token_split_into_pairs_rotated = torch.view_as_real(
    //     torch.view_as_complex(k_per_token.float().view(k_per_token.shape[0], -1, 2)) * freqs_cis)
    // k_per_token_rotated = k_per_token_split_into_pairs_rotated.view(k_per_token.shape), then Meta's type_as(xk)
    const size_t head_rows = (size_t)in.kv_head * Dh * D;  // kv head g: rows g*Dh .. g*Dh+Dh-1 of wk [Hkv*Dh, D]
    float *k_cpu = NULL, *rot_f32 = NULL, *rot_cpu = NULL, *k_cuda = NULL, *rot_cuda = NULL;
    if (s.cpu) {  // common/ref: the ground truth
        double t0 = step_clock();
        k_cpu = step_buf(&s, n), rot_f32 = step_buf(&s, n), rot_cpu = step_buf(&s, n);
        const uint16_t *wk = step_weight(&s, NULL, "layers.%d.attention.wk.weight", L);
        matmul_forward_cpu(k_cpu, in.x_norm, wk + head_rows, T, D, Dh, s.prec);
        rope_forward_complex_cpu(rot_f32, k_cpu, s.freqs_cis, T, 1, Dh, 0, PREC_FP32);
        rope_forward_complex_cpu(rot_cpu, k_cpu, s.freqs_cis, T, 1, Dh, 0, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // cuBLAS and kernels/rope.cu; RoPE reads the reference's k when the reference ran (same inputs)
        double t0 = step_clock();
        void *d_k = step_dev_act(&s, NULL, n);
        const uint16_t *d_wk = step_weight_dev(&s, "layers.%d.attention.wk.weight", L);
        matmul_forward_cuda(d_k, step_dev_act(&s, in.x_norm, (size_t)T * D), d_wk + head_rows, T, D, Dh, s.prec);
        k_cuda = step_get_act(&s, d_k, n);
        void *d_rot = step_dev_act(&s, s.cpu ? k_cpu : k_cuda, n);
        rope_forward_cuda(d_rot, d_rot, s.freqs_cis_dev, T, 1, Dh, 0, s.prec);
        rot_cuda = step_get_act(&s, d_rot, n);
        if (!s.cpu) {  // without the reference, the fp32 product the trace shows comes from the GPU too
            float *d_rot_f32 = step_dev_f32(&s, k_cuda, n);
            rope_forward_cuda(d_rot_f32, d_rot_f32, s.freqs_cis_dev, T, 1, Dh, 0, PREC_FP32);
            rot_f32 = step_get_f32(&s, d_rot_f32, n);
        }
        step_add_ms(&s, true, t0);
    }
    if (s.cpu && s.cuda) {  // each from the same inputs: one bf16 rounding apart (fp32 sums against double)
        step_compare_act(&s, "k_per_token", k_cpu, k_cuda, sh_k, 2);
        step_compare_act(&s, "k_per_token_rotated", rot_cpu, rot_cuda, sh_k, 2);
    }

    const float *k = s.cpu ? k_cpu : k_cuda;
    step_show(&s, "k_per_token", k, sh_k, 2, step_act_dtype(&s));
    step_show(&s, "k_per_token_split_into_pairs", k, sh_pairs, 3, "f32");
    step_shape(&s, "k_per_token_as_complex_numbers", sh_tc, 2, "complex64");
    char as_pairs[48];  // how the .npy of a complex tensor holds it: [T, Dh/2, 2] floats
    snprintf(as_pairs, sizeof as_pairs, "complex64 as [T, %d, 2]", half);
    step_tensor(&s, "k_per_token_as_complex_numbers", k, sh_pairs, 3, as_pairs);
    step_show(&s, "k_per_token_split_into_pairs_rotated", rot_f32, sh_pairs, 3, "f32");
    step_show(&s, "k_per_token_rotated", s.cpu ? rot_cpu : rot_cuda, sh_k, 2, step_act_dtype(&s));
    layer_trace_free(&in);
    return step_finish(&s);
}
