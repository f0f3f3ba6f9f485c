// config.c: Meta's params.json -> Config, the derived sizes, and the printed form (see config.h, formats.md §1).
//
//   {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256, "multiple_of": 1024,
//    "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0}          (Llama-3-8B)
//   -> head_dim Dh = 4096/32 = 128, n_rep = 32/8 = 4, ffn_hidden F = 14336.
//
// Absent keys take the defaults of ModelArgs in Meta's model.py. Keys we do not know are ignored (Meta loads params
// with ModelArgs(**params), and newer releases add keys); known keys with the wrong JSON type are errors.
// config_write_params_json lives in config_write.c and config_from_hf_json in hf.c.
#include "config.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

// ---- reading one key ----------------------------------------------------------------------------------------------
static const char *json_kind(const json_t *v) {
    return json_is_real(v) ? "real number" : json_is_integer(v) ? "integer" : json_is_string(v) ? "string" :
           json_is_boolean(v) ? "boolean" : json_is_array(v) ? "array" : json_is_object(v) ? "object" : "value";
}

// An integer key. JSON has no int type of its own: 4096.0 or "4096" would load in Python as a float or a string and
// break the model later, so only a JSON integer is accepted.
int config_key_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int *out, char *err, size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    const char *what = lo == 1 ? "a positive integer" : "an integer";
    if (!json_is_integer(v)) return fail_msg(err, errlen, "%s: expected %s, found a JSON %s", key, what, json_kind(v)), -1;
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi || i > INT_MAX)
        return fail_msg(err, errlen, "%s: expected %s from %lld to %lld, found %lld", key, what, (long long)lo, (long long)hi, (long long)i), -1;
    *out = (int)i;
    return 1;
}

// A number key (a JSON integer or real), finite and in [lo, hi].
int config_key_number(const json_t *obj, const char *key, double lo, double hi, double *out, char *err, size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return fail_msg(err, errlen, "%s: expected a number, found a JSON %s", key, json_kind(v)), -1;
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return fail_msg(err, errlen, "%s: expected a number from %g to %g, found %g", key, lo, hi, d), -1;
    *out = d;
    return 1;
}

int config_key_bool(const json_t *obj, const char *key, bool *out, char *err, size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return fail_msg(err, errlen, "%s: expected true or false, found a JSON %s", key, json_kind(v)), -1;
    *out = json_is_true(v);
    return 1;
}

// A key Meta's ModelArgs has no default for.
static bool required_int(const json_t *root, const char *key, int64_t hi, int *out, char *err, size_t errlen) {
    int r = config_key_int(root, key, 1, hi, out, err, errlen);
    if (r == 0) fail_msg(err, errlen, "%s: required key is missing (expected a positive integer)", key);
    return r == 1;
}

static bool read_params(Config *c, const json_t *root, char *err, size_t errlen) {
    if (!json_is_object(root)) return fail_msg(err, errlen, "expected a JSON object of model parameters");
    const json_t *vs = json_object_get(root, "vocab_size");  // Llama 1/2 wrote -1 and took the size from the tokenizer
    if (json_is_integer(vs) && json_integer_value(vs) == -1)
        return fail_msg(err, errlen, "vocab_size: -1 (a Llama 1/2 params.json); expected the vocabulary size, e.g. 128256");
    if (!required_int(root, "dim", CONFIG_MAX_DIM, &c->dim, err, errlen) ||
        !required_int(root, "n_layers", CONFIG_MAX_LAYERS, &c->n_layers, err, errlen) ||
        !required_int(root, "n_heads", CONFIG_MAX_HEADS, &c->n_heads, err, errlen) ||
        !required_int(root, "vocab_size", CONFIG_MAX_VOCAB, &c->vocab_size, err, errlen))
        return false;
    // ModelArgs defaults for what is absent.
    c->n_kv_heads = c->n_heads;
    c->multiple_of = 256;
    c->norm_eps = 1e-5;
    c->rope_theta = 500000.0;
    if (config_key_int(root, "n_kv_heads", 1, CONFIG_MAX_HEADS, &c->n_kv_heads, err, errlen) < 0) return false;
    if (config_key_int(root, "multiple_of", 1, CONFIG_MAX_FFN, &c->multiple_of, err, errlen) < 0) return false;
    int has_mult = config_key_number(root, "ffn_dim_multiplier", CONFIG_MULT_MIN, CONFIG_MULT_MAX, &c->ffn_dim_multiplier, err, errlen);
    if (has_mult < 0) return false;
    c->has_ffn_dim_multiplier = has_mult == 1;
    if (config_key_number(root, "norm_eps", CONFIG_EPS_MIN, CONFIG_EPS_MAX, &c->norm_eps, err, errlen) < 0) return false;
    if (config_key_number(root, "rope_theta", CONFIG_THETA_MIN, CONFIG_THETA_MAX, &c->rope_theta, err, errlen) < 0) return false;
    if (config_key_bool(root, "use_scaled_rope", &c->use_scaled_rope, err, errlen) < 0) return false;
    c->rope_scaling = ROPE_SCALING_LLAMA31;
    const json_t *rs = json_object_get(root, "rope_scaling");  // HF's spelling of the constants, optional
    if (rs && !json_is_null(rs)) {
        if (!rope_scaling_read_try(&c->rope_scaling, rs, "rope_scaling", err, errlen)) return false;
        c->use_scaled_rope = true;
    }
    // A mixture of experts: MiniMind's keys (ref/ref_moe.h). n_routed_experts makes the model a MoE one, unless
    // "use_moe": false says that the keys are only MiniMind's defaults written out.
    bool use_moe = true;
    if (config_key_bool(root, "use_moe", &use_moe, err, errlen) < 0) return false;
    return !use_moe || config_read_moe_keys(c, root, "n_routed_experts", err, errlen);
}

