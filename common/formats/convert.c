// convert.c: see convert.h. HF -> Meta reads through checkpoint_open_hf (names mapped, q/k rows un-permuted on
// load) and writes a torch.save-compatible .pth; Meta -> HF reads through checkpoint_open and writes safetensors,
// permuting the q/k rows back: HF_row[h*Dh + j*Dh/2 + i] = Meta_row[h*Dh + 2i + j].
#include "formats/convert.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/checkpoint.h"
#include "formats/hf.h"
#include "formats/pth_write.h"
#include "formats/pth.h"
#include "formats/zip.h"
#include "formats/safetensors.h"
#include "tokenizer/tokenizer_convert.h"
#include "tp.h"
#include "util.h"

// ---- progress on stderr (only for files large enough to take a while) -----------------------------------------------
typedef struct {
    const char *what;
    size_t done, total, next_report;
} Progress;
static const size_t REPORT_EVERY = (size_t)1 << 30;  // 1 GiB
static void progress_add(Progress *p, size_t n) {
    p->done += n;
    if (p->total < REPORT_EVERY) return;
    if (p->done >= p->next_report || p->done == p->total) {
        fprintf(stderr, "wt-convert: %s: %.2f / %.2f GB\n", p->what, p->done / 1e9, p->total / 1e9);
        p->next_report = p->done + REPORT_EVERY;
    }
}

