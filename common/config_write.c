// config_write.c: writes params.json with Meta's key names and order (formats.md §1), e.g. for Llama-3-8B
//   {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256, "multiple_of": 1024,
//    "ffn_dim_multiplier": 1.3, "norm_eps": 1e-5, "rope_theta": 500000.0}
// ffn_dim_multiplier appears only when the config has one, use_scaled_rope only when it is true, rope_scaling (HF's
// spelling) only when its constants are not Meta's (Llama 3.1's 8, 1, 4, 8192), the MoE keys (MiniMind's names) only
// for a mixture-of-experts model. Reals are printed
// with the fewest digits that read back as the same double (so 1.3, not 1.3000000000000000444). Jansson builds
// the text; the file is written through an AtomicFile, so a reader never sees half of it.
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

// Fewest significant digits (%.Ng) that print v so that strtod gives v back; integral values also get enough digits
// to be printed without an exponent (500000.0 rather than 5e5), up to 17.
static int shortest_round_trip_digits(double v) {
    int digits = 1;
    for (; digits < 17; digits++) {
        char text[64];
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v) break;
    }
    if (v == floor(v) && fabs(v) < 1e16) {
        int integer_digits = fabs(v) < 1 ? 1 : (int)floor(log10(fabs(v))) + 1;
        if (integer_digits > digits) digits = integer_digits;
    }
    return digits;
}

static void add(json_t *obj, const char *key, json_t *value, const char *path) {
    if (!value || json_object_set_new(obj, key, value) != 0) fatal("%s: cannot build JSON for key %s", path, key);
}

void config_write_params_json(const Config *c, const char *path) {
    json_t *obj = json_object();
    if (!obj) fatal("out of memory building %s", path);
    add(obj, "dim", json_integer(c->dim), path);
    add(obj, "n_layers", json_integer(c->n_layers), path);
    add(obj, "n_heads", json_integer(c->n_heads), path);
    add(obj, "n_kv_heads", json_integer(c->n_kv_heads), path);
    add(obj, "vocab_size", json_integer(c->vocab_size), path);
    add(obj, "multiple_of", json_integer(c->multiple_of), path);
    if (c->has_ffn_dim_multiplier) add(obj, "ffn_dim_multiplier", json_real(c->ffn_dim_multiplier), path);
    add(obj, "norm_eps", json_real(c->norm_eps), path);
    add(obj, "rope_theta", json_real(c->rope_theta), path);
    if (c->use_scaled_rope) add(obj, "use_scaled_rope", json_true(), path);
    const RopeScaling *rs = config_rope_scaling(c);
    bool other_scaling = rs && memcmp(rs, &ROPE_SCALING_LLAMA31, sizeof *rs) != 0;
    if (other_scaling) {  // constants Meta's apply_scaling does not hard-code: written as HF's config.json does
        json_t *o = json_object();
        add(o, "factor", json_real(rs->factor), path);
        add(o, "low_freq_factor", json_real(rs->low_freq_factor), path);
        add(o, "high_freq_factor", json_real(rs->high_freq_factor), path);
        add(o, "original_max_position_embeddings", json_integer((json_int_t)rs->original_max_position_embeddings), path);
        add(obj, "rope_scaling", o, path);
    }
    if (config_is_moe(c)) {  // MiniMind's names (ref/ref_moe.h)
        add(obj, "n_routed_experts", json_integer(c->n_routed_experts), path);
        add(obj, "num_experts_per_tok", json_integer(c->num_experts_per_tok), path);
        add(obj, "n_shared_experts", json_integer(c->n_shared_experts), path);
        add(obj, "scoring_func", json_string("softmax"), path);
        add(obj, "norm_topk_prob", json_boolean(c->norm_topk_prob), path);
        add(obj, "aux_loss_alpha", json_real(c->aux_loss_alpha), path);
        add(obj, "seq_aux", json_boolean(c->seq_aux), path);
    }

    // Jansson prints every real with one precision: take the largest any of them needs.
    int digits = shortest_round_trip_digits(c->norm_eps);
    int d = shortest_round_trip_digits(c->rope_theta);
    if (d > digits) digits = d;
    if (c->has_ffn_dim_multiplier && (d = shortest_round_trip_digits(c->ffn_dim_multiplier)) > digits) digits = d;
    if (config_is_moe(c) && (d = shortest_round_trip_digits(c->aux_loss_alpha)) > digits) digits = d;
    for (int i = 0; other_scaling && i < 3; i++) {
        const double scaling[3] = {rs->factor, rs->low_freq_factor, rs->high_freq_factor};
        if ((d = shortest_round_trip_digits(scaling[i])) > digits) digits = d;
    }
    // Flags 0 (no JSON_COMPACT, no indent): one line with ", " and ": " separators, keys in insertion order.
    json_dump_to_file(obj, JSON_REAL_PRECISION(digits), path);
}

void json_dump_to_file(json_t *obj, size_t flags, const char *path) {
    char *text = json_dumps(obj, flags);
    json_decref(obj);
    if (!text) fatal("%s: cannot format JSON (is a value NaN or infinite?)", path);
    AtomicFile out;
    atomic_open(&out, path);
    xfwrite(text, strlen(text), out.f, out.tmp_path);
    xfwrite("\n", 1, out.f, out.tmp_path);
    atomic_commit(&out);
    free(text);
}
