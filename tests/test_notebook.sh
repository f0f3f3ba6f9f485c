#!/usr/bin/env bash
# test_notebook.sh: build/bin/export-notebook end to end, in English and Chinese.
#
# Makes a trace with every chapter program (--device cpu, the tiny model of `make models`), exports it, and checks:
#   - the notebook validates with nbformat, has one section per step with the step's printed lines, its tensors
#     (shape and dtype of the real .npy) and its PNGs byte for byte (tests/reference/check_notebook.py), and runs top
#     to bottom with nbconvert without an error, printing what was filled in and drawing every figure again;
#   - the page, opened in headless Chromium, has every chapter in its DOM with its tensors, images and verdicts, needs
#     nothing outside itself, and its screenshot is not blank (tests/reference/check_page.py);
#   - the same for --lang zh with the notebook outside the trace directory (relative paths);
#   - the checkers themselves catch a broken notebook and a broken page (they can fail);
#   - bad input: exit 2 with one line naming the file and field, and no output left behind; --help exits 0;
#   - the AddressSanitizer build (build/asan/bin/export-notebook, when built) writes the same bytes.
# Needs Debian's python3-nbformat, jupyter-nbconvert, python3-ipykernel, python3-numpy, python3-matplotlib and
# chromium: installed here when missing and run as root, else the test fails saying what to install.
# expect: 96 s
source "$(dirname "$0")/lib.sh"
export PYDEVD_DISABLE_FILE_VALIDATION=1   # quiets ipykernel's debugger warning about frozen modules
BIN=build/bin/export-notebook
ASAN_BIN=build/asan/bin/export-notebook
MODEL=build/models/tiny

# ---- dependencies ---------------------------------------------------------------------------------------------------
missing=()
$PY -c 'import nbformat' 2>/dev/null || missing+=(python3-nbformat)
$PY -c 'import nbconvert' 2>/dev/null || missing+=(jupyter-nbconvert)
$PY -c 'import ipykernel' 2>/dev/null || missing+=(python3-ipykernel)
$PY -c 'import numpy' 2>/dev/null || missing+=(python3-numpy)
$PY -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
command -v "${CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing: ${missing[*]}"
        (apt-get install -y -q "${missing[@]}" || (apt-get update -q && apt-get install -y -q "${missing[@]}")) >"$TMP/apt.log" 2>&1 \
            || { no "apt-get install ${missing[*]} failed: $(tail -n 3 "$TMP/apt.log")"; finish; exit 1; }
    else
        no "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"; finish; exit 1
    fi
fi
for f in "$BIN" "$MODEL/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done

# ---- a trace of every chapter ---------------------------------------------------------------------------------------
TR="$TMP/trace"
for step in build/steps/[0-9][0-9]_*; do
    [ -x "$step" ] || continue
    check "$(basename "$step") --device cpu writes into the trace" "$step" --model "$MODEL" --out "$TR" --device cpu --quiet
done
[ -f "$TR/trace.json" ] || { no "no trace.json was written"; finish; exit 1; }

# ---- English: defaults inside the trace directory ---------------------------------------------------------------------
check "export-notebook TRACE (en, default paths)" "$BIN" "$TR"
check "the notebook and the page exist" test -s "$TR/walkthrough.ipynb" -a -s "$TR/index.html"
check "no .partial file is left" bash -c "! ls '$TR'/*.partial 2>/dev/null | grep -q ."
check "en notebook: nbformat, sections, outputs; runs with nbconvert and prints what was filled in" \
    $PY tests/reference/check_notebook.py "$TR/walkthrough.ipynb" "$TR" --lang en --execute --executed-out "$TMP/ran_en.ipynb"
check "en page: every chapter in Chromium's DOM, tensors, images, verdicts; screenshot not blank" \
    $PY tests/reference/check_page.py "$TR/index.html" "$TR" --lang en --screenshot "$TMP/page_en.png"
cp "$TMP/page_en.png" build/test-logs/notebook_page_en.png 2>/dev/null || true
# a trace of the CPU alone: the summary counts chapters compared with CUDA (none), self-checked and not compared, and
# is not green
check "cpu page: the summary says 0 compared with CUDA, and how many were not compared" \
    grep -qE '<p class="summary na">0 compared with CUDA and passed · [0-9]+ self-checked on the CPU alone · [0-9]+ not compared</p>' "$TR/index.html"
