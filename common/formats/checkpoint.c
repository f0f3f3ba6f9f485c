// checkpoint.c: opens a model on disk (Meta directory, HF directory, one .pth or one .safetensors file) as named
// tensors in Meta's layout (see checkpoint.h), and checks them against the config.
//
// A Meta directory with model parallelism (70B: consolidated.00.pth .. consolidated.07.pth) holds in every shard
// every name, each tensor cut along one dimension (formats.md §1, fairscale's layers):
//   ColumnParallel / VocabParallelEmbedding -> cut along dim 0: tok_embeddings, wq, wk, wv, w1, w3, output
//   RowParallel                             -> cut along dim 1: wo, w2
//   replicated                              -> the same in every shard: the norms (shard 0 is taken)
// (common/tp.h holds these rules.) With more shards than kv heads (wt-convert reshard --mp 8 of a model with fewer
// kv heads) each kv head of wk/wv is in several shards; the copies must agree and one of each is joined.
// Such tensors are joined in rank order into buffers owned by the Checkpoint. With one shard (8B) nothing is
// copied: every tensor is a view into the memory map, and opening takes milliseconds whatever the file size.
//
// Ownership, for checkpoint_close(): ck->files are the mapped files, ck->owned every malloc'd buffer (tensor names,
// joined tensors), ck->tensors one malloc'd array. hf.c fills a Checkpoint by the same rules.
#include "formats/checkpoint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "formats/hf.h"
#include "formats/pth.h"
#include "ref/ref_moe.h"
#include "tp.h"

