// tp_ranks.c: chapter 18's ranks on the CUDA path (tp_ranks.h): one after another on GPU 0, or one process per GPU
// with NCCL.
//
// A rank's work is four phases, each a few launches of kernels/ (the CPU emulation of the chapter in CUDA):
//   embed    its vocabulary rows of the ids in its range (Meta's masked lookup: other ids read row 0, then zeroed)
//   attn     q, k, v of its heads, RoPE, attention, the partial product with its columns of wo
//   ffn      gate and up of its F/N rows, SwiGLU, the partial product with its columns of w2
//   logits   the last token's logits of its vocabulary rows (fp32)
// Between them the communication: the embedding's and the two partial products' all-reduces (on one GPU: a sum on
// the device in rank order, rounded after each addition, exactly the CPU emulation's), then h = x + delta and the
// ffn_norm every rank computes, and at the end the gather of the logits.
//
// The processes of tp_run_nccl are this very program started again by kernels/engine_ranks.h (the engine's
// coordinator: fork + exec of /proc/self/exe, the NCCL id through a pipe, one line naming a failed rank) as
// `18_tensor_parallel --tp-rank R --tp-fd FD --tp-worker DIR`. DIR holds what the parent gives them (job.json:
// model, layer, precision, ranks, tokens; x_in.bin, xn_last.bin: float32) and what each rank gives back (rank_R.bin: its tensors in the order of TpRun, then the results every rank holds
// after the collectives, which the parent checks to be the same bits on every rank).
#include "tp_ranks.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_ranks.h"
#include "kernels.h"

// ---- TpRun ------------------------------------------------------------------------------------------------------------
void tp_run_alloc(TpRun *run, const Config *c, int T, int n_ranks) {
    TpSlice s0 = tp_slice(c, n_ranks, 0);
    memset(run, 0, sizeof *run);
    run->N = n_ranks, run->T = T, run->D = c->dim, run->Dh = c->head_dim;
    run->heads = s0.heads, run->kv_heads = s0.kv_heads, run->ffn = s0.ffn, run->vocab = s0.vocab;
    size_t N = (size_t)n_ranks, TD = (size_t)T * c->dim, HD = (size_t)run->heads * run->Dh, KD = (size_t)run->kv_heads * run->Dh;
    run->emb_part = xcalloc(N * TD, sizeof(float));
    run->token_embeddings = xcalloc(TD, sizeof(float));
    run->q = xcalloc(N * T * HD, sizeof(float));
    run->k = xcalloc(N * T * KD, sizeof(float));
    run->v = xcalloc(N * T * KD, sizeof(float));
    run->attn = xcalloc(N * T * HD, sizeof(float));
    run->delta_part = xcalloc(N * TD, sizeof(float));
    run->delta = xcalloc(TD, sizeof(float));
    run->h = xcalloc(TD, sizeof(float));
    run->hn = xcalloc(TD, sizeof(float));
    run->hidden = xcalloc(N * T * (size_t)run->ffn, sizeof(float));
    run->ffn_part = xcalloc(N * TD, sizeof(float));
    run->ffn_out = xcalloc(TD, sizeof(float));
    run->out = xcalloc(TD, sizeof(float));
    run->logits_part = xcalloc(N * (size_t)run->vocab, sizeof(float));
    run->logits = xcalloc((size_t)c->vocab_size, sizeof(float));
}

void tp_run_free(TpRun *run) {
    float *all[] = {run->emb_part, run->token_embeddings, run->q, run->k, run->v, run->attn, run->delta_part,
                    run->delta, run->h, run->hn, run->hidden, run->ffn_part, run->ffn_out, run->out,
                    run->logits_part, run->logits};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    memset(run, 0, sizeof *run);
}

uint16_t *tp_weight_columns(const uint16_t *w, int rows, int full, int c0, int n) {
    uint16_t *out = xmalloc((size_t)rows * n * sizeof(uint16_t));
    for (int y = 0; y < rows; y++) memcpy(out + (size_t)y * n, w + (size_t)y * full + c0, (size_t)n * sizeof(uint16_t));
    return out;
}