check "cpu page and notebook: no 'all comparisons passed'" bash -c "! grep -q 'all comparisons passed' '$TR/index.html' '$TR/walkthrough.ipynb'"

# ---- Chinese: the notebook in another folder, so its path to the trace is relative ---------------------------------
mkdir -p "$TMP/elsewhere/sub"
check "export-notebook --lang zh -o elsewhere --html elsewhere" \
    "$BIN" "$TR" --lang zh -o "$TMP/elsewhere/sub/zh.ipynb" --html "$TMP/elsewhere/zh.html"
check "zh notebook reaches the trace through a relative path" grep -q '"TRACE = \\"../../trace\\"' "$TMP/elsewhere/sub/zh.ipynb"
check "zh notebook: nbformat, Chinese sections, outputs; runs with nbconvert from its own folder" \
    $PY tests/reference/check_notebook.py "$TMP/elsewhere/sub/zh.ipynb" "$TR" --lang zh --execute
check "zh page: every chapter in Chromium's DOM in Chinese; screenshot not blank" \
    $PY tests/reference/check_page.py "$TMP/elsewhere/zh.html" "$TR" --lang zh --screenshot "$TMP/page_zh.png"
check "en and zh pages differ in their texts" bash -c "! cmp -s '$TR/index.html' '$TMP/elsewhere/zh.html'"
check "the same trace gives the same bytes twice" bash -c \
    "'$BIN' '$TR' -o '$TMP/again.ipynb' --html '$TMP/again.html' >/dev/null && cmp '$TMP/again.html' '$TR/index.html' && \
     sed 's#\"TRACE = .*#TRACE#' '$TMP/again.ipynb' > '$TMP/a1' && sed 's#\"TRACE = .*#TRACE#' '$TR/walkthrough.ipynb' > '$TMP/a2' && cmp '$TMP/a1' '$TMP/a2'"

# checker_catches WHAT PATTERN CMD...: a checker given a broken input must exit 1 naming the problem (PATTERN)
checker_catches() {
    local what="$1" pat="$2"; shift 2
    "$@" >"$TMP/out" 2>&1; local rc=$?
    if [ "$rc" -eq 1 ] && grep -qE -- "^FAIL: .*$pat" "$TMP/out"; then ok
    else no "$what (exit $rc: $(grep -m 3 -E 'FAIL|Error' "$TMP/out" | tr '\n' ' '))"; fi
}

# ---- a trace as a CUDA run leaves it: comparisons on most steps (one FAIL), a CUDA|CPU figure the notebook can only
# show, not redraw --------------------------------------------------------------------------------------------------------
CU="$TMP/cuda_like"
mkdir -p "$CU" && cp -rs "$(cd "$TR" && pwd)"/[0-9]* "$CU"/ && cp "$TR/07_scores/scores.png" "$CU/07_scores/scores_compare.png"
$PY - "$TR/trace.json" "$CU/trace.json" <<'EOF2'
import json, sys
t = json.load(open(sys.argv[1]))
t["device"] = "cuda"
for i, s in enumerate(t["steps"]):
    for k, tensor in enumerate(s["tensors"][:2]):
        bad = s["id"] == "09_softmax" and k == 0
        s["comparisons"].append({"name": tensor["name"] + " (CUDA vs CPU)", "metric": "|ref-out| <= atol + rtol*|ref|",
            "max_abs": 3e-3 if bad else 1e-7 * (i + 1), "max_rel": 2e-2 if bad else 1e-6, "tolerance": {"atol": 1e-5, "rtol": 7.8125e-3},
            "tol_used": 2.5 if bad else 0.01 * (k + 1), "n": 289, "n_mismatch": 7 if bad else 0, "verdict": "FAIL" if bad else "OK"})
    if s["id"] == "07_scores":
        s["images"].append({"file": "07_scores/scores_compare.png", "caption": "qk_per_token: CUDA | CPU | |CUDA - CPU|"})
json.dump(t, open(sys.argv[2], "w"))
EOF2
check "export-notebook on a trace with CUDA comparisons and a FAIL" "$BIN" "$CU"
check "cuda-like notebook: the verdicts (OK and FAIL) shown; runs, showing the CUDA|CPU PNG" \
    $PY tests/reference/check_notebook.py "$CU/walkthrough.ipynb" "$CU" --lang en --execute
