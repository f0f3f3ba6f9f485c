#!/usr/bin/python3
"""bpe_ref.py: a MiniMind-shaped byte-level BPE tokenizer.json, trained here, and an independent plain-Python encoder,
to cross-check common/tokenizer/tokenizer_bpe.c. Written from the description of HF `tokenizers` files (formats.md
§4, the header of tokenizer_bpe.c), not from any tokenizer's code.

What the file is (as MiniMind's model/tokenizer.json): model.type "BPE" with "vocab" {string: id} and "merges" (merge
order = rank), the strings in GPT-2's byte-to-unicode alphabet; pre_tokenizer ByteLevel (add_prefix_space false,
use_regex true: GPT-2's split regex); decoder ByteLevel; normalizer and post_processor null; added_tokens first
(<|endoftext|> 0, <|im_start|> 1, <|im_end|> 2 special; <think>, </think> not special, as MiniMind-3's).

The encoder here: added tokens found leftmost-longest (the normalized=false ones first, then the others in the
gaps); GPT-2's regex (the `regex` module) on the rest; each piece's bytes through bytes_to_unicode; then the
simplest BPE: rescan every adjacent pair, join the one with the lowest merge rank (leftmost on ties), repeat;
finally look each symbol up in the vocab. (The C code keeps a heap of candidates instead.)

Usage:
  bpe_ref.py make OUT_DIR [--merges N] [--seed S] [--arrays] [--shuffle] [--no-config] [--ignore-merges]
      trains N merges on a built-in mixed text (English, Chinese, code, digits, emoji) and writes
      OUT_DIR/tokenizer.json (+ tokenizer_config.json with bos <|im_start|>, eos <|im_end|>, unless --no-config).
      --arrays writes merges as ["a", "b"] (newer files), else "a b"; --shuffle gives the ordinary tokens ids in a
      random order (ids and ranks are unrelated in the format); --ignore-merges sets model.ignore_merges (a piece
      that is a token is taken whole, without merging).
  bpe_ref.py random N --seed S TEXTS.jsonl
      N random strings (spaces, newlines, tabs, digits, contractions, Chinese, emoji, added tokens, whole or broken)
  bpe_ref.py encode DIR [--bos] [--eos] TEXTS.jsonl IDS.txt
      encodes each JSON string of TEXTS.jsonl with DIR/tokenizer.json, one line of ids per text
Exit status 3 when the `regex` module is missing.
"""
import json
import os
import random
import sys

try:
    import regex
except ImportError:
    print("bpe_ref.py: the `regex` module is missing (apt-get install python3-regex)", file=sys.stderr)
    sys.exit(3)

# GPT-2's split pattern, as HF's ByteLevel pre-tokenizer runs it. \s is spelled out as Unicode's White_Space (the
# `regex` module's \s also takes U+001C..U+001F, which are not White_Space).
WS = r"\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
GPT2_SPLIT = regex.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^" + WS + r"\p{L}\p{N}]+|[" + WS + r"]+(?![^" + WS + r"])|[" + WS + r"]+")

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
NOT_SPECIAL = ["<think>", "</think>"]


def bytes_to_unicode():
    """GPT-2's map: printable bytes stand for themselves, the other 68 become U+0100.. in byte order."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


B2U = bytes_to_unicode()
U2B = {c: b for b, c in B2U.items()}


def to_unicode(bs):
    return "".join(B2U[b] for b in bs)


TRAIN_TEXT = """
The answer to the ultimate question of life, the universe, and everything is 42. It's what they'd said; we're sure
they'll say it again, and I'm told you've heard it. Don't worry: the tokenizer merges pairs by rank, and ranks come
from training. The quick brown fox jumps over the lazy dog 1234567890 times in 2026.
本文旨在全面解析并从零开始实现大语言模型。我们先把文字切成词元，再把词元变成向量。你好，世界！今天天气很好。
def forward(x):
    return x @ w.T + b  # shapes: [T, D] x [D, V]
    for i in range(10): print(i, i * i)
