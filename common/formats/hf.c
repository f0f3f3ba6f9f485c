// hf.c: Hugging Face Llama checkpoints (config.json + safetensors) presented in Meta's names and layout.
//
// An HF directory holds config.json, the weights as model.safetensors or as shards listed in
// model.safetensors.index.json ("weight_map": tensor name -> file), and usually tokenizer.json. This file
//   - reads config.json into a Config (config_from_hf_json), choosing Meta's multiple_of / ffn_dim_multiplier so
//     that Meta's FeedForward rule gives HF's intermediate_size;
//   - maps HF tensor names to Meta's (formats.md §5 table), ignoring *.rotary_emb.inv_freq;
//   - un-permutes the rows of q_proj [H*Dh, D] and k_proj [Hkv*Dh, D] from HF's rotate_half order to Meta's
//     interleaved pairs, into buffers owned by the Checkpoint (the other tensors stay views into the maps);
//   - with tie_word_embeddings and no lm_head.weight, presents output.weight as a second view of the embedding.
// Tensors come out in Meta's state_dict order (tok_embeddings, per layer wq wk wv wo w1 w2 w3 attention_norm
// ffn_norm, norm, output), then any tensor whose name is not a Llama weight, under its HF name.
//
// Ownership, for checkpoint_close(): ck->files are the mapped files, ck->owned holds every malloc'd buffer (name
// arenas, un-permuted rows, aligned copies), ck->tensors is one malloc'd array.
#include "formats/hf.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pth.h"
#include "formats/safetensors.h"

// ---- config.json --------------------------------------------------------------------------------------------------
// Every key is read by config.h's range-checked readers; a message names the key, never the file (the caller does).
static bool hf_int(const json_t *root, const char *key, bool required, int64_t hi, int *out, char *err, size_t errlen) {
    int r = config_key_int(root, key, 1, hi, out, err, errlen);
    if (r == 0 && required) return fail_msg(err, errlen, "%s: missing (expected a positive integer)", key);
    return r >= 0;
}

// RoPE scaling: null, "default", or "llama3" (Llama 3.1: factor 8, Llama 3.2 1B/3B: factor 32) with its four
// constants, which transformers requires and so do we.
static bool read_rope_scaling(Config *c, const json_t *rs, const char *field, char *err, size_t errlen) {
    c->rope_scaling = ROPE_SCALING_LLAMA31;
    if (!rs || json_is_null(rs)) return true;
    if (!json_is_object(rs)) return fail_msg(err, errlen, "%s: expected null or an object", field);
    const json_t *type = json_object_get(rs, "rope_type");
    if (!type) type = json_object_get(rs, "type");  // older transformers spell it "type"
    if (!json_is_string(type)) return fail_msg(err, errlen, "%s.rope_type: expected a string such as \"llama3\"", field);
    const char *ts = json_string_value(type);
    if (strcmp(ts, "default") == 0) return true;
    if (strcmp(ts, "llama3") != 0) return fail_msg(err, errlen, "%s.rope_type: \"%.64s\" is not supported (only \"llama3\" or \"default\")", field, ts);
    static const char *const required[] = {"factor", "low_freq_factor", "high_freq_factor",
                                           "original_max_position_embeddings"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!json_object_get(rs, required[i]))
            return fail_msg(err, errlen, "%s.%s: missing (llama3 scaling needs factor, low_freq_factor, high_freq_factor "
                                         "and original_max_position_embeddings)", field, required[i]);
    if (!rope_scaling_read_try(&c->rope_scaling, rs, field, err, errlen)) return false;
    c->use_scaled_rope = true;
    return true;
}

