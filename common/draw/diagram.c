// diagram.c: the map of the LLaMA-3 transformer: the description (boxes, arrows, chapters) and its three renderings
// (the whole map as PNG and as SVG, the small map with a chapter highlighted). See diagram.h.
//
// The description follows the box diagram of the sources (seeds/000: embedding, rotary position encoding, the block
// repeated n_layers times with RMSNorm, attention with Wq/Wk/Wv ColumnPar and Wo RowPar, RoPE, scores, mask,
// softmax, output, residual, RMSNorm, SwiGLU with W1/W3 ColumnPar and W2 RowPar, residual, final RMSNorm, output
// projection, the last token's logits), with the residual stream drawn as the skip lines it is, and the MoE block of
// MiniMind (seeds/004) in place of SwiGLU on a MoE model. Coordinates are those of the whole map, in pixels; the small
// map scales them. Texts are templates: {D} is replaced by the model's dim, and so on (see symbol_value).
#include "draw/diagram.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/draw.h"
#include "draw/font.h"

// ---- the description --------------------------------------------------------------------------------------------------

typedef enum { K_IO, K_OP, K_WEIGHT, K_GROUP, K_ADD, K_NOTE } Kind;
typedef enum { V_ALL, V_DENSE, V_MOE, V_MOE_SHARED } Variant;  // which models have the box

typedef struct {
    const char *id, *parent;  // parent: the group drawn around the box
    Kind kind;
    Variant variant;
    int x, y, w, h;
    const char *label_en, *label_zh;  // the whole map's label (a template)
    const char *short_en, *short_zh;  // the small map's label (NULL: none)
    const char *tensor;               // the checkpoint tensor (layer 0's) the box holds, or NULL
    const char *shape;                // its shape from the config: a template such as "{HDh}, {D}"
    const char *notes_en, *notes_zh;  // more lines (templates, '\n' between lines; zh NULL: the English ones)
    const char *parallel;             // how Meta's tensor parallelism splits the weight: ColumnPar, RowPar, VocabPar
} Box;

#define AX 480  // the main axis: the x of the residual stream's boxes

