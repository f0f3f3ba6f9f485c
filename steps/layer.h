// layer.h: one transformer layer exactly as the tutorial spells it out, with the tutorial's names, on both backends.
//
// Shapes: T tokens, D dim, H heads, Hkv kv heads, Dh head dim, F ffn hidden. One head h (and its kv head h/n_rep) is
// followed step by step as in chapters 04-10; all heads are computed batched (chapter 11) and the rest of the layer
// (chapters 12-13) follows from them.
//
// Chapters 03-13 each compute their own operation in their main(), the CPU reference and the CUDA kernel on the same
// inputs; what comes before it comes from layer_inputs_upto(), which runs the layer's ops up to that one: on the CPU
// reference, or, with --no-compare on CUDA (no CPU reference), on the CUDA path op by op, each op fed by the CUDA
// outputs before it, the values left in the LayerTrace under the same names. Chapters 14-16 run whole layers:
// layer_forward_cpu (the layer as one function) and model_layers_cuda.
#pragma once
#include "ref/ref_moe.h"
#include "step.h"

typedef struct {
    int layer, head, kv_head;
    int T, D, H, Hkv, Dh, F;
    float *x_in;              // [T, D]   token_embeddings_unnormalized (layer 0), else the previous layer's output
    float *x_norm;            // [T, D]   token_embeddings = rms_norm(x_in, attention_norm)
    float *rstd;              // [T]      1/rms of each row
    float *q_per_token;       // [T, Dh]  x_norm · wq[head]ᵀ
    float *k_per_token;       // [T, Dh]  x_norm · wk[kv_head]ᵀ
    float *v_per_token;       // [T, Dh]  x_norm · wv[kv_head]ᵀ
    float *q_per_token_rotated, *k_per_token_rotated;  // [T, Dh]
    float *qk_per_token;      // [T, T]   q·kᵀ/sqrt(Dh), fp32
    float *mask;              // [T, T]   0 on and below the diagonal, -inf above
    float *qk_per_token_after_masking;                  // [T, T]
    float *qk_per_token_after_masking_after_softmax;    // [T, T]
    float *qkv_attention;     // [T, Dh]
    float *q_all, *k_all, *v_all;  // [T, H*Dh], [T, Hkv*Dh], [T, Hkv*Dh] (q and k rotated)
    float *attn_weights_all;  // [H, T, T] every head's softmax
    float *stacked_qkv_attention;  // [T, D]
    float *embedding_delta;   // [T, D]   stacked · woᵀ
    float *embedding_after_edit;   // [T, D]  x_in + delta
    float *embedding_after_edit_normalized;  // [T, D]  rms_norm(., ffn_norm)
    float *ffn_gate, *ffn_up; // [T, F]   x·w1ᵀ, x·w3ᵀ
    float *ffn_hidden;        // [T, F]   silu(gate) * up
    float *output_after_feedforward;  // [T, D]  hidden · w2ᵀ (a MoE model: moe.moe_out)
    bool is_moe;              // a mixture-of-experts model: the FFN is MiniMind's MoE (chapter 20), ffn_* unused
    MoeTrace moe;             // its gate, routing and experts, for T tokens (is_moe only)
    float *layer_embedding;   // [T, D]   embedding_after_edit + output_after_feedforward
} LayerTrace;

// The weights of one layer, as step_weight gives them (bf16, contiguous; exit 2 naming a missing one).
typedef struct {
    const uint16_t *wq, *wk, *wv, *wo;        // [H*Dh, D], [Hkv*Dh, D] x2, [D, H*Dh]
    const uint16_t *w1, *w2, *w3;             // [F, D], [D, F], [F, D]
    const uint16_t *attention_norm, *ffn_norm;// [D]
} LayerWeights;
LayerWeights layer_weights(Step *s, int layer);

void layer_trace_alloc(LayerTrace *lt, const Step *s, int layer, int head);
void layer_trace_free(LayerTrace *lt);

// The ops of a layer in the order the tutorial computes them (chapters 02-13); each fills one field of LayerTrace.
typedef enum {
    OP_EMBED, OP_ATTN_NORM, OP_Q_HEAD, OP_ROPE_Q, OP_K_HEAD, OP_ROPE_K, OP_SCORES, OP_MASK, OP_SOFTMAX, OP_V_HEAD,
    OP_HEAD_VALUES, OP_Q_ALL, OP_K_ALL, OP_V_ALL, OP_ATTENTION_ALL, OP_WO, OP_RESIDUAL_ATTN, OP_FFN_NORM, OP_FFN_GATE,
    OP_FFN_UP, OP_SWIGLU, OP_FFN_DOWN, OP_RESIDUAL_FFN, OP_COUNT
} LayerOp;

// What a chapter of the layer starts with: lt allocated for (--layer, --head), its x_in computed through the layers
// before it, and the ops of this layer before `op` (OP_ATTN_NORM: none), on the CPU reference (the time added to
// the CPU's total), or on the CUDA path alone in a --no-compare run on CUDA. The chapter computes `op` itself.
void layer_inputs_upto(Step *s, LayerOp op, LayerTrace *lt);

// token_embeddings_unnormalized: the rows of tok_embeddings for the prompt's tokens, [T, D].
void embed_tokens_cpu(Step *s, float *out);
void embed_tokens_cuda(Step *s, float *out);
// The whole layer on the CPU from lt->x_in (which the caller fills): every op in order, every intermediate kept.
void layer_forward_cpu(Step *s, LayerTrace *lt);
// The whole stack on the CPU: stream [NL+1][T][D] receives the embeddings (row 0) and the output of every layer
// (row L+1); att_maps [NL][H][T][T] every layer's attention weights when not NULL. Progress on stderr unless --quiet.
void model_layers_cpu(Step *s, float *stream, float *att_maps);
// x_in of layer `layer`: the embeddings run through layers 0..layer-1 on the CPU. out [T, D].
void layer_input_cpu(Step *s, int layer, float *out);
// x_in of layer `layer` on the CUDA path: the embeddings through layers 0..layer-1 (model_layers_cuda). out [T, D].
void layer_input_cuda(Step *s, int layer, float *out);

// Prints and writes the weight `name` ("wq", "wk", "wv") of --layer viewed per head, [heads, Dh, D] as
// `<prefix>_layerL`, and the head `head` of it, [Dh, D] as `<prefix>_layerL_headK` (the tutorial's q_layer0 and
// q_layer0_head0).
void show_head_weights(Step *s, const char *prefix, const char *name, int heads, int head);

// The MoE feed-forward weights of layer L (a MoE model), host views (step_weight) or device copies (step_weight_dev);
// free the tables with moe_weights_free_tables.
void layer_moe_weights(Step *s, int layer, MoeWeights *w);
void layer_moe_weights_dev(Step *s, int layer, MoeWeights *w);

// Layers first_layer .. first_layer+n_layers-1 on the CUDA path, each op fed by the previous CUDA op: x_in [T, D] is
// the input of first_layer, out (host) receives the last layer's output. Per-layer outputs [n_layers][T, D] and
// attention maps [n_layers][H][T][T] go to the optional host arrays.
void model_layers_cuda(Step *s, const float *x_in, int first_layer, int n_layers, float *out, float *per_layer,
                       float *att_maps);