// ---- one rank on the GPU --------------------------------------------------------------------------------------------
// Device memory of this file: every buffer in one list, freed together.
typedef struct {
    void **p;
    int n;
} DevList;
static void *dev_alloc(DevList *l, size_t bytes) {
    l->p = xrealloc(l->p, (size_t)(l->n + 1) * sizeof(void *));
    void *d = cuda_malloc(bytes);
    cuda_poison(d, bytes);  // an element no kernel wrote shows up as NaN
    return l->p[l->n++] = d;
}
static void *dev_upload(DevList *l, const void *host, size_t bytes) {
    void *d = dev_alloc(l, bytes);
    cuda_memcpy_h2d(d, host, bytes);
    return d;
}
static void dev_free_all(DevList *l) {
    for (int i = 0; i < l->n; i++) cuda_free(l->p[i]);
    free(l->p);
    l->p = NULL, l->n = 0;
}

// A rank's weights on its device: row slices (contiguous) and the column slices of wo and w2.
typedef struct {
    const uint16_t *emb, *wq, *wk, *wv, *wo, *w1, *w3, *w2, *out, *attn_norm, *ffn_norm;
} RankWeights;

// What every phase needs besides the weights.
typedef struct {
    const Config *c;
    TpSlice sl;
    int T, L;
    Precision p;
    const int32_t *tokens;  // host [T]
    const float *freqs_cis; // device [T, Dh/2, 2]
    DevList *mem;
} RankCtx;

// token_embeddings part: Meta's VocabParallelEmbedding (ids outside the range read local row 0, then zeroed).
static void *phase_embed(const RankCtx *x, const RankWeights *w) {
    const int T = x->T, D = x->c->dim;
    int32_t *local = xmalloc((size_t)T * sizeof(int32_t));
    for (int t = 0; t < T; t++) {
        int id = x->tokens[t];
        local[t] = id >= x->sl.vocab0 && id < x->sl.vocab0 + x->sl.vocab ? id - x->sl.vocab0 : 0;
    }
    int32_t *d_local = dev_upload(x->mem, local, (size_t)T * sizeof(int32_t));
    void *e = dev_alloc(x->mem, act_bytes((size_t)T * D, x->p));
    embedding_forward_cuda(e, d_local, w->emb, T, D, x->sl.vocab, x->p);
    for (int t = 0; t < T; t++)
        if (!(x->tokens[t] >= x->sl.vocab0 && x->tokens[t] < x->sl.vocab0 + x->sl.vocab))
            cuda_memset((char *)e + act_bytes((size_t)t * D, x->p), 0, act_bytes((size_t)D, x->p));
    free(local);
    return e;
}

// q, k, v of the rank's heads (rotated), attention, and the partial product with its wo columns. xn: the layer's
// normalised input (device). The outputs land in the device buffers given.
static void phase_attn(const RankCtx *x, const RankWeights *w, const void *xn, void *q, void *k, void *v, void *attn,
                       void *partial) {
    const int T = x->T, D = x->c->dim, Dh = x->c->head_dim, HD = x->sl.heads * Dh, KD = x->sl.kv_heads * Dh;
    matmul_forward_cuda(q, xn, w->wq, T, D, HD, x->p);
    matmul_forward_cuda(k, xn, w->wk, T, D, KD, x->p);
    matmul_forward_cuda(v, xn, w->wv, T, D, KD, x->p);
    rope_forward_cuda(q, q, x->freqs_cis, T, x->sl.heads, Dh, 0, x->p);
    rope_forward_cuda(k, k, x->freqs_cis, T, x->sl.kv_heads, Dh, 0, x->p);
    float *att = dev_alloc(x->mem, (size_t)x->sl.heads * T * T * sizeof(float));
    attention_forward_cuda(attn, att, q, k, v, T, T, x->sl.heads, x->sl.kv_heads, Dh, 0, x->p);
    matmul_forward_cuda(partial, attn, w->wo, T, HD, D, x->p);
}

