#!/usr/bin/env bash
# tests/test_hf.sh: HF safetensors <-> Meta layout, end to end, against PyTorch (tests/reference/hf_cases.py).
#
#  1. A tiny random Llama is made by torch in Meta's layout; Python converts it to HF the reference way (permute
#     of convert_llama_weights_to_hf.py, safetensors written by hand, sharded, with inv_freq buffers). Our reader
#     must un-permute it: wt-inspect --dump of the HF directory equals the Meta tensors bit for bit, and
#     wt-convert hf-to-meta writes a .pth that torch.load reads back identical.
#  2. wt-convert meta-to-hf on the Meta directory: the safetensors file, config.json and generation_config.json are
#     what transformers expects (checked field by field and bit by bit against the Python permute); then
#     hf-to-meta of that gives the original tensors back (round trip), and Meta-RoPE on the Meta weights equals HF
#     rotate_half RoPE on the weights our tool wrote (formats.md §5).
#  3. Variants: tied embeddings, f32 weights, Llama 3.1 scaled RoPE, a single .safetensors file.
#  4. Bad input exits 2 with one line naming the problem, and leaves no params.json behind.
# expect: 36 s
source "$(dirname "$0")/lib.sh"
WT=build/bin/wt-convert
INSPECT=build/bin/wt-inspect
REF="$PY tests/reference/hf_cases.py"
if [ ! -x "$WT" ]; then no "build/bin/wt-convert is not built (make build/bin/wt-convert)"; finish; exit; fi
M=$TMP/meta
$REF make-meta "$M" --seed 7 || { no "hf_cases.py make-meta"; finish; exit; }

# ---- 1. the Python reference conversion, read by us ------------------------------------------------------------
check "python meta -> HF (2 shards, inv_freq)" $REF meta-to-hf-py "$M" "$TMP/hf_py" --shards 2 --inv-freq
check "hf-to-meta reads the sharded HF directory" $WT hf-to-meta "$TMP/hf_py" "$TMP/back_py"
check "hf-to-meta output == Meta original (torch.load, bit for bit, same order)" $REF compare-meta "$M" "$TMP/back_py"
check "hf-to-meta writes no tokenizer.model when the HF dir has none" test ! -e "$TMP/back_py/tokenizer.model"
if [ -x "$INSPECT" ]; then
    mkdir -p "$TMP/npy"
    args=()
    while read -r name; do args+=(--dump "$name" "$TMP/npy/$name.npy"); done < <($REF names "$M")
    check "wt-inspect --dump of the HF directory" $INSPECT "$TMP/hf_py" "${args[@]}"
    check "dumped (un-permuted) tensors == Meta's bit for bit" $REF compare-npy "$M" "$TMP/npy"
    check "wt-inspect lists Meta names for the HF directory" bash -c "$INSPECT '$TMP/hf_py' | grep -q 'layers.1.attention.wk.weight'"
    check "wt-inspect of the HF dir shows no inv_freq" bash -c "! $INSPECT '$TMP/hf_py' | grep -q inv_freq"
else
    no "build/bin/wt-inspect is not built: the --dump comparison did not run"
fi

# ---- 2. our Meta -> HF ------------------------------------------------------------------------------------------
check "meta-to-hf" $WT meta-to-hf "$M" "$TMP/hf_ours"
check "model.safetensors, config.json, generation_config.json as transformers expects" $REF check-hf "$TMP/hf_ours" "$M"
check "no .partial files left" bash -c "! find '$TMP/hf_ours' -name '*.partial' | grep -q ."
check "round trip: hf-to-meta of our HF output" $WT hf-to-meta "$TMP/hf_ours" "$TMP/back_ours"
check "round trip gives the original tensors and params" $REF compare-meta "$M" "$TMP/back_ours"
check "round trip keeps the tokenizer (original/tokenizer.model)" cmp "$M/tokenizer.model" "$TMP/back_ours/tokenizer.model"
check "Meta-RoPE(Meta weights) == HF-RoPE(our HF weights)" $REF rope-identity "$TMP/hf_ours" "$M"
check "meta-to-hf twice gives the same bytes" bash -c "$WT meta-to-hf '$M' '$TMP/hf_ours2' 2>/dev/null && cmp '$TMP/hf_ours/model.safetensors' '$TMP/hf_ours2/model.safetensors' && cmp '$TMP/hf_ours/config.json' '$TMP/hf_ours2/config.json'"

# transformers itself, where it is installed (the GPU machine): HF_PY names a python with torch + transformers.
HF_PY="${HF_PY:-$PY}"
if "$HF_PY" -c "import torch, transformers" 2>/dev/null; then
    check "transformers LlamaForCausalLM on our HF output == Meta forward" "$HF_PY" tests/reference/hf_cases.py transformers-check "$TMP/hf_ours" "$M"
    $REF make-meta "$TMP/meta_31t" --seed 9 --scaled-rope && $WT meta-to-hf "$TMP/meta_31t" "$TMP/hf_31t" 2>/dev/null
    check "transformers with llama3 rope_scaling == Meta forward with apply_scaling" "$HF_PY" tests/reference/hf_cases.py transformers-check "$TMP/hf_31t" "$TMP/meta_31t"