// A contiguous copy of a strided tensor (any dtype: elements are copied as bytes); NULL when it is contiguous already.
static void *contiguous_copy_if_needed(const Tensor *t) {
    if (tensor_is_contiguous(t)) return NULL;
    size_t es = dtype_size(t->dtype);
    int64_t n = tensor_numel(t);
    uint8_t *out = xmalloc((size_t)n * es);
    int64_t idx[MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(out + (size_t)k * es, (const uint8_t *)t->data + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

static void copy_file_atomic(const char *from, const char *to) {
    size_t len;
    char *bytes = read_whole_file(from, &len);
    AtomicFile af;
    atomic_open(&af, to);
    xfwrite(bytes, len, af.f, af.tmp_path);
    atomic_commit(&af);
    free(bytes);
}

static bool is_meta_llama_name(const char *name) {
    static const char *per_layer[] = {"attention.wq.weight",    "attention.wk.weight",    "attention.wv.weight",
                                      "attention.wo.weight",    "feed_forward.w1.weight", "feed_forward.w2.weight",
                                      "feed_forward.w3.weight", "attention_norm.weight",  "ffn_norm.weight"};
    if (!strcmp(name, "tok_embeddings.weight") || !strcmp(name, "norm.weight") || !strcmp(name, "output.weight"))
        return true;
    int layer, used = 0;
    if (sscanf(name, "layers.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0 && name[7] >= '0' && name[7] <= '9') {
        for (int i = 0; i < 9; i++)
            if (strcmp(name + used, per_layer[i]) == 0) return true;
        // a mixture of experts (MiniMind, Mixtral): the gate and the experts under our names (ref/ref_moe.h)
        int e, end = 0;
        char w[2];
        if (strcmp(name + used, "feed_forward.gate.weight") == 0) return true;
        if ((sscanf(name + used, "feed_forward.experts.%d.w%1[123].weight%n", &e, w, &end) == 2 ||
             sscanf(name + used, "feed_forward.shared_experts.%d.w%1[123].weight%n", &e, w, &end) == 2) &&
            end > 0 && name[used + end] == 0 && e >= 0)
            return true;
    }
    return false;
}

// ---- HF -> Meta -----------------------------------------------------------------------------------------------------
void convert_hf_to_meta(const char *hf_dir, const char *out_dir) {
    if (!dir_exists(hf_dir)) input_error(hf_dir, "not a directory (expected an HF checkpoint: config.json + *.safetensors)");
    Checkpoint ck;
    checkpoint_open_hf(&ck, hf_dir);
    for (int i = 0; i < ck.n_tensors; i++)
        if (!is_meta_llama_name(ck.tensors[i].name))
            input_error(hf_dir, "tensor \"%s\" is not a Llama weight: a Meta checkpoint has no place for it",
                        ck.tensors[i].name);
    checkpoint_check_against_config(&ck);
    mkdir_p(out_dir);

    // consolidated.00.pth: every tensor, in Meta's state_dict order (checkpoint_open_hf sorted them).
    PthTensorSpec *specs = xcalloc((size_t)ck.n_tensors + 1, sizeof(PthTensorSpec));
    Progress prog = {.what = "consolidated.00.pth"};
    for (int i = 0; i < ck.n_tensors; i++) {
        const Tensor *t = &ck.tensors[i];
        specs[i].name = t->name;
        specs[i].dtype = t->dtype;
        specs[i].ndim = t->ndim;
        memcpy(specs[i].shape, t->shape, sizeof t->shape);
        prog.total += tensor_nbytes(t);
    }
    char *pth_path = path_join(out_dir, "consolidated.00.pth");
    PthWriter *w = pth_writer_open(pth_path, specs, ck.n_tensors);
    const size_t CHUNK = (size_t)64 << 20;  // appended in pieces so that progress moves on big tensors
    for (int i = 0; i < ck.n_tensors; i++) {
        const Tensor *t = &ck.tensors[i];
        void *copy = contiguous_copy_if_needed(t);
        const uint8_t *bytes = copy ? copy : t->data;
        size_t nb = tensor_nbytes(t);
        for (size_t off = 0; off < nb; off += CHUNK) {
            size_t n = nb - off < CHUNK ? nb - off : CHUNK;
            pth_writer_append(w, bytes + off, n);
            progress_add(&prog, n);
        }
        free(copy);
    }
    pth_writer_close(w);

    char *tok_path = path_join(out_dir, "tokenizer.model");
    if (ck.hf_tokenizer_json) tokenizer_json_to_model(ck.hf_tokenizer_json, tok_path);
    else if (ck.tokenizer_path) copy_file_atomic(ck.tokenizer_path, tok_path);
    else fprintf(stderr, "note: %s has no tokenizer.json: no tokenizer.model written\n", hf_dir);

    char *params_path = path_join(out_dir, "params.json");
    config_write_params_json(&ck.cfg, params_path);  // last: its presence marks a finished directory

    free(specs);
    free(pth_path);
    free(tok_path);
    free(params_path);
    checkpoint_close(&ck);
}

// ---- Meta -> HF -----------------------------------------------------------------------------------------------------
bool meta_to_hf_name(const char *meta, const Config *c, char *out, size_t n, int *permute_heads) {
    static const struct {
        const char *meta, *hf;
    } per_layer[] = {
        {"attention.wq.weight", "self_attn.q_proj.weight"},
        {"attention.wk.weight", "self_attn.k_proj.weight"},
        {"attention.wv.weight", "self_attn.v_proj.weight"},
        {"attention.wo.weight", "self_attn.o_proj.weight"},
        {"feed_forward.w1.weight", "mlp.gate_proj.weight"},
        {"feed_forward.w2.weight", "mlp.down_proj.weight"},
        {"feed_forward.w3.weight", "mlp.up_proj.weight"},
        {"attention_norm.weight", "input_layernorm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
    };
    *permute_heads = 0;
    if (!strcmp(meta, "tok_embeddings.weight")) return snprintf(out, n, "model.embed_tokens.weight"), true;
    if (!strcmp(meta, "norm.weight")) return snprintf(out, n, "model.norm.weight"), true;
    if (!strcmp(meta, "output.weight")) return snprintf(out, n, "lm_head.weight"), true;
    int layer, used = 0;
    if (sscanf(meta, "layers.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0 && meta[7] >= '0' && meta[7] <= '9')
        for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
            if (strcmp(meta + used, per_layer[i].meta) == 0) {
                snprintf(out, n, "model.layers.%d.%s", layer, per_layer[i].hf);
                if (i == 0) *permute_heads = c->n_heads;
                if (i == 1) *permute_heads = c->n_kv_heads;
                return true;
            }
    return false;
}

// Doubles as Python's json writes them: the shortest text that reads back to the same value, "500000.0" for integers.
static void format_double(double v, char *buf, size_t n) {
    if (v == floor(v) && fabs(v) < 1e16) {
        snprintf(buf, n, "%.1f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static const char *torch_dtype_name(DType t) {
    switch (t) {
    case DT_BF16: return "bfloat16";
    case DT_F16: return "float16";
    case DT_F32: return "float32";
    default: return NULL;
    }
}

void hf_config_write_json(const Config *c, DType dtype, bool tied_embeddings, const char *path) {
    const char *td = torch_dtype_name(dtype);
    if (!td) input_error(path, "torch_dtype: weights of dtype %s cannot be described (bf16, f16 or f32 expected)", dtype_name(dtype));
    char eps[40], theta[40];
    format_double(c->norm_eps, eps, sizeof eps);
    format_double(c->rope_theta, theta, sizeof theta);
    AtomicFile af;
    atomic_open(&af, path);
    FILE *f = af.f;
    fprintf(f, "{\n");
    fprintf(f, "  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n");
    fprintf(f, "  \"attention_bias\": false,\n");
    fprintf(f, "  \"attention_dropout\": 0.0,\n");
    fprintf(f, "  \"bos_token_id\": 128000,\n");
    fprintf(f, "  \"eos_token_id\": 128001,\n");
    fprintf(f, "  \"head_dim\": %d,\n", c->head_dim);
    fprintf(f, "  \"hidden_act\": \"silu\",\n");
    fprintf(f, "  \"hidden_size\": %d,\n", c->dim);
    fprintf(f, "  \"initializer_range\": 0.02,\n");
    fprintf(f, "  \"intermediate_size\": %d,\n", c->ffn_hidden);
    // Llama 3: 8192 positions; Llama 3.1 (scaled RoPE): 131072, as in Meta's HF repos.
    fprintf(f, "  \"max_position_embeddings\": %d,\n", c->use_scaled_rope ? 131072 : 8192);
    fprintf(f, "  \"mlp_bias\": false,\n");
    fprintf(f, "  \"model_type\": \"llama\",\n");
    fprintf(f, "  \"num_attention_heads\": %d,\n", c->n_heads);
    fprintf(f, "  \"num_hidden_layers\": %d,\n", c->n_layers);
    fprintf(f, "  \"num_key_value_heads\": %d,\n", c->n_kv_heads);
    fprintf(f, "  \"pretraining_tp\": 1,\n");
    fprintf(f, "  \"rms_norm_eps\": %s,\n", eps);
    if (c->use_scaled_rope) {  // the config's constants (Meta's apply_scaling: 8, 4, 1, 8192), keys sorted as HF's
        const RopeScaling *rs = config_rope_scaling(c);
        char factor[40], high[40], low[40];
        format_double(rs->factor, factor, sizeof factor), format_double(rs->high_freq_factor, high, sizeof high);
        format_double(rs->low_freq_factor, low, sizeof low);
        fprintf(f, "  \"rope_scaling\": {\n    \"factor\": %s,\n    \"high_freq_factor\": %s,\n"
                   "    \"low_freq_factor\": %s,\n    \"original_max_position_embeddings\": %.0f,\n"
                   "    \"rope_type\": \"llama3\"\n  },\n",
                factor, high, low, rs->original_max_position_embeddings);
    } else fprintf(f, "  \"rope_scaling\": null,\n");
    fprintf(f, "  \"rope_theta\": %s,\n", theta);
    fprintf(f, "  \"tie_word_embeddings\": %s,\n", tied_embeddings ? "true" : "false");
    fprintf(f, "  \"torch_dtype\": \"%s\",\n", td);
    fprintf(f, "  \"use_cache\": true,\n");
    fprintf(f, "  \"vocab_size\": %d\n", c->vocab_size);
    fprintf(f, "}\n");
    atomic_commit(&af);
}

static void write_generation_config(const char *path) {
    // No sampling settings: generate() then decodes greedily, which is what the comparison with our engine needs.
    AtomicFile af;
    atomic_open(&af, path);
    fprintf(af.f, "{\n  \"bos_token_id\": 128000,\n  \"eos_token_id\": 128001\n}\n");
    atomic_commit(&af);
}

void convert_meta_to_hf(const char *meta_dir, const char *out_dir) {
    if (!dir_exists(meta_dir)) input_error(meta_dir, "not a directory (expected a Meta checkpoint: params.json + consolidated.00.pth)");
    Checkpoint ck;
    checkpoint_open(&ck, meta_dir);
    if (ck.kind != CKPT_META_DIR || !ck.has_config)
        input_error(meta_dir, "expected a Meta checkpoint directory (params.json + consolidated.NN.pth)");
    checkpoint_check_against_config(&ck);
    const Config *c = &ck.cfg;

    // Names and specs; Meta's rope.freqs (Llama 2) has no HF counterpart and is recomputed by both, so it is dropped.
    SafetensorsSpec *specs = xcalloc((size_t)ck.n_tensors + 1, sizeof(SafetensorsSpec));
    int *source = xcalloc((size_t)ck.n_tensors + 1, sizeof(int));
    int *permute_heads = xcalloc((size_t)ck.n_tensors + 1, sizeof(int));
    char **names = xcalloc((size_t)ck.n_tensors + 1, sizeof(char *));
    int n = 0;
    bool has_output = false;
    DType dtype = DT_BF16;
    Progress prog = {.what = "model.safetensors"};
    for (int i = 0; i < ck.n_tensors; i++) {
        const Tensor *t = &ck.tensors[i];
        char hf[256];
        int ph;
        if (!strcmp(t->name, "rope.freqs")) continue;
        if (!meta_to_hf_name(t->name, c, hf, sizeof hf, &ph))
            input_error(meta_dir, "tensor \"%s\" is not a Llama weight: an HF LlamaForCausalLM has no place for it", t->name);
        if (!safetensors_dtype_string(t->dtype))
            input_error(meta_dir, "tensor \"%s\": dtype %s cannot be stored in safetensors here", t->name, dtype_name(t->dtype));
        if (!strcmp(t->name, "output.weight")) has_output = true;
        if (!strcmp(t->name, "tok_embeddings.weight")) dtype = t->dtype;
        names[n] = xstrdup(hf);
        specs[n].name = names[n];
        specs[n].dtype = t->dtype;
        specs[n].ndim = t->ndim;
        memcpy(specs[n].shape, t->shape, sizeof t->shape);
        source[n] = i;
        permute_heads[n] = ph;
        prog.total += tensor_nbytes(t);
        n++;
    }
    mkdir_p(out_dir);
    char *st_path = path_join(out_dir, "model.safetensors");
    SafetensorsWriter *w = safetensors_writer_open(st_path, specs, n);
    for (int k = 0; k < n; k++) {
        const Tensor *t = &ck.tensors[source[k]];
        void *copy = contiguous_copy_if_needed(t);
        const void *bytes = copy ? copy : t->data;
        if (permute_heads[k]) {
            // checkpoint_check_against_config has checked the shape [heads * Dh, D].
            void *rows_hf = xmalloc(tensor_nbytes(t));
            qk_rows_meta_to_hf(bytes, rows_hf, permute_heads[k], c->head_dim, (size_t)t->shape[1] * dtype_size(t->dtype));
            safetensors_writer_write(w, k, rows_hf);
            free(rows_hf);
        } else {
            safetensors_writer_write(w, k, bytes);
        }
        progress_add(&prog, tensor_nbytes(t));
        free(copy);
    }
    safetensors_writer_close(w);

    if (ck.tokenizer_path) {
        char *orig = path_join(out_dir, "original");
        mkdir_p(orig);
        char *tok = path_join(orig, "tokenizer.model");
        copy_file_atomic(ck.tokenizer_path, tok);
        free(tok);
        free(orig);
    }
    char *gen_path = path_join(out_dir, "generation_config.json");
    write_generation_config(gen_path);
    char *cfg_path = path_join(out_dir, "config.json");
    hf_config_write_json(c, dtype, !has_output, cfg_path);  // last: its presence marks a finished directory

    for (int k = 0; k < n; k++) free(names[k]);
    free(names);
    free(specs);
    free(source);
    free(permute_heads);
    free(st_path);
    free(gen_path);
    free(cfg_path);
    checkpoint_close(&ck);
}

// ---- model parallelism: N files and back ------------------------------------------------------------------------------
// Every output shard holds every name, in the input's order and dtype; the tensors that model parallelism splits
// hold rank r's part (tp_part: rows for dim 0, columns for dim 1), the others are copied whole. The zip's small
// records (byteorder, and what newer torch adds) are the input's, and so is its archive folder's naming, so that
// writing one file from the shards gives back the original bytes of a file our writer or torch.save made, and
// cutting torch.save's file gives the files torch.save writes for the cut tensors.
void convert_reshard(const char *in_dir, int mp, const char *out_dir) {
    char *params_in = path_join(in_dir, "params.json");
    if (!dir_exists(in_dir) || !file_exists(params_in))
        input_error(in_dir, "not a Meta checkpoint directory (params.json + consolidated.NN.pth expected)");
    Checkpoint ck;
    checkpoint_open(&ck, in_dir);  // joins the input's shards, whatever their number
    checkpoint_check_against_config(&ck);
    char why[256];
    if (!tp_check(&ck.cfg, mp, why, sizeof why)) input_error(params_in, "--mp %d: %s", mp, why);
    if (dir_exists(out_dir)) {
        DIR *d = opendir(out_dir);
        struct dirent *de;
        while (d && (de = readdir(d)))
            if (!strncmp(de->d_name, "consolidated.", 13) || !strcmp(de->d_name, "params.json"))
                input_error(out_dir, "already holds %s: the output directory must hold no checkpoint", de->d_name);
        if (d) closedir(d);
    }
    mkdir_p(out_dir);
    // The input's archive folder and its small records (byteorder, and what newer torch adds) in their places.
    PthFile first;
    char *first_path = path_join(in_dir, "consolidated.00.pth");
    pth_open(&first, first_path);
    size_t plen = strlen(first.index.archive_prefix);
    char *archive = xasprintf("%.*s", (int)(plen ? plen - 1 : 0), first.index.archive_prefix);  // without its '/'
    const ZipArchive *zip = &first.index.zip;
    PthRecord *records = xcalloc((size_t)zip->n_entries + 1, sizeof(PthRecord));
    int n_before = 0, n_after = 0;
    bool seen_data = false, seen_version = false, numeric_order = true;
    long last_key = -1;
    for (int i = 0; i < zip->n_entries; i++) {
        const ZipEntry *e = &zip->entries[i];
        const char *short_name = e->name + plen;
        if (!strcmp(short_name, "data.pkl")) continue;
        if (!strncmp(short_name, "data/", 5)) {  // torch <= 1.13 sorts the keys as text: "10" before "2"
            long key = strtol(short_name + 5, NULL, 10);
            numeric_order = numeric_order && key > last_key;
            last_key = key, seen_data = true;
            continue;
        }
        if (!strcmp(short_name, "version")) {
            seen_version = true;
            continue;
        }
        PthRecord rec = {short_name, first.file.data + e->data_offset, (size_t)e->size};
        if (seen_version) records[n_before + n_after++] = rec;
        else if (!seen_data) records[n_before++] = rec;
        // a record among the tensors has no place in torch.save's order: it is left out
    }
    // torch.save names the folder after the file ("consolidated.00"): then so are ours, each after its own file;
    // a folder named otherwise (Meta's published files: "consolidated") is kept in every output file.
    char *derived = pth_archive_name(first_path);
    bool named_by_file = strcmp(archive, derived) == 0;
    free(derived);
    PthWriterOptions opt = {.no_byteorder = true, .archive_name = named_by_file ? NULL : archive,
                            .keys_in_text_order = !numeric_order, .records_before = records,
                            .n_records_before = n_before, .records_after = records + n_before,
                            .n_records_after = n_after};

    PthTensorSpec *specs = xcalloc((size_t)ck.n_tensors + 1, sizeof(PthTensorSpec));
    TpPart *parts = xcalloc((size_t)ck.n_tensors + 1, sizeof(TpPart));
    void **copies = xcalloc((size_t)ck.n_tensors + 1, sizeof(void *));
    for (int r = 0; r < mp; r++) {
        Progress prog = {0};
        char *name = xasprintf("consolidated.%02d.pth", r);
        prog.what = name;
        for (int i = 0; i < ck.n_tensors; i++) {
            const Tensor *t = &ck.tensors[i];
            parts[i] = tp_part(&ck.cfg, t->name, mp, r);
            specs[i] = (PthTensorSpec){.name = t->name, .dtype = t->dtype, .ndim = t->ndim};
            memcpy(specs[i].shape, t->shape, sizeof t->shape);
            if (parts[i].dim >= 0) {
                if (parts[i].dim >= t->ndim || t->shape[parts[i].dim] != parts[i].full)
                    fatal("reshard: %s: dim %d is not %lld long", t->name, parts[i].dim, (long long)parts[i].full);
                specs[i].shape[parts[i].dim] = parts[i].count;
            }
            int64_t numel = 1;
            for (int d = 0; d < t->ndim; d++) numel *= specs[i].shape[d];
            prog.total += (size_t)numel * dtype_size(t->dtype);
            if (r == 0) copies[i] = contiguous_copy_if_needed(t);
        }
        char *path = path_join(out_dir, name);
        PthWriter *w = pth_writer_open_opts(path, specs, ck.n_tensors, &opt);
        for (int k = 0; k < ck.n_tensors; k++) {
            const int i = pth_writer_next_tensor(w);  // declaration order, or torch 1.13's (keys_in_text_order)
            const Tensor *t = &ck.tensors[i];
            const uint8_t *bytes = copies[i] ? copies[i] : t->data;
            const TpPart *p = &parts[i];
            size_t es = dtype_size(t->dtype);
            if (p->dim < 0) {  // whole
                pth_writer_append(w, bytes, tensor_nbytes(t));
                progress_add(&prog, tensor_nbytes(t));
                continue;
            }
            int64_t outer = 1, inner = 1;  // [outer, full, inner] -> [outer, count, inner]
            for (int d = 0; d < p->dim; d++) outer *= t->shape[d];
            for (int d = p->dim + 1; d < t->ndim; d++) inner *= t->shape[d];
            size_t run = (size_t)(p->count * inner) * es, row = (size_t)(p->full * inner) * es;
            for (int64_t o = 0; o < outer; o++) {
                pth_writer_append(w, bytes + (size_t)o * row + (size_t)(p->start * inner) * es, run);
                progress_add(&prog, run);
            }
        }
        pth_writer_close(w);
        free(path), free(name);
    }
    for (int i = 0; i < ck.n_tensors; i++) free(copies[i]);
    if (ck.tokenizer_path) {
        char *tok = path_join(out_dir, "tokenizer.model");
        copy_file_atomic(ck.tokenizer_path, tok);
        free(tok);
    }
    char *params_out = path_join(out_dir, "params.json");
    copy_file_atomic(params_in, params_out);  // the same bytes, last: its presence marks a finished directory
    free(params_out), free(params_in), free(first_path), free(archive), free(specs), free(parts), free(copies);
    free(records);
    pth_close(&first);
    checkpoint_close(&ck);
}
