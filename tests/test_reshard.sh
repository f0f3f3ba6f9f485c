#!/usr/bin/env bash
# test_reshard.sh: `wt-convert reshard --mp N IN OUT`, Meta's multi-file layout and back, and loading it.
#
# 1. torch.save's own files (tests/reference/torch_save_cases.py: a tiny Llama as one file and as the 2 files of
#    model_parallel_size = 2, torch 1.13): cutting the one file gives torch's 2 files byte for byte, and joining
#    torch's 2 files gives torch's one file byte for byte.
# 2. The demo model (torch.save of a newer torch: its extra zip records come back too) and the random tiny model:
#    --mp 2, --mp 4 (the one kv head replicated on every file) and back to --mp 1 give identical bytes; every file,
#    read by torch.load, is what tests/reference/tp_reference.py computes from fairscale's split.
# 3. An MP=2 and an MP=4 directory give the same logits as MP=1 (15_logits, every .npy identical).
# 4. Bad input, each one line and exit 2: an --mp that does not split the heads, a missing --mp, an output directory
#    that holds a checkpoint, replicated kv heads that differ between files.
# 5. The 8B-shaped preset with 2 layers (~3 GB): --mp 8 and back to --mp 1, identical bytes.
# expect: 56 s
source tests/lib.sh
CONVERT=build/bin/wt-convert
DEMO=build/models/llama3-tiny-trained
TINY=build/models/tiny
TOKENIZER=build/models/tokenizer.model
for f in "$CONVERT" build/steps/15_logits build/bin/wt-make-model "$DEMO/params.json" "$TINY/params.json"; do
    [ -e "$f" ] || { echo "$f is missing: run 'make all models' first" >&2; no "$f exists"; finish; exit; }
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
reshard() { "$CONVERT" reshard --mp "$1" "$2" "$3" 2>"$TMP/reshard.log" || { cat "$TMP/reshard.log"; return 1; }; }
same_files() {  # DIR_A DIR_B: the same consolidated.NN.pth files, byte for byte
    local a b n=0
    for a in "$1"/consolidated.*.pth; do
        b="$2/$(basename "$a")"; cmp "$a" "$b" || return 1; n=$((n + 1))
    done
    [ "$n" -gt 0 ] && [ "$n" -eq "$(ls "$2"/consolidated.*.pth | wc -l)" ]
}

# ---- 1. torch's own files -------------------------------------------------------------------------------------------
C="$TMP/cases"
check "torch.save writes the one-file and the 2-file tiny Llama" $PY tests/reference/torch_save_cases.py write "$C"
check "reshard --mp 2 of torch's one file" reshard 2 "$C/meta1" "$TMP/t2"
check "... is torch's own 2 files, byte for byte" same_files "$C/meta2" "$TMP/t2"
check "reshard --mp 1 of torch's 2 files" reshard 1 "$C/meta2" "$TMP/t1"
check "... is torch's own one file, byte for byte" same_files "$C/meta1" "$TMP/t1"

# ---- 2. the demo and the tiny model: round trips, and the files as torch reads them ----------------------------------
for m in demo tiny; do
    src=$DEMO; [ $m = tiny ] && src=$TINY
    check "$m: reshard --mp 2" reshard 2 "$src" "$TMP/${m}2"
    check "$m: reshard --mp 4 of the 2 files (the kv head on all 4)" reshard 4 "$TMP/${m}2" "$TMP/${m}4"
    check "$m: reshard --mp 1 of the 4 files" reshard 1 "$TMP/${m}4" "$TMP/${m}1"
    check "$m: 1 -> 2 -> 4 -> 1 gives the original bytes" same_files "$src" "$TMP/${m}1"
    check "$m: reshard --mp 1 of the 2 files" reshard 1 "$TMP/${m}2" "$TMP/${m}1b"
    check "$m: 1 -> 2 -> 1 gives the original bytes" same_files "$src" "$TMP/${m}1b"
    check "$m: tokenizer.model and params.json copied" bash -c 'cmp "$0/tokenizer.model" "$1/tokenizer.model" && cmp "$0/params.json" "$1/params.json"' "$src" "$TMP/${m}4"
    rm -rf "$TMP/${m}1" "$TMP/${m}1b"
done
sub_checker "$TMP/ref2.log" $PY tests/reference/tp_reference.py shards "$DEMO" "$TMP/demo2" 2
sub_checker "$TMP/ref4.log" $PY tests/reference/tp_reference.py shards "$DEMO" "$TMP/demo4" 4
# the checker itself fails on files cut another way
check_fails 1 "^FAIL consolidated.01.pth" "tp_reference fails on 2 files checked as 4" bash -c '"$@" | grep "^FAIL consolidated.01.pth" | tail -n 1 >&2; exit ${PIPESTATUS[0]}' _ \
    $PY tests/reference/tp_reference.py shards "$DEMO" "$TMP/demo2" 4