// Meta has no intermediate_size: it computes F from dim, multiple_of and ffn_dim_multiplier (formats.md §1). Pick
// values that reproduce HF's F, preferring those Meta's own params.json files use (8B: 1.3 and 1024,
// 70B: 1.3 and 4096, 405B: 1.2 and 4096), then plain powers of two, then F itself as multiple_of.
static bool choose_ffn_rule(Config *c, int intermediate, char *err, size_t errlen) {
    static const double mults[] = {0.0 /* none */, 1.3, 1.2, 1.5, 1.0};
    static const int multiple_ofs[] = {4096, 1024, 256, 2048, 512, 128, 64, 32, 16, 8, 4, 2, 1};
    for (size_t m = 0; m < sizeof mults / sizeof mults[0]; m++)
        for (size_t k = 0; k < sizeof multiple_ofs / sizeof multiple_ofs[0]; k++) {
            bool has = mults[m] != 0.0;
            if (ffn_hidden_size(c->dim, multiple_ofs[k], has, mults[m]) == intermediate) {
                c->multiple_of = multiple_ofs[k];
                c->has_ffn_dim_multiplier = has;
                c->ffn_dim_multiplier = has ? mults[m] : 0.0;
                return true;
            }
        }
    // multiple_of = F rounds any hidden in (0, F] up to F; the multiplier F / int(8D/3) brings hidden there.
    double base = (double)(int64_t)(2.0 * (4.0 * c->dim) / 3.0);  // dim <= CONFIG_MAX_DIM: no overflow
    double mult = (double)intermediate / base;
    if (ffn_hidden_size(c->dim, intermediate, true, mult) == intermediate) {
        c->multiple_of = intermediate;
        c->has_ffn_dim_multiplier = true;
        c->ffn_dim_multiplier = mult;
        return true;
    }
    return fail_msg(err, errlen, "intermediate_size: %d cannot be expressed with Meta's multiple_of / ffn_dim_multiplier rule "
                "for hidden_size %d", intermediate, c->dim);
}