static const Box BOXES[] = {
    // outside the block
    {"params", NULL, K_NOTE, V_ALL, 20, 84, 240, 158, "params.json", NULL, "config", "配置", NULL, NULL,
     "dim {D} · n_layers {L}\nn_heads {H} · n_kv_heads {Hkv}\nhead_dim {Dh} · ffn {F}\nvocab_size {V}\n"
     "rope_theta {theta}\nnorm_eps {eps}", NULL, NULL},
    {"tokens", NULL, K_IO, V_ALL, 300, 90, 360, 54, "Input: tokens", "输入：token", "tokens", "token", NULL, NULL,
     "prompt → [T] token ids (T = {T})", "提示词 → [T] 个 token id（T = {T}）", NULL},
    {"embed", NULL, K_WEIGHT, V_ALL, 270, 170, 420, 72, "Token embedding", "Token 嵌入", "embedding", "嵌入",
     "tok_embeddings.weight", "{V}, {D}", "→ x [T, {D}]", NULL, "VocabPar"},
    {"rope_freqs", NULL, K_OP, V_ALL, 960, 574, 280, 72, "Rotary position encoding", "旋转位置编码", "freqs_cis",
     "freqs_cis", NULL, NULL, "freqs_cis [T, {Dh2}] complex\nθ = {theta}, for every layer",
     "freqs_cis [T, {Dh2}] 复数\nθ = {theta}，各层共用", NULL},
    // the block, repeated n_layers times
    {"block", NULL, K_GROUP, V_ALL, 30, 262, 900, 1424, "Transformer block × {L}", "Transformer 块 × {L}",
     "block ×{L}", "块 ×{L}", NULL, NULL, "layers.0 … layers.{L1}, each with its own weights",
     "layers.0 … layers.{L1}，各层权重不同", NULL},
    {"attn_norm", "block", K_WEIGHT, V_ALL, 270, 334, 420, 54, "RMSNorm (attention)", "RMSNorm（注意力前）", "RMSNorm",
     "RMSNorm", "layers.0.attention_norm.weight", "{D}", NULL, NULL, NULL},
    {"attn", "block", K_GROUP, V_ALL, 80, 412, 800, 650, "Multi-head attention (GQA)", "多头注意力（GQA）", "attention",
     "注意力", NULL, NULL, "{H} query heads, {Hkv} {kv heads}, {rep} queries each",
     "{H} 个 query 头，{Hkv} 个 kv 头，每组 {rep} 个", NULL},
    {"wq", "attn", K_WEIGHT, V_ALL, 100, 476, 240, 72, "Wq", NULL, "Wq", NULL, "layers.0.attention.wq.weight",
     "{HDh}, {D}", "→ q [T, {H}, {Dh}]", NULL, "ColumnPar"},
    {"wk", "attn", K_WEIGHT, V_ALL, 360, 476, 240, 72, "Wk", NULL, "Wk", NULL, "layers.0.attention.wk.weight",
     "{KVDh}, {D}", "→ k [T, {Hkv}, {Dh}]", NULL, "ColumnPar"},
    {"wv", "attn", K_WEIGHT, V_ALL, 620, 476, 240, 72, "Wv", NULL, "Wv", NULL, "layers.0.attention.wv.weight",
     "{KVDh}, {D}", "→ v [T, {Hkv}, {Dh}]", NULL, "ColumnPar"},
    {"rope", "attn", K_OP, V_ALL, 130, 583, 440, 54, "Apply rotary embedding (q, k)", "施加旋转位置编码（q、k）", "RoPE",
     "RoPE", NULL, NULL, "pairs [T, {Dh2}, 2] × freqs_cis", "两两成对 [T, {Dh2}, 2] × freqs_cis", NULL},
    {"scores", "attn", K_OP, V_ALL, 130, 663, 440, 54, "scores = q · kᵀ / √{Dh}", NULL, "q·kᵀ", NULL, NULL, NULL,
     "[{H}, T, T] fp32", NULL, NULL},
    {"kv_cache", "attn", K_OP, V_ALL, 630, 663, 220, 72, "KV cache", "KV 缓存", "KV cache", "KV 缓存", NULL, NULL,
     "k (after RoPE) and v\nof the tokens so far", "已算 token 的\nk（RoPE 之后）和 v", NULL},
    {"mask", "attn", K_OP, V_ALL, 130, 743, 440, 54, "+ causal mask", "+ 因果掩码", "mask", "掩码", NULL, NULL,
     "−∞ above the diagonal", "对角线以上为 −∞", NULL},
    {"softmax", "attn", K_OP, V_ALL, 130, 823, 440, 54, "softmax(scores)", NULL, "softmax", NULL, NULL, NULL,
     "each row sums to 1; fp32 → bf16", "每行之和为 1；fp32 → bf16", NULL},
    {"attn_out", "attn", K_OP, V_ALL, 200, 903, 560, 54, "output = weights · v", "输出 = 权重 · v", "·v", NULL, NULL,
     NULL, "heads side by side: [T, {H} × {Dh}] = [T, {HDh}]", "各头并排：[T, {H} × {Dh}] = [T, {HDh}]", NULL},
    {"wo", "attn", K_WEIGHT, V_ALL, 270, 974, 420, 72, "Wo", NULL, "Wo", NULL, "layers.0.attention.wo.weight",
     "{D}, {HDh}", "→ [T, {D}]", NULL, "RowPar"},
    {"res1", "block", K_ADD, V_ALL, AX - 14, 1078, 28, 28, "residual: h = x + attention(norm(x))",
     "残差：h = x + attention(norm(x))", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"ffn_norm", "block", K_WEIGHT, V_ALL, 270, 1134, 420, 54, "RMSNorm (feed-forward)", "RMSNorm（前馈前）", "RMSNorm",
     "RMSNorm", "layers.0.ffn_norm.weight", "{D}", NULL, NULL, NULL},
    // the feed-forward: SwiGLU on a dense model ...
    {"ffn", "block", K_GROUP, V_DENSE, 80, 1212, 800, 406, "Feed-forward (SwiGLU)", "前馈网络（SwiGLU）", "SwiGLU",
     "SwiGLU", NULL, NULL, "hidden size F = {F}", "隐藏维度 F = {F}", NULL},
    {"w1", "ffn", K_WEIGHT, V_DENSE, 130, 1276, 320, 72, "W1 (gate)", "W1（门控）", "W1", NULL,
     "layers.0.feed_forward.w1.weight", "{F}, {D}", "→ [T, {F}]", NULL, "ColumnPar"},
    {"w3", "ffn", K_WEIGHT, V_DENSE, 510, 1276, 320, 72, "W3 (up)", "W3（上投影）", "W3", NULL,
     "layers.0.feed_forward.w3.weight", "{F}, {D}", "→ [T, {F}]", NULL, "ColumnPar"},
    {"silu", "ffn", K_OP, V_DENSE, 170, 1374, 240, 54, "SiLU", NULL, "SiLU", NULL, NULL, NULL, "silu(x · w1ᵀ)", NULL,
     NULL},
    {"mul", "ffn", K_OP, V_DENSE, 230, 1454, 500, 54, "element-wise multiply", "逐元素相乘", "⊙", NULL, NULL, NULL,
     "silu(x · w1ᵀ) ⊙ (x · w3ᵀ)   [T, {F}]", NULL, NULL},
    {"w2", "ffn", K_WEIGHT, V_DENSE, 270, 1530, 420, 72, "W2 (down)", "W2（下投影）", "W2", NULL,
     "layers.0.feed_forward.w2.weight", "{D}, {F}", "→ [T, {D}]", NULL, "RowPar"},
    // ... the mixture of experts on a MoE model (MiniMind's MOEFeedForward)
    {"moe", "block", K_GROUP, V_MOE, 80, 1212, 800, 406, "Mixture of experts (MoE)", "混合专家（MoE）", "MoE", "MoE",
     NULL, NULL, "{E} experts, top-{K}, {S} shared; F = {F}",
     "{E} 个专家，取前 {K} 个，{S} 个共享；F = {F}", NULL},
    {"gate", "moe", K_WEIGHT, V_MOE, 100, 1276, 360, 72, "Router gate", "路由门控", "gate", "门控",
     "layers.0.feed_forward.gate.weight", "{E}, {D}", "softmax → scores [T, {E}]", NULL, NULL},
    {"shared", "moe", K_WEIGHT, V_MOE_SHARED, 500, 1276, 360, 72, "Shared experts × {S}", "共享专家 × {S}", "shared",
     "共享", "layers.0.feed_forward.shared_experts.0.w1.weight", "{F}, {D}", "always on, not weighted",
     "始终参与，不加权", NULL},
    {"topk", "moe", K_OP, V_MOE, 100, 1374, 360, 54, "top-k routing", "top-k 路由", "top-k", NULL, NULL, NULL,
     "{K} of {E} experts per token", "每个 token 选 {E} 个中的 {K} 个", NULL},
    {"experts", "moe", K_WEIGHT, V_MOE, 100, 1450, 360, 72, "Routed experts × {E} (SwiGLU)", "路由专家 × {E}（SwiGLU）",
     "experts", "专家", "layers.0.feed_forward.experts.0.w1.weight", "{F}, {D}", "w3 alike, w2 [{D}, {F}]",
     "w3 相同，w2 [{D}, {F}]", NULL},
    {"combine", "moe", K_OP, V_MOE, 230, 1546, 500, 54, "Σ weight · expert + shared", "Σ 权重 · 专家 + 共享", "Σ",
     NULL, NULL, NULL, "→ [T, {D}]", NULL, NULL},
    {"res2", "block", K_ADD, V_ALL, AX - 14, 1638, 28, 28, "residual: out = h + ffn(norm(h))",
     "残差：out = h + ffn(norm(h))", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    // after the last block
    {"final_norm", NULL, K_WEIGHT, V_ALL, 270, 1716, 420, 54, "Final RMSNorm", "最终 RMSNorm", "RMSNorm", "RMSNorm",
     "norm.weight", "{D}", NULL, NULL, NULL},
    {"output", NULL, K_WEIGHT, V_ALL, 270, 1796, 420, 72, "Output projection", "输出投影", "output", "输出投影",
     "output.weight", "{V}, {D}", "→ logits [T, {V}]", NULL, "ColumnPar"},
    {"logits", NULL, K_IO, V_ALL, 270, 1894, 420, 54, "Logits of the last token", "最后一个 token 的 logits", "logits",
     "logits", NULL, NULL, "[{V}] fp32 → argmax → next token", "[{V}] fp32 → argmax → 下一个 token", NULL},
    {"generate", NULL, K_OP, V_ALL, 960, 1894, 280, 54, "Generate", "生成", "generate", "生成", NULL, NULL,
     "append it, run the next position", "追加它，计算下一个位置", NULL},
};
#define N_BOXES ((int)(sizeof BOXES / sizeof BOXES[0]))

// Arrows: from an anchor on one box to an anchor on another. side T/B/L/R and f along that side (0..1); dy moves the
// point. Route: straight; down-across-down with the crossing at y = via (or halfway when via is 0); or out to x = via,
// along it, and back in (the residual stream's skip lines, the generation loop).
typedef enum { R_STRAIGHT, R_VHV, R_VIA_X } Route;
typedef struct {
    const char *box;
    char side;
    float f;
    int dy;
} Anchor;
typedef struct {
    Anchor a, b;
    Route route;
    int via;
    bool dashed, dot;  // dot: a branch point at the start (where the residual stream splits)
} Arrow;

static const Arrow ARROWS[] = {
    {{"tokens", 'B', 0.5f, 0}, {"embed", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"embed", 'B', 0.5f, 0}, {"attn_norm", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"attn_norm", 'T', 0.5f, -16}, {"res1", 'L', 0.5f, 0}, R_VIA_X, 52, false, true},
    {{"attn_norm", 'B', 0.5f, 0}, {"wq", 'T', 0.5f, 0}, R_VHV, 464, false, false},
    {{"attn_norm", 'B', 0.5f, 0}, {"wk", 'T', 0.5f, 0}, R_VHV, 464, false, false},
    {{"attn_norm", 'B', 0.5f, 0}, {"wv", 'T', 0.5f, 0}, R_VHV, 464, false, false},
    {{"wq", 'B', 0.5f, 0}, {"rope", 'T', 0.2045f, 0}, R_STRAIGHT, 0, false, false},
    {{"wk", 'B', 0.5f, 0}, {"rope", 'T', 0.7955f, 0}, R_STRAIGHT, 0, false, false},
    {{"rope_freqs", 'L', 0.5f, 0}, {"rope", 'R', 0.5f, 0}, R_STRAIGHT, 0, true, false},
    {{"rope", 'B', 0.5f, 0}, {"scores", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"scores", 'B', 0.5f, 0}, {"mask", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"mask", 'B', 0.5f, 0}, {"softmax", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"softmax", 'B', 0.5f, 0}, {"attn_out", 'T', 0.268f, 0}, R_STRAIGHT, 0, false, false},
    {{"wv", 'B', 0.5f, 0}, {"kv_cache", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"kv_cache", 'B', 0.5f, 0}, {"attn_out", 'T', 0.8929f, 0}, R_STRAIGHT, 0, false, false},
    {{"attn_out", 'B', 0.5f, 0}, {"wo", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"wo", 'B', 0.5f, 0}, {"res1", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"res1", 'B', 0.5f, 0}, {"ffn_norm", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"ffn_norm", 'T', 0.5f, -14}, {"res2", 'L', 0.5f, 0}, R_VIA_X, 52, false, true},
    // SwiGLU
    {{"ffn_norm", 'B', 0.5f, 0}, {"w1", 'T', 0.5f, 0}, R_VHV, 1264, false, false},
    {{"ffn_norm", 'B', 0.5f, 0}, {"w3", 'T', 0.5f, 0}, R_VHV, 1264, false, false},
    {{"w1", 'B', 0.5f, 0}, {"silu", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"silu", 'B', 0.5f, 0}, {"mul", 'T', 0.14f, 0}, R_STRAIGHT, 0, false, false},
    {{"w3", 'B', 0.5f, 0}, {"mul", 'T', 0.86f, 0}, R_STRAIGHT, 0, false, false},
    {{"mul", 'B', 0.5f, 0}, {"w2", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"w2", 'B', 0.5f, 0}, {"res2", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    // MoE
    {{"ffn_norm", 'B', 0.5f, 0}, {"gate", 'T', 0.5f, 0}, R_VHV, 1264, false, false},
    {{"ffn_norm", 'B', 0.5f, 0}, {"shared", 'T', 0.5f, 0}, R_VHV, 1264, false, false},
    {{"gate", 'B', 0.5f, 0}, {"topk", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"topk", 'B', 0.5f, 0}, {"experts", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"experts", 'B', 0.5f, 0}, {"combine", 'T', 0.1f, 0}, R_STRAIGHT, 0, false, false},
    {{"shared", 'B', 0.5f, 0}, {"combine", 'T', 0.9f, 0}, R_STRAIGHT, 0, false, false},
    {{"combine", 'B', 0.5f, 0}, {"res2", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    // after the block
    {{"res2", 'B', 0.5f, 0}, {"final_norm", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"final_norm", 'B', 0.5f, 0}, {"output", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"output", 'B', 0.5f, 0}, {"logits", 'T', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"logits", 'R', 0.5f, 0}, {"generate", 'L', 0.5f, 0}, R_STRAIGHT, 0, false, false},
    {{"generate", 'R', 0.5f, 0}, {"tokens", 'R', 0.5f, 0}, R_VIA_X, 1262, true, false},
};
#define N_ARROWS ((int)(sizeof ARROWS / sizeof ARROWS[0]))

// The chapters: a chapter's number, its id, the boxes it covers (the first one the model has is the one its line
// names). A box's chapter numbers on the whole map are the chapters whose list names it.
static const DiagramChapter MAP_CHAPTERS[] = {
    {"00", "00_config", "params", true},
    {"01", "01_tokenize", "tokens", false},
    {"02", "02_embed", "embed", false},
    {"03", "03_rmsnorm", "attn_norm", false},
    {"04", "04_query", "wq", false},
    {"05", "05_rope", "rope rope_freqs", false},
    {"06", "06_key", "wk rope", false},
    {"07", "07_scores", "scores", false},
    {"08", "08_mask", "mask", false},
    {"09", "09_softmax", "softmax", false},
    {"10", "10_value", "wv attn_out", false},
    {"11", "11_multihead", "attn", false},
    {"12", "12_output", "wo res1", false},
    {"13", "13_ffn", "ffn moe ffn_norm res2", false},
    {"14", "14_layers", "block", false},
    {"15", "15_logits", "logits final_norm output", false},
    {"16", "16_generate", "generate kv_cache", false},
    {"17", "17_packed", "wq wk wv w1 w3 res1 ffn_norm", false},          // wqkv, w13, fused add + RMSNorm
    {"18", "18_tensor_parallel", "wq wk wv wo w1 w3 w2 embed output", false},  // the split weights
    {"19", "19_logit_lens", "output final_norm block", false},          // norm + head after every layer
    {"20", "20_moe", "moe ffn gate topk experts shared combine", false},
};
#define N_MAP_CHAPTERS ((int)(sizeof MAP_CHAPTERS / sizeof MAP_CHAPTERS[0]))

// ---- look-ups -----------------------------------------------------------------------------------------------------------

static const Box *find_box(const char *id) {
    for (int i = 0; i < N_BOXES; i++)
        if (strcmp(BOXES[i].id, id) == 0) return &BOXES[i];
    return NULL;
}

bool diagram_is_moe(const DiagramModel *m) { return m && m->known && m->n_routed_experts > 0; }

static bool box_present(const DiagramModel *m, const Box *b) {
    switch (b->variant) {
        case V_ALL: return true;
        case V_DENSE: return !diagram_is_moe(m);
        case V_MOE: return diagram_is_moe(m);
        case V_MOE_SHARED: return diagram_is_moe(m) && m->n_shared_experts > 0;
    }
    return false;
}

bool diagram_has_box(const DiagramModel *m, const char *box_id) {
    const Box *b = find_box(box_id);
    return b && box_present(m, b);
}

int diagram_n_boxes(void) { return N_BOXES; }
const char *diagram_box_id(int i) { return i >= 0 && i < N_BOXES ? BOXES[i].id : NULL; }

bool diagram_box_rect(const char *box_id, int *x, int *y, int *w, int *h) {
    const Box *b = find_box(box_id);
    if (!b) return false;
    *x = b->x, *y = b->y, *w = b->w, *h = b->h;
    return true;
}

const char *diagram_box_parallel(const char *box_id) {
    const Box *b = find_box(box_id);
    return b ? b->parallel : NULL;
}

int diagram_n_chapters(void) { return N_MAP_CHAPTERS; }
const DiagramChapter *diagram_chapter_at(int i) { return i >= 0 && i < N_MAP_CHAPTERS ? &MAP_CHAPTERS[i] : NULL; }

// The leading digits of a chapter id: "05" of "05_rope".
static size_t number_length(const char *id) { return strspn(id, "0123456789"); }

const DiagramChapter *diagram_chapter(const char *chapter_id) {
    size_t n = number_length(chapter_id);
    if (n == 0) return NULL;
    for (int i = 0; i < N_MAP_CHAPTERS; i++)
        if (strlen(MAP_CHAPTERS[i].number) == n && strncmp(MAP_CHAPTERS[i].number, chapter_id, n) == 0) return &MAP_CHAPTERS[i];
    return NULL;
}

// The box ids of a space-separated list, into ids[max]: n returned.
static int split_ids(const char *list, char ids[][24], int max) {
    int n = 0;
    for (const char *p = list; *p && n < max;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, " ");
        if (!len) break;
        if (len >= sizeof ids[0]) len = sizeof ids[0] - 1;
        memcpy(ids[n], p, len);
        ids[n][len] = 0;
        n++;
        p += strcspn(p, " ");
    }
    return n;
}

int diagram_chapter_boxes(const DiagramModel *m, const char *chapter_id, const char **box_ids, int max) {
    const DiagramChapter *c = diagram_chapter(chapter_id);
    if (!c) return 0;
    char ids[16][24];
    int n_ids = split_ids(c->boxes, ids, 16), n = 0;
    for (int i = 0; i < n_ids && n < max; i++) {
        const Box *b = find_box(ids[i]);
        if (b && box_present(m, b)) box_ids[n++] = b->id;  // the description's string: lives as long as the program
    }
    return n;
}

// Does chapter c cover box b on this model?
static bool chapter_covers(const DiagramModel *m, const DiagramChapter *c, const Box *b) {
    const char *ids[16];
    int n = diagram_chapter_boxes(m, c->id, ids, 16);
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], b->id) == 0) return true;
    return false;
}

// The chapter a box links to: the first whose main box it is, else the first that covers it.
static const DiagramChapter *box_main_chapter(const DiagramModel *m, const Box *b) {
    for (int i = 0; i < N_MAP_CHAPTERS; i++) {
        const char *ids[1];
        if (diagram_chapter_boxes(m, MAP_CHAPTERS[i].id, ids, 1) == 1 && strcmp(ids[0], b->id) == 0) return &MAP_CHAPTERS[i];
    }
    for (int i = 0; i < N_MAP_CHAPTERS; i++)
        if (chapter_covers(m, &MAP_CHAPTERS[i], b)) return &MAP_CHAPTERS[i];
    return NULL;
}

char *diagram_box_chapters(const DiagramModel *m, const char *box_id) {
    const Box *b = find_box(box_id);
    StrBuf out = {0};
    for (int i = 0; b && i < N_MAP_CHAPTERS; i++) {
        // the box itself, or the group just around it when that group sits inside the block (chapter 13 shows W1 by
        // showing the feed-forward; chapter 14, the whole block, is not repeated on every box in it)
        const Box *g = b->parent ? find_box(b->parent) : NULL;
        bool covers = chapter_covers(m, &MAP_CHAPTERS[i], b) || (g && g->parent && chapter_covers(m, &MAP_CHAPTERS[i], g));
        if (covers) strbuf_addf(&out, "%s%s", out.len ? " " : "", MAP_CHAPTERS[i].number);
    }
    return strbuf_take(&out);
}

// ---- the model facts ---------------------------------------------------------------------------------------------------

void diagram_model_from_config(DiagramModel *m, const Config *cfg, const char *name, int T) {
    memset(m, 0, sizeof *m);
    m->known = true;
    if (name) {  // the last component of the path: "llama3-tiny-trained" of "build/models/llama3-tiny-trained/"
        size_t end = strlen(name);
        while (end > 1 && name[end - 1] == '/') end--;
        size_t start = end;
        while (start > 0 && name[start - 1] != '/') start--;
        snprintf(m->name, sizeof m->name, "%.*s", (int)(end - start), name + start);
    }
    m->dim = cfg->dim, m->n_layers = cfg->n_layers, m->n_heads = cfg->n_heads, m->n_kv_heads = cfg->n_kv_heads;
    m->head_dim = cfg->head_dim, m->ffn_hidden = cfg->ffn_hidden, m->vocab_size = cfg->vocab_size;
    m->rope_theta = cfg->rope_theta, m->norm_eps = cfg->norm_eps;
    m->tied_output = cfg->tie_word_embeddings;
    // a mixture of experts (config.h's MiniMind keys): the MoE block in place of SwiGLU
    m->n_routed_experts = cfg->n_routed_experts, m->num_experts_per_tok = cfg->num_experts_per_tok;
    m->n_shared_experts = cfg->n_shared_experts;
    m->T = T;
}

void diagram_model_set_dtype(DiagramModel *m, const char *tensor, const char *dtype) {
    for (int i = 0; i < m->n_dtypes; i++)
        if (strcmp(m->dtypes[i].tensor, tensor) == 0) {
            snprintf(m->dtypes[i].dtype, sizeof m->dtypes[i].dtype, "%s", dtype);
            return;
        }
    if (m->n_dtypes == DIAGRAM_MAX_TENSORS) return;
    snprintf(m->dtypes[m->n_dtypes].tensor, sizeof m->dtypes[0].tensor, "%s", tensor);
    snprintf(m->dtypes[m->n_dtypes].dtype, sizeof m->dtypes[0].dtype, "%s", dtype);
    m->n_dtypes++;
}

static const char *dtype_of(const DiagramModel *m, const char *tensor) {
    for (int i = 0; i < m->n_dtypes; i++)
        if (strcmp(m->dtypes[i].tensor, tensor) == 0) return m->dtypes[i].dtype;
    return NULL;
}

int diagram_tensors(const DiagramModel *m, const char **names, int max) {
    int n = 0;
    for (int i = 0; i < N_BOXES && n < max; i++)
        if (BOXES[i].tensor && box_present(m, &BOXES[i])) names[n++] = BOXES[i].tensor;
    return n;
}

// The JSON object of trace.json's "config": the fields of DiagramModel under params.json's names.
static const struct {
    const char *key;
    size_t offset;
} INT_FIELDS[] = {
    {"dim", offsetof(DiagramModel, dim)},
    {"n_layers", offsetof(DiagramModel, n_layers)},
    {"n_heads", offsetof(DiagramModel, n_heads)},
    {"n_kv_heads", offsetof(DiagramModel, n_kv_heads)},
    {"head_dim", offsetof(DiagramModel, head_dim)},
    {"ffn_hidden", offsetof(DiagramModel, ffn_hidden)},
    {"vocab_size", offsetof(DiagramModel, vocab_size)},
    {"n_routed_experts", offsetof(DiagramModel, n_routed_experts)},
    {"num_experts_per_tok", offsetof(DiagramModel, num_experts_per_tok)},
    {"n_shared_experts", offsetof(DiagramModel, n_shared_experts)},
    {"tokens", offsetof(DiagramModel, T)},
};
#define N_INT_FIELDS ((int)(sizeof INT_FIELDS / sizeof INT_FIELDS[0]))

char *diagram_model_to_json(const DiagramModel *m) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m->name));
    for (int i = 0; i < N_INT_FIELDS; i++)
        json_object_set_new(o, INT_FIELDS[i].key, json_integer(*(const int *)((const char *)m + INT_FIELDS[i].offset)));
    json_object_set_new(o, "rope_theta", json_real(m->rope_theta));
    json_object_set_new(o, "norm_eps", json_real(m->norm_eps));
    json_object_set_new(o, "tied_output", json_boolean(m->tied_output));
    json_t *dt = json_object();
    for (int i = 0; i < m->n_dtypes; i++) json_object_set_new(dt, m->dtypes[i].tensor, json_string(m->dtypes[i].dtype));
    json_object_set_new(o, "dtypes", dt);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) fatal("diagram: cannot write the model facts as JSON");
    return text;
}

