// 10_value: values and the attention of one head.
//
// wv [Hkv*Dh, D] viewed [Hkv, Dh, D]; v_per_token = token_embeddings · wv[kv head]ᵀ [T, Dh];
// qkv_attention = attention weights · v_per_token [T, Dh].
// Run: build/steps/10_value [--layer L] [--head H]
// Outputs: OUT/10_value/{v_layerL, v_layerL_headK, v_per_token, qkv_attention}.npy
#include <stdlib.h>

#include "kernels.h"
#include "layer.h"

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "10_value");
    const Config *c = s.cfg;
    const int L = s.layer, T = s.T, D = c->dim, Dh = c->head_dim;
    const size_t n = (size_t)T * Dh;
    LayerTrace in;
    layer_inputs_upto(&s, OP_V_HEAD, &in);  // token_embeddings [T, D] and the head's attention weights [T, T] (02-09)
    show_head_weights(&s, "v", "wv", c->n_kv_heads, in.kv_head);

    // v_per_token = torch.matmul(token_embeddings, v_layer0_head0.T)
    // qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)
    const size_t head_rows = (size_t)in.kv_head * Dh * D;  // kv head g: rows g*Dh .. g*Dh+Dh-1 of wv [Hkv*Dh, D]
    float *v_cpu = NULL, *qkv_cpu = NULL, *v_cuda = NULL, *qkv_cuda = NULL;
    if (s.cpu) {  // common/ref: the ground truth
        double t0 = step_clock();
        v_cpu = step_buf(&s, n), qkv_cpu = step_buf(&s, n);
        const uint16_t *wv = step_weight(&s, NULL, "layers.%d.attention.wv.weight", L);
        matmul_forward_cpu(v_cpu, in.x_norm, wv + head_rows, T, D, Dh, s.prec);
        attention_values_cpu(qkv_cpu, in.qk_per_token_after_masking_after_softmax, v_cpu, T, T, Dh, s.prec);
        step_add_ms(&s, false, t0);
    }
    if (s.cuda) {  // cuBLAS and kernels/attention.cu; P·V reads the reference's v when the reference ran (same inputs)
        double t0 = step_clock();
        void *d_v = step_dev_act(&s, NULL, n), *d_qkv = step_dev_act(&s, NULL, n);
        const uint16_t *d_wv = step_weight_dev(&s, "layers.%d.attention.wv.weight", L);
        matmul_forward_cuda(d_v, step_dev_act(&s, in.x_norm, (size_t)T * D), d_wv + head_rows, T, D, Dh, s.prec);
        v_cuda = step_get_act(&s, d_v, n);
        attention_values_cuda(d_qkv, step_dev_f32(&s, in.qk_per_token_after_masking_after_softmax, (size_t)T * T),
                              step_dev_act(&s, s.cpu ? v_cpu : v_cuda, n), T, T, Dh, s.prec);
        qkv_cuda = step_get_act(&s, d_qkv, n);
        step_add_ms(&s, true, t0);
    }
    int64_t sh_v[2] = {T, Dh};
    if (s.cpu && s.cuda) {  // each from the same inputs: one bf16 rounding apart (fp32 sums against double)
        step_compare_act(&s, "v_per_token", v_cpu, v_cuda, sh_v, 2);
        step_compare_act(&s, "qkv_attention", qkv_cpu, qkv_cuda, sh_v, 2);
    }

    step_show(&s, "v_per_token", s.cpu ? v_cpu : v_cuda, sh_v, 2, step_act_dtype(&s));
    step_say(&s, "qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)");
    step_show(&s, "qkv_attention", s.cpu ? qkv_cpu : qkv_cuda, sh_v, 2, step_act_dtype(&s));
    layer_trace_free(&in);
    return step_finish(&s);
}
