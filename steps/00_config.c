// 00_config: reading params.json and the checkpoint.
//
// Prints the model's hyper-parameters as the tutorial's `print(config)` does, the values derived from them
// (head_dim D/H, the GQA group H/Hkv, the FFN hidden size F by Meta's FeedForward rule, step by step), and the first
// 20 tensor names of the checkpoint (`list(model.keys())[:20]`). Nothing is computed on the GPU here.
// Run: build/steps/00_config [--model DIR] [--out DIR]    Outputs: OUT/trace.json (the printed lines).
#include "step.h"

#include <stdio.h>

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "00_config");
    const Config *c = s.cfg;

    step_heading(&s, "the config (print(config))", "配置（print(config)）");
    char mult[64] = "None";
    if (c->has_ffn_dim_multiplier) snprintf(mult, sizeof mult, "%g", c->ffn_dim_multiplier);
    step_say(&s, "{'dim': %d, 'n_layers': %d, 'n_heads': %d, 'n_kv_heads': %d, 'vocab_size': %d, 'multiple_of': %d, "
                 "'ffn_dim_multiplier': %s, 'norm_eps': %g, 'rope_theta': %.1f%s}",
             c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->multiple_of, mult, c->norm_eps,
             c->rope_theta, c->use_scaled_rope ? ", 'use_scaled_rope': True" : "");

    step_heading(&s, "derived values", "推导出的数值");
    step_say(&s, "head_dim = dim / n_heads = %d / %d = %d", c->dim, c->n_heads, c->head_dim);
    step_say(&s, "n_rep (query heads per kv head) = n_heads / n_kv_heads = %d / %d = %d", c->n_heads, c->n_kv_heads,
             c->n_rep);
    if (c->intermediate_size) {
        step_say(&s, "ffn hidden = intermediate_size from config.json = %d", c->ffn_hidden);
    } else {
        int hidden = (int)(2.0 * (4.0 * c->dim) / 3.0);
        step_say(&s, "ffn hidden: int(2 * 4*dim / 3) = int(2 * %d / 3) = %d", 4 * c->dim, hidden);
        if (c->has_ffn_dim_multiplier) {
            int h2 = (int)(c->ffn_dim_multiplier * hidden);
            step_say(&s, "            int(ffn_dim_multiplier * %d) = int(%g * %d) = %d", hidden, c->ffn_dim_multiplier,
                     hidden, h2);
            hidden = h2;
        }
        step_say(&s, "            round up to a multiple of %d: %d", c->multiple_of, c->ffn_hidden);
        (void)hidden;
    }
    step_explain(&s,
                 "The key and value projections have n_kv_heads heads, not n_heads: each group of n_rep query heads "
                 "shares one key/value head (grouped-query attention), which is why wk and wv are smaller than wq.",
                 "key 和 value 投影只有 n_kv_heads 个头而不是 n_heads 个：每 n_rep 个 query 头共用一个 key/value 头"
                 "（分组查询注意力，GQA），所以 wk、wv 比 wq 小。");

    step_heading(&s, "the first 20 tensors (list(model.keys())[:20])", "前 20 个张量（list(model.keys())[:20]）");
    int n = s.ck.n_tensors < 20 ? s.ck.n_tensors : 20;
    step_say(&s, "[");
    for (int i = 0; i < n; i++) {
        const Tensor *t = &s.ck.tensors[i];
        char shape[96];
        step_say(&s, "    \"%s\"%s   # %s %s", t->name, i + 1 < n ? "," : " ", dtype_name(t->dtype),
                 shape_str(t->shape, t->ndim, shape, sizeof shape));
    }
    step_say(&s, "]");
    step_say(&s, "%s: %d", step_text(&s, "tensors in the checkpoint", "检查点中的张量总数"), s.ck.n_tensors);
    return step_finish(&s);
}
