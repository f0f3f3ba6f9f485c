#!/usr/bin/env bash
# test_walkthrough_nocompare.sh: --no-compare (one path alone, nothing compared), on the CPU. The CUDA side of it
# (the CUDA path without the CPU reference, timed at 8B shape) is the nocompare stage of tests/gpu/run.sh.
#
# 1. build/bin/walkthrough --device cpu on the tiny model, with and without --no-compare: both exit 0; with it the
#    summary counts every chapter as run and none as passed ("17 ran, 0 failed; nothing compared"), every chapter's
#    verdict is cpu-only, and no line says OK or passed; without it, on the CPU, the summary counts the chapters
#    self-checked and not compared (never "passed": nothing was compared with a GPU).
# 2. trace.json: mode "cpu-only" for the run and every step and no comparison at all (check_trace.py --mode cpu-only,
#    which also checks every tensor, shape and figure); the default trace records mode "cpu".
# 3. the same CPU path computes: every .npy and PNG of the --no-compare trace is the default trace's, byte for byte
#    (but chapter 16's chart of wall-clock times, cost_per_token.png); also at --layer 2 --head 3 and with
#    --precision fp32 for a few chapters.
# 4. what --no-compare leaves out: 05 and 11 their self-checks, 16 the recompute (no "bit-identical" claim, no
#    recompute column); the exported notebook and page say for every chapter that nothing was compared.
# 5. the command line: every chapter's --help and the walkthrough's describe --no-compare; --no-compare=1 exits 2
#    with one line; without a GPU, --device cuda --no-compare exits 2 as --device cuda does.
# 6. the AddressSanitizer build (when built) runs a layer chapter and chapter 16 with --no-compare cleanly.
# Needs `make all models`.
# expect: 46 s
source tests/lib.sh
TINY=build/models/tiny
W=build/bin/walkthrough
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
CHAPTERS=$(cd build/steps 2>/dev/null && ls -d [0-9][0-9]_* | tr '\n' ' ')
N=$(echo $CHAPTERS | wc -w)
for f in "$W" build/bin/export-notebook "$TINY/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run 'make all models' first"; finish; exit; }
done
[ "$N" -ge 17 ] || { no "build/steps holds $N chapter programs, want 17: run 'make all'"; finish; exit; }

# ---- 1. the walkthrough, both ways ------------------------------------------------------------------------------
check "walkthrough --device cpu exits 0" bash -c '"$@" >"$0" 2>&1' "$TMP/ref.log" "$W" --model "$TINY" --device cpu --out "$TMP/ref" --quiet
check "walkthrough --device cpu --no-compare exits 0" bash -c '"$@" >"$0" 2>&1' "$TMP/nc.log" "$W" --model "$TINY" \
    --device cpu --no-compare --out "$TMP/nc" --quiet
# without the CUDA path nothing is compared with a GPU: said first, and the summary passes no chapter, it counts the
# chapters whose CPU self-checks passed and those not compared
check "the default run says first that nothing is compared (--device cpu)" \
    test "$(head -n 1 "$TMP/ref.log")" = "--device cpu: CPU reference only, nothing compared"
check "the default summary: self-checked and not compared, never passed" \
    grep -qE "^$N chapters in [0-9.]+ s: --device cpu: CPU reference only, nothing compared: [1-9][0-9]* self-checked on the CPU, [1-9][0-9]* not compared, 0 failed\. Trace:" "$TMP/ref.log"
check "the --no-compare summary: $N ran, nothing compared" \
    grep -qE "^$N chapters in [0-9.]+ s: $N ran, 0 failed; nothing compared \(--no-compare\)\. Trace:" "$TMP/nc.log"
check "--no-compare: no line says OK or passed" bash -c '! grep -nE "^OK|passed" "$0"' "$TMP/nc.log"
check "--no-compare: every chapter's verdict line says not compared" \
    test "$(grep -cE '^cpu-only [0-9][0-9]_[a-z_]+: not compared \(--no-compare: the CPU reference ran alone\)$' "$TMP/nc.log")" -eq "$N"