bool diagram_model_from_json(DiagramModel *m, const char *json_text, char *err, size_t err_size) {
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *o = json_loads(json_text, 0, &je);
    bool ok = false;
    if (!o || !json_is_object(o)) {
        snprintf(err, err_size, "expected an object of model facts");
        goto done;
    }
    json_t *name = json_object_get(o, "name");
    if (!json_is_string(name)) {
        snprintf(err, err_size, "name: expected a string");
        goto done;
    }
    snprintf(m->name, sizeof m->name, "%s", json_string_value(name));
    for (int i = 0; i < N_INT_FIELDS; i++) {
        json_t *v = json_object_get(o, INT_FIELDS[i].key);
        // the dimensions must be positive; the MoE counts and the token count may be 0
        bool may_be_zero = i >= 7;
        if (!json_is_integer(v) || json_integer_value(v) < (may_be_zero ? 0 : 1) || json_integer_value(v) > 100000000) {
            snprintf(err, err_size, "%s: expected an integer %s", INT_FIELDS[i].key, may_be_zero ? ">= 0" : "> 0");
            goto done;
        }
        *(int *)((char *)m + INT_FIELDS[i].offset) = (int)json_integer_value(v);
    }
    json_t *theta = json_object_get(o, "rope_theta"), *eps = json_object_get(o, "norm_eps");
    if (!json_is_number(theta) || !json_is_number(eps)) {
        snprintf(err, err_size, "%s: expected a number", json_is_number(theta) ? "norm_eps" : "rope_theta");
        goto done;
    }
    m->rope_theta = json_number_value(theta), m->norm_eps = json_number_value(eps);
    m->tied_output = json_is_true(json_object_get(o, "tied_output"));
    json_t *dt = json_object_get(o, "dtypes");
    if (dt && !json_is_object(dt)) {
        snprintf(err, err_size, "dtypes: expected an object {tensor: dtype}");
        goto done;
    }
    const char *key;
    json_t *v;
    if (dt) json_object_foreach(dt, key, v) {
            if (!json_is_string(v)) {
                snprintf(err, err_size, "dtypes.%s: expected a string", key);
                goto done;
            }
            diagram_model_set_dtype(m, key, json_string_value(v));
        }
    m->known = true;
    ok = true;
done:
    json_decref(o);
    return ok;
}

