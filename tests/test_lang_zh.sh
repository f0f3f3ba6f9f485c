#!/usr/bin/env bash
# test_lang_zh.sh: --lang zh all the way (issue 16 item 4): what the programs print, the verdict lines, the figures'
# titles, and the Chinese page made from that trace.
# expect: 9 s
#
# The walkthrough with --lang zh over the chapters whose printed lines are more than code and shapes (01 the header,
# 05 a verdict line, 14 the progress line and an atlas per layer, 15 the top-10 table, 16 the cache, the steps and the
# cost table) on the demo model, CPU only. Then:
#   - each chapter's header reads "模型 ... | N 个 token | ..."; no English sentence of those the programs print in
#     English is left (a list of them, from the English run of the same chapters, which must hold each one: the list
#     can fail); the verdict lines say "容差的 N%"; the summary table and its last line are Chinese;
#   - every figure's caption in trace.json (the title drawn on the figure) holds Chinese; the figures are drawn;
#   - export-notebook --lang zh of that trace: the page shows the Chinese printed lines (a verdict, chapter 16's
#     "逐位相同") and no English verdict.
source "$(dirname "$0")/lib.sh"
MODEL=build/models/llama3-tiny-trained
for f in build/bin/walkthrough build/bin/export-notebook "$MODEL/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done
ONLY=01,05,14,15,16
check "walkthrough --lang zh --only $ONLY" bash -c \
    '"$0" --model "$1" --device cpu --lang zh --only "$2" --out "$3/zh" >"$3/zh.log" 2>&1' build/bin/walkthrough "$MODEL" "$ONLY" "$TMP"
check "walkthrough --only $ONLY (English)" bash -c \
    '"$0" --model "$1" --device cpu --only "$2" --out "$3/en" >"$3/en.log" 2>&1' build/bin/walkthrough "$MODEL" "$ONLY" "$TMP"

# English sentences the chapters print; the English run must print each (so that this list tracks the programs)
ENGLISH=("^model .* tokens? \|" "% of tol\)" "^every one of the" "logits differ from a full recompute" "^mask of the prefill"
         "^mask of a 3-token chunk" "query at position" "KiB per position" "\(columns [0-9]" "cpu cached ms"
         "cpu recompute ms" "layer [0-9]+/[0-9]+ \(CPU reference\)" "^  rank +id +token" "^chapter +verdict"
         "chapters in [0-9.]+ s:" "^figure:" "no CUDA path in this run" "^generated: " "^positions [0-9]")
for re in "${ENGLISH[@]}"; do
    check "English run prints /$re/" grep -qE -- "$re" "$TMP/en.log"
    check "--lang zh prints no /$re/" bash -c '! grep -E -- "$0" "$1"' "$re" "$TMP/zh.log"
done
check "--lang zh: 5 headers '模型 ... | 17 个 token |'" test "$(grep -cE '^模型 .* \| 17 个 token \| ' "$TMP/zh.log")" -eq 5
check "--lang zh: verdict lines in Chinese (容差的 N%)" grep -qE '^OK +05_rope .*（容差的 [0-9]+%）$' "$TMP/zh.log"
check "--lang zh: the layers' progress line" grep -qF '第 4/4 层（CPU 参考实现）' "$TMP/zh.log"
check "--lang zh: the summary table and its last line" bash -c \
    'grep -qE "^章节 +结论 +比较 +容差占用" "$0" && grep -qE "^5 个章节，[0-9.]+ s：--device cpu：仅 CPU 参考实现，不与 GPU 比较：[0-9]+ 个在 CPU 上自检通过，[0-9]+ 个未比较，0 个失败。" "$0"' "$TMP/zh.log"
check "--lang zh: chapter 16's proof and cost table" bash -c \
    'grep -qF "全部 7 步：逐位相同" "$0" && grep -qE "^位置 +cpu 缓存 ms +cpu 重算 ms$" "$0"' "$TMP/zh.log"

# figures: drawn, every caption Chinese
check "--lang zh: every figure drawn, every caption holds Chinese" $PY - "$TMP/zh" <<'PY'
import json, os, re, sys
d = sys.argv[1]
t = json.load(open(os.path.join(d, "trace.json")))
images = [(s["id"], im) for s in t["steps"] for im in s.get("images", [])]
bad = [(sid, im) for sid, im in images if not re.search(r"[\u4e00-\u9fff]", im.get("caption", ""))]
missing = [im["file"] for _, im in images if not os.path.isfile(os.path.join(d, im["file"]))]
print(f"{len(images)} figures, {len(bad)} without Chinese in the caption: {bad[:3]}, missing: {missing[:3]}")
sys.exit(0 if images and not bad and not missing else 1)
PY

# the Chinese page of that trace
check "export-notebook --lang zh" build/bin/export-notebook "$TMP/zh" --lang zh -o "$TMP/zh.ipynb" --html "$TMP/zh.html"
check "the page shows the Chinese printed lines" bash -c \
    'grep -qF "逐位相同" "$0" && grep -qE "容差的 [0-9]+%" "$0" && ! grep -qE "[0-9]+% of tol\)" "$0"' "$TMP/zh.html"
finish
