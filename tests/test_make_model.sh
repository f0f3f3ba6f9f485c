#!/usr/bin/env bash
# tests/test_make_model.sh: the .pth writer and wt-make-model, checked with Debian's PyTorch.
#   - files written by pth_writer (build/tests/test_pth_write --write-fixtures) load with torch.load, and torch.save
#     of the same tensors gives the same bytes (tests/reference/check_torch_load.py fixtures)
#   - wt-make-model --preset tiny: the same seed gives byte-identical files with 1 and 2 OpenMP threads, another seed
#     other bytes; params.json, names, order, dtypes, shapes and values (recomputed in numpy) through torch.load;
#     a forward pass with non-uniform attention and a well-scaled residual stream; wt-inspect --dump agrees with torch
#   - the command line: --help, bad flags and values, a missing or malformed tokenizer (exit 2, one line)
# L3T_BIG_TESTS=1 adds the llama3-8b preset: 1 layer (2.5 GB; exact params.json and sampled values) and 8 layers
# (5.6 GB: layer 7 and output.weight lie past 4 GiB, so their offsets need zip64 extras) read back by torch.load.
# expect: 17 s
source "$(dirname "$0")/lib.sh"
MM=build/bin/wt-make-model
TPW=build/tests/test_pth_write
INSPECT=build/bin/wt-inspect
CHK=tests/reference/check_torch_load.py

for prog in "$MM" "$TPW"; do
    [ -x "$prog" ] || { no "$prog is not built (make $prog)"; finish; exit; }
done

# A real tokenizer when `make models` made one; else a small file in the same format ("BASE64 RANK" lines).
TOK=build/models/tokenizer.model
if [ ! -f "$TOK" ]; then
    TOK=$TMP/fake_tokenizer.model
    for i in $(seq 0 255); do printf "$(printf '\\%03o' "$i")" | base64 | tr -d '\n'; echo " $i"; done >"$TOK"
fi

# ---- the writer, through torch ---------------------------------------------------------------------------------------
check "test_pth_write --write-fixtures" "$TPW" --write-fixtures "$TMP/fx"
check "torch.load reads pth_writer's files; torch.save writes the same bytes" $PY "$CHK" fixtures "$TMP/fx"

# ---- wt-make-model --preset tiny ---------------------------------------------------------------------------------------
check "tiny, seed 7, 2 threads" env OMP_NUM_THREADS=2 "$MM" --preset tiny --seed 7 --tokenizer "$TOK" --out "$TMP/a" --quiet
check "tiny, seed 7, 1 thread" env OMP_NUM_THREADS=1 "$MM" --preset tiny --seed 7 --tokenizer "$TOK" --out "$TMP/b" --quiet
check "tiny, seed 8" "$MM" --preset tiny --seed 8 --tokenizer "$TOK" --out "$TMP/c" --quiet
check "the same seed gives the same bytes with 1 and 2 threads" cmp "$TMP/a/consolidated.00.pth" "$TMP/b/consolidated.00.pth"
check "another seed gives other bytes" bash -c "! cmp -s '$TMP/a/consolidated.00.pth' '$TMP/c/consolidated.00.pth'"
check "tokenizer.model is a copy of --tokenizer" cmp "$TOK" "$TMP/a/tokenizer.model"
check "no .partial files left" bash -c "! ls '$TMP/a' | grep -q partial"
check "params.json, names, shapes and values through torch.load" $PY "$CHK" model "$TMP/a" tiny 7
check "forward pass: attention not uniform, residual stream O(1)" $PY "$CHK" forward "$TMP/a"
check "tiny --layers 2" "$MM" --preset tiny --layers 2 --seed 7 --tokenizer "$TOK" --out "$TMP/l2" --quiet
check "tiny --layers 2 through torch.load" $PY "$CHK" model "$TMP/l2" tiny 7 2

# Streaming: tok_embeddings alone is 131 MB of bf16, so a peak RSS under 100 MB means it was written in chunks.
if [ -x /usr/bin/time ]; then
    check "peak memory under 100 MB (tensors are streamed in chunks)" bash -c \
        "/usr/bin/time -f %M -o '$TMP/rss_kb' '$MM' --preset tiny --layers 1 --tokenizer '$TOK' --out '$TMP/rss' --quiet &&
         echo \"peak RSS \$(cat '$TMP/rss_kb') KB\" && [ \$(tail -n 1 '$TMP/rss_kb') -lt 102400 ]"
fi

if [ -x "$INSPECT" ]; then
    dumps=()
    for name in tok_embeddings.weight layers.0.attention.wq.weight layers.2.feed_forward.w2.weight \
                layers.3.ffn_norm.weight norm.weight; do
        check "wt-inspect --dump $name" "$INSPECT" "$TMP/a" --no-checksums --dump "$name" "$TMP/$name.npy"
        dumps+=("$name" "$TMP/$name.npy")
    done
    check "wt-inspect's dumps equal torch.load's tensors" $PY "$CHK" npy "$TMP/a" "${dumps[@]}"