// ---- templates ------------------------------------------------------------------------------------------------------------
// {D} dim, {L} n_layers, {L1} n_layers - 1, {H} n_heads, {Hkv} n_kv_heads, {Dh} head_dim, {Dh2} head_dim / 2,
// {HDh} n_heads * head_dim, {KVDh} n_kv_heads * head_dim, {rep} n_heads / n_kv_heads, {F} the FFN hidden size,
// {V} vocab_size, {theta} rope_theta, {eps} norm_eps, {E} n_routed_experts, {K} num_experts_per_tok,
// {S} n_shared_experts, {T} the prompt's tokens, {kv heads} that word (singular for one). Without model facts each is written as its name ("H·Dh").

static void format_number(double v, char *out, size_t n) {
    if (v == floor(v) && fabs(v) < 1e15) snprintf(out, n, "%.0f", v);
    else snprintf(out, n, "%g", v);
}

static bool symbol_value(const DiagramModel *m, const char *sym, size_t len, char *out, size_t n) {
    static const struct {
        const char *name, *unknown;
    } symbols[] = {{"D", "D"},         {"L", "L"},       {"L1", "L-1"},   {"H", "H"},     {"Hkv", "Hkv"},
                   {"Dh", "Dh"},       {"Dh2", "Dh/2"},  {"HDh", "H·Dh"}, {"KVDh", "Hkv·Dh"}, {"rep", "H/Hkv"},
                   {"F", "F"},         {"V", "V"},       {"theta", "θ"},  {"eps", "eps"}, {"E", "E"},
                   {"K", "k"},         {"S", "S"},       {"T", "T"},      {"kv heads", "kv heads"}};
    int which = -1;
    for (int i = 0; i < (int)(sizeof symbols / sizeof symbols[0]); i++)
        if (strlen(symbols[i].name) == len && strncmp(symbols[i].name, sym, len) == 0) which = i;
    if (which < 0) return false;
    if (which == 18) {  // the word, singular for one kv head
        snprintf(out, n, "%s", m && m->known && m->n_kv_heads == 1 ? "kv head" : "kv heads");
        return true;
    }
    if (!m || !m->known || (which == 17 && m->T <= 0)) {
        snprintf(out, n, "%s", symbols[which].unknown);
        return true;
    }
    double v = 0;
    switch (which) {
        case 0: v = m->dim; break;
        case 1: v = m->n_layers; break;
        case 2: v = m->n_layers - 1; break;
        case 3: v = m->n_heads; break;
        case 4: v = m->n_kv_heads; break;
        case 5: v = m->head_dim; break;
        case 6: v = m->head_dim / 2; break;
        case 7: v = (double)m->n_heads * m->head_dim; break;
        case 8: v = (double)m->n_kv_heads * m->head_dim; break;
        case 9: v = m->n_kv_heads ? m->n_heads / m->n_kv_heads : 0; break;
        case 10: v = m->ffn_hidden; break;
        case 11: v = m->vocab_size; break;
        case 12: v = m->rope_theta; break;
        case 13: snprintf(out, n, "%g", m->norm_eps); return true;
        case 14: v = m->n_routed_experts; break;
        case 15: v = m->num_experts_per_tok; break;
        case 16: v = m->n_shared_experts; break;
        case 17: v = m->T; break;
    }
    format_number(v, out, n);
    return true;
}

// Without model facts "(T = T)" and "F = F" say nothing: the first is dropped, the second becomes "F".
static void drop_tautologies(StrBuf *b) {
    char *s = b->data;
    for (char *eq = s ? strstr(s, " = ") : NULL; eq; eq = strstr(eq + 1, " = ")) {
        char *l = eq;
        while (l > s && !strchr(" (\n", l[-1])) l--;
        char *r = eq + 3, *r_end = r;
        while (*r_end && !strchr(" ,)", *r_end)) r_end++;
        size_t n = (size_t)(eq - l);
        if (n == 0 || n != (size_t)(r_end - r) || strncmp(l, r, n) != 0) continue;
        if (l > s + 1 && l[-1] == '(' && l[-2] == ' ' && *r_end == ')') l -= 2, r_end++;  // " (T = T)"
        else l = eq;  // keep "F"
        memmove(l, r_end, strlen(r_end) + 1);
        b->len = strlen(s);
        eq = l > s ? l - 1 : s;
    }
}

