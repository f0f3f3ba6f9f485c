#!/usr/bin/python3
"""bpe_hf_check.py: optional cross-check of wt-tokenize against Hugging Face's own `tokenizers` (the Rust library that
wrote MiniMind's tokenizer.json), where a Python has it (not Debian's, so not in `make test`; e.g. the GPU machine's).

  python3 tests/reference/bpe_hf_check.py [--wt build/bin/wt-tokenize] [--n 3000] TOKENIZER.json...

For each tokenizer.json (MiniMind's own, or those tests/reference/bpe_ref.py makes: `bpe_ref.py make DIR`), encodes
N random strings of bpe_ref.py's mix plus the text of README.md with tokenizers (no special tokens added) and with
`wt-tokenize --jsonl`, and compares the ids. Prints "N passed, N failed"; exit 3 when `tokenizers` is missing.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    from tokenizers import Tokenizer
except ImportError:
    print("bpe_hf_check.py: this Python has no `tokenizers` (pip install tokenizers)", file=sys.stderr)
    sys.exit(3)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe_ref import random_text  # noqa: E402


def main():
    args, wt, n = sys.argv[1:], "build/bin/wt-tokenize", 3000
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--wt":
            wt = args.pop(0)
        elif flag == "--n":
            n = int(args.pop(0))
        else:
            sys.exit(__doc__)
    if not args:
        sys.exit(__doc__)
    rng = random.Random(5)
    texts = [random_text(rng) for _ in range(n)]
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8").read()
    texts += [readme[i:i + 2000] for i in range(0, len(readme), 2000)]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = os.path.join(tmp, "texts.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps(t) + "\n")
        for path in args:
            hf = Tokenizer.from_file(path)
            want = [hf.encode(t, add_special_tokens=False).ids for t in texts]
            with open(jsonl, "rb") as f:
                out = subprocess.run([wt, "--tokenizer", path, "--jsonl"], stdin=f, capture_output=True, check=True)
            got = [[int(x) for x in line.split()] for line in out.stdout.decode().split("\n")[:len(texts)]]
            bad = [i for i in range(len(texts)) if got[i] != want[i]]
            for i in bad[:3]:
                print(f"FAIL: {path}: {json.dumps(texts[i])[:80]}: ours {got[i][:12]}, tokenizers {want[i][:12]}")
            print(f"{path}: {len(texts) - len(bad)} of {len(texts)} texts give the same ids")
            passed, failed = passed + (not bad), failed + bool(bad)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