# ---- 3. loading: the same logits from 1, 2 and 4 files ----------------------------------------------------------------
logits() { build/steps/15_logits --model "$1" --out "$2" --device cpu --quiet >"$2.log" 2>&1 || { cat "$2.log"; return 1; }; }
check "15_logits on the demo model (1 file)" logits "$DEMO" "$TMP/l1"
for n in 2 4; do
    check "15_logits on the demo model in $n files" logits "$TMP/demo$n" "$TMP/l$n"
    check "MP=$n gives the same logits, norm and prediction as MP=1 (every .npy identical)" bash -c \
        'for f in "$0"/15_logits/*.npy; do cmp "$f" "$1/15_logits/$(basename "$f")" || exit 1; done' "$TMP/l1" "$TMP/l$n"
done
check "wt-inspect lists the 4 files joined with the unsplit shapes" bash -c \
    'build/bin/wt-inspect "$0" --no-checksums | grep -q "^layers.0.attention.wk.weight bf16 \[128, 512\] offset=joined"' "$TMP/demo4"

# ---- 4. bad input -------------------------------------------------------------------------------------------------------
check_fails 2 "params.json: --mp 8: the 4 query heads \(n_heads\) cannot be split into 8 ranks of whole heads" \
    "--mp 8 on a model with 4 heads" "$CONVERT" reshard --mp 8 "$DEMO" "$TMP/bad8"
check "... and writes nothing" test ! -e "$TMP/bad8/params.json"
check_fails 2 "--mp 3: the 4 query heads" "--mp 3" "$CONVERT" reshard --mp 3 "$DEMO" "$TMP/bad3"
check_fails 2 "reshard: --mp N is required" "no --mp" "$CONVERT" reshard "$DEMO" "$TMP/bad"
check_fails 2 "--mp: expected a number of files >= 1, got '0'" "--mp 0" "$CONVERT" reshard --mp 0 "$DEMO" "$TMP/bad"
check_fails 2 "demo4: already holds (consolidated.0[0-3].pth|params.json): the output directory must hold no checkpoint" "an output directory that holds a checkpoint" \
    "$CONVERT" reshard --mp 2 "$DEMO" "$TMP/demo4"
check_fails 2 "not a Meta checkpoint directory" "an input without params.json" "$CONVERT" reshard --mp 2 "$TMP" "$TMP/bad"
# a replicated kv head that differs in one file: the loader names the file
$PY - "$TMP/demo4/consolidated.02.pth" <<'PY' >"$TMP/tamper.log" 2>&1
import sys, torch
sd = torch.load(sys.argv[1])
sd["layers.1.attention.wv.weight"][3, 7] += 1
torch.save(sd, sys.argv[1])
PY
check_fails 2 "consolidated.02.pth: layers.1.attention.wv.weight: kv head 0 is replicated on shards 0..3 .* differs from shard 0's" \
    "a replicated kv head that differs" build/bin/wt-inspect "$TMP/demo4" --no-checksums
rm -rf "$TMP/demo2" "$TMP/demo4" "$TMP/tiny2" "$TMP/tiny4" "$TMP"/l?

# ---- 5. the 8B-shaped preset, 2 layers ----------------------------------------------------------------------------------
M8B="$TMP/m8b"
check "wt-make-model --preset llama3-8b --layers 2" build/bin/wt-make-model --preset llama3-8b --layers 2 --seed 3 \
    --tokenizer "$TOKENIZER" --out "$M8B" --quiet
check "8B: reshard --mp 8 (one kv head per file)" reshard 8 "$M8B" "$TMP/m8b8"
check "8B: every file holds 1/8 of wq, wk, w2 and output" bash -c \
    'build/bin/wt-inspect "$0/consolidated.05.pth" --no-checksums >"$0.txt" && grep -q "^layers.1.attention.wq.weight bf16 \[512, 4096\]" "$0.txt" && grep -q "^layers.1.attention.wk.weight bf16 \[128, 4096\]" "$0.txt" && grep -q "^layers.0.feed_forward.w2.weight bf16 \[4096, 1792\]" "$0.txt" && grep -q "^output.weight bf16 \[16032, 4096\]" "$0.txt" && grep -q "^norm.weight bf16 \[4096\]" "$0.txt"' "$TMP/m8b8"
check "8B: reshard --mp 1 of the 8 files" reshard 1 "$TMP/m8b8" "$TMP/m8b1"
check "8B: 1 -> 8 -> 1 gives the original bytes" same_files "$M8B" "$TMP/m8b1"
rm -rf "$M8B" "$TMP/m8b8" "$TMP/m8b1"

# ---- the sanitizer build on the small model -----------------------------------------------------------------------------
if [ -x build/asan/bin/wt-convert ]; then
    check "asan: reshard --mp 4 and back" bash -c 'build/asan/bin/wt-convert reshard --mp 4 "$0" "$1/a4" 2>/dev/null && build/asan/bin/wt-convert reshard --mp 1 "$1/a4" "$1/a1" 2>/dev/null && cmp "$0/consolidated.00.pth" "$1/a1/consolidated.00.pth"' "$DEMO" "$TMP"
fi
finish
