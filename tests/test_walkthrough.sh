#!/usr/bin/env bash
# test_walkthrough.sh: the walkthrough's chapters (build/steps/00_config .. 15_logits, 19_logit_lens) end to end on
# the CPU.
#
# 1. Every chapter runs with --device cpu into a fresh trace directory, on the tiny model (build/models/tiny) and on a
#    2-layer model of Llama-3-8B's exact width made here (wt-make-model --preset llama3-8b --layers 2, ~3 GB under
#    $TMP, deleted at the end); every chapter must exit 0.
# 2. The 8B-width run prints what the tutorial prints (docs/tutorial-map.md): the params, the FFN size rule, the 17
#    token ids and pieces, every shape, the 64 zero_to_one values and the 64 freqs as the tutorial shows them, the
#    whole 17x17 mask as the tutorial shows it, the prediction line and its decoded text.
# 3. tests/reference/check_trace.py: trace.json valid, every tensor and image listed with the shapes this model calls
#    for, stats and checksums those of the files, every PNG decoded and not blank, the issue's tensor names present.
# 4. tests/reference/walkthrough_reference.py: PyTorch computes the tutorial's math from the same checkpoint and
#    compares every .npy (op by op from the chapter's own inputs, and the whole chain from the checkpoint alone);
#    next_token is torch's argmax. Also on another prompt at --layer 2 --head 3, and at --head 5 (kv head 1) on 8B.
# 5. The command line: --help exits 0, a bad flag, --layer 99 and a missing model exit 2 with one line and leave no
#    trace behind; --lang zh runs and writes the same numbers.
# 6. The checkers themselves fail on a tampered tensor, an unknown .npy, a missing or broken image.
# The sub-checkers' own "N passed, N failed" counts are added to this script's. Needs `make all models`.
# expect: 100 s
source tests/lib.sh
T0=$(date +%s)
STEPS=(00_config 01_tokenize 02_embed 03_rmsnorm 04_query 05_rope 06_key 07_scores 08_mask 09_softmax 10_value
       11_multihead 12_output 13_ffn 14_layers 15_logits 19_logit_lens)
TINY=build/models/tiny
TOKENIZER=build/models/tokenizer.model
PROMPT="the answer to the ultimate question of life, the universe, and everything is "
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

for s in "${STEPS[@]}"; do
    [ -x "build/steps/$s" ] || { echo "build/steps/$s is missing: run 'make all models' first" >&2; no "build/steps/$s exists"; finish; exit; }
done
for f in "$TINY/params.json" "$TOKENIZER" build/bin/wt-make-model build/bin/wt-tokenize; do
    [ -e "$f" ] || { echo "$f is missing: run 'make all models' first" >&2; no "$f exists"; finish; exit; }
done

elapsed() { echo "  [$(( $(date +%s) - T0 )) s] $*"; }

# run_step LOG CMD...: runs a chapter, its stdout+stderr into LOG; on failure shows the end of LOG
run_step() { local log="$1"; shift; "$@" >"$log" 2>&1 || { echo "exit $?"; tail -n 15 "$log"; return 1; }; }

# run_all MODEL OUT LOGS [flags...]: every chapter, each one a check
run_all() {
    local model="$1" out="$2" logs="$3"; shift 3
    mkdir -p "$logs"
    for s in "${STEPS[@]}"; do
        check "$s exits 0 on $model" run_step "$logs/$s.log" "build/steps/$s" --model "$model" --out "$out" --device cpu "$@"
    done
}

# shape LOG NAME '[17, 64, 2]': the chapter printed "NAME  [17, 64, 2]  dtype"
shape() {
    local re=$(printf '%s' "$3" | sed 's/[][]/\\&/g')
    check "$(basename "$1" .log) prints $2 $3" grep -qE "^$2 +$re( |\$)" "$1"
}
has() { check "$(basename "$1" .log) prints: $2" grep -qF -- "$2" "$1"; }

# the lines of LOG from the one matching START to the one ending in "])"
block() { awk -v start="$2" 'index($0, start) == 1 { on = 1 } on { print } on && /\]\)[ ]*$/ { exit }' "$1"; }

