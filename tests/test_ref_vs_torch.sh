#!/usr/bin/env bash
# test_ref_vs_torch.sh: the CPU reference ops (common/ref/ref_*.c) against PyTorch (Debian's python3-torch 1.13).
#
# build/tests/test_ref_ops --dump writes one small random Llama-3 layer (both precisions) as .npy; then
# tests/reference/ops_reference.py recomputes every op with torch and compares (tolerances and their reasons are at
# the top of that script). The comparison must also be able to fail: a copy with one planted error (4 bf16 ulps in
# q_rotated) must be rejected with exit 1, naming q_rotated.
# expect: 9 s
source tests/lib.sh
DRIVER=build/tests/test_ref_ops
REF=tests/reference/ops_reference.py

if [ ! -x "$DRIVER" ]; then no "$DRIVER is missing: run make $DRIVER first"; finish; exit 1; fi
if ! $PY -c 'import torch, numpy' 2>/dev/null; then no "$PY lacks torch/numpy: apt-get install python3-torch python3-numpy"; finish; exit 1; fi

check "driver writes the layer" "$DRIVER" --dump "$TMP/layer"
# Run the comparison visibly, so its verdict lines end up in the log; count it as one check.
if $PY "$REF" "$TMP/layer" >"$TMP/torch.out" 2>&1; then ok; else no "C reference differs from PyTorch"; fi
grep -E '^(OK|FAIL) ' "$TMP/torch.out"
n_ok=$(grep -c '^OK ' "$TMP/torch.out"); n_fail=$(grep -c '^FAIL ' "$TMP/torch.out")
# Every op of the layer was compared (freqs x4, 27 per precision, chain x2): 59 verdicts, none failing.
if [ "$n_ok" -eq 59 ] && [ "$n_fail" -eq 0 ]; then ok; else no "expected 59 OK verdicts and 0 FAIL, got $n_ok OK, $n_fail FAIL"; fi

check "driver writes the layer with a planted error" "$DRIVER" --dump "$TMP/planted" --plant q_rotated
check_fails 1 "failed: .*bf16/q_rotated" "a planted 4-ulp error in q_rotated is caught" $PY "$REF" "$TMP/planted"
check_fails 2 "meta.json" "a directory without a dump is an input error" $PY "$REF" "$TMP/nothing"
finish
