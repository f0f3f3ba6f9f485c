// engine_model.cu: the device model of the engine (engine.h): the two allocations, loading, the forward pass for
// prefill (T > 1: cuBLAS products + fused row kernels) and decode (T = 1: fused GEMV kernels), the decode CUDA
// graph. The kernels are launched through kernels/engine_ops.h; bench/ times the calls of engine.h.
//
// Decode, one token, one layer (6 kernels; the comment is the line of Meta's model.py each implements):
//   gemv  RMSNORM -> wqkv -> QKV_ROPE   x = attention_norm(h); xq,xk,xv = wq,wk,wv(x); rotary; cache_k/v[pos] = xk,xv
//   attention scores, values            softmax(q·kᵀ/sqrt(Dh) + mask[start_pos]) · v over cache rows 0..pos
//   gemv  COPY -> wo -> RESIDUAL        h = x + self.attention.wo(out)
//   gemv  RMSNORM -> w13 -> SWIGLU      silu(w1(ffn_norm(h))) * w3(ffn_norm(h))
//   gemv  COPY -> w2 -> RESIDUAL        out = h + w2(...)
// and at the end  gemv RMSNORM -> output -> F32  (self.output(self.norm(h)).float()), then the logits to the host.
//
// Tensor parallelism (EngineOptions.tp_size N > 1; one process per GPU, kernels/engine_ranks.h): rank r holds its
// share of every weight (engine_plan.h: whole heads of wq/wk/wv and their columns of wo, FFN rows of w1/w3 and their
// columns of w2, vocabulary rows of tok_embeddings and output; the norms whole) and the cache of its kv heads, and
// runs the same kernels on them. Where Meta's fairscale layers communicate, the ranks do, over NCCL, on the engine's
// stream (inside the decode graph too):
//   embedding   its vocabulary rows, zeros for the ids of other ranks, then an all-reduce (sum) of [T, D] bf16
//   wo, w2      the partial product in fp32 [T, D] (each rank: its heads' or FFN rows' terms), an all-reduce (sum)
//               of fp32, then the one bf16 rounding and the residual add the single-GPU engine does
//   output      its vocabulary rows of the logits, all-gathered into [V] (rank 0 hands them to the caller)
// With N = 1 none of this runs: the share is the whole model and the code is the single-GPU engine's.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_plan.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"

typedef struct {
    uint16_t *attention_norm, *wqkv, *wo, *ffn_norm, *w13, *w2;
} LayerDev;

// A cuBLASLt matmul prepared for one shape of a short prefill (gemm below).
#define LT_MAX_T 32
#define LT_PLANS 64
typedef struct {
    int T, C, OC;                 // 0: empty
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    size_t ws;                    // workspace the algorithm needs
} LtPlan;

struct Engine {
    EngineOptions opt;
    EngineInfo info;
    Config cfg;
    // this rank's sizes (the whole model's when tp_size is 1): H, Hkv, F, V are its heads, FFN rows, vocabulary rows
    int D, H, Hkv, Dh, F, V, L, S, QKV, max_T;
    int tp, rank, V_full, vocab0;  // tensor parallelism: N ranks, this one, the whole vocabulary, its first row
    void *comm;                    // the NCCL communicator (tp > 1)
    float eps;
    uint8_t *weights, *state;     // the two device allocations
    LayerDev *layers;             // [L] pointers into weights
    uint16_t *tok_embeddings, *norm, *output;
    uint16_t *cache_k, *cache_v;  // [L][S][Hkv*Dh]
    // activations (in state)
    int32_t *d_tokens;            // [max_T]
    int *d_pos;                   // start_pos of the call
    uint16_t *h;                  // [max_T, D] residual stream
    uint16_t *xn;                 // [max_T, D] normalised
    uint16_t *qkv;                // [max_T, QKV]
    uint16_t *q;                  // [max_T, H*Dh] rotated
    uint16_t *att_out;            // [max_T, H*Dh]
    uint16_t *delta;              // [max_T, D]
    uint16_t *gu;                 // [max_T, 2F] (gate, up) pairs
    uint16_t *hidden;             // [max_T, F]
    float *scores;                // [max_T, H, S]
    float *attn_stats;            // [attn_slots, 2]: per chunk (max, sum exp) of a row (engine_attention.cu)
    float *partial;               // [attn_slots, Dh], attn_slots = max over T of T * H * engine_attn_splits(T, S)
    int *counters;                // [max_T, Hkv]
    int *sink;                    // engine_l2_fill's never-written output
    float *logits_dev;            // [V_full]: this rank's rows at vocab0 (all of them after the all-gather)
    float *part;                  // [max_T, D] fp32: a row-parallel product before its all-reduce (tp > 1)
    int32_t *d_ctl;               // engine_tp_broadcast's value
    float *freqs_cis;             // [S, Dh/2, 2]
    void *cublas_ws;
    size_t cublas_ws_bytes;
    // host
    float *logits_host;           // pinned [V_full]
    int32_t *params_host;         // pinned [2]: token, pos of the decode step
    cudaStream_t stream;
    cudaStream_t side;            // wo into L2 beside attention (l2_fill below); joined before the wo product
    cudaEvent_t ev_fork, ev_join;
    int l2_fill_blocks;           // 0: off (EngineOptions.l2_fill_per_sm = 0)
    EngineLaunch launch;          // the kernels' stream, PDL, GEMV batch (from the options)
    EngineLaunch side_launch;     // the same on the side stream
    cublasHandle_t cublas;
    cublasLtHandle_t lt;          // short prefills (T <= LT_MAX_T): cuBLASLt with the first split-K-free algorithm
    LtPlan lt_plans[LT_PLANS];    // per (T, C, OC), filled on first use
    int lt_next;                  // the slot the next new shape takes (round robin)
    cudaGraphExec_t graph;
    bool graph_ready;
    size_t peak_used;
};