# ======================================= the tiny model ==============================================================
elapsed "tiny model: every chapter"
run_all "$TINY" "$TMP/tiny" "$TMP/tiny_logs"
sub_checker "$TMP/tiny_trace.log" $PY tests/reference/check_trace.py "$TMP/tiny" "$TINY" "${STEPS[@]}"

# another prompt (non-ASCII), another layer and head: chapters 01 and 03-14 (14 gives the input of layer 2)
OTHER="Hello, world! 你好 — 42?"
for s in 01_tokenize "${STEPS[@]:3:12}"; do
    check "$s --layer 2 --head 3 exits 0" run_step "$TMP/l2_$s.log" "build/steps/$s" --model "$TINY" --out "$TMP/tiny_l2" \
        --device cpu --layer 2 --head 3 --prompt "$OTHER"
done
check "tokens of another prompt = the Python tokenizer's" bash -c '
    want=$('"$PY"' tests/reference/tiktoken_ref.py '"$TOKENIZER"' --encode "$1") || exit 1
    got=$('"$PY"' -c "import numpy, sys; print(*numpy.load(sys.argv[1]).tolist())" "$2/01_tokenize/tokens.npy")
    echo "want $want"; echo "got  $got"; [ "$want" = "$got" ]' _ "$OTHER" "$TMP/tiny_l2"
check "--layer 2 --head 3 writes q_layer2_head3.npy" test -f "$TMP/tiny_l2/04_query/q_layer2_head3.npy"
check "--layer 2 --head 3 writes layer_2_embedding.npy" test -f "$TMP/tiny_l2/13_ffn/layer_2_embedding.npy"

# --lang zh: runs, speaks Chinese, writes the same numbers
for s in 05_rope 09_softmax; do
    check "$s --lang zh exits 0" run_step "$TMP/zh_$s.log" "build/steps/$s" --model "$TINY" --out "$TMP/zh" --device cpu --lang zh
done
has "$TMP/zh_05_rope.log" "旋转频率"
check "--lang zh writes the same q_per_token_rotated" cmp "$TMP/zh/05_rope/q_per_token_rotated.npy" "$TMP/tiny/05_rope/q_per_token_rotated.npy"
check "--lang zh writes the same attention weights" cmp "$TMP/zh/09_softmax/qk_per_token_after_masking_after_softmax.npy" \
    "$TMP/tiny/09_softmax/qk_per_token_after_masking_after_softmax.npy"

elapsed "tiny model: PyTorch reference"
sub_checker "$TMP/tiny_ref.log" $PY tests/reference/walkthrough_reference.py "$TINY" "$TMP/tiny" "$TMP/tiny_l2"

# ======================================= the trained demo model: the tutorial's answer ================================
# `make models` unpacks it (models/README.md); trained to answer the tutorial's prompt with 2983 = "42".
elapsed "trained demo model: the prediction"
TRAINED=build/models/llama3-tiny-trained
TRAINED_STEPS=(01_tokenize 02_embed 14_layers 15_logits 19_logit_lens)
if [ -f "$TRAINED/params.json" ]; then
    for s in "${TRAINED_STEPS[@]}"; do
        check "$s exits 0 on $TRAINED" run_step "$TMP/tr_$s.log" "build/steps/$s" --model "$TRAINED" --out "$TMP/trained" --device cpu
    done
    has "$TMP/tr_15_logits.log" "tensor(2983)"
    check "15_logits decodes the prediction as '42'" grep -qx "'42'" "$TMP/tr_15_logits.log"
    has "$TMP/tr_19_logit_lens.log" "the final prediction 2983 '42' at the last position, after each layer:"
    sub_checker "$TMP/trained_trace.log" $PY tests/reference/check_trace.py "$TMP/trained" "$TRAINED" "${TRAINED_STEPS[@]}"
    sub_checker "$TMP/trained_ref.log" $PY tests/reference/walkthrough_reference.py "$TRAINED" "$TMP/trained"
else
    no "$TRAINED is missing: run 'make models'"
fi