static bool read_hf_config(Config *c, const json_t *root, char *err, size_t errlen) {
    if (!json_is_object(root)) return fail_msg(err, errlen, "expected a JSON object");
    int intermediate = 0;
    const json_t *mt = json_object_get(root, "model_type");
    const char *model_type = json_is_string(mt) ? json_string_value(mt) : "llama";
    const bool minimind = strcmp(model_type, "minimind") == 0, mixtral = strcmp(model_type, "mixtral") == 0;
    const json_t *is = json_object_get(root, "intermediate_size");
    const bool minimind_rule = minimind && (!is || json_is_null(is));  // MiniMind computes it when it is None
    if (!hf_int(root, "hidden_size", true, CONFIG_MAX_DIM, &c->dim, err, errlen) ||
        !hf_int(root, "num_hidden_layers", true, CONFIG_MAX_LAYERS, &c->n_layers, err, errlen) ||
        !hf_int(root, "num_attention_heads", true, CONFIG_MAX_HEADS, &c->n_heads, err, errlen) ||
        !hf_int(root, "vocab_size", true, CONFIG_MAX_VOCAB, &c->vocab_size, err, errlen) ||
        (!minimind_rule && !hf_int(root, "intermediate_size", true, CONFIG_MAX_FFN, &intermediate, err, errlen)))
        return false;
    if (minimind_rule)  // MiniMind's FeedForward: 64 * ceil(int(hidden_size * 8 / 3) / 64)
        intermediate = 64 * (((int)((double)c->dim * 8.0 / 3.0) + 63) / 64);
    c->n_kv_heads = c->n_heads;  // HF: None -> heads
    if (!hf_int(root, "num_key_value_heads", false, CONFIG_MAX_HEADS, &c->n_kv_heads, err, errlen)) return false;
    // transformers' LlamaConfig defaults: rms_norm_eps 1e-6, rope_theta 10000, tie_word_embeddings false.
    c->norm_eps = 1e-6;
    c->rope_theta = 10000.0;
    if (config_key_number(root, "rms_norm_eps", CONFIG_EPS_MIN, CONFIG_EPS_MAX, &c->norm_eps, err, errlen) < 0) return false;
    if (config_key_bool(root, "tie_word_embeddings", &c->tie_word_embeddings, err, errlen) < 0) return false;
    if (minimind) {
        // MiniMind's model ties embed_tokens and lm_head whatever its config says; its MoE keys count when use_moe
        c->tie_word_embeddings = true;
        bool use_moe = false, yarn = false;
        if (config_key_bool(root, "use_moe", &use_moe, err, errlen) < 0) return false;
        if (use_moe) {
            if (!json_object_get(root, "n_routed_experts")) c->n_routed_experts = 4;  // MiniMindConfig's default
            config_moe_defaults(c);
            if (!config_read_moe_keys(c, root, "n_routed_experts", err, errlen)) return false;
        }
        if (config_key_bool(root, "inference_rope_scaling", &yarn, err, errlen) < 0) return false;
        if (yarn) return fail_msg(err, errlen, "inference_rope_scaling: true (YaRN) is not supported");
    }
    if (mixtral) {
        // Mixtral's sparse MoE block: num_local_experts SwiGLU experts of intermediate_size, top num_experts_per_tok,
        // the picked weights always renormalised, no shared expert; router_aux_loss_coef weighs its aux loss
        if (!hf_int(root, "num_local_experts", true, CONFIG_MAX_EXPERTS, &c->n_routed_experts, err, errlen)) return false;
        config_moe_defaults(c);
        c->n_shared_experts = 0, c->seq_aux = false, c->aux_loss_alpha = 0.001;  // MixtralConfig's coefficient
        if (config_key_int(root, "num_experts_per_tok", 1, CONFIG_MAX_EXPERTS, &c->num_experts_per_tok, err, errlen) < 0 ||
            config_key_number(root, "router_aux_loss_coef", 0.0, 1e6, &c->aux_loss_alpha, err, errlen) < 0)
            return false;
        if (c->num_experts_per_tok == 1)
            return fail_msg(err, errlen, "num_experts_per_tok: 1 is not supported (Mixtral renormalises a single weight "
                                         "to 1, MiniMind's rule used here keeps it)");
        const json_t *sw = json_object_get(root, "sliding_window");
        if (sw && !json_is_null(sw)) return fail_msg(err, errlen, "sliding_window: only null (full causal attention) is supported");
    }
    // transformers 5 moves rope_theta and the scaling into "rope_parameters"; 4.x has rope_theta + rope_scaling.
    if (config_key_number(root, "rope_theta", CONFIG_THETA_MIN, CONFIG_THETA_MAX, &c->rope_theta, err, errlen) < 0) return false;
    const json_t *rp = json_object_get(root, "rope_parameters");
    if (rp && !json_is_null(rp)) {
        if (!json_is_object(rp)) return fail_msg(err, errlen, "rope_parameters: expected an object");
        if (config_key_number(rp, "rope_theta", CONFIG_THETA_MIN, CONFIG_THETA_MAX, &c->rope_theta, err, errlen) < 0)
            return fail_msg(err, errlen, "rope_parameters.rope_theta: expected a number from %g to %g", CONFIG_THETA_MIN, CONFIG_THETA_MAX);
        if (!read_rope_scaling(c, rp, "rope_parameters", err, errlen)) return false;
    } else if (!read_rope_scaling(c, json_object_get(root, "rope_scaling"), "rope_scaling", err, errlen)) {
        return false;
    }
    // What this engine cannot run must fail here, not as wrong numbers later.
    const json_t *act = json_object_get(root, "hidden_act");
    if (act && !(json_is_string(act) && strcmp(json_string_value(act), "silu") == 0))
        return fail_msg(err, errlen, "hidden_act: only \"silu\" (SwiGLU) is supported");
    bool bias = false;
    if (config_key_bool(root, "attention_bias", &bias, err, errlen) < 0) return false;
    if (bias) return fail_msg(err, errlen, "attention_bias: true is not supported");
    if (config_key_bool(root, "mlp_bias", &bias, err, errlen) < 0) return false;
    if (bias) return fail_msg(err, errlen, "mlp_bias: true is not supported");
    const json_t *hd = json_object_get(root, "head_dim");
    if (hd && !json_is_null(hd) && !(json_is_integer(hd) && c->dim % c->n_heads == 0 && json_integer_value(hd) == c->dim / c->n_heads))
        return fail_msg(err, errlen, "head_dim: expected hidden_size / num_attention_heads = %d / %d", c->dim, c->n_heads);
    if (!choose_ffn_rule(c, intermediate, err, errlen)) return false;
    c->intermediate_size = intermediate;
    return true;
}