MiniMind is a small language model; it has 8 layers, 512 dims, and a vocabulary of 6400 tokens. 🤖🚀 ok!!
<|im_start|>user
What is the capital of France?<|im_end|>
<|im_start|>assistant
<think>
</think>
Paris is the capital of France.<|im_end|>
"""


def train(text, n_merges):
    """Plain BPE training on the pre-tokenized pieces: count adjacent pairs weighted by piece frequency, join the most
    frequent (ties: the smallest pair in string order), until n_merges merges or no pair is left."""
    words = {}
    for part in regex.split("(" + "|".join(regex.escape(t) for t in SPECIAL + NOT_SPECIAL) + ")", text):
        if part in SPECIAL or part in NOT_SPECIAL:
            continue
        for piece in GPT2_SPLIT.findall(part):
            key = tuple(B2U[b] for b in piece.encode("utf-8"))
            words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        new_words = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + f
        words = new_words
    return merges


def make(out_dir, n_merges, seed, arrays, shuffle, config, ignore_merges):
    rng = random.Random(seed)
    merges = train(TRAIN_TEXT, n_merges)
    # One more merge that joins two tokens into a token another pair already made (a + bc and ab + c both give abc):
    # real files have them, and there the merge rank of the pair decides, not the rank of the joined token.
    tokens = {a + b for a, b in merges}
    have = set(merges)
    for a, bc in merges:
        if len(bc) < 2:
            continue
        ab, c = a + bc[0], bc[1:]
        if ab in tokens and (len(c) == 1 or c in tokens) and (ab, c) not in have:
            merges.append((ab, c))
            break
    added = SPECIAL + NOT_SPECIAL
    ordinary = [B2U[b] for b in range(256)]
    for a, b in merges:  # a joined token that another pair already made keeps its one id
        if a + b not in ordinary:
            ordinary.append(a + b)
    n_shared = len(merges) + 256 - len(ordinary)  # merges whose token another merge made first
    if ignore_merges:  # whole words no merge makes: only the whole-piece lookup of ignore_merges reaches them
        for word in [" answer", " universe", "你好", " 1234567", "MiniMind"]:
            if to_unicode(word.encode("utf-8")) not in ordinary:
                ordinary.append(to_unicode(word.encode("utf-8")))
    if shuffle:
        rng.shuffle(ordinary)
    vocab = {t: i for i, t in enumerate(added)}
    for t in ordinary:
        vocab[t] = len(vocab)
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": t in SPECIAL} for t in added],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore_merges,
                  "vocab": vocab,
                  "merges": [[a, b] if arrays else a + " " + b for a, b in merges]},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2)
    if config:
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"add_bos_token": False, "add_eos_token": False, "bos_token": "<|im_start|>",
                       "eos_token": {"content": "<|im_end|>", "special": True}, "pad_token": "<|endoftext|>",
                       "tokenizer_class": "PreTrainedTokenizerFast"}, f, ensure_ascii=False, indent=2)
    print(f"{out_dir}/tokenizer.json: {len(vocab)} ids, {len(merges)} merges, "
          f"{n_shared} of them joining into a token another merge made")


# ---- encoding -------------------------------------------------------------------------------------------------------

class Ref:
    def __init__(self, directory):
        with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
            doc = json.load(f)
        model = doc["model"]
        self.vocab = model["vocab"]
        self.ignore_merges = model.get("ignore_merges", False)
        self.rank = {}
        for r, m in enumerate(model["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.rank[(a, b)] = r
        self.added = {a["content"]: a["id"] for a in doc.get("added_tokens", [])}
        self.added_groups = [[a["content"] for a in doc.get("added_tokens", []) if not a.get("normalized", not a["special"])],
                             [a["content"] for a in doc.get("added_tokens", []) if a.get("normalized", not a["special"])]]
        self.bos = self.eos = None
        cfg_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)

            def tok(v):
                v = v["content"] if isinstance(v, dict) else v
                return None if v is None else (self.added[v] if v in self.added else self.vocab[v])
            self.bos, self.eos = tok(cfg.get("bos_token")), tok(cfg.get("eos_token"))

    def bpe(self, piece):
        parts = [B2U[b] for b in piece.encode("utf-8")]
        if self.ignore_merges and "".join(parts) in self.vocab:
            return [self.vocab["".join(parts)]]
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.rank.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return [self.vocab[p] for p in parts]

    def segments(self, text, group=0):
        """(text, added id or None) in order: added tokens of this group leftmost-longest, the rest recursively."""
        if group == 2:
            return [(text, None)] if text else []
        names = sorted(self.added_groups[group], key=len, reverse=True)
        if not names:
            return self.segments(text, group + 1)
        out, pos = [], 0
        for m in regex.finditer("|".join(regex.escape(n) for n in names), text):
            out += self.segments(text[pos:m.start()], group + 1)
            out.append((m.group(), self.added[m.group()]))
            pos = m.end()
        return out + self.segments(text[pos:], group + 1)

    def encode(self, text, bos=False, eos=False):
        ids = [self.bos] if bos and self.bos is not None else []
        for seg, added_id in self.segments(text):
            if added_id is not None:
                ids.append(added_id)
            else:
                for piece in GPT2_SPLIT.findall(seg):
                    ids += self.bpe(piece)
        return ids + ([self.eos] if eos and self.eos is not None else [])


# ---- random texts ---------------------------------------------------------------------------------------------------

def random_text(rng):
    atoms = ["the", " the", "The", " answer", "answer", "life", " universe", "42", "1234567", "0", " 9", "'s", "'t",
             "'re", "'ve", "'m", "'ll", "'d", "'S", "’s", " ", "  ", "   ", "\n", "\n\n", " \n", "\t", "\r\n", "\u3000",
             "\u00a0", "\u2003", "\u0085", "\u001c", "\u180e", "你好", "世界", "模型", "。", "，", "！", "？", "：",
             "🤖", "🚀", "👍🏽", "👨‍👩‍👧", "é", "ü", "ß", "Ω", "д", "ع", "ह", "한", "日本語", "١٢٣", "Ⅻ", "½",
             "²", "!", "!!", "?", ".", ",", ";", "(", ")", "{", "}", "[", "]", "@", "#", "$", "%", "^", "&", "*",
             "_", "-", "+", "=", "/", "\\", "|", "~", "`", "\"", "'", "<", ">", "<|", "|>", "<|im_start|>",
             "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|im_start", "im_end|>", "<think", "def",
             " return", "x", "y", "MiniMind", " token", "izer", "\x00", "\x7f", "\ufeff", "\U0001F600"]
    n = rng.randint(0, 24)
    s = "".join(rng.choice(atoms) for _ in range(n))
    if rng.random() < 0.2:  # some single code points from all over Unicode
        s += "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff), rng.randint(0x4e00, 0x9fff),
                                     rng.randint(0x1f300, 0x1faff)])) for _ in range(rng.randint(1, 8)))
    return s


def main():
    a = sys.argv[1:]
    if not a or a[0] in ("-h", "--help"):
        print(__doc__)
        return
    cmd = a.pop(0)

    def flag(name):
        if name in a:
            a.remove(name)
            return True
        return False

    def opt(name, default):
        if name in a:
            i = a.index(name)
            v = a[i + 1]
            del a[i:i + 2]
            return v
        return default

    if cmd == "make":
        arrays, shuffle, no_config, ignore = flag("--arrays"), flag("--shuffle"), flag("--no-config"), flag("--ignore-merges")
        n, seed = int(opt("--merges", "300")), int(opt("--seed", "1"))
        make(a[0], n, seed, arrays, shuffle, not no_config, ignore)
    elif cmd == "random":
        seed = int(opt("--seed", "1"))
        rng = random.Random(seed)
        with open(a[1], "w", encoding="utf-8") as f:
            for _ in range(int(a[0])):
                f.write(json.dumps(random_text(rng)) + "\n")
    elif cmd == "encode":
        bos, eos = flag("--bos"), flag("--eos")
        ref = Ref(a[0])
        with open(a[1], encoding="utf-8") as f, open(a[2], "w") as out:
            for line in f:
                out.write(" ".join(str(i) for i in ref.encode(json.loads(line), bos, eos)) + "\n")
    else:
        sys.exit(f"bpe_ref.py: unknown command {cmd} (make, random, encode)")


if __name__ == "__main__":
    main()