// The template with every {symbol} replaced (malloc'd). An unknown symbol is a bug of the description: fatal.
static char *expand(const DiagramModel *m, const char *tmpl) {
    StrBuf out = {0};
    if (!tmpl) return strbuf_take(&out);
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close) {
            char value[64];
            if (!symbol_value(m, p + 1, (size_t)(close - p - 1), value, sizeof value))
                fatal("diagram: unknown symbol %.*s in \"%s\"", (int)(close - p + 1), p, tmpl);
            strbuf_add(&out, value, strlen(value));
            p = close + 1;
        } else {
            strbuf_add(&out, p, 1);
            p++;
        }
    }
    if (!m || !m->known) drop_tautologies(&out);
    return strbuf_take(&out);
}

static const char *pick(int lang, const char *en, const char *zh) { return lang == 1 && zh ? zh : en; }

char *diagram_box_label(const DiagramModel *m, const char *box_id, int lang) {
    const Box *b = find_box(box_id);
    return b ? expand(m, pick(lang, b->label_en, b->label_zh)) : NULL;
}

// "wq" of "layers.0.attention.wq.weight", "experts.0.w1" of "layers.0.feed_forward.experts.0.w1.weight".
static void short_tensor_name(const char *tensor, char *out, size_t n) {
    const char *p = tensor;
    if (strncmp(p, "layers.0.", 9) == 0) p += 9;
    if (strncmp(p, "attention.", 10) == 0) p += 10;
    else if (strncmp(p, "feed_forward.", 13) == 0) p += 13;
    size_t len = strlen(p);
    if (len > 7 && strcmp(p + len - 7, ".weight") == 0) len -= 7;
    snprintf(out, n, "%.*s", (int)len, p);
}

// "[4096, 4096]" and the dtype (or "") of a weight box; false when the box holds no weight.
static bool weight_shape(const DiagramModel *m, const Box *b, char *shape, size_t n, const char **dtype) {
    if (!b->tensor) return false;
    char *dims = expand(m, b->shape);
    snprintf(shape, n, "[%s]", dims);
    free(dims);
    const char *dt = m && m->known ? dtype_of(m, b->tensor) : NULL;
    *dtype = dt ? dt : "";
    return true;
}

char *diagram_box_weight(const DiagramModel *m, const char *box_id) {
    const Box *b = find_box(box_id);
    char shape[96];
    const char *dtype;
    if (!b || !weight_shape(m, b, shape, sizeof shape, &dtype)) return NULL;
    bool tied = m && m->known && m->tied_output && strcmp(b->id, "output") == 0;  // HF tie_word_embeddings
    return xasprintf("%s %s%s%s%s", b->tensor, shape, *dtype ? " " : "", dtype, tied ? " (tied: tok_embeddings.weight)" : "");
}

char *diagram_box_shape(const DiagramModel *m, const char *box_id) {
    const Box *b = find_box(box_id);
    char shape[96];
    const char *dtype;
    return b && weight_shape(m, b, shape, sizeof shape, &dtype) ? xstrdup(shape) : NULL;
}

// The lines under a box's label: its weight ("wq [4096, 4096] bf16"), then its notes.
char *diagram_box_notes(const DiagramModel *m, const char *box_id, int lang) {
    const Box *b = find_box(box_id);
    if (!b) return NULL;
    StrBuf out = {0};
    char shape[96], name[64];
    const char *dtype;
    if (weight_shape(m, b, shape, sizeof shape, &dtype)) {
        short_tensor_name(b->tensor, name, sizeof name);
        strbuf_addf(&out, "%s %s%s%s", name, shape, *dtype ? " " : "", dtype);
        if (m && m->tied_output && strcmp(b->id, "output") == 0)
            strbuf_addf(&out, " %s", lang == 1 ? "（与嵌入共享）" : "(tied to the embedding)");
    }
    const char *notes = pick(lang, b->notes_en, b->notes_zh);
    if (notes) {
        char *text = expand(m, notes);
        strbuf_addf(&out, "%s%s", out.len ? "\n" : "", text);
        free(text);
    }
    return strbuf_take(&out);
}

char *diagram_where_line(const DiagramModel *m, const char *chapter_id, int lang) {
    const char *ids[16];
    int n = diagram_chapter_boxes(m, chapter_id, ids, 16);
    if (!diagram_chapter(chapter_id)) return NULL;
    StrBuf out = {0};
    strbuf_addf(&out, "%s", lang == 1 ? "位置: " : "where: ");
    if (n == 0) strbuf_addf(&out, "%s", lang == 1 ? "（此模型没有这一部分）" : "(not a part of this model)");
    const char *prev_parent = "";
    for (int i = 0; i < n; i++) {
        const Box *b = find_box(ids[i]);
        bool inside = false;  // a box inside a group named before it: the group says it
        for (const Box *g = b->parent ? find_box(b->parent) : NULL; g && !inside; g = g->parent ? find_box(g->parent) : NULL)
            for (int k = 0; k < i && !inside; k++) inside = strcmp(ids[k], g->id) == 0;
        if (inside) continue;
        const char *parent = b->parent ? b->parent : "";
        char *label = expand(m, pick(lang, b->label_en, b->label_zh));
        if (i > 0 && strcmp(parent, prev_parent) == 0) {
            strbuf_addf(&out, ", %s", label);  // a sibling of the box before: "Wq, Wk, Wv"
        } else {
            if (i > 0) strbuf_addf(&out, "; ");
            // the path of groups down to the box: "Transformer block × 4 › Multi-head attention (GQA) › "
            const Box *chain[8];
            int depth = 0;
            for (const Box *p = b->parent ? find_box(b->parent) : NULL; p && depth < 8; p = p->parent ? find_box(p->parent) : NULL)
                chain[depth++] = p;
            for (int d = depth - 1; d >= 0; d--) {
                char *g = expand(m, pick(lang, chain[d]->label_en, chain[d]->label_zh));
                strbuf_addf(&out, "%s › ", g);
                free(g);
            }
            strbuf_addf(&out, "%s", label);
        }
        free(label);
        prev_parent = parent;
    }
    return strbuf_take(&out);
}

// ---- drawing: one pen for the PNG and the SVG ----------------------------------------------------------------------------
// Every shape is drawn through these functions, which paint the canvas or append SVG elements with the same geometry
// (full-map coordinates times the pen's scale). Text is Unifont in the PNG and a monospace font of the same advance
// (8 px a Latin character at 16 px) in the SVG.

typedef struct {
    Canvas *canvas;  // the PNG, or
    StrBuf *svg;     // the SVG
    float s;         // scale of the coordinates
} Pen;

static void svg_color(StrBuf *b, Rgb c) { strbuf_addf(b, "#%02x%02x%02x", c.r, c.g, c.b); }
static void svg_text_escaped(StrBuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        switch (*p) {
            case '&': strbuf_addf(b, "&amp;"); break;
            case '<': strbuf_addf(b, "&lt;"); break;
            case '>': strbuf_addf(b, "&gt;"); break;
            case '"': strbuf_addf(b, "&quot;"); break;
            default: strbuf_add(b, p, 1);
        }
    }
}

static void pen_box(Pen *p, float x, float y, float w, float h, float r, bool filled, Rgb fill, float thick, Rgb stroke) {
    x *= p->s, y *= p->s, w *= p->s, h *= p->s, r *= p->s;
    if (p->canvas) {
        draw_round_rect(p->canvas, x, y, w, h, r, filled, fill, thick, stroke);
        return;
    }
    // the canvas strokes inside the edge; SVG centres the stroke on it
    strbuf_addf(p->svg, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"%.1f\" fill=\"", x + thick / 2,
                y + thick / 2, w - thick, h - thick, r);
    if (filled) svg_color(p->svg, fill);
    else strbuf_addf(p->svg, "none");
    if (thick > 0) {
        strbuf_addf(p->svg, "\" stroke=\"");
        svg_color(p->svg, stroke);
        strbuf_addf(p->svg, "\" stroke-width=\"%.1f", thick);
    }
    strbuf_addf(p->svg, "\"/>\n");
}

static void pen_lines(Pen *p, const float *xy, int n, float thick, Rgb color, float dash) {
    if (p->canvas) {
        for (int i = 0; i + 1 < n; i++) {
            float x0 = xy[2 * i] * p->s, y0 = xy[2 * i + 1] * p->s, x1 = xy[2 * i + 2] * p->s, y1 = xy[2 * i + 3] * p->s;
            if (dash > 0) draw_dashed_line(p->canvas, x0, y0, x1, y1, thick, dash * p->s, color);
            else draw_line(p->canvas, x0, y0, x1, y1, thick, color);
        }
        return;
    }
    strbuf_addf(p->svg, "<polyline fill=\"none\" stroke=\"");
    svg_color(p->svg, color);
    strbuf_addf(p->svg, "\" stroke-width=\"%.1f\"", thick);
    if (dash > 0) strbuf_addf(p->svg, " stroke-dasharray=\"%.1f\"", dash * p->s);
    strbuf_addf(p->svg, " points=\"");
    for (int i = 0; i < n; i++) strbuf_addf(p->svg, "%s%.1f,%.1f", i ? " " : "", xy[2 * i] * p->s, xy[2 * i + 1] * p->s);
    strbuf_addf(p->svg, "\"/>\n");
}

