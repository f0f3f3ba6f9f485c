#!/usr/bin/env bash
# test_corrupt_checkpoint.sh: eight bytes flipped inside a tensor of a checkpoint of the right size (issue 12: they
# passed, the logits came out NaN and 16_generate said "OK, bit-identical" while generating "!!!!!!!!").
#
# wt-inspect verifies every zip entry's CRC-32 by default and names the first bad tensor (exit 2, one line);
# --no-verify skips that and the file loads as before. generate takes --verify-checksums (off by default: loading
# stays fast) and, without it, stops at the first logits that are not finite.
# expect: 3 s
source tests/lib.sh
INSPECT=${INSPECT:-build/bin/wt-inspect}
M=build/models/llama3-tiny-trained
C=$TMP/corrupt
mkdir -p "$C" && cp "$M/params.json" "$M/tokenizer.model" "$C/"

# The bytes of norm.weight (the final RMSNorm's gain, [D] bf16): eight bytes 0xFF are four bf16 NaN.
offset=$($INSPECT "$M" --no-checksums | sed -n 's/^norm.weight bf16 \[[0-9]*\] offset=\([0-9]*\).*/\1/p')
check "wt-inspect names the offset of norm.weight" test -n "$offset"
cp "$M/consolidated.00.pth" "$C/consolidated.00.pth"
printf '\377\377\377\377\377\377\377\377' | dd of="$C/consolidated.00.pth" bs=1 seek="$((offset + 64))" conv=notrunc status=none
check "the corrupt copy has the original's size" test "$(stat -c %s "$C/consolidated.00.pth")" = "$(stat -c %s "$M/consolidated.00.pth")"
check_fails 2 "$C/consolidated.00.pth: tensor norm.weight \(zip entry [^)]*/data/[0-9]+\): its bytes have CRC-32 [0-9a-f]{8} but the zip says [0-9a-f]{8}: the file is corrupt \(1 of [0-9]+ entries differ\)" \
    "wt-inspect finds the flipped bytes by default and names the tensor" "$INSPECT" "$C"
check_fails 2 "tensor norm.weight" "the same for the .pth file alone" "$INSPECT" "$C/consolidated.00.pth"
check "with --no-verify the corrupt file loads (CRC-32 not checked)" bash -c "'$INSPECT' '$C' --no-verify --no-checksums | grep -q 'CRC-32 not checked (--no-verify)'"
# generate: without --verify-checksums the NaN logits stop it before any token is sampled (it printed "!!!!!!!!"
# before); with it, the corrupt file is refused before the model is loaded.
check_fails 1 "error: the logits at position 16 are not finite \(NaN at index [0-9]+\)" "generate stops at NaN logits" \
    build/bin/generate --model "$C" --prompt "the answer to the ultimate question of life, the universe, and everything is " -n 8 --device cpu
check_fails 2 "tensor norm.weight \(zip entry" "generate --verify-checksums refuses the corrupt file" \
    build/bin/generate --model "$C" --prompt "x" -n 8 --device cpu --verify-checksums
# the chapters: --verify-checksums refuses the file before computing; without it, the first value that is not finite
# stops a chapter (exit 1, one line naming the tensor, the layers and the index) before it prints a prediction or
# draws a figure: 15_logits printed "tensor(0) '!'" and 16_generate "OK, bit-identical" before
check_fails 2 "tensor norm.weight \(zip entry" "05_rope --verify-checksums refuses the corrupt file" \
    build/steps/05_rope --model "$C" --out "$TMP/t_verify" --verify-checksums --quiet
check "05_rope --verify-checksums wrote no trace" test ! -e "$TMP/t_verify/trace.json"
check_fails 1 "^error: 15_logits: final_embedding \[17, [0-9]+\] \(layers 0\.\.[0-9]+\) is not finite at \[[0-9]+, [0-9]+\] \(NaN\)" \
    "15_logits stops at the first NaN" build/steps/15_logits --model "$C" --out "$TMP/t" --device cpu
check "15_logits printed no prediction and drew no bar chart" bash -c "! grep -q next_token '$TMP/out' && test ! -e '$TMP/t/15_logits/top_k.png'"
check_fails 1 "^error: 16_generate: prefill logits \[128256\] \(layers 0\.\.[0-9]+\) is not finite at \[[0-9]+\] \(NaN\)" \
    "16_generate stops at the NaN logits" build/steps/16_generate --model "$C" --out "$TMP/t" --device cpu
check "16_generate printed no OK, no bit-identical, no token" bash -c "! grep -qE 'OK|bit-identical|^step [0-9]' '$TMP/out'"
check "the trace records both chapters' errors" $PY -c "
import json, sys
t = {s['id']: s for s in json.load(open('$TMP/t/trace.json'))['steps']}
assert 'not finite' in t['15_logits']['error'] and 'not finite' in t['16_generate']['error'], t.keys()"
check "export-notebook: the page's summary names the two failed chapters" bash -c "build/bin/export-notebook '$TMP/t' >/dev/null &&
    grep -qE '<p class=\"summary fail\">[^<]*2 FAILED \(15_logits, 16_generate\)' '$TMP/t/index.html'"
check "walkthrough --verify-checksums stops at the first chapter (exit 2, naming the tensor)" bash -c "
    build/bin/walkthrough --model '$C' --out '$TMP/w' --verify-checksums --quiet 2>'$TMP/w.err'; test \$? = 2 &&
    grep -q 'tensor norm.weight (zip entry' '$TMP/w.err' && grep -q '00_config rejected its input' '$TMP/w.err'"
check "the intact model verifies" bash -c "'$INSPECT' '$M' --no-checksums | grep -qE 'verified: CRC-32 of [0-9]+ zip entries'"
finish