static void take_owned(Checkpoint *ck, void *p) {
    ck->owned = xrealloc(ck->owned, (size_t)(ck->n_owned + 1) * sizeof(void *));
    ck->owned[ck->n_owned++] = p;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

// ---- shards -------------------------------------------------------------------------------------------------------
// The dimension along which model parallelism cut a tensor is tp_split_dim's (common/tp.h: the one place that knows
// the rules); -1 means every shard holds all of it.

// Copies a (possibly strided) view into a contiguous row-major buffer of numel elements.
static void copy_to_contiguous(const Tensor *t, uint8_t *out) {
    size_t es = dtype_size(t->dtype);
    int64_t n = tensor_numel(t);
    if (n == 0) return;
    if (tensor_is_contiguous(t)) {
        memcpy(out, t->data, (size_t)n * es);
        return;
    }
    int64_t idx[MAX_DIMS] = {0};
    const uint8_t *base = t->data;
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(out + (size_t)k * es, base + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {  // odometer increment, last dim fastest
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

// Joins the pieces of one tensor (one per shard, rank order) along dim into a new owned buffer.
// With outer = prod(shape[:dim]) and piece_row = shape_s[dim] * prod(shape[dim+1:]) elements, each outer index
// takes piece_row elements from every shard in turn.
static Tensor join_shards(Checkpoint *ck, const Tensor *pieces, int n_shards, int dim, const char *dir) {
    Tensor out = pieces[0];
    if (out.ndim <= dim) input_error(dir, "%s: has %d dims, cannot join shards along dim %d", out.name, out.ndim, dim);
    out.shape[dim] = 0;
    for (int s = 0; s < n_shards; s++) {
        const Tensor *p = &pieces[s];
        if (p->dtype != out.dtype) input_error(dir, "%s: shard %d is %s, shard 0 is %s", out.name, s, dtype_name(p->dtype), dtype_name(out.dtype));
        bool same = p->ndim == out.ndim;
        for (int d = 0; same && d < p->ndim; d++) same = d == dim || p->shape[d] == pieces[0].shape[d];
        if (!same) {
            char a[96], b[96];
            input_error(dir, "%s: shard %d has shape %s, shard 0 %s; they must agree except along dim %d", out.name, s,
                        shape_str(p->shape, p->ndim, a, sizeof a), shape_str(pieces[0].shape, pieces[0].ndim, b, sizeof b), dim);
        }
        out.shape[dim] += p->shape[dim];
    }
    tensor_set_contiguous_strides(&out);
    size_t es = dtype_size(out.dtype);
    uint8_t *buf = xmalloc(tensor_nbytes(&out));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= out.shape[d];
    for (int d = dim + 1; d < out.ndim; d++) inner *= out.shape[d];
    size_t out_row = (size_t)(out.shape[dim] * inner) * es;  // bytes of one outer index in the joined tensor
    size_t col = 0;                                          // where this shard's part starts inside that row
    for (int s = 0; s < n_shards; s++) {
        const Tensor *p = &pieces[s];
        size_t piece_row = (size_t)(p->shape[dim] * inner) * es;
        const uint8_t *src = p->data;
        uint8_t *tmp = NULL;
        if (!tensor_is_contiguous(p)) {  // never in Meta's files, but a view is legal in a .pth
            tmp = xmalloc(tensor_nbytes(p));
            copy_to_contiguous(p, tmp);
            src = tmp;
        }
#pragma omp parallel for schedule(static) if (outer > 64)
        for (int64_t o = 0; o < outer; o++) memcpy(buf + (size_t)o * out_row + col, src + (size_t)o * piece_row, piece_row);
        free(tmp);
        col += piece_row;
    }
    out.data = buf;
    take_owned(ck, buf);
    return out;
}

// With more shards than kv heads, each kv head of wk and wv is replicated: shards k*R .. k*R + R-1 (R = N / Hkv)
// all hold kv head k (tp_slice). The copies must be the same bytes; the first of each group is kept, in place, and
// the count of distinct pieces is returned.
static int dereplicate_kv(const Checkpoint *ck, Tensor *pieces, int n_shards, const char *name) {
    const int Hkv = ck->cfg.n_kv_heads;
    if (n_shards <= Hkv) return n_shards;
    if (n_shards % Hkv)
        input_error(ck->path, "%s: %d shards cannot hold n_kv_heads = %d kv heads (with more shards than kv heads, "
                              "their number must be a multiple of n_kv_heads)", name, n_shards, Hkv);
    const int R = n_shards / Hkv;
    for (int k = 0; k < Hkv; k++) {
        const Tensor *a = &pieces[k * R];
        size_t nb = tensor_nbytes(a);
        uint8_t *ca = xmalloc(nb ? nb : 1), *cb = xmalloc(nb ? nb : 1);
        copy_to_contiguous(a, ca);
        for (int j = 1; j < R; j++) {
            const Tensor *b = &pieces[k * R + j];
            bool same = b->dtype == a->dtype && b->ndim == a->ndim && tensor_nbytes(b) == nb &&
                        memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
            if (same) copy_to_contiguous(b, cb);
            if (!same || memcmp(ca, cb, nb) != 0)
                input_error(ck->files[k * R + j].path, "%s: kv head %d is replicated on shards %d..%d (%d shards, %d kv "
                            "heads), but this shard's copy differs from shard %d's", name, k, k * R, k * R + R - 1,
                            n_shards, Hkv, k * R);
        }
        free(ca), free(cb);
        pieces[k] = pieces[k * R];
    }
    return Hkv;
}

// Lists consolidated.NN.pth in dir, sorted by name (= model-parallel rank), and checks NN runs 00, 01, ...
static char **list_shards(const char *dir, int *n_out) {
    DIR *d = opendir(dir);
    if (!d) input_error(dir, "cannot open the directory");
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *s = de->d_name;
        size_t len = strlen(s);
        if (strncmp(s, "consolidated.", 13) != 0 || !ends_with(s, ".pth") || len <= 17) continue;
        names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = xstrdup(s);
    }
    closedir(d);
    for (int i = 1; i < n; i++)  // insertion sort: a handful of names
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        char *end;
        long rank = strtol(names[i] + 13, &end, 10);
        if (strcmp(end, ".pth") != 0 || rank != i)
            input_error(dir, "%s: expected consolidated.%02d.pth (shards are numbered 00, 01, ... without gaps)", names[i], i);
    }
    *n_out = n;
    return names;
}

// Records every zip entry of a .pth (file index f) with the first tensor that views it, for checkpoint_verify.
static void record_entries(Checkpoint *ck, int f, const PthIndex *ix, const Tensor *tensors) {
    const ZipArchive *z = &ix->zip;
    ck->checked = xrealloc(ck->checked, (size_t)(ck->n_checked + z->n_entries + 1) * sizeof *ck->checked);
    for (int e = 0; e < z->n_entries; e++) {
        CheckedBytes *c = &ck->checked[ck->n_checked++];
        c->file = f;
        c->entry = xstrdup(z->entries[e].name);
        c->offset = z->entries[e].data_offset;
        c->size = z->entries[e].size;
        c->crc32 = z->entries[e].crc32;
        c->tensor = NULL;
        for (int i = 0; i < ix->n_tensors && !c->tensor; i++)
            if (ix->storage_ids[i] == e) c->tensor = tensors[i].name;
    }
}

static void open_meta_dir(Checkpoint *ck, const char *dir) {
    ck->kind = CKPT_META_DIR;
    char *params = path_join(dir, "params.json");
    config_from_params_json(&ck->cfg, params);
    free(params);
    ck->has_config = true;
    int n_shards;
    char **shard_names = list_shards(dir, &n_shards);
    if (n_shards == 0) input_error(dir, "no consolidated.NN.pth beside params.json");
    ck->files = xcalloc((size_t)n_shards, sizeof *ck->files);
    PthIndex *idx = xcalloc((size_t)n_shards, sizeof *idx);
    for (int s = 0; s < n_shards; s++) {
        char *p = path_join(dir, shard_names[s]);
        mapped_file_open(&ck->files[s], p);
        ck->n_files++;
        pth_index_read(&idx[s], &ck->files[s]);
        free(p);
    }
    ck->n_tensors = idx[0].n_tensors;
    ck->tensors = xcalloc((size_t)(ck->n_tensors ? ck->n_tensors : 1), sizeof *ck->tensors);
    Tensor *pieces = xcalloc((size_t)n_shards, sizeof *pieces);
    for (int i = 0; i < idx[0].n_tensors; i++) {
        const Tensor *t0 = &idx[0].tensors[i];
        char *name = xstrdup(t0->name);
        take_owned(ck, name);
        if (n_shards == 1) {
            ck->tensors[i] = *t0;
        } else {
            for (int s = 0; s < n_shards; s++) {
                const Tensor *found = NULL;
                for (int k = 0; k < idx[s].n_tensors && !found; k++)
                    if (strcmp(idx[s].tensors[k].name, name) == 0) found = &idx[s].tensors[k];
                if (!found) input_error(ck->files[s].path, "%s: missing in this shard (present in %s)", name, shard_names[0]);
                pieces[s] = *found;
            }
            int dim = tp_split_dim(name);
            if (dim >= 0) {
                int n_pieces = tp_is_kv_weight(name) ? dereplicate_kv(ck, pieces, n_shards, name) : n_shards;
                ck->tensors[i] = join_shards(ck, pieces, n_pieces, dim, dir);
            } else {  // replicated: every shard must hold the same shape; shard 0's view is used
                for (int s = 1; s < n_shards; s++) {
                    bool same = pieces[s].ndim == t0->ndim && pieces[s].dtype == t0->dtype &&
                                memcmp(pieces[s].shape, t0->shape, sizeof(int64_t) * (size_t)t0->ndim) == 0;
                    if (!same) {
                        char a[96], b[96];
                        input_error(ck->files[s].path, "%s: %s %s here but %s %s in shard 0; a replicated tensor must agree", name,
                                    dtype_name(pieces[s].dtype), shape_str(pieces[s].shape, pieces[s].ndim, a, sizeof a), dtype_name(t0->dtype),
                                    shape_str(t0->shape, t0->ndim, b, sizeof b));
                    }
                }
                ck->tensors[i] = *t0;
            }
        }
        ck->tensors[i].name = name;
    }
    // Each shard's entries, named after the checkpoint's own (owned) tensor names: a shard's tensor has the same name.
    for (int s = 0; s < n_shards; s++) {
        int first = ck->n_checked;
        record_entries(ck, s, &idx[s], idx[s].tensors);
        for (int c = first; c < ck->n_checked; c++) {
            const char *shard_name = ck->checked[c].tensor;
            ck->checked[c].tensor = NULL;
            for (int i = 0; shard_name && i < ck->n_tensors && !ck->checked[c].tensor; i++)
                if (strcmp(ck->tensors[i].name, shard_name) == 0) ck->checked[c].tensor = ck->tensors[i].name;
        }
    }
    for (int s = 1; s < n_shards; s++)
        if (idx[s].n_tensors != idx[0].n_tensors)
            input_error(ck->files[s].path, "holds %d tensors, %s holds %d; shards must hold the same names", idx[s].n_tensors,
                        shard_names[0], idx[0].n_tensors);
    free(pieces);
    for (int s = 0; s < n_shards; s++) {
        pth_index_free(&idx[s]);
        free(shard_names[s]);
    }
    free(idx);
    free(shard_names);
    char *tok = path_join(dir, "tokenizer.model");
    if (file_exists(tok)) ck->tokenizer_path = tok;
    else free(tok);
}

static void open_pth_file(Checkpoint *ck, const char *path) {
    ck->kind = CKPT_PTH_FILE;
    ck->files = xcalloc(1, sizeof *ck->files);
    mapped_file_open(&ck->files[0], path);
    ck->n_files = 1;
    PthIndex idx;
    pth_index_read(&idx, &ck->files[0]);
    ck->n_tensors = idx.n_tensors;
    ck->tensors = xcalloc((size_t)(idx.n_tensors ? idx.n_tensors : 1), sizeof *ck->tensors);
    for (int i = 0; i < idx.n_tensors; i++) {
        ck->tensors[i] = idx.tensors[i];
        ck->tensors[i].name = xstrdup(idx.tensors[i].name);
        take_owned(ck, (void *)ck->tensors[i].name);
    }
    record_entries(ck, 0, &idx, ck->tensors);
    pth_index_free(&idx);
    // tokenizer.model beside the file, if there is one
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
    char *tok = path_join(dir, "tokenizer.model");
    if (file_exists(tok)) ck->tokenizer_path = tok;
    else free(tok);
    free(dir);
}

void checkpoint_open(Checkpoint *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    if (dir_exists(path)) {
        char *params = path_join(path, "params.json"), *config = path_join(path, "config.json");
        bool meta = file_exists(params), hf = file_exists(config);
        free(params);
        free(config);
        if (meta) {
            ck->path = xstrdup(path);
            open_meta_dir(ck, path);
        } else if (hf) {
            checkpoint_open_hf(ck, path);
        } else {
            input_error(path, "neither params.json (a Meta checkpoint) nor config.json (a Hugging Face checkpoint) is in this directory");
        }
        return;
    }
    if (!file_exists(path)) input_error(path, "no such file or directory");
    // Tell the file's kind by its first bytes: a torch zip starts "PK\3\4", a safetensors file with a u64 header length.
    MappedFile probe;
    mapped_file_open(&probe, path);
    bool torch = pth_looks_like_torch(probe.data, probe.size);
    bool safetensors = !torch && probe.size >= 9 && probe.data[8] == '{';
    mapped_file_close(&probe);
    if (torch) {
        ck->path = xstrdup(path);
        open_pth_file(ck, path);
    } else if (safetensors || ends_with(path, ".safetensors")) {
        checkpoint_open_safetensors_file(ck, path);
    } else {
        input_error(path, "not a checkpoint: neither a torch.save zip (.pth) nor a .safetensors file");
    }
}

void checkpoint_close(Checkpoint *ck) {
    for (int i = 0; i < ck->n_files; i++) mapped_file_close(&ck->files[i]);
    free(ck->files);
    for (int i = 0; i < ck->n_owned; i++) free(ck->owned[i]);
    free(ck->owned);
    free(ck->tensors);
    free(ck->path);
    free(ck->tokenizer_path);
    free(ck->hf_tokenizer_json);
    for (int i = 0; i < ck->n_checked; i++) free(ck->checked[i].entry);
    free(ck->checked);
    memset(ck, 0, sizeof *ck);
}

const Tensor *checkpoint_find(const Checkpoint *ck, const char *name) {
    for (int i = 0; i < ck->n_tensors; i++)
        if (strcmp(ck->tensors[i].name, name) == 0) return &ck->tensors[i];
    // Tied embeddings (Llama 3.2 1B/3B, MiniMind): the output projection is the embedding matrix.
    if (ck->has_config && ck->cfg.tie_word_embeddings && strcmp(name, "output.weight") == 0) return checkpoint_find(ck, "tok_embeddings.weight");
    return NULL;
}

// ---- against the config -------------------------------------------------------------------------------------------
static void expect_tensor(const Checkpoint *ck, const char *name, int ndim, int64_t d0, int64_t d1) {
    const Tensor *t = checkpoint_find(ck, name);
    int64_t want[2] = {d0, d1};
    char found[96], expected[96];
    shape_str(want, ndim, expected, sizeof expected);
    if (!t) input_error(ck->path, "%s: missing; expected a tensor of shape %s", name, expected);
    bool ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == want[d];
    if (!ok) input_error(ck->path, "%s: shape %s, but the config implies %s", name, shape_str(t->shape, t->ndim, found, sizeof found), expected);
    if (t->dtype != DT_BF16 && t->dtype != DT_F16 && t->dtype != DT_F32)
        input_error(ck->path, "%s: dtype %s; expected a float tensor (bf16, f16 or f32)", name, dtype_name(t->dtype));
}

const uint16_t *checkpoint_weight_bf16(const Checkpoint *ck, const char *name, void ***owned, int *n_owned) {
    const Tensor *t = checkpoint_find(ck, name);
    if (!t) input_error(ck->path, "tensor '%s' is missing", name);
    if (t->dtype == DT_BF16 && tensor_is_contiguous(t)) return t->data;
    int64_t n = tensor_numel(t);
    float *f = xmalloc((size_t)n * sizeof(float));
    tensor_to_f32(t, f);
    uint16_t *b = xmalloc((size_t)n * sizeof(uint16_t));
    for (int64_t i = 0; i < n; i++) b[i] = f32_to_bf16(f[i]);
    free(f);
    *owned = xrealloc(*owned, (size_t)(*n_owned + 1) * sizeof(void *));
    (*owned)[(*n_owned)++] = b;
    return b;
}

void checkpoint_check_against_config(const Checkpoint *ck) {
    if (!ck->has_config) input_error(ck->path, "no config (params.json or config.json) to check the tensors against");
    const Config *c = &ck->cfg;
    int64_t D = c->dim, V = c->vocab_size, F = c->ffn_hidden;
    int64_t q_rows = (int64_t)c->n_heads * c->head_dim, kv_rows = (int64_t)c->n_kv_heads * c->head_dim;
    expect_tensor(ck, "tok_embeddings.weight", 2, V, D);
    char name[128];
    for (int L = 0; L < c->n_layers; L++) {
#define LAYER(suffix) (snprintf(name, sizeof name, "layers.%d.%s", L, suffix), name)
        expect_tensor(ck, LAYER("attention.wq.weight"), 2, q_rows, D);
        expect_tensor(ck, LAYER("attention.wk.weight"), 2, kv_rows, D);
        expect_tensor(ck, LAYER("attention.wv.weight"), 2, kv_rows, D);
        expect_tensor(ck, LAYER("attention.wo.weight"), 2, D, q_rows);
        if (config_is_moe(c)) {  // the gate and every expert (ref/ref_moe.h); each expert is a SwiGLU FFN of F
            moe_weight_name(name, sizeof name, L, "gate", 0, false);
            expect_tensor(ck, name, 2, c->n_routed_experts, D);
            for (int shared = 0; shared < 2; shared++)
                for (int e = 0; e < (shared ? c->n_shared_experts : c->n_routed_experts); e++) {
                    moe_weight_name(name, sizeof name, L, "w1", e, shared), expect_tensor(ck, name, 2, F, D);
                    moe_weight_name(name, sizeof name, L, "w2", e, shared), expect_tensor(ck, name, 2, D, F);
                    moe_weight_name(name, sizeof name, L, "w3", e, shared), expect_tensor(ck, name, 2, F, D);
                }
            // an expert beyond n_routed_experts: the config and the weights disagree
            moe_weight_name(name, sizeof name, L, "w1", c->n_routed_experts, false);
            if (checkpoint_find(ck, name))
                input_error(ck->path, "%s: present, but the config says n_routed_experts = %d", name, c->n_routed_experts);
        } else {
            expect_tensor(ck, LAYER("feed_forward.w1.weight"), 2, F, D);
            expect_tensor(ck, LAYER("feed_forward.w2.weight"), 2, D, F);
            expect_tensor(ck, LAYER("feed_forward.w3.weight"), 2, F, D);
            if (checkpoint_find(ck, LAYER("feed_forward.gate.weight")))
                input_error(ck->path, "%s: a MoE gate, but the config has no n_routed_experts (a dense FFN)", name);
        }
        expect_tensor(ck, LAYER("attention_norm.weight"), 1, D, 0);
        expect_tensor(ck, LAYER("ffn_norm.weight"), 1, D, 0);
#undef LAYER
    }
    expect_tensor(ck, "norm.weight", 1, D, 0);
    expect_tensor(ck, "output.weight", 2, V, D);  // with tied embeddings checkpoint_find gives tok_embeddings
    // A layer beyond n_layers means params.json and the weights belong to different models.
    snprintf(name, sizeof name, "layers.%d.attention.wq.weight", c->n_layers);
    if (checkpoint_find(ck, name)) input_error(ck->path, "%s: present, but the config says n_layers = %d", name, c->n_layers);
}

// ---- checksums ----------------------------------------------------------------------------------------------------
#define VERIFY_PIECE ((uint64_t)64 << 20)  // bytes per piece of work: small enough to balance 16 threads on 16 GB

static int tensor_rank(const Checkpoint *ck, const char *name) {
    for (int i = 0; name && i < ck->n_tensors; i++)
        if (ck->tensors[i].name == name) return i;
    return ck->n_tensors;  // entries without a tensor come after every tensor
}

bool checkpoint_verify(const Checkpoint *ck, uint64_t *bytes_read, char *err, size_t errlen) {
    // Pieces: entry e's bytes [k*PIECE, (k+1)*PIECE). Their CRCs are computed in parallel, then joined in order.
    int64_t n_pieces = 0;
    int64_t *first_piece = xmalloc((size_t)(ck->n_checked + 1) * sizeof *first_piece);
    uint64_t total = 0;
    for (int e = 0; e < ck->n_checked; e++) {
        first_piece[e] = n_pieces;
        n_pieces += ck->checked[e].size ? (int64_t)((ck->checked[e].size + VERIFY_PIECE - 1) / VERIFY_PIECE) : 0;
        total += ck->checked[e].size;
    }
    first_piece[ck->n_checked] = n_pieces;
    int *piece_entry = xmalloc((size_t)(n_pieces + 1) * sizeof *piece_entry);
    uLong *piece_crc = xmalloc((size_t)(n_pieces + 1) * sizeof *piece_crc);
    for (int e = 0; e < ck->n_checked; e++)
        for (int64_t k = first_piece[e]; k < first_piece[e + 1]; k++) piece_entry[k] = e;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < n_pieces; k++) {
        const CheckedBytes *c = &ck->checked[piece_entry[k]];
        uint64_t begin = (uint64_t)(k - first_piece[piece_entry[k]]) * VERIFY_PIECE;
        uint64_t len = c->size - begin < VERIFY_PIECE ? c->size - begin : VERIFY_PIECE;
        piece_crc[k] = crc32_z(0, ck->files[c->file].data + c->offset + begin, (size_t)len);
    }
    int bad = -1, n_bad = 0;
    uint32_t bad_crc = 0;
    for (int e = 0; e < ck->n_checked; e++) {
        const CheckedBytes *c = &ck->checked[e];
        uLong crc = crc32_z(0, Z_NULL, 0);
        for (int64_t k = first_piece[e]; k < first_piece[e + 1]; k++) {
            uint64_t begin = (uint64_t)(k - first_piece[e]) * VERIFY_PIECE;
            uint64_t len = c->size - begin < VERIFY_PIECE ? c->size - begin : VERIFY_PIECE;
            crc = crc32_combine64(crc, piece_crc[k], (z_off64_t)len);
        }
        if ((uint32_t)crc == c->crc32) continue;
        n_bad++;
        if (bad < 0 || tensor_rank(ck, c->tensor) < tensor_rank(ck, ck->checked[bad].tensor)) bad = e, bad_crc = (uint32_t)crc;
    }
    free(first_piece);
    free(piece_entry);
    free(piece_crc);
    if (bytes_read) *bytes_read = total;
    if (bad < 0) return true;
    const CheckedBytes *c = &ck->checked[bad];
    if (errlen)
        snprintf(err, errlen, "%s: %s%s%s(zip entry %s): its bytes have CRC-32 %08x but the zip says %08x: the file is corrupt "
                 "(%d of %d entries differ); download or copy it again", ck->files[c->file].path,
                 c->tensor ? "tensor " : "", c->tensor ? c->tensor : "", c->tensor ? " " : "", c->entry, bad_crc, c->crc32, n_bad,
                 ck->n_checked);
    return false;
}

void checkpoint_verify_or_exit(const Checkpoint *ck, bool quiet) {
    uint64_t total = 0;
    for (int e = 0; e < ck->n_checked; e++) total += ck->checked[e].size;
    bool loud = !quiet && total > ((uint64_t)1 << 30);
    if (loud) fprintf(stderr, "verifying the CRC-32 of %.2f GB of zip entries...\n", (double)total / 1e9);
    double t0 = now_seconds();
    char err[1024];
    if (!checkpoint_verify(ck, NULL, err, sizeof err)) input_error(NULL, "%s", err);  // err starts with the file
    if (loud) fprintf(stderr, "verified in %.1f s (%.2f GB/s)\n", now_seconds() - t0, (double)total / 1e9 / (now_seconds() - t0));
}

void checkpoint_fingerprint(const Checkpoint *ck, char *out, size_t n) {
    uint64_t h = FNV1A64_INIT;
    if (ck->kind == CKPT_META_DIR || ck->kind == CKPT_HF_DIR) {
        char *config = path_join(ck->path, ck->kind == CKPT_META_DIR ? "params.json" : "config.json");
        size_t len;
        char *bytes = read_whole_file(config, &len);  // checkpoint_open read it a moment ago
        h = fnv1a64(h, bytes, len);
        free(bytes), free(config);
    }
    for (int i = 0; i < ck->n_tensors; i++) {
        const Tensor *t = &ck->tensors[i];
        const char *dtype = dtype_name(t->dtype);
        h = fnv1a64(h, t->name, strlen(t->name) + 1);
        h = fnv1a64(h, dtype, strlen(dtype) + 1);
        h = fnv1a64(h, &t->ndim, sizeof t->ndim);
        h = fnv1a64(h, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
    }
    for (int e = 0; e < ck->n_checked; e++) h = fnv1a64(h, &ck->checked[e].crc32, sizeof ck->checked[e].crc32);
    snprintf(out, n, "fnv1a64:%016llx", (unsigned long long)h);
}