check "cuda-like page: verdict rows and the extra figure" \
    $PY tests/reference/check_page.py "$CU/index.html" "$CU" --lang en --screenshot "$TMP/page_cuda.png"
check "cuda-like page: the summary and the chapter list say a comparison failed" \
    grep -q 'class="summary fail"[^<]*FAILED' "$CU/index.html"
check "cuda-like page: 09_softmax is marked failed in the chapter list" \
    grep -qE 'href="#ch-09_softmax">.*class="badge fail"' "$CU/index.html"
check "cuda-like notebook: the CUDA|CPU figure is shown with show_png" grep -q 'show_png(\\"07_scores/scores_compare.png\\")' "$CU/walkthrough.ipynb"

# ---- the checkers can fail -------------------------------------------------------------------------------------------
# a notebook with one chapter's cells removed, one with a PNG changed, one whose numpy cell loads a missing file
$PY - "$TR/walkthrough.ipynb" "$TMP" <<'EOF'
import json, sys, copy
nb = json.load(open(sys.argv[1])); tmp = sys.argv[2]
def save(name, d): json.dump(d, open(f"{tmp}/{name}", "w"))
a = copy.deepcopy(nb)
start = next(i for i, c in enumerate(a["cells"]) if c["cell_type"] == "markdown" and 'id="ch-07_scores"' in "".join(c["source"]))
end = next(i for i, c in enumerate(a["cells"]) if i > start and c["cell_type"] == "markdown" and 'id="ch-' in "".join(c["source"]))
del a["cells"][start:end]; save("bad_missing_chapter.ipynb", a)
b = copy.deepcopy(nb)
for c in b["cells"]:
    for o in c.get("outputs", []):
        if "image/png" in o.get("data", {}):
            o["data"]["image/png"] = o["data"]["image/png"][:-8] + "AAAAAAA="; break
    else: continue
    break
save("bad_png.ipynb", b)
d = copy.deepcopy(nb)
for c in d["cells"]:
    if c["cell_type"] == "code" and any("load(\"09_softmax\"" in l for l in c["source"]):
        c["source"] = [l.replace('load("09_softmax", "qk_per_token_after_masking_after_softmax")', 'np.load("09_softmax/nope.npy")') for l in c["source"]]
save("bad_load.ipynb", d)
EOF
cp "$TMP"/bad_*.ipynb "$TR"/
checker_catches "check_notebook catches a missing chapter" "sections .* expected" $PY tests/reference/check_notebook.py "$TR/bad_missing_chapter.ipynb" "$TR" --lang en
checker_catches "check_notebook catches a changed PNG" "is not embedded" $PY tests/reference/check_notebook.py "$TR/bad_png.ipynb" "$TR" --lang en
checker_catches "check_notebook catches a cell that fails when run" "execution failed" $PY tests/reference/check_notebook.py "$TR/bad_load.ipynb" "$TR" --lang en --execute
checker_catches "check_notebook catches the wrong language" "no Chinese text" $PY tests/reference/check_notebook.py "$TR/walkthrough.ipynb" "$TR" --lang zh
rm -f "$TR"/bad_*.ipynb
sed 's#<section class="chapter" id="ch-09_softmax"#<div id="gone"#' "$TR/index.html" > "$TMP/bad_section.html"
checker_catches "check_page catches a missing chapter" "sections .* expected" $PY tests/reference/check_page.py "$TMP/bad_section.html" "$TR" --lang en --screenshot "$TMP/x.png"
sed 's#</style>#body{visibility:hidden}</style>#' "$TR/index.html" > "$TMP/bad_blank.html"
checker_catches "check_page catches a blank screenshot" "looks blank" $PY tests/reference/check_page.py "$TMP/bad_blank.html" "$TR" --lang en --screenshot "$TMP/x.png"

# ---- the command line and bad input ---------------------------------------------------------------------------------
check "--help exits 0" bash -c "'$BIN' --help | grep -q 'usage: export-notebook TRACE_DIR'"
check_fails 2 "expected TRACE_DIR" "no TRACE_DIR" "$BIN"
check_fails 2 "unknown option --bogus" "unknown flag" "$BIN" "$TR" --bogus
check_fails 2 "en or zh" "--lang fr" "$BIN" "$TR" --lang fr
check_fails 2 "one TRACE_DIR" "two trace dirs" "$BIN" "$TR" "$TR"
check_fails 2 "trace directory" "missing directory" "$BIN" "$TMP/nope"
mkdir -p "$TMP/empty"
check_fails 2 "trace.json: not found" "directory without trace.json" "$BIN" "$TMP/empty"
check_fails 2 "folder does not exist" "output folder missing" "$BIN" "$TR" -o "$TMP/nope/x.ipynb"

