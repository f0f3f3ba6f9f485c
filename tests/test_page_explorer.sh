#!/usr/bin/env bash
# test_page_explorer.sh: the page's interactive parts (notebooks_export/page_explorer.*) in a real browser.
#
# Makes a trace of the demo model (chapters 01, 04, 06, 14, 19 with --device cpu), exports the page in English and
# Chinese, and drives Debian's chromium headless through puppeteer-core (tests/browser/explorer.js: it downloads no
# browser) from file:// with every network request blocked and counted: in chapter 14's attention explorer it picks
# layer 3 (a click) and head 2 (the arrow keys), hovers a cell, reads the tooltip, clicks the row and reads the bars;
# in chapter 19's logit-lens grid it hovers a cell and reads the five tokens of the tooltip.
# tests/reference/check_explorer.py then checks all of it against the .npy files: 0 requests, no console error, the
# token names and the weight of attn_weights_layers.npy[3, 2, q, k], the bars, the top-5 ids, texts and
# probabilities. Screenshots go to build/test-logs/page_explorer_{en,zh}_{attention,lens}.png.
# Also: the checkers fail on a page that fetches something, on a page whose script throws, on a trace whose value
# differs from what the page showed; the page of an 8B-shaped attention stack ([32, 32, 17, 17]) stays under 1 MB
# more than the page without it; export-notebook refuses (exit 2, one line) weights outside [0, 1] and a token count
# that is not the maps'.
# Needs chromium and npm (Debian packages) and puppeteer-core, pinned in tests/browser/package.json and
# package-lock.json: tests/browser/setup.sh installs what is missing (apt-get as root, `npm ci`).
# expect: 26 s
source "$(dirname "$0")/lib.sh"
BIN=build/bin/export-notebook
DEMO=build/models/llama3-tiny-trained
SHOTS=build/test-logs
mkdir -p "$SHOTS"

# ---- dependencies ---------------------------------------------------------------------------------------------------
source tests/browser/setup.sh
browser_ready || { finish; exit 1; }
$PY -c 'import numpy' 2>/dev/null || { no "python3-numpy is missing (make config installs it)"; finish; exit 1; }
for f in "$BIN" "$DEMO/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done

# ---- the demo's trace and its pages ---------------------------------------------------------------------------------
TR="$TMP/trace"
for s in 01_tokenize 04_query 06_key 14_layers 19_logit_lens; do
    check "$s --device cpu on the demo model" build/steps/$s --model "$DEMO" --out "$TR" --device cpu --quiet
done
check "export-notebook (en)" "$BIN" "$TR"
check "export-notebook (zh)" "$BIN" "$TR" --lang zh

# browse LANG PAGE: explorer.js over the page, its report checked against the .npy files
browse() {
    local lang="$1" page="$2"
    if node tests/browser/explorer.js "$page" "$SHOTS/page_explorer_$lang" >"$TMP/report_$lang.json" 2>"$TMP/browse_$lang.err"; then ok
    else no "explorer.js on the $lang page: $(tail -n 5 "$TMP/browse_$lang.err")"; return; fi
    check "$lang page in Chromium: 0 requests, no console error; layer 3 head 2 tooltip and bars, logit-lens top 5 = the .npy" \
        $PY tests/reference/check_explorer.py "$TMP/report_$lang.json" "$TR" --lang "$lang"
    sed 's/^/    /' "$TMP/out"
}
browse en "$TR/index.html"
browse zh "$TR/index_zh.html"
check "screenshots saved" test -s "$SHOTS/page_explorer_en_attention.png" -a -s "$SHOTS/page_explorer_zh_lens.png"
check "the page still passes check_page.py (every chapter, images, nothing outside itself)" \
    $PY tests/reference/check_page.py "$TR/index.html" "$TR" --lang en --screenshot "$TMP/page.png"

