#!/usr/bin/env python3
"""hf_greedy.py: greedy token ids from PyTorch, the reference that `generate --temperature 0` must reproduce.

Two implementations of the same model:
  --meta DIR   Meta's module structure (weights_tools/train_tiny.py: RMSNorm in fp32, interleaved-pair RoPE through
               complex numbers, GQA by repeat_interleave, fp32 logits) on a Meta-layout directory, CPU, torch >= 1.13.
  --hf DIR     HF transformers' LlamaForCausalLM on an HF directory (`wt-convert meta-to-hf` output): rotate_half
               RoPE on permuted q/k rows, sdpa attention; on the GPU when there is one (the `make test-gpu` peer).
Both run bf16 weights and activations, and recompute the whole sequence for every new token (no cache), so the
ids do not depend on any cache logic.

Usage:
  /usr/bin/python3 tests/reference/hf_greedy.py (--meta DIR | --hf DIR) --ids "128000 1820 ..." -n 8
      [--device cpu|cuda] [--margins]
Prints one line: the generated ids, space separated. --margins adds a second line with, for every step, the gap
between the best and the second-best logit (a near-tie there may legitimately flip between implementations).
Exit 0 on success, 2 on bad input.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def input_error(path, msg):
    print(f"error: {path}: {msg}", file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--meta")
    g.add_argument("--hf")
    ap.add_argument("--ids", required=True)
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--device", choices=["cpu", "cuda"], default=None)
    ap.add_argument("--margins", action="store_true")
    a = ap.parse_args()
    try:
        ids = [int(x) for x in a.ids.replace(",", " ").split()]
    except ValueError:
        input_error("--ids", "expected integers")
    if not ids:
        input_error("--ids", "no token ids")
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if a.meta:
        if not os.path.isfile(os.path.join(a.meta, "params.json")):
            input_error(a.meta, "params.json missing (a Meta-layout directory is needed)")
        sys.path.insert(0, os.path.join(HERE, "..", "..", "weights_tools"))
        import train_tiny  # the Meta-structured model definition

        model = train_tiny.load_meta_model(a.meta, dtype=torch.bfloat16, max_seq_len=len(ids) + a.n + 1)
        model = model.to(device)

        def last_logits(seq):
            return model(torch.as_tensor([seq], device=device), last_only=True)[0, -1]
    else:
        if not os.path.isfile(os.path.join(a.hf, "config.json")):
            input_error(a.hf, "config.json missing (an HF directory is needed)")
        import transformers

        model = transformers.LlamaForCausalLM.from_pretrained(a.hf, torch_dtype=torch.bfloat16).to(device)
        model.eval()

        def last_logits(seq):
            out = model(input_ids=torch.as_tensor([seq], device=device), use_cache=False)
            return out.logits[0, -1].float()

    seq = list(ids)
    new, margins = [], []
    with torch.no_grad():
        for _ in range(a.n):
            logits = last_logits(seq)
            top2 = torch.topk(logits, 2)
            nxt = int(torch.argmax(logits))
            margins.append(float(top2.values[0] - top2.values[1]))
            new.append(nxt)
            seq.append(nxt)
    print(" ".join(str(i) for i in new))
    if a.margins:
        print(" ".join(f"{m:.4f}" for m in margins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