bool config_from_hf_json_try(Config *c, const char *text, size_t len, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return fail_msg(err, errlen, "invalid JSON at line %d: %s", jerr.line, jerr.text);
    bool ok = read_hf_config(c, root, err, errlen);
    json_decref(root);
    if (!ok || !config_derive_try(c, err, errlen)) return false;
    if (c->ffn_hidden != c->intermediate_size)
        return fail_msg(err, errlen, "intermediate_size: %d, but the derived FFN size is %d", c->intermediate_size, c->ffn_hidden);
    return true;
}

void config_from_hf_json(Config *c, const char *path) {
    size_t len;
    char *text = read_whole_file(path, &len);
    char err[512];
    bool ok = config_from_hf_json_try(c, text, len, err, sizeof err);
    free(text);
    if (!ok) input_error(path, "%s", err);
}

// ---- names --------------------------------------------------------------------------------------------------------
typedef enum { NAME_KEEP, NAME_IGNORE, NAME_PERMUTE_Q, NAME_PERMUTE_K } NameAction;

// The MoE feed-forward's names: MiniMind's mlp.gate / mlp.experts.E.{gate,up,down}_proj / mlp.shared_experts.S.*,
// Mixtral's block_sparse_moe.gate / block_sparse_moe.experts.E.{w1,w2,w3} -> feed_forward.gate,
// feed_forward.experts.E.{w1,w2,w3}, feed_forward.shared_experts.S.{w1,w2,w3}. rest: the name after "model.layers.L.".
static bool hf_moe_name(const char *rest, int layer, char *out, size_t n) {
    static const struct {
        const char *hf, *meta;
    } proj[] = {{"gate_proj", "w1"}, {"down_proj", "w2"}, {"up_proj", "w3"}, {"w1", "w1"}, {"w2", "w2"}, {"w3", "w3"}};
    const char *moe = NULL;
    if (strncmp(rest, "mlp.", 4) == 0) moe = rest + 4;
    else if (strncmp(rest, "block_sparse_moe.", 17) == 0) moe = rest + 17;
    if (!moe) return false;
    if (strcmp(moe, "gate.weight") == 0) return snprintf(out, n, "layers.%d.feed_forward.gate.weight", layer), true;
    const char *group = strncmp(moe, "experts.", 8) == 0 ? "experts" : strncmp(moe, "shared_experts.", 15) == 0 ? "shared_experts" : NULL;
    if (!group) return false;
    const char *num = moe + strlen(group) + 1;
    int e, used = 0;
    if (*num < '0' || *num > '9' || sscanf(num, "%d.%n", &e, &used) != 1 || used == 0 || e < 0) return false;
    for (size_t i = 0; i < sizeof proj / sizeof proj[0]; i++) {
        size_t len = strlen(proj[i].hf);
        if (strncmp(num + used, proj[i].hf, len) == 0 && strcmp(num + used + len, ".weight") == 0)
            return snprintf(out, n, "layers.%d.feed_forward.%s.%d.%s.weight", layer, group, e, proj[i].meta), true;
    }
    return false;
}

