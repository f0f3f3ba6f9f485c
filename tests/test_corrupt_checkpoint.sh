#!/usr/bin/env bash
# test_corrupt_checkpoint.sh: eight bytes flipped inside a tensor of a checkpoint of the right size (issue 12: they
# passed, the logits came out NaN and 16_generate said "OK, bit-identical" while generating "!!!!!!!!").
#
# wt-inspect verifies every zip entry's CRC-32 by default and names the first bad tensor (exit 2, one line);
# --no-verify skips that and the file loads as before. generate takes --verify-checksums (off by default: loading
# stays fast) and, without it, stops at the first logits that are not finite.
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
check "the intact model verifies" bash -c "'$INSPECT' '$M' --no-checksums | grep -qE 'verified: CRC-32 of [0-9]+ zip entries'"
finish
