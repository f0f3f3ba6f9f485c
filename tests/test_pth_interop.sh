#!/usr/bin/env bash
# test_pth_interop.sh: build/bin/wt-inspect against the real torch.save (Debian's python3-torch 1.13).
#
# tests/reference/torch_save_cases.py writes checkpoints with torch.save (bf16/f16/f32 and integer dtypes, 0-d to 4-d,
# a shared storage, strided views with storage offsets, an nn.Parameter, an OrderedDict state_dict, a nested
# {"model": ...}, 1001 tensors, pickle_protocol=4, a tiny Llama in one and in two model-parallel shards) and, for each,
# the names, dtypes, shapes and CRC-32 of the bytes as torch sees them. wt-inspect must list exactly the same, and
# --dump must write exactly the bits of t.float().numpy() (bf16) or t.numpy().
# expect: 14 s
source tests/lib.sh
INSPECT=${INSPECT:-build/bin/wt-inspect}  # INSPECT=other/binary to test another build
D=$TMP/cases
check "torch.save writes the cases" $PY tests/reference/torch_save_cases.py write "$D"

# wt-inspect's tensor lines without offset= and file= (what torch cannot know), as in the manifest.
listing() { "$INSPECT" --checksums "$1" | grep ' crc32=' | sed -E 's/ file=[^ ]+//; s/ offset=[0-9a-z]+//'; }

# --dump of every tensor of $1, then torch_save_cases.py compares each with torch's own view of $2.
dumps_match() {
    local src="$1" ref="$2" out="$TMP/dump_$(basename "$1")"
    mkdir -p "$out"
    local args=()
    while read -r name _; do args+=(--dump "$name" "$out/$name.npy"); done <"$3"
    "$INSPECT" --no-checksums "$src" "${args[@]}" >/dev/null 2>"$out.log" || { cat "$out.log"; return 1; }
    $PY tests/reference/torch_save_cases.py check-dumps "$ref" "$out"
}

for f in cases.pth cases_p4.pth ordered.pth nested.pth many.pth; do
    check "$f: same names, dtypes, shapes and CRC-32 as torch" diff <(listing "$D/$f") "$D/$f.manifest"
    check "$f: --dump is bit-identical to torch" dumps_match "$D/$f" "$D/$f" "$D/$f.manifest"
done

# torch aligns every entry's data to 64 bytes; offsets come from the local headers, so they must show it.
aligned() { "$INSPECT" "$1" | grep -oE 'offset=[0-9]+' | cut -d= -f2 | awk '$1 % 64 != 0 { bad++ } END { exit (NR > 0 && !bad) ? 0 : 1 }'; }
check "meta1: every tensor's offset is 64-byte aligned" aligned "$D/meta1"
# The view t[1:, ::2] of a [4, 6] bf16 tensor starts 6 elements (12 bytes) into its storage.
strided_offset() {
    local base=$("$INSPECT" "$D/cases.pth" | grep '^view.strided ' | grep -oE 'offset=[0-9]+' | cut -d= -f2)
    [ -n "$base" ] && [ $(( (base - 12) % 64 )) -eq 0 ]
}
check "cases.pth: a view's offset includes its storage offset" strided_offset

# A Meta directory: params.json + consolidated.00.pth, and the same weights cut into two model-parallel shards.
check "meta1: same tensors as torch" diff <(listing "$D/meta1") "$D/meta1.manifest"
check "meta2 (2 shards joined): same tensors as torch" diff <(listing "$D/meta2") "$D/meta2.manifest"
check "meta2: joined tensors --dump bit-identical to the unsharded ones" dumps_match "$D/meta2" "$D/meta1/consolidated.00.pth" "$D/meta1.manifest"
shows_config() { "$INSPECT" "$D/meta1" >"$TMP/meta1.txt" && grep -qE '^  ffn_hidden +224 ' "$TMP/meta1.txt" && grep -qE '^  head_dim +16 ' "$TMP/meta1.txt" \
    && grep -qE '^  n_rep +2 ' "$TMP/meta1.txt" && grep -q "^tokenizer: $D/meta1/tokenizer.model" "$TMP/meta1.txt"; }
check "meta1: prints the config with derived values and the tokenizer" shows_config
joined_marked() { "$INSPECT" "$D/meta2" | grep -q '^layers.0.attention.wo.weight bf16 \[64, 64\] offset=joined' \
    && "$INSPECT" "$D/meta2" | grep -qE '^norm.weight bf16 \[64\] file=consolidated.00.pth offset=[0-9]+'; }
check "meta2: cut tensors are joined, replicated ones are views of shard 0" joined_marked

# A hand-made archive (Python's zipfile: no zip64 records, no alignment) that says byteorder "little".
check "little_endian.pth (zipfile, no zip64) loads" bash -c "'$INSPECT' '$D/little_endian.pth' | grep -q '^w f32 \[4\] offset='"
check "wt-inspect --help exits 0" "$INSPECT" --help
finish
