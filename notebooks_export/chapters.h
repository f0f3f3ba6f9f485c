// chapters.h: what the exported notebook and page say about each chapter, in English and Chinese, and the Python
// they run. Included by export-notebook.c only (static data, no functions to link).
//
// For every chapter of the walkthrough (steps/NN_name.c) there is
//   - a title and an explanation for a reader of the notebook (markdown: paragraphs split by a blank line, `code`);
//   - the tutorial's own PyTorch line(s) for that chapter, shown next to our numpy cell (the tutorial needs torch and
//     the 16 GB checkpoint, so those lines are shown as comments and never run);
// and for every figure a step draws, a recipe: the Python call (helpers of NB_PRELUDE) that redraws it with
// matplotlib from the chapter's .npy files. Names (D, T, H, Hkv, Dh, F, V) are those of docs/tutorial-map.md;
// the shapes quoted are Llama-3-8B's on the tutorial's 17-token prompt.
#pragma once

typedef struct {
    const char *id;                  // the step id: "05_rope"
    const char *title_en, *title_zh;
    const char *explain_en, *explain_zh;
    const char *tutorial_code;       // the tutorial's PyTorch, several lines
} NotebookChapter;

static const NotebookChapter NB_CHAPTERS[] = {
    {"00_config", "reading params.json and the checkpoint", "读取 params.json 与检查点",
     "Everything starts from two files. `params.json` is a dozen numbers: the width of the model `dim` (D), the "
     "number of layers, of query heads (H) and of key/value heads (Hkv), the vocabulary size (V) and the constants of "
     "RMSNorm and RoPE. `consolidated.00.pth` is a zip of named bf16 tensors.\n\n"
     "A few sizes are not stored but derived: each head is `head_dim = D / H` wide (128), `H / Hkv` query heads share "
     "one key/value head (4 for Llama-3-8B), and the feed-forward width F comes from Meta's rounding rule "
     "(4096 -> 10922 -> 14198 -> 14336). This chapter has no tensors: its output is the printed configuration.",
     "一切从两个文件开始。`params.json` 只有十几个数：模型宽度 `dim`（D）、层数、query 头数（H）与 key/value 头数（Hkv）、"
     "词表大小（V），以及 RMSNorm 和 RoPE 的常数。`consolidated.00.pth` 是一个 zip，里面是按名字存放的 bf16 张量。\n\n"
     "有几个尺寸文件里没有，需要推导：每个头宽 `head_dim = D / H`（128）；每 `H / Hkv` 个 query 头共享一个 key/value 头"
     "（Llama-3-8B 是 4 个）；前馈层宽度 F 按 Meta 的取整规则得到（4096 -> 10922 -> 14198 -> 14336）。"
     "这一章不产生张量，它的输出就是打印出来的配置。",
     "with open(\"Meta-Llama-3-8B/params.json\", \"r\") as f:\n"
     "    config = json.load(f)\n"
     "model = torch.load(\"Meta-Llama-3-8B/consolidated.00.pth\")\n"
     "print(json.dumps(list(model.keys())[:20], indent=4))"},

    {"01_tokenize", "text to tokens", "把文本转换为 token",
     "The network only ever sees integers. The tokenizer cuts the prompt into pieces it knows (common words with "
     "their leading space, punctuation, digits) and replaces each piece by its number in a table of 128000 pieces; "
     "the id 128000, `<|begin_of_text|>`, is put in front.\n\n"
     "The count of tokens, T, is the first dimension of every activation that follows: 17 for the tutorial's prompt. "
     "`tokens.npy` holds the ids as int64.",
     "神经网络只认识整数。分词器把提示词切成它认识的片段（常见单词连同前面的空格、标点、数字），再把每个片段换成它在一张"
     "含 128000 个片段的表中的编号；最前面再加上编号 128000，即 `<|begin_of_text|>`。\n\n"
     "token 的个数 T 是之后所有激活张量的第一个维度：教程的提示词是 17 个。`tokens.npy` 以 int64 保存这些编号。",
     "tokens = [128000] + tokenizer.encode(prompt)\n"
     "tokens = torch.tensor(tokens)\n"
     "prompt_split_as_tokens = [tokenizer.decode([token.item()]) for token in tokens]"},

    {"02_embed", "tokens to embeddings", "把 token 转换为嵌入向量",
     "An embedding is just a row lookup: token id i selects row i of `tok_embeddings.weight` [V, D]. Stacking the T "
     "rows gives `token_embeddings_unnormalized` [T, D] ([17, 4096]).\n\n"
     "Nothing is multiplied here, so the values are exactly the bf16 weights. Identical tokens (the three 'the') get "
     "identical rows: position plays no part yet.",
     "嵌入就是按行查表：编号为 i 的 token 取出 `tok_embeddings.weight` [V, D] 的第 i 行。把 T 行叠在一起就得到 "
     "`token_embeddings_unnormalized` [T, D]（[17, 4096]）。\n\n"
     "这里没有任何乘法，所以数值就是权重里的 bf16 值。相同的 token（三个 “the”）得到相同的行：位置此时还不起作用。",
     "embedding_layer = torch.nn.Embedding(vocab_size, dim)\n"
     "embedding_layer.weight.data.copy_(model[\"tok_embeddings.weight\"])\n"
     "token_embeddings_unnormalized = embedding_layer(tokens).to(torch.bfloat16)"},

    {"03_rmsnorm", "RMS normalisation", "RMS 归一化",
     "Before each attention block the rows are rescaled to a common size: each row is divided by its root mean "
     "square, `sqrt(mean(x^2) + eps)`, then multiplied element by element by a learned weight "
     "(`layers.0.attention_norm.weight`, [D]). The shape stays [T, D].\n\n"
     "`rms.npy` holds the T divisors. Following Meta's code the sum of squares is done in float32 and the result is "
     "rounded back to bf16; `norm_eps` only guards against a division by zero.",
     "每个注意力块之前，都先把每一行缩放到相近的大小：用该行的均方根 `sqrt(mean(x^2) + eps)` 去除，再逐元素乘以一个"
     "学到的权重（`layers.0.attention_norm.weight`，[D]）。形状仍然是 [T, D]。\n\n"
     "`rms.npy` 保存这 T 个除数。按照 Meta 的代码，平方和在 float32 中计算，结果再舍入回 bf16；`norm_eps` 只是为了"
     "避免除以零。",
     "def rms_norm(tensor, norm_weights):\n"
     "    return (tensor * torch.rsqrt(tensor.pow(2).mean(-1, keepdim=True) + norm_eps)) * norm_weights\n"
     "token_embeddings = rms_norm(token_embeddings_unnormalized, model[\"layers.0.attention_norm.weight\"])"},

    {"04_query", "unwrapping the query (one head of one layer)", "展开 query（一层中的一个头）",
     "`wq` [D, D] is really H weight matrices of Dh rows each, stored one under the other. Viewing it as "
     "[H, Dh, D] ([32, 128, 4096]) and taking slice 0 gives the query weight of head 0, [Dh, D].\n\n"
     "Multiplying the normalised embeddings by its transpose gives one query vector per token: `q_per_token` "
     "[T, Dh] ([17, 128]). A query is what a token is looking for in the tokens before it.",
     "`wq` [D, D] 实际上是 H 个各有 Dh 行的权重矩阵上下摞在一起。把它看成 [H, Dh, D]（[32, 128, 4096]）并取第 0 片，"
     "就是头 0 的 query 权重 [Dh, D]。\n\n"
     "用归一化后的嵌入乘以它的转置，每个 token 得到一个 query 向量：`q_per_token` [T, Dh]（[17, 128]）。query 表示一个 "
     "token 想在它前面的 token 中找什么。",
     "q_layer0 = model[\"layers.0.attention.wq.weight\"]\n"
     "q_layer0 = q_layer0.view(n_heads, q_layer0.shape[0] // n_heads, dim)\n"
     "q_layer0_head0 = q_layer0[0]\n"
     "q_per_token = torch.matmul(token_embeddings, q_layer0_head0.T)"},

    {"05_rope", "positions by rotating complex pairs (RoPE)", "用复数对的旋转编码位置（RoPE）",
     "So far a token's query does not depend on where the token stands. RoPE adds the position by rotation: the Dh "
     "numbers of a query are read as Dh/2 pairs, each pair a point in the plane (a complex number), and pair i of the "
     "token at position m is turned by the angle `m * freqs[i]`, with `freqs[i] = 1 / rope_theta^(i / (Dh/2))`.\n\n"
     "Pair 0 turns by a whole radian per position, the last pair by a few millionths: together they tell near and far "
     "positions apart. `freqs_cis` [T, Dh/2] holds the unit complex numbers that do the turning (saved as "
     "[T, Dh/2, 2], real and imaginary parts); the figure draws one row of it as rays from the origin. A rotation "
     "keeps lengths, so only the angles between queries and keys change.",
     "到目前为止，一个 token 的 query 与它所在的位置无关。RoPE 用旋转把位置加进去：把 query 的 Dh 个数看成 Dh/2 对，"
     "每一对是平面上的一个点（一个复数）；位置为 m 的 token 的第 i 对旋转 `m * freqs[i]` 的角度，其中 "
     "`freqs[i] = 1 / rope_theta^(i / (Dh/2))`。\n\n"
     "第 0 对每前进一个位置转一整个弧度，最后一对只转百万分之几：合在一起既能分辨相邻的位置，也能分辨相距很远的位置。"
     "`freqs_cis` [T, Dh/2] 存放负责旋转的单位复数（以 [T, Dh/2, 2] 保存实部和虚部）；图中把其中一行画成从原点出发的"
     "射线。旋转不改变长度，只改变 query 与 key 之间的夹角。",
     "q_per_token_split_into_pairs = q_per_token.float().view(q_per_token.shape[0], -1, 2)\n"
     "zero_to_one_split_into_64_parts = torch.tensor(range(64))/64\n"
     "freqs = 1.0 / (rope_theta ** zero_to_one_split_into_64_parts)\n"
     "freqs_for_each_token = torch.outer(torch.arange(17), freqs)\n"
     "freqs_cis = torch.polar(torch.ones_like(freqs_for_each_token), freqs_for_each_token)\n"
     "q_per_token_as_complex_numbers = torch.view_as_complex(q_per_token_split_into_pairs)\n"
     "q_per_token_split_into_pairs_rotated = torch.view_as_real(q_per_token_as_complex_numbers * freqs_cis)\n"
     "q_per_token_rotated = q_per_token_split_into_pairs_rotated.view(q_per_token.shape)"},

    {"06_key", "keys, almost the same as queries", "key：几乎与 query 一模一样",
     "Keys are made like queries, with two differences. `wk` has only Hkv heads ([Hkv, Dh, D] = [8, 128, 4096]), "
     "because a group of H/Hkv query heads shares one key head; and a key describes what a token offers rather than "
     "what it looks for.\n\n"
     "The key of head 0, `k_per_token` [T, Dh], is rotated with the same `freqs_cis` as the query, so that the product "
     "of a query and a key depends on the distance between their positions, not on the positions themselves.",
     "key 的做法和 query 一样，只有两点不同。`wk` 只有 Hkv 个头（[Hkv, Dh, D] = [8, 128, 4096]），因为每 H/Hkv 个 "
     "query 头共用一个 key 头；而且 key 描述的是一个 token 能提供什么，而不是它在找什么。\n\n"
     "头 0 的 key，`k_per_token` [T, Dh]，用与 query 相同的 `freqs_cis` 旋转，这样 query 与 key 的乘积只取决于两者"
     "位置之间的距离，而不是各自的绝对位置。",
     "k_layer0 = model[\"layers.0.attention.wk.weight\"]\n"
     "k_layer0 = k_layer0.view(n_kv_heads, k_layer0.shape[0] // n_kv_heads, dim)\n"
     "k_per_token = torch.matmul(token_embeddings, k_layer0[0].T)\n"
     "k_per_token_split_into_pairs = k_per_token.float().view(k_per_token.shape[0], -1, 2)\n"
     "k_per_token_as_complex_numbers = torch.view_as_complex(k_per_token_split_into_pairs)\n"
     "k_per_token_split_into_pairs_rotated = torch.view_as_real(k_per_token_as_complex_numbers * freqs_cis)\n"
     "k_per_token_rotated = k_per_token_split_into_pairs_rotated.view(k_per_token.shape)"},

    {"07_scores", "queries times keys: the attention scores", "query 乘以 key：注意力分数",
     "Every query is compared with every key by a dot product: `q_per_token_rotated @ k_per_token_rotated.T` is a "
     "[T, T] table, row = the token asking, column = the token asked. Dividing by `sqrt(Dh)` keeps the numbers in a "
     "range where the softmax that follows is not saturated.\n\n"
     "In the heatmap, a bright cell means that the query of its row matches the key of its column well. Half of the "
     "table looks into the future; the next chapter removes it.",
     "每个 query 与每个 key 做点积：`q_per_token_rotated @ k_per_token_rotated.T` 得到一张 [T, T] 的表，行是提问的 "
     "token，列是被问的 token。除以 `sqrt(Dh)` 让数值保持在一个范围内，使后面的 softmax 不至于饱和。\n\n"
     "热力图中越亮的格子，表示这一行的 query 与这一列的 key 越匹配。表的一半是在看“未来”的 token，下一章会把它去掉。",
     "qk_per_token = torch.matmul(q_per_token_rotated, k_per_token_rotated.T)/(head_dim)**0.5"},

    {"08_mask", "the causal mask", "因果掩码",
     "The model was trained to guess each token from the ones before it, so a token may not look at later tokens. "
     "The mask is a [T, T] matrix with 0 on and below the diagonal and -inf above it; adding it to the scores "
     "leaves the allowed cells alone and makes the others -inf, which the softmax turns into exactly 0.\n\n"
     "In the heatmaps the masked cells are marked as masked (hatched in the C program's figure, blank in the "
     "matplotlib one), not coloured as a very small number. The statistics in the table cover the finite values "
     "only; the -inf cells are counted apart.",
     "模型在训练时是根据前面的 token 来猜下一个 token 的，所以一个 token 不能看它后面的 token。掩码是一个 [T, T] 矩阵："
     "对角线及其下方为 0，上方为 -inf；把它加到分数上，允许的格子保持不变，其余格子变成 -inf，经过 softmax 后正好是 0。\n\n"
     "热力图中被遮住的格子标记为“遮住”（C 程序的图里画成斜线，matplotlib 的图里留白），而不是涂成一个很小的数的颜色。"
     "表中的统计量只针对有限值，-inf 的格子单独计数。",
     "mask = torch.full((len(tokens), len(tokens)), float(\"-inf\"), device=tokens.device)\n"
     "mask = torch.triu(mask, diagonal=1)\n"
     "qk_per_token_after_masking = qk_per_token + mask"},

    {"09_softmax", "softmax: scores become attention weights", "softmax：分数变成注意力权重",
     "Each row of masked scores becomes a probability distribution: `exp` of every entry, divided by the row's sum. "
     "The weights are between 0 and 1, each row sums to 1, and the masked cells are exactly 0. The softmax is done "
     "in float32 and the weights are then rounded to bf16.\n\n"
     "Row t says how much token t takes from each earlier token. In a trained model much of the weight often lands "
     "on `<|begin_of_text|>`, which serves as a place to put attention that is not needed elsewhere.",
     "把掩码后的每一行分数变成一个概率分布：对每个元素取 `exp`，再除以这一行的和。权重在 0 到 1 之间，每行之和为 1，"
     "被遮住的格子正好是 0。softmax 在 float32 中计算，然后把权重舍入为 bf16。\n\n"
     "第 t 行表示 token t 从前面每个 token 取多少信息。在训练好的模型里，很多权重常常落在 `<|begin_of_text|>` 上，"
     "它相当于一个存放“用不上的注意力”的地方。",
     "qk_per_token_after_masking_after_softmax = torch.nn.functional.softmax(qk_per_token_after_masking, "
     "dim=1).to(torch.bfloat16)"},

    {"10_value", "values and the attention of one head", "value 与一个头的注意力",
     "Values are the third projection: `wv` viewed as [Hkv, Dh, D], head 0 gives `v_per_token` [T, Dh], what each "
     "token hands over when it is attended to.\n\n"
     "The output of the head is the attention weights times the values, `qkv_attention` [T, Dh]: for each token, "
     "the weighted average of the value vectors of the tokens it is allowed to see.",
     "value 是第三个投影：把 `wv` 看成 [Hkv, Dh, D]，取头 0 得到 `v_per_token` [T, Dh]，也就是每个 token 被关注时"
     "交出去的内容。\n\n"
     "这个头的输出是注意力权重乘以 value：`qkv_attention` [T, Dh]。对每个 token，它是它能看到的那些 token 的 value "
     "向量的加权平均。",
     "v_layer0 = model[\"layers.0.attention.wv.weight\"]\n"
     "v_layer0 = v_layer0.view(n_kv_heads, v_layer0.shape[0] // n_kv_heads, dim)\n"
     "v_per_token = torch.matmul(token_embeddings, v_layer0[0].T)\n"
     "qkv_attention = torch.matmul(qk_per_token_after_masking_after_softmax, v_per_token)"},

    {"11_multihead", "all heads of the layer (multi-head attention with GQA)", "这一层的所有头（带 GQA 的多头注意力）",
     "Chapters 04 to 10 are repeated for every query head h of the layer. Head h uses key/value head `h // (H/Hkv)` "
     "(grouped-query attention): neighbouring query heads read the same keys and values but ask different "
     "questions.\n\n"
     "The H outputs [T, Dh] are put side by side into `stacked_qkv_attention` [T, H*Dh] = [17, 4096]. The grid shows "
     "the attention weights of every head (`attn_weights_all` [H, T, T]); heads of one group are drawn next to each "
     "other.",
     "对这一层的每个 query 头 h，重复第 04 到 10 章。头 h 使用第 `h // (H/Hkv)` 个 key/value 头（分组查询注意力）："
     "相邻的 query 头读同样的 key 和 value，但提出不同的问题。\n\n"
     "H 个 [T, Dh] 的输出并排拼接成 `stacked_qkv_attention` [T, H*Dh] = [17, 4096]。网格图画出每个头的注意力权重"
     "（`attn_weights_all` [H, T, T]），同一组的头画在一起。",
     "for head in range(n_heads):\n"
     "    q_layer0_head = q_layer0[head]\n"
     "    k_layer0_head = k_layer0[head//4] # key weights are shared across 4 heads\n"
     "    v_layer0_head = v_layer0[head//4] # value weights are shared across 4 heads\n"
     "    # ... chapters 04-10 for this head ...\n"
     "    qkv_attention_store.append(qkv_attention)\n"
     "stacked_qkv_attention = torch.cat(qkv_attention_store, dim=-1)"},

    {"12_output", "the output weight and the first residual", "输出权重与第一个残差连接",
     "`wo` [D, D] mixes the heads' outputs back into one D-wide vector per token: `embedding_delta` [T, D]. It is a "
     "change to apply, not a new embedding.\n\n"
     "The change is added to the embeddings that entered the layer (before their normalisation): "
     "`embedding_after_edit` [T, D]. This sum, the residual connection, is what lets information flow past a layer "
     "that has little to add.",
     "`wo` [D, D] 把各个头的输出重新混合成每个 token 一个 D 维向量：`embedding_delta` [T, D]。它是要施加的改动，"
     "而不是新的嵌入。\n\n"
     "这个改动加到进入这一层时的嵌入（归一化之前的）上，得到 `embedding_after_edit` [T, D]。这个加法就是残差连接，"
     "它让信息能够绕过一个没什么可补充的层继续往下流。",
     "w_layer0 = model[\"layers.0.attention.wo.weight\"]\n"
     "embedding_delta = torch.matmul(stacked_qkv_attention, w_layer0.T)\n"
     "embedding_after_edit = token_embeddings_unnormalized + embedding_delta"},

    {"13_ffn", "RMSNorm and the SwiGLU feed-forward network", "RMS 归一化与 SwiGLU 前馈网络",
     "The second half of the layer works on each token alone. After another RMSNorm (`ffn_norm`), two projections "
     "widen the vector to F (14336): `w1` goes through SiLU and acts as a gate on `w3`, element by element; `w2` "
     "brings the result back to D. This is the SwiGLU feed-forward network.\n\n"
     "Its output is added to the residual stream a second time; the sum, `layer_0_embedding` [T, D], is the output "
     "of the whole first layer and the input of the next.",
     "层的后半部分对每个 token 单独计算。再做一次 RMSNorm（`ffn_norm`）之后，两个投影把向量放宽到 F（14336）："
     "`w1` 经过 SiLU 后作为门控，逐元素乘到 `w3` 上；`w2` 再把结果变回 D 维。这就是 SwiGLU 前馈网络。\n\n"
     "它的输出第二次加到残差流上；得到的 `layer_0_embedding` [T, D] 就是整个第一层的输出，也是下一层的输入。",
     "embedding_after_edit_normalized = rms_norm(embedding_after_edit, model[\"layers.0.ffn_norm.weight\"])\n"
     "w1 = model[\"layers.0.feed_forward.w1.weight\"]\n"
     "w2 = model[\"layers.0.feed_forward.w2.weight\"]\n"
     "w3 = model[\"layers.0.feed_forward.w3.weight\"]\n"
     "output_after_feedforward = torch.matmul(torch.functional.F.silu(torch.matmul(embedding_after_edit_normalized, "
     "w1.T)) * torch.matmul(embedding_after_edit_normalized, w3.T), w2.T)\n"
     "layer_0_embedding = embedding_after_edit+output_after_feedforward"},

    {"14_layers", "all the layers", "所有层",
     "A Llama-3 model is the same layer repeated (32 times for the 8B model), each with its own weights; the output "
     "of one layer is the input of the next. `layer_outputs` [L, T, D] keeps the residual stream after every layer "
     "and `final_embedding` [T, D] is the last of them.\n\n"
     "The line chart follows the length of the residual vectors through the depth: it grows, because every layer "
     "adds to it. One attention grid per layer shows how the heads' patterns change from the first layer to the "
     "last.",
     "Llama-3 模型就是同一种层重复多次（8B 模型是 32 次），每层有自己的权重；一层的输出是下一层的输入。"
     "`layer_outputs` [L, T, D] 保存每一层之后的残差流，`final_embedding` [T, D] 是其中最后一个。\n\n"
     "折线图跟踪残差向量的长度随深度的变化：它会增长，因为每一层都在往上加东西。每层一张注意力网格图，展示各个头的"
     "注意力模式从第一层到最后一层的变化。",
     "final_embedding = token_embeddings_unnormalized\n"
     "for layer in range(n_layers):\n"
     "    # ... chapters 03-13 with the weights of this layer ...\n"
     "    final_embedding = embedding_after_edit+output_after_feedforward"},

    {"15_logits", "the final norm, the logits and the prediction", "最终归一化、logits 与预测",
     "One last RMSNorm (`norm.weight`), then `output.weight` [V, D] turns the last token's vector into V scores, "
     "the logits [V]: one number per entry of the vocabulary. Only the last row matters for the next token, because "
     "it is the only one that has seen the whole prompt.\n\n"
     "The largest logit is the prediction. With Meta-Llama-3-8B and the tutorial's prompt it is token 2983, \"42\". "
     "The bar chart shows the ten most likely tokens with their softmax probabilities.",
     "最后再做一次 RMSNorm（`norm.weight`），然后 `output.weight` [V, D] 把最后一个 token 的向量变成 V 个分数，即 "
     "logits [V]：词表中每个条目一个数。预测下一个 token 只需要最后一行，因为只有它看过了整个提示词。\n\n"
     "最大的 logit 就是预测结果。用 Meta-Llama-3-8B 和教程的提示词，它是 token 2983，即 “42”。柱状图给出最可能的 "
     "10 个 token 及其 softmax 概率。",
     "final_embedding = rms_norm(final_embedding, model[\"norm.weight\"])\n"
     "logits = torch.matmul(final_embedding[-1], model[\"output.weight\"].T)\n"
     "next_token = torch.argmax(logits, dim=-1)\n"
     "tokenizer.decode([next_token.item()])"},

    {"16_generate", "generating more tokens with a KV cache", "用 KV 缓存生成更多 token",
     "The tutorial stops after one token. To go on, the predicted token is appended and the model runs again; a "
     "key/value cache makes that cheap: the keys and values of the tokens already seen are kept per layer, so each "
     "new token only computes its own query, key and value and attends to the cache.\n\n"
     "The mask then starts at the new token's position (Meta's `start_pos`). Greedy decoding from the cache gives "
     "the same tokens as recomputing the whole sequence each time.",
     "教程在预测出一个 token 后就停了。要继续，就把预测出的 token 接到后面再运行一次模型；key/value 缓存让这一步很便宜："
     "已经看过的 token 的 key 和 value 按层保存下来，每个新 token 只需算出自己的 query、key、value，再对缓存做注意力。\n\n"
     "这时掩码从新 token 的位置开始（Meta 代码中的 `start_pos`）。用缓存做贪心解码，得到的 token 与每次重新计算整个序列"
     "完全相同。",
     "# Meta's llama/generation.py (the tutorial has no such chapter)\n"
     "logits = self.model.forward(tokens[:, prev_pos:cur_pos], prev_pos)\n"
     "next_token = torch.argmax(logits[:, -1], dim=-1)"},
};
#define NB_N_CHAPTERS ((int)(sizeof NB_CHAPTERS / sizeof NB_CHAPTERS[0]))