// hidden = silu(hn · w1_rᵀ) * (hn · w3_rᵀ), partial = hidden · w2_rᵀ.
static void phase_ffn(const RankCtx *x, const RankWeights *w, const void *hn, void *hidden, void *partial) {
    const int T = x->T, D = x->c->dim, FF = x->sl.ffn;
    void *up = dev_alloc(x->mem, act_bytes((size_t)T * FF, x->p));
    matmul_forward_cuda(hidden, hn, w->w1, T, D, FF, x->p);
    matmul_forward_cuda(up, hn, w->w3, T, D, FF, x->p);
    swiglu_forward_cuda(hidden, hidden, up, (size_t)T * FF, x->p);
    matmul_forward_cuda(partial, hidden, w->w2, T, FF, D, x->p);
}

// The rank's buffers of one run (device), for phase after phase.
typedef struct {
    void *emb, *q, *k, *v, *attn, *delta_part, *hidden, *ffn_part;
    float *logits_part;
} RankBufs;
static RankBufs rank_bufs(const RankCtx *x) {
    const size_t T = (size_t)x->T, D = (size_t)x->c->dim, Dh = (size_t)x->c->head_dim;
    RankBufs b;
    b.q = dev_alloc(x->mem, act_bytes(T * x->sl.heads * Dh, x->p));
    b.k = dev_alloc(x->mem, act_bytes(T * x->sl.kv_heads * Dh, x->p));
    b.v = dev_alloc(x->mem, act_bytes(T * x->sl.kv_heads * Dh, x->p));
    b.attn = dev_alloc(x->mem, act_bytes(T * x->sl.heads * Dh, x->p));
    b.delta_part = dev_alloc(x->mem, act_bytes(T * D, x->p));
    b.hidden = dev_alloc(x->mem, act_bytes(T * x->sl.ffn, x->p));
    b.ffn_part = dev_alloc(x->mem, act_bytes(T * D, x->p));
    b.logits_part = dev_alloc(x->mem, (size_t)x->sl.vocab * sizeof(float));
    b.emb = NULL;
    return b;
}
// Rank r's tensors of a RankBufs into run (host), at rank r's place.
static void download_rank(const RankCtx *x, const RankBufs *b, TpRun *run, int r) {
    const size_t T = (size_t)x->T, D = (size_t)x->c->dim, TD = T * D;
    const size_t HD = (size_t)run->heads * run->Dh, KD = (size_t)run->kv_heads * run->Dh;
    cuda_download_act(run->emb_part + r * TD, b->emb, TD, x->p);
    cuda_download_act(run->q + r * T * HD, b->q, T * HD, x->p);
    cuda_download_act(run->k + r * T * KD, b->k, T * KD, x->p);
    cuda_download_act(run->v + r * T * KD, b->v, T * KD, x->p);
    cuda_download_act(run->attn + r * T * HD, b->attn, T * HD, x->p);
    cuda_download_act(run->delta_part + r * TD, b->delta_part, TD, x->p);
    cuda_download_act(run->hidden + r * T * run->ffn, b->hidden, T * run->ffn, x->p);
    cuda_download_act(run->ffn_part + r * TD, b->ffn_part, TD, x->p);
    cuda_memcpy_d2h(run->logits_part + (size_t)r * run->vocab, b->logits_part, (size_t)run->vocab * sizeof(float));
}

