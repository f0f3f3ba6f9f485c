#!/usr/bin/env bash
# test_bad_input_meta.sh: every bad Meta checkpoint makes wt-inspect exit 2 with one line naming the file.
#
# Truncated and corrupt zips, the legacy and TorchScript formats, pickles that would run a shell command (and proof
# that nothing ran, while torch.load of the same file does run it), storages smaller than their tensors, a
# big-endian archive, shapes that disagree with params.json, and params.json files with missing or mistyped keys.
# expect: 5 s
source tests/lib.sh
INSPECT=${INSPECT:-build/bin/wt-inspect}  # INSPECT=other/binary to test another build
D=$TMP/cases
check "torch.save writes the cases" $PY tests/reference/torch_save_cases.py write "$D"

# Truncated zips: the end records are gone, or the central directory is cut.
size=$(stat -c %s "$D/cases.pth")
for n in 10 1000 $((size / 2)) $((size - 100)) $((size - 1)); do
    head -c "$n" "$D/cases.pth" >"$TMP/trunc_$n.pth"
    check_fails 2 "$TMP/trunc_$n.pth: zip: " "truncated to $n bytes" "$INSPECT" "$TMP/trunc_$n.pth"
done
$PY tests/reference/torch_save_cases.py corrupt-cd "$D/cases.pth" "$TMP/corrupt_cd.pth"
check_fails 2 "$TMP/corrupt_cd.pth: zip: central directory" "corrupt central directory" "$INSPECT" "$TMP/corrupt_cd.pth"
printf 'PK\003\004 but nothing else' >"$TMP/stub.pth"
check_fails 2 "$TMP/stub.pth: zip: no end-of-central-directory" "a zip signature and nothing else" "$INSPECT" "$TMP/stub.pth"

# Formats that are not a torch.save zip of tensors.
check_fails 2 "$D/legacy.pth: a legacy torch.save file" "legacy (pre-1.6) file" "$INSPECT" "$D/legacy.pth"
check_fails 2 "$D/torchscript.pt: a TorchScript archive" "TorchScript archive" "$INSPECT" "$D/torchscript.pt"
echo "just text" >"$TMP/text.pth"
check_fails 2 "$TMP/text.pth: not a checkpoint" "a text file" "$INSPECT" "$TMP/text.pth"
check_fails 2 "$TMP/absent: no such file" "a path that does not exist" "$INSPECT" "$TMP/absent"

# Pickles that call os.system / eval: refused by name, and nothing ran.
for tag in os_system eval posix_p4; do
    check_fails 2 "$D/evil_$tag.pth: archive/data.pkl: .*forbidden global (posix\.system|__builtin__\.eval)" "evil_$tag: forbidden global" \
        "$INSPECT" "$D/evil_$tag.pth"
    check "evil_$tag: the command did not run" test ! -e "$D/pwned_$tag"
done
# The same file given to torch.load (which runs pickles) does create the marker: the test above could fail.
$PY -c "import torch, sys; torch.load(sys.argv[1])" "$D/evil_os_system.pth" >/dev/null 2>&1
check "evil_os_system: torch.load really runs it" test -e "$D/pwned_os_system"

# Storages and their tensors.
check_fails 2 "$D/storage_small.pth: .*tensor reaches element 99 but its storage '0' holds 50 elements" "a view larger than its storage" \
    "$INSPECT" "$D/storage_small.pth"
check_fails 2 "$D/entry_short.pth: tensor w: storage archive/data/0 has 200 bytes, but the pickle says 100 elements" \
    "a storage entry shorter than the pickle says" "$INSPECT" "$D/entry_short.pth"
check_fails 2 "$D/big_endian.pth: byteorder: .*big-endian" "byteorder big" "$INSPECT" "$D/big_endian.pth"

# Shapes against params.json.
check_fails 2 "$D/meta_badshape: layers.1.attention.wk.weight: shape \[8, 64\], but the config implies \[32, 64\]" "wk of the wrong shape" \
    "$INSPECT" "$D/meta_badshape"
