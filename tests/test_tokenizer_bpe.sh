#!/usr/bin/env bash
# tests/test_tokenizer_bpe.sh: MiniMind's kind of tokenizer: an HF byte-level BPE tokenizer.json
# (common/tokenizer/tokenizer_bpe.c), through wt-tokenize and a chapter.
#
# tests/reference/bpe_ref.py trains small MiniMind-shaped tokenizer.json files (a few hundred merges each: "a b" merges
# with tokenizer_config.json; [a, b] merges with shuffled ids and no config; ignore_merges true) and encodes with its
# own plain-Python implementation. Our ids must equal the reference's on random and tricky strings (spaces, newlines,
# digits, Chinese, emoji, added tokens whole and broken), decode(encode(s)) must give s back, a MiniMind-layout model
# directory with such a tokenizer.json must trace a --prompt, and bad files must exit 2 with one line naming the file
# and the field. Needs Debian's python3-regex (`make test` installs it; without it the checks fail, they do not vanish).
# expect: 6 s
source "$(dirname "$0")/lib.sh"

WT=build/bin/wt-tokenize
REF=tests/reference/bpe_ref.py
S01=build/steps/01_tokenize
for f in "$WT" "$S01" build/bin/wt-make-model; do [ -x "$f" ] || { no "$f is not built (make all)"; finish; exit; }; done
"$PY" -c 'import regex' 2>/dev/null || { no "python3-regex is missing (sudo apt-get install python3-regex)"; finish; exit; }

check "bpe_ref.py make: 400 merges, \"a b\" merges, tokenizer_config.json" "$PY" "$REF" make "$TMP/a" --merges 400 --seed 1
check "bpe_ref.py make: 300 merges, [a, b] merges, shuffled ids, no config" "$PY" "$REF" make "$TMP/b" --merges 300 --seed 2 \
    --arrays --shuffle --no-config
check "bpe_ref.py make: 200 merges, model.ignore_merges true, shuffled ids" "$PY" "$REF" make "$TMP/c" --merges 200 --seed 3 \
    --shuffle --ignore-merges
check "bpe_ref.py random: 3000 strings" "$PY" "$REF" random 3000 --seed 11 "$TMP/texts.jsonl"
# A few written out: what the random mix may miss.
"$PY" - "$TMP/texts.jsonl" <<'EOF'
import json, sys
tricky = ["", " ", "  ", "\n", "\n\n\n", " \n ", "\t\t", "a  b", "a \nb", "x   ", "   x", "12345678901234567890", " 42",
          "it's", "IT'S", "they'll've", "'s'", "''s", "你好，世界！", "模型 模型  模型", "🤖🤖🤖", "👨‍👩‍👧 family",
          "<|im_start|>", "<|im_start|><|im_end|>", "<|im_start|>user\nhi<|im_end|>\n", "<|im_start", "<<|im_end|>>",
          "<think></think>", "<think>\n\n</think>\n\n", "x<|endoftext|>y", "\u0085's", "\u3000\u3000a", "\u00a0b", "e\u0301",
          "\x00", "\x7f\x01", "\ufeff's", "a" * 300, "你" * 200, " " * 500 + "z"]
with open(sys.argv[1], "a", encoding="utf-8") as f:
    for s in tricky:
        f.write(json.dumps(s) + "\n")
EOF
n=$(wc -l <"$TMP/texts.jsonl")
for d in a b c; do
    check "$d: the reference encodes $n strings" "$PY" "$REF" encode "$TMP/$d" --bos --eos "$TMP/texts.jsonl" "$TMP/$d.ref"
    check "$d: wt-tokenize --jsonl encodes $n strings" sh -c "$WT --tokenizer $TMP/$d/tokenizer.json --bos --eos --jsonl \
        <$TMP/texts.jsonl >$TMP/$d.ours"
    check "$d: the same ids as the reference on all $n strings" cmp "$TMP/$d.ref" "$TMP/$d.ours"
    if ! cmp -s "$TMP/$d.ref" "$TMP/$d.ours"; then
        diff "$TMP/$d.ref" "$TMP/$d.ours" | head -6 | sed 's/^/    /' >&2
    fi
done
check "a: BOS is tokenizer_config.json's bos_token <|im_start|> (1), EOS its eos_token <|im_end|> (2)" \
    test "$(head -1 "$TMP/a.ours" | awk '{print $1, $NF}')" = "1 2"
check "b: without tokenizer_config.json no BOS or EOS (the empty string gives an empty line)" \
    test "$("$WT" --tokenizer "$TMP/b/tokenizer.json" --bos --eos '')" = ""
check "added tokens are matched whole" test "$("$WT" --tokenizer "$TMP/a/tokenizer.json" '<|im_start|><think></think><|im_end|>')" = "1 3 4 2"
check "--pieces shows added and ordinary tokens" sh -c "$WT --tokenizer $TMP/a/tokenizer.json --pieces '<|im_start|>the answer' \
    | sed -n 2p | grep -qF \"['<|im_start|>', \""