// ---- every rank on GPU 0 --------------------------------------------------------------------------------------------
void tp_run_cuda_one_gpu(Step *s, int N, const float *x_in, const float *xn_last, TpRun *run) {
    const Config *c = s->cfg;
    const int T = s->T, D = c->dim, Dh = c->head_dim, L = s->layer;
    const size_t TD = (size_t)T * D;
    const Precision p = s->prec;
    const float eps = (float)c->norm_eps;
    double t0 = step_clock();
    DevList mem = {0};
#define W(name) step_weight_dev(s, "layers.%d." name, L)
    const uint16_t *emb = step_weight_dev(s, "tok_embeddings.weight"), *out_w = step_weight_dev(s, "output.weight");
    const uint16_t *wq = W("attention.wq.weight"), *wk = W("attention.wk.weight"), *wv = W("attention.wv.weight");
    const uint16_t *w1 = W("feed_forward.w1.weight"), *w3 = W("feed_forward.w3.weight");
    const uint16_t *wo_host = step_weight(s, NULL, "layers.%d.attention.wo.weight", L);
    const uint16_t *w2_host = step_weight(s, NULL, "layers.%d.feed_forward.w2.weight", L);
    void *d_x = step_dev_act(s, x_in, TD), *d_xn = step_dev_act(s, NULL, TD), *d_xl = step_dev_act(s, xn_last, (size_t)D);
    rmsnorm_forward_cuda(d_xn, NULL, d_x, W("attention_norm.weight"), T, D, eps, p);  // every rank's x_norm
    void *sum_emb = step_dev_act(s, NULL, TD), *sum_delta = step_dev_act(s, NULL, TD), *sum_ffn = step_dev_act(s, NULL, TD);
    void *d_h = step_dev_act(s, NULL, TD), *d_hn = step_dev_act(s, NULL, TD), *d_out = step_dev_act(s, NULL, TD);
    float *d_logits = step_dev_alloc(s, (size_t)c->vocab_size * sizeof(float));
    RankCtx *ctx = xcalloc((size_t)N, sizeof(RankCtx));
    RankWeights *rw = xcalloc((size_t)N, sizeof(RankWeights));
    RankBufs *bufs = xcalloc((size_t)N, sizeof(RankBufs));
    for (int r = 0; r < N; r++) {
        TpSlice sl = tp_slice(c, N, r);
        ctx[r] = (RankCtx){c, sl, T, L, p, s->tokens, s->freqs_cis_dev, &mem};
        uint16_t *wo_r = tp_weight_columns(wo_host, D, c->n_heads * Dh, sl.head0 * Dh, sl.heads * Dh);
        uint16_t *w2_r = tp_weight_columns(w2_host, D, c->ffn_hidden, sl.ffn0, sl.ffn);
        rw[r] = (RankWeights){
            .emb = emb + (size_t)sl.vocab0 * D, .wq = wq + (size_t)sl.head0 * Dh * D,
            .wk = wk + (size_t)sl.kv_head0 * Dh * D, .wv = wv + (size_t)sl.kv_head0 * Dh * D,
            .wo = dev_upload(&mem, wo_r, (size_t)D * sl.heads * Dh * sizeof(uint16_t)),
            .w1 = w1 + (size_t)sl.ffn0 * D, .w3 = w3 + (size_t)sl.ffn0 * D,
            .w2 = dev_upload(&mem, w2_r, (size_t)D * sl.ffn * sizeof(uint16_t)),
            .out = out_w + (size_t)sl.vocab0 * D,
        };
        free(wo_r), free(w2_r);
        bufs[r] = rank_bufs(&ctx[r]);
    }
    // the embedding and the attention of every rank; the all-reduces as sums in rank order, rounded after each add
    for (int r = 0; r < N; r++) {
        bufs[r].emb = phase_embed(&ctx[r], &rw[r]);
        phase_attn(&ctx[r], &rw[r], d_xn, bufs[r].q, bufs[r].k, bufs[r].v, bufs[r].attn, bufs[r].delta_part);
        if (r == 0) {
            cuda_memcpy_d2d(sum_emb, bufs[0].emb, act_bytes(TD, p));
            cuda_memcpy_d2d(sum_delta, bufs[0].delta_part, act_bytes(TD, p));
        } else {
            residual_forward_cuda(sum_emb, sum_emb, bufs[r].emb, TD, p);
            residual_forward_cuda(sum_delta, sum_delta, bufs[r].delta_part, TD, p);
        }
    }
    // every rank: h = x + delta, hn = rms_norm(h, ffn_norm); then the FFN of every rank and its all-reduce
    residual_forward_cuda(d_h, d_x, sum_delta, TD, p);
    rmsnorm_forward_cuda(d_hn, NULL, d_h, W("ffn_norm.weight"), T, D, eps, p);
    for (int r = 0; r < N; r++) {
        phase_ffn(&ctx[r], &rw[r], d_hn, bufs[r].hidden, bufs[r].ffn_part);
        if (r == 0) cuda_memcpy_d2d(sum_ffn, bufs[0].ffn_part, act_bytes(TD, p));
        else residual_forward_cuda(sum_ffn, sum_ffn, bufs[r].ffn_part, TD, p);
        // logits_r = xn_last · output_rᵀ; the gather puts the ranks' blocks one after another
        logits_forward_cuda(bufs[r].logits_part, d_xl, rw[r].out, 1, D, ctx[r].sl.vocab, p);
        cuda_memcpy_d2d(d_logits + (size_t)ctx[r].sl.vocab0, bufs[r].logits_part, (size_t)ctx[r].sl.vocab * sizeof(float));
    }
    residual_forward_cuda(d_out, d_h, sum_ffn, TD, p);
#undef W
    for (int r = 0; r < N; r++) download_rank(&ctx[r], &bufs[r], run, r);
    cuda_download_act(run->token_embeddings, sum_emb, TD, p);
    cuda_download_act(run->delta, sum_delta, TD, p);
    cuda_download_act(run->h, d_h, TD, p);
    cuda_download_act(run->hn, d_hn, TD, p);
    cuda_download_act(run->ffn_out, sum_ffn, TD, p);
    cuda_download_act(run->out, d_out, TD, p);
    cuda_memcpy_d2h(run->logits, d_logits, (size_t)c->vocab_size * sizeof(float));
    step_add_ms(s, true, t0);
    dev_free_all(&mem);
    free(ctx), free(rw), free(bufs);
}