check "--no-compare: every row of the summary table says cpu-only and counts no comparison" \
    test "$(grep -cE '^[0-9][0-9]_[a-z_]+ +cpu-only +- +- +- ' "$TMP/nc.log")" -eq "$N"
check "the default summary table still says OK or ran" bash -c '! grep -qE "^[0-9][0-9]_[a-z_]+ +(cpu-only|cuda-only) " "$0" &&
    grep -qE "^05_rope +OK +1/1 " "$0" && grep -qE "^00_config +ran +0/0 " "$0"' "$TMP/ref.log"

# ---- 2. trace.json ------------------------------------------------------------------------------------------------
check "check_trace --mode cpu-only: every tensor, shape and figure; mode recorded; no comparison" \
    $PY tests/reference/check_trace.py --mode cpu-only "$TMP/nc" "$TINY" $CHAPTERS
check "check_trace --mode cpu on the default trace" $PY tests/reference/check_trace.py --mode cpu "$TMP/ref" "$TINY" $CHAPTERS
check "check_trace --mode cpu-only fails on the default trace (it has comparisons)" \
    bash -c '! "$@" >/dev/null' $PY tests/reference/check_trace.py --mode cpu-only "$TMP/ref" "$TINY" $CHAPTERS
check "trace.json: cuda_ms absent, cpu_ms and total_ms present in every --no-compare step" $PY - "$TMP/nc/trace.json" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1]))["steps"]:
    t = s["timings"]
    assert "cuda_ms" not in t and "cpu_ms" in t and "total_ms" in t, (s["id"], t)
PY

# ---- 3. the same numbers --------------------------------------------------------------------------------------------
same_files() {  # DIR_A DIR_B: the same .npy and .png files, byte for byte (not 16_generate/cost_per_token.png: a chart
    # of wall-clock times, present in both)
    local a="$1" b="$2" n=0
    [ "$(cd "$a" && find . -name '*.npy' -o -name '*.png' | sort)" = "$(cd "$b" && find . -name '*.npy' -o -name '*.png' | sort)" ] ||
        { echo "different file lists"; return 1; }
    for f in $(cd "$a" && find . -name '*.npy' -o -name '*.png' | grep -vx './16_generate/cost_per_token.png'); do
        cmp "$a/$f" "$b/$f" || return 1; n=$((n + 1))
    done
    echo "$n files equal"
}
check "--no-compare on the CPU writes the default trace's .npy and PNGs, byte for byte" same_files "$TMP/ref" "$TMP/nc"
for s in 04_query 11_multihead 13_ffn; do
    check "$s --layer 2 --head 3" build/steps/$s --model "$TINY" --device cpu --layer 2 --head 3 --out "$TMP/l2" --quiet
    check "$s --layer 2 --head 3 --no-compare" build/steps/$s --model "$TINY" --device cpu --layer 2 --head 3 --no-compare \
        --out "$TMP/l2nc" --quiet
done
check "--layer 2 --head 3: the same files with and without --no-compare" same_files "$TMP/l2" "$TMP/l2nc"
for s in 05_rope 15_logits; do
    check "$s --precision fp32" build/steps/$s --model "$TINY" --device cpu --precision fp32 --out "$TMP/f32" --quiet
    check "$s --precision fp32 --no-compare" build/steps/$s --model "$TINY" --device cpu --precision fp32 --no-compare \
        --out "$TMP/f32nc" --quiet
done
check "--precision fp32: the same files with and without --no-compare" same_files "$TMP/f32" "$TMP/f32nc"

# ---- 4. what --no-compare leaves out ----------------------------------------------------------------------------------
check "05_rope --no-compare" bash -c '"$@" >"$0"' "$TMP/05.out" build/steps/05_rope --model "$TINY" --device cpu --no-compare --out "$TMP/o"
check "05_rope --no-compare: the header says nothing is compared" grep -qF "the CPU reference alone: no self-checks, nothing compared (--no-compare)" "$TMP/05.out"
check "05_rope --no-compare: no self-check" bash -c '! grep -qE "^(OK|FAIL) |bit-identical" "$0"' "$TMP/05.out"
check "11_multihead --no-compare" bash -c '"$@" >"$0"' "$TMP/11.out" build/steps/11_multihead --model "$TINY" --device cpu \
    --no-compare --out "$TMP/o"