else
    skip "$HF_PY has no transformers: the from_pretrained checks (set HF_PY to a python that has it; Debian has no package)"
fi

# ---- 3. variants ------------------------------------------------------------------------------------------------
$REF make-meta "$TMP/meta_tied" --seed 8 --tied
check "tied embeddings: python HF without lm_head" $REF meta-to-hf-py "$TMP/meta_tied" "$TMP/hf_tied" --tied
check "tied embeddings: hf-to-meta" $WT hf-to-meta "$TMP/hf_tied" "$TMP/back_tied"
check "tied embeddings: output.weight == the embedding" $REF compare-meta "$TMP/meta_tied" "$TMP/back_tied"
check "f32 weights: python HF in float32" $REF meta-to-hf-py "$M" "$TMP/hf_f32" --dtype f32
check "f32 weights: hf-to-meta keeps f32" $WT hf-to-meta "$TMP/hf_f32" "$TMP/back_f32"
check "f32 weights: == Meta upcast, bit for bit" $REF compare-meta "$M" "$TMP/back_f32" --as-f32
$REF make-meta "$TMP/meta_31" --seed 9 --scaled-rope
check "scaled RoPE: meta-to-hf" $WT meta-to-hf "$TMP/meta_31" "$TMP/hf_31"
check "scaled RoPE: rope_scaling llama3 and 131072 positions in config.json" $REF check-hf "$TMP/hf_31" "$TMP/meta_31"
check "scaled RoPE: hf-to-meta" $WT hf-to-meta "$TMP/hf_31" "$TMP/back_31"
check "scaled RoPE: use_scaled_rope survives the round trip" $REF compare-meta "$TMP/meta_31" "$TMP/back_31"
if [ -x "$INSPECT" ]; then
    check "a lone .safetensors file lists its names as stored" bash -c "$INSPECT '$TMP/hf_ours/model.safetensors' --no-check | grep -q 'model.layers.0.self_attn.q_proj.weight'"
fi

# ---- tokenizer.json -> tokenizer.model --------------------------------------------------------------------------
$REF make-tokenizer "$TMP/tokenizer.json" "$TMP/tokenizer.expected"
check "wt-convert tokenizer" $WT tokenizer "$TMP/tokenizer.json" "$TMP/tokenizer.model"
check "tokenizer.model == the formats.md §4 conversion" cmp "$TMP/tokenizer.model" "$TMP/tokenizer.expected"
mkdir -p "$TMP/hf_tok" && cp "$TMP/hf_py"/* "$TMP/hf_tok/" && cp "$TMP/tokenizer.json" "$TMP/hf_tok/"
check "hf-to-meta converts tokenizer.json beside the weights" $WT hf-to-meta "$TMP/hf_tok" "$TMP/back_tok"
check "the converted tokenizer.model is the expected one" cmp "$TMP/back_tok/tokenizer.model" "$TMP/tokenizer.expected"

# ---- 4. bad input -----------------------------------------------------------------------------------------------
bad() {  # KIND PATTERN
    $REF make-bad "$1" "$M" "$TMP/bad_$1"
    check_fails 2 "$2" "hf-to-meta rejects $1" $WT hf-to-meta "$TMP/bad_$1" "$TMP/out_$1"
    check "no params.json after a rejected $1" test ! -e "$TMP/out_$1/params.json"
}
bad overlap "overlap"
bad bad-dtype 'dtype "F8_E4M3" is valid safetensors but not supported'
bad unknown-dtype 'unknown dtype "BF17"'
bad missing-config-key "config.json: num_hidden_layers: missing"
bad q-shape "q_proj.weight\": shape \[48, 64\], expected \[64, 64\]"
bad truncated "truncated"
bad no-norm "norm.weight"
bad index-names-missing-tensor "listed in model.safetensors.index.json but not in this file"
check_fails 2 "config.json: missing" "hf-to-meta of a directory without config.json" $WT hf-to-meta "$M" "$TMP/out_nocfg"
check_fails 2 "expected a Meta checkpoint" "meta-to-hf of an HF directory" $WT meta-to-hf "$TMP/hf_ours" "$TMP/out_wrongkind"
check_fails 2 "unknown option" "unknown flag" $WT hf-to-meta --fast "$TMP/hf_ours" "$TMP/x"
check_fails 2 "unknown command" "unknown command" $WT frobnicate
check "--help exits 0" $WT --help
for sub in tokenizer hf-to-meta meta-to-hf; do check "$sub --help exits 0" $WT $sub --help; done
finish