// ---- one process per GPU, NCCL ----------------------------------------------------------------------------------------
// The order of the arrays in rank_R.bin: rank r's own tensors, then the results every rank holds.
#define RANK_FILE_ARRAYS 16

// Element counts of the arrays of rank_R.bin, in order.
static void rank_file_layout(const TpRun *run, int V, size_t n[RANK_FILE_ARRAYS]) {
    const size_t T = (size_t)run->T, TD = T * run->D, HD = (size_t)run->heads * run->Dh, KD = (size_t)run->kv_heads * run->Dh;
    size_t k[RANK_FILE_ARRAYS] = {TD, T * HD, T * KD, T * KD, T * HD, TD, T * run->ffn, TD, (size_t)run->vocab,  // own
                                  TD, TD, TD, TD, TD, TD, (size_t)V};  // token_embeddings, delta, h, hn, ffn_out, out, logits
    memcpy(n, k, sizeof k);
}

static void write_floats(FILE *f, const float *x, size_t n, const char *path) { xfwrite(x, n * sizeof(float), f, path); }

static void write_file(const char *path, const void *data, size_t bytes) {
    AtomicFile af;
    atomic_open(&af, path);
    xfwrite(data, bytes, af.f, af.tmp_path);
    atomic_commit(&af);
}

static void *read_exact(const char *path, size_t bytes) {
    size_t len;
    char *data = read_whole_file(path, &len);
    if (len != bytes) fatal("%s: %zu bytes, expected %zu", path, len, bytes);
    return data;
}

