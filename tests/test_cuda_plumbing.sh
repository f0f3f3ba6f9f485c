#!/usr/bin/env bash
# test_cuda_plumbing.sh: the steps' CUDA path on a machine without a GPU, with kernels.h replaced by the CPU reference
# (tests/host_cuda/kernels_host.c; `make test` builds the chapters that use kernels.h, 00-15 and 17-20, and the
# walkthrough with it under the sanitizers, build/asan/hostcuda). The "kernels" then compute exactly what the reference computes, so:
#   1. with both paths every comparison must hold with max_abs 0: a chapter that fed its CUDA op other inputs than the
#      reference's (a wrong buffer, offset, precision, head) shows up as a difference; trace.json is checked as for a
#      cuda+cpu run (check_trace.py);
#   2. --no-compare (the CUDA path alone, each op fed by the one before) must write the same .npy bytes as the
#      reference and the same tensor and figure names (check_trace.py --mode cuda-only);
#   3. the same at another layer and head in fp32;
#   4. the check can fail: with every product one ulp off (HOST_CUDA_PERTURB=1) the comparisons are no longer exact.
#   5. a figure comes from the CUDA result when CUDA ran: with the "CUDA" attention weights flipped
#      (HOST_CUDA_FLIP_ATT=1) 11_multihead's heads.png changes, its .npy (the reference's) does not.
#   6. the MoE demo model: 13_ffn (MiniMind's MoE in place of SwiGLU), 19_logit_lens and 20_moe, both paths exact,
#      --no-compare the reference's bytes.
#   7. 17_packed (the packed products, the fused residual + RMSNorm launcher) and 18_tensor_parallel (--tp 2 and 4:
#      one "GPU", so the ranks one after another on it, steps/tp_ranks.c): every CUDA tensor the reference's bits,
#      --no-compare the reference's bytes.
# AddressSanitizer watches every upload, download and offset on the way. What it does not test: the CUDA kernels
# themselves (test_kernels_gpu and make test-gpu, on a GPU).
# expect: 97 s
source "$(dirname "$0")/lib.sh"
HC=build/asan/hostcuda
MODEL=build/models/llama3-tiny-trained
CHAPTERS="00_config 01_tokenize 02_embed 03_rmsnorm 04_query 05_rope 06_key 07_scores 08_mask 09_softmax 10_value
11_multihead 12_output 13_ffn 14_layers 15_logits 19_logit_lens 20_moe"
ONLY=00,01,02,03,04,05,06,07,08,09,10,11,12,13,14,15,19,20
MOE=build/models/llama3-tiny-moe
for f in "$HC/bin/walkthrough" "$MODEL/params.json" "$MOE/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run make test (it builds make BUILD=build/asan SANITIZE=1 hostcuda) and make models"; finish; exit 1; }
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# exact FILE...: every comparison of each trace.json holds with max_abs 0 (and there are some); EXACT_EXCEPT, a regular
# expression, names comparisons left out (18_tensor_parallel's split sums against the unsplit ones: within a bound)
exact() {
    $PY - "$@" <<'PY'
import json, os, re, sys
n = bad = 0
skip = os.environ.get("EXACT_EXCEPT", "")
for path in sys.argv[1:]:
    for st in json.load(open(path))["steps"]:
        for c in st.get("comparisons", []):
            if skip and re.search(skip, c["name"]):
                continue
            n += 1
            if c["verdict"] != "OK" or c["max_abs"] != 0:
                bad += 1
                print("%s %s: %s, max_abs %g" % (st["id"], c["name"], c["verdict"], c["max_abs"]))
print("%d comparisons, %d not exact" % (n, bad))
sys.exit(0 if n > 0 and bad == 0 else 1)
PY
}
same_npy() {  # DIR_A DIR_B [MIN]: the same .npy files (more than MIN, default 30), byte for byte
    local a="$1" b="$2" min="${3:-30}" n=0
    [ "$(cd "$a" && find . -name '*.npy' | sort)" = "$(cd "$b" && find . -name '*.npy' | sort)" ] || return 1
    for f in $(cd "$a" && find . -name '*.npy'); do cmp "$a/$f" "$b/$f" || return 1; n=$((n + 1)); done
    [ "$n" -gt "$min" ]
}

# 1. both paths
check "walkthrough 00-15, 19, 20: the host 'CUDA' path and the CPU reference" \
    "$HC/bin/walkthrough" --model "$MODEL" --out "$TMP/both" --only $ONLY --quiet
check "every comparison exact" exact "$TMP/both/trace.json"
check "check_trace --mode cuda+cpu" $PY tests/reference/check_trace.py --mode cuda+cpu "$TMP/both" "$MODEL" $CHAPTERS

# 2. the CUDA path alone
check "walkthrough 00-15, 19, 20 --no-compare: the host 'CUDA' path alone" \
    "$HC/bin/walkthrough" --model "$MODEL" --out "$TMP/cuda" --only $ONLY --quiet --no-compare
