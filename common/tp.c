// tp.c: tensor parallelism's arithmetic (see tp.h): the valid N, the slice of each rank, the part of each tensor.
#include "tp.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

bool tp_check(const Config *c, int n_ranks, char *why, size_t n) {
    const int N = n_ranks, H = c->n_heads, Hkv = c->n_kv_heads;
    if (N < 1) return snprintf(why, n, "the number of ranks must be at least 1, got %d", N), false;
    if (H % N)
        return snprintf(why, n, "the %d query heads (n_heads) cannot be split into %d ranks of whole heads", H, N), false;
    if (N <= Hkv && Hkv % N)
        return snprintf(why, n, "the %d kv heads (n_kv_heads) cannot be split into %d ranks of whole heads", Hkv, N),
               false;
    if (N > Hkv && N % Hkv)
        return snprintf(why, n,
                        "%d ranks cannot share %d kv heads (n_kv_heads): with more ranks than kv heads, N must be a "
                        "multiple of n_kv_heads so that each kv head is replicated on the same number of ranks",
                        N, Hkv),
               false;
    if (c->ffn_hidden % N)
        return snprintf(why, n, "the FFN hidden size %d cannot be split into %d equal row blocks", c->ffn_hidden, N),
               false;
    if (c->vocab_size % N)
        return snprintf(why, n, "the vocabulary of %d entries cannot be split into %d equal row blocks", c->vocab_size,
                        N),
               false;
    return true;
}

TpSlice tp_slice(const Config *c, int n_ranks, int rank) {
    char why[256];
    if (!tp_check(c, n_ranks, why, sizeof why)) fatal("tp_slice: %s", why);
    if (rank < 0 || rank >= n_ranks) fatal("tp_slice: rank %d of %d", rank, n_ranks);
    const int N = n_ranks, H = c->n_heads, Hkv = c->n_kv_heads;
    TpSlice s = {.n_ranks = N, .rank = rank};
    s.heads = H / N, s.head0 = rank * s.heads;
    if (N <= Hkv) {
        s.kv_heads = Hkv / N, s.kv_head0 = rank * s.kv_heads, s.kv_replicas = 1;
    } else {  // every rank's H/N query heads lie in one GQA group of H/Hkv heads: the kv head they all read
        s.kv_replicas = N / Hkv;
        s.kv_heads = 1, s.kv_head0 = rank / s.kv_replicas;
    }
    s.ffn = c->ffn_hidden / N, s.ffn0 = rank * s.ffn;
    s.vocab = c->vocab_size / N, s.vocab0 = rank * s.vocab;
    return s;
}

// A per-layer weight "layers.L.<suffix>" (L digits), as Meta names them.
static bool is_layer_weight(const char *name, const char *suffix) {
    if (strncmp(name, "layers.", 7) != 0) return false;
    const char *p = name + 7;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9') p++;
    return *p == '.' && strcmp(p + 1, suffix) == 0;
}

bool tp_is_kv_weight(const char *name) {
    return is_layer_weight(name, "attention.wk.weight") || is_layer_weight(name, "attention.wv.weight");
}

int tp_split_dim(const char *name) {
    static const char *const rows[] = {"attention.wq.weight", "attention.wk.weight", "attention.wv.weight",
                                       "feed_forward.w1.weight", "feed_forward.w3.weight"};
    static const char *const cols[] = {"attention.wo.weight", "feed_forward.w2.weight"};
    if (!strcmp(name, "tok_embeddings.weight") || !strcmp(name, "output.weight")) return 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (is_layer_weight(name, rows[i])) return 0;
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (is_layer_weight(name, cols[i])) return 1;
    return -1;
}

TpPart tp_part(const Config *c, const char *name, int n_ranks, int rank) {
    const TpSlice s = tp_slice(c, n_ranks, rank);
    const int64_t Dh = c->head_dim;
    TpPart p = {.dim = tp_split_dim(name)};
    if (p.dim < 0) return p;
    if (!strcmp(name, "tok_embeddings.weight") || !strcmp(name, "output.weight"))
        p.start = s.vocab0, p.count = s.vocab, p.full = c->vocab_size;
    else if (is_layer_weight(name, "attention.wq.weight") || is_layer_weight(name, "attention.wo.weight"))
        p.start = s.head0 * Dh, p.count = s.heads * Dh, p.full = (int64_t)c->n_heads * Dh;
    else if (tp_is_kv_weight(name))
        p.start = s.kv_head0 * Dh, p.count = s.kv_heads * Dh, p.full = (int64_t)c->n_kv_heads * Dh;
    else  // w1, w3 rows; w2 columns
        p.start = s.ffn0, p.count = s.ffn, p.full = c->ffn_hidden;
    return p;
}
