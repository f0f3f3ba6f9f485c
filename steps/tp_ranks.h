// tp_ranks.h: what chapter 18 (steps/18_tensor_parallel.c) computes on N ranks, and the CUDA ways to compute it.
//
// TpRun holds every per-rank tensor with a leading [N] axis, and the results of the communication (the all-reduced
// sums, the gathered logits). Shapes: T tokens, D dim, Dh head dim; per rank (common/tp.h) heads = H/N query heads,
// kv = the kv heads it holds, ffn = F/N, vocab = V/N.
//
// The CPU emulation is written out in the chapter itself. The CUDA path runs the same steps per rank:
//   tp_run_cuda_one_gpu   every rank one after another on GPU 0, the all-reduce a sum on the device in rank order
//                         (the chapter with fewer GPUs than ranks)
//   tp_run_nccl           one process per rank, each on its own GPU (device r), the all-reduces and the gather of
//                         the logits NCCL's (ncclAllReduce, ncclAllGather); NCCL_NVLS_ENABLE=0 (no NVLink multicast)
// Both take the layer's input x_in [T, D] and the last token's final normalised embedding xn_last [D] from the
// caller, so that they compute exactly what the CPU emulation computes from the same inputs.
#pragma once
#include "step.h"
#include "tp.h"

typedef struct {
    int N, T, D, Dh, heads, kv_heads, ffn, vocab;
    float *emb_part;          // [N, T, D]    rank r's rows of tok_embeddings for the ids in its range, zeros elsewhere
    float *token_embeddings;  // [T, D]       all_reduce(emb_part): the embedding
    float *q, *k, *v;         // [N, T, heads*Dh], [N, T, kv*Dh] x2   q and k rotated
    float *attn;              // [N, T, heads*Dh]  its heads' attention outputs
    float *delta_part;        // [N, T, D]    attn_r · wo_rᵀ
    float *delta;             // [T, D]       all_reduce(delta_part) = embedding_delta
    float *h, *hn;            // [T, D]       x + delta, rms_norm(h, ffn_norm) (every rank computes them)
    float *hidden;            // [N, T, ffn]  silu(hn · w1_rᵀ) * (hn · w3_rᵀ)
    float *ffn_part;          // [N, T, D]    hidden_r · w2_rᵀ
    float *ffn_out;           // [T, D]       all_reduce(ffn_part) = output_after_feedforward
    float *out;               // [T, D]       h + ffn_out: the layer's output
    float *logits_part;       // [N, vocab]   the last token's logits of rank r's vocabulary rows (fp32)
    float *logits;            // [V]          all_gather(logits_part)
} TpRun;

void tp_run_alloc(TpRun *run, const Config *c, int T, int n_ranks);
void tp_run_free(TpRun *run);

// wo or w2 [D, full] -> its columns [c0, c0 + n) as a contiguous [D, n] matrix (a row-parallel rank's weight).
uint16_t *tp_weight_columns(const uint16_t *w, int rows, int full, int c0, int n);

// The CUDA ways (see above). The tokens are s->tokens; the layer is s->layer.
void tp_run_cuda_one_gpu(Step *s, int n_ranks, const float *x_in, const float *xn_last, TpRun *run);
// Starts n_ranks processes of this program (kernels/engine_ranks.h) that run tp_worker_main; when one fails, the
// others are ended, one line names the rank and its cause, and this process exits with the rank's status (2 for bad
// input, else 1).
void tp_run_nccl(Step *s, int n_ranks, const float *x_in, const float *xn_last, TpRun *run);
// The body of one such process (`--tp-rank R --tp-fd FD --tp-worker DIR`): fd is the coordinator's pipe with the
// NCCL id. Returns its exit status.
int tp_worker_main(const char *dir, int rank, int fd);