int tp_worker_main(const char *dir, int rank, int fd) {
    // the job
    char *job_path = path_join(dir, "job.json");
    json_error_t jerr;
    json_t *job = json_load_file(job_path, 0, &jerr);
    if (!job) input_error(job_path, "line %d: %s", jerr.line, jerr.text);
    const char *model = json_string_value(json_object_get(job, "model"));
    int L = (int)json_integer_value(json_object_get(job, "layer")), N = (int)json_integer_value(json_object_get(job, "ranks"));
    Precision p;
    if (!model || !precision_from_name(json_string_value(json_object_get(job, "precision")) ?: "", &p))
        input_error(job_path, "model or precision missing");
    json_t *jt = json_object_get(job, "tokens");
    const int T = (int)json_array_size(jt);
    int32_t *tokens = xmalloc((size_t)(T ? T : 1) * sizeof(int32_t));
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)json_integer_value(json_array_get(jt, (size_t)t));
    if (rank < 0 || rank >= N || T < 1) input_error(job_path, "rank %d of %d ranks, %d tokens", rank, N, T);

    Checkpoint ck;
    checkpoint_open(&ck, model);
    checkpoint_check_against_config(&ck);
    const Config *c = &ck.cfg;
    char why[256];
    if (!tp_check(c, N, why, sizeof why)) input_error(model, "--tp %d: %s", N, why);
    const int D = c->dim, Dh = c->head_dim, V = c->vocab_size;
    const size_t TD = (size_t)T * D;
    const float eps = (float)c->norm_eps;
    TpSlice sl = tp_slice(c, N, rank);

    cuda_init(rank);  // rank r on GPU r
    DevList mem = {0};
    // only this rank's parts of the weights go to its GPU
    const uint16_t *wparts[11];
    const char *names[11] = {"tok_embeddings.weight", "attention.wq.weight", "attention.wk.weight", "attention.wv.weight",
                             "attention.wo.weight", "feed_forward.w1.weight", "feed_forward.w3.weight",
                             "feed_forward.w2.weight", "output.weight", "attention_norm.weight", "ffn_norm.weight"};
    for (int i = 0; i < 11; i++) {
        char name[96];
        if (i == 0 || i == 8) snprintf(name, sizeof name, "%s", names[i]);
        else snprintf(name, sizeof name, "layers.%d.%s", L, names[i]);
        const Tensor *t = checkpoint_find(&ck, name);
        if (!t || t->dtype != DT_BF16 || !tensor_is_contiguous(t))
            input_error(model, "%s: the ranks read bf16 contiguous weights", name);
        const uint16_t *w = t->data;
        TpPart part = tp_part(c, name, N, rank);
        int64_t rows = t->shape[0], cols = t->ndim > 1 ? t->shape[1] : 1;
        if (part.dim == 0) wparts[i] = dev_upload(&mem, w + (size_t)part.start * cols, (size_t)part.count * cols * 2);
        else if (part.dim == 1) {
            uint16_t *colw = tp_weight_columns(w, (int)rows, (int)cols, (int)part.start, (int)part.count);
            wparts[i] = dev_upload(&mem, colw, (size_t)rows * part.count * 2);
            free(colw);
        } else wparts[i] = dev_upload(&mem, w, (size_t)rows * cols * 2);
    }
    RankWeights rw = {.emb = wparts[0], .wq = wparts[1], .wk = wparts[2], .wv = wparts[3], .wo = wparts[4],
                      .w1 = wparts[5], .w3 = wparts[6], .w2 = wparts[7], .out = wparts[8], .attn_norm = wparts[9],
                      .ffn_norm = wparts[10]};
    // RoPE's table, as step.c makes it
    float *freqs = xmalloc((size_t)Dh / 2 * sizeof(float)), *fc = xmalloc((size_t)T * Dh * sizeof(float));
    rope_freqs_cpu(freqs, Dh, c->rope_theta, config_rope_scaling(c));
    rope_freqs_cis_cpu(fc, freqs, Dh, T);
    float *d_fc = dev_upload(&mem, fc, (size_t)T * Dh * sizeof(float));
    // the inputs
    char *path = path_join(dir, "x_in.bin");
    float *x_in = read_exact(path, TD * sizeof(float));
    free(path);
    path = path_join(dir, "xn_last.bin");
    float *xn_last = read_exact(path, (size_t)D * sizeof(float));
    free(path);
    uint8_t id[NCCL_ID_BYTES];
    tp_rank_receive(fd, id, NCCL_ID_BYTES);  // the coordinator's NCCL id (kernels/engine_ranks.h)
    void *comm = nccl_comm_init(id, N, rank);

    RankCtx ctx = {c, sl, T, L, p, tokens, d_fc, &mem};
    RankBufs b = rank_bufs(&ctx);
    void *d_x = dev_alloc(&mem, act_bytes(TD, p)), *d_xn = dev_alloc(&mem, act_bytes(TD, p));
    void *d_h = dev_alloc(&mem, act_bytes(TD, p)), *d_hn = dev_alloc(&mem, act_bytes(TD, p));
    void *d_out = dev_alloc(&mem, act_bytes(TD, p)), *d_xl = dev_alloc(&mem, act_bytes((size_t)D, p));
    void *sum_emb = dev_alloc(&mem, act_bytes(TD, p)), *sum_delta = dev_alloc(&mem, act_bytes(TD, p));
    void *sum_ffn = dev_alloc(&mem, act_bytes(TD, p));
    float *d_logits = dev_alloc(&mem, (size_t)V * sizeof(float));
    cuda_upload_act(d_x, x_in, TD, p);
    cuda_upload_act(d_xl, xn_last, (size_t)D, p);
    rmsnorm_forward_cuda(d_xn, NULL, d_x, rw.attn_norm, T, D, eps, p);
    b.emb = phase_embed(&ctx, &rw);
    phase_attn(&ctx, &rw, d_xn, b.q, b.k, b.v, b.attn, b.delta_part);
    // the collectives work in place: the sums go to their own buffers so the partials stay for the parent
    cuda_memcpy_d2d(sum_emb, b.emb, act_bytes(TD, p));
    cuda_memcpy_d2d(sum_delta, b.delta_part, act_bytes(TD, p));
    nccl_all_reduce_sum(comm, sum_emb, TD, p);
    nccl_all_reduce_sum(comm, sum_delta, TD, p);
    residual_forward_cuda(d_h, d_x, sum_delta, TD, p);
    rmsnorm_forward_cuda(d_hn, NULL, d_h, rw.ffn_norm, T, D, eps, p);
    phase_ffn(&ctx, &rw, d_hn, b.hidden, b.ffn_part);
    cuda_memcpy_d2d(sum_ffn, b.ffn_part, act_bytes(TD, p));
    nccl_all_reduce_sum(comm, sum_ffn, TD, p);
    residual_forward_cuda(d_out, d_h, sum_ffn, TD, p);
    logits_forward_cuda(b.logits_part, d_xl, rw.out, 1, D, sl.vocab, p);
    nccl_all_gather_f32(comm, b.logits_part, d_logits, (size_t)sl.vocab);

    // back to the parent: this rank's tensors (a TpRun of one rank), then what every rank holds
    TpRun one;
    tp_run_alloc(&one, c, T, N);
    download_rank(&ctx, &b, &one, 0);
    cuda_download_act(one.token_embeddings, sum_emb, TD, p);
    cuda_download_act(one.delta, sum_delta, TD, p);
    cuda_download_act(one.h, d_h, TD, p);
    cuda_download_act(one.hn, d_hn, TD, p);
    cuda_download_act(one.ffn_out, sum_ffn, TD, p);
    cuda_download_act(one.out, d_out, TD, p);
    cuda_memcpy_d2h(one.logits, d_logits, (size_t)V * sizeof(float));
    size_t n[RANK_FILE_ARRAYS];
    rank_file_layout(&one, V, n);
    const float *arrays[RANK_FILE_ARRAYS] = {one.emb_part, one.q, one.k, one.v, one.attn, one.delta_part, one.hidden,
                                             one.ffn_part, one.logits_part, one.token_embeddings, one.delta, one.h,
                                             one.hn, one.ffn_out, one.out, one.logits};
    char *out_path = xasprintf("%s/rank_%d.bin", dir, rank);
    AtomicFile af;
    atomic_open(&af, out_path);
    for (int i = 0; i < RANK_FILE_ARRAYS; i++) write_floats(af.f, arrays[i], n[i], af.tmp_path);
    atomic_commit(&af);

    nccl_comm_destroy(comm);
    dev_free_all(&mem);
    cuda_shutdown();
    tp_run_free(&one);
    free(out_path), free(x_in), free(xn_last), free(freqs), free(fc), free(tokens), free(job_path);
    checkpoint_close(&ck);
    json_decref(job);
    return 0;
}