void config_moe_defaults(Config *c) {
    // MiniMindConfig's defaults (model_minimind.py @c090b69); aux_loss_alpha was 0.1 before December 2025
    c->num_experts_per_tok = 2;
    c->n_shared_experts = 1;
    c->norm_topk_prob = true;
    c->aux_loss_alpha = 0.01;
    c->seq_aux = true;
}

bool config_read_moe_keys(Config *c, const json_t *obj, const char *experts_key, char *err, size_t errlen) {
    int r = config_key_int(obj, experts_key, 1, CONFIG_MAX_EXPERTS, &c->n_routed_experts, err, errlen);
    if (r <= 0) return r == 0;  // absent: a dense model
    config_moe_defaults(c);
    if (config_key_int(obj, "num_experts_per_tok", 1, CONFIG_MAX_EXPERTS, &c->num_experts_per_tok, err, errlen) < 0 ||
        config_key_int(obj, "n_shared_experts", 0, CONFIG_MAX_EXPERTS, &c->n_shared_experts, err, errlen) < 0 ||
        config_key_bool(obj, "norm_topk_prob", &c->norm_topk_prob, err, errlen) < 0 ||
        config_key_bool(obj, "seq_aux", &c->seq_aux, err, errlen) < 0 ||
        config_key_number(obj, "aux_loss_alpha", 0.0, 1e6, &c->aux_loss_alpha, err, errlen) < 0)
        return false;
    const json_t *sf = json_object_get(obj, "scoring_func");
    if (sf && !json_is_null(sf) && !(json_is_string(sf) && strcmp(json_string_value(sf), "softmax") == 0))
        return fail_msg(err, errlen, "scoring_func: only \"softmax\" is defined (MiniMind raises NotImplementedError too)");
    return true;
}

// ---- RoPE scaling ---------------------------------------------------------------------------------------------------
const RopeScaling ROPE_SCALING_LLAMA31 = {.factor = 8.0, .low_freq_factor = 1.0, .high_freq_factor = 4.0,
                                          .original_max_position_embeddings = 8192.0};

const RopeScaling *config_rope_scaling(const Config *c) {
    if (!c->use_scaled_rope) return NULL;
    return c->rope_scaling.factor > 0 ? &c->rope_scaling : &ROPE_SCALING_LLAMA31;
}

bool rope_scaling_read_try(RopeScaling *s, const json_t *obj, const char *field, char *err, size_t errlen) {
    if (!json_is_object(obj)) return fail_msg(err, errlen, "%s: expected null or an object", field);
    const struct {
        const char *key;
        double *value, hi;
    } keys[] = {{"factor", &s->factor, 1e6}, {"low_freq_factor", &s->low_freq_factor, 1e6},
                {"high_freq_factor", &s->high_freq_factor, 1e6},
                {"original_max_position_embeddings", &s->original_max_position_embeddings, 1e9}};
    char why[256];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (config_key_number(obj, keys[i].key, 1e-6, keys[i].hi, keys[i].value, why, sizeof why) < 0)
            return fail_msg(err, errlen, "%s.%s", field, why);
    if (!(s->low_freq_factor < s->high_freq_factor))
        return fail_msg(err, errlen, "%s.high_freq_factor: %g must be larger than low_freq_factor %g", field,
                        s->high_freq_factor, s->low_freq_factor);
    return true;
}

bool config_from_params_json_try(Config *c, const char *text, size_t len, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return fail_msg(err, errlen, "not valid JSON (line %d, column %d): %s", jerr.line, jerr.column, jerr.text);
    bool ok = read_params(c, root, err, errlen);
    json_decref(root);
    return ok && config_derive_try(c, err, errlen);
}

