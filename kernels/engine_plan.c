// engine_plan.c: the weights allocation of one rank and its copy jobs (see engine_plan.h).
#include "engine_plan.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

// A weight as contiguous bf16 host memory: in place (the mmap), or converted once into a buffer kept in p->owned.
static const uint8_t *host_bf16(EnginePlan *p, const Checkpoint *ck, const char *name) {
    return (const uint8_t *)checkpoint_weight_bf16(ck, name, &p->owned, &p->n_owned);
}

// rows of row_bytes from src (source rows src_pitch apart) to dst (destination rows dst_pitch apart)
static void add_job(EnginePlan *p, const uint8_t *src, size_t src_pitch, size_t dst, size_t rows, size_t row_bytes,
                    size_t dst_pitch) {
    p->jobs = xrealloc(p->jobs, sizeof(UploadJob) * (size_t)(p->n_jobs + 1));
    p->jobs[p->n_jobs++] = (UploadJob){src, dst, rows, row_bytes, dst_pitch, src_pitch};
}

void engine_plan_weights(EnginePlan *p, const Checkpoint *ck, int n_ranks, int rank) {
    memset(p, 0, sizeof *p);
    const Config *c = &ck->cfg;
    char why[256];
    if (!tp_check(c, n_ranks, why, sizeof why)) input_error(ck->path, "--tp %d: %s", n_ranks, why);
    const TpSlice s = tp_slice(c, n_ranks, rank);
    p->slice = s;
    p->L = c->n_layers, p->D = c->dim, p->Dh = c->head_dim;
    p->H = s.heads, p->Hkv = s.kv_heads, p->F = s.ffn, p->V = s.vocab;
    p->QKV = (p->H + 2 * p->Hkv) * p->Dh;
    p->tied = checkpoint_find(ck, "output.weight") == NULL;
    // sizes in bytes: the rank's (H, Hkv, F, V) and the whole tensor's rows (full_*) for the column slices
    const size_t D = (size_t)p->D, Dh = (size_t)p->Dh, HD = (size_t)p->H * Dh, KVD = (size_t)p->Hkv * Dh;
    const size_t F = (size_t)p->F, V = (size_t)p->V, QKV = (size_t)p->QKV;
    const size_t full_HD = (size_t)c->n_heads * Dh, full_F = (size_t)c->ffn_hidden;
    const size_t q0 = (size_t)s.head0 * Dh, kv0 = (size_t)s.kv_head0 * Dh, f0 = (size_t)s.ffn0, v0 = (size_t)s.vocab0;

    p->layer = xcalloc((size_t)p->L, sizeof(EngineLayerOffsets));
    size_t off = 0;
    char name[128];
#define W(fmt) (snprintf(name, sizeof name, fmt, l), host_bf16(p, ck, name))
    for (int l = 0; l < p->L; l++) {
        EngineLayerOffsets *o = &p->layer[l];
        o->attention_norm = off, off = align_up(off + D * 2);
        o->wqkv = off, off = align_up(off + QKV * D * 2);
        o->wo = off, off = align_up(off + D * HD * 2);
        o->ffn_norm = off, off = align_up(off + D * 2);
        o->w13 = off, off = align_up(off + 2 * F * D * 2);
        o->w2 = off, off = align_up(off + D * F * 2);
        add_job(p, W("layers.%d.attention_norm.weight"), D * 2, o->attention_norm, 1, D * 2, D * 2);
        // wq, wk, wv: the rows of this rank's heads, one under the other
        add_job(p, W("layers.%d.attention.wq.weight") + q0 * D * 2, D * 2, o->wqkv, HD, D * 2, D * 2);
        add_job(p, W("layers.%d.attention.wk.weight") + kv0 * D * 2, D * 2, o->wqkv + HD * D * 2, KVD, D * 2, D * 2);
        add_job(p, W("layers.%d.attention.wv.weight") + kv0 * D * 2, D * 2, o->wqkv + (HD + KVD) * D * 2, KVD, D * 2,
                D * 2);
        // wo: in every one of its D rows, the columns of this rank's heads
        add_job(p, W("layers.%d.attention.wo.weight") + q0 * 2, full_HD * 2, o->wo, D, HD * 2, HD * 2);
        add_job(p, W("layers.%d.ffn_norm.weight"), D * 2, o->ffn_norm, 1, D * 2, D * 2);
        // w1 rows to 0, 2, 4.. and w3 rows to 1, 3, 5.. of w13 (destination pitch of two rows)
        add_job(p, W("layers.%d.feed_forward.w1.weight") + f0 * D * 2, D * 2, o->w13, F, D * 2, 2 * D * 2);
        add_job(p, W("layers.%d.feed_forward.w3.weight") + f0 * D * 2, D * 2, o->w13 + D * 2, F, D * 2, 2 * D * 2);
        // w2: in every one of its D rows, the columns of this rank's FFN rows
        add_job(p, W("layers.%d.feed_forward.w2.weight") + f0 * 2, full_F * 2, o->w2, D, F * 2, F * 2);
    }
#undef W
    p->tok_embeddings = off, off = align_up(off + V * D * 2);
    p->norm = off, off = align_up(off + D * 2);
    p->output = p->tied ? p->tok_embeddings : off;
    if (!p->tied) off = align_up(off + V * D * 2);
    p->bytes = off;
    // one decode step reads every layer, the final norm and the output rows (one embedding row is noise)
    p->bytes_per_token = p->tok_embeddings + D * 2 + V * D * 2;
    add_job(p, host_bf16(p, ck, "tok_embeddings.weight") + v0 * D * 2, D * 2, p->tok_embeddings, V, D * 2, D * 2);
    add_job(p, host_bf16(p, ck, "norm.weight"), D * 2, p->norm, 1, D * 2, D * 2);
    if (!p->tied) add_job(p, host_bf16(p, ck, "output.weight") + v0 * D * 2, D * 2, p->output, V, D * 2, D * 2);
}

void engine_plan_free(EnginePlan *p) {
    for (int i = 0; i < p->n_owned; i++) free(p->owned[i]);
    free(p->owned);
    free(p->jobs);
    free(p->layer);
    memset(p, 0, sizeof *p);
}