// How to redraw a figure of the trace with matplotlib. `image` is the file name inside the step's folder; a '*' in
// it matches the digits of a layer number, which replaces "{N}" in `python`. `needs` is the tensor the call loads;
// when the trace lacks it, the notebook shows the PNG itself instead (show_png).
typedef struct {
    const char *step, *image, *needs, *python;
} FigureRecipe;

static const FigureRecipe NB_FIGURES[] = {
    {"05_rope", "freqs_cis.png", "freqs_cis", "complex_rays(load(\"05_rope\", \"freqs_cis\"), row=min(3, len(TOKENS) - 1))"},
    {"07_scores", "scores.png", "qk_per_token",
     "token_heatmap(load(\"07_scores\", \"qk_per_token\"), \"qk_per_token: raw attention scores\")"},
    {"08_mask", "scores_masked.png", "qk_per_token_after_masking",
     "token_heatmap(load(\"08_mask\", \"qk_per_token_after_masking\"), \"qk_per_token_after_masking (blank: -inf)\")"},
    {"09_softmax", "attention_weights.png", "qk_per_token_after_masking_after_softmax",
     "token_heatmap(load(\"09_softmax\", \"qk_per_token_after_masking_after_softmax\"), \"attention weights\", probs=True)"},
    {"11_multihead", "heads.png", "attn_weights_all",
     "head_grid(load(\"11_multihead\", \"attn_weights_all\"), \"attention weights of every head of the layer\")"},
    {"14_layers", "residual_norms.png", "residual_norms", "residual_norms(load(\"14_layers\", \"residual_norms\"))"},
    {"14_layers", "attention_layer_*.png", "attn_weights_layers",
     "head_grid(load(\"14_layers\", \"attn_weights_layers\")[{N}], \"layer {N}: attention weights of every head\")"},
    {"15_logits", "top_k.png", "logits", "top_k(load(\"15_logits\", \"logits\"), k=10)"},
};
#define NB_N_FIGURES ((int)(sizeof NB_FIGURES / sizeof NB_FIGURES[0]))

