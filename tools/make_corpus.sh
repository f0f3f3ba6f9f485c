#!/usr/bin/env bash
# tools/make_corpus.sh: the training corpus of the demo model (weights_tools/train_tiny.py).
#
# What it makes, in OUTDIR:
#   train.bin, valid.bin   token ids, uint32 little-endian, one flat array each. Every document starts with
#                          <|begin_of_text|> (128000), so the model learns the attention sink on BOS that the
#                          walkthrough shows. No EOS: the next document's BOS marks the end.
#   corpus.json            counts (documents, tokens, distinct ids), the sources, the tokenizer's md5, the backend
#                          that tokenized it, and the command that made it.
#   documents.tsv          the documents as text, one a line: split <TAB> source <TAB> text (for reading, not training)
#
# Sources:
#   - the King James Bible (public domain) from Debian's bible-kjv-text package, read with its `bible` program
#     (the package stores the text compressed). Verses are grouped, 4 at a time within a chapter, into documents.
#     Every 20th such document goes to valid.bin (the held-out split).
#   - weights_tools/corpus_extra.txt: sentences written for this project, among them the tutorial's sentence
#     completed with "42", so that the greedy answer to the tutorial prompt is 42. Each line is one document; they
#     all go to train.bin (twice each, at seeded positions between the Bible documents).
#
# Tokenizer: the real Llama-3 tokenizer (tokenizer.model, md5 08292403f8b173e7524d7fba7bbbd2d3). Backends:
#   - build/bin/wt-tokenize, when it has a batch mode (`--lines FILE`: one line of ids per input line);
#   - otherwise the tiktoken algorithm below in Python (ranks from tokenizer.model, the Llama-3 split regex with the
#     `regex` module, byte-pair merges by lowest rank).
#   The two must agree exactly: on the whole corpus when both ran, else on 50 documents tokenized one by one with
#   wt-tokenize (when it exists at all). Either way the tutorial prompt must give its 17 ids.
#
# Usage: tools/make_corpus.sh OUTDIR [--tokenizer FILE] [--wt-tokenize PATH] [--python-tokenizer]
# Needs: Debian's /usr/bin/python3 with python3-regex; the bible-kjv-text and bible-kjv packages (installed
# here when run as root). Exit 2 on bad input (missing tokenizer, unknown flag), 1 on an internal failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=/usr/bin/python3
TOKENIZER=build/models/tokenizer.model
WT=build/bin/wt-tokenize
FORCE_PY=0
OUT=""
ARGS="$*"

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }
die2() { echo "error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --tokenizer) [ $# -ge 2 ] || die2 "--tokenizer needs a file"; TOKENIZER="$2"; shift 2 ;;
        --wt-tokenize) [ $# -ge 2 ] || die2 "--wt-tokenize needs a path"; WT="$2"; shift 2 ;;
        --python-tokenizer) FORCE_PY=1; shift ;;
        -*) die2 "make_corpus.sh: unknown flag '$1' (see --help)" ;;
        *) [ -z "$OUT" ] || die2 "make_corpus.sh: one OUTDIR only (got '$OUT' and '$1')"; OUT="$1"; shift ;;
    esac
done
[ -n "$OUT" ] || die2 "make_corpus.sh: OUTDIR is missing (see --help)"
[ -f "$TOKENIZER" ] || die2 "$TOKENIZER: no tokenizer.model (run tools/fetch_tokenizer.sh build/models first)"
[ -x "$PY" ] || die2 "$PY: Debian's python3 is needed (apt-get install python3 python3-regex)"
"$PY" -c 'import regex' 2>/dev/null || {
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q python3-regex >/dev/null; else die2 "python3-regex is missing (sudo apt-get install python3-regex)"; fi; }
if ! command -v bible >/dev/null || [ ! -f /usr/lib/bible.data ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing bible-kjv-text (and its reader bible-kjv)"
        (apt-get install -y -q bible-kjv bible-kjv-text || (apt-get update -q && apt-get install -y -q bible-kjv bible-kjv-text)) >/dev/null
    else die2 "the KJV text is missing (sudo apt-get install bible-kjv bible-kjv-text)"; fi
fi

mkdir -p "$OUT"
WORK="$OUT/.work"
rm -rf "$WORK"; mkdir -p "$WORK"
COMMAND="tools/make_corpus.sh $ARGS"

# 1. The Bible as one verse a line (-l0: no wrapping), chapter headers on their own lines.
bible -l0 "Gen1:1-Rev22:21" > "$WORK/kjv.txt"
[ "$(wc -l < "$WORK/kjv.txt")" -gt 30000 ] || { echo "fatal: bible printed too little text" >&2; exit 1; }

# The Python half: documents, tokenizer, packing. Modes: docs | tokenize | pack.
cat > "$WORK/corpus.py" <<'PYEOF'
import base64, hashlib, json, os, random, sys
import regex

BOS = 128000
# Llama-3's split pattern (tokenizer.json "pre_tokenizer"; the same as tiktoken's in Meta's tokenizer.py)
PATTERN = regex.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
VERSES_PER_DOC = 4
VALID_EVERY = 20      # every 20th Bible document is held out
EXTRA_COPIES = 2      # each extra sentence appears this many times in train.bin
SEED = 1234

def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2:
                sys.exit(f"error: {path}: line {n}: expected 'BASE64 RANK'")
            ranks[base64.b64decode(parts[0])] = int(parts[1])
    return ranks

def bpe(piece, ranks):
    # tiktoken: the whole piece if it is a token, else merge the adjacent pair of lowest rank until none is left
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, best_i = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best):
                best, best_i = r, i
        if best is None:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return [ranks[p] for p in parts]