static void lt_plan_release(LtPlan *p);

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

static void note_memory(Engine *e) {
    size_t free_b = 0, total_b = 0;
    cudaCheck(cudaMemGetInfo(&free_b, &total_b));
    if (total_b - free_b > e->peak_used) e->peak_used = total_b - free_b;
    e->info.gpu_total_bytes = total_b;
    e->info.gpu_used_bytes = total_b - free_b;
}

extern "C" void engine_options_default(EngineOptions *o) {
    memset(o, 0, sizeof *o);
    o->device = 0;
    o->max_seq_len = 2048;
    o->max_prefill = 0;  // min(S, 512)
    o->use_graphs = true;
    o->gemv = ENGINE_GEMV_OURS;
    o->load_threads = 8;
    o->gemv_batch = 0;
    o->pdl = true;
    o->l2_fill_per_sm = 4;
}

extern "C" bool engine_available(void) { return cuda_device_count() > 0; }

static void gib(char *buf, size_t n, size_t bytes) { snprintf(buf, n, "%.2f GiB", (double)bytes / 1073741824.0); }

extern "C" Engine *engine_create(const Checkpoint *ck, const EngineOptions *opt) {
    if (!ck->has_config) input_error(ck->path, "no params.json or config.json: the model's shape is unknown");
    checkpoint_check_against_config(ck);
    const int n_dev = cuda_device_count(), tp = opt->tp_size > 1 ? opt->tp_size : 1;
    if (n_dev == 0)
        fatal("engine_create: no CUDA device (%s)", tp > 1 ? "tensor parallelism needs one GPU per rank" : "use --device cpu");
    if (tp > 1 && (opt->tp_rank < 0 || opt->tp_rank >= tp || !opt->nccl_id))
        fatal("engine_create: tp_rank %d of tp_size %d (and the NCCL id)", opt->tp_rank, tp);
    if (opt->device < 0 || opt->device >= n_dev)
        fatal("engine_create: no CUDA device %d: this machine has %d%s", opt->device, n_dev,
              tp > 1 ? " (tensor parallelism needs one GPU per rank)" : "");
    Engine *e = (Engine *)calloc(1, sizeof(Engine));
    e->opt = *opt;
    e->cfg = ck->cfg;
    const Config *c = &e->cfg;
    // this rank's share of the weights and where each goes (the whole model for tp = 1); exits 2 when tp does not
    // split the model
    EnginePlan plan;
    engine_plan_weights(&plan, ck, tp, tp > 1 ? opt->tp_rank : 0);
    e->tp = tp, e->rank = plan.slice.rank, e->V_full = c->vocab_size, e->vocab0 = plan.slice.vocab0;
    e->D = c->dim, e->H = plan.H, e->Hkv = plan.Hkv, e->Dh = c->head_dim, e->F = plan.F;
    e->V = plan.V, e->L = c->n_layers, e->S = opt->max_seq_len, e->eps = (float)c->norm_eps;
    e->QKV = plan.QKV;
    e->info.tp_size = tp, e->info.tp_rank = e->rank;
    if (e->S < 1) fatal("engine_create: max_seq_len %d", e->S);
    e->max_T = opt->max_prefill > 0 ? opt->max_prefill : (e->S < 512 ? e->S : 512);
    if (e->max_T > e->S) e->max_T = e->S;
    if (e->D % 8 || e->F % 8 || (e->H * e->Dh) % 8)
        input_error(ck->path, "dim %d, ffn hidden %d: the engine needs multiples of 8 (16-byte rows)", e->D, e->F);
    if (!(opt->gemv_batch == 0 || opt->gemv_batch == 2 || opt->gemv_batch == 4 || opt->gemv_batch == 8) ||
        opt->l2_fill_per_sm < 0)
        fatal("engine_create: gemv_batch %d (0, 2, 4 or 8), l2_fill_per_sm %d (>= 0)", opt->gemv_batch,
              opt->l2_fill_per_sm);

    cudaCheck(cudaSetDevice(opt->device));
    cuda_init(opt->device);  // the shared handles of kernels/ (device selection, context)
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, opt->device));
    // Programmatic dependent launch on sm_90 and later (opt->pdl = false turns it off): since the GEMV issues its
    // first weight loads before waiting, it gains 0-1% in decode and 4% in the 17-token prefill on an H200.
    e->info.pdl = opt->pdl && prop.major >= 9;
    snprintf(e->info.device_name, sizeof e->info.device_name, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major,
             prop.minor, (double)prop.totalGlobalMem / 1073741824.0);
    // the ranks join here (each blocks until all have): a rank that failed before makes the others wait, and the
    // coordinator of the processes ends them (engine_ranks.h)
    if (tp > 1) e->comm = nccl_comm_init((const uint8_t *)opt->nccl_id, tp, e->rank);

    e->info.weight_bytes = plan.bytes;
    e->info.bytes_per_token = plan.bytes_per_token;
    const size_t D = (size_t)e->D, F = (size_t)e->F, QKV = (size_t)e->QKV, HD = (size_t)e->H * e->Dh,
                 KVD = (size_t)e->Hkv * e->Dh;
    // layout of the state allocation
    const size_t T = (size_t)e->max_T, S = (size_t)e->S;
    size_t s_off = 0;