// The first code cell of the notebook: the helpers. "@TRACE@" is replaced by the trace directory relative to the
// notebook (a Python string literal). Only numpy, matplotlib and the standard library.
static const char NB_PRELUDE[] =
    "%matplotlib inline\n"
    "import json, os\n"
    "import numpy as np\n"
    "import matplotlib.pyplot as plt\n"
    "\n"
    "TRACE = @TRACE@  # the trace directory, relative to this notebook\n"
    "with open(os.path.join(TRACE, \"trace.json\"), encoding=\"utf-8\") as f:\n"
    "    trace = json.load(f)\n"
    "steps = {s[\"id\"]: s for s in trace[\"steps\"]}\n"
    "TOKENS = (trace.get(\"tokens\") or {}).get(\"pieces\") or []\n"
    "\n"
    "def load(step, name):\n"
    "    \"\"\"A tensor of a step as a numpy array (bf16 values are stored exactly as float32).\"\"\"\n"
    "    entry = next(t for t in steps[step][\"tensors\"] if t[\"name\"] == name)\n"
    "    return np.load(os.path.join(TRACE, entry[\"file\"]))\n"
    "\n"
    "def printed(step):\n"
    "    \"\"\"What the C program printed for this chapter, as recorded in trace.json.\"\"\"\n"
    "    print(\"\\n\".join(steps[step][\"lines\"]))\n"
    "\n"
    "def describe(name, a):\n"
    "    \"\"\"Shape, dtype and the range of the finite values (a masked score is -inf).\"\"\"\n"
    "    finite = a[np.isfinite(a)].astype(np.float64)\n"
    "    shape = str(tuple(int(d) for d in a.shape))\n"
    "    if finite.size:\n"
    "        stats = \"min %.4g  max %.4g  mean %.4g\" % (finite.min(), finite.max(), finite.mean())\n"
    "    else:\n"
    "        stats = \"no finite values\"\n"
    "    if finite.size != a.size:\n"
    "        stats += \"  non-finite %d\" % (a.size - finite.size)\n"
    "    print(\"%-40s %-16s %-8s %s\" % (name, shape, a.dtype, stats))\n"
    "\n"
    "def _heads(step, name):\n"
    "    t = [t for t in steps.get(step, {}).get(\"tensors\", []) if t[\"name\"] == name]\n"
    "    return t[0][\"shape\"][0] if t else None\n"
    "\n"
    "# query heads per key/value head (GQA), from the weight views of chapters 04 and 06\n"
    "_n_heads, _n_kv_heads = _heads(\"04_query\", \"q_layer0\"), _heads(\"06_key\", \"k_layer0\")\n"
    "KV_GROUP = _n_heads // _n_kv_heads if _n_heads and _n_kv_heads else 1\n"
    "\n"
    "def token_labels(n):\n"
    "    return [repr(p) for p in TOKENS[:n]] if len(TOKENS) >= n else [str(i) for i in range(n)]\n"
    "\n"
    "def token_heatmap(a, title, probs=False):\n"
    "    \"\"\"A [T, T] map over the prompt's tokens; -inf cells are left blank (masked).\"\"\"\n"
    "    n = a.shape[0]\n"
    "    cmap = plt.get_cmap(\"viridis\").copy()\n"
    "    cmap.set_bad(\"white\")\n"
    "    fig, ax = plt.subplots(figsize=(8, 7))\n"
    "    im = ax.imshow(np.ma.masked_invalid(a), cmap=cmap, vmin=0 if probs else None, vmax=1 if probs else None)\n"
    "    if n <= 64:\n"
    "        labels = token_labels(n)\n"
    "        ax.set_xticks(range(n))\n"
    "        ax.set_xticklabels(labels, rotation=90, fontsize=8)\n"
    "        ax.set_yticks(range(n))\n"
    "        ax.set_yticklabels(labels, fontsize=8)\n"
    "    ax.set_xlabel(\"key token\")\n"
    "    ax.set_ylabel(\"query token\")\n"
    "    ax.set_title(title)\n"
    "    fig.colorbar(im, ax=ax)\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "def complex_rays(freqs_cis, row):\n"
    "    \"\"\"Row `row` of freqs_cis [T, Dh/2, 2] as rays from the origin; ray i is labelled i.\"\"\"\n"
    "    z = freqs_cis[row, :, 0] + 1j * freqs_cis[row, :, 1]\n"
    "    fig, ax = plt.subplots(figsize=(6, 6))\n"
    "    for i, c in enumerate(z):\n"
    "        ax.plot([0, c.real], [0, c.imag], color=\"tab:blue\", linewidth=1)\n"
    "        ax.annotate(str(i), xy=(c.real, c.imag), color=\"tab:red\", fontsize=7)\n"
    "    ax.set_aspect(\"equal\")\n"
    "    ax.set_xlabel(\"real\")\n"
    "    ax.set_ylabel(\"imaginary\")\n"
    "    ax.set_title(\"one row of freqs_cis (position %d)\" % row)\n"
    "    plt.show()\n"
    "\n"
    "def head_grid(att, title):\n"
    "    \"\"\"The [T, T] attention weights of every head, [H, T, T]; kv = the key/value head a query head reads.\"\"\"\n"
    "    H = att.shape[0]\n"
    "    cols = KV_GROUP if 1 < KV_GROUP <= 8 else int(np.ceil(np.sqrt(H)))\n"
    "    rows = int(np.ceil(H / cols))\n"
    "    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows), squeeze=False)\n"
    "    for h, ax in enumerate(axes.flat):\n"
    "        ax.axis(\"off\")\n"
    "        if h < H:\n"
    "            ax.imshow(np.ma.masked_invalid(att[h]), cmap=\"viridis\", vmin=0, vmax=1)\n"
    "            ax.set_title(\"head %d (kv %d)\" % (h, h // KV_GROUP), fontsize=8)\n"
    "    fig.suptitle(title)\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "def residual_norms(norms):\n"
    "    \"\"\"norms [L+1, T]: the length of each token's residual vector before layer 0 and after each layer.\"\"\"\n"
    "    layers = np.arange(norms.shape[0])\n"
    "    fig, ax = plt.subplots(figsize=(7, 4))\n"
    "    ax.plot(layers, norms.mean(axis=1), marker=\"o\", label=\"mean over tokens\")\n"
    "    ax.plot(layers, norms[:, 0], label=\"first token\")\n"
    "    ax.plot(layers, norms[:, -1], label=\"last token\")\n"
    "    ax.set_xlabel(\"after layer (0 = the embeddings)\")\n"
    "    ax.set_ylabel(\"L2 norm\")\n"
    "    ax.set_title(\"norm of the residual stream across layers\")\n"
    "    ax.legend()\n"
    "    plt.show()\n"
    "\n"
    "def top_k(logits, k=10):\n"
    "    \"\"\"The k most likely next tokens (ids) with their softmax probabilities.\"\"\"\n"
    "    best = np.argsort(-logits, kind=\"stable\")[:k]\n"
    "    p = np.exp(logits.astype(np.float64) - logits.max())\n"
    "    p /= p.sum()\n"
    "    fig, ax = plt.subplots(figsize=(7, 4))\n"
    "    ax.barh(np.arange(len(best))[::-1], p[best], color=\"tab:blue\")\n"
    "    ax.set_yticks(np.arange(len(best))[::-1])\n"
    "    ax.set_yticklabels([\"id %d\" % i for i in best])\n"
    "    ax.set_xlabel(\"probability (softmax of the logits)\")\n"
    "    ax.set_title(\"the next token: top %d\" % len(best))\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "def show_png(file):\n"
    "    \"\"\"A figure of the trace as the C program drew it.\"\"\"\n"
    "    img = plt.imread(os.path.join(TRACE, file))\n"
    "    fig, ax = plt.subplots(figsize=(img.shape[1] / 100, img.shape[0] / 100))\n"
    "    ax.imshow(img)\n"
    "    ax.axis(\"off\")\n"
    "    plt.show()\n";