check "11_multihead --no-compare: no self-check" bash -c '! grep -qE "^(OK|FAIL) |one-head path of chapter" "$0"' "$TMP/11.out"
check "16_generate --no-compare" bash -c '"$@" >"$0"' "$TMP/16.out" build/steps/16_generate --model "$TINY" --device cpu \
    --no-compare --out "$TMP/o"
check "16_generate --no-compare: no proof claimed, no recompute column" \
    bash -c '! grep -qE "bit-identical|differ from a full recompute|cpu recompute|^OK" "$0"' "$TMP/16.out"
check "16_generate --no-compare: the cached way timed, the recompute said not to run" \
    bash -c 'grep -qE "^position +cpu cached ms$" "$0" && grep -qF "the recompute did not run: --no-compare" "$0"' "$TMP/16.out"
check "16_generate --no-compare: the same tokens and cache_k_layer0 as the default" bash -c \
    'cmp "$0/16_generate/tokens.npy" "$1/16_generate/tokens.npy" && cmp "$0/16_generate/cache_k_layer0.npy" "$1/16_generate/cache_k_layer0.npy"' \
    "$TMP/o" "$TMP/ref"
check "export-notebook of the --no-compare trace" build/bin/export-notebook "$TMP/nc" -o "$TMP/nc.ipynb" --html "$TMP/nc.html"
check "the notebook says for every chapter that nothing was compared" \
    test "$(grep -o 'This chapter ran with `--no-compare`' "$TMP/nc.ipynb" | wc -l)" -eq "$N"
check "the page says it too" test "$(grep -o 'This chapter ran with <code>--no-compare</code>' "$TMP/nc.html" | wc -l)" -eq "$N"
check "export-notebook of the default trace does not" bash -c '"$@" >/dev/null && ! grep -q "no-compare" "$0"' "$TMP/ref.ipynb" \
    build/bin/export-notebook "$TMP/ref" -o "$TMP/ref.ipynb" --html "$TMP/ref.html"

# ---- 5. the command line -----------------------------------------------------------------------------------------------
for s in $CHAPTERS; do
    check "$s --help describes --no-compare" bash -c 'set -o pipefail; "$0" --help | grep -q -- "--no-compare       run one path alone and compare nothing"' "build/steps/$s"
done
check "walkthrough --help describes --no-compare" bash -c 'set -o pipefail; "$0" --help | grep -q -- "--no-compare runs one path alone and compares nothing"' "$W"
check_fails 2 "option '--no-compare=1' takes no value" "--no-compare=1 exits 2 with one line" \
    build/steps/05_rope --no-compare=1 --model "$TINY" --device cpu --out "$TMP/bad"
check_fails 2 "unknown argument '--bogus'" "walkthrough --no-compare --bogus exits 2" "$W" --no-compare --bogus --out "$TMP/bad"
if ! nvidia-smi -L >/dev/null 2>&1; then
    check_fails 2 "--device cuda: no CUDA device" "--device cuda --no-compare without a GPU exits 2" \
        build/steps/05_rope --device cuda --no-compare --model "$TINY" --out "$TMP/bad"
fi
check "the failed runs left no trace behind" bash -c '! test -e "$0/trace.json"' "$TMP/bad"

# ---- 6. under AddressSanitizer + UBSan ---------------------------------------------------------------------------------
if [ -x build/asan/steps/13_ffn ] && [ -x build/asan/steps/16_generate ]; then
    check "asan: 13_ffn --no-compare" build/asan/steps/13_ffn --model "$TINY" --device cpu --no-compare --out "$TMP/asan" --quiet
    check "asan: 16_generate --no-compare" build/asan/steps/16_generate --model "$TINY" --device cpu --no-compare --out "$TMP/asan" --quiet
fi
finish
