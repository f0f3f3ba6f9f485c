#!/usr/bin/env bash
# test_verify.sh: build/bin/verify, a learner's tensors against the trace, on the CPU.
#
# The model: wt-make-model --preset gqa (8 query heads reading 2 kv heads, small embeddings as Llama-3's), head 1
# (whose kv head, 1 // 4 = 0, is not 1 % 2 = 1: a kv-head mistake shows). The learner: the PyTorch implementation of
# the tutorial in tests/reference/walkthrough_reference.py (--write), which saves every tensor of chapters 01-15 as
# np.save would (complex64 for the complex ones), with one mistake planted at a time.
#   - verify makes the trace itself (--trace DIR without trace.json; without --trace in a temporary folder, removed)
#   - unchanged: every tensor agrees, exit 0; all in float32: exit 0, and the rounding is said to be float32 vs bf16
#   - the table: each planted mistake stops verify (exit 1) at the right tensor with the right diagnosis; then the
#     same mistakes with the learner's earlier tensors removed, so they are caught further down
#   - --help lists the names the trace has; a transposed tensor, a batch dimension of 1; Chinese messages
#   - bad input: exit 2 with one line
# Needs Debian's python3-torch and python3-numpy (make deps).
# expect: 34 s
source "$(dirname "$0")/lib.sh"
VERIFY=build/bin/verify
REF=tests/reference/walkthrough_reference.py
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
for f in "$VERIFY" build/bin/walkthrough build/bin/wt-make-model build/models/tokenizer.model; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done
$PY -c 'import torch, numpy' 2>/dev/null || { no "$PY lacks torch/numpy: apt-get install python3-torch python3-numpy"; finish; exit 1; }

M="$TMP/gqa" TR="$TMP/trace"
check "wt-make-model --preset gqa" build/bin/wt-make-model --preset gqa --seed 5 --out "$M" --quiet
mkdir -p "$TMP/nothing"
# verify makes the trace into --trace DIR when DIR has none, then finds none of the names in an empty MY_DIR
"$VERIFY" "$TMP/nothing" --trace "$TR" --model "$M" --head 1 --device cpu >"$TMP/made.out" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -q "making the trace (chapters 01-15)" "$TMP/made.out" && \
    [ "$(tail -n 1 "$TMP/made.out")" = "error: $TMP/nothing: none of the walkthrough's names found (NAME.npy or NN_chapter/NAME.npy; the names: verify --help)" ]; then ok
else no "an empty MY_DIR: the trace is made, then exit 2 (exit $rc): $(tail -n 3 "$TMP/made.out")"; fi
check "the trace was made and kept (chapters 01-15)" test -f "$TR/trace.json" -a -f "$TR/15_logits/logits.npy" -a ! -e "$TR/16_generate"

# plant NAME: the learner's tensors with that mistake, in $TMP/plant/NAME
plant() { $PY "$REF" --write "$M" "$TR" "$TMP/plant/$1" --plant "$1" >"$TMP/write_$1.log" 2>&1 || { no "$REF --write --plant $1: $(tail -n 3 "$TMP/write_$1.log")"; return 1; }; }

# ---- unchanged, and in float32 --------------------------------------------------------------------------------------
plant none
check "unchanged: exit 0" "$VERIFY" "$TMP/plant/none" --trace "$TR"
cp "$TMP/out" "$TMP/none.out"
n_names=$($PY -c "import json; t=json.load(open('$TR/trace.json')); print(len({x['name'] for s in t['steps'] for x in s['tensors']}))")
check "unchanged: every name found, every one agrees" grep -qE "^$n_names found, 0 missing: every tensor found agrees" "$TMP/none.out"
check "unchanged: the complex64 tensors read as pairs" grep -qE "^  q_per_token_as_complex_numbers_rotated +found  \[17, 16, 2\] +ok" "$TMP/none.out"
plant fp32
check "float32 throughout: exit 0 (not a failure)" "$VERIFY" "$TMP/plant/fp32" --trace "$TR"
cp "$TMP/out" "$TMP/fp32.out"
check "float32 throughout: said to be float32 vs bf16 rounding" \
    grep -qE "^  q_per_token +found .*\[fp32-vs-bf16\]: float32 vs bf16 rounding: your values are float32.*not a failure" "$TMP/fp32.out"