#define CARVE(var, bytes) size_t var = s_off; s_off = align_up(s_off + (bytes));
    CARVE(o_cache_k, (size_t)e->L * S * KVD * 2)
    CARVE(o_cache_v, (size_t)e->L * S * KVD * 2)
    size_t act_start = s_off;
    CARVE(o_tokens, T * 4)
    CARVE(o_pos, 16)
    CARVE(o_h, T * D * 2)
    CARVE(o_xn, T * D * 2)
    CARVE(o_qkv, T * QKV * 2)
    CARVE(o_q, T * HD * 2)
    CARVE(o_att, T * HD * 2)
    CARVE(o_delta, T * D * 2)
    CARVE(o_gu, T * 2 * F * 2)
    CARVE(o_hidden, T * F * 2)
    CARVE(o_scores, T * (size_t)e->H * S * 4)
    // T = 1 may use more chunks per row than T > 1 (engine_ops.h): the scratch holds the larger of the two
    size_t slots_decode = (size_t)e->H * (size_t)engine_attn_splits(1, e->S);
    size_t slots_prefill = T * (size_t)e->H * (size_t)engine_attn_splits(2, e->S);
    size_t attn_slots = slots_decode > slots_prefill ? slots_decode : slots_prefill;
    CARVE(o_stats, attn_slots * 2 * 4)
    CARVE(o_partial, attn_slots * (size_t)e->Dh * 4)
    CARVE(o_counters, T * (size_t)e->Hkv * 4)
    CARVE(o_sink, 4)
    CARVE(o_logits, (size_t)e->V_full * 4)
    CARVE(o_part, tp > 1 ? T * D * 4 : 0)
    CARVE(o_ctl, 16)
    CARVE(o_freqs, S * (size_t)e->Dh * 4)
    e->cublas_ws_bytes = 32u << 20;
    CARVE(o_ws, e->cublas_ws_bytes)