else
    no "build/bin/wt-inspect is not built: the --dump comparison did not run"
fi

# ---- command line --------------------------------------------------------------------------------------------------
check "--help exits 0" "$MM" --help
check_fails 2 "unknown argument" "an unknown flag is refused" "$MM" --preset tiny --out "$TMP/x" --bogus
check_fails 2 "--preset" "a missing --preset is refused" "$MM" --out "$TMP/x"
check_fails 2 "--out" "a missing --out is refused" "$MM" --preset tiny
check_fails 2 "tiny, gqa, llama3-8b, minimind-moe or mixtral-tiny" "an unknown preset is refused" "$MM" --preset huge --out "$TMP/x"
# the gqa preset (build/bin/verify's tests): 8 query heads on 2 kv heads, embeddings of std 0.002
check "gqa preset" "$MM" --preset gqa --seed 3 --tokenizer "$TOK" --out "$TMP/gqa" --quiet
check "gqa preset: params.json, the heads' shapes, small embeddings, other weights as tiny's" $PY - "$TMP/gqa" <<'EOF2'
import json, sys, torch
d = sys.argv[1]
p = json.load(open(d + "/params.json"))
assert (p["dim"], p["n_layers"], p["n_heads"], p["n_kv_heads"]) == (256, 2, 8, 2), p
sd = torch.load(d + "/consolidated.00.pth", map_location="cpu")
assert sd["layers.0.attention.wq.weight"].shape == (256, 256) and sd["layers.0.attention.wk.weight"].shape == (64, 256)
assert sd["layers.1.feed_forward.w1.weight"].shape == (768, 256)
e = sd["tok_embeddings.weight"][:4096].float().std().item()
assert abs(e - 0.002) < 0.0002, e
wv = sd["layers.0.attention.wv.weight"].float().std().item()
assert abs(wv - 256 ** -0.5) < 0.01 * 256 ** -0.5 * 5, wv
print("ok", e, wv)
EOF2
check_fails 2 "--layers" "--layers 0 is refused" "$MM" --preset tiny --layers 0 --out "$TMP/x"
check_fails 2 "--seed" "a negative seed is refused" "$MM" --preset tiny --seed -3 --out "$TMP/x"
check_fails 2 "--seed" "a seed that is not a number is refused" "$MM" --preset tiny --seed 12ab --out "$TMP/x"
check_fails 2 "no such file" "a missing --tokenizer file is refused" "$MM" --preset tiny --tokenizer "$TMP/none" --out "$TMP/x"
echo '{"model": "not a tiktoken file"}' >"$TMP/bad_tokenizer"
check_fails 2 "tiktoken" "a malformed tokenizer is refused" "$MM" --preset tiny --tokenizer "$TMP/bad_tokenizer" --out "$TMP/x"
ABS_MM=$(pwd)/$MM
mkdir -p "$TMP/empty_cwd"
check_fails 2 "no tokenizer.*make models" "no --tokenizer and no build/models/tokenizer.model is refused" \
    bash -c "cd '$TMP/empty_cwd' && '$ABS_MM' --preset tiny --out out"
check "a refused run writes nothing" bash -c "[ ! -e '$TMP/x' ] && [ ! -e '$TMP/empty_cwd/out' ]"

# A write that fails half-way (here: the .partial file cannot be created) exits 1 and leaves no params.json, so the
# folder no longer looks like a model (params.json is removed first and written last).
mkdir -p "$TMP/a/consolidated.00.pth.partial"
check_fails 1 "cannot open" "a failed write exits 1" "$MM" --preset tiny --tokenizer "$TOK" --out "$TMP/a" --quiet
check "a failed write leaves no params.json" test ! -e "$TMP/a/params.json"

# ---- the 8B preset (opt-in: gigabytes of disk and minutes on a small machine) ------------------------------------------
if [ "${L3T_BIG_TESTS:-0}" = 1 ]; then
    check "llama3-8b --layers 1" "$MM" --preset llama3-8b --layers 1 --seed 3 --tokenizer "$TOK" --out "$TMP/b8" --quiet
    check "llama3-8b --layers 1 through torch.load" $PY "$CHK" model "$TMP/b8" llama3-8b 3 1
    rm -rf "$TMP/b8"
    check "llama3-8b --layers 8 (5.6 GB)" "$MM" --preset llama3-8b --layers 8 --seed 4 --tokenizer "$TOK" --out "$TMP/b8" --quiet
    off=$("$INSPECT" "$TMP/b8" --no-checksums | sed -nE 's/^output\.weight .*offset=([0-9]+).*/\1/p')
    check "output.weight lies past 4 GiB (offset ${off:-none})" test "${off:-0}" -gt 4294967296
    check "llama3-8b --layers 8 through torch.load (zip64 offsets)" $PY "$CHK" model "$TMP/b8" llama3-8b 4 8
    rm -rf "$TMP/b8"
fi
finish