# decode(encode(s)) == s: every string one by one (the ids of each line, decoded), and all of them as one text
"$PY" - "$TMP/texts.jsonl" "$TMP/a.ours" "$TMP" <<'EOF'
import json, sys
texts = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
ids = [l.split()[1:-1] for l in open(sys.argv[2])]  # without BOS and EOS
open(sys.argv[3] + "/all.txt", "w", encoding="utf-8", newline="").write("".join(texts))
json.dump([(t, i) for t, i in zip(texts, ids)], open(sys.argv[3] + "/pairs.json", "w"))
EOF
bad=0  # (a string holding NUL cannot be an argument: those are in the long text below)
"$PY" - "$TMP/pairs.json" >"$TMP/cases" <<'EOF'
import json, sys
for k, (t, ids) in enumerate(json.load(open(sys.argv[1]))):
    if k % 10 == 0 and t and "\x00" not in t:  # every tenth non-empty string: one process each
        print(t.encode("utf-8").hex(), " ".join(ids) if ids else "-")
EOF
m=0
while read -r hex ids; do
    m=$((m + 1))
    [ "$ids" = "-" ] && continue
    # shellcheck disable=SC2086
    got=$("$WT" --tokenizer "$TMP/a/tokenizer.json" --decode $ids | head -c -1 | od -An -tx1 | tr -d ' \n')
    [ "$got" = "$hex" ] || { bad=$((bad + 1)); [ "$bad" -le 3 ] && echo "    decode differs: want $hex, got $got" >&2; }
done <"$TMP/cases"
check "decode(encode(s)) == s for $m strings, one by one" test "$bad" = 0
"$WT" --tokenizer "$TMP/a/tokenizer.json" --stdin <"$TMP/all.txt" >"$TMP/all.ids"
# shellcheck disable=SC2046
"$WT" --tokenizer "$TMP/a/tokenizer.json" --decode $(cat "$TMP/all.ids") | head -c -1 >"$TMP/all.back"
check "decode(encode(s)) == s for all $n strings as one text ($(wc -c <"$TMP/all.txt") bytes, $(wc -w <"$TMP/all.ids") ids)" \
    cmp "$TMP/all.txt" "$TMP/all.back"
check "the same text through --stdin = the reference's ids" sh -c "printf '%s\n' \"\$(\"$PY\" -c 'import json,sys; \
    print(json.dumps(open(sys.argv[1], encoding=\"utf-8\", newline=\"\").read()))' $TMP/all.txt)\" >$TMP/all.jsonl && \
    \"$PY\" $REF encode $TMP/a $TMP/all.jsonl $TMP/all.ref && cmp $TMP/all.ref $TMP/all.ids"

# ---- a MiniMind-layout model directory with such a tokenizer.json: a chapter traces a --prompt ---------------------
check "wt-make-model --preset minimind-moe --layers 2" build/bin/wt-make-model --preset minimind-moe --layers 2 --out "$TMP/mm" --quiet
cp "$TMP/a/tokenizer.json" "$TMP/a/tokenizer_config.json" "$TMP/mm/"
PROMPT='the answer to 你好 <|im_end|>'
check "01_tokenize --prompt on the MiniMind model (its tokenizer.json, no tokenizer.model)" \
    "$S01" --model "$TMP/mm" --prompt "$PROMPT" --device cpu --out "$TMP/tr" --quiet
want=$("$WT" --tokenizer "$TMP/a/tokenizer.json" --bos "$PROMPT")
got=$("$PY" -c 'import numpy, sys; print(" ".join(str(int(i)) for i in numpy.load(sys.argv[1])))' "$TMP/tr/01_tokenize/tokens.npy" 2>&1)
check "its tokens.npy = wt-tokenize --bos ($want)" test "$got" = "$want"
check "01_tokenize names the tokenizer" sh -c "'$S01' --model '$TMP/mm' --prompt x --device cpu --out '$TMP/tr2' \
    | grep -q 'an HF byte-level BPE (651 ids'"
check "--tokens on it: the pieces are named by the tokenizer.json" sh -c "'$S01' --model '$TMP/mm' --tokens 1,50,2 \
    --device cpu --out '$TMP/tr3' | grep -qF \"'<|im_start|>'\""