#undef CARVE
    e->info.state_bytes = s_off;
    e->info.cache_bytes = act_start;

    // ---- does it fit?
    size_t free_b = 0, total_b = 0;
    cudaCheck(cudaMemGetInfo(&free_b, &total_b));
    const size_t margin = 256u << 20;  // cuBLAS kernels, the graph, fragmentation
    if (e->info.weight_bytes + e->info.state_bytes + margin > free_b) {
        char a[32], b[32], cc[32], d[32], f[32];
        gib(a, sizeof a, free_b), gib(b, sizeof b, e->info.weight_bytes + e->info.state_bytes + margin);
        gib(cc, sizeof cc, e->info.weight_bytes), gib(d, sizeof d, e->info.cache_bytes);
        gib(f, sizeof f, e->info.state_bytes - e->info.cache_bytes + margin);
        fatal("the GPU (%s) has %s free, this model needs %s: weights %s, KV cache %s for --max-seq-len %d, "
              "activations and scratch %s. Use a smaller --max-seq-len, or a GPU with more memory.",
              e->info.device_name, a, b, cc, d, e->S, f);
    }
    cudaCheck(cudaMalloc((void **)&e->weights, e->info.weight_bytes));
    cudaCheck(cudaMalloc((void **)&e->state, e->info.state_bytes));
    cudaCheck(cudaMemset(e->state, 0, e->info.state_bytes));

    // ---- pointers
    e->layers = (LayerDev *)calloc((size_t)e->L, sizeof(LayerDev));
    for (int l = 0; l < e->L; l++) {
        const EngineLayerOffsets *o = &plan.layer[l];
        LayerDev *ld = &e->layers[l];
        ld->attention_norm = (uint16_t *)(e->weights + o->attention_norm);
        ld->wqkv = (uint16_t *)(e->weights + o->wqkv);
        ld->wo = (uint16_t *)(e->weights + o->wo);
        ld->ffn_norm = (uint16_t *)(e->weights + o->ffn_norm);
        ld->w13 = (uint16_t *)(e->weights + o->w13);
        ld->w2 = (uint16_t *)(e->weights + o->w2);
    }
    e->tok_embeddings = (uint16_t *)(e->weights + plan.tok_embeddings);
    e->norm = (uint16_t *)(e->weights + plan.norm);
    e->output = (uint16_t *)(e->weights + plan.output);
    e->cache_k = (uint16_t *)(e->state + o_cache_k);
    e->cache_v = (uint16_t *)(e->state + o_cache_v);
    e->d_tokens = (int32_t *)(e->state + o_tokens);
    e->d_pos = (int *)(e->state + o_pos);
    e->h = (uint16_t *)(e->state + o_h);
    e->xn = (uint16_t *)(e->state + o_xn);
    e->qkv = (uint16_t *)(e->state + o_qkv);
    e->q = (uint16_t *)(e->state + o_q);
    e->att_out = (uint16_t *)(e->state + o_att);
    e->delta = (uint16_t *)(e->state + o_delta);
    e->gu = (uint16_t *)(e->state + o_gu);
    e->hidden = (uint16_t *)(e->state + o_hidden);
    e->scores = (float *)(e->state + o_scores);
    e->attn_stats = (float *)(e->state + o_stats);
    e->partial = (float *)(e->state + o_partial);
    e->counters = (int *)(e->state + o_counters);
    e->sink = (int *)(e->state + o_sink);
    e->logits_dev = (float *)(e->state + o_logits);
    e->part = tp > 1 ? (float *)(e->state + o_part) : NULL;
    e->d_ctl = (int32_t *)(e->state + o_ctl);
    e->freqs_cis = (float *)(e->state + o_freqs);
    e->cublas_ws = e->state + o_ws;

    // ---- upload: the plan's jobs (w1/w3 rows interleaved by the destination pitch, wo/w2 columns by the source's)
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    engine_upload(plan.jobs, plan.n_jobs, e->weights, opt->device, opt->load_threads, ck->files, ck->n_files,
                  opt->quiet);
    cudaCheck(cudaDeviceSynchronize());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    e->info.load_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    engine_plan_free(&plan);

    // ---- RoPE table: the CPU's own numbers, so both backends rotate by bit-identical cos/sin
    int half = e->Dh / 2;
    float *freqs = (float *)malloc(sizeof(float) * (size_t)half);
    float *fc = (float *)malloc(sizeof(float) * (size_t)e->S * (size_t)e->Dh);
    rope_freqs_cpu(freqs, e->Dh, c->rope_theta, config_rope_scaling(c));
    rope_freqs_cis_cpu(fc, freqs, e->Dh, e->S);
    cudaCheck(cudaMemcpy(e->freqs_cis, fc, sizeof(float) * (size_t)e->S * (size_t)e->Dh, cudaMemcpyHostToDevice));
    free(freqs), free(fc);

    cudaCheck(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    cudaCheck(cudaStreamCreateWithFlags(&e->side, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&e->ev_fork, cudaEventDisableTiming));
    cudaCheck(cudaEventCreateWithFlags(&e->ev_join, cudaEventDisableTiming));
    e->l2_fill_blocks = opt->l2_fill_per_sm * prop.multiProcessorCount;
    e->launch = (EngineLaunch){e->stream, e->info.pdl, opt->gemv_batch};
    e->side_launch = (EngineLaunch){e->side, false, opt->gemv_batch};  // l2_fill: a plain launch, as before
    cublasCheck(cublasCreate(&e->cublas));
    cublasCheck(cublasSetStream(e->cublas, e->stream));
    cublasCheck(cublasSetWorkspace(e->cublas, e->cublas_ws, e->cublas_ws_bytes));
    cublasCheck(cublasLtCreate(&e->lt));
    cudaCheck(cudaHostAlloc((void **)&e->logits_host, (size_t)e->V_full * sizeof(float), cudaHostAllocDefault));
    cudaCheck(cudaHostAlloc((void **)&e->params_host, 4 * sizeof(int32_t), cudaHostAllocDefault));
    note_memory(e);
    return e;
}

extern "C" void engine_free(Engine *e) {
    if (!e) return;
    if (e->comm) {
        cudaCheck(cudaStreamSynchronize(e->stream));
        nccl_comm_destroy(e->comm);
    }
    if (e->graph_ready) cudaCheck(cudaGraphExecDestroy(e->graph));
    cublasCheck(cublasDestroy(e->cublas));
    for (int i = 0; i < LT_PLANS; i++) lt_plan_release(&e->lt_plans[i]);
    cublasCheck(cublasLtDestroy(e->lt));
    cudaCheck(cudaStreamDestroy(e->stream));
    cudaCheck(cudaStreamDestroy(e->side));
    cudaCheck(cudaEventDestroy(e->ev_fork));
    cudaCheck(cudaEventDestroy(e->ev_join));
    cudaCheck(cudaFreeHost(e->logits_host));
    cudaCheck(cudaFreeHost(e->params_host));
    cudaCheck(cudaFree(e->weights));
    cudaCheck(cudaFree(e->state));
    free(e->layers);
    free(e);
}

extern "C" const EngineInfo *engine_info(const Engine *e) { return &e->info; }
extern "C" size_t engine_peak_gpu_bytes(Engine *e) {
    note_memory(e);
    return e->peak_used;
}

