// test_engine_plan.c: the engine's weights plan (kernels/engine_plan.h) on the CPU, for one GPU and for every rank of
// tensor parallelism. The copy jobs are carried out into a host image of each rank's weights allocation (row by
// row, the source and destination pitches as engine_upload's 2-D copies use them), and the image is read back
// weight by weight against the checkpoint:
//   --tp 1        the image holds every weight whole, where engine.h's layout puts it (the single-GPU engine's plan:
//                 engine_create builds both with this one function), wq|wk|wv stacked, w1|w3 interleaved
//   --tp N        rank r holds exactly the part common/tp.h's tp_part names (wq/wk/wv/w1/w3/output/tok_embeddings rows,
//                 wo/w2 columns, norms whole); the parts of all ranks put together give each tensor back, the kv heads
//                 replicated on N / Hkv ranks when N > Hkv; bytes_per_token is 1/N of the split weights
//   bad N         exits 2 with tp_check's reason (the child process's status and message)
//
//   build/tests/test_engine_plan [MODEL_DIR ...]     default: build/models/tiny and build/models/llama3-tiny-trained
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "engine_plan.h"
#include "formats/checkpoint.h"
#include "util.h"

// The jobs carried out on the host: image[dst + r * dst_pitch ..] = src[r * src_pitch ..], row_bytes each.
static uint8_t *run_jobs(const EnginePlan *p) {
    uint8_t *img = xcalloc(p->bytes, 1);
    for (int j = 0; j < p->n_jobs; j++) {
        const UploadJob *u = &p->jobs[j];
        const size_t sp = u->src_row_pitch ? u->src_row_pitch : u->row_bytes;
        CHECK(u->dst_offset + (u->rows - 1) * u->dst_row_pitch + u->row_bytes <= p->bytes, "job %d writes past the end", j);
        for (size_t r = 0; r < u->rows; r++) memcpy(img + u->dst_offset + r * u->dst_row_pitch, u->src + r * sp, u->row_bytes);
    }
    return img;
}

// The checkpoint's tensor as contiguous bf16 (every test model is bf16 already).
static const uint16_t *weight(const Checkpoint *ck, const char *fmt, int l) {
    char name[128];
    snprintf(name, sizeof name, fmt, l);
    const Tensor *t = checkpoint_find(ck, name);
    if (!t || t->dtype != DT_BF16 || !tensor_is_contiguous(t)) fatal("%s: %s is missing or not contiguous bf16", ck->path, name);
    return (const uint16_t *)t->data;
}

// rows [r0, r0 + n) of a [*, cols] tensor, columns [c0, c0 + m): equal to the image's [n, m] block at dst (pitch m)?
static bool block_equal(const uint8_t *img, size_t dst, const uint16_t *w, size_t cols, size_t r0, size_t n, size_t c0,
                        size_t m, size_t dst_pitch_elems) {
    for (size_t r = 0; r < n; r++)
        if (memcmp(img + dst + r * dst_pitch_elems * 2, w + (r0 + r) * cols + c0, m * 2)) return false;
    return true;
}