// HF name -> Meta name in out (size n). Unknown names are kept as they are.
static NameAction hf_to_meta_name(const char *hf, char *out, size_t n) {
    static const struct {
        const char *hf, *meta;
        NameAction action;
    } per_layer[] = {
        {"self_attn.q_proj.weight", "attention.wq.weight", NAME_PERMUTE_Q},
        {"self_attn.k_proj.weight", "attention.wk.weight", NAME_PERMUTE_K},
        {"self_attn.v_proj.weight", "attention.wv.weight", NAME_KEEP},
        {"self_attn.o_proj.weight", "attention.wo.weight", NAME_KEEP},
        {"mlp.gate_proj.weight", "feed_forward.w1.weight", NAME_KEEP},
        {"mlp.down_proj.weight", "feed_forward.w2.weight", NAME_KEEP},
        {"mlp.up_proj.weight", "feed_forward.w3.weight", NAME_KEEP},
        {"input_layernorm.weight", "attention_norm.weight", NAME_KEEP},
        {"post_attention_layernorm.weight", "ffn_norm.weight", NAME_KEEP},
    };
    size_t len = strlen(hf);
    static const char inv_freq[] = "rotary_emb.inv_freq";
    if (len >= sizeof inv_freq - 1 && strcmp(hf + len - (sizeof inv_freq - 1), inv_freq) == 0) return NAME_IGNORE;
    if (strcmp(hf, "model.embed_tokens.weight") == 0) return snprintf(out, n, "tok_embeddings.weight"), NAME_KEEP;
    if (strcmp(hf, "model.norm.weight") == 0) return snprintf(out, n, "norm.weight"), NAME_KEEP;
    if (strcmp(hf, "lm_head.weight") == 0) return snprintf(out, n, "output.weight"), NAME_KEEP;
    int layer, used = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0 && hf[13] >= '0' && hf[13] <= '9') {
        for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
            if (strcmp(hf + used, per_layer[i].hf) == 0) {
                snprintf(out, n, "layers.%d.%s", layer, per_layer[i].meta);
                return per_layer[i].action;
            }
        if (hf_moe_name(hf + used, layer, out, n)) return NAME_KEEP;
    }
    snprintf(out, n, "%s", hf);
    return NAME_KEEP;
}