static void pen_polygon(Pen *p, const float *xy, int n, Rgb color) {
    float pts[16];
    for (int i = 0; i < 2 * n && i < 16; i++) pts[i] = xy[i] * p->s;
    if (p->canvas) {
        draw_polygon(p->canvas, pts, n, color);
        return;
    }
    strbuf_addf(p->svg, "<polygon fill=\"");
    svg_color(p->svg, color);
    strbuf_addf(p->svg, "\" points=\"");
    for (int i = 0; i < n; i++) strbuf_addf(p->svg, "%s%.1f,%.1f", i ? " " : "", pts[2 * i], pts[2 * i + 1]);
    strbuf_addf(p->svg, "\"/>\n");
}

static void pen_circle(Pen *p, float cx, float cy, float r, Rgb fill, float thick, Rgb stroke) {
    cx *= p->s, cy *= p->s, r *= p->s;
    if (p->canvas) {
        draw_disc(p->canvas, cx, cy, r, fill);
        if (thick > 0) draw_circle(p->canvas, cx, cy, r - thick / 2, thick, 0, stroke);
        return;
    }
    strbuf_addf(p->svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"", cx, cy, r - thick / 2);
    svg_color(p->svg, fill);
    strbuf_addf(p->svg, "\" stroke=\"");
    svg_color(p->svg, stroke);
    strbuf_addf(p->svg, "\" stroke-width=\"%.1f\"/>\n", thick);
}

// Text with its box's top-left, centre or right at (x, y) (draw.h's ALIGN_*); scale 1 = 16 px glyphs, at any pen
// scale. bold: drawn twice, one pixel apart, in the PNG.
static void pen_text(Pen *p, float x, float y, const char *text, int scale, bool bold, int align, Rgb color) {
    x *= p->s, y *= p->s;
    if (p->canvas) {
        draw_text(p->canvas, (int)lroundf(x), (int)lroundf(y), text, scale, 0, align, color);
        if (bold) draw_text(p->canvas, (int)lroundf(x) + 1, (int)lroundf(y), text, scale, 0, align, color);
        return;
    }
    float h = 16.0f * scale;
    float top = (align & ALIGN_BOTTOM) ? y - h : (align & ALIGN_MIDDLE) ? y - h / 2 : y;
    // classes, not attributes: the style sheet's `font` shorthand would override font-weight and font-size
    strbuf_addf(p->svg, "<text x=\"%.1f\" y=\"%.1f\"%s%s fill=\"", x, top + 12.5f * scale,
                (align & ALIGN_RIGHT) ? " text-anchor=\"end\"" : (align & ALIGN_CENTER) ? " text-anchor=\"middle\"" : "",
                scale == 2 ? " class=\"t2\"" : bold ? " class=\"b\"" : "");
    svg_color(p->svg, color);
    strbuf_addf(p->svg, "\">");
    svg_text_escaped(p->svg, text);
    strbuf_addf(p->svg, "</text>\n");
}

// Text turned 90 degrees counter-clockwise (read upwards), centred on y, its top edge at x.
static void pen_text_vertical(Pen *p, float x, float y, const char *text, Rgb color) {
    x *= p->s, y *= p->s;
    if (p->canvas) {
        draw_text(p->canvas, (int)lroundf(x), (int)lroundf(y), text, 1, 90, ALIGN_CENTER | ALIGN_TOP, color);
        return;
    }
    strbuf_addf(p->svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\" fill=\"", x,
                y + 12.5f, x, y);
    svg_color(p->svg, color);
    strbuf_addf(p->svg, "\">");
    svg_text_escaped(p->svg, text);
    strbuf_addf(p->svg, "</text>\n");
}

static void pen_link_open(Pen *p, const char *chapter_id, const char *tooltip) {
    if (!p->svg || !chapter_id) return;
    strbuf_addf(p->svg, "<a href=\"#ch-%s\" class=\"map-link\" data-chapter=\"%s\">", chapter_id, chapter_id);
    if (tooltip) {
        strbuf_addf(p->svg, "<title>");
        svg_text_escaped(p->svg, tooltip);
        strbuf_addf(p->svg, "</title>");
    }
    strbuf_addf(p->svg, "\n");
}
static void pen_link_close(Pen *p, const char *chapter_id) {
    if (p->svg && chapter_id) strbuf_addf(p->svg, "</a>\n");
}

// ---- drawing the map -------------------------------------------------------------------------------------------------------

#define INK RGB(31, 35, 40)
#define MUTED RGB(87, 96, 106)
#define LINE RGB(101, 109, 118)
#define HIGHLIGHT RGB(234, 88, 12)          // the small map's "you are here"
#define HIGHLIGHT_DARK RGB(154, 52, 18)
#define HIGHLIGHT_SOFT RGB(255, 237, 213)
#define BADGE RGB(36, 41, 47)

typedef struct {
    Rgb fill, stroke;
} Style;

static Style kind_style(Kind k, const Box *b) {
    switch (k) {
        case K_IO: return (Style){RGB(243, 238, 252), RGB(130, 80, 223)};
        case K_WEIGHT: return (Style){RGB(255, 248, 230), RGB(191, 135, 0)};
        case K_NOTE: return (Style){RGB(246, 248, 250), RGB(140, 149, 159)};
        case K_ADD: return (Style){COLOR_WHITE, LINE};
        case K_GROUP:
            if (strcmp(b->id, "attn") == 0) return (Style){RGB(238, 246, 253), RGB(44, 134, 199)};
            if (strcmp(b->id, "block") == 0) return (Style){RGB(250, 251, 252), RGB(110, 119, 129)};
            return (Style){RGB(240, 248, 240), RGB(58, 157, 35)};  // the feed-forward, as the sources colour it
        case K_OP: break;
    }
    return (Style){COLOR_WHITE, RGB(110, 119, 129)};
}

static Style parallel_style(const char *par) {
    if (strcmp(par, "RowPar") == 0) return (Style){RGB(255, 241, 229), RGB(188, 76, 0)};
    if (strcmp(par, "VocabPar") == 0) return (Style){RGB(218, 251, 225), RGB(26, 127, 55)};
    return (Style){RGB(221, 244, 255), RGB(9, 105, 218)};  // ColumnPar
}

typedef struct {
    const DiagramModel *m;
    int lang;
    bool mini;
    const char *hl[16];  // the highlighted boxes (small map)
    int n_hl;
    const char *const *page_ids;  // SVG: the page's chapter ids
    int n_pages;
} Scene;

static bool highlighted(const Scene *sc, const Box *b) {
    for (int i = 0; i < sc->n_hl; i++)
        if (strcmp(sc->hl[i], b->id) == 0) return true;
    return false;
}

// The page's id of a chapter (matched by number), or NULL when the page has no such chapter.
static const char *page_id(const Scene *sc, const DiagramChapter *c) {
    if (!c) return NULL;
    for (int i = 0; i < sc->n_pages; i++) {
        size_t n = number_length(sc->page_ids[i]);
        if (n == strlen(c->number) && strncmp(sc->page_ids[i], c->number, n) == 0) return sc->page_ids[i];
    }
    return NULL;
}

static void anchor_point(const Anchor *a, float *x, float *y) {
    const Box *b = find_box(a->box);
    switch (a->side) {
        case 'T': *x = b->x + a->f * b->w, *y = (float)b->y; break;
        case 'B': *x = b->x + a->f * b->w, *y = (float)(b->y + b->h); break;
        case 'L': *x = (float)b->x, *y = b->y + a->f * b->h; break;
        default: *x = (float)(b->x + b->w), *y = b->y + a->f * b->h; break;
    }
    if (b->kind == K_ADD) {  // a circle: the point on it
        float cx = b->x + b->w / 2.0f, cy = b->y + b->h / 2.0f, r = b->w / 2.0f;
        if (a->side == 'T' || a->side == 'B') *x = cx, *y = cy + (a->side == 'T' ? -r : r);
        else *y = cy, *x = cx + (a->side == 'L' ? -r : r);
    }
    *y += (float)a->dy;
}