// ---- the forward pass ------------------------------------------------------------------------------------------------
// out[T, OC] = in[T, C] · W[OC, C]ᵀ (row-major; see kernels/matmul_cublas.cu for the transposes)
// A few tokens (2..LT_MAX_T: a short prompt) go through cuBLASLt with the first algorithm of its heuristic list that
// does not split K: at T = 17 on an H200 cublasGemmEx's choice for wo splits K over two blocks plus a reduction kernel
// (17.7 us) where the split-free one takes 12.6 us, and for w2 35.1 against 32.1 us (bench/NOTES.md). The rule is
// fixed (no timing), so the choice, and the bits, are the same in every run on a given GPU and cuBLAS. (A tensor-core
// kernel of our own for these shapes was measured slower than cuBLAS and removed: bench/NOTES.md, session 1.)
// T = 1 here is the cuBLAS decode path kept for comparison, so it stays on cublasGemmEx, as do longer prompts.
static void lt_plan_release(LtPlan *p) {
    if (!p->T) return;
    cublasCheck(cublasLtMatrixLayoutDestroy(p->a));
    cublasCheck(cublasLtMatrixLayoutDestroy(p->b));
    cublasCheck(cublasLtMatrixLayoutDestroy(p->c));
    cublasCheck(cublasLtMatmulDescDestroy(p->op));
    p->T = 0;
}

// The plan for (T, C, OC), made on first use; NULL when cuBLASLt offers no split-free algorithm that fits.
static const LtPlan *lt_plan(Engine *e, int T, int C, int OC) {
    for (int i = 0; i < LT_PLANS; i++) {
        const LtPlan *p = &e->lt_plans[i];
        if (p->T == T && p->C == C && p->OC == OC) return p->ws == (size_t)-1 ? NULL : p;
    }
    LtPlan *p = &e->lt_plans[e->lt_next];
    e->lt_next = (e->lt_next + 1) % LT_PLANS;
    lt_plan_release(p);
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    cublasCheck(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, C, OC, C));   // W as column-major [C, OC]
    cublasCheck(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, C, T, C));    // in as column-major [C, T]
    cublasCheck(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_16BF, OC, T, OC));  // out as column-major [OC, T]
    p->T = T, p->C = C, p->OC = OC, p->ws = (size_t)-1;
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &e->cublas_ws_bytes, sizeof e->cublas_ws_bytes));
    cublasLtMatmulHeuristicResult_t res[16];
    int n = 0;
    if (cublasLtMatmulAlgoGetHeuristic(e->lt, p->op, p->a, p->b, p->c, p->c, pref, 16, res, &n) != CUBLAS_STATUS_SUCCESS)
        n = 0;
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    for (int i = 0; i < n; i++) {
        int splitk = 1;
        size_t got = 0;
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        if (cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk,
                                                 &got) != CUBLAS_STATUS_SUCCESS)
            continue;
        if (splitk <= 1) {
            p->algo = res[i].algo;
            p->ws = res[i].workspaceSize;
            return p;
        }
    }
    return NULL;
}