# A copy of the trace with one thing broken (the .npy/.png files are linked, not copied); the exporter must say
# what and where, exit 2 and write nothing.
bad_case() {  # name, python statement on `t` (the trace) and `d` (the case folder), regex of the message
    local name="$1" edit="$2" pat="$3" d="$TMP/bad/$1"
    rm -rf "$d" && mkdir -p "$d" && cp -rs "$(cd "$TR" && pwd)"/[0-9]* "$d"/ && cp "$TR/trace.json" "$d/"
    $PY -c "import json,os,sys; d=sys.argv[1]; t=json.load(open(d+'/trace.json')); $edit; json.dump(t, open(d+'/trace.json','w'))" "$d"
    check_fails 2 "$pat" "bad trace: $name" "$BIN" "$d"
    check "bad trace: $name: nothing written" bash -c "! ls '$d'/*.ipynb* '$d'/*.html* 2>/dev/null | grep -q ."
    if [ -x "$ASAN_BIN" ]; then check_fails 2 "$pat" "bad trace under ASan (no leak report): $name" "$ASAN_BIN" "$d"; fi
}
st() { echo "[s for s in t['steps'] if s['id']=='$1'][0]"; }
bad_case missing_npy "os.unlink(d+'/05_rope/freqs.npy')" "05_rope/freqs.npy: cannot open"
bad_case shape_mismatch "$(st 04_query)['tensors'][2]['shape']=[17,64]" "shape: the .npy's shape differs from steps\[4\]\.tensors\[2\]"
bad_case escaping_path "$(st 02_embed)['tensors'][0]['file']='../../etc/passwd'" "tensors\[0\]\.file: expected a path relative"
bad_case absolute_path "$(st 07_scores)['images'][0]['file']='/etc/hostname'" "images\[0\]\.file: expected a path relative"
bad_case not_png "$(st 07_scores)['images'][0]['file']='07_scores/qk_per_token.npy'" "signature: expected a PNG"
bad_case bad_verdict "$(st 05_rope)['comparisons'][0]['verdict']='MAYBE'" "verdict: expected \"OK\" or \"FAIL\""
bad_case shape_not_list "$(st 03_rmsnorm)['tensors'][0]['shape']='17'" "tensors\[0\]\.shape: expected an array"
bad_case no_steps "t['steps']=[]" "steps: expected a non-empty array"
bad_case duplicate_step "t['steps'].append(t['steps'][0])" "appears twice"
bad_case wrong_format "t['format']='something-else/2'" "format: expected"
bad_case line_not_string "$(st 01_tokenize)['lines'][0]=5" "lines\[0\]: expected a string"
mkdir -p "$TMP/bad/not_json" && echo '{"steps": [' > "$TMP/bad/not_json/trace.json"
check_fails 2 "not valid JSON" "bad trace: not JSON" "$BIN" "$TMP/bad/not_json"
printf 'x' > "$TMP/bad/missing_npy/05_rope/freqs.npy"
check_fails 2 "magic: expected a .npy" "bad trace: a .npy that is not one" "$BIN" "$TMP/bad/missing_npy"

# ---- the sanitizer build writes the same bytes --------------------------------------------------------------------------
if [ -x "$ASAN_BIN" ]; then
    check "ASan build: same notebook and page (en)" bash -c \
        "'$ASAN_BIN' '$TR' -o '$TMP/asan.ipynb' --html '$TMP/asan.html' >/dev/null && cmp '$TMP/asan.html' '$TR/index.html' && \
         cmp '$TMP/asan.ipynb' '$TMP/again.ipynb'"
    check "ASan build: same page (zh)" bash -c \
        "'$ASAN_BIN' '$TR' --lang zh -o '$TMP/elsewhere/sub/asan_zh.ipynb' --html '$TMP/asan_zh.html' >/dev/null && cmp '$TMP/asan_zh.html' '$TMP/elsewhere/zh.html'"
fi
finish