void config_from_params_json(Config *c, const char *path) {
    if (!file_exists(path)) input_error(path, "cannot open: no such file (a Meta checkpoint directory has params.json)");
    size_t len;
    char *text = read_whole_file(path, &len);
    char err[512];
    bool ok = config_from_params_json_try(c, text, len, err, sizeof err);
    free(text);
    if (!ok) input_error(path, "%s", err);
}

// ---- derived values -----------------------------------------------------------------------------------------------
// model.py FeedForward: hidden = int(2 * (4*dim) / 3); if multiplier: hidden = int(multiplier * hidden);
// hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of). Python's int() truncates toward zero.
// Every double is compared against the range before it becomes an integer.
int ffn_hidden_size(int dim, int multiple_of, bool has_mult, double mult) {
    if (dim <= 0 || dim > CONFIG_MAX_DIM || multiple_of <= 0 || multiple_of > CONFIG_MAX_FFN) return -1;
    int64_t hidden = (int64_t)(2.0 * (4.0 * (double)dim) / 3.0);  // 10922 for dim 4096
    if (has_mult) {
        double h = mult * (double)hidden;
        if (!(h >= 0 && h <= CONFIG_MAX_FFN)) return -1;
        hidden = (int64_t)h;  // int(1.3 * 10922) = 14198
    }
    hidden = (int64_t)multiple_of * ((hidden + multiple_of - 1) / multiple_of);  // 14336
    return hidden > CONFIG_MAX_FFN ? -1 : (int)hidden;
}

bool config_derive_try(Config *c, char *err, size_t errlen) {
    static const struct { const char *key; size_t at; int max; } sizes[] = {
        {"dim", offsetof(Config, dim), CONFIG_MAX_DIM},           {"n_layers", offsetof(Config, n_layers), CONFIG_MAX_LAYERS},
        {"n_heads", offsetof(Config, n_heads), CONFIG_MAX_HEADS}, {"vocab_size", offsetof(Config, vocab_size), CONFIG_MAX_VOCAB},
        {"n_kv_heads", offsetof(Config, n_kv_heads), CONFIG_MAX_HEADS},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int v = *(const int *)((const char *)c + sizes[i].at);
        if (v <= 0 || v > sizes[i].max)
            return fail_msg(err, errlen, "%s: expected a positive integer from 1 to %d, found %d", sizes[i].key, sizes[i].max, v);
    }
    if (c->dim % c->n_heads) return fail_msg(err, errlen, "n_heads: %d does not divide dim %d", c->n_heads, c->dim);
    if (c->n_heads % c->n_kv_heads) return fail_msg(err, errlen, "n_kv_heads: %d does not divide n_heads %d", c->n_kv_heads, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->head_dim % 2) return fail_msg(err, errlen, "n_heads: head_dim = dim/n_heads = %d is odd; RoPE rotates pairs", c->head_dim);
    c->n_rep = c->n_heads / c->n_kv_heads;
    if (c->intermediate_size > 0) {
        if (c->intermediate_size > CONFIG_MAX_FFN)
            return fail_msg(err, errlen, "intermediate_size: expected at most %d, found %d", CONFIG_MAX_FFN, c->intermediate_size);
        c->ffn_hidden = c->intermediate_size;  // HF config.json states it
    } else {
        if (c->multiple_of <= 0 || c->multiple_of > CONFIG_MAX_FFN)
            return fail_msg(err, errlen, "multiple_of: expected a positive integer from 1 to %d, found %d", CONFIG_MAX_FFN, c->multiple_of);
        if (c->has_ffn_dim_multiplier && !(c->ffn_dim_multiplier >= CONFIG_MULT_MIN && c->ffn_dim_multiplier <= CONFIG_MULT_MAX))
            return fail_msg(err, errlen, "ffn_dim_multiplier: expected a number from %g to %g, found %g", CONFIG_MULT_MIN, CONFIG_MULT_MAX, c->ffn_dim_multiplier);
        c->ffn_hidden = ffn_hidden_size(c->dim, c->multiple_of, c->has_ffn_dim_multiplier, c->ffn_dim_multiplier);
        if (c->ffn_hidden <= 0)
            return fail_msg(err, errlen, "ffn_dim_multiplier: the FFN size int(2*4*dim/3) x %g, up to a multiple of %d, is not in 1..%d",
                            c->has_ffn_dim_multiplier ? c->ffn_dim_multiplier : 1.0, c->multiple_of, CONFIG_MAX_FFN);
    }
    if (c->n_routed_experts < 0 || c->n_routed_experts > CONFIG_MAX_EXPERTS)
        return fail_msg(err, errlen, "n_routed_experts: expected 0..%d, found %d", CONFIG_MAX_EXPERTS, c->n_routed_experts);
    if (c->n_routed_experts > 0 && (c->num_experts_per_tok < 1 || c->num_experts_per_tok > c->n_routed_experts))
        return fail_msg(err, errlen, "num_experts_per_tok: %d, but a token picks 1..n_routed_experts = %d experts",
                        c->num_experts_per_tok, c->n_routed_experts);
    if (c->n_shared_experts < 0 || c->n_shared_experts > CONFIG_MAX_EXPERTS)
        return fail_msg(err, errlen, "n_shared_experts: expected 0..%d, found %d", CONFIG_MAX_EXPERTS, c->n_shared_experts);
    if (!(c->norm_eps >= CONFIG_EPS_MIN && c->norm_eps <= CONFIG_EPS_MAX))
        return fail_msg(err, errlen, "norm_eps: expected a number from %g to %g, found %g", CONFIG_EPS_MIN, CONFIG_EPS_MAX, c->norm_eps);
    if (!(c->rope_theta >= CONFIG_THETA_MIN && c->rope_theta <= CONFIG_THETA_MAX))
        return fail_msg(err, errlen, "rope_theta: expected a number from %g to %g, found %g", CONFIG_THETA_MIN, CONFIG_THETA_MAX, c->rope_theta);
    return true;
}