static void check_rank(const Checkpoint *ck, int N, int rank, int64_t *covered_q, int64_t *covered_ffn,
                       int64_t *covered_vocab, int *kv_holders) {
    const Config *c = &ck->cfg;
    EnginePlan p;
    engine_plan_weights(&p, ck, N, rank);
    const TpSlice s = tp_slice(c, N, rank);
    const size_t D = (size_t)c->dim, Dh = (size_t)c->head_dim, HD_full = (size_t)c->n_heads * Dh;
    const size_t F_full = (size_t)c->ffn_hidden, HD = (size_t)p.H * Dh, KVD = (size_t)p.Hkv * Dh, F = (size_t)p.F;
    char what[96];
    snprintf(what, sizeof what, "%s --tp %d rank %d", ck->path, N, rank);
    CHECK(p.H == s.heads && p.Hkv == s.kv_heads && p.F == s.ffn && p.V == s.vocab, "%s: sizes differ from tp_slice", what);
    CHECK(p.QKV == (p.H + 2 * p.Hkv) * c->head_dim, "%s: QKV %d", what, p.QKV);
    uint8_t *img = run_jobs(&p);
    int bad = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const EngineLayerOffsets *o = &p.layer[l];
        // the parts tp_part names (the tp helper's one place for this arithmetic)
        TpPart pq = tp_part(c, "layers.0.attention.wq.weight", N, rank), pk = tp_part(c, "layers.0.attention.wk.weight", N, rank);
        TpPart po = tp_part(c, "layers.0.attention.wo.weight", N, rank), p1 = tp_part(c, "layers.0.feed_forward.w1.weight", N, rank);
        TpPart p2 = tp_part(c, "layers.0.feed_forward.w2.weight", N, rank);
        bad += !(pq.dim == 0 && (size_t)pq.start == (size_t)s.head0 * Dh && (size_t)pq.count == HD);
        bad += !(pk.dim == 0 && (size_t)pk.start == (size_t)s.kv_head0 * Dh && (size_t)pk.count == KVD);
        bad += !(po.dim == 1 && po.start == pq.start && po.count == pq.count);
        bad += !(p1.dim == 0 && p2.dim == 1 && (size_t)p1.count == F && p1.start == p2.start && p1.start == s.ffn0);
        bad += !block_equal(img, o->attention_norm, weight(ck, "layers.%d.attention_norm.weight", l), D, 0, 1, 0, D, D);
        bad += !block_equal(img, o->ffn_norm, weight(ck, "layers.%d.ffn_norm.weight", l), D, 0, 1, 0, D, D);
        // wqkv: its wq rows, then its wk rows, then its wv rows
        bad += !block_equal(img, o->wqkv, weight(ck, "layers.%d.attention.wq.weight", l), D, (size_t)pq.start, HD, 0, D, D);
        bad += !block_equal(img, o->wqkv + HD * D * 2, weight(ck, "layers.%d.attention.wk.weight", l), D,
                            (size_t)pk.start, KVD, 0, D, D);
        bad += !block_equal(img, o->wqkv + (HD + KVD) * D * 2, weight(ck, "layers.%d.attention.wv.weight", l), D,
                            (size_t)pk.start, KVD, 0, D, D);
        // wo [D, HD]: its columns of every row
        bad += !block_equal(img, o->wo, weight(ck, "layers.%d.attention.wo.weight", l), HD_full, 0, D, (size_t)po.start,
                            HD, HD);
        // w13: w1 rows at 0, 2, 4..; w3 rows at 1, 3, 5..
        bad += !block_equal(img, o->w13, weight(ck, "layers.%d.feed_forward.w1.weight", l), D, (size_t)p1.start, F, 0, D,
                            2 * D);
        bad += !block_equal(img, o->w13 + D * 2, weight(ck, "layers.%d.feed_forward.w3.weight", l), D, (size_t)p1.start,
                            F, 0, D, 2 * D);
        // w2 [D, F_full]: its columns
        bad += !block_equal(img, o->w2, weight(ck, "layers.%d.feed_forward.w2.weight", l), F_full, 0, D, (size_t)p2.start,
                            F, F);
    }
    CHECK(bad == 0, "%s: %d layer weights (or tp_part's parts) differ from the checkpoint's", what, bad);
    TpPart pv = tp_part(c, "tok_embeddings.weight", N, rank);
    CHECK(pv.dim == 0 && pv.start == s.vocab0 && pv.count == s.vocab, "%s: tp_part of tok_embeddings", what);
    CHECK(block_equal(img, p.tok_embeddings, weight(ck, "tok_embeddings.weight", 0), D, (size_t)pv.start, (size_t)p.V, 0,
                      D, D),
          "%s: tok_embeddings rows", what);
    CHECK(block_equal(img, p.norm, weight(ck, "norm.weight", 0), D, 0, 1, 0, D, D), "%s: norm", what);
    if (!p.tied)
        CHECK(block_equal(img, p.output, weight(ck, "output.weight", 0), D, (size_t)pv.start, (size_t)p.V, 0, D, D),
              "%s: output rows", what);
    else CHECK(p.output == p.tok_embeddings, "%s: tied output", what);
    // coverage, added up over the ranks by the caller
    for (int i = 0; i < s.heads; i++) covered_q[s.head0 + i]++;
    for (int i = 0; i < s.ffn; i++) covered_ffn[s.ffn0 + i]++;
    for (int i = 0; i < s.vocab; i++) covered_vocab[s.vocab0 + i]++;
    for (int i = 0; i < s.kv_heads; i++) kv_holders[s.kv_head0 + i]++;
    free(img);
    engine_plan_free(&p);
}

