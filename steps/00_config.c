// 00_config: reading params.json and the checkpoint.
//
// Prints the model's hyper-parameters as the tutorial's `print(config)` does, the values derived from them
// (head_dim D/H, the GQA group H/Hkv, the FFN hidden size F by Meta's FeedForward rule, step by step), and the first
// 20 tensor names of the checkpoint (`list(model.keys())[:20]`). Nothing is computed on the GPU here.
// Run: build/steps/00_config [--model DIR] [--out DIR]    Outputs: OUT/trace.json (the printed lines).
#include "step.h"

#include "draw/font.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The width of text in terminal cells (a Chinese character takes two), for the columns of the map's table.
static int cells(const char *text) {
    int w = 0;
    for (const char *p = text; *p;) {
        uint32_t cp = font_utf8_next(&p);
        w += (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                     (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6)
                 ? 2
                 : 1;
    }
    return w;
}
static void pad_to(StrBuf *b, const char *text, int width) {
    int w = cells(text);
    strbuf_addf(b, "%s%*s", text, w < width ? width - w : 1, "");
}

// The map of the model (the sources' block diagram, common/draw/diagram.h) with this model's shapes: printed as a
// table of the boxes that hold a weight, and drawn as architecture.png. The shapes on the map come from the config
// (the description's formulas); each is checked here against the tensor in the checkpoint.
static void draw_map(Step *s) {
    step_heading(s, "the map of the model (architecture.png)", "模型结构图（architecture.png）");
    step_explain(s,
                 "The block diagram of the sources with this model's numbers: the weights of layer 0 as stored (every "
                 "layer has the same shapes), the tensor-parallel split of each one (ColumnPar, RowPar, VocabPar), and "
                 "the chapters that show each box. Every chapter starts by naming its box and draws it highlighted "
                 "(where.png).",
                 "来源文档中的框图，填上本模型的数字：第 0 层按存储格式给出的权重（每一层形状相同）、每个权重的张量并行切分方式"
                 "（ColumnPar、RowPar、VocabPar），以及讲解每个框的章节。每一章开头都会说出它对应的框，并画出高亮的位置图（where.png）。");
    DiagramModel m;
    step_map_model(s, &m);
    int label_w = 0, weight_w = 0;  // the columns: as wide as their widest entry on this model
    for (int i = 0; i < diagram_n_boxes(); i++) {
        const char *id = diagram_box_id(i);
        char *weight = diagram_has_box(&m, id) ? diagram_box_weight(&m, id) : NULL;
        if (!weight) continue;
        char *label = diagram_box_label(&m, id, s->lang);
        if (cells(label) > label_w) label_w = cells(label);
        if (cells(weight) > weight_w) weight_w = cells(weight);
        free(label), free(weight);
    }
    for (int i = 0; i < diagram_n_boxes(); i++) {
        const char *id = diagram_box_id(i);
        char *weight = diagram_has_box(&m, id) ? diagram_box_weight(&m, id) : NULL;
        if (!weight) continue;
        char *label = diagram_box_label(&m, id, s->lang), *chapters = diagram_box_chapters(&m, id);
        char *shape = diagram_box_shape(&m, id);
        const char *par = diagram_box_parallel(id);
        StrBuf row = {0};
        strbuf_addf(&row, "  ");
        pad_to(&row, label, label_w + 2);
        pad_to(&row, weight, weight_w + 2);
        pad_to(&row, par ? par : "", 10);
        strbuf_addf(&row, "%s %s", step_text(s, "chapters", "章节"), chapters);
        step_say(s, "%s", row.data);
        free(strbuf_take(&row));
        // the description's formula against the checkpoint (a tied output.weight is tok_embeddings.weight)
        const char *tensor = weight;  // "name [shape] dtype": the name ends at the first space
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(tensor, " "), tensor);
        const Tensor *t = checkpoint_find(&s->ck, name);
        if (!t && strcmp(name, "output.weight") == 0 && s->cfg->tie_word_embeddings)
            t = checkpoint_find(&s->ck, "tok_embeddings.weight");
        if (t) {
            char have[96];
            shape_str(t->shape, t->ndim, have, sizeof have);
            if (strcmp(have, shape) != 0) fatal("00_config: the map gives %s the shape %s, the checkpoint %s", name, shape, have);
        }
        free(label), free(chapters), free(shape), free(weight);
    }
    char *path = step_path(s, "architecture.png");
    diagram_png(path, &m, s->lang);
    free(path);
    step_image(s, "architecture.png",
               step_text(s, "the map: the sources' block diagram with this model's shapes; the numbers are chapters",
                         "结构图：来源文档的框图，标上本模型的形状；黑色数字是章节"));
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "00_config");
    const Config *c = s.cfg;

    step_heading(&s, "the config (print(config))", "配置（print(config)）");
    char mult[64] = "None";
    if (c->has_ffn_dim_multiplier) snprintf(mult, sizeof mult, "%g", c->ffn_dim_multiplier);
    char moe[320] = "";  // a mixture-of-experts model: MiniMind's keys (chapter 20)
    if (config_is_moe(c))
        snprintf(moe, sizeof moe, ", 'n_routed_experts': %d, 'num_experts_per_tok': %d, 'n_shared_experts': %d, "
                 "'scoring_func': 'softmax', 'norm_topk_prob': %s, 'aux_loss_alpha': %g, 'seq_aux': %s",
                 c->n_routed_experts, c->num_experts_per_tok, c->n_shared_experts, c->norm_topk_prob ? "True" : "False",
                 c->aux_loss_alpha, c->seq_aux ? "True" : "False");
    step_say(&s, "{'dim': %d, 'n_layers': %d, 'n_heads': %d, 'n_kv_heads': %d, 'vocab_size': %d, 'multiple_of': %d, "
                 "'ffn_dim_multiplier': %s, 'norm_eps': %g, 'rope_theta': %.1f%s%s}",
             c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->multiple_of, mult, c->norm_eps,
             c->rope_theta, c->use_scaled_rope ? ", 'use_scaled_rope': True" : "", moe);

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
    if (config_is_moe(c))
        step_say(&s, step_text(&s, "mixture of experts: every layer has %d routed experts and %d shared, each a SwiGLU "
                                   "FFN of hidden size %d; a token runs %d of the routed ones (chapter 20)",
                               "混合专家：每层有 %d 个路由专家和 %d 个共享专家，每个都是隐藏维度 %d 的 SwiGLU "
                               "前馈网络；每个 token 运行其中 %d 个路由专家（第 20 章）"),
                 c->n_routed_experts, c->n_shared_experts, c->ffn_hidden, c->num_experts_per_tok);
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

    draw_map(&s);
    return step_finish(&s);
}