static void gemm(Engine *e, uint16_t *out, const uint16_t *in, const uint16_t *w, int T, int C, int OC) {
    const float alpha = 1.0f, beta = 0.0f;
    const LtPlan *p = T > 1 && T <= LT_MAX_T ? lt_plan(e, T, C, OC) : NULL;
    if (p) {
        cublasCheck(cublasLtMatmul(e->lt, p->op, &alpha, w, p->a, in, p->b, &beta, out, p->c, out, p->c, &p->algo,
                                   e->cublas_ws, e->cublas_ws_bytes, e->stream));
        return;
    }
    cublasCheck(cublasGemmEx(e->cublas, CUBLAS_OP_T, CUBLAS_OP_N, OC, T, C, &alpha, w, CUDA_R_16BF, C, in, CUDA_R_16BF,
                             C, &beta, out, CUDA_R_16BF, OC, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
// The same product with the fp32 sums kept (a rank's partial of a row-parallel product, before the all-reduce)
static void gemm_f32(Engine *e, float *out, const uint16_t *in, const uint16_t *w, int T, int C, int OC) {
    const float alpha = 1.0f, beta = 0.0f;
    cublasCheck(cublasGemmEx(e->cublas, CUBLAS_OP_T, CUBLAS_OP_N, OC, T, C, &alpha, w, CUDA_R_16BF, C, in, CUDA_R_16BF,
                             C, &beta, out, CUDA_R_32F, OC, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// ---- where the ranks talk (tp > 1); with one rank each is the single-GPU engine's step ------------------------------
// h[T, D] = tok_embeddings[tokens]: this rank's vocabulary rows, zeros for the ids of the others, summed over the
// ranks (fairscale's VocabParallelEmbedding; a sum of one row and zeros is exact)
static void embed(Engine *e, int T) {
    engine_embedding(e->h, e->d_tokens, e->tok_embeddings, e->vocab0, e->V, T, e->D, &e->launch);
    if (e->tp > 1) nccl_all_reduce_sum_on(e->comm, e->h, (size_t)T * e->D, PREC_BF16, e->stream);
}
// Decode: h = h + bf16(x · Wᵀ) for wo (C = H*Dh) and w2 (C = F), row-parallel: one GPU fuses it into the GEMV's
// epilogue; over ranks each GEMV gives its fp32 partial sums, the all-reduce adds them, then the same rounding and add.
static void gemv_residual(Engine *e, const uint16_t *w, const uint16_t *x, int C) {
    GemvArgs a;
    memset(&a, 0, sizeof a);
    a.w = w, a.C = C, a.OC = e->D, a.x = x;
    if (e->tp == 1) {
        a.resid = e->h;
        engine_gemv(&a, GEMV_PRO_COPY, GEMV_EPI_RESIDUAL, &e->launch);
        return;
    }
    a.out_f32 = e->part;
    engine_gemv(&a, GEMV_PRO_COPY, GEMV_EPI_F32, &e->launch);
    nccl_all_reduce_sum_on(e->comm, e->part, (size_t)e->D, PREC_FP32, e->stream);
    engine_residual_f32(e->h, e->part, (size_t)e->D, &e->launch);
}
// Prefill: delta [T, D] = bf16(x · Wᵀ) of wo or w2 (the add follows in engine_add_rmsnorm); over ranks the fp32
// partial sums are all-reduced first, then rounded once
static void gemm_row_parallel(Engine *e, const uint16_t *w, const uint16_t *x, int T, int C) {
    if (e->tp == 1) {
        gemm(e, e->delta, x, w, T, C, e->D);
        return;
    }
    gemm_f32(e, e->part, x, w, T, C, e->D);
    nccl_all_reduce_sum_on(e->comm, e->part, (size_t)T * e->D, PREC_FP32, e->stream);
    engine_round_bf16(e->delta, e->part, (size_t)T * e->D, &e->launch);
}
// logits_dev [V_full]: this rank wrote its vocabulary rows at vocab0; every rank gets all of them
static void gather_logits(Engine *e) {
    if (e->tp > 1) nccl_all_gather_f32_on(e->comm, e->logits_dev + e->vocab0, e->logits_dev, (size_t)e->V, e->stream);
}

static uint16_t *layer_cache(const Engine *e, uint16_t *cache, int l) {
    return cache + (size_t)l * (size_t)e->S * (size_t)e->Hkv * (size_t)e->Dh;
}

// Decode attention reads little (q and this layer's cache) and leaves DRAM mostly idle. Beside it, on a side stream,
// a kernel reads the layer's wo matrix (32 MiB at 8B, less than L2) so that the wo product right after streams it
// from L2. fork: after the qkv product; join: before the wo product. Measured on an H200 (bench/NOTES.md): decode
// 229.6 -> 233.2 tok/s; in the 17-token prefill it cost 0.05-0.2 ms (cuBLAS's products and the fill compete), so
// only decode uses it. EngineOptions.l2_fill_per_sm: blocks per SM (default 4), 0 turns it off.
static void l2_fill_fork(Engine *e, const uint16_t *w, size_t bytes) {
    if (!e->l2_fill_blocks) return;
    cudaCheck(cudaEventRecord(e->ev_fork, e->stream));
    cudaCheck(cudaStreamWaitEvent(e->side, e->ev_fork, 0));
    engine_l2_fill(w, bytes, e->sink, e->l2_fill_blocks, &e->side_launch);
    cudaCheck(cudaEventRecord(e->ev_join, e->side));
}
static void l2_fill_join(Engine *e) {
    if (e->l2_fill_blocks) cudaCheck(cudaStreamWaitEvent(e->stream, e->ev_join, 0));
}

// Decode, T = 1, through the fused GEMV kernels. The token is in d_tokens[0], its position in *d_pos.
static void forward_decode_gemv(Engine *e) {
    const EngineLaunch *st = &e->launch;
    const int D = e->D, HD = e->H * e->Dh;
    embed(e, 1);
    for (int l = 0; l < e->L; l++) {
        const LayerDev *w = &e->layers[l];
        uint16_t *ck = layer_cache(e, e->cache_k, l), *cv = layer_cache(e, e->cache_v, l);
        GemvArgs a;
        memset(&a, 0, sizeof a);
        // x = attention_norm(h); xq, xk, xv = wq(x), wk(x), wv(x); rotary; cache_k[pos], cache_v[pos] = xk, xv
        a.w = w->wqkv, a.C = D, a.OC = e->QKV, a.x = e->h, a.norm_w = w->attention_norm, a.eps = e->eps;
        a.out = e->q, a.q_rows = HD, a.k_rows = e->Hkv * e->Dh, a.head_dim = e->Dh;
        a.cache_k = ck, a.cache_v = cv, a.freqs_cis = e->freqs_cis, a.pos = e->d_pos;
        engine_gemv(&a, GEMV_PRO_RMSNORM, GEMV_EPI_QKV_ROPE, st);
        l2_fill_fork(e, w->wo, (size_t)D * (size_t)HD * 2);
        // softmax(q·kᵀ/sqrt(Dh) + mask) · v, keys 0..pos
        engine_attention(e->att_out, e->q, ck, cv, e->d_pos, 1, e->H, e->Hkv, e->Dh, e->S, e->scores, e->attn_stats,
                         e->partial, e->counters, st);
        l2_fill_join(e);
        // h = x + wo(out)
        gemv_residual(e, w->wo, e->att_out, HD);
        // silu(w1(ffn_norm(h))) * w3(ffn_norm(h))
        memset(&a, 0, sizeof a);
        a.w = w->w13, a.C = D, a.OC = 2 * e->F, a.x = e->h, a.norm_w = w->ffn_norm, a.eps = e->eps, a.out = e->hidden;
        a.head_dim = 2;
        engine_gemv(&a, GEMV_PRO_RMSNORM, GEMV_EPI_SWIGLU, st);
        // out = h + w2(...)
        gemv_residual(e, w->w2, e->hidden, e->F);
    }
    // self.output(self.norm(h)).float(): this rank's vocabulary rows
    GemvArgs a;
    memset(&a, 0, sizeof a);
    a.w = e->output, a.C = D, a.OC = e->V, a.x = e->h, a.norm_w = e->norm, a.eps = e->eps;
    a.out_f32 = e->logits_dev + e->vocab0;
    engine_gemv(&a, GEMV_PRO_RMSNORM, GEMV_EPI_F32, st);
    gather_logits(e);
}

// T tokens (d_tokens[0..T), positions *d_pos ..), through cuBLAS products and the fused row kernels. max_keys:
// start_pos + T when known on the host, 0 inside a graph (engine_attention).
static void forward_prefill(Engine *e, int T, int max_keys) {
    const EngineLaunch *st = &e->launch;
    const int D = e->D, HD = e->H * e->Dh, F = e->F;
    embed(e, T);
    for (int l = 0; l < e->L; l++) {
        const LayerDev *w = &e->layers[l];
        uint16_t *ck = layer_cache(e, e->cache_k, l), *cv = layer_cache(e, e->cache_v, l);
        // h += the previous layer's w2 output (fused), x = attention_norm(h)
        engine_add_rmsnorm(e->xn, e->h, l == 0 ? NULL : e->delta, w->attention_norm, T, D, e->eps, st);
        gemm(e, e->qkv, e->xn, w->wqkv, T, D, e->QKV);
        if (engine_attention_short_fits(T, max_keys)) {  // RoPE, the cache rows and attention in one kernel
            engine_attention_short(e->att_out, e->qkv, e->freqs_cis, ck, cv, e->d_pos, T, max_keys, e->H, e->Hkv,
                                   e->Dh, st);
        } else if (!e->opt.attn_kernels && engine_attention_gemm_fits(T, max_keys)) {  // long: tensor cores
            engine_rope_kv(e->q, ck, cv, e->qkv, e->freqs_cis, e->d_pos, T, e->H, e->Hkv, e->Dh, st);
            engine_attention_gemm(e->att_out, e->q, ck, cv, max_keys - T, T, e->H, e->Hkv, e->Dh, e->scores,
                                  e->cublas, st);
        } else {
            engine_rope_kv(e->q, ck, cv, e->qkv, e->freqs_cis, e->d_pos, T, e->H, e->Hkv, e->Dh, st);
            engine_attention(e->att_out, e->q, ck, cv, e->d_pos, T, e->H, e->Hkv, e->Dh, e->S, e->scores,
                             e->attn_stats, e->partial, e->counters, st);
        }
        gemm_row_parallel(e, w->wo, e->att_out, T, HD);
        engine_add_rmsnorm(e->xn, e->h, e->delta, w->ffn_norm, T, D, e->eps, st);  // h = x + wo(...); ffn_norm(h)
        gemm(e, e->gu, e->xn, w->w13, T, D, 2 * F);
        engine_swiglu_pairs(e->hidden, e->gu, T, F, st);
        gemm_row_parallel(e, w->w2, e->hidden, T, F);
    }
    // the last row only: h += w2 output, norm, output (the other rows' logits are never used)
    size_t last = (size_t)(T - 1) * (size_t)D;
    engine_add_rmsnorm(e->xn + last, e->h + last, e->delta + last, e->norm, 1, D, e->eps, st);
    GemvArgs a;
    memset(&a, 0, sizeof a);
    a.w = e->output, a.C = D, a.OC = e->V, a.x = e->xn + last, a.out_f32 = e->logits_dev + e->vocab0;
    engine_gemv(&a, GEMV_PRO_COPY, GEMV_EPI_F32, st);
    gather_logits(e);
}

static void check_tokens(const Engine *e, const int32_t *tokens, int T, int start_pos) {
    if (T < 1 || start_pos < 0 || start_pos + T > e->S)
        fatal("engine: positions %d..%d do not fit max_seq_len %d", start_pos, start_pos + T - 1, e->S);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= e->V_full)
            fatal("engine: token %d is outside the vocabulary [0, %d)", tokens[t], e->V_full);
}

// One chunk (T <= max_T) without the logits download: tokens and start_pos to the device, then the layers.
static void run_chunk(Engine *e, const int32_t *tokens, int T, int start_pos) {
    cudaCheck(cudaStreamSynchronize(e->stream));  // params_host may still be read by earlier work
    e->params_host[1] = start_pos;
    cudaCheck(cudaMemcpyAsync(e->d_tokens, tokens, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice, e->stream));
    cudaCheck(cudaMemcpyAsync(e->d_pos, &e->params_host[1], sizeof(int), cudaMemcpyHostToDevice, e->stream));
    if (T == 1 && e->opt.gemv == ENGINE_GEMV_OURS) forward_decode_gemv(e);
    else forward_prefill(e, T, start_pos + T);
}

// The logits to pinned host memory (queued; rank 0 only: the other ranks' callers never read them).
static void queue_logits_download(Engine *e) {
    if (e->rank == 0)
        cudaCheck(cudaMemcpyAsync(e->logits_host, e->logits_dev, sizeof(float) * (size_t)e->V_full,
                                  cudaMemcpyDeviceToHost, e->stream));
}
static const float *download_logits(Engine *e) {
    queue_logits_download(e);
    cudaCheck(cudaStreamSynchronize(e->stream));
    return e->rank == 0 ? e->logits_host : NULL;
}

extern "C" const float *engine_forward(Engine *e, const int32_t *tokens, int T, int start_pos) {
    check_tokens(e, tokens, T, start_pos);
    for (int done = 0; done < T; done += e->max_T) {
        int n = T - done < e->max_T ? T - done : e->max_T;
        run_chunk(e, tokens + done, n, start_pos + done);
    }
    return download_logits(e);
}

// The decode step as a graph: params (token, pos) from pinned host memory, the layers, the logits to the host.
static void capture_decode_graph(Engine *e) {
    cudaGraph_t g;
    cudaCheck(cudaStreamSynchronize(e->stream));
    cudaCheck(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
    cudaCheck(cudaMemcpyAsync(e->d_tokens, &e->params_host[0], sizeof(int32_t), cudaMemcpyHostToDevice, e->stream));
    cudaCheck(cudaMemcpyAsync(e->d_pos, &e->params_host[1], sizeof(int), cudaMemcpyHostToDevice, e->stream));
    if (e->opt.gemv == ENGINE_GEMV_OURS) forward_decode_gemv(e);
    else forward_prefill(e, 1, 0);
    queue_logits_download(e);
    cudaCheck(cudaStreamEndCapture(e->stream, &g));
    cudaCheck(cudaGraphInstantiate(&e->graph, g, 0));
    cudaCheck(cudaGraphDestroy(g));
    e->graph_ready = true;
    note_memory(e);
}

static void decode_launch(Engine *e, int32_t token, int pos) {
    if (!e->opt.use_graphs || (e->tp > 1 && !e->graph_ready)) {
        run_chunk(e, &token, 1, pos);
        queue_logits_download(e);
        // with tensor parallelism this first step ran uncaptured: NCCL sets up its connections on a collective's
        // first use, which a graph capture must not contain; the graph serves the next steps
        if (e->opt.use_graphs) capture_decode_graph(e);
        return;
    }
    if (!e->graph_ready) capture_decode_graph(e);
    e->params_host[0] = token;  // the previous step was synchronised: nothing reads these now
    e->params_host[1] = pos;
    cudaCheck(cudaGraphLaunch(e->graph, e->stream));
}

extern "C" const float *engine_decode(Engine *e, int32_t token, int pos) {
    check_tokens(e, &token, 1, pos);
    decode_launch(e, token, pos);
    cudaCheck(cudaStreamSynchronize(e->stream));
    return e->rank == 0 ? e->logits_host : NULL;
}

extern "C" int32_t engine_tp_broadcast(Engine *e, int32_t value) {
    if (e->tp == 1) return value;
    cudaCheck(cudaStreamSynchronize(e->stream));  // params_host may still be read by earlier work
    e->params_host[2] = value;
    if (e->rank == 0)
        cudaCheck(cudaMemcpyAsync(e->d_ctl, &e->params_host[2], sizeof(int32_t), cudaMemcpyHostToDevice, e->stream));
    nccl_broadcast_i32_on(e->comm, e->d_ctl, 1, 0, e->stream);
    cudaCheck(cudaMemcpyAsync(&e->params_host[2], e->d_ctl, sizeof(int32_t), cudaMemcpyDeviceToHost, e->stream));
    cudaCheck(cudaStreamSynchronize(e->stream));
    return e->params_host[2];
}

extern "C" void engine_set_gemv(Engine *e, EngineGemv gemv) {
    if (e->opt.gemv == gemv) return;
    cudaCheck(cudaStreamSynchronize(e->stream));
    note_memory(e);  // before the graph's memory is freed
    if (e->graph_ready) cudaCheck(cudaGraphExecDestroy(e->graph));
    e->graph_ready = false;
    e->opt.gemv = gemv;
}