# ---- the table: mistake -> the first tensor where it shows, and its diagnosis ---------------------------------------
# verify_says PLANT_DIR STEP NAME TAG [verify flags]: exit 1, "first divergence: STEP NAME", "diagnosis [TAG]"
verify_says() {
    local dir="$1" step="$2" name="$3" tag="$4"; shift 4
    "$VERIFY" "$dir" --trace "$TR" "$@" >"$TMP/v.out" 2>&1; local rc=$?
    local first=$(grep -E "^(first divergence|第一个分歧)" "$TMP/v.out") diag=$(grep -oE "^(diagnosis|诊断) \[[a-z0-9-]+\]" "$TMP/v.out")
    if [ "$rc" -eq 1 ] && [[ "$first" == *" $step $name" ]] && [[ "$diag" == *"[$tag]" ]]; then ok
    else no "$(basename "$dir") $*: want exit 1 at $step $name [$tag], got exit $rc: $first / ${diag:-$(grep -E '^no known' "$TMP/v.out")}"; fi
}
while read -r mistake step name tag; do
    plant "$mistake" && verify_says "$TMP/plant/$mistake" "$step" "$name" "$tag"
done <<'EOF'
hf-permuted            04_query     q_layer0                                  hf-permuted
rotate-half            05_rope      q_per_token_split_into_pairs              rotate-half
rope-positions-from-1  05_rope      freqs_for_each_token                      rope-positions-from-1
no-sqrt-head-dim       07_scores    qk_per_token                              no-sqrt-head-dim
mask-missing           08_mask      mask                                      mask-missing
mask-wrong-side        08_mask      mask                                      mask-wrong-side
softmax-wrong-dim      09_softmax   qk_per_token_after_masking_after_softmax  softmax-wrong-dim
kv-head-modulo         06_key       k_layer0_head0                            kv-head-modulo
rmsnorm-no-eps         03_rmsnorm   rms                                       rmsnorm-no-eps
rmsnorm-no-weight      03_rmsnorm   token_embeddings                          rmsnorm-no-weight
rmsnorm-mean           03_rmsnorm   rms                                       rmsnorm-mean
silu-on-w3             13_ffn       output_after_feedforward                  silu-on-w3
residual-forgotten     13_ffn       embedding_after_edit_normalized           residual-forgotten
EOF
# (residual-forgotten: the embeddings are small next to what the attention adds, as in Llama-3, so embedding_after_edit
# itself differs by rounding only; the norm after it shows the mistake)

# ---- the same mistakes when the learner saved fewer tensors: caught further down --------------------------------------
# fewer PLANT STEP NAME TAG FILES...: the plant's folder without FILES
fewer() {
    local pl="$1" step="$2" name="$3" tag="$4"; shift 4
    rm -rf "$TMP/fewer" && cp -r "$TMP/plant/$pl" "$TMP/fewer" && (cd "$TMP/fewer" && rm -f "$@")
    verify_says "$TMP/fewer" "$step" "$name" "$tag"
}
W="q_layer0.npy q_layer0_head1.npy k_layer0.npy k_layer0_head0.npy"
ROPE_Q="q_per_token_split_into_pairs.npy q_per_token_as_complex_numbers.npy q_per_token_as_complex_numbers_rotated.npy q_per_token_split_into_pairs_rotated.npy"
ROPE_K="k_per_token_split_into_pairs.npy k_per_token_as_complex_numbers.npy k_per_token_split_into_pairs_rotated.npy k_per_token_rotated.npy"
fewer hf-permuted 04_query q_per_token hf-permuted $W
fewer hf-permuted 07_scores qk_per_token hf-permuted $W q_per_token.npy k_per_token.npy $ROPE_Q q_per_token_rotated.npy $ROPE_K
fewer rotate-half 05_rope q_per_token_rotated rotate-half $ROPE_Q
fewer rope-positions-from-1 05_rope q_per_token_rotated rope-positions-from-1 freqs_for_each_token.npy freqs_cis.npy $ROPE_Q
fewer no-sqrt-head-dim 08_mask qk_per_token_after_masking no-sqrt-head-dim qk_per_token.npy
fewer mask-missing 09_softmax qk_per_token_after_masking_after_softmax mask-missing mask.npy qk_per_token_after_masking.npy
fewer mask-wrong-side 10_value qkv_attention mask-wrong-side mask.npy qk_per_token_after_masking.npy qk_per_token_after_masking_after_softmax.npy
fewer softmax-wrong-dim 11_multihead attn_weights_all softmax-wrong-dim qk_per_token_after_masking_after_softmax.npy qkv_attention.npy
fewer kv-head-modulo 06_key k_per_token kv-head-modulo k_layer0.npy k_layer0_head0.npy
fewer kv-head-modulo 11_multihead attn_weights_all kv-head-modulo k_layer0.npy k_layer0_head0.npy k_per_token.npy $ROPE_K \
    qk_per_token.npy qk_per_token_after_masking.npy qk_per_token_after_masking_after_softmax.npy v_layer0.npy \
    v_layer0_head0.npy v_per_token.npy qkv_attention.npy