# ======================================= the command line ============================================================
elapsed "command line"
# error_case CODE REGEX WHAT CMD...: exits CODE, exactly one line on stderr matching REGEX, nothing on stdout
error_case() {
    local code="$1" re="$2" what="$3"; shift 3
    "$@" >"$TMP/e_out" 2>"$TMP/e_err"; local rc=$?
    if [ "$rc" -eq "$code" ] && [ "$(wc -l <"$TMP/e_err")" -eq 1 ] && grep -qE -- "$re" "$TMP/e_err" && [ ! -s "$TMP/e_out" ]; then ok
    else no "$what: exit $rc (want $code), stderr: $(head -c 300 "$TMP/e_err"), stdout: $(head -c 100 "$TMP/e_out")"; fi
}
for s in "${STEPS[@]}"; do
    check "$s --help exits 0 with a usage" bash -c 'set -o pipefail; "$1" --help | grep -q "^usage: $2 "' _ "build/steps/$s" "$s"
    error_case 2 "bogus" "$s --bogus exits 2" "build/steps/$s" --bogus --model "$TINY" --out "$TMP/bad" --device cpu
    error_case 2 "layer 99" "$s --layer 99 exits 2" "build/steps/$s" --layer 99 --model "$TINY" --out "$TMP/bad" --device cpu
    error_case 2 "no such model directory" "$s with a missing model exits 2" \
        "build/steps/$s" --model "$TMP/no_such_model" --out "$TMP/bad" --device cpu
done
error_case 2 "--device" "--device gpu exits 2" build/steps/05_rope --device gpu --model "$TINY" --out "$TMP/bad"
error_case 2 "--head" "--head -1 exits 2" build/steps/05_rope --head -1 --model "$TINY" --out "$TMP/bad" --device cpu
check "the failed runs left no trace behind" bash -c '! test -e "$1/trace.json" && [ -z "$(find "$1" -name "*.npy" 2>/dev/null)" ]' _ "$TMP/bad"

# ======================================= the checkers fail when they must ============================================
elapsed "the checkers on broken traces"
cp -r "$TMP/tiny" "$TMP/broken"
$PY - "$TMP/broken/12_output/embedding_delta.npy" <<'PY'
import sys, numpy as np
a = np.load(sys.argv[1]); i = np.argmax(np.abs(a)); a.flat[i] *= 1.03125  # 4 bf16 ulps off: beyond the tolerance
np.save(sys.argv[1], a)
PY
check_fails 1 "" "the reference fails on a tampered embedding_delta.npy" \
    bash -c '"$@" | grep -E "^FAIL 12_output/embedding_delta.npy" >&2; exit ${PIPESTATUS[0]}' _ $PY tests/reference/walkthrough_reference.py "$TINY" "$TMP/broken"
cp -r "$TMP/tiny" "$TMP/broken2"
cp "$TMP/tiny/08_mask/mask.npy" "$TMP/broken2/08_mask/extra_tensor.npy"
check_fails 1 "" "the reference fails on an .npy it does not know" \
    bash -c '"$@" | grep -E "^FAIL 08_mask/extra_tensor.npy.*does not know" >&2; exit ${PIPESTATUS[0]}' _ $PY tests/reference/walkthrough_reference.py "$TINY" "$TMP/broken2"
rm "$TMP/broken2/08_mask/extra_tensor.npy"
head -c 3000 "$TMP/tiny/07_scores/scores.png" >"$TMP/broken2/07_scores/scores.png"
rm "$TMP/broken2/05_rope/freqs_cis.png"
check_fails 1 "" "check_trace fails on a cut PNG and a missing one" \
    bash -c '"$@" | grep -cE "^FAIL 0(7_scores/scores.png: truncated|5_rope/freqs_cis.png)" >&2; exit ${PIPESTATUS[0]}' _ $PY tests/reference/check_trace.py "$TMP/broken2" "$TINY" "${STEPS[@]}"
rm -rf "$TMP/broken" "$TMP/broken2"

# ======================================= the 8B-width model ==========================================================
M8B="$TMP/m8b"
elapsed "8B-width model: writing it"
t_make=$(date +%s)
check "wt-make-model --preset llama3-8b --layers 2" run_step "$TMP/make8b.log" build/bin/wt-make-model --preset llama3-8b \
    --layers 2 --seed 3 --tokenizer "$TOKENIZER" --out "$M8B" --quiet