void config_derive(Config *c, const char *path) {
    char err[512];
    if (!config_derive_try(c, err, sizeof err)) input_error(path, "%s", err);
}

// ---- printed form -------------------------------------------------------------------------------------------------
void config_print(const Config *c, int indent) {
    const int w = 20;
    printf("%*s%-*s %d   (D)\n", indent, "", w, "dim", c->dim);
    printf("%*s%-*s %d   (L)\n", indent, "", w, "n_layers", c->n_layers);
    printf("%*s%-*s %d   (H)\n", indent, "", w, "n_heads", c->n_heads);
    printf("%*s%-*s %d   (Hkv)\n", indent, "", w, "n_kv_heads", c->n_kv_heads);
    printf("%*s%-*s %d   (V)\n", indent, "", w, "vocab_size", c->vocab_size);
    if (c->intermediate_size > 0) {
        printf("%*s%-*s %d\n", indent, "", w, "intermediate_size", c->intermediate_size);
    } else {
        printf("%*s%-*s %d\n", indent, "", w, "multiple_of", c->multiple_of);
        if (c->has_ffn_dim_multiplier) printf("%*s%-*s %g\n", indent, "", w, "ffn_dim_multiplier", c->ffn_dim_multiplier);
        else printf("%*s%-*s None\n", indent, "", w, "ffn_dim_multiplier");
    }
    printf("%*s%-*s %g\n", indent, "", w, "norm_eps", c->norm_eps);
    printf("%*s%-*s %g\n", indent, "", w, "rope_theta", c->rope_theta);
    printf("%*s%-*s %s\n", indent, "", w, "use_scaled_rope", c->use_scaled_rope ? "true" : "false");
    if (c->use_scaled_rope)
        printf("%*s%-*s factor %g, low_freq_factor %g, high_freq_factor %g, original_max_position_embeddings %g\n",
               indent, "", w, "rope_scaling", config_rope_scaling(c)->factor, config_rope_scaling(c)->low_freq_factor,
               config_rope_scaling(c)->high_freq_factor, config_rope_scaling(c)->original_max_position_embeddings);
    if (c->tie_word_embeddings) printf("%*s%-*s true\n", indent, "", w, "tie_word_embeddings");
    printf("%*s%-*s %d   (Dh = D/H = %d/%d)\n", indent, "", w, "head_dim", c->head_dim, c->dim, c->n_heads);
    printf("%*s%-*s %d   (H/Hkv: query heads per kv head)\n", indent, "", w, "n_rep", c->n_rep);
    if (c->intermediate_size > 0)
        printf("%*s%-*s %d   (F, from intermediate_size)\n", indent, "", w, "ffn_hidden", c->ffn_hidden);
    else if (c->has_ffn_dim_multiplier)
        printf("%*s%-*s %d   (F: int(2*4D/3)=%d, x%g -> %d, up to a multiple of %d)\n", indent, "", w, "ffn_hidden", c->ffn_hidden,
               (int)(2.0 * 4.0 * c->dim / 3.0), c->ffn_dim_multiplier, (int)(c->ffn_dim_multiplier * (int)(2.0 * 4.0 * c->dim / 3.0)), c->multiple_of);
    else
        printf("%*s%-*s %d   (F: int(2*4D/3)=%d, up to a multiple of %d)\n", indent, "", w, "ffn_hidden", c->ffn_hidden,
               (int)(2.0 * 4.0 * c->dim / 3.0), c->multiple_of);
}
