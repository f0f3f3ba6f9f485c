// 01_tokenize: text to tokens.
//
// The prompt is cut into pieces by the tokenizer's regex, each piece becomes byte-pair-encoded token ids, and
// <|begin_of_text|> (128000) goes in front: `tokens = [128000] + tokenizer.encode(prompt)`. Then each id is decoded
// alone (`prompt_split_as_tokens`). For the tutorial's prompt: 17 ids, the last one a lone space (220).
// Run: build/steps/01_tokenize [--prompt TEXT]    Outputs: OUT/01_tokenize/tokens.npy (int64 [T]).
#include "step.h"

#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"

#define LARGE_T 256  // from here on, a note on the size of the trace

// The bytes of the .npy files chapters 01-16 of a walkthrough of a T-token prompt write (the shapes
// tests/reference/check_trace.py lists, chapter by chapter): 4 bytes an element (8 for the int64 token ids), 128 bytes of header for each of the 50
// files. At large T most of it is the [T, T] attention maps (L*H + H + 4 of them) and the [T, D] activations (L + 11).
// *map_bytes: the maps' share.
static double walkthrough_npy_bytes(const Config *c, double T, double *map_bytes) {
    double D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim, L = c->n_layers, V = c->vocab_size;
    double maps = (4 + H + L * H) * T * T;                      // 07, 08 (2), 09, 11 (all heads), 14 (every layer)
    double rows = (11 + L) * T * D + 14 * T * Dh + T * Dh / 2   // [T, D]; [T, Dh] in 04-06, 10; freqs_for_each_token
                  + (L + 6) * T + Hkv * Dh * T;                 // rms, residual_norms, chapter 16's rows; its cache_k
    double fixed = (H + 2 * Hkv + 3) * Dh * D + Dh + V + 10     // the layer's and the head's wq wk wv; freqs; logits, top-k
                   + 9 + 8 + 7 * Hkv * Dh;                      // chapter 16: mask chunk, tokens, cache_k past the prompt
    *map_bytes = 4 * maps;
    return 4 * (maps + rows + fixed) + 8 * (T + 1) + 128 * 50;
}

int main(int argc, char **argv) {
    Step s;
    step_init(&s, argc, argv, "01_tokenize");
    step_say(&s, "prompt = \"%s\"", s.prompt);

    // print(tokens): [128000, 1820, ...]
    size_t cap = 16 + (size_t)s.T * 12, k = 0;
    char *line = xmalloc(cap);
    k += (size_t)snprintf(line + k, cap - k, "tokens = [");
    for (int t = 0; t < s.T; t++) k += (size_t)snprintf(line + k, cap - k, "%s%d", t ? ", " : "", s.tokens[t]);
    snprintf(line + k, cap - k, "]");
    step_say(&s, "%s", line);
    free(line);

    // print(prompt_split_as_tokens): ['<|begin_of_text|>', 'the', ' answer', ...], as Python's repr would quote them
    size_t need = 64;
    for (int t = 0; t < s.T; t++) need += 4 * strlen(s.pieces[t]) + 8;
    line = xmalloc(need);
    k = (size_t)snprintf(line, need, "prompt_split_as_tokens = [");
    for (int t = 0; t < s.T; t++) {
        k += (size_t)snprintf(line + k, need - k, "%s'", t ? ", " : "");
        for (const char *c = s.pieces[t]; *c; c++) {
            if (*c == '\'' || *c == '\\') k += (size_t)snprintf(line + k, need - k, "\\%c", *c);
            else if (*c == '\n') k += (size_t)snprintf(line + k, need - k, "\\n");
            else if (*c == '\t') k += (size_t)snprintf(line + k, need - k, "\\t");
            else line[k++] = *c, line[k] = 0;
        }
        k += (size_t)snprintf(line + k, need - k, "'");
    }
    snprintf(line + k, need - k, "]");
    step_say(&s, "%s", line);
    free(line);
    step_say(&s, "%s: %d", step_text(&s, "number of tokens T", "token 数 T"), s.T);
    if (s.T >= LARGE_T) {  // every [T, T] map of every head of every layer goes into the trace
        double maps, bytes = walkthrough_npy_bytes(s.cfg, s.T, &maps);
        step_say(&s, step_text(&s, "note: T = %d is large: the walkthrough's trace will hold about %.0f MB of .npy files "
                                   "for chapters 01-16 (%.0f MB of them [T, T] attention maps), plus its figures",
                               "注意：T = %d 很大：演练的 trace 中第 01-16 章将有约 %.0f MB 的 .npy 文件（其中 %.0f MB 是 "
                               "[T, T] 注意力图），另有图片"),
                 s.T, bytes / 1e6, maps / 1e6);
    }
    if (s.has_tokenizer && s.tok.kind == TOKENIZER_HF_BPE) {  // MiniMind's: another tokenizer than the intro describes
        char bos[64] = "none";
        if (s.tok.bos_id >= 0) tokenizer_piece_display(&s.tok, s.tok.bos_id, bos, sizeof bos);
        step_say(&s, step_text(&s, "this model's tokenizer: %s, an HF byte-level BPE (%d ids, %d merges applied by merge "
                                   "rank, GPT-2's pre-tokenizer regex), not Llama 3's tiktoken; BOS %s",
                               "本模型的分词器：%s，HF 的字节级 BPE（%d 个 id，%d 条合并规则按合并顺序应用，GPT-2 的预分词"
                               "正则），不是 Llama 3 的 tiktoken；BOS 为 %s"),
                 s.tok.path, s.tok.vocab_size, s.tok.n_merges, bos);
    }
    step_explain(&s,
                 "Frequent words are one token each, with their leading space ( answer); punctuation is its own token; "
                 "the trailing space of the prompt is left over as token 220. T, the number of tokens, is the first "
                 "dimension of every activation from here on.",
                 "常见的词各自是一个 token，并带着前面的空格（“ answer”）；标点单独成为 token；提示词末尾的空格单独留下，"
                 "成为 token 220。token 数 T 是之后所有激活张量的第一个维度。");

    // tokens.npy (int64, as torch.tensor(tokens) holds them)
    int64_t *ids = xmalloc((size_t)s.T * sizeof(int64_t));
    for (int t = 0; t < s.T; t++) ids[t] = s.tokens[t];
    int64_t shape[1] = {s.T};
    char *path = step_path(&s, "tokens.npy");
    npy_write_i64(path, ids, shape, 1);
    float *as_f = xmalloc((size_t)s.T * sizeof(float));
    for (int t = 0; t < s.T; t++) as_f[t] = (float)s.tokens[t];
    TensorStats st;
    tensor_stats_f32(as_f, s.T, &st);
    trace_tensor_record(s.trace, s.id, "tokens", shape, 1, "i64", "01_tokenize/tokens.npy", &st);
    step_shape(&s, "tokens", shape, 1, "i64");
    free(path), free(ids), free(as_f);
    return step_finish(&s);
}