static void draw_arrow(Pen *p, const Scene *sc, const Arrow *a) {
    if (!diagram_has_box(sc->m, a->a.box) || !diagram_has_box(sc->m, a->b.box)) return;
    float pts[8];
    int n;
    float x0, y0, x1, y1;
    anchor_point(&a->a, &x0, &y0);
    anchor_point(&a->b, &x1, &y1);
    if (a->route == R_STRAIGHT) {
        // straight down (or across) wherever the target's edge allows it
        const Box *to = find_box(a->b.box);
        bool vertical = (a->a.side == 'B' || a->a.side == 'T') && (a->b.side == 'T' || a->b.side == 'B');
        bool across = (a->a.side == 'L' || a->a.side == 'R') && (a->b.side == 'L' || a->b.side == 'R');
        if (vertical && to->kind != K_ADD && x0 > to->x + 8 && x0 < to->x + to->w - 8) x1 = x0;
        if (across && to->kind != K_ADD && y0 > to->y + 4 && y0 < to->y + to->h - 4) y1 = y0;
        float q[4] = {x0, y0, x1, y1};
        memcpy(pts, q, sizeof q), n = 2;
    } else if (a->route == R_VHV) {
        float ey = a->via ? (float)a->via : (y0 + y1) / 2;
        float q[8] = {x0, y0, x0, ey, x1, ey, x1, y1};
        memcpy(pts, q, sizeof q), n = 4;
    } else {
        float q[8] = {x0, y0, (float)a->via, y0, (float)a->via, y1, x1, y1};
        memcpy(pts, q, sizeof q), n = 4;
    }
    float thick = sc->mini ? 1.2f : 1.6f, head = sc->mini ? 12.0f : 9.0f, half = sc->mini ? 6.5f : 4.5f;
    // the last segment stops where the head begins
    float dx = pts[2 * n - 2] - pts[2 * n - 4], dy = pts[2 * n - 1] - pts[2 * n - 3];
    float len = sqrtf(dx * dx + dy * dy);
    if (len < 1e-3f) return;
    float ux = dx / len, uy = dy / len;
    float tip_x = pts[2 * n - 2], tip_y = pts[2 * n - 1];
    pts[2 * n - 2] -= ux * head * 0.8f, pts[2 * n - 1] -= uy * head * 0.8f;
    pen_lines(p, pts, n, thick, LINE, a->dashed ? 6.0f : 0);
    float tri[6] = {tip_x, tip_y, tip_x - ux * head - uy * half, tip_y - uy * head + ux * half,
                    tip_x - ux * head + uy * half, tip_y - uy * head - ux * half};
    pen_polygon(p, tri, 3, LINE);
    if (a->dot) pen_circle(p, x0, y0, sc->mini ? 6.0f : 3.5f, LINE, 0, LINE);
}

// Chapter numbers as small dark pills on the box's top edge, right-aligned at right_x; each one a link in the SVG.
static void draw_badges(Pen *p, const Scene *sc, const Box *b, float right_x, float y) {
    float x = right_x;
    for (int i = N_MAP_CHAPTERS - 1; i >= 0; i--) {
        if (!chapter_covers(sc->m, &MAP_CHAPTERS[i], b)) continue;
        float w = 26, h = 18;
        x -= w;
        const char *target = page_id(sc, &MAP_CHAPTERS[i]);
        char tip[64];
        snprintf(tip, sizeof tip, "%s %s", sc->lang == 1 ? "章节" : "chapter", MAP_CHAPTERS[i].id);
        pen_link_open(p, target, tip);
        pen_box(p, x, y - h / 2, w, h, h / 2, true, BADGE, 0, BADGE);
        pen_text(p, x + w / 2, y, MAP_CHAPTERS[i].number, 1, false, ALIGN_CENTER | ALIGN_MIDDLE, COLOR_WHITE);
        pen_link_close(p, target);
        x -= 4;
    }
}

static void draw_group(Pen *p, const Scene *sc, const Box *b) {
    Style st = kind_style(K_GROUP, b);
    bool hl = sc->mini && highlighted(sc, b);
    if (strcmp(b->id, "block") == 0)  // the block is repeated: two frames behind it say so
        for (int k = 2; k >= 1; k--)
            pen_box(p, b->x + 6 * k, b->y + 6 * k, b->w, b->h, 12, true, COLOR_WHITE, sc->mini ? 1 : 1.2f, st.stroke);
    pen_box(p, b->x, b->y, b->w, b->h, 12, true, hl ? HIGHLIGHT_SOFT : st.fill, hl ? 3.0f : (sc->mini ? 1 : 1.5f),
            hl ? HIGHLIGHT : st.stroke);
    if (sc->mini) {
        char *label = expand(sc->m, pick(sc->lang, b->short_en, b->short_zh));
        pen_text(p, b->x + 12, b->y + 4, label, 1, hl, ALIGN_LEFT | ALIGN_TOP,
                 hl ? HIGHLIGHT_DARK : MUTED);
        free(label);
        return;
    }
    char *label = expand(sc->m, pick(sc->lang, b->label_en, b->label_zh));
    char *notes = expand(sc->m, pick(sc->lang, b->notes_en, b->notes_zh));
    pen_text(p, b->x + 14, b->y + 8, label, 1, true, ALIGN_LEFT | ALIGN_TOP, INK);
    if (*notes) pen_text(p, b->x + 14, b->y + 28, notes, 1, false, ALIGN_LEFT | ALIGN_TOP, MUTED);
    if (strcmp(b->id, "block") == 0) {  // "× L" at the bottom right, as the sources write it
        char times[48];
        snprintf(times, sizeof times, "× %s", sc->m && sc->m->known ? "" : "n_layers");
        if (sc->m && sc->m->known) snprintf(times, sizeof times, "× %d %s", sc->m->n_layers, sc->lang == 1 ? "层" : "layers");
        pen_text(p, b->x + b->w - 14, b->y + b->h - 8, times, 1, true, ALIGN_RIGHT | ALIGN_BOTTOM, st.stroke);
    }
    free(label), free(notes);
}

static void draw_box(Pen *p, const Scene *sc, const Box *b) {
    Style st = kind_style(b->kind, b);
    bool hl = sc->mini && highlighted(sc, b);
    if (b->kind == K_ADD) {
        float cx = b->x + b->w / 2.0f, cy = b->y + b->h / 2.0f, r = b->w / 2.0f;
        pen_circle(p, cx, cy, r, hl ? HIGHLIGHT : COLOR_WHITE, sc->mini ? 1.2f : 1.6f, hl ? HIGHLIGHT_DARK : LINE);
        float arm = r * 0.55f;
        float h[4] = {cx - arm, cy, cx + arm, cy}, v[4] = {cx, cy - arm, cx, cy + arm};
        pen_lines(p, h, 2, sc->mini ? 1.2f : 2.0f, hl ? COLOR_WHITE : INK, 0);
        pen_lines(p, v, 2, sc->mini ? 1.2f : 2.0f, hl ? COLOR_WHITE : INK, 0);
        if (sc->mini) return;
        char *label = expand(sc->m, pick(sc->lang, b->label_en, b->label_zh));
        float tx = b->x + b->w + 12;
        pen_text(p, tx, cy, label, 1, false, ALIGN_LEFT | ALIGN_MIDDLE, INK);
        free(label);
        return;
    }
    if (strcmp(b->id, "experts") == 0)  // several experts: cards behind the first
        for (int k = 2; k >= 1; k--)
            pen_box(p, b->x + 5 * k, b->y + 5 * k, b->w, b->h, 8, true, st.fill, sc->mini ? 1 : 1.2f, st.stroke);
    pen_box(p, b->x, b->y, b->w, b->h, sc->mini ? 10 : 8, true, hl ? HIGHLIGHT : st.fill,
            hl ? 2.5f : (sc->mini ? 1 : 1.5f), hl ? HIGHLIGHT_DARK : st.stroke);
    if (sc->mini) {
        char *label = expand(sc->m, pick(sc->lang, b->short_en, b->short_zh));
        pen_text(p, b->x + b->w / 2.0f, b->y + b->h / 2.0f, label, 1, hl, ALIGN_CENTER | ALIGN_MIDDLE,
                 hl ? COLOR_WHITE : MUTED);
        free(label);
        return;
    }
    char *label = expand(sc->m, pick(sc->lang, b->label_en, b->label_zh));
    char *notes = diagram_box_notes(sc->m, b->id, sc->lang);
    bool left = b->kind == K_NOTE;
    float tag_left = (float)(b->x + b->w);
    if (b->parallel) {  // the tensor-parallel mark, a pill at the right of the label line
        Style ps = parallel_style(b->parallel);
        float w = (float)font_text_width(b->parallel, 1) + 12;
        tag_left = b->x + b->w - 8 - w;
        pen_box(p, tag_left, b->y + 9, w, 20, 10, true, ps.fill, 1, ps.stroke);
        pen_text(p, tag_left + w / 2, b->y + 19, b->parallel, 1, false, ALIGN_CENTER | ALIGN_MIDDLE, ps.stroke);
    }
    float lw = (float)font_text_width(label, 1);
    float cx = b->x + b->w / 2.0f;
    if (!left && cx + lw / 2 > tag_left - 6) left = true;  // a centred label would run into the mark
    pen_text(p, left ? b->x + 10 : cx, b->y + 10, label, 1, true, (left ? ALIGN_LEFT : ALIGN_CENTER) | ALIGN_TOP, INK);
    float y = b->y + 30;
    for (char *line = notes; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        pen_text(p, b->kind == K_NOTE || left ? b->x + 10 : cx, y, line, 1, false,
                 (b->kind == K_NOTE || left ? ALIGN_LEFT : ALIGN_CENTER) | ALIGN_TOP, b->kind == K_NOTE ? INK : MUTED);
        y += 18;
        if (!nl) break;
        line = nl + 1;
    }
    free(label), free(notes);
}