# ---- bad files: exit 2, one line naming the file and the field -------------------------------------------------------
# bad NAME PATTERN WHAT PYTHON-EDIT: a copy of a/tokenizer.json changed by the edit (d is the document)
bad() {
    local name=$1 pat=$2 what=$3 edit=$4
    mkdir -p "$TMP/bad"
    "$PY" -c "import json, sys; d = json.load(open(sys.argv[1], encoding='utf-8')); m = d['model']; $edit
json.dump(d, open(sys.argv[2], 'w', encoding='utf-8'), ensure_ascii=False)" "$TMP/a/tokenizer.json" "$TMP/bad/$name.json"
    check_fails 2 "$name.json: $pat" "$what" "$WT" --tokenizer "$TMP/bad/$name.json" "the answer"
}
bad nomodel "model: expected an object" "no model" "del d['model']"
bad unigram 'model.type: expected "BPE", found "Unigram"' "another model type" "m['type'] = 'Unigram'"
bad wordpiece 'model.type: expected "BPE", found "WordPiece"' "WordPiece" "m['type'] = 'WordPiece'"
bad metaspace "pre_tokenizer: expected ByteLevel .*found Metaspace" "another pre-tokenizer" "d['pre_tokenizer'] = {'type': 'Metaspace'}"
bad nopre "pre_tokenizer: expected ByteLevel .*found null" "no pre-tokenizer" "d['pre_tokenizer'] = None"
bad prefix "pre_tokenizer.add_prefix_space: expected false" "add_prefix_space true" "d['pre_tokenizer']['add_prefix_space'] = True"
bad noregex "pre_tokenizer.use_regex: expected true" "use_regex false" "d['pre_tokenizer']['use_regex'] = False"
bad nfc "normalizer: expected null .*found NFC" "a normalizer" "d['normalizer'] = {'type': 'NFC'}"
bad decoder "decoder: expected ByteLevel, found Metaspace" "another decoder" "d['decoder'] = {'type': 'Metaspace'}"
bad template "post_processor: expected null or ByteLevel .*found TemplateProcessing" "a template post-processor" \
    "d['post_processor'] = {'type': 'TemplateProcessing'}"
bad fallback "model.byte_fallback: expected false" "byte_fallback" "m['byte_fallback'] = True"
bad dropout "model.dropout: expected null" "dropout" "m['dropout'] = 0.1"
bad suffix "model.end_of_word_suffix: expected null" "a word suffix" "m['end_of_word_suffix'] = '</w>'"
bad mergeunk 'model.merges\[3\]: "zz_not_a_token" is not in model.vocab' "a merge naming a token not in the vocab" \
    "m['merges'][3] = 'zz_not_a_token ' + m['merges'][3].split(' ')[1]"
bad joinunk 'model.merges\[0\]: the joined token "a" \+ "Ġ" is not in model.vocab' "a merge whose result is not in the vocab" \
    "m['merges'][0] = 'a Ġ'"
bad mergeform 'model.merges\[2\]: expected "LEFT RIGHT"' "a merge of three tokens" "m['merges'][2] = 'a b c'"
bad mergetype 'model.merges\[1\]: expected "LEFT RIGHT" or \["LEFT", "RIGHT"\]' "a merge that is a number" "m['merges'][1] = 7"
bad mergesnot "model.merges: expected an array of pairs" "merges an object" "m['merges'] = {}"
bad dupmerge 'model.merges\[5\]: the same pair as merges\[0\]' "a pair twice" "m['merges'][5] = m['merges'][0]"
bad vocabtype "model.vocab: expected an object" "vocab a list" "m['vocab'] = []"
bad idtype 'model.vocab\["a"\]: expected an integer id' "an id that is a string" "m['vocab']['a'] = '7'"
bad iddup "model.vocab: id 40 appears twice" "two tokens with one id" "m['vocab']['a'] = 40; m['vocab']['b'] = 40"
bad idgap "model.vocab: id .* is missing|ids must be 0..V-1" "a gap in the ids" "del m['vocab']['a']"
bad notbyte 'model.vocab\["é€"\]: code point U\+20AC is not in the byte-level alphabet' "a token outside the byte alphabet" \
    "m['vocab']['é€'] = len(m['vocab'])"
bad nobyte "model.vocab: byte 0x41 has no token of its own" "a byte without its token" \
    "v = m['vocab']; i = v.pop('A'); last = max(v, key=v.get); v[last] = i; m['merges'] = [x for x in m['merges'] if 'A' not in x and last not in x.split(' ')]"
bad addedtype "added_tokens: expected an array" "added_tokens an object" "d['added_tokens'] = {}"
bad addedid "added_tokens\[1\].id: expected an integer" "an added token without id" "del d['added_tokens'][1]['id']"
bad lstrip "added_tokens\[0\].lstrip: expected false" "lstrip" "d['added_tokens'][0]['lstrip'] = True"
bad addedother 'added_tokens\[1\]: id 1 is "<\|im_foo\|>", but another string in model.vocab' "an added token whose id is another string" \
    "d['added_tokens'][1]['content'] = '<|im_foo|>'"
printf '{"model": {"type": "BPE", "vocab": ' >"$TMP/bad/cut.json"
check_fails 2 "cut.json: not valid JSON: line 1" "a cut-short file" "$WT" --tokenizer "$TMP/bad/cut.json" x
printf '{"bos_token": "<|nope|>"}' >"$TMP/bad/tokenizer_config.json"
cp "$TMP/a/tokenizer.json" "$TMP/bad/tokenizer.json"
check_fails 2 'tokenizer_config.json: bos_token: "<\|nope\|>" is not a token of' "a bos_token the tokenizer lacks" \
    "$WT" --tokenizer "$TMP/bad/tokenizer.json" x
check_fails 2 "the chat format is Llama 3's" "generate --chat on a MiniMind tokenizer" \
    build/bin/generate --model "$TMP/mm" --chat --prompt hi --device cpu -n 1 --quiet
finish