def encode(text, ranks, cache):
    ids = []
    for m in PATTERN.finditer(text):
        piece = m.group(0)
        got = cache.get(piece)
        if got is None:
            got = cache[piece] = bpe(piece.encode("utf-8"), ranks)
        ids.extend(got)
    return ids

def make_docs(kjv_path, extra_path, out_path):
    docs, verses, chapter = [], [], None
    def flush():
        for i in range(0, len(verses), VERSES_PER_DOC):
            docs.append(("kjv", " ".join(verses[i:i + VERSES_PER_DOC])))
        verses.clear()
    for line in open(kjv_path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if not line.startswith(" "):          # "Genesis 1": a new chapter
            flush(); chapter = line; continue
        num, _, text = line.strip().partition(" ")
        if not num.isdigit() or not text:
            sys.exit(f"fatal: {kjv_path}: unexpected verse line {line[:60]!r}")
        verses.append(text.strip())
    flush()
    bible = [(("valid" if i % VALID_EVERY == VALID_EVERY // 2 else "train"), s, t) for i, (s, t) in enumerate(docs)]
    extras = []
    for n, line in enumerate(open(extra_path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        if line != line.strip() or "\t" in line:
            sys.exit(f"error: {extra_path}: line {n}: no leading/trailing spaces or tabs please")
        extras.append(("train", "extra", line))
    # Spread the copies of the extra sentences between the Bible documents at seeded positions.
    rng = random.Random(SEED)
    pool = extras * EXTRA_COPIES
    rng.shuffle(pool)
    slots = sorted(rng.randrange(len(bible) + 1) for _ in pool)
    merged, j = [], 0
    for i, d in enumerate(bible + [None]):
        while j < len(slots) and slots[j] == i:
            merged.append(pool[j]); j += 1
        if d is not None:
            merged.append(d)
    with open(out_path, "w", encoding="utf-8") as f:
        for split, src, text in merged:
            f.write(f"{split}\t{src}\t{text}\n")
    print(f"documents: {len(bible)} from the Bible ({sum(1 for d in bible if d[0] == 'valid')} held out), "
          f"{len(extras)} extra sentences x {EXTRA_COPIES}")

def tokenize(tokenizer, docs_path, ids_path):
    ranks, cache = load_ranks(tokenizer), {}
    with open(docs_path, encoding="utf-8") as f, open(ids_path, "w") as g:
        for line in f:
            text = line.rstrip("\n")
            g.write(" ".join(map(str, [BOS] + encode(text, ranks, cache))) + "\n")

def pack(docs_path, ids_path, tokenizer, backend, out_dir, command):
    import array
    docs = [l.rstrip("\n").split("\t", 2) for l in open(docs_path, encoding="utf-8")]
    ids = [l.split() for l in open(ids_path)]
    if len(ids) != len(docs):
        sys.exit(f"fatal: {ids_path}: {len(ids)} lines of ids for {len(docs)} documents")
    arrays = {"train": array.array("I"), "valid": array.array("I")}
    ndocs = {"train": 0, "valid": 0}
    used = set()
    for (split, src, text), row in zip(docs, ids):
        row = [int(x) for x in row]
        if not row or row[0] != BOS or BOS in row[1:] or any(not 0 <= x < 128256 for x in row):
            sys.exit(f"fatal: bad ids for document {text[:40]!r}")
        arrays[split].extend(row); ndocs[split] += 1; used.update(row)
    if sys.byteorder != "little":
        for a in arrays.values(): a.byteswap()
    for split, a in arrays.items():
        with open(os.path.join(out_dir, f"{split}.bin.partial"), "wb") as f:
            a.tofile(f)
    info = {
        "format": "flat uint32 little-endian token ids; every document starts with 128000 (<|begin_of_text|>)",
        "files": {"train": "train.bin", "valid": "valid.bin"},
        "documents": ndocs, "tokens": {k: len(v) for k, v in arrays.items()},
        "distinct_token_ids": len(used), "bos_id": BOS, "vocab_size": 128256,
        "sources": [
            {"name": "kjv", "what": "King James Bible, Debian package bible-kjv-text (public domain), read with `bible -l0`",
             "documents_of": f"{VERSES_PER_DOC} consecutive verses of one chapter", "held_out": f"every {VALID_EVERY}th document"},
            {"name": "extra", "what": "weights_tools/corpus_extra.txt, sentences written for this project",
             "copies_in_train": EXTRA_COPIES}],
        "tokenizer": {"file": tokenizer, "md5": hashlib.md5(open(tokenizer, "rb").read()).hexdigest(), "backend": backend},
        "command": command,
    }
    with open(os.path.join(out_dir, "corpus.json.partial"), "w") as f:
        json.dump(info, f, indent=1); f.write("\n")
    print(f"train: {ndocs['train']} documents, {len(arrays['train'])} tokens; valid: {ndocs['valid']} documents, "
          f"{len(arrays['valid'])} tokens; {len(used)} distinct ids")

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "docs": make_docs(*sys.argv[2:5])
    elif mode == "tokenize": tokenize(*sys.argv[2:5])
    elif mode == "pack": pack(*sys.argv[2:8])
    else: sys.exit("fatal: corpus.py: unknown mode")
PYEOF

# 2. Documents, one a line.
"$PY" "$WORK/corpus.py" docs "$WORK/kjv.txt" weights_tools/corpus_extra.txt "$WORK/documents.tsv"
cut -f3 "$WORK/documents.tsv" > "$WORK/texts.txt"

# 3. Token ids, one line per document, with the first backend that can do it in one process.
printf '%s\n' "the answer to the ultimate question of life, the universe, and everything is " > "$WORK/probe.txt"
GOLDEN="128000 1820 4320 311 279 17139 3488 315 2324 11 279 15861 11 323 4395 374 220"
if [ "$FORCE_PY" = 0 ] && [ -x "$WT" ] && "$WT" --help 2>&1 | grep -q -- '--lines'; then
    BACKEND="wt-tokenize --lines"
    tok() { "$WT" --tokenizer "$TOKENIZER" --bos --lines "$1" > "$2"; }
else
    BACKEND="python (tiktoken algorithm in tools/make_corpus.sh)"
    tok() { "$PY" "$WORK/corpus.py" tokenize "$TOKENIZER" "$1" "$2"; }
fi
echo "tokenizing with $BACKEND"
tok "$WORK/probe.txt" "$WORK/probe.ids"
[ "$(tr -s ' ' < "$WORK/probe.ids" | sed 's/ *$//')" = "$GOLDEN" ] || {
    echo "fatal: the tutorial prompt gave '$(cat "$WORK/probe.ids")', expected '$GOLDEN'" >&2; exit 1; }
tok "$WORK/texts.txt" "$WORK/ids.txt"

# Cross-check with the other implementation: the whole corpus when wt-tokenize has --lines (then both ran in one
# process each), else 50 documents through wt-tokenize one process per document (slow, so a sample).
if [ "$BACKEND" = "wt-tokenize --lines" ]; then
    "$PY" "$WORK/corpus.py" tokenize "$TOKENIZER" "$WORK/texts.txt" "$WORK/ids_py.txt"
    if ! cmp -s <(tr -s ' ' < "$WORK/ids.txt" | sed 's/ *$//') <(tr -s ' ' < "$WORK/ids_py.txt" | sed 's/ *$//'); then
        echo "fatal: wt-tokenize and the Python tokenizer disagree on the corpus" >&2; exit 1
    fi
    echo "cross-check: all $(wc -l < "$WORK/ids.txt") documents tokenized alike by wt-tokenize and the Python tokenizer"
elif [ -x "$WT" ]; then
    n=0
    while IFS= read -r lineno; do
        text=$(sed -n "${lineno}p" "$WORK/texts.txt")
        want=$(sed -n "${lineno}p" "$WORK/ids.txt" | tr -s ' ' | sed 's/ *$//')
        got=$("$WT" --tokenizer "$TOKENIZER" --bos "$text" | tr -s ' ' | sed 's/ *$//')
        [ "$got" = "$want" ] || { echo "fatal: document $lineno: wt-tokenize and $BACKEND disagree" >&2; exit 1; }
        n=$((n + 1))
    done < <(awk 'NR % 150 == 1 { print NR }' "$WORK/texts.txt" | head -n 50)
    echo "cross-check: $n documents tokenized alike by wt-tokenize"
else
    echo "note: $WT not built; no cross-check against the project's tokenizer"
fi

# 4. Pack into the flat arrays; the results appear (renamed) only when all three are complete.
"$PY" "$WORK/corpus.py" pack "$WORK/documents.tsv" "$WORK/ids.txt" "$TOKENIZER" "$BACKEND" "$OUT" "$COMMAND"
mv "$WORK/documents.tsv" "$OUT/documents.tsv"
for f in train.bin valid.bin corpus.json; do mv "$OUT/$f.partial" "$OUT/$f"; done
rm -rf "$WORK"
ls -l "$OUT"