fewer rmsnorm-no-eps 03_rmsnorm token_embeddings rmsnorm-no-eps rms.npy
fewer rmsnorm-mean 03_rmsnorm token_embeddings rmsnorm-mean rms.npy

# ---- the names, shapes, languages -----------------------------------------------------------------------------------
check "--help lists the names of the trace (layer 0, head 1: kv head 0, head_dim/2 = 16)" $PY - "$VERIFY" "$TR/trace.json" <<'EOF'
import json, subprocess, sys
text = subprocess.run([sys.argv[1], "--help"], capture_output=True, text=True).stdout
listed = []
for line in text.split("\n"):
    parts = line.split()
    if len(parts) > 1 and len(parts[0]) > 3 and parts[0][:2].isdigit() and parts[0][2] == "_":
        listed += [p.format(L=0, h=1, kv=0, half=16) for p in parts[1:]]
t = json.load(open(sys.argv[2]))
names = []
for s in t["steps"]:
    for x in s["tensors"]:
        if x["name"] not in names:
            names.append(x["name"])
print("listed", listed); print("trace ", names)
assert listed == names
EOF
rm -rf "$TMP/shape" && mkdir -p "$TMP/shape"
$PY - "$TMP/plant/none" "$TMP/shape" <<'EOF'
import sys, numpy as np
src, dst = sys.argv[1:]
np.save(dst + "/tokens.npy", np.load(src + "/tokens.npy"))
np.save(dst + "/token_embeddings.npy", np.load(src + "/token_embeddings.npy")[None])  # torch's batch of 1
np.save(dst + "/q_per_token.npy", np.load(src + "/q_per_token.npy").T.copy())
EOF
check "a batch dimension of 1 is fine" bash -c "'$VERIFY' '$TMP/shape' --trace '$TR' | grep -qE '^  token_embeddings +found  \[17, 256\] +ok'"
verify_says "$TMP/shape" 04_query q_per_token transposed
check "Chinese messages" bash -c "'$VERIFY' '$TMP/plant/mask-missing' --trace '$TR' --lang zh | grep -q '^第一个分歧：08_mask mask' && \
    '$VERIFY' '$TMP/plant/mask-missing' --trace '$TR' --lang zh | grep -q '^诊断 \[mask-missing\]: 缺少因果掩码'"

# ---- without --trace: made in a temporary folder, removed at the end -------------------------------------------------
before=$(ls -d /tmp/verify-trace-* 2>/dev/null | wc -l)
check "no --trace: the trace is made for --model --head, and the unchanged tensors agree" \
    "$VERIFY" "$TMP/plant/none" --model "$M" --head 1 --device cpu
check "no --trace: the temporary trace is removed" test "$(ls -d /tmp/verify-trace-* 2>/dev/null | wc -l)" -le "$before"

# ---- bad input -----------------------------------------------------------------------------------------------------
check "--help exits 0" "$VERIFY" --help
check_fails 2 "expected MY_DIR" "no MY_DIR" "$VERIFY"
check_fails 2 "expected a folder of .npy files" "MY_DIR missing" "$VERIFY" "$TMP/no_such_dir" --trace "$TR"
check_fails 2 "unknown option '--bogus'" "a bad flag" "$VERIFY" "$TMP/plant/none" --bogus
check_fails 2 "en or zh" "--lang fr" "$VERIFY" "$TMP/plant/none" --trace "$TR" --lang fr
check_fails 2 "--trace: expected a trace directory" "--trace is a file" "$VERIFY" "$TMP/plant/none" --trace "$TR/trace.json"
check_fails 2 "follows layer 0, head 1" "--head differs from the trace's" "$VERIFY" "$TMP/plant/none" --trace "$TR" --head 3
check_fails 2 "no_model: --model: no such model directory" "--model that does not exist" "$VERIFY" "$TMP/plant/none" \
    --trace "$TR" --model "$TMP/no_model"
mkdir -p "$TMP/broken" && printf 'not a numpy file' >"$TMP/broken/qk_per_token.npy"
check_fails 2 "broken/qk_per_token.npy: magic: expected a .npy file" "a .npy that is not one" "$VERIFY" "$TMP/broken" --trace "$TR"
check_fails 2 "no such model directory|params.json|model" "a trace made for a missing model" "$VERIFY" "$TMP/nothing" \
    --trace "$TMP/trace2" --model "$TMP/no_model" --device cpu
finish