with_params() {  # DIR PARAMS_JSON: a copy of meta1 with another params.json
    rm -rf "$1"; cp -r "$D/meta1" "$1"; printf '%s' "$2" >"$1/params.json"
}
P='"n_heads": 4, "n_kv_heads": 2, "vocab_size": 256, "multiple_of": 32, "ffn_dim_multiplier": 1.3'
with_params "$TMP/m_missing" "{\"n_layers\": 2, $P}"
check_fails 2 "$TMP/m_missing/params.json: dim: required key is missing" "params.json without dim" "$INSPECT" "$TMP/m_missing"
with_params "$TMP/m_string" "{\"dim\": \"64\", \"n_layers\": 2, $P}"
check_fails 2 "$TMP/m_string/params.json: dim: expected a positive integer, found a JSON string" "params.json with \"dim\": \"64\"" \
    "$INSPECT" "$TMP/m_string"
with_params "$TMP/m_real" "{\"dim\": 64, \"n_layers\": 2.0, $P}"
check_fails 2 "$TMP/m_real/params.json: n_layers: expected a positive integer, found a JSON real" "params.json with n_layers 2.0" \
    "$INSPECT" "$TMP/m_real"
with_params "$TMP/m_json" "{\"dim\": 64, \"n_layers\": 2, $P"
check_fails 2 "$TMP/m_json/params.json: not valid JSON" "params.json cut short" "$INSPECT" "$TMP/m_json"
with_params "$TMP/m_more_layers" "{\"dim\": 64, \"n_layers\": 3, $P}"
check_fails 2 "$TMP/m_more_layers: layers.2.attention.wq.weight: missing; expected a tensor of shape \[64, 64\]" "params.json says 3 layers, 2 present" \
    "$INSPECT" "$TMP/m_more_layers"
with_params "$TMP/m_fewer_layers" "{\"dim\": 64, \"n_layers\": 1, $P}"
check_fails 2 "$TMP/m_fewer_layers: layers.1.attention.wq.weight: present, but the config says n_layers = 1" "params.json says 1 layer, 2 present" \
    "$INSPECT" "$TMP/m_fewer_layers"
with_params "$TMP/m_ffn" "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"n_kv_heads\": 2, \"vocab_size\": 256, \"multiple_of\": 32}"
check_fails 2 "$TMP/m_ffn: layers.0.feed_forward.w1.weight: shape \[224, 64\], but the config implies \[192, 64\]" "no ffn_dim_multiplier: F = 192" \
    "$INSPECT" "$TMP/m_ffn"
rm -rf "$TMP/m_noparams"; cp -r "$D/meta1" "$TMP/m_noparams"; rm "$TMP/m_noparams/params.json"
check_fails 2 "$TMP/m_noparams: neither params.json" "a directory without params.json" "$INSPECT" "$TMP/m_noparams"

# Model-parallel shards that do not fit together.
rm -rf "$TMP/m_gap"; cp -r "$D/meta2" "$TMP/m_gap"; mv "$TMP/m_gap/consolidated.01.pth" "$TMP/m_gap/consolidated.02.pth"
check_fails 2 "$TMP/m_gap: consolidated.02.pth: expected consolidated.01.pth" "shards numbered 00, 02" "$INSPECT" "$TMP/m_gap"
rm -rf "$TMP/m_mixed"; cp -r "$D/meta2" "$TMP/m_mixed"; cp "$D/meta_badshape/consolidated.00.pth" "$TMP/m_mixed/consolidated.01.pth"
check_fails 2 "$TMP/m_mixed: tok_embeddings.weight: shape \[384, 64\], but the config implies \[256, 64\]" "shards of different models" \
    "$INSPECT" "$TMP/m_mixed"

# The command line.
check_fails 2 "unknown option --bogus" "unknown flag" "$INSPECT" --bogus "$D/cases.pth"
check_fails 2 "PATH is required" "no PATH" "$INSPECT"
check_fails 2 "$D/cases.pth: --dump: no tensor named nope" "--dump of an absent tensor" "$INSPECT" "$D/cases.pth" --dump nope "$TMP/nope.npy"
check "--dump of an absent tensor writes nothing" test ! -e "$TMP/nope.npy" -a ! -e "$TMP/nope.npy.partial"
finish