// Position of a Meta name in Meta's state_dict order; unknown names sort last (in the order found).
static int64_t meta_name_rank(const char *name) {
    static const char *per_layer[] = {"attention.wq.weight",    "attention.wk.weight",    "attention.wv.weight",
                                      "attention.wo.weight",    "feed_forward.w1.weight", "feed_forward.w2.weight",
                                      "feed_forward.w3.weight", "attention_norm.weight",  "ffn_norm.weight"};
    if (strcmp(name, "tok_embeddings.weight") == 0) return 0;
    if (strcmp(name, "norm.weight") == 0) return INT64_C(1) << 40;
    if (strcmp(name, "output.weight") == 0) return (INT64_C(1) << 40) + 1;
    int layer, used = 0;
    if (sscanf(name, "layers.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0) {
        const int64_t base = 1 + (int64_t)layer * (INT64_C(1) << 20);  // room for 16 names and the experts
        for (int i = 0; i < 9; i++)
            if (strcmp(name + used, per_layer[i]) == 0) return base + i;
        // the MoE feed-forward: gate, then experts 0.. (w1 w2 w3 each), then the shared experts
        int e, used2 = 0;
        char w[3];
        if (strcmp(name + used, "feed_forward.gate.weight") == 0) return base + 16;
        if (sscanf(name + used, "feed_forward.experts.%d.w%1[123].weight%n", &e, w, &used2) == 2 && used2 > 0 &&
            name[used + used2] == 0 && e >= 0 && e < 100000)
            return base + 17 + (int64_t)e * 3 + (w[0] - '1');
        if (sscanf(name + used, "feed_forward.shared_experts.%d.w%1[123].weight%n", &e, w, &used2) == 2 && used2 > 0 &&
            name[used + used2] == 0 && e >= 0 && e < 100000)
            return base + 17 + 300000 + (int64_t)e * 3 + (w[0] - '1');
    }
    return INT64_C(1) << 41;
}

typedef struct {
    Tensor t;
    int64_t rank, found;
} RankedTensor;
static int compare_ranked(const void *a, const void *b) {
    const RankedTensor *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return x->found < y->found ? -1 : (x->found > y->found);
}

static void take_owned(Checkpoint *ck, void *p) {
    if (!p) return;
    ck->owned = xrealloc(ck->owned, (size_t)(ck->n_owned + 1) * sizeof(void *));
    ck->owned[ck->n_owned++] = p;
}

// Moves the map and the buffers of sf into ck (sf's tensor array is freed; its views stay valid).
static void adopt_safetensors(Checkpoint *ck, SafetensorsFile *sf) {
    ck->files = xrealloc(ck->files, (size_t)(ck->n_files + 1) * sizeof(MappedFile));
    ck->files[ck->n_files++] = sf->file;
    take_owned(ck, sf->names);
    for (int i = 0; i < sf->n_copies; i++) take_owned(ck, sf->copies[i]);
    free(sf->copies);
    free(sf->tensors);
    free(sf->metadata_format);
    memset(sf, 0, sizeof *sf);
}

static void find_tokenizers(Checkpoint *ck, const char *dir) {
    char *p = path_join(dir, "tokenizer.json");
    if (file_exists(p)) ck->hf_tokenizer_json = p;
    else free(p);
    // HF repos of Meta's models keep Meta's tokenizer.model under original/.
    const char *candidates[] = {"tokenizer.model", "original/tokenizer.model"};
    for (int i = 0; i < 2 && !ck->tokenizer_path; i++) {
        p = path_join(dir, candidates[i]);
        if (file_exists(p)) ck->tokenizer_path = p;
        else free(p);
    }
}

static bool single_file_exists(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    bool yes = file_exists(p);
    free(p);
    return yes;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The weight files of an HF directory. With an index, *weight_map is set (caller json_decref's it).
static char **list_weight_files(const char *dir, int *n_out, json_t **weight_map, json_t **index_root) {
    char **files = NULL;
    int n = 0;
    *weight_map = NULL;
    *index_root = NULL;
    char *index_path = path_join(dir, "model.safetensors.index.json");
    if (file_exists(index_path)) {
        size_t len;
        char *text = read_whole_file(index_path, &len);
        json_error_t jerr;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        free(text);
        if (!root) input_error(index_path, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        json_t *wm = json_object_get(root, "weight_map");
        if (!json_is_object(wm) || json_object_size(wm) == 0)
            input_error(index_path, "weight_map: expected an object tensor name -> file name");
        const char *key;
        json_t *v;
        json_object_foreach(wm, key, v) {
            if (!json_is_string(v) || strchr(json_string_value(v), '/') || json_string_length(v) == 0)
                input_error(index_path, "weight_map: \"%s\": expected a file name in this directory", key);
            bool seen = false;
            for (int i = 0; i < n && !seen; i++) seen = strcmp(files[i], json_string_value(v)) == 0;
            if (seen) continue;
            files = xrealloc(files, (size_t)(n + 1) * sizeof(char *));
            files[n++] = xstrdup(json_string_value(v));
        }
        *weight_map = wm;
        *index_root = root;
    } else if (single_file_exists(dir, "model.safetensors")) {
        files = xmalloc(sizeof(char *));
        files[n++] = xstrdup("model.safetensors");
    } else {
        DIR *d = opendir(dir);
        if (!d) input_error(dir, "cannot open the directory");
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (len > 12 && strcmp(de->d_name + len - 12, ".safetensors") == 0) {
                files = xrealloc(files, (size_t)(n + 1) * sizeof(char *));
                files[n++] = xstrdup(de->d_name);
            }
        }
        closedir(d);
    }
    free(index_path);
    if (n == 0) {
        // A torch.save state dict instead (MiniMind's own checkpoints, `save_pretrained(safe_serialization=False)`):
        // pytorch_model.bin, or the one *.pth / *.bin file of the directory
        if (single_file_exists(dir, "pytorch_model.bin.index.json"))
            input_error(dir, "pytorch_model.bin.index.json: sharded .bin checkpoints are not supported (convert them "
                             "to safetensors)");
        DIR *d = opendir(dir);
        if (!d) input_error(dir, "cannot open the directory");
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if ((len > 4 && strcmp(de->d_name + len - 4, ".pth") == 0) || (len > 4 && strcmp(de->d_name + len - 4, ".bin") == 0)) {
                files = xrealloc(files, (size_t)(n + 1) * sizeof(char *));
                files[n++] = xstrdup(de->d_name);
            }
        }
        closedir(d);
        if (n > 1)
            input_error(dir, "%d .pth/.bin files beside config.json (%s, %s, ...): keep only the state dict to read",
                        n, files[0], files[1]);
    }
    if (n == 0)
        input_error(dir, "no weights: expected model.safetensors, model.safetensors.index.json, *.safetensors files, "
                         "or one torch.save state dict (pytorch_model.bin or *.pth)");
    qsort(files, (size_t)n, sizeof(char *), compare_strings);
    *n_out = n;
    return files;
}

void checkpoint_open_hf(Checkpoint *ck, const char *dir) {
    memset(ck, 0, sizeof *ck);
    ck->kind = CKPT_HF_DIR;
    ck->path = xstrdup(dir);
    char *config_path = path_join(dir, "config.json");
    if (!file_exists(config_path))
        input_error(dir, "config.json: missing (an HF checkpoint directory holds config.json beside the .safetensors files)");
    config_from_hf_json(&ck->cfg, config_path);
    ck->has_config = true;
    const Config *c = &ck->cfg;

    int n_files;
    json_t *weight_map, *index_root;
    char **file_names = list_weight_files(dir, &n_files, &weight_map, &index_root);
    SafetensorsFile *sfs = xcalloc((size_t)n_files, sizeof(SafetensorsFile));
    char **file_paths = xcalloc((size_t)n_files, sizeof(char *));
    int total = 0;
    // a torch.save state dict (one .pth/.bin file): its tensors are presented like a safetensors file's
    PthFile pth = {0};
    size_t len0 = strlen(file_names[0]);
    bool torch_file = n_files == 1 && !(len0 > 12 && strcmp(file_names[0] + len0 - 12, ".safetensors") == 0);
    for (int i = 0; i < n_files; i++) {
        file_paths[i] = path_join(dir, file_names[i]);
        if (torch_file) {
            pth_open(&pth, file_paths[i]);
            sfs[i].n_tensors = pth.index.n_tensors;
            sfs[i].tensors = pth.index.tensors;
        } else {
            safetensors_open(&sfs[i], file_paths[i]);
        }
        total += sfs[i].n_tensors;
    }

    // Collect (HF tensor, the file it comes from): from weight_map when there is an index, else every tensor.
    typedef struct {
        const Tensor *t;
        int file;
    } Source;
    Source *src = xcalloc((size_t)total + 1, sizeof(Source));
    int n_src = 0;
    if (weight_map) {
        const char *key;
        json_t *v;
        json_object_foreach(weight_map, key, v) {
            int f = 0;
            while (strcmp(file_names[f], json_string_value(v)) != 0) f++;
            const Tensor *t = safetensors_find(&sfs[f], key);
            if (!t) input_error(file_paths[f], "tensor \"%s\": listed in model.safetensors.index.json but not in this file", key);
            src[n_src++] = (Source){t, f};
        }
    } else {
        for (int f = 0; f < n_files; f++)
            for (int i = 0; i < sfs[f].n_tensors; i++) src[n_src++] = (Source){&sfs[f].tensors[i], f};
    }

    // Map names, un-permute q/k, rank in Meta's order.
    RankedTensor *out = xcalloc((size_t)n_src + 2, sizeof(RankedTensor));
    int n_out = 0;
    size_t names_cap = 0;
    for (int i = 0; i < n_src; i++) names_cap += strlen(src[i].t->name) + 32;
    char *names = xmalloc(names_cap + 32);
    size_t names_used = 0;
    for (int i = 0; i < n_src; i++) {
        const Tensor *t = src[i].t;
        const char *fpath = file_paths[src[i].file];
        char *name = names + names_used;
        NameAction act = hf_to_meta_name(t->name, name, names_cap - names_used);
        if (act == NAME_IGNORE) continue;
        names_used += strlen(name) + 1;
        for (int k = 0; k < n_out; k++)
            if (strcmp(out[k].t.name, name) == 0)
                input_error(fpath, "tensor \"%s\": a second tensor maps to %s", t->name, name);
        RankedTensor *r = &out[n_out];
        r->t = *t;
        r->t.name = name;
        r->rank = meta_name_rank(name);
        r->found = n_out;
        if (act == NAME_PERMUTE_Q || act == NAME_PERMUTE_K) {
            int heads = act == NAME_PERMUTE_Q ? c->n_heads : c->n_kv_heads;
            int64_t rows = (int64_t)heads * c->head_dim;
            char sb[160];
            if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != c->dim)
                input_error(fpath, "tensor \"%s\": shape %s, expected [%lld, %d] (%s heads x head_dim %d, hidden_size)",
                            t->name, shape_str(t->shape, t->ndim, sb, sizeof sb), (long long)rows, c->dim,
                            act == NAME_PERMUTE_Q ? "num_attention_heads" : "num_key_value_heads", c->head_dim);
            void *rows_meta = xmalloc(tensor_nbytes(t));
            qk_rows_hf_to_meta(t->data, rows_meta, heads, c->head_dim, (size_t)t->shape[1] * dtype_size(t->dtype));
            take_owned(ck, rows_meta);
            r->t.data = rows_meta;
        }
        n_out++;
    }
    // Tied embeddings: output.weight is the embedding matrix itself.
    bool has_output = false;
    const Tensor *emb = NULL;
    for (int k = 0; k < n_out; k++) {
        if (strcmp(out[k].t.name, "output.weight") == 0) has_output = true;
        if (strcmp(out[k].t.name, "tok_embeddings.weight") == 0) emb = &out[k].t;
    }
    if (c->tie_word_embeddings && !has_output && emb) {
        char *name = names + names_used;
        strcpy(name, "output.weight");
        names_used += strlen(name) + 1;
        out[n_out].t = *emb;
        out[n_out].t.name = name;
        out[n_out].rank = meta_name_rank(name);
        out[n_out].found = n_out;
        n_out++;
    }
    qsort(out, (size_t)n_out, sizeof(RankedTensor), compare_ranked);
    ck->n_tensors = n_out;
    ck->tensors = xcalloc((size_t)n_out + 1, sizeof(Tensor));
    for (int k = 0; k < n_out; k++) ck->tensors[k] = out[k].t;
    take_owned(ck, names);
    if (torch_file) {  // the map moves into ck; the index's names and arrays are no longer needed
        ck->files = xrealloc(ck->files, (size_t)(ck->n_files + 1) * sizeof(MappedFile));
        ck->files[ck->n_files++] = pth.file;
        pth_index_free(&pth.index);
    } else {
        for (int f = 0; f < n_files; f++) adopt_safetensors(ck, &sfs[f]);
    }
    find_tokenizers(ck, dir);

    for (int f = 0; f < n_files; f++) {
        free(file_names[f]);
        free(file_paths[f]);
    }
    free(file_names);
    free(file_paths);
    free(sfs);
    free(src);
    free(out);
    free(config_path);
    if (index_root) json_decref(index_root);
}

void checkpoint_open_safetensors_file(Checkpoint *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    ck->kind = CKPT_SAFETENSORS_FILE;
    ck->path = xstrdup(path);
    SafetensorsFile sf;
    safetensors_open(&sf, path);
    ck->n_tensors = sf.n_tensors;
    ck->tensors = xcalloc((size_t)sf.n_tensors + 1, sizeof(Tensor));
    memcpy(ck->tensors, sf.tensors, (size_t)sf.n_tensors * sizeof(Tensor));  // names live in sf.names, now owned
    adopt_safetensors(ck, &sf);
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    find_tokenizers(ck, dir);
    free(dir);
}