// The files of the exchange, and their folder.
static void remove_job_dir(const char *dir, int N) {
    const char *files[] = {"job.json", "x_in.bin", "xn_last.bin"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = path_join(dir, files[i]);
        unlink(p);
        free(p);
    }
    for (int r = 0; r < N; r++) {
        char *p = xasprintf("%s/rank_%d.bin", dir, r), *partial = xasprintf("%s/rank_%d.bin.partial", dir, r);
        unlink(p), unlink(partial);
        free(p), free(partial);
    }
    if (rmdir(dir) != 0) fprintf(stderr, "note: could not remove %s: %s\n", dir, strerror(errno));
}

void tp_run_nccl(Step *s, int N, const float *x_in, const float *xn_last, TpRun *run) {
    const Config *c = s->cfg;
    const int T = s->T, D = c->dim, V = c->vocab_size;
    const size_t TD = (size_t)T * D;
    double t0 = step_clock();
    char tmpl[] = "/tmp/llama3-trace-tp.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) fatal("mkdtemp %s: %s", tmpl, strerror(errno));
    // the job, the inputs and NCCL's id
    json_t *job = json_object(), *jt = json_array();
    json_object_set_new(job, "model", json_string(s->model_dir));
    json_object_set_new(job, "layer", json_integer(s->layer));
    json_object_set_new(job, "ranks", json_integer(N));
    json_object_set_new(job, "precision", json_string(precision_name(s->prec)));
    for (int t = 0; t < T; t++) json_array_append_new(jt, json_integer(s->tokens[t]));
    json_object_set_new(job, "tokens", jt);
    char *path = path_join(dir, "job.json");
    if (json_dump_file(job, path, JSON_INDENT(1)) != 0) fatal("%s: cannot write", path);
    free(path);
    json_decref(job);
    path = path_join(dir, "x_in.bin");
    write_file(path, x_in, TD * sizeof(float));
    free(path);
    path = path_join(dir, "xn_last.bin");
    write_file(path, xn_last, (size_t)D * sizeof(float));
    free(path);
    // the ranks: this program again (`--tp-rank R --tp-fd FD --tp-worker DIR`, kernels/engine_ranks.h), the NCCL id
    // through their pipes; the first that fails ends them all with one line naming it, and this process with its
    // status
    uint8_t id[NCCL_ID_BYTES];
    nccl_unique_id(id);  // keeps NCCL_NVLS_ENABLE=0, which the ranks inherit
    char *const rank_argv[] = {(char *)s->id, "--tp-worker", dir, NULL};
    fflush(stdout), fflush(stderr);
    TpRanks *ranks = tp_ranks_start(N, 3, rank_argv, false);
    tp_ranks_send(ranks, id, NCCL_ID_BYTES);
    int status = tp_ranks_wait(ranks);
    if (status != 0) {
        remove_job_dir(dir, N);
        exit(status);
    }
    // their results: each rank's own tensors at its place; the collectives' results must be the same on every rank
    size_t n[RANK_FILE_ARRAYS], total = 0;
    rank_file_layout(run, V, n);
    for (int i = 0; i < RANK_FILE_ARRAYS; i++) total += n[i];
    float *first_shared = NULL;
    size_t shared_at = 0;
    for (int i = 0; i < 9; i++) shared_at += n[i];
    int differ = 0;
    for (int r = 0; r < N; r++) {
        char *rp = xasprintf("%s/rank_%d.bin", dir, r);
        float *data = read_exact(rp, total * sizeof(float));
        free(rp);
        float *own[9] = {run->emb_part, run->q, run->k, run->v, run->attn, run->delta_part, run->hidden, run->ffn_part,
                         run->logits_part};
        const float *src = data;
        for (int i = 0; i < 9; i++) {
            memcpy(own[i] + (size_t)r * n[i], src, n[i] * sizeof(float));
            src += n[i];
        }
        if (r == 0) {
            float *shared[7] = {run->token_embeddings, run->delta, run->h, run->hn, run->ffn_out, run->out, run->logits};
            for (int i = 0; i < 7; i++) {
                memcpy(shared[i], src, n[9 + i] * sizeof(float));
                src += n[9 + i];
            }
            first_shared = data;
        } else {
            differ += memcmp(data + shared_at, first_shared + shared_at, (total - shared_at) * sizeof(float)) != 0;
            free(data);
        }
    }
    free(first_shared);
    step_say(s, step_text(s, "the all-reduced sums and the gathered logits are the same bits on all %d ranks: %s",
                          "全部 %d 个 rank 上 all-reduce 的和与收集的 logits 逐位相同：%s"),
             N, differ ? step_text(s, "NO", "否") : step_text(s, "yes", "是"));
    if (differ) fatal("after the collectives %d rank(s) hold other values than rank 0", differ);
    remove_job_dir(dir, N);
    step_add_ms(s, true, t0);
}