echo "  wt-make-model: $(( $(date +%s) - t_make )) s for $(du -sh "$M8B" | cut -f1)"
elapsed "8B-width model: every chapter"
L8="$TMP/t8_logs"
run_all "$M8B" "$TMP/t8" "$L8"
# the same head-following chapters for query head 5, which reads kv head 1
for s in 01_tokenize 04_query 06_key 10_value; do
    check "$s --head 5 exits 0 (8B width)" run_step "$TMP/h5_$s.log" "build/steps/$s" --model "$M8B" --out "$TMP/t8h5" \
        --device cpu --head 5
done
has "$TMP/h5_06_key.log" "query head 5 reads kv head 1 = 5 // 4"
shape "$TMP/h5_06_key.log" k_layer0_head1 "[128, 4096]"
shape "$TMP/h5_10_value.log" v_layer0_head1 "[128, 4096]"

elapsed "8B-width model: what the chapters print"
# 00: the params and the values derived from them
has "$L8/00_config.log" "{'dim': 4096, 'n_layers': 2, 'n_heads': 32, 'n_kv_heads': 8, 'vocab_size': 128256, 'multiple_of': 1024, 'ffn_dim_multiplier': 1.3, 'norm_eps': 1e-05, 'rope_theta': 500000.0}"
has "$L8/00_config.log" "head_dim = dim / n_heads = 4096 / 32 = 128"
has "$L8/00_config.log" "n_heads / n_kv_heads = 32 / 8 = 4"
has "$L8/00_config.log" "int(2 * 16384 / 3) = 10922"
has "$L8/00_config.log" "int(1.3 * 10922) = 14198"
has "$L8/00_config.log" "round up to a multiple of 1024: 14336"
has "$L8/00_config.log" '"tok_embeddings.weight",'
has "$L8/00_config.log" '"layers.0.attention.wq.weight",'
has "$L8/00_config.log" '"layers.1.attention.wq.weight",'
# 00: the map's shapes (formulas of the config, common/draw/diagram.c) are the checkpoint's, as wt-inspect reads them
sub_checker "$TMP/map8b.log" $PY tests/reference/check_map.py "$L8/00_config.log" "$M8B" --trace "$TMP/t8"
has "$L8/00_config.log" "layers.0.attention.wk.weight [1024, 4096] bf16"
has "$L8/04_query.log" "where: Transformer block × 2 › Multi-head attention (GQA) › Wq"
# 01: the tutorial's tokens and pieces, exactly as it prints them
has "$L8/01_tokenize.log" "tokens = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220]"
has "$L8/01_tokenize.log" "prompt_split_as_tokens = ['<|begin_of_text|>', 'the', ' answer', ' to', ' the', ' ultimate', ' question', ' of', ' life', ',', ' the', ' universe', ',', ' and', ' everything', ' is', ' ']"
check "token 2983 decodes to 42" bash -c '[ "$(build/bin/wt-tokenize --tokenizer "$1" --decode 2983)" = 42 ]' _ "$TOKENIZER"
# 02-13: every shape the tutorial prints (and the FFN weights it does not)
shape "$L8/02_embed.log" token_embeddings_unnormalized "[17, 4096]"
shape "$L8/03_rmsnorm.log" token_embeddings "[17, 4096]"
has "$L8/04_query.log" "[4096, 4096] [1024, 4096] [1024, 4096] [4096, 4096]"
shape "$L8/04_query.log" q_layer0 "[32, 128, 4096]"
shape "$L8/04_query.log" q_layer0_head0 "[128, 4096]"
shape "$L8/04_query.log" q_per_token "[17, 128]"
shape "$L8/05_rope.log" q_per_token_split_into_pairs "[17, 64, 2]"
shape "$L8/05_rope.log" zero_to_one_split_into_64_parts "[64]"
shape "$L8/05_rope.log" freqs_for_each_token "[17, 64]"
shape "$L8/05_rope.log" freqs_cis "[17, 64]"
shape "$L8/05_rope.log" q_per_token_as_complex_numbers "[17, 64]"
shape "$L8/05_rope.log" q_per_token_as_complex_numbers_rotated "[17, 64]"
shape "$L8/05_rope.log" q_per_token_split_into_pairs_rotated "[17, 64, 2]"
shape "$L8/05_rope.log" q_per_token_rotated "[17, 128]"
shape "$L8/06_key.log" k_layer0 "[8, 128, 4096]"
shape "$L8/06_key.log" k_layer0_head0 "[128, 4096]"
shape "$L8/06_key.log" k_per_token "[17, 128]"
shape "$L8/06_key.log" k_per_token_split_into_pairs "[17, 64, 2]"
shape "$L8/06_key.log" k_per_token_as_complex_numbers "[17, 64]"
shape "$L8/06_key.log" k_per_token_split_into_pairs_rotated "[17, 64, 2]"
shape "$L8/06_key.log" k_per_token_rotated "[17, 128]"
shape "$L8/07_scores.log" qk_per_token "[17, 17]"
shape "$L8/08_mask.log" mask "[17, 17]"
shape "$L8/08_mask.log" qk_per_token_after_masking "[17, 17]"
shape "$L8/09_softmax.log" qk_per_token_after_masking_after_softmax "[17, 17]"
shape "$L8/10_value.log" v_layer0 "[8, 128, 4096]"
shape "$L8/10_value.log" v_layer0_head0 "[128, 4096]"
shape "$L8/10_value.log" v_per_token "[17, 128]"
shape "$L8/10_value.log" qkv_attention "[17, 128]"
has "$L8/11_multihead.log" "len(qkv_attention_store) = 32"
has "$L8/11_multihead.log" "head  4 -> kv head 1"
shape "$L8/11_multihead.log" attn_weights_all "[32, 17, 17]"
shape "$L8/11_multihead.log" stacked_qkv_attention "[17, 4096]"
shape "$L8/12_output.log" w_layer0 "[4096, 4096]"
shape "$L8/12_output.log" embedding_delta "[17, 4096]"
shape "$L8/12_output.log" embedding_after_edit "[17, 4096]"
shape "$L8/13_ffn.log" embedding_after_edit_normalized "[17, 4096]"
shape "$L8/13_ffn.log" "layers\\.0\\.feed_forward\\.w1\\.weight" "[14336, 4096]"
shape "$L8/13_ffn.log" "layers\\.0\\.feed_forward\\.w2\\.weight" "[4096, 14336]"
shape "$L8/13_ffn.log" "layers\\.0\\.feed_forward\\.w3\\.weight" "[14336, 4096]"
shape "$L8/13_ffn.log" output_after_feedforward "[17, 4096]"
shape "$L8/13_ffn.log" layer_0_embedding "[17, 4096]"
shape "$L8/14_layers.log" final_embedding "[17, 4096]"
shape "$L8/15_logits.log" final_embedding "[17, 4096]"
shape "$L8/15_logits.log" "output\\.weight" "[128256, 4096]"
shape "$L8/15_logits.log" logits "[128256]"
shape "$L8/19_logit_lens.log" layer_outputs_normalized "[2, 17, 4096]"
shape "$L8/19_logit_lens.log" logit_lens_top_ids "[2, 17, 10]"
shape "$L8/19_logit_lens.log" logit_lens_last_token_logits "[2, 128256]"
# 15: the prediction line is next_token.npy, and the decoded line is the tokenizer's text of it
next=$($PY -c "import numpy, sys; print(int(numpy.load(sys.argv[1])[0]))" "$TMP/t8/15_logits/next_token.npy" 2>/dev/null)
has "$L8/15_logits.log" "tensor(${next:-?})"
check "15_logits prints the decoded next token" bash -c 'grep -qxF -- "'"'"'$(build/bin/wt-tokenize --tokenizer "$1" --decode "$2")'"'"'" "$3"' \
    _ "$TOKENIZER" "${next:-0}" "$L8/15_logits.log"

