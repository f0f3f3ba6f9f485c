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
#include <stdio.h>
#include <string.h>

#include "util.h"

// ---- reading one key ----------------------------------------------------------------------------------------------
// A positive integer key. JSON has no int type of its own: 4096.0 or "4096" would load in Python as a float or a
// string and break the model later, so only a JSON integer is accepted.
static bool get_int(const char *path, json_t *root, const char *key, bool required, int *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) input_error(path, "%s: required key is missing (expected a positive integer)", key);
        return false;
    }
    if (!json_is_integer(v)) input_error(path, "%s: expected a positive integer, found a JSON %s", key,
                                         json_is_real(v) ? "real number" : json_is_string(v) ? "string" : "non-number");
    json_int_t i = json_integer_value(v);
    if (i <= 0 || i > INT_MAX) {
        if (i == -1 && strcmp(key, "vocab_size") == 0)  // Llama 1/2 wrote -1 and took the size from the tokenizer
            input_error(path, "vocab_size: -1 (a Llama 1/2 params.json); expected the vocabulary size, e.g. 128256");
        input_error(path, "%s: expected a positive integer, found %lld", key, (long long)i);
    }
    *out = (int)i;
    return true;
}

// A positive number key (integer or real).
static bool get_number(const char *path, json_t *root, const char *key, double *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return false;
    if (!json_is_number(v)) input_error(path, "%s: expected a number, found a JSON %s", key, json_is_string(v) ? "string" : "non-number");
    double d = json_number_value(v);
    if (!(d > 0) || !isfinite(d)) input_error(path, "%s: expected a positive number, found %g", key, d);
    *out = d;
    return true;
}

static bool get_bool(const char *path, json_t *root, const char *key, bool *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return false;
    if (!json_is_boolean(v)) input_error(path, "%s: expected true or false", key);
    *out = json_is_true(v);
    return true;
}

void config_from_params_json(Config *c, const char *path) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (!file_exists(path)) input_error(path, "cannot open: no such file (a Meta checkpoint directory has params.json)");
        input_error(path, "not valid JSON (line %d, column %d): %s", jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) input_error(path, "expected a JSON object of model parameters");
    get_int(path, root, "dim", true, &c->dim);
    get_int(path, root, "n_layers", true, &c->n_layers);
    get_int(path, root, "n_heads", true, &c->n_heads);
    get_int(path, root, "vocab_size", true, &c->vocab_size);
    // ModelArgs defaults for what is absent.
    if (!get_int(path, root, "n_kv_heads", false, &c->n_kv_heads)) c->n_kv_heads = c->n_heads;
    if (!get_int(path, root, "multiple_of", false, &c->multiple_of)) c->multiple_of = 256;
    c->has_ffn_dim_multiplier = get_number(path, root, "ffn_dim_multiplier", &c->ffn_dim_multiplier);
    if (!get_number(path, root, "norm_eps", &c->norm_eps)) c->norm_eps = 1e-5;
    if (!get_number(path, root, "rope_theta", &c->rope_theta)) c->rope_theta = 500000.0;
    if (!get_bool(path, root, "use_scaled_rope", &c->use_scaled_rope)) c->use_scaled_rope = false;
    json_decref(root);
    config_derive(c, path);
}

// ---- derived values -----------------------------------------------------------------------------------------------
// model.py FeedForward: hidden = int(2 * (4*dim) / 3); if multiplier: hidden = int(multiplier * hidden);
// hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of). Python's int() truncates toward zero.
int ffn_hidden_size(int dim, int multiple_of, bool has_mult, double mult) {
    int64_t hidden = (int64_t)(2.0 * (4.0 * (double)dim) / 3.0);  // 10922 for dim 4096
    if (has_mult) hidden = (int64_t)(mult * (double)hidden);     // int(1.3 * 10922) = 14198
    hidden = (int64_t)multiple_of * ((hidden + multiple_of - 1) / multiple_of);  // 14336
    return hidden > INT_MAX ? INT_MAX : (int)hidden;
}

void config_derive(Config *c, const char *path) {
    if (c->dim <= 0) input_error(path, "dim: expected a positive integer, found %d", c->dim);
    if (c->n_layers <= 0) input_error(path, "n_layers: expected a positive integer, found %d", c->n_layers);
    if (c->n_heads <= 0) input_error(path, "n_heads: expected a positive integer, found %d", c->n_heads);
    if (c->vocab_size <= 0) input_error(path, "vocab_size: expected a positive integer, found %d", c->vocab_size);
    if (c->n_kv_heads <= 0) input_error(path, "n_kv_heads: expected a positive integer, found %d", c->n_kv_heads);
    if (c->dim % c->n_heads) input_error(path, "n_heads: %d does not divide dim %d", c->n_heads, c->dim);
    if (c->n_heads % c->n_kv_heads) input_error(path, "n_kv_heads: %d does not divide n_heads %d", c->n_kv_heads, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->head_dim % 2) input_error(path, "n_heads: head_dim = dim/n_heads = %d is odd; RoPE rotates pairs", c->head_dim);
    c->n_rep = c->n_heads / c->n_kv_heads;
    if (c->intermediate_size > 0) {
        c->ffn_hidden = c->intermediate_size;  // HF config.json states it
    } else {
        if (c->multiple_of <= 0) input_error(path, "multiple_of: expected a positive integer, found %d", c->multiple_of);
        if (c->has_ffn_dim_multiplier && !(c->ffn_dim_multiplier > 0))
            input_error(path, "ffn_dim_multiplier: expected a positive number, found %g", c->ffn_dim_multiplier);
        c->ffn_hidden = ffn_hidden_size(c->dim, c->multiple_of, c->has_ffn_dim_multiplier, c->ffn_dim_multiplier);
        if (c->ffn_hidden <= 0 || c->ffn_hidden == INT_MAX) input_error(path, "ffn_dim_multiplier: the FFN size comes out as %d", c->ffn_hidden);
    }
    if (!(c->norm_eps > 0)) input_error(path, "norm_eps: expected a positive number, found %g", c->norm_eps);
    if (!(c->rope_theta > 0)) input_error(path, "rope_theta: expected a positive number, found %g", c->rope_theta);
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