check "check_trace --mode cuda-only" $PY tests/reference/check_trace.py --mode cuda-only "$TMP/cuda" "$MODEL" $CHAPTERS
check "--no-compare writes the reference's .npy bytes" same_npy "$TMP/both" "$TMP/cuda"

# 3. another layer and head, fp32
check "layer 2, head 3, fp32: both paths" "$HC/bin/walkthrough" --model "$MODEL" --out "$TMP/fp32" --only $ONLY \
    --quiet --layer 2 --head 3 --precision fp32
check "layer 2, head 3, fp32: every comparison exact" exact "$TMP/fp32/trace.json"
check "layer 2, head 3, fp32: --no-compare" "$HC/bin/walkthrough" --model "$MODEL" --out "$TMP/fp32c" --only $ONLY \
    --quiet --layer 2 --head 3 --precision fp32 --no-compare
check "layer 2, head 3, fp32: --no-compare writes the reference's .npy bytes" same_npy "$TMP/fp32" "$TMP/fp32c"

# 4. the check can fail: one ulp off in every product (HOST_CUDA_PERTURB=1) is a difference it reports
HOST_CUDA_PERTURB=1 "$HC/bin/walkthrough" --model "$MODEL" --out "$TMP/perturbed" --only 04,13 --quiet >/dev/null 2>&1
exact "$TMP/perturbed/trace.json" >"$TMP/perturbed.txt" 2>&1
if grep -qE '^[0-9]+ comparisons, [1-9][0-9]* not exact' "$TMP/perturbed.txt"; then ok
else no "with every product one ulp off, the comparisons should not be exact: $(tail -n 1 "$TMP/perturbed.txt")"; fi

# 5. the figure of 11_multihead from the CUDA maps: flipped "CUDA" weights change heads.png and not the .npy
check "11_multihead with the 'CUDA' attention weights flipped" env HOST_CUDA_FLIP_ATT=1 \
    "$HC/bin/walkthrough" --model "$MODEL" --out "$TMP/flipped" --only 11 --quiet
check "heads.png is drawn from the CUDA maps" bash -c "! cmp -s '$TMP/both/11_multihead/heads.png' '$TMP/flipped/11_multihead/heads.png'"
check "attn_weights_all.npy stays the reference's" \
    cmp "$TMP/both/11_multihead/attn_weights_all.npy" "$TMP/flipped/11_multihead/attn_weights_all.npy"

# 6. the MoE demo model: the MoE feed-forward on the 'CUDA' path in 13_ffn, the lens, chapter 20's launchers
check "MoE demo, 13/19/20: both paths" "$HC/bin/walkthrough" --model "$MOE" --out "$TMP/moe" --only 13,19,20 --quiet
check "MoE demo: every comparison exact" exact "$TMP/moe/trace.json"
check "MoE demo: 13_ffn compares the MoE feed-forward" $PY -c "import json, sys
st = [s for s in json.load(open(sys.argv[1]))['steps'] if s['id'] == '13_ffn'][0]
sys.exit(0 if 'output_after_feedforward' in [c['name'] for c in st['comparisons']] else 1)" "$TMP/moe/trace.json"
check "MoE demo, 13/19/20 --no-compare" "$HC/bin/walkthrough" --model "$MOE" --out "$TMP/moec" --only 13,19,20 \
    --quiet --no-compare
check "MoE demo: --no-compare writes the reference's .npy bytes" same_npy "$TMP/moe" "$TMP/moec" 20

# 7. the serving layout and tensor parallelism (the ranks one after another on the one "GPU")
exact_but_split_sums() { EXACT_EXCEPT='all_reduce\(partials\)|^layer output vs' exact "$@"; }
for tp in 2 4; do
    check "17/18 --tp $tp: both paths" "$HC/steps/18_tensor_parallel" --model "$MODEL" --out "$TMP/tp$tp" --tp $tp --quiet
    check "18 --tp $tp: says the GPUs are missing and runs the ranks one after another" \
        grep -q "one after another" "$TMP/tp$tp/trace.json"
    check "18 --tp $tp: every CUDA tensor exact (the split sums against the unsplit: within their bound)" \
        exact_but_split_sums "$TMP/tp$tp/trace.json"
    check "18 --tp $tp --no-compare" "$HC/steps/18_tensor_parallel" --model "$MODEL" --out "$TMP/tp${tp}c" --tp $tp \
        --quiet --no-compare
    check "18 --tp $tp: --no-compare writes the reference's .npy bytes" same_npy "$TMP/tp$tp" "$TMP/tp${tp}c" 15
done
check "17_packed: both paths" "$HC/steps/17_packed" --model "$MODEL" --out "$TMP/packed" --quiet
check "17_packed: every comparison exact" exact "$TMP/packed/trace.json"
check "17_packed --no-compare" "$HC/steps/17_packed" --model "$MODEL" --out "$TMP/packedc" --quiet --no-compare
check "17_packed: --no-compare writes the reference's .npy bytes" same_npy "$TMP/packed" "$TMP/packedc" 3
finish