# the 64 values the tutorial prints for zero_to_one_split_into_64_parts and for freqs (the tutorial, torch's print)
TUTORIAL_PARTS="0.0000 0.0156 0.0312 0.0469 0.0625 0.0781 0.0938 0.1094 0.1250 0.1406 0.1562 0.1719 0.1875 0.2031 0.2188
0.2344 0.2500 0.2656 0.2812 0.2969 0.3125 0.3281 0.3438 0.3594 0.3750 0.3906 0.4062 0.4219 0.4375 0.4531 0.4688 0.4844
0.5000 0.5156 0.5312 0.5469 0.5625 0.5781 0.5938 0.6094 0.6250 0.6406 0.6562 0.6719 0.6875 0.7031 0.7188 0.7344 0.7500
0.7656 0.7812 0.7969 0.8125 0.8281 0.8438 0.8594 0.8750 0.8906 0.9062 0.9219 0.9375 0.9531 0.9688 0.9844"
TUTORIAL_FREQS="1.0000e+00 8.1462e-01 6.6360e-01 5.4058e-01 4.4037e-01 3.5873e-01 2.9223e-01 2.3805e-01 1.9392e-01
1.5797e-01 1.2869e-01 1.0483e-01 8.5397e-02 6.9566e-02 5.6670e-02 4.6164e-02 3.7606e-02 3.0635e-02 2.4955e-02 2.0329e-02
1.6560e-02 1.3490e-02 1.0990e-02 8.9523e-03 7.2927e-03 5.9407e-03 4.8394e-03 3.9423e-03 3.2114e-03 2.6161e-03 2.1311e-03
1.7360e-03 1.4142e-03 1.1520e-03 9.3847e-04 7.6450e-04 6.2277e-04 5.0732e-04 4.1327e-04 3.3666e-04 2.7425e-04 2.2341e-04
1.8199e-04 1.4825e-04 1.2077e-04 9.8381e-05 8.0143e-05 6.5286e-05 5.3183e-05 4.3324e-05 3.5292e-05 2.8750e-05 2.3420e-05
1.9078e-05 1.5542e-05 1.2660e-05 1.0313e-05 8.4015e-06 6.8440e-06 5.5752e-06 4.5417e-06 3.6997e-06 3.0139e-06 2.4551e-06"
printed() { block "$1" "$2" | sed "s/^$2//" | grep -oE -- "$3" | tr '\n' ' ' | sed 's/ $//'; }
check "05_rope prints the tutorial's 64 zero_to_one values" \
    test "$(printed "$L8/05_rope.log" "zero_to_one_split_into_64_parts = tensor(" '[0-9]\.[0-9]{4}')" = "$(echo $TUTORIAL_PARTS)"
check "05_rope prints the tutorial's 64 freqs" \
    test "$(printed "$L8/05_rope.log" "freqs = tensor(" '[0-9]\.[0-9]{4}e[-+][0-9]{2}')" = "$(echo $TUTORIAL_FREQS)"
# the whole mask, as the tutorial prints it
cat >"$TMP/tutorial_mask.txt" <<'EOF'
tensor([[0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf, -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., -inf],
        [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.]])
EOF
block "$L8/08_mask.log" "tensor([[" >"$TMP/printed_mask.txt"
check "08_mask prints the whole mask as the tutorial does" diff "$TMP/tutorial_mask.txt" "$TMP/printed_mask.txt"
# the printed lines are in trace.json too
check "trace.json holds the printed lines (tokens, mask, freqs)" $PY - "$TMP/t8/trace.json" "$TMP/tutorial_mask.txt" <<'PY'
import json, sys
steps = {s["id"]: s["lines"] for s in json.load(open(sys.argv[1]))["steps"]}
assert any(l.startswith("tokens = [128000, 1820, 4320,") for l in steps["01_tokenize"]), "tokens line"
mask = open(sys.argv[2]).read().splitlines()
lines = steps["08_mask"]
i = lines.index(mask[0])
assert lines[i:i + len(mask)] == mask, "mask lines"
assert any(l.startswith("freqs = tensor([1.0000e+00, 8.1462e-01") for l in steps["05_rope"]), "freqs line"
PY

elapsed "8B-width model: trace.json, images, PyTorch reference"
sub_checker "$TMP/t8_trace.log" $PY tests/reference/check_trace.py "$TMP/t8" "$M8B" "${STEPS[@]}"
sub_checker "$TMP/t8_ref.log" $PY tests/reference/walkthrough_reference.py "$M8B" "$TMP/t8" "$TMP/t8h5"
rm -rf "$M8B"
elapsed "done"
finish