// The words of the notebook and the page around the chapters' own texts.
typedef struct {
    const char *html_lang;
    const char *doc_title, *intro;
    const char *model, *prompt, *tokens, *device, *precision, *chapters;
    const char *setup_md;          // before the helpers cell
    const char *tutorial_heading, *tutorial_comment;
    const char *printed_heading, *npy_heading, *npy_comment;
    const char *tensors_heading, *figures_heading, *figure_comment, *figure_shown_comment;
    const char *verdict_heading, *no_comparison_cpu, *no_comparison, *no_comparison_run;
    const char *col_name, *col_shape, *col_dtype, *col_nonfinite;
    const char *col_max_abs, *col_max_rel, *col_tolerance, *col_tol_used, *col_mismatch, *col_verdict;
    const char *timings, *summary_ok, *summary_fail, *summary_none, *no_tensors;
    const char *missing_text;      // a chapter this exporter has no text for
    const char *footer;
} UiText;

static const UiText NB_UI[2] = {
    {
        .html_lang = "en",
        .doc_title = "Llama 3, step by step: a trace",
        .intro = "Each section below is one chapter of the walkthrough: what it computes, the tutorial's PyTorch line, "
                 "what our C program printed, the tensors it wrote (.npy), its figures and, when the CUDA path ran, "
                 "how far the GPU result was from the CPU reference.",
        .model = "model", .prompt = "prompt", .tokens = "tokens", .device = "device", .precision = "precision",
        .chapters = "Chapters",
        .setup_md = "The cell below loads `trace.json` and defines the helpers the other cells use. It needs only "
                    "numpy and matplotlib; the `.npy` files lie next to `trace.json`. The outputs you see were filled "
                    "in when the notebook was exported; *Run All* recomputes them, and the figures, from the files.",
        .tutorial_heading = "The tutorial's PyTorch",
        .tutorial_comment = "# The tutorial, in PyTorch (shown for comparison, not run: it needs torch and the checkpoint)",
        .printed_heading = "What the program printed",
        .npy_heading = "Our tensors, loaded with numpy",
        .npy_comment = "# the .npy files of this chapter (float32; int64 for token ids)",
        .tensors_heading = "Tensors", .figures_heading = "Figures",
        .figure_comment = "# redrawn with matplotlib from the .npy; until you run it, the output is the PNG of the C program",
        .figure_shown_comment = "# the PNG as the C program drew it (the data it shows is not in the trace)",
        .verdict_heading = "Comparisons: CUDA against the CPU reference, and self-checks",
        .no_comparison_cpu = "This trace ran on the CPU only (device cpu): there is no GPU result to compare. "
                             "Run the step with `--device cuda` on a machine with an NVIDIA GPU to get the verdicts.",
        .no_comparison = "This chapter records no comparison.",
        .no_comparison_run = "This chapter ran with `--no-compare`: one path alone, nothing was compared. The "
                             "tensors and figures are that path's values; run without `--no-compare` to check them.",
        .col_name = "name", .col_shape = "shape", .col_dtype = "dtype",
        .col_nonfinite = "non-finite",
        .col_max_abs = "max abs", .col_max_rel = "max rel", .col_tolerance = "tolerance",
        .col_tol_used = "of tolerance", .col_mismatch = "mismatches", .col_verdict = "verdict",
        .timings = "time", .summary_ok = "all comparisons passed", .summary_fail = "comparisons FAILED",
        .summary_none = "no comparisons", .no_tensors = "This chapter writes no tensor.",
        .missing_text = "(This exporter has no text for this chapter yet; what the program printed follows.)",
        .footer = "Made by build/bin/export-notebook from trace.json. Every number above is in the trace directory.",
    },
    {
        .html_lang = "zh-CN",
        .doc_title = "逐步拆解 Llama 3：一次运行的记录",
        .intro = "下面每一节对应演练中的一章：它计算什么、教程里对应的 PyTorch 代码、我们的 C 程序打印了什么、它写出的张量"
                 "（.npy）、它的图，以及在运行了 CUDA 路径时，GPU 结果与 CPU 参考实现相差多少。",
        .model = "模型", .prompt = "提示词", .tokens = "token", .device = "设备", .precision = "精度",
        .chapters = "章节",
        .setup_md = "下面这个单元格读取 `trace.json`，并定义其余单元格要用的辅助函数。它只需要 numpy 和 matplotlib；"
                    "`.npy` 文件就在 `trace.json` 旁边。你现在看到的输出是导出笔记本时填好的；*Run All* 会根据这些文件"
                    "重新算出它们和所有图。",
        .tutorial_heading = "教程中的 PyTorch 代码",
        .tutorial_comment = "# 教程中的 PyTorch 代码（仅供对照，不运行：它需要 torch 和检查点）",
        .printed_heading = "程序打印的内容",
        .npy_heading = "用 numpy 读取我们的张量",
        .npy_comment = "# 这一章的 .npy 文件（float32；token 编号为 int64）",
        .tensors_heading = "张量", .figures_heading = "图",
        .figure_comment = "# 用 matplotlib 根据 .npy 重新画图；运行之前，下面的输出是 C 程序画的 PNG",
        .figure_shown_comment = "# C 程序画的 PNG（它所显示的数据不在记录中）",
        .verdict_heading = "对比：CUDA 与 CPU 参考实现，以及自检",
        .no_comparison_cpu = "这次记录只在 CPU 上运行（device cpu），没有 GPU 结果可以对比。在有 NVIDIA GPU 的机器上用 "
                             "`--device cuda` 运行这一步，即可得到对比结论。",
        .no_comparison = "这一章没有记录对比。",
        .no_comparison_run = "这一章用 `--no-compare` 运行：只运行了一条路径，没有做任何对比。张量和图是这条路径的结果；"
                             "去掉 `--no-compare` 再运行即可检查它们。",
        .col_name = "名称", .col_shape = "形状", .col_dtype = "类型", .col_nonfinite = "非有限值",
        .col_max_abs = "最大绝对误差", .col_max_rel = "最大相对误差", .col_tolerance = "容差",
        .col_tol_used = "占容差", .col_mismatch = "超差个数", .col_verdict = "结论",
        .timings = "耗时", .summary_ok = "所有对比均通过", .summary_fail = "有对比未通过",
        .summary_none = "没有对比", .no_tensors = "这一章不写出张量。",
        .missing_text = "（导出程序还没有这一章的说明文字；下面是程序打印的内容。）",
        .footer = "由 build/bin/export-notebook 根据 trace.json 生成。上面的每个数字都可以在记录目录中找到。",
    },
};
