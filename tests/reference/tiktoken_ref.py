#!/usr/bin/python3
"""tiktoken_ref.py: an independent, plain-Python Llama-3 tokenizer, to cross-check common/tokenizer/tokenizer.c.

It follows formats.md §3 literally: Meta's chunking (400,000 chars, runs of at most 25,000 space / non-space chars),
the pre-tokenizer regex run by the `regex` module (Debian's python3-regex; tiktoken itself is not installable here),
the whole-piece shortcut, and _byte_pair_merge in its simplest O(n^2) form (rescan every pair after each merge),
which is deliberately not how the C code does it (the C code caches pair ranks).

Usage:
  tiktoken_ref.py MODEL --random N --seed S TEXTS.jsonl IDS.txt
      makes N random strings (many scripts, digits, whitespace runs, emoji, contractions), writes them one JSON
      string per line to TEXTS.jsonl and their ids (with BOS) one line each to IDS.txt.
  tiktoken_ref.py MODEL --jsonl TEXTS.jsonl IDS.txt
      encodes each JSON string of TEXTS.jsonl (with BOS), one line of ids per line
  tiktoken_ref.py MODEL --encode TEXT      prints the ids of TEXT (with BOS)
Exit status 3 when the `regex` module is missing (the caller skips the cross-check then).
"""
import base64
import json
import random
import sys

try:
    import regex
except ImportError:
    print("tiktoken_ref.py: the `regex` module is missing (apt-get install python3-regex)", file=sys.stderr)
    sys.exit(3)

PAT_STR = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
MAX_ENCODE_CHARS = 400_000
MAX_SAME_KIND_RUN = 25_000


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def byte_pair_merge(ranks, piece):
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while True:
        best_rank, best_i = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best_rank is None or r < best_rank):
                best_rank, best_i = r, i
        if best_rank is None:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return [ranks[p] for p in parts]


def split_long_runs(s, limit):
    """Meta's _split_whitespaces_or_nonwhitespaces."""
    run_len, run_is_space, start = 0, (s[0].isspace() if s else False), 0
    for i, ch in enumerate(s):
        is_space = ch.isspace()
        if run_is_space ^ is_space:
            run_len, run_is_space = 1, is_space
        else:
            run_len += 1
            if run_len > limit:
                yield s[start:i]
                start, run_len = i, 1
    yield s[start:]


def encode(ranks, pattern, text, bos=True):
    ids = [len(ranks)] if bos else []
    for i in range(0, len(text), MAX_ENCODE_CHARS):
        for sub in split_long_runs(text[i:i + MAX_ENCODE_CHARS], MAX_SAME_KIND_RUN):
            for m in pattern.finditer(sub):
                piece = m.group().encode("utf-8")
                if piece in ranks:
                    ids.append(ranks[piece])
                else:
                    ids.extend(byte_pair_merge(ranks, piece))
    return ids


# Character pools for random text. Code points are from blocks that were stable long before Unicode 14, so PCRE2,
# Python's `regex` and Rust agree on their categories.
POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " ", "  ", "\t", "\n", "\r\n", "\n\n", "\r",
    "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~",
    "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re",
    "àéîõüçñßÀÉÎÕÜÇÑ", "αβγδεζηθΑΒΓΔ", "абвгдежзАБВГ", "אבגדה", "مرحبا", "नमस्ते",  # Devanagari has marks (Mn/Mc)
    "我们来看看的实现了模型中文字", "ひらがなカタカナ", "한국어",
    "٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "ⅠⅡⅢⅫ", "²³½¾",            # Nd in other scripts, Nl, No
    "😀🦙🎉👍🏽", "\u200d", "\ufe0f", "\u0301",                    # emoji, ZWJ, variation selector, combining acute
    "\u00a0", "\u2003", "\u3000", "\u0085", "\u2028", "\u180e", "\x1c", "\x1f", "\x0b", "\x0c", "\u200b", "\ufeff",
    "<|eot_id|>", "<|begin_of_text|>",                             # special-token text is encoded as ordinary text
]


def random_text(rng):
    out = []
    for _ in range(rng.randint(0, 40)):
        pool = rng.choice(POOLS)
        if rng.random() < 0.5 and len(pool) > 1 and not pool.startswith("<|") and not pool.startswith("'"):
            out.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        else:
            out.append(pool)
        if rng.random() < 0.02:
            out.append(rng.choice([" ", "1", "a", "\n", "!"]) * rng.randint(20, 300))
    return "".join(out)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ranks = load_ranks(argv[1])
    pattern = regex.compile(PAT_STR)
    if argv[2] == "--encode":
        print(" ".join(map(str, encode(ranks, pattern, argv[3]))))
        return 0
    if argv[2] == "--jsonl":
        with open(argv[3], encoding="utf-8") as ft, open(argv[4], "w") as fi:
            for line in ft:
                fi.write(" ".join(map(str, encode(ranks, pattern, json.loads(line)))) + "\n")
        return 0
    if argv[2] == "--random":
        n, seed, texts_path, ids_path = int(argv[3]), int(argv[5]), argv[6], argv[7]
        rng = random.Random(seed)
        with open(texts_path, "w", encoding="utf-8") as ft, open(ids_path, "w") as fi:
            for _ in range(n):
                text = random_text(rng)
                ft.write(json.dumps(text, ensure_ascii=True) + "\n")
                fi.write(" ".join(map(str, encode(ranks, pattern, text))) + "\n")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
