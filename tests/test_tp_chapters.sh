#!/usr/bin/env bash
# test_tp_chapters.sh: chapters 17 (the packed serving layout) and 18 (tensor parallelism) on the CPU.
#
# 1. The demo model (build/models/llama3-tiny-trained: 4 heads, 1 kv head) and the random tiny model: 17_packed, and
#    18_tensor_parallel for N = 1, 2, 4 (the one kv head replicated on 2 and 4 ranks) and at the last layer; every
#    comparison passes (packed = separate and split = unsplit bit for bit where no sum is split, the all-reduces
#    within their rounding bound); N = 8 and N = 3 do not divide the 4 heads: one line naming --tp and the heads,
#    exit 2, no trace left.
# 2. tests/reference/tp_reference.py chapter: PyTorch splits the checkpoint's weights as Meta's fairscale layers do,
#    computes every rank's tensors and sums the partials; they agree with the chapter's per-rank .npy and its result,
#    and the split layer with torch's unsplit one. check_trace.py: the trace lists exactly the tensors and figures.
# 3. Multi-file checkpoints: on the demo model in 2 and 4 files (wt-convert reshard) the chapters write the same .npy
#    as on the one file, and 18 checks that rank r's weights are consolidated.r.pth's; an HF directory (meta-to-hf)
#    gives the same .npy too.
# 4. The 8B-shaped preset with 2 layers (wt-make-model --preset llama3-8b --layers 2, ~3 GB): 17_packed, and 18 for
#    N = 1, 2, 4, 8 on a 4-token prompt (the CPU time of a 2-core CI), N = 8 checked by the PyTorch reference.
# 5. --precision fp32, --no-compare (the same .npy as the default run), a MoE model (the chapters say so and trace
#    the demo model: its .npy), --help, --tp on another chapter (exit 2),
#    and 17 and 18 under AddressSanitizer + UBSan.
# expect: 63 s
source tests/lib.sh
DEMO=build/models/llama3-tiny-trained
TINY=build/models/tiny
TOKENIZER=build/models/tokenizer.model
S17=build/steps/17_packed
S18=build/steps/18_tensor_parallel
for f in "$S17" "$S18" build/bin/wt-convert build/bin/wt-make-model "$DEMO/params.json" "$TINY/params.json"; do
    [ -e "$f" ] || { echo "$f is missing: run 'make all models' first" >&2; no "$f exists"; finish; exit; }
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# run LOG CMD...: a chapter, its output into LOG; on failure the end of LOG
run() { local log="$1"; shift; "$@" >"$log" 2>&1 || { echo "exit $?"; tail -n 20 "$log"; return 1; }; }
# all_ok LOG: every verdict line of the run says OK (and there is at least one)
all_ok() { grep -qE '^OK +1[78]_' "$1" && ! grep -qE '^FAIL' "$1"; }
same_npy() {  # DIR_A DIR_B STEP: the same .npy files of STEP, byte for byte
    local a="$1/$3" b="$2/$3" n=0
    [ "$(cd "$a" && ls *.npy)" = "$(cd "$b" && ls *.npy)" ] || { echo "different .npy lists"; return 1; }
    for f in "$a"/*.npy; do cmp "$f" "$b/$(basename "$f")" || return 1; n=$((n + 1)); done
    [ "$n" -gt 0 ]
}

# ---- 1-2. the demo model and the tiny model ------------------------------------------------------------------------
for m in demo tiny; do
    M=$DEMO; [ $m = tiny ] && M=$TINY
    check "$m: 17_packed" run "$TMP/${m}_17.log" "$S17" --model "$M" --device cpu --out "$TMP/$m"
    check "$m: 17_packed: 7 comparisons, all OK (bit for bit)" bash -c \
        'all_ok() { grep -qE "^OK +17_" "$1" && ! grep -qE "^FAIL" "$1"; }; all_ok "$0" && [ $(grep -cE "^OK +17_packed .*max_abs 0.0e\+00" "$0") -eq 7 ]' "$TMP/${m}_17.log"
    for n in 1 2 4; do
        check "$m: 18_tensor_parallel --tp $n" run "$TMP/${m}_18_$n.log" "$S18" --model "$M" --device cpu --tp $n --out "$TMP/${m}_tp$n"
        check "$m: --tp $n: every comparison OK" all_ok "$TMP/${m}_18_$n.log"
    done
    check "$m: --tp 2 says the kv head is replicated" grep -q "each kv head is replicated on 2 ranks" "$TMP/${m}_18_2.log"
    check "$m: --tp 4: 1 head per rank, the kv head on all 4" grep -qE "^3 +3 +0 +" "$TMP/${m}_18_4.log"
    check "$m: --tp 2: the two all-reduces and their size" grep -q "per layer: 2 all-reduces of \[T, D\] = \[17, 512\] bf16 (17408 bytes each)" "$TMP/${m}_18_2.log"
    check "$m: --tp 1: the all-reduced sums are the unsplit products bit for bit" \
        grep -qE "^OK +18_tensor_parallel +embedding_delta = all_reduce\(partials\) vs chapter 12 .* max_abs 0.0e\+00" "$TMP/${m}_18_1.log"
    for n in 8 3; do
        check_fails 2 "^error: --tp $n: the 4 query heads \(n_heads\) cannot be split into $n ranks of whole heads$" \
            "$m: --tp $n does not divide the 4 heads: one line, exit 2" "$S18" --model "$M" --device cpu --tp $n --out "$TMP/bad$n"
        check "$m: --tp $n left no trace" test ! -e "$TMP/bad$n/trace.json"
    done
    for n in 2 4; do
        sub_checker "$TMP/${m}_ref$n.log" $PY tests/reference/tp_reference.py chapter "$M" "$TMP/${m}_tp$n"
    done
done
check "demo: --tp 2 at the last layer (--layer 3)" run "$TMP/demo_18_l3.log" "$S18" --model "$DEMO" --device cpu --tp 2 --layer 3 --out "$TMP/demo_l3"
check "demo: --layer 3: every comparison OK" all_ok "$TMP/demo_18_l3.log"
sub_checker "$TMP/demo_ref_l3.log" $PY tests/reference/tp_reference.py chapter "$DEMO" "$TMP/demo_l3"
check "demo: 18 predicts the demo's answer, tensor(2983)" grep -qx "tensor(2983)" "$TMP/demo_18_2.log"
# the reference can fail: a partial sum changed by one bf16 ulp
cp -r "$TMP/demo_tp2" "$TMP/broken"
$PY - "$TMP/broken/18_tensor_parallel/embedding_delta_partial.npy" <<'PY'
import sys, numpy as np
a = np.load(sys.argv[1]); a[1, 5, 7] = np.float32(a[1, 5, 7] * (1 + 2.0 ** -6) + 0.25); np.save(sys.argv[1], a)
PY
check_fails 1 "^FAIL 18_tensor_parallel/embedding_delta" "tp_reference fails on a changed partial sum" bash -c \
    '"$@" | grep "^FAIL 18_tensor_parallel/embedding_delta" | tail -n 1 >&2; exit ${PIPESTATUS[0]}' _ $PY tests/reference/tp_reference.py chapter "$DEMO" "$TMP/broken"
rm -rf "$TMP/broken"
for s in 00_config 01_tokenize; do build/steps/$s --model "$TINY" --device cpu --out "$TMP/tiny_tp2" --quiet >/dev/null; done
build/steps/17_packed --model "$TINY" --device cpu --out "$TMP/tiny_tp2" --quiet >/dev/null
sub_checker "$TMP/check_trace.log" $PY tests/reference/check_trace.py "$TMP/tiny_tp2" "$TINY" 00_config 01_tokenize 17_packed 18_tensor_parallel

# ---- 3. the same model in several files, and as an HF directory ------------------------------------------------------
for n in 2 4; do
    check "demo in $n files (wt-convert reshard --mp $n)" bash -c '"$0" reshard --mp "$1" "$2" "$3" 2>/dev/null' build/bin/wt-convert $n "$DEMO" "$TMP/mp$n"
    check "MP=$n: 18 --tp $n" run "$TMP/mp${n}_18.log" "$S18" --model "$TMP/mp$n" --device cpu --tp $n --out "$TMP/mp${n}_tr"
    check "MP=$n: rank r's weights are consolidated.r.pth's, byte for byte" \
        grep -qE "^OK +18_tensor_parallel +weights of layer --layer and the vocabulary not equal to consolidated.<rank>.pth's .* max_abs 0.0e\+00" "$TMP/mp${n}_18.log"
    check "MP=$n: every comparison OK" all_ok "$TMP/mp${n}_18.log"
    check "MP=$n: the same .npy as the one file" same_npy "$TMP/demo_tp$n" "$TMP/mp${n}_tr" 18_tensor_parallel
done
check "MP=2: 17_packed" run "$TMP/mp2_17.log" "$S17" --model "$TMP/mp2" --device cpu --out "$TMP/mp2_tr"
check "MP=2: 17_packed writes the same .npy as the one file" same_npy "$TMP/demo" "$TMP/mp2_tr" 17_packed
check "the demo as an HF directory (meta-to-hf)" bash -c '"$0" meta-to-hf "$1" "$2" 2>/dev/null' build/bin/wt-convert "$DEMO" "$TMP/hf"
check "HF: 18 --tp 2" run "$TMP/hf_18.log" "$S18" --model "$TMP/hf" --device cpu --tp 2 --out "$TMP/hf_tr"
check "HF: the same .npy as Meta's file" same_npy "$TMP/demo_tp2" "$TMP/hf_tr" 18_tensor_parallel
rm -rf "$TMP/mp2" "$TMP/mp4" "$TMP/hf"

# ---- 5. precision, --no-compare, the command line, the sanitizers -----------------------------------------------------
check "tiny: 18 --tp 2 --precision fp32" run "$TMP/f32.log" "$S18" --model "$TINY" --device cpu --tp 2 --precision fp32 --out "$TMP/f32"
check "fp32: every comparison OK" all_ok "$TMP/f32.log"
check "tiny: 17 --precision fp32" run "$TMP/f32_17.log" "$S17" --model "$TINY" --device cpu --precision fp32 --out "$TMP/f32"
check "fp32: 17 OK" all_ok "$TMP/f32_17.log"
for s in 17_packed 18_tensor_parallel; do
    check "$s --no-compare" run "$TMP/nc_$s.log" build/steps/$s --model "$TINY" --device cpu --no-compare --out "$TMP/nc"
    check "$s --no-compare: no verdict, says not compared" bash -c '! grep -qE "^(OK|FAIL) " "$0" && grep -q "not compared" "$0"' "$TMP/nc_$s.log"
done
check "--no-compare writes the default run's .npy (17)" same_npy "$TMP/tiny" "$TMP/nc" 17_packed
check "--no-compare writes the default run's .npy (18)" same_npy "$TMP/tiny_tp2" "$TMP/nc" 18_tensor_parallel
MOE=build/models/llama3-tiny-moe
if [ -f "$MOE/params.json" ]; then  # a mixture-of-experts model has no w1/w2/w3 to pack or split: the demo model instead
    for s in 17_packed 18_tensor_parallel; do
        check "$s on the MoE demo model: runs" run "$TMP/moe_$s.log" build/steps/$s --model "$MOE" --device cpu --out "$TMP/moe"
        check "$s on the MoE demo model: says it traces the demo model, every comparison OK" bash -c \
            'grep -q "^note: .* has a mixture of experts.*traces the demo model build/models/llama3-tiny-trained instead" "$0" && ! grep -q "^FAIL" "$0" && grep -q "^OK" "$0"' "$TMP/moe_$s.log"
    done
    check "17 on the MoE model writes the demo model's .npy" same_npy "$TMP/demo" "$TMP/moe" 17_packed
    check "18 on the MoE model writes the demo model's .npy" same_npy "$TMP/demo_tp2" "$TMP/moe" 18_tensor_parallel
else no "$MOE exists (make models)"; fi
check "18 --help describes --tp" bash -c 'set -o pipefail; "$0" --help | grep -q -- "--tp N             the number of ranks"' "$S18"
check_fails 2 "unknown option '--tp'" "--tp on another chapter exits 2" build/steps/05_rope --tp 2 --model "$TINY" --device cpu --out "$TMP/bad"
check_fails 2 "--tp: expected a number of ranks >= 1, got '0'" "--tp 0 exits 2" "$S18" --tp 0 --model "$TINY" --device cpu --out "$TMP/bad"
if ! nvidia-smi -L >/dev/null 2>&1; then
    check_fails 2 "--device cuda: no CUDA device" "18 --device cuda without a GPU exits 2" "$S18" --device cuda --model "$TINY" --out "$TMP/bad"
fi
if [ -x build/asan/steps/18_tensor_parallel ]; then
    check "asan: 17_packed" build/asan/steps/17_packed --model "$TINY" --device cpu --out "$TMP/asan" --quiet
    check "asan: 18 --tp 4" build/asan/steps/18_tensor_parallel --model "$TINY" --device cpu --tp 4 --out "$TMP/asan" --quiet
fi

# ---- 4. the 8B-shaped preset, 2 layers ------------------------------------------------------------------------------
M8B="$TMP/m8b"
check "wt-make-model --preset llama3-8b --layers 2" build/bin/wt-make-model --preset llama3-8b --layers 2 --seed 3 \
    --tokenizer "$TOKENIZER" --out "$M8B" --quiet
check "8B: 17_packed" run "$TMP/8b_17.log" "$S17" --model "$M8B" --device cpu --out "$TMP/8b"
check "8B: 17_packed OK, wqkv [6144, 4096], w13 [28672, 4096]" bash -c 'grep -qE "^wqkv +\[6144, 4096\]" "$0" && grep -qE "^w13 +\[28672, 4096\]" "$0" && ! grep -q "^FAIL" "$0" && [ $(grep -c "^OK" "$0") -eq 7 ]' "$TMP/8b_17.log"
for n in 1 2 4 8; do
    check "8B: 18 --tp $n" run "$TMP/8b_18_$n.log" "$S18" --model "$M8B" --device cpu --tp $n --prompt "the answer is" --out "$TMP/8b_tp$n"
    check "8B: --tp $n: every comparison OK" all_ok "$TMP/8b_18_$n.log"
done
check "8B: --tp 8: one kv head and 4 query heads per rank" grep -qE "^7 +28\.\.31 +7 +12544\.\.14335 +112224\.\.128255$" "$TMP/8b_18_8.log"
check "8B: --tp 8: wq [512, 4096], w2 [4096, 1792], output [16032, 4096] per rank" bash -c \
    'grep -qE "^layers.0.attention.wq.weight +\[4096, 4096\] +\[512, 4096\]" "$0" && grep -qE "^layers.0.feed_forward.w2.weight +\[4096, 14336\] +\[4096, 1792\]" "$0" && grep -qE "^output.weight +\[128256, 4096\] +\[16032, 4096\]" "$0"' "$TMP/8b_18_8.log"
sub_checker "$TMP/8b_ref8.log" $PY tests/reference/tp_reference.py chapter "$M8B" "$TMP/8b_tp8"
rm -rf "$M8B"
finish