static void check_model(const char *dir) {
    Checkpoint ck;
    checkpoint_open(&ck, dir);
    const Config *c = &ck.cfg;
    printf("== %s: dim %d, %d heads, %d kv heads, ffn %d, vocab %d ==\n", dir, c->dim, c->n_heads, c->n_kv_heads,
           c->ffn_hidden, c->vocab_size);
    // one rank: the whole model in engine.h's layout
    EnginePlan one;
    engine_plan_weights(&one, &ck, 1, 0);
    const size_t D = (size_t)c->dim, QKV = (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
    size_t off = 0;
#define NEXT(bytes) (off = (off + (bytes) + 255) & ~(size_t)255)
    int bad = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const EngineLayerOffsets *o = &one.layer[l];
        bad += o->attention_norm != off, NEXT(D * 2);
        bad += o->wqkv != off, NEXT(QKV * D * 2);
        bad += o->wo != off, NEXT(D * (size_t)c->n_heads * c->head_dim * 2);
        bad += o->ffn_norm != off, NEXT(D * 2);
        bad += o->w13 != off, NEXT(2 * (size_t)c->ffn_hidden * D * 2);
        bad += o->w2 != off, NEXT(D * (size_t)c->ffn_hidden * 2);
    }
    CHECK(bad == 0, "%s --tp 1: %d layer offsets differ from engine.h's layout", dir, bad);
    CHECK(one.tok_embeddings == off, "%s --tp 1: tok_embeddings at %zu, expected %zu", dir, one.tok_embeddings, off);
    CHECK(one.H == c->n_heads && one.Hkv == c->n_kv_heads && one.F == c->ffn_hidden && one.V == c->vocab_size,
          "%s --tp 1: not the whole model", dir);
    size_t whole = 0;
    for (int j = 0; j < one.n_jobs; j++) {
        const UploadJob *u = &one.jobs[j];
        whole += u->rows * u->row_bytes;
        CHECK(u->src_row_pitch == u->row_bytes, "%s --tp 1: job %d reads a column slice", dir, j);
    }
    // every weight the model has, once (tied: no output of its own)
    static const char *const per_layer[] = {"attention_norm", "attention.wq", "attention.wk", "attention.wv",
                                            "attention.wo", "ffn_norm", "feed_forward.w1", "feed_forward.w3",
                                            "feed_forward.w2"};
    static const char *const top[] = {"tok_embeddings", "norm", "output"};
    size_t params = 0;
    char name[128];
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < 9; k++) {
            snprintf(name, sizeof name, "layers.%d.%s.weight", l, per_layer[k]);
            params += (size_t)tensor_numel(checkpoint_find(&ck, name)) * 2;
        }
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s.weight", top[k]);
        const Tensor *t = checkpoint_find(&ck, name);
        if (t) params += (size_t)tensor_numel(t) * 2;
    }
    CHECK(whole == params, "%s --tp 1: the jobs copy %zu bytes, the checkpoint has %zu", dir, whole, params);
    engine_plan_free(&one);

    for (int N = 1; N <= 8; N++) {
        char why[256];
        if (!tp_check(c, N, why, sizeof why)) {
            printf("--tp %d: not a split of this model (%s)\n", N, why);
            continue;
        }
        int64_t *cq = xcalloc((size_t)c->n_heads, 8), *cf = xcalloc((size_t)c->ffn_hidden, 8);
        int64_t *cv = xcalloc((size_t)c->vocab_size, 8);
        int *kvh = xcalloc((size_t)c->n_kv_heads, sizeof(int));
        size_t per_token = 0;
        for (int r = 0; r < N; r++) {
            EnginePlan p;
            engine_plan_weights(&p, &ck, N, r);
            per_token = p.bytes_per_token;
            engine_plan_free(&p);
            check_rank(&ck, N, r, cq, cf, cv, kvh);
        }
        int miss = 0;
        for (int i = 0; i < c->n_heads; i++) miss += cq[i] != 1;
        for (int i = 0; i < c->ffn_hidden; i++) miss += cf[i] != 1;
        for (int i = 0; i < c->vocab_size; i++) miss += cv[i] != 1;
        const int replicas = N > c->n_kv_heads ? N / c->n_kv_heads : 1;
        for (int i = 0; i < c->n_kv_heads; i++) miss += kvh[i] != replicas;
        CHECK(miss == 0, "%s --tp %d: %d heads / FFN rows / vocabulary rows / kv heads not held exactly once (kv: %d times)",
              dir, N, miss, replicas);
        printf("--tp %d: every rank holds its tp_part of every weight; heads, FFN rows and vocabulary rows once, each kv "
               "head on %d rank(s); %.1f MB read per token per rank\n", N, replicas, per_token / 1e6);
        free(cq), free(cf), free(cv), free(kvh);
    }
    // a bad split: exit 2 with tp_check's reason (in a child, since it exits)
    int bad_n = 0;
    char why[256];
    for (int N = 2; N <= 16 && !bad_n; N++)
        if (!tp_check(c, N, why, sizeof why)) bad_n = N;
    if (bad_n) {
        int err[2];
        if (pipe(err) != 0) fatal("pipe");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(err[1], 2);
            EnginePlan p;
            engine_plan_weights(&p, &ck, bad_n, 0);
            _exit(0);
        }
        close(err[1]);
        char msg[512] = {0};
        size_t got = 0;
        for (ssize_t k; got < sizeof msg - 1 && (k = read(err[0], msg + got, sizeof msg - 1 - got)) > 0;) got += (size_t)k;
        close(err[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s --tp %d: exit status %d, expected 2", dir, bad_n,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        CHECK(strstr(msg, why) != NULL, "%s --tp %d: message '%s' lacks '%s'", dir, bad_n, msg, why);
        printf("--tp %d: exit 2: %s", bad_n, msg);
    }
    checkpoint_close(&ck);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: test_engine_plan [MODEL_DIR ...]\n  the engine's weights plan for --tp 1..8 against the "
               "checkpoint (default: build/models/tiny build/models/llama3-tiny-trained)\n");
        return 0;
    }
    const char *defaults[] = {"build/models/tiny", "build/models/llama3-tiny-trained"};
    if (argc > 1)
        for (int i = 1; i < argc; i++) check_model(argv[i]);
    else
        for (int i = 0; i < 2; i++) check_model(defaults[i]);
    TEST_SUMMARY();
}
