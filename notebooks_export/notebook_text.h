// notebook_text.h: the words of the exported notebook and page around the chapters' own texts, in English and
// Chinese, and the notebook's first code cell (its numpy/matplotlib helpers). Included by export-notebook.c only
// (static data, no functions to link). What each chapter says (title, explanation, the tutorial's PyTorch, the
// recipes that redraw its figures with the helpers below) is its entry in the one table of chapters,
// steps/chapters.c.
#pragma once

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
    "def gate_heatmap(a, title, picked_only=False):\n"
    "    \"\"\"A [T, E] map of the tokens against the experts (20_moe); picked_only leaves the zeros blank.\"\"\"\n"
    "    cmap = plt.get_cmap(\"viridis\").copy()\n"
    "    cmap.set_bad(\"lightgrey\")\n"
    "    fig, ax = plt.subplots(figsize=(2 + 0.6 * a.shape[1], 1 + 0.35 * a.shape[0]))\n"
    "    im = ax.imshow(np.ma.masked_where(a == 0, a) if picked_only else a, cmap=cmap, vmin=0, vmax=1, aspect=\"auto\")\n"
    "    ax.set_xticks(range(a.shape[1]))\n"
    "    ax.set_xticklabels([\"e%d\" % e for e in range(a.shape[1])])\n"
    "    if a.shape[0] <= 64:\n"
    "        ax.set_yticks(range(a.shape[0]))\n"
    "        ax.set_yticklabels(token_labels(a.shape[0]), fontsize=8)\n"
    "    ax.set_xlabel(\"expert\")\n"
    "    ax.set_ylabel(\"token\")\n"
    "    ax.set_title(title)\n"
    "    fig.colorbar(im, ax=ax)\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "def load_bars(picks):\n"
    "    \"\"\"Picks per expert [E] against the balanced share (all picks / E).\"\"\"\n"
    "    fig, ax = plt.subplots(figsize=(7, 1 + 0.4 * len(picks)))\n"
    "    ax.barh(np.arange(len(picks))[::-1], picks, color=\"tab:blue\")\n"
    "    ax.axvline(picks.sum() / len(picks), color=\"tab:red\", ls=\"--\", label=\"balanced share T*k/E\")\n"
    "    ax.set_yticks(np.arange(len(picks))[::-1])\n"
    "    ax.set_yticklabels([\"expert %d\" % e for e in range(len(picks))])\n"
    "    ax.set_xlabel(\"picks\")\n"
    "    ax.legend()\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "def vocab(step):\n"
    "    \"\"\"{token id: its text} for the token ids a step's tensors hold (the step's vocab in trace.json).\"\"\"\n"
    "    v = steps.get(step, {}).get(\"vocab\") or {}\n"
    "    return dict(zip(v.get(\"ids\", []), v.get(\"pieces\", [])))\n"
    "\n"
    "def logit_lens(ids, probs, names, max_cols=48):\n"
    "    \"\"\"ids, probs [L, T, k]: the top-1 next token of every cell (layer, position), coloured by its probability.\"\"\"\n"
    "    top1, p = ids[:, -max_cols:, 0], probs[:, -max_cols:, 0]\n"
    "    L, T = p.shape\n"
    "    fig, ax = plt.subplots(figsize=(max(8, 0.9 * T), 0.45 * L + 2.5))\n"
    "    im = ax.imshow(p, cmap=\"viridis\", vmin=0, vmax=1, aspect=\"auto\")\n"
    "    for l in range(L):\n"
    "        for t in range(T):\n"
    "            text = names.get(int(top1[l, t]), str(int(top1[l, t]))).replace(\" \", \"_\")[:9]\n"
    "            ax.text(t, l, text, ha=\"center\", va=\"center\", fontsize=7, color=\"black\" if p[l, t] > 0.6 else \"white\")\n"
    "    ax.set_xticks(range(T))\n"
    "    ax.set_xticklabels(token_labels(ids.shape[1])[-T:], rotation=90, fontsize=8)\n"
    "    ax.set_yticks(range(L))\n"
    "    ax.set_yticklabels([\"layer %d\" % l for l in range(L)], fontsize=8)\n"
    "    ax.set_xlabel(\"position (its input token)\")\n"
    "    ax.set_title(\"logit lens: the top-1 next token after every layer\")\n"
    "    fig.colorbar(im, ax=ax, label=\"probability\")\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "def per_layer(values, ylabel):\n"
    "    \"\"\"One value per layer as a line.\"\"\"\n"
    "    fig, ax = plt.subplots(figsize=(7, 4))\n"
    "    ax.plot(np.arange(len(values)), values, marker=\"o\")\n"
    "    ax.set_xlabel(\"after layer\")\n"
    "    ax.set_ylabel(ylabel)\n"
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
    const char *timings, *no_tensors;
    // the page's summary: chapters compared with CUDA, self-checked on the CPU alone, not compared, failed, missing
    const char *sum_compared, *sum_self_checked, *sum_not_compared, *sum_failed, *sum_missing, *sum_stopped;
    const char *mixed;             // the banner of a trace that mixes runs (--allow-mixed), before the reason
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
        .timings = "time", .no_tensors = "This chapter writes no tensor.",
        .sum_compared = "compared with CUDA and passed", .sum_self_checked = "self-checked on the CPU alone",
        .sum_not_compared = "not compared", .sum_failed = "FAILED", .sum_missing = "missing",
        .sum_stopped = "This chapter stopped:",
        .mixed = "MIXED TRACE: its chapters were computed for different runs, so their numbers do not belong together "
                 "(exported with --allow-mixed).",
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
        .timings = "耗时", .no_tensors = "这一章不写出张量。",
        .sum_compared = "与 CUDA 对比通过", .sum_self_checked = "仅在 CPU 上自检", .sum_not_compared = "未对比",
        .sum_failed = "失败 FAILED", .sum_missing = "缺失", .sum_stopped = "这一章中途停止：",
        .mixed = "混合的记录（MIXED TRACE）：各章来自不同的运行，数字不能放在一起看（用 --allow-mixed 导出）。",
        .missing_text = "（导出程序还没有这一章的说明文字；下面是程序打印的内容。）",
        .footer = "由 build/bin/export-notebook 根据 trace.json 生成。上面的每个数字都可以在记录目录中找到。",
    },
};
