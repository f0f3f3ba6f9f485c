// ref_rope.c: rotary position embedding (RoPE) on the CPU, as Meta's llama/model.py computes it.
//
//   freqs[Dh/2]                 1 / theta^(2i/Dh)                      (Llama 3.1+: rescaled, rope_apply_scaling_cpu)
//   freqs_cis[n_pos, Dh/2, 2]   (cos, sin) of pos * freqs[i]           (= view_as_real(polar(1, outer(pos, freqs))))
//   x[T, n_heads, Dh]           each pair (x[2i], x[2i+1]) rotated by the angle of its position and pair index
//
// The rotation is written twice, in the tutorial's complex-number form (Meta's reference model.py) and in the cos/sin
// form MiniMind-style code uses. They are the same floating-point operations, so the results are bit-identical;
// test_ref_ops checks it.
#include <complex.h>
#include <math.h>
#ifndef CMPLXF  // glibc defines it for gcc only; clang (make fuzz builds with it) has the same builtin
#define CMPLXF(x, y) __builtin_complex((float)(x), (float)(y))
#endif

#include "ref/ref_ops.h"
#include "util.h"

void rope_freqs_cpu(float *freqs, int head_dim, double theta, const RopeScaling *scaling) {
    if (head_dim <= 0 || head_dim % 2) fatal("rope_freqs_cpu: head_dim %d must be positive and even", head_dim);
    for (int i = 0; i < head_dim / 2; i++) {
        // torch.arange(0, dim, 2).float() / dim, then theta ** that, then 1.0 / that: three float32 operations.
        float exponent = (float)(2 * i) / (float)head_dim;
        freqs[i] = 1.0f / powf((float)theta, exponent);
    }
    if (scaling) rope_apply_scaling_cpu(freqs, head_dim / 2, scaling);
}

void rope_apply_scaling_cpu(float *freqs, int n, const RopeScaling *s) {
    // In float32, as torch computes it on a float32 tensor: Meta's constants (8, 1, 4, 8192) are exact there.
    const float scale_factor = (float)s->factor, low_freq_factor = (float)s->low_freq_factor;
    const float high_freq_factor = (float)s->high_freq_factor, old_context_len = (float)s->original_max_position_embeddings;
    const float low_freq_wavelen = old_context_len / low_freq_factor;    // Llama 3.1: 8192
    const float high_freq_wavelen = old_context_len / high_freq_factor;  // 2048
    for (int i = 0; i < n; i++) {
        float f = freqs[i];
        // `2 * math.pi / freq` on a float32 tensor: the Python double is converted to float32 first.
        float wavelen = (float)(2.0 * M_PI) / f;
        if (wavelen < high_freq_wavelen) continue;  // high frequencies: unchanged
        if (wavelen > low_freq_wavelen) {           // low frequencies: slowed down `factor` times
            freqs[i] = f / scale_factor;
            continue;
        }
        float smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
        freqs[i] = (1.0f - smooth) * f / scale_factor + smooth * f;
    }
}

void rope_freqs_cis_cpu(float *freqs_cis, const float *freqs, int head_dim, int n_pos) {
    int half = head_dim / 2;
    for (int pos = 0; pos < n_pos; pos++)
        for (int i = 0; i < half; i++) {
            float angle = (float)pos * freqs[i];  // torch.outer(t, freqs) in float32
            float *cs = freqs_cis + ((size_t)pos * (size_t)half + (size_t)i) * 2;
            cs[0] = cosf(angle);
            cs[1] = sinf(angle);
        }
}

static void rope_check(const char *who, int T, int n_heads, int head_dim, int start_pos) {
    if (T < 0 || n_heads <= 0 || head_dim <= 0 || head_dim % 2 || start_pos < 0)
        fatal("%s: bad shape T=%d n_heads=%d head_dim=%d start_pos=%d (head_dim must be even)", who, T, n_heads,
              head_dim, start_pos);
}

void rope_forward_cpu(float *out, const float *inp, const float *freqs_cis, int T, int n_heads, int head_dim,
                      int start_pos, Precision p) {
    rope_check("rope_forward_cpu", T, n_heads, head_dim, start_pos);
    int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *cs_row = freqs_cis + (size_t)(start_pos + t) * (size_t)half * 2;
        for (int h = 0; h < n_heads; h++) {
            size_t base = ((size_t)t * (size_t)n_heads + (size_t)h) * (size_t)head_dim;
            for (int i = 0; i < half; i++) {
                float c = cs_row[2 * i], s = cs_row[2 * i + 1];
                float x_even = inp[base + 2 * i], x_odd = inp[base + 2 * i + 1];  // x1 = x[0::2], x2 = x[1::2]
                float y_even = x_even * c - x_odd * s;
                float y_odd = x_even * s + x_odd * c;
                out[base + 2 * i] = act_round(y_even, p);  // `.type_as(xq)`
                out[base + 2 * i + 1] = act_round(y_odd, p);
            }
        }
    }
}

void rope_forward_complex_cpu(float *out, const float *inp, const float *freqs_cis, int T, int n_heads,
                              int head_dim, int start_pos, Precision p) {
    rope_check("rope_forward_complex_cpu", T, n_heads, head_dim, start_pos);
    int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *cs_row = freqs_cis + (size_t)(start_pos + t) * (size_t)half * 2;
        for (int h = 0; h < n_heads; h++) {
            size_t base = ((size_t)t * (size_t)n_heads + (size_t)h) * (size_t)head_dim;
            for (int i = 0; i < half; i++) {
                // q_per_token_as_complex_numbers = view_as_complex(q.float().view(T, 64, 2))
                float complex x = CMPLXF(inp[base + 2 * i], inp[base + 2 * i + 1]);
                float complex rotation = CMPLXF(cs_row[2 * i], cs_row[2 * i + 1]);  // freqs_cis[pos][i]
                float complex y = x * rotation;
                out[base + 2 * i] = act_round(crealf(y), p);  // view_as_real(...).flatten(), then type_as
                out[base + 2 * i + 1] = act_round(cimagf(y), p);
            }
        }
    }
}
