#!/usr/bin/env bash
# test_large_prompt.sh: a long prompt, as a user who pastes a page would give it (issue 16 item 6).
# expect: 2 s
#
# 1. The tensors print as torch prints them: the whole mask up to torch's threshold of 1000 elements (T = 17: 17
#    rows), beyond it the first and last 3 rows and columns around "..." (T = 34); a vector of more than 1000 values
#    (rms at T > 1000) as its first and last 3 around "...", the default prompt's 17 values in full.
# 2. 01_tokenize notes at T >= 256 how big the walkthrough's trace of chapters 01-16 will be; its number of MB is the size of the
#    .npy files tests/reference/check_trace.py expects for this model and T (the list test_walkthrough checks against
#    real traces). No note at the default prompt's T = 17.
source "$(dirname "$0")/lib.sh"
MODEL=build/models/llama3-tiny-trained
for f in build/steps/01_tokenize build/steps/03_rmsnorm build/steps/08_mask "$MODEL/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done
# run NAME PROGRAM ARGS...: into its own trace directory $TMP/NAME (a trace is one run: each prompt its own)
run() { local name="$1"; shift; "$@" --model "$MODEL" --device cpu --out "$TMP/$name"; }
# run_as NAME PROGRAM ARGS...: a check that PROGRAM runs, its output kept in $TMP/NAME.out
run_as() { local name="$1"; shift; check "$name: $(basename "$1") runs" run "$name" "$@"; cp "$TMP/out" "$TMP/$name.out"; }
words() { $PY -c "import sys; print(' '.join(['word'] * int(sys.argv[1])))" "$1"; }

# 1. torch's printing
run_as mask17 build/steps/08_mask
check "T = 17 (289 elements): the whole mask, 17 rows, no '...'" bash -c \
    '[ "$(sed -n "/^tensor(\[\[/,/\]\])$/p" "$0" | wc -l)" -eq 17 ] && ! grep -qF "..." <(sed -n "/^tensor(\[\[/,/\]\])$/p" "$0")' "$TMP/mask17.out"
run_as mask34 build/steps/08_mask --prompt "$(words 33)"
cat >"$TMP/mask34.want" <<'EOF'
tensor([[0., -inf, -inf,  ..., -inf, -inf, -inf],
        [0., 0., -inf,  ..., -inf, -inf, -inf],
        [0., 0., 0.,  ..., -inf, -inf, -inf],
        ...,
        [0., 0., 0.,  ..., 0., -inf, -inf],
        [0., 0., 0.,  ..., 0., 0., -inf],
        [0., 0., 0.,  ..., 0., 0., 0.]])
EOF
check "T = 34 (1156 elements): summarised as torch prints it" bash -c \
    'grep -q "full((34, 34)" "$0" && diff <(sed -n "/^tensor(\[\[/,/\]\])$/p" "$0") "$1"' "$TMP/mask34.out" "$TMP/mask34.want"
run_as rms17 build/steps/03_rmsnorm
check "rms of 17 tokens: all 17 values, no '...'" bash -c \
    '[ "$(sed -n "/^rms = tensor/,/\])$/p" "$0" | grep -oE "[0-9]\.[0-9]{4}" | wc -l)" -eq 17 ] && ! grep -q "^rms = .*\.\.\." "$0"' "$TMP/rms17.out"
run_as rms1101 build/steps/03_rmsnorm --prompt "$(words 1100)"
check "rms of 1101 tokens: first and last 3 around '...', one line" \
    grep -qE '^rms = tensor\(\[([0-9]\.[0-9]{4}, ){3} \.\.\., ([0-9]\.[0-9]{4}, ){2}[0-9]\.[0-9]{4}\]\)$' "$TMP/rms1101.out"

# 2. the note on the trace's size
check "01_tokenize, default prompt" run tok17 build/steps/01_tokenize
check "T = 17: no note on the trace's size" bash -c '! grep -q "^note: T = " "$0"' "$TMP/out"
run_as tok300 build/steps/01_tokenize --prompt "$(words 300)"
T=$(sed -nE 's/^number of tokens T: ([0-9]+)$/\1/p' "$TMP/tok300.out")
MB=$(sed -nE 's/^note: T = [0-9]+ is large: the walkthrough.s trace will hold about ([0-9]+) MB of \.npy files for chapters 01-16 .*/\1/p' "$TMP/tok300.out")
check "T >= 256: the note says how many MB" test -n "$T" -a -n "$MB"
check "the note's MB is the bytes of the .npy files check_trace.py expects (T = ${T:-?}, ${MB:-?} MB)" \
    $PY - "$MODEL" "${T:-0}" "${MB:-0}" <<'PY'
import math, sys
sys.path.insert(0, "tests/reference")
import check_trace
model, T, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = check_trace.config(model)
want = check_trace.expected_outputs(c, T, 0, 0)
size = {"float32": 4, "int64": 8}
# the note counts chapters 01-16 (its words); 19_logit_lens and 20_moe came later and are not in it
total = sum(128 + size[dtype] * math.prod(shape) for step, (tensors, _) in want.items() if "01" <= step[:2] <= "16"
            for shape, dtype in tensors.values())
print(f"expected .npy bytes {total} ({total / 1e6:.1f} MB), the note says {mb} MB")
sys.exit(0 if round(total / 1e6) == mb else 1)
PY
check "the note in Chinese with --lang zh" bash -c \
    '"$@" --lang zh | grep -q "^注意：T = [0-9]* 很大" ' _ build/steps/01_tokenize --model "$MODEL" --device cpu --out "$TMP/tok300zh" --prompt "$(words 300)"
finish