# ---- the checkers can fail ------------------------------------------------------------------------------------------
# checker_fails WHAT PATTERN REPORT: check_explorer.py must exit 1 naming the problem
checker_fails() {
    local what="$1" pat="$2" report="$3" trace="${4:-$TR}"
    $PY tests/reference/check_explorer.py "$report" "$trace" --lang en >"$TMP/out" 2>&1; local rc=$?
    if [ "$rc" -eq 1 ] && grep -qE -- "^FAIL: .*$pat" "$TMP/out"; then ok
    else no "$what (exit $rc: $(grep -m 3 FAIL "$TMP/out" | tr '\n' ' '))"; fi
}
sed 's#</footer>#<img src="https://example.invalid/x.png" alt=""></footer>#' "$TR/index.html" >"$TMP/fetching.html"
node tests/browser/explorer.js "$TMP/fetching.html" "$TMP/shot_fetching" >"$TMP/report_fetching.json" 2>/dev/null
checker_fails "a page that fetches an image is caught" "network request" "$TMP/report_fetching.json"
sed 's#class="explorer-data">{#class="explorer-data">{broken#' "$TR/index.html" >"$TMP/throwing.html"
node tests/browser/explorer.js "$TMP/throwing.html" "$TMP/shot_throwing" >"$TMP/report_throwing.json" 2>/dev/null
checker_fails "a page whose script throws is caught" "page_errors" "$TMP/report_throwing.json"
cp -r "$TR" "$TMP/tampered"
$PY - "$TMP/tampered/14_layers/attn_weights_layers.npy" <<'EOF'
import sys, numpy as np
a = np.load(sys.argv[1]); a[3, 2, -1, 0] -= 0.01; np.save(sys.argv[1], a)
EOF
checker_fails "a weight that differs from the page's is caught" "tooltip weight" "$TMP/report_en.json" "$TMP/tampered"

# ---- size for the 8B trace: 32 layers x 32 heads of [17, 17] --------------------------------------------------------
mkdir -p "$TMP/big" && cp -r "$TR"/. "$TMP/big"/
$PY - "$TMP/big" <<'EOF'
import json, sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
s = rng.standard_normal((32, 32, 17, 17)).astype(np.float32) * 3
s[:, :, np.triu_indices(17, 1)[0], np.triu_indices(17, 1)[1]] = -np.inf
w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)
w = (w.astype(np.float32).view(np.uint32) + 0x8000 & 0xFFFF0000).view(np.float32)  # bf16 values, as a trace holds
np.save(d + "/14_layers/attn_weights_layers.npy", w)
t = json.load(open(d + "/trace.json"))
for st in t["steps"]:
    for x in st["tensors"]:
        if x["name"] == "attn_weights_layers": x["shape"] = [32, 32, 17, 17]
json.dump(t, open(d + "/trace.json", "w"))
EOF
check "export-notebook on an 8B-shaped attention stack" "$BIN" "$TMP/big" -o "$TMP/big.ipynb" --html "$TMP/big.html"
base=$(stat -c %s "$TR/index.html") big=$(stat -c %s "$TMP/big.html")
echo "  page: $base bytes with the demo's [4, 4, 17, 17] maps, $big bytes with [32, 32, 17, 17] (+$(( (big - base) / 1024 )) KiB)"
check "the 8B-shaped maps add under 1 MiB to the page" test $(( big - base )) -lt 1048576

# ---- bad input: refused before anything is written ------------------------------------------------------------------
bad_trace() {  # name, python edit of the copy d, regex of the message
    local d="$TMP/bad_$1"
    mkdir -p "$d" && cp -r "$TR"/. "$d"/ && rm -f "$d"/*.html "$d"/*.ipynb
    $PY -c "import json, sys, numpy as np; d = sys.argv[1]; $2" "$d"
    check_fails 2 "$3" "bad trace ($1): exit 2 with one line" "$BIN" "$d"
    check "bad trace ($1): nothing written" bash -c "! ls '$d'/*.html* '$d'/*.ipynb* 2>/dev/null | grep -q ."
}
bad_trace weight_above_one "p = d + '/14_layers/attn_weights_layers.npy'; a = np.load(p); a[1, 1, 5, 2] = 1.5; np.save(p, a)" \
    "attn_weights_layers.npy: values: expected attention weights in \[0, 1\]"
bad_trace tokens_short "t = json.load(open(d + '/trace.json')); t['tokens']['pieces'] = t['tokens']['pieces'][:-1]; t['tokens']['ids'] = t['tokens']['ids'][:-1]; json.dump(t, open(d + '/trace.json', 'w'))" \
    "tokens.pieces: 16 pieces, but 14_layers/attn_weights_layers has T = 17"
bad_trace lens_ids_float "p = d + '/19_logit_lens/logit_lens_top_ids.npy'; np.save(p, np.load(p).astype(np.float32))" \
    "logit_lens_top_ids.npy: shape: expected int64 token ids"
finish