// A box's chapter numbers: on the top edge at the right (groups and boxes), or after the label (the residual adds).
static void draw_box_badges(Pen *p, const Scene *sc, const Box *b) {
    if (sc->mini) return;
    if (b->kind == K_GROUP) {
        draw_badges(p, sc, b, b->x + b->w - 14, b->y);
    } else if (b->kind == K_ADD) {
        char *label = expand(sc->m, pick(sc->lang, b->label_en, b->label_zh));
        int n = 0;
        for (int i = 0; i < N_MAP_CHAPTERS; i++) n += chapter_covers(sc->m, &MAP_CHAPTERS[i], b);
        draw_badges(p, sc, b, b->x + b->w + 12 + font_text_width(label, 1) + 12 + 30 * n, b->y + b->h / 2.0f);
        free(label);
    } else {
        draw_badges(p, sc, b, b->x + b->w - 10, b->y);
    }
}

// The whole map's title, explanation and legend.
static void draw_chrome(Pen *p, const Scene *sc) {
    const DiagramModel *m = sc->m;
    char title[160];
    snprintf(title, sizeof title, "LLaMA-3%s%s", m && m->known && *m->name ? " · " : "", m && m->known ? m->name : "");
    pen_text(p, 20, 18, title, 2, false, ALIGN_LEFT | ALIGN_TOP, COLOR_BLACK);
    pen_text(p, 20 + font_text_width(title, 2) + 20, 34,
             sc->lang == 1 ? "每个框：第 0 层的张量 名字 [形状] 类型；T = 提示词的 token 数"
                           : "each box: layer 0's tensor as stored, name [shape] dtype; T = the prompt's tokens",
             1, false, ALIGN_LEFT | ALIGN_TOP, MUTED);
    // legend, top right
    float x = 960, y = 150;
    pen_text(p, x, y, sc->lang == 1 ? "图例" : "legend", 1, true, ALIGN_LEFT | ALIGN_TOP, INK);
    y += 26;
    static const Kind kinds[] = {K_WEIGHT, K_OP, K_IO};
    const char *kind_text[2][3] = {{"weight: name [shape] dtype", "operation", "input / output"},
                                   {"权重：名字 [形状] 类型", "运算", "输入 / 输出"}};
    for (int i = 0; i < 3; i++) {
        Style st = kind_style(kinds[i], NULL);
        pen_box(p, x, y, 34, 20, 5, true, st.fill, 1.5f, st.stroke);
        pen_text(p, x + 44, y + 10, kind_text[sc->lang == 1][i], 1, false, ALIGN_LEFT | ALIGN_MIDDLE, INK);
        y += 28;
    }
    const char *pars[3] = {"ColumnPar", "RowPar", "VocabPar"};
    const char *par_text[2][3] = {{"output rows split", "input split, all-reduce", "vocabulary split"},
                                  {"按输出行切分", "按列切分 + all-reduce", "按词表切分"}};
    for (int i = 0; i < 3; i++) {
        Style ps = parallel_style(pars[i]);
        float w = (float)font_text_width(pars[i], 1) + 12;
        pen_box(p, x, y, w, 20, 10, true, ps.fill, 1, ps.stroke);
        pen_text(p, x + w / 2, y + 10, pars[i], 1, false, ALIGN_CENTER | ALIGN_MIDDLE, ps.stroke);
        pen_text(p, x + 92, y + 10, par_text[sc->lang == 1][i], 1, false, ALIGN_LEFT | ALIGN_MIDDLE, INK);
        y += 28;
    }
    pen_box(p, x + 4, y + 1, 26, 18, 9, true, BADGE, 0, BADGE);
    pen_text(p, x + 17, y + 10, "04", 1, false, ALIGN_CENTER | ALIGN_MIDDLE, COLOR_WHITE);
    pen_text(p, x + 44, y + 10, sc->lang == 1 ? "讲它的章节" : "the chapters that show it", 1, false,
             ALIGN_LEFT | ALIGN_MIDDLE, INK);
}

static void draw_scene(Pen *p, const Scene *sc) {
    if (!sc->mini) draw_chrome(p, sc);
    for (int i = 0; i < N_BOXES; i++) {  // groups first (outer before inner: the order of the table)
        const Box *b = &BOXES[i];
        if (b->kind != K_GROUP || !box_present(sc->m, b)) continue;
        const char *target = sc->mini ? NULL : page_id(sc, box_main_chapter(sc->m, b));
        char *label = target ? diagram_box_label(sc->m, b->id, sc->lang) : NULL;
        pen_link_open(p, target, label);
        draw_group(p, sc, b);
        pen_link_close(p, target);
        draw_box_badges(p, sc, b);  // links of their own: never inside the box's link
        free(label);
    }
    for (int i = 0; i < N_ARROWS; i++) draw_arrow(p, sc, &ARROWS[i]);
    if (!sc->mini)  // the residual stream: what the two skip lines carry
        pen_text_vertical(p, 58, 740, sc->lang == 1 ? "残差流" : "residual stream", MUTED);
    for (int i = 0; i < N_BOXES; i++) {
        const Box *b = &BOXES[i];
        if (b->kind == K_GROUP || !box_present(sc->m, b)) continue;
        const char *target = sc->mini ? NULL : page_id(sc, box_main_chapter(sc->m, b));
        char *label = target ? diagram_box_label(sc->m, b->id, sc->lang) : NULL;
        pen_link_open(p, target, label);
        draw_box(p, sc, b);
        pen_link_close(p, target);
        draw_box_badges(p, sc, b);
        free(label);
    }
}

void diagram_png(const char *path, const DiagramModel *m, int lang) {
    Canvas c;
    canvas_init(&c, DIAGRAM_WIDTH, DIAGRAM_HEIGHT, COLOR_WHITE);
    Pen p = {.canvas = &c, .s = 1};
    Scene sc = {.m = m, .lang = lang};
    draw_scene(&p, &sc);
    canvas_write_png(&c, path);
    canvas_free(&c);
}

void diagram_mini_png(const char *path, const DiagramModel *m, const char *chapter_id, int lang) {
    int w = (int)lroundf(DIAGRAM_WIDTH * DIAGRAM_MINI_SCALE), h = (int)lroundf(DIAGRAM_HEIGHT * DIAGRAM_MINI_SCALE);
    Canvas c;
    canvas_init(&c, w, h, COLOR_WHITE);
    Pen p = {.canvas = &c, .s = DIAGRAM_MINI_SCALE};
    Scene sc = {.m = m, .lang = lang, .mini = true};
    sc.n_hl = diagram_chapter_boxes(m, chapter_id, sc.hl, 16);
    draw_scene(&p, &sc);
    // the title: the chapter and its boxes, as many as fit
    StrBuf t = {0};
    strbuf_addf(&t, "%s:", chapter_id);
    int max_w = w - 16;
    for (int i = 0; i < sc.n_hl; i++) {
        char *label = diagram_box_label(m, sc.hl[i], lang);
        size_t before = t.len;
        strbuf_addf(&t, "%s %s", i ? "," : "", label);
        free(label);
        if (font_text_width(t.data, 1) > max_w - 16) {  // cut, and say so
            t.len = before, t.data[t.len] = 0;
            strbuf_addf(&t, ", …");
            break;
        }
    }
    char *title = strbuf_take(&t);
    draw_text(&c, 8, 8, title, 1, 0, ALIGN_LEFT | ALIGN_TOP, HIGHLIGHT_DARK);
    draw_text(&c, 9, 8, title, 1, 0, ALIGN_LEFT | ALIGN_TOP, HIGHLIGHT_DARK);
    free(title);
    canvas_write_png(&c, path);
    canvas_free(&c);
}

char *diagram_svg(const DiagramModel *m, int lang, const char *const *page_ids, int n_pages) {
    StrBuf b = {0};
    strbuf_addf(&b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\" viewBox=\"0 0 %d %d\" width=\"%d\" "
                "height=\"%d\" role=\"img\" aria-label=\"%s\">\n"
                "<style>text{font:13.33px ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,'Noto Sans Mono CJK SC',"
                "monospace;white-space:pre}text.b{font-weight:700}text.t2{font-size:26.67px}"
                "a.map-link:hover rect{stroke-width:3px}</style>\n"
                "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
                DIAGRAM_WIDTH, DIAGRAM_HEIGHT, DIAGRAM_WIDTH, DIAGRAM_HEIGHT,
                lang == 1 ? "LLaMA-3 结构图" : "the LLaMA-3 architecture", DIAGRAM_WIDTH, DIAGRAM_HEIGHT);
    Pen p = {.svg = &b, .s = 1};
    Scene sc = {.m = m, .lang = lang, .page_ids = page_ids, .n_pages = n_pages};
    draw_scene(&p, &sc);
    strbuf_addf(&b, "</svg>\n");
    return strbuf_take(&b);
}
