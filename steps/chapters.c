// chapters.c: the table of the walkthrough's chapters (chapters.h says what an entry holds and how to add one).
// Names (D, T, H, Hkv, Dh, F, V) are those of docs/tutorial-map.md; the shapes the notebook texts quote are
// Llama-3-8B's on the tutorial's 17-token prompt.
#include "chapters.h"

#include <string.h>

const Chapter CHAPTERS[] = {
    {
        .id = "00_config",
        .title_en = "reading params.json and the checkpoint",
        .title_zh = "读取 params.json 与检查点",
        .intro_en = "A Llama-3 download is a folder: params.json holds a handful of numbers, consolidated.00.pth "
                    "holds every weight as a named tensor. Everything else in the walkthrough follows from these "
                    "numbers: no shape is a constant in the code.",
        .intro_zh = "Llama-3 的下载是一个文件夹：params.json 里只有几个数字，consolidated.00.pth "
                    "里是所有按名字存放的权重张量。后面所有章节的形状都由这些数字推出，代码里没有写死任何形状。",
        .notebook_en = "Everything starts from two files. `params.json` is a dozen numbers: the width of the model "
                       "`dim` (D), the number of layers, of query heads (H) and of key/value heads (Hkv), the "
                       "vocabulary size (V) and the constants of RMSNorm and RoPE. `consolidated.00.pth` is a zip "
                       "of named bf16 tensors.\n"
                       "\n"
                       "A few sizes are not stored but derived: each head is `head_dim = D / H` wide (128), `H / "
                       "Hkv` query heads share one key/value head (4 for Llama-3-8B), and the feed-forward width F "
                       "comes from Meta's rounding rule (4096 -> 10922 -> 14198 -> 14336). This chapter has no "
                       "tensors: its output is the printed configuration.\n"
                       "\n"
                       "From these numbers it draws the map, `architecture.png`: the block diagram of the sources with "
                       "this model's shapes and dtypes (`wq [4096, 4096] bf16`), the tensor-parallel split of each "
                       "weight (ColumnPar, RowPar) and, in black, the chapters that show each box. Every other chapter "
                       "starts by naming its box and shows it highlighted on a small map.",
        .notebook_zh = "一切从两个文件开始。`params.json` 只有十几个数：模型宽度 `dim`（D）、层数、query "
                       "头数（H）与 key/value 头数（Hkv）、词表大小（V），以及 RMSNorm 和 RoPE 的常数。"
                       "`consolidated.00.pth` 是一个 zip，里面是按名字存放的 bf16 张量。\n"
                       "\n"
                       "有几个尺寸文件里没有，需要推导：每个头宽 `head_dim = D / H`（128）；每 `H / Hkv` 个 query "
                       "头共享一个 key/value 头（Llama-3-8B 是 4 个）；前馈层宽度 F 按 Meta 的取整规则得到（4096 -> "
                       "10922 -> 14198 -> 14336）。这一章不产生张量，它的输出就是打印出来的配置。\n"
                       "\n"
                       "由这些数字，本章画出结构图 `architecture.png`：来源文档中的框图，标上本模型的形状和数据类型"
                       "（`wq [4096, 4096] bf16`）、每个权重的张量并行切分方式（ColumnPar、RowPar），黑色数字是讲解每个框的"
                       "章节。其余每一章开头都会说出它对应的框，并在小图中高亮显示。",
        .tutorial_code = "with open(\"Meta-Llama-3-8B/params.json\", \"r\") as f:\n"
                         "    config = json.load(f)\n"
                         "model = torch.load(\"Meta-Llama-3-8B/consolidated.00.pth\")\n"
                         "print(json.dumps(list(model.keys())[:20], indent=4))",
    },
    {
        .id = "01_tokenize",
        .title_en = "text to tokens",
        .title_zh = "把文本转换为 token",
        .intro_en = "The model never sees letters. The tokenizer (tiktoken's byte-pair encoding with 128000 learned "
                    "pieces plus 256 special tokens) turns the prompt into integers; <|begin_of_text|> marks the "
                    "start.",
        .intro_zh = "模型看不到字母。分词器（tiktoken 的字节对编码，128000 个学到的片段加 256 个特殊 "
                    "token）把提示词变成整数；<|begin_of_text|> 标记开头。",
        .notebook_en = "The network only ever sees integers. The tokenizer cuts the prompt into pieces it knows "
                       "(common words with their leading space, punctuation, digits) and replaces each piece by its "
                       "number in a table of 128000 pieces; the id 128000, `<|begin_of_text|>`, is put in front.\n"
                       "\n"
                       "The count of tokens, T, is the first dimension of every activation that follows: 17 for the "
                       "tutorial's prompt. `tokens.npy` holds the ids as int64.",
        .notebook_zh = "神经网络只认识整数。分词器把提示词切成它认识的片段（常见单词连同前面的空格、标点、数字），再"
                       "把每个片段换成它在一张含 128000 个片段的表中的编号；最前面再加上编号 128000，即 "
                       "`<|begin_of_text|>`。\n"
                       "\n"
                       "token 的个数 T 是之后所有激活张量的第一个维度：教程的提示词是 17 个。`tokens.npy` 以 int64 "
                       "保存这些编号。",
        .tutorial_code = "tokens = [128000] + tokenizer.encode(prompt)\n"
                         "tokens = torch.tensor(tokens)\n"
                         "prompt_split_as_tokens = [tokenizer.decode([token.item()]) for token in tokens]",
    },
    {
        .id = "02_embed",
        .title_en = "tokens to embeddings",
        .title_zh = "把 token 转换为嵌入向量",
        .intro_en = "An embedding is a lookup: token id i selects row i of tok_embeddings.weight. The [T] ids "
                    "become a [T, dim] matrix, one vector per token; nothing is computed yet.",
        .intro_zh = "嵌入就是查表：token id i 取出 tok_embeddings.weight 的第 i 行。[T] 个 id 变成 [T, dim] "
                    "的矩阵，每个 token 一个向量；这里还没有任何计算。",
        .notebook_en = "An embedding is just a row lookup: token id i selects row i of `tok_embeddings.weight` [V, "
                       "D]. Stacking the T rows gives `token_embeddings_unnormalized` [T, D] ([17, 4096]).\n"
                       "\n"
                       "Nothing is multiplied here, so the values are exactly the bf16 weights. Identical tokens "
                       "(the three 'the') get identical rows: position plays no part yet.",
        .notebook_zh = "嵌入就是按行查表：编号为 i 的 token 取出 `tok_embeddings.weight` [V, D] 的第 i 行。把 T "
                       "行叠在一起就得到 `token_embeddings_unnormalized` [T, D]（[17, 4096]）。\n"
                       "\n"
                       "这里没有任何乘法，所以数值就是权重里的 bf16 值。相同的 token（三个 “the”）得到相同的行：位置"
                       "此时还不起作用。",
        .tutorial_code = "embedding_layer = torch.nn.Embedding(vocab_size, dim)\n"
                         "embedding_layer.weight.data.copy_(model[\"tok_embeddings.weight\"])\n"
                         "token_embeddings_unnormalized = embedding_layer(tokens).to(torch.bfloat16)",
    },
    {
        .id = "03_rmsnorm",
        .title_en = "RMS normalisation",
        .title_zh = "RMS 归一化",
        .intro_en = "Before attention, every token vector is divided by its root mean square, so all rows have the "
                    "same scale, then multiplied element-wise by a learned weight. norm_eps keeps the division safe "
                    "when a row is all zeros. The shape does not change.",
        .intro_zh = "在注意力之前，每个 token 向量都除以它的均方根，使所有行的尺度相同，再逐元素乘以学到的权重。"
                    "norm_eps 防止整行为零时除以零。形状不变。",
        .notebook_en = "Before each attention block the rows are rescaled to a common size: each row is divided by "
                       "its root mean square, `sqrt(mean(x^2) + eps)`, then multiplied element by element by a "
                       "learned weight (`layers.0.attention_norm.weight`, [D]). The shape stays [T, D].\n"
                       "\n"
                       "`rms.npy` holds the T divisors. Following Meta's code the sum of squares is done in float32 "
                       "and the result is rounded back to bf16; `norm_eps` only guards against a division by zero.",
        .notebook_zh = "每个注意力块之前，都先把每一行缩放到相近的大小：用该行的均方根 `sqrt(mean(x^2) + eps)` "
                       "去除，再逐元素乘以一个学到的权重（`layers.0.attention_norm.weight`，[D]）。形状仍然是 [T, "
                       "D]。\n"
                       "\n"
                       "`rms.npy` 保存这 T 个除数。按照 Meta 的代码，平方和在 float32 中计算，结果再舍入回 "
                       "bf16；`norm_eps` 只是为了避免除以零。",
        .tutorial_code = "def rms_norm(tensor, norm_weights):\n"
                         "    return (tensor * torch.rsqrt(tensor.pow(2).mean(-1, keepdim=True) + norm_eps)) * "
                         "norm_weights\n"
                         "token_embeddings = rms_norm(token_embeddings_unnormalized, "
                         "model[\"layers.0.attention_norm.weight\"])",
    },
    {
        .id = "04_query",
        .title_en = "unwrapping the query (one head of one layer)",
        .title_zh = "展开 query（一层中的一个头）",
        .intro_en = "The query weight of a layer holds all heads stacked: rows h*head_dim .. h*head_dim+head_dim-1 "
                    "belong to head h. Viewing it as [n_heads, head_dim, dim] makes the heads visible; one head "
                    "turns each token's normalised embedding into a query vector of head_dim numbers.",
        .intro_zh = "一层的 query 权重把所有头堆在一起：第 h*head_dim 到 h*head_dim+head_dim-1 行属于头 h。把它看成 "
                    "[n_heads, head_dim, dim] 就能看到各个头；一个头把每个 token 归一化后的嵌入变成 head_dim 维的 "
                    "query 向量。",
        .notebook_en = "`wq` [D, D] is really H weight matrices of Dh rows each, stored one under the other. "
                       "Viewing it as [H, Dh, D] ([32, 128, 4096]) and taking slice 0 gives the query weight of "
                       "head 0, [Dh, D].\n"
                       "\n"
                       "Multiplying the normalised embeddings by its transpose gives one query vector per token: "
                       "`q_per_token` [T, Dh] ([17, 128]). A query is what a token is looking for in the tokens "
                       "before it.",
        .notebook_zh = "`wq` [D, D] 实际上是 H 个各有 Dh 行的权重矩阵上下摞在一起。把它看成 [H, Dh, D]（[32, 128, "
                       "4096]）并取第 0 片，就是头 0 的 query 权重 [Dh, D]。\n"
                       "\n"
                       "用归一化后的嵌入乘以它的转置，每个 token 得到一个 query 向量：`q_per_token` [T, Dh]（[17, "
                       "128]）。query 表示一个 token 想在它前面的 token 中找什么。",
        .tutorial_code = "q_layer0 = model[\"layers.0.attention.wq.weight\"]\n"
                         "q_layer0 = q_layer0.view(n_heads, q_layer0.shape[0] // n_heads, dim)\n"
                         "q_layer0_head0 = q_layer0[0]\n"
                         "q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)",
    },
    {
        .id = "05_rope",
        .title_en = "positions by rotating complex pairs (RoPE)",
        .title_zh = "用复数对的旋转编码位置（RoPE）",
        .intro_en = "The prompt contains 'the' three times, and the three queries are still identical: nothing so "
                    "far knows where a token stands. RoPE fixes that by rotating the query (and later the key) by "
                    "an angle that grows with the position: the head_dim numbers are taken as head_dim/2 pairs, "
                    "each pair a complex number, and pair i of the token at position m is turned by the angle m * "
                    "freqs[i]. Low pairs spin fast, high pairs slowly.",
        .intro_zh = "提示词里有三个 “the”，它们的 query 目前完全相同：到这里还没有任何东西知道 token 的位置。RoPE "
                    "通过按位置旋转 query（之后还有 key）来解决：把 head_dim 个数看成 head_dim/2 "
                    "对，每对是一个复数，位置 m 的 token 的第 i 对旋转 m * freqs[i] 的角度。编号小的对转得快，编号大"
                    "的对转得慢。",
        .notebook_en = "So far a token's query does not depend on where the token stands. RoPE adds the position by "
                       "rotation: the Dh numbers of a query are read as Dh/2 pairs, each pair a point in the plane "
                       "(a complex number), and pair i of the token at position m is turned by the angle `m * "
                       "freqs[i]`, with `freqs[i] = 1 / rope_theta^(i / (Dh/2))`.\n"
                       "\n"
                       "Pair 0 turns by a whole radian per position, the last pair by a few millionths: together "
                       "they tell near and far positions apart. `freqs_cis` [T, Dh/2] holds the unit complex "
                       "numbers that do the turning (saved as [T, Dh/2, 2], real and imaginary parts); the figure "
                       "draws one row of it as rays from the origin. A rotation keeps lengths, so only the angles "
                       "between queries and keys change.",
        .notebook_zh = "到目前为止，一个 token 的 query 与它所在的位置无关。RoPE 用旋转把位置加进去：把 query 的 Dh "
                       "个数看成 Dh/2 对，每一对是平面上的一个点（一个复数）；位置为 m 的 token 的第 i 对旋转 `m * "
                       "freqs[i]` 的角度，其中 `freqs[i] = 1 / rope_theta^(i / (Dh/2))`。\n"
                       "\n"
                       "第 0 对每前进一个位置转一整个弧度，最后一对只转百万分之几：合在一起既能分辨相邻的位置，也能"
                       "分辨相距很远的位置。`freqs_cis` [T, Dh/2] 存放负责旋转的单位复数（以 [T, Dh/2, 2] "
                       "保存实部和虚部）；图中把其中一行画成从原点出发的射线。旋转不改变长度，只改变 query 与 key "
                       "之间的夹角。",
        .tutorial_code = "q_per_token_split_into_pairs = q_per_token.float().view(q_per_token.shape[0], -1, 2)\n"
                         "zero_to_one_split_into_64_parts = torch.tensor(range(64))/64\n"
                         "freqs = 1.0 / (rope_theta ** zero_to_one_split_into_64_parts)\n"
                         "freqs_for_each_token = torch.outer(torch.arange(17), freqs)\n"
                         "freqs_cis = torch.polar(torch.ones_like(freqs_for_each_token), freqs_for_each_token)\n"
                         "q_per_token_as_complex_numbers = torch.view_as_complex(q_per_token_split_into_pairs)\n"
                         "q_per_token_split_into_pairs_rotated = torch.view_as_real(q_per_token_as_complex_numbers "
                         "* freqs_cis)\n"
                         "q_per_token_rotated = q_per_token_split_into_pairs_rotated.view(q_per_token.shape)",
        .figures = {
            {"freqs_cis.png", "freqs_cis",
             "complex_rays(load(\"05_rope\", \"freqs_cis\"), row=min(3, len(TOKENS) - 1))"},
        },
    },
    {
        .id = "06_key",
        .title_en = "keys, almost the same as queries",
        .title_zh = "key：几乎与 query 一模一样",
        .intro_en = "Keys are made like queries and rotated by the same angles, so that the product of a query and "
                    "a key depends on how far apart the two tokens are. The key weight has only n_kv_heads heads: "
                    "each key head serves n_rep query heads (GQA), so wk is n_rep times smaller than wq.",
        .intro_zh = "key 的生成方式与 query 相同，并按同样的角度旋转，所以 query 与 key 的乘积取决于两个 token "
                    "相距多远。key 权重只有 n_kv_heads 个头：每个 key 头服务 n_rep 个 query 头（GQA），所以 wk 比 "
                    "wq 小 n_rep 倍。",
        .notebook_en = "Keys are made like queries, with two differences. `wk` has only Hkv heads ([Hkv, Dh, D] = "
                       "[8, 128, 4096]), because a group of H/Hkv query heads shares one key head; and a key "
                       "describes what a token offers rather than what it looks for.\n"
                       "\n"
                       "The key of head 0, `k_per_token` [T, Dh], is rotated with the same `freqs_cis` as the "
                       "query, so that the product of a query and a key depends on the distance between their "
                       "positions, not on the positions themselves.",
        .notebook_zh = "key 的做法和 query 一样，只有两点不同。`wk` 只有 Hkv 个头（[Hkv, Dh, D] = [8, 128, "
                       "4096]），因为每 H/Hkv 个 query 头共用一个 key 头；而且 key 描述的是一个 token "
                       "能提供什么，而不是它在找什么。\n"
                       "\n"
                       "头 0 的 key，`k_per_token` [T, Dh]，用与 query 相同的 `freqs_cis` 旋转，这样 query 与 key "
                       "的乘积只取决于两者位置之间的距离，而不是各自的绝对位置。",
        .tutorial_code = "k_layer0 = model[\"layers.0.attention.wk.weight\"]\n"
                         "k_layer0 = k_layer0.view(n_kv_heads, k_layer0.shape[0] // n_kv_heads, dim)\n"
                         "k_per_token = torch.matmul(token_embeddings, k_layer0[0].T)\n"
                         "k_per_token_split_into_pairs = k_per_token.float().view(k_per_token.shape[0], -1, 2)\n"
                         "k_per_token_as_complex_numbers = torch.view_as_complex(k_per_token_split_into_pairs)\n"
                         "k_per_token_split_into_pairs_rotated = torch.view_as_real(k_per_token_as_complex_numbers "
                         "* freqs_cis)\n"
                         "k_per_token_rotated = k_per_token_split_into_pairs_rotated.view(k_per_token.shape)",
    },
    {
        .id = "07_scores",
        .title_en = "queries times keys: the attention scores",
        .title_zh = "query 乘以 key：注意力分数",
        .intro_en = "Every query is compared with every key by a dot product, divided by sqrt(head_dim) so the "
                    "numbers keep a moderate size whatever the head dimension. Row i, column j: how relevant token "
                    "j looks to token i. This is self-attention.",
        .intro_zh = "每个 query 与每个 key 做点积，再除以 sqrt(head_dim)，让数值大小不随头维度变化。第 i 行第 j "
                    "列：token j 对 token i 看起来有多相关。这就是自注意力。",
        .notebook_en = "Every query is compared with every key by a dot product: `q_per_token_rotated @ "
                       "k_per_token_rotated.T` is a [T, T] table, row = the token asking, column = the token asked. "
                       "Dividing by `sqrt(Dh)` keeps the numbers in a range where the softmax that follows is not "
                       "saturated.\n"
                       "\n"
                       "In the heatmap, a bright cell means that the query of its row matches the key of its column "
                       "well. Half of the table looks into the future; the next chapter removes it.",
        .notebook_zh = "每个 query 与每个 key 做点积：`q_per_token_rotated @ k_per_token_rotated.T` 得到一张 [T, T] "
                       "的表，行是提问的 token，列是被问的 token。除以 `sqrt(Dh)` 让数值保持在一个范围内，使后面的 "
                       "softmax 不至于饱和。\n"
                       "\n"
                       "热力图中越亮的格子，表示这一行的 query 与这一列的 key 越匹配。表的一半是在看“未来”的 "
                       "token，下一章会把它去掉。",
        .tutorial_code = "qk_per_token = torch.matmul(q_per_token_rotated, k_per_token_rotated.T)/(head_dim)**0.5",
        .figures = {
            {"scores.png", "qk_per_token",
             "token_heatmap(load(\"07_scores\", \"qk_per_token\"), \"qk_per_token: raw attention scores\")"},
        },
    },
    {
        .id = "08_mask",
        .title_en = "the causal mask",
        .title_zh = "因果掩码",
        .intro_en = "During training Llama 3 learns to predict each token from the tokens before it only, so at "
                    "inference a token must not see the ones after it. Adding -inf above the diagonal does that: "
                    "after the softmax those entries become exactly 0.",
        .intro_zh = "训练时 Llama 3 只学习用前面的 token 预测下一个 token，所以推理时一个 token 不能看到它后面的 "
                    "token。在对角线以上加上 -inf 就做到了这一点：softmax 之后这些位置恰好变成 0。",
        .notebook_en = "The model was trained to guess each token from the ones before it, so a token may not look "
                       "at later tokens. The mask is a [T, T] matrix with 0 on and below the diagonal and -inf "
                       "above it; adding it to the scores leaves the allowed cells alone and makes the others -inf, "
                       "which the softmax turns into exactly 0.\n"
                       "\n"
                       "In the heatmaps the masked cells are marked as masked (hatched in the C program's figure, "
                       "blank in the matplotlib one), not coloured as a very small number. The statistics in the "
                       "table cover the finite values only; the -inf cells are counted apart.",
        .notebook_zh = "模型在训练时是根据前面的 token 来猜下一个 token 的，所以一个 token 不能看它后面的 "
                       "token。掩码是一个 [T, T] 矩阵：对角线及其下方为 0，上方为 -inf；把它加到分数上，允许的格子保"
                       "持不变，其余格子变成 -inf，经过 softmax 后正好是 0。\n"
                       "\n"
                       "热力图中被遮住的格子标记为“遮住”（C 程序的图里画成斜线，matplotlib "
                       "的图里留白），而不是涂成一个很小的数的颜色。表中的统计量只针对有限值，-inf 的格子单独计数。",
        .tutorial_code = "mask = torch.full((len(tokens), len(tokens)), float(\"-inf\"), device=tokens.device)\n"
                         "mask = torch.triu(mask, diagonal=1)\n"
                         "qk_per_token_after_masking = qk_per_token + mask",
        .figures = {
            {"scores_masked.png", "qk_per_token_after_masking",
             "token_heatmap(load(\"08_mask\", \"qk_per_token_after_masking\"), \"qk_per_token_after_masking "
             "(blank: -inf)\")"},
        },
    },
    {
        .id = "09_softmax",
        .title_en = "softmax: scores become attention weights",
        .title_zh = "softmax：分数变成注意力权重",
        .intro_en = "Softmax turns each row of scores into weights between 0 and 1 that add up to 1: exp(score) "
                    "divided by the row's sum. The masked entries, exp(-inf), become exactly 0. It runs in float32 "
                    "and the result is rounded to bf16, as in Meta's code.",
        .intro_zh = "softmax 把每一行分数变成 0 到 1 之间、总和为 1 的权重：exp(分数) 除以该行的总和。被屏蔽的位置 "
                    "exp(-inf) 恰好为 0。它在 float32 中计算，结果再舍入到 bf16，与 Meta 的代码一致。",
        .notebook_en = "Each row of masked scores becomes a probability distribution: `exp` of every entry, divided "
                       "by the row's sum. The weights are between 0 and 1, each row sums to 1, and the masked cells "
                       "are exactly 0. The softmax is done in float32 and the weights are then rounded to bf16.\n"
                       "\n"
                       "Row t says how much token t takes from each earlier token. In a trained model much of the "
                       "weight often lands on `<|begin_of_text|>`, which serves as a place to put attention that is "
                       "not needed elsewhere.",
        .notebook_zh = "把掩码后的每一行分数变成一个概率分布：对每个元素取 `exp`，再除以这一行的和。权重在 0 到 1 "
                       "之间，每行之和为 1，被遮住的格子正好是 0。softmax 在 float32 中计算，然后把权重舍入为 "
                       "bf16。\n"
                       "\n"
                       "第 t 行表示 token t 从前面每个 token 取多少信息。在训练好的模型里，很多权重常常落在 "
                       "`<|begin_of_text|>` 上，它相当于一个存放“用不上的注意力”的地方。",
        .tutorial_code = "qk_per_token_after_masking_after_softmax = "
                         "torch.nn.functional.softmax(qk_per_token_after_masking, dim=1).to(torch.bfloat16)",
        .figures = {
            {"attention_weights.png", "qk_per_token_after_masking_after_softmax",
             "token_heatmap(load(\"09_softmax\", \"qk_per_token_after_masking_after_softmax\"), \"attention "
             "weights\", probs=True)"},
        },
    },
    {
        .id = "10_value",
        .title_en = "values and the attention of one head",
        .title_zh = "value 与一个头的注意力",
        .intro_en = "The weights say how much of each token to take; the values say what to take. Each token's "
                    "value vector comes from the value weight (shared by n_rep query heads, like the keys), and the "
                    "head's output for token i is the weighted sum of the value vectors of tokens 0..i.",
        .intro_zh = "权重说明从每个 token 取多少；value 说明取什么。每个 token 的 value 向量来自 value 权重（和 key "
                    "一样由 n_rep 个 query 头共用），头对 token i 的输出是 token 0..i 的 value 向量的加权和。",
        .notebook_en = "Values are the third projection: `wv` viewed as [Hkv, Dh, D], head 0 gives `v_per_token` "
                       "[T, Dh], what each token hands over when it is attended to.\n"
                       "\n"
                       "The output of the head is the attention weights times the values, `qkv_attention` [T, Dh]: "
                       "for each token, the weighted average of the value vectors of the tokens it is allowed to "
                       "see.",
        .notebook_zh = "value 是第三个投影：把 `wv` 看成 [Hkv, Dh, D]，取头 0 得到 `v_per_token` [T, "
                       "Dh]，也就是每个 token 被关注时交出去的内容。\n"
                       "\n"
                       "这个头的输出是注意力权重乘以 value：`qkv_attention` [T, Dh]。对每个 "
                       "token，它是它能看到的那些 token 的 value 向量的加权平均。",
        .tutorial_code = "v_layer0 = model[\"layers.0.attention.wv.weight\"]\n"
                         "v_layer0 = v_layer0.view(n_kv_heads, v_layer0.shape[0] // n_kv_heads, dim)\n"
                         "v_per_token = torch.matmul(token_embeddings, v_layer0[0].T)\n"
                         "qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)",
    },
    {
        .id = "11_multihead",
        .title_en = "all heads of the layer (multi-head attention with GQA)",
        .title_zh = "这一层的所有头（带 GQA 的多头注意力）",
        .intro_en = "A layer does what we did for one head, n_heads times, each head with its own query weight. Key "
                    "and value heads are shared: query head h uses kv head h // n_rep. The heads' outputs, [T, "
                    "head_dim] each, are put side by side into one [T, n_heads*head_dim] matrix.",
        .intro_zh = "一层把我们对一个头做的事情做 n_heads 次，每个头有自己的 query 权重。key 和 value "
                    "头是共享的：query 头 h 使用 kv 头 h // n_rep。各个头的输出（每个 [T, head_dim]）并排拼成一个 "
                    "[T, n_heads*head_dim] 的矩阵。",
        .notebook_en = "Chapters 04 to 10 are repeated for every query head h of the layer. Head h uses key/value "
                       "head `h // (H/Hkv)` (grouped-query attention): neighbouring query heads read the same keys "
                       "and values but ask different questions.\n"
                       "\n"
                       "The H outputs [T, Dh] are put side by side into `stacked_qkv_attention` [T, H*Dh] = [17, "
                       "4096]. The grid shows the attention weights of every head (`attn_weights_all` [H, T, T]); "
                       "heads of one group are drawn next to each other.",
        .notebook_zh = "对这一层的每个 query 头 h，重复第 04 到 10 章。头 h 使用第 `h // (H/Hkv)` 个 key/value "
                       "头（分组查询注意力）：相邻的 query 头读同样的 key 和 value，但提出不同的问题。\n"
                       "\n"
                       "H 个 [T, Dh] 的输出并排拼接成 `stacked_qkv_attention` [T, H*Dh] = [17, "
                       "4096]。网格图画出每个头的注意力权重（`attn_weights_all` [H, T, T]），同一组的头画在一起。",
        .tutorial_code = "for head in range(n_heads):\n"
                         "    q_layer0_head = q_layer0[head]\n"
                         "    k_layer0_head = k_layer0[head//4] # key weights are shared across 4 heads\n"
                         "    v_layer0_head = v_layer0[head//4] # value weights are shared across 4 heads\n"
                         "    # ... chapters 04-10 for this head ...\n"
                         "    qkv_attention_store.append(qkv_attention)\n"
                         "stacked_qkv_attention = torch.cat(qkv_attention_store, dim=-1)",
        .figures = {
            {"heads.png", "attn_weights_all",
             "head_grid(load(\"11_multihead\", \"attn_weights_all\"), \"attention weights of every head of the "
             "layer\")"},
        },
    },
    {
        .id = "12_output",
        .title_en = "the output weight and the first residual",
        .title_zh = "输出权重与第一个残差连接",
        .intro_en = "One more product mixes the heads back into the model's dimension: wo. Its result is not the "
                    "new embedding but a change to it, added to the embeddings that came into the layer (the "
                    "residual connection). That keeps the original information and lets many layers add to it.",
        .intro_zh = "再做一次矩阵乘法（wo），把各个头的结果混合回模型维度。它的结果不是新的嵌入，而是对嵌入的修改，"
                    "要加到进入这一层的嵌入上（残差连接）。这样原始信息得以保留，很多层可以逐层往上加。",
        .notebook_en = "`wo` [D, D] mixes the heads' outputs back into one D-wide vector per token: "
                       "`embedding_delta` [T, D]. It is a change to apply, not a new embedding.\n"
                       "\n"
                       "The change is added to the embeddings that entered the layer (before their normalisation): "
                       "`embedding_after_edit` [T, D]. This sum, the residual connection, is what lets information "
                       "flow past a layer that has little to add.",
        .notebook_zh = "`wo` [D, D] 把各个头的输出重新混合成每个 token 一个 D 维向量：`embedding_delta` [T, "
                       "D]。它是要施加的改动，而不是新的嵌入。\n"
                       "\n"
                       "这个改动加到进入这一层时的嵌入（归一化之前的）上，得到 `embedding_after_edit` [T, "
                       "D]。这个加法就是残差连接，它让信息能够绕过一个没什么可补充的层继续往下流。",
        .tutorial_code = "w_layer0 = model[\"layers.0.attention.wo.weight\"]\n"
                         "embedding_delta = torch.matmul(stacked_qkv_attention, w_layer0.T)\n"
                         "embedding_after_edit = token_embeddings_unnormalized + embedding_delta",
    },
    {
        .id = "13_ffn",
        .title_en = "RMSNorm and the SwiGLU feed-forward network",
        .title_zh = "RMS 归一化与 SwiGLU 前馈网络",
        .intro_en = "After attention has moved information between tokens, the feed-forward network works on each "
                    "token alone. SwiGLU: two projections up to the hidden size, one passed through SiLU and used "
                    "as a gate on the other, then one projection back down. Its output is added to the stream like "
                    "attention's.",
        .intro_zh = "注意力在 token 之间传递信息之后，前馈网络单独处理每个 token。SwiGLU：两个投影升到隐藏维度，其中"
                    "一个经过 SiLU 作为另一个的门控，再用一个投影降回来。它的输出像注意力的输出一样加到残差流上。",
        .notebook_en = "The second half of the layer works on each token alone. After another RMSNorm (`ffn_norm`), "
                       "two projections widen the vector to F (14336): `w1` goes through SiLU and acts as a gate on "
                       "`w3`, element by element; `w2` brings the result back to D. This is the SwiGLU feed-forward "
                       "network.\n"
                       "\n"
                       "Its output is added to the residual stream a second time; the sum, `layer_0_embedding` [T, "
                       "D], is the output of the whole first layer and the input of the next.",
        .notebook_zh = "层的后半部分对每个 token 单独计算。再做一次 RMSNorm（`ffn_norm`）之后，两个投影把向量放宽到 "
                       "F（14336）：`w1` 经过 SiLU 后作为门控，逐元素乘到 `w3` 上；`w2` 再把结果变回 D 维。这就是 "
                       "SwiGLU 前馈网络。\n"
                       "\n"
                       "它的输出第二次加到残差流上；得到的 `layer_0_embedding` [T, D] 就是整个第一层的输出，也是下一"
                       "层的输入。",
        .tutorial_code = "embedding_after_edit_normalized = rms_norm(embedding_after_edit, "
                         "model[\"layers.0.ffn_norm.weight\"])\n"
                         "w1 = model[\"layers.0.feed_forward.w1.weight\"]\n"
                         "w2 = model[\"layers.0.feed_forward.w2.weight\"]\n"
                         "w3 = model[\"layers.0.feed_forward.w3.weight\"]\n"
                         "output_after_feedforward = "
                         "torch.matmul(torch.functional.F.silu(torch.matmul(embedding_after_edit_normalized, w1.T)) "
                         "* torch.matmul(embedding_after_edit_normalized, w3.T), w2.T)\n"
                         "layer_0_embedding = embedding_after_edit+output_after_feedforward",
    },
    {
        .id = "14_layers",
        .title_en = "all the layers",
        .title_zh = "所有层",
        .intro_en = "That was one layer. The model stacks n_layers of them, each with its own weights and the same "
                    "shapes: the output of one layer is the input of the next. Each layer edits the embeddings a "
                    "little more; by the last one the vector of the last token should hold what is needed to "
                    "predict the next token.",
        .intro_zh = "刚才只是一层。模型把 n_layers 层堆叠起来，每层有自己的权重、形状都相同：一层的输出就是下一层的"
                    "输入。每一层对嵌入再多做一点修改；到最后一层，最后一个 token 的向量应该包含预测下一个 token "
                    "所需的信息。",
        .notebook_en = "A Llama-3 model is the same layer repeated (32 times for the 8B model), each with its own "
                       "weights; the output of one layer is the input of the next. `layer_outputs` [L, T, D] keeps "
                       "the residual stream after every layer and `final_embedding` [T, D] is the last of them.\n"
                       "\n"
                       "The line chart follows the length of the residual vectors through the depth: it grows, "
                       "because every layer adds to it. One attention grid per layer shows how the heads' patterns "
                       "change from the first layer to the last.",
        .notebook_zh = "Llama-3 模型就是同一种层重复多次（8B 模型是 32 次），每层有自己的权重；一层的输出是下一层的"
                       "输入。`layer_outputs` [L, T, D] 保存每一层之后的残差流，`final_embedding` [T, D] "
                       "是其中最后一个。\n"
                       "\n"
                       "折线图跟踪残差向量的长度随深度的变化：它会增长，因为每一层都在往上加东西。每层一张注意力网格"
                       "图，展示各个头的注意力模式从第一层到最后一层的变化。",
        .tutorial_code = "final_embedding = token_embeddings_unnormalized\n"
                         "for layer in range(n_layers):\n"
                         "    # ... chapters 03-13 with the weights of this layer ...\n"
                         "    final_embedding = embedding_after_edit+output_after_feedforward",
        .figures = {
            {"residual_norms.png", "residual_norms",
             "residual_norms(load(\"14_layers\", \"residual_norms\"))"},
            {"attention_layer_*.png", "attn_weights_layers",
             "head_grid(load(\"14_layers\", \"attn_weights_layers\")[{N}], \"layer {N}: attention weights of every "
             "head\")"},
        },
    },
    {
        .id = "15_logits",
        .title_en = "the final norm, the logits and the prediction",
        .title_zh = "最终归一化、logits 与预测",
        .intro_en = "After the last layer one more RMSNorm, then the output weight turns the last token's vector "
                    "into one score per vocabulary entry (the logits). The highest score is the model's prediction "
                    "for the next token. Only the last token's row is needed: it is the one that has seen the whole "
                    "prompt.",
        .intro_zh = "最后一层之后再做一次 RMSNorm，然后输出权重把最后一个 token 的向量变成词表中每个条目的一个分数（"
                    "logits）。分数最高的就是模型对下一个 token 的预测。只需要最后一个 token "
                    "的那一行：只有它看过了整个提示词。",
        .notebook_en = "One last RMSNorm (`norm.weight`), then `output.weight` [V, D] turns the last token's vector "
                       "into V scores, the logits [V]: one number per entry of the vocabulary. Only the last row "
                       "matters for the next token, because it is the only one that has seen the whole prompt.\n"
                       "\n"
                       "The largest logit is the prediction. With Meta-Llama-3-8B and the tutorial's prompt it is "
                       "token 2983, \"42\". The bar chart shows the ten most likely tokens with their softmax "
                       "probabilities.",
        .notebook_zh = "最后再做一次 RMSNorm（`norm.weight`），然后 `output.weight` [V, D] 把最后一个 token "
                       "的向量变成 V 个分数，即 logits [V]：词表中每个条目一个数。预测下一个 token "
                       "只需要最后一行，因为只有它看过了整个提示词。\n"
                       "\n"
                       "最大的 logit 就是预测结果。用 Meta-Llama-3-8B 和教程的提示词，它是 token 2983，即 "
                       "“42”。柱状图给出最可能的 10 个 token 及其 softmax 概率。",
        .tutorial_code = "final_embedding = rms_norm(final_embedding, model[\"norm.weight\"])\n"
                         "logits = torch.matmul(final_embedding[-1], model[\"output.weight\"].T)\n"
                         "next_token = torch.argmax(logits, dim=-1)\n"
                         "tokenizer.decode([next_token.item()])",
        .figures = {
            {"top_k.png", "logits",
             "top_k(load(\"15_logits\", \"logits\"), k=10)"},
        },
    },
    {
        .id = "16_generate",
        .title_en = "generating more tokens with a KV cache",
        .title_zh = "用 KV 缓存生成更多 token",
        .intro_en = "Chapter 15 predicted one token. To generate N more, the naive way feeds prompt + new tokens "
                    "through the whole model again at every step, recomputing the keys and values of every earlier "
                    "position. Those never change (a token only attends to the past), so Meta's code caches them: "
                    "cache_k and cache_v hold K and V of every layer for positions 0..S-1. A step runs only the new "
                    "token, at position start_pos, writes its K/V into row start_pos and attends over rows "
                    "0..start_pos; the causal mask is shifted by start_pos.",
        .intro_zh = "第 15 章只预测了一个 token。要再生成 N 个，朴素的做法是每一步都把提示词加上新 token "
                    "整个再跑一遍模型，把之前每个位置的 K 和 V 重新算一遍。它们从不改变（一个 token "
                    "只关注过去），所以 Meta 的代码把它们缓存起来：cache_k 和 cache_v 存着每一层在位置 0..S-1 的 K "
                    "和 V。每一步只运行新 token，位置为 start_pos，把它的 K/V 写入第 start_pos 行，并关注第 "
                    "0..start_pos 行；因果掩码整体偏移 start_pos。",
        .notebook_en = "The tutorial stops after one token. To go on, the predicted token is appended and the model "
                       "runs again; a key/value cache makes that cheap: the keys and values of the tokens already "
                       "seen are kept per layer, so each new token only computes its own query, key and value and "
                       "attends to the cache.\n"
                       "\n"
                       "The mask then starts at the new token's position (Meta's `start_pos`). Greedy decoding from "
                       "the cache gives the same tokens as recomputing the whole sequence each time.",
        .notebook_zh = "教程在预测出一个 token 后就停了。要继续，就把预测出的 token 接到后面再运行一次模型；"
                       "key/value 缓存让这一步很便宜：已经看过的 token 的 key 和 value 按层保存下来，每个新 token "
                       "只需算出自己的 query、key、value，再对缓存做注意力。\n"
                       "\n"
                       "这时掩码从新 token 的位置开始（Meta 代码中的 `start_pos`）。用缓存做贪心解码，得到的 token "
                       "与每次重新计算整个序列完全相同。",
        .tutorial_code = "# Meta's llama/generation.py (the tutorial has no such chapter)\n"
                         "logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)\n"
                         "next_token = torch.argmax(logits[:, -1], dim=-1)",
        .usage_extra = "This chapter prefills the prompt, then decodes 8 tokens greedily with the cache and once "
                       "more by full recomputation, and compares the logits of the two ways at every step. Then it "
                       "times one new token at positions T, 2T, 4T, ... both ways (cost_per_token.png), as far as "
                       "the recompute stays affordable (a few seconds on a CPU; skipped at 8B shape on a CPU).\n"
                       "With --no-compare: on CUDA the engine alone generates (its recompute still runs, to be "
                       "timed); on the CPU the cached way alone.",
    },
    {
        .id = "17_packed",
        .title_en = "the serving layout: packed products and the fused residual + RMSNorm",
        .title_zh = "推理引擎的布局：合并的矩阵乘法与融合的残差 + RMSNorm",
        .intro_en = "Serving engines (vLLM, nano-vllm, the engine of this project) do not run chapters 04-13 as "
                    "written. wq, wk and wv all multiply the same normalised embeddings, so their rows are stacked "
                    "into one matrix wqkv and multiplied once; w1 and w3 likewise into w13. The residual add and the "
                    "RMSNorm that follows it read and write the same row, so one kernel does both. Fewer launches, "
                    "the input read once: the same numbers.",
        .intro_zh = "推理引擎（vLLM、nano-vllm、本项目的引擎）并不按第 04-13 章的写法逐个计算。wq、wk、wv 乘的是同一个"
                    "归一化后的嵌入，所以把它们的行叠成一个矩阵 wqkv，只做一次乘法；w1 和 w3 同样叠成 w13。残差相加和"
                    "紧随其后的 RMSNorm 读写的是同一行，所以用一个内核完成两者。内核启动更少，输入只读一次：结果完全"
                    "相同。",
        .notebook_en = "The tutorial multiplies the normalised embeddings by `wq`, `wk` and `wv` one after another. "
                       "A serving engine stacks the three weights row by row into one matrix, `wqkv = cat(wq, wk, wv)` "
                       "[(H + 2·Hkv)·Dh, D] ([6144, 4096] for Llama-3-8B), multiplies once and splits the result's "
                       "columns at H·Dh and (H + Hkv)·Dh. `w1` and `w3` become `w13` [2F, D] the same way, split at F "
                       "into the gate and the up projection.\n"
                       "\n"
                       "Every output element is still the sum of the same products, so on the CPU the packed results "
                       "equal the separate ones bit for bit (the comparisons below have tolerance 0). The engine also "
                       "fuses the residual add with the RMSNorm that follows it: one pass over the row writes "
                       "`embedding_after_edit` and `embedding_after_edit_normalized`, again the same bits. The figure "
                       "shows which rows of the packed matrices come from which weight.",
        .notebook_zh = "教程依次用 `wq`、`wk`、`wv` 去乘归一化后的嵌入。推理引擎把这三个权重按行叠成一个矩阵 "
                       "`wqkv = cat(wq, wk, wv)` [(H + 2·Hkv)·Dh, D]（Llama-3-8B 是 [6144, 4096]），只乘一次，再在 "
                       "H·Dh 和 (H + Hkv)·Dh 处把结果的列拆开。`w1` 和 `w3` 同样合成 `w13` [2F, D]，在 F 处拆成门控"
                       "和上投影。\n"
                       "\n"
                       "每个输出元素仍是同样那些乘积之和，所以在 CPU 上合并后的结果与分开计算的结果逐位相同（下面的"
                       "对比容差为 0）。引擎还把残差相加和紧随其后的 RMSNorm 融合：对一行只走一遍，就写出 "
                       "`embedding_after_edit` 和 `embedding_after_edit_normalized`，同样逐位相同。图中标出合并矩阵"
                       "的各行来自哪个权重。",
        .tutorial_code = "# the serving engines' layout (the tutorial has no such chapter)\n"
                         "wqkv = torch.cat([wq, wk, wv], dim=0)\n"
                         "q, k, v = torch.matmul(x, wqkv.T).split([n_heads * head_dim, n_kv_heads * head_dim, "
                         "n_kv_heads * head_dim], dim=-1)\n"
                         "w13 = torch.cat([w1, w3], dim=0)\n"
                         "gate, up = torch.matmul(x, w13.T).split([ffn_hidden, ffn_hidden], dim=-1)\n"
                         "h = x + embedding_delta; h_normed = rms_norm(h, ffn_norm)  # one kernel",
        .usage_extra = "On a mixture-of-experts model this chapter traces the demo model (a dense feed-forward) "
                       "instead and says so.",
        .needs_dense = true,
    },
    {
        .id = "18_tensor_parallel",
        .title_en = "tensor parallelism: one layer and the logits on N ranks",
        .title_zh = "张量并行：在 N 个 rank 上计算一层和 logits",
        .intro_en = "A model too big or too slow for one GPU is split over N of them, the way Meta's code splits it "
                    "(fairscale's layers, one process per GPU under torchrun). Each rank holds whole heads of wq, wk "
                    "and wv, a slice of the FFN and of the vocabulary; it computes its part with no communication "
                    "until wo and w2, whose products are partial sums: an all-reduce adds them up. Two all-reduces "
                    "per layer are all the talking the ranks do.",
        .intro_zh = "一块 GPU 放不下或算得太慢的模型，可以像 Meta 的代码那样切分到 N 块 GPU 上（fairscale 的层，在 "
                    "torchrun 下每块 GPU 一个进程）。每个 rank 持有 wq、wk、wv 的若干整头，以及 FFN 和词表的一部分；"
                    "它计算自己的那部分，直到 wo 和 w2 之前都不需要通信。wo 和 w2 的乘积是部分和：用一次 all-reduce "
                    "把它们加起来。每层两次 all-reduce，就是 rank 之间全部的通信。",
        .notebook_en = "Meta's reference code builds the model from fairscale's model-parallel layers; "
                       "`model_parallel_size` N is the number of `consolidated.NN.pth` files (1 for the 8B, 8 for the "
                       "70B). Rank r holds: the rows of wq, wk and wv of its H/N whole heads (`ColumnParallelLinear`: "
                       "each rank computes whole output columns); the matching columns of wo (`RowParallelLinear`: "
                       "each rank computes a partial sum [T, D] that an all-reduce adds up); F/N rows of w1 and w3 and "
                       "the matching columns of w2; V/N rows of the embedding (`VocabParallelEmbedding`: ids outside "
                       "the rank's range give zeros, the all-reduce fills them in) and of the output matrix (each "
                       "rank's logits are gathered). The norms are whole on every rank. When there are more ranks "
                       "than kv heads, each kv head is replicated on N/Hkv ranks.\n"
                       "\n"
                       "The figure shows which rank holds which rows or columns; the per-rank tensors have a leading "
                       "[N] axis. Where no sum is split (the lookups, q, k, v, the attention, the logits) the result "
                       "is the unsplit model's bit for bit. The two all-reduces round each rank's partial sum and each "
                       "addition, so in bf16 they differ from the unsplit product by a few roundings, within a bound "
                       "the chapter computes; the partial-sum figure shows the N partials of the last token, their "
                       "total and the unsplit product.",
        .notebook_zh = "Meta 的参考代码用 fairscale 的模型并行层搭建模型；`model_parallel_size` N 就是 "
                       "`consolidated.NN.pth` 文件的个数（8B 是 1，70B 是 8）。第 r 个 rank 持有：wq、wk、wv 中属于它"
                       "那 H/N 个整头的行（`ColumnParallelLinear`：每个 rank 算出完整的若干输出列）；wo 中对应的列"
                       "（`RowParallelLinear`：每个 rank 算出一个 [T, D] 的部分和，由 all-reduce 加起来）；w1、w3 的 "
                       "F/N 行和 w2 中对应的列；嵌入矩阵的 V/N 行（`VocabParallelEmbedding`：不在本 rank 范围内的 id "
                       "得到 0，由 all-reduce 补齐）以及输出矩阵的 V/N 行（各 rank 的 logits 收集到一起）。归一化权重"
                       "在每个 rank 上都是完整的。rank 比 kv 头多时，每个 kv 头复制到 N/Hkv 个 rank 上。\n"
                       "\n"
                       "图中标出哪个 rank 持有哪些行或列；每个 rank 的张量都多一个 [N] 维。凡是没有把求和拆开的地方"
                       "（查表、q、k、v、注意力、logits），结果与不切分的模型逐位相同。两次 all-reduce 会对每个 rank "
                       "的部分和以及每次加法做舍入，所以在 bf16 下它们与不切分的乘积相差几次舍入，在本章计算出的界限"
                       "之内；部分和的图给出最后一个 token 的 N 个部分和、它们的总和以及不切分的乘积。",
        .tutorial_code = "# Meta's llama/model.py with model_parallel_size = N (the tutorial has no such chapter)\n"
                         "self.wq = ColumnParallelLinear(dim, n_heads * head_dim, bias=False, gather_output=False)\n"
                         "self.wo = RowParallelLinear(n_heads * head_dim, dim, bias=False, input_is_parallel=True)\n"
                         "self.tok_embeddings = VocabParallelEmbedding(vocab_size, dim)\n"
                         "# a RowParallelLinear ends in torch.distributed.all_reduce(partial_output)",
        .usage_extra = "--tp N: the number of ranks (default 2, or 1 when the model cannot be split in 2). N must "
                       "split the model into whole pieces: n_heads, the FFN size and the vocabulary multiples of N, "
                       "n_kv_heads a multiple of N or N a multiple of n_kv_heads (then the kv heads are replicated); "
                       "otherwise exit 2 saying why.\n"
                       "On the CPU the ranks are emulated one after another. With --device cuda and N GPUs (and NCCL) "
                       "each rank is a process on its own GPU and the all-reduces are NCCL's (NCCL_NVLS_ENABLE=0: no "
                       "NVLink multicast); with fewer GPUs the ranks run one after another on GPU 0.\n"
                       "On a mixture-of-experts model this chapter traces the demo model (a dense feed-forward) instead "
                       "and says so.",
        .takes_tp = true,
        .needs_dense = true,
    },
    {
        .id = "19_logit_lens",
        .title_en = "the logit lens: the prediction after every layer",
        .title_zh = "logit lens：每一层之后的预测",
        .intro_en = "What would the model predict if it stopped after layer L? The final RMSNorm and the output head "
                    "of chapter 15 are applied early: to the residual stream after every layer, at every position. "
                    "Early layers give generic guesses; the answer appears somewhere in the depth, and the last "
                    "layer's row is chapter 15's prediction.",
        .intro_zh = "如果模型在第 L 层之后就停下，它会预测什么？把第 15 章的最终 RMSNorm 和输出头提前使用：用在每一层"
                    "之后、每个位置上的残差流上。前面的层只能给出笼统的猜测；答案会在某一深度出现，而最后一层的那一行"
                    "就是第 15 章的预测。",
        .notebook_en = "Chapter 15 applies the final RMSNorm and `output.weight` once, after the last layer. The logit "
                       "lens applies them after every layer L and at every position t: `softmax(rms_norm(h[L, t], "
                       "norm.weight) · output.weightᵀ)` is what the model would predict if it stopped after layer L. "
                       "The columns are the prompt's positions (each predicts the token after it), the rows the "
                       "layers.\n"
                       "\n"
                       "`logit_lens_top_ids` and `logit_lens_top_probs` [L, T, 10] hold the ten most likely next "
                       "tokens of every cell; the grid shows the first of them, coloured by its probability. The line "
                       "charts follow the model's final prediction (\"42\" for the tutorial's prompt) through the "
                       "layers: its probability and its rank (1 = the top token). The last layer's row at the last "
                       "position is chapter 15's logits, bit for bit.",
        .notebook_zh = "第 15 章在最后一层之后做一次最终 RMSNorm，再乘以 `output.weight`。logit lens 把这两步用在每一层 "
                       "L 之后、每个位置 t 上：`softmax(rms_norm(h[L, t], norm.weight) · output.weightᵀ)` "
                       "就是模型如果在第 L 层之后停下会给出的预测。列是提示词的各个位置（每个位置预测它后面的 "
                       "token），行是各层。\n"
                       "\n"
                       "`logit_lens_top_ids` 和 `logit_lens_top_probs` [L, T, 10] 保存每个格子里最可能的 10 个下一个 "
                       "token；网格图显示其中第一个，颜色表示它的概率。折线图跟踪模型的最终预测（教程提示词下是 "
                       "“42”）在各层的变化：它的概率和排名（1 = 排第一）。最后一层在最后一个位置上的那一行，与第 15 "
                       "章的 logits 逐位相同。",
        .tutorial_code = "# not in the tutorial: the final norm and the output head after every layer (the \"logit lens\")\n"
                         "for layer in range(n_layers):\n"
                         "    h = rms_norm(layer_outputs[layer], model[\"norm.weight\"])\n"
                         "    probs = torch.softmax(torch.matmul(h, model[\"output.weight\"].T), dim=-1)\n"
                         "    top_probs, top_ids = torch.topk(probs, 10, dim=-1)",
        .usage_extra = "Writes the 10 most likely next tokens of every (layer, position) with their probabilities, "
                       "the whole logits row of the last position after every layer, and the rank and probability of "
                       "the final prediction after each layer. On CUDA: one product per layer over the vocabulary.",
        .figures = {
            {"logit_lens.png", "logit_lens_top_probs",
             "logit_lens(load(\"19_logit_lens\", \"logit_lens_top_ids\"), load(\"19_logit_lens\", "
             "\"logit_lens_top_probs\"), vocab(\"19_logit_lens\"))"},
            {"final_prediction_prob.png", "final_prediction_prob",
             "per_layer(load(\"19_logit_lens\", \"final_prediction_prob\"), \"probability of the final prediction\")"},
            {"final_prediction_rank.png", "final_prediction_rank",
             "per_layer(np.log10(load(\"19_logit_lens\", \"final_prediction_rank\")), \"log10(rank) of the final "
             "prediction; 0 = the top token\")"},
        },
    },
    {
        .id = "20_moe",
        .title_en = "mixture of experts: MiniMind's routed feed-forward",
        .title_zh = "混合专家：MiniMind 的路由前馈网络",
        .intro_en = "A mixture-of-experts model replaces the one feed-forward network of a layer by E of them, the "
                    "experts, and a small gate. The gate scores every expert for every token (a softmax over E); "
                    "each token is sent to its k best experts only, and their outputs are added, weighted by the "
                    "scores renormalised to sum 1. Shared experts see every token, unweighted. The model has E times "
                    "the feed-forward weights but each token pays for k experts. During training an auxiliary loss "
                    "keeps the load even, so that no expert starves.",
        .intro_zh = "混合专家（MoE）模型把一层里唯一的前馈网络换成 E 个前馈网络（专家）外加一个小的门控。门控为每个 "
                    "token 给每个专家打分（在 E 个专家上做 softmax）；每个 token 只送到得分最高的 k "
                    "个专家，它们的输出按重新归一化（和为 1）的分数加权相加。共享专家处理每个 token，不加权。模型的前馈"
                    "权重是原来的 E 倍，但每个 token 只花 k 个专家的计算量。训练时一个辅助损失让负载保持均衡，使每个专家"
                    "都能分到 token。",
        .notebook_en = "MiniMind (the fourth source, its Zero2LLMV tensor-flow charts) replaces the SwiGLU "
                       "feed-forward of a layer by a mixture of experts. A gate `Wg` [E, D] scores the E routed "
                       "experts for each token: `gate_scores = softmax(x · Wgᵀ)` [T, E]. Each token keeps its top k "
                       "(`torch.topk`), the k weights are renormalised to sum 1 (`norm_topk_prob`), and the token's "
                       "output is the weighted sum of those k experts, each a whole SwiGLU FFN. Shared experts run on "
                       "every token and are simply added.\n"
                       "\n"
                       "The heatmap shows the gate's scores per token (rows) and expert (columns); the second one "
                       "keeps only the picked weights. The bar chart counts the picks of each expert against the "
                       "balanced share T·k/E: training adds MiniMind's auxiliary loss, α · Σ_e (load of e) · (mean "
                       "score of e), which is smallest when the load is even. Grouping the tokens by expert (sort by "
                       "expert id, one product per expert) gives the same result as running every expert on every "
                       "token with the weights set to 0 where not picked: the chapter checks that, bit for bit.\n"
                       "\n"
                       "On a model without experts the chapter says so and traces the MoE demo model, a small MoE "
                       "Llama trained by this project (models/README.md).",
        .notebook_zh = "MiniMind（第四个来源，Zero2LLMV 的张量流图）把一层的 SwiGLU 前馈网络换成混合专家。门控 `Wg` "
                       "[E, D] 为每个 token 给 E 个路由专家打分：`gate_scores = softmax(x · Wgᵀ)` [T, E]。每个 "
                       "token 保留得分最高的 k 个（`torch.topk`），这 k 个权重重新归一化为和 1（`norm_topk_prob`），"
                       "token 的输出是这 k 个专家输出的加权和，每个专家都是完整的 SwiGLU 前馈网络。共享专家处理每个 "
                       "token，直接相加。\n"
                       "\n"
                       "热力图按 token（行）和专家（列）给出门控分数；第二张只保留被选中的权重。柱状图统计每个专家被选中"
                       "的次数，并与均衡份额 T·k/E 对比：训练时加上 MiniMind 的辅助损失 α · Σ_e（专家 e 的负载）·（专家 "
                       "e 的平均分数），负载越均匀它越小。把 token 按专家分组（按专家编号排序，每个专家一次矩阵乘法）"
                       "与让每个专家处理每个 token、未选中处权重为 0 的结果相同：本章逐位检查这一点。\n"
                       "\n"
                       "在没有专家的模型上，本章会说明这一点，并改为追踪 MoE 演示模型：本项目训练的一个小型 MoE "
                       "Llama（见 models/README.md）。",
        .tutorial_code = "# MiniMind's MoEGate and MOEFeedForward (model_minimind.py; the tutorial has no MoE)\n"
                         "scores = F.linear(x, self.weight).softmax(dim=-1)\n"
                         "topk_weight, topk_idx = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)\n"
                         "topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)\n"
                         "y = self.moe_infer(x, topk_idx.view(-1), topk_weight.view(-1, 1))\n"
                         "for expert in self.shared_experts: y = y + expert(identity)",
        .usage_extra = "  On a model with a dense feed-forward this chapter traces the MoE demo model\n"
                       "  (build/models/llama3-tiny-moe, made by `make models`) and says so. --layer picks the MoE\n"
                       "  layer (the last one when the demo model has fewer layers than asked for).",
        .figures = {
            {"gate_scores.png", "gate_scores",
             "gate_heatmap(load(\"20_moe\", \"gate_scores\"), \"gate scores: softmax over the experts\")"},
            {"routing_weights.png", "routing_weights",
             "gate_heatmap(load(\"20_moe\", \"routing_weights\"), \"routing weights (blank: not picked)\", "
             "picked_only=True)"},
            {"expert_load.png", "expert_load", "load_bars(load(\"20_moe\", \"expert_load\"))"},
        },
        .needs_moe = true,
    },
};
const int N_CHAPTERS = (int)(sizeof CHAPTERS / sizeof CHAPTERS[0]);

const Chapter *chapter_find(const char *id) {
    for (int i = 0; i < N_CHAPTERS; i++)
        if (strcmp(CHAPTERS[i].id, id) == 0) return &CHAPTERS[i];
    return NULL;
}
