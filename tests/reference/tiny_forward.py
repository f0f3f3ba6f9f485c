#!/usr/bin/env python3
"""tiny_forward.py: the PyTorch reference forward pass of a Meta-layout Llama-3 directory, on the CPU.

Given MODEL_DIR (params.json + consolidated.00.pth) and token ids, it runs the whole prompt through the model that
weights_tools/train_tiny.py defines (Meta's module structure: RMSNorm in fp32, interleaved-pair RoPE through complex
numbers, GQA by repeat-interleave, SwiGLU, fp32 logits) and writes the logits of the LAST token, shape [V], as a
float32 .npy. Tests compare the C/CUDA forward pass of the same checkpoint to this file.

Precision (--precision):
  bf16   Meta's inference numerics: the bf16 weights as stored, bf16 activations, RMSNorm/RoPE/softmax in fp32 and
         the result cast back to bf16, the final logits in fp32 (`.float()`).
  fp32   every weight upcast to fp32 (bf16 values are exact in fp32) and every activation in fp32: the ground truth
         for "how much does bf16 cost".

Usage:
  /usr/bin/python3 tests/reference/tiny_forward.py MODEL_DIR --ids "128000 1820 4320" [--precision fp32|bf16]
        [--out logits.npy] [--top K] [--all-positions]
  --ids takes ids separated by spaces or commas (or @FILE to read them from a file).
  Prints: the argmax id, its logit, and the top-K ids with their logits; with --out also saves the logits
  ([V] float32, or [T, V] with --all-positions). Exit 0 on success, 2 on bad input (missing files, bad ids).
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "weights_tools"))
import train_tiny  # noqa: E402  (the model definition lives there, next to the training that made the weights)


def input_error(path, msg):
    print(f"error: {path}: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_ids(text, vocab_size):
    if text.startswith("@"):
        path = text[1:]
        if not os.path.isfile(path):
            input_error(path, "cannot open the ids file")
        text = open(path).read()
    parts = text.replace(",", " ").split()
    if not parts:
        input_error("--ids", "no token ids given")
    ids = []
    for p in parts:
        if not p.isdigit() or int(p) >= vocab_size:
            input_error("--ids", f"'{p}' is not a token id in [0, {vocab_size})")
        ids.append(int(p))
    return ids


def main():
    ap = argparse.ArgumentParser(description="Logits of the last token of a Meta-layout Llama-3 model (CPU reference).")
    ap.add_argument("model_dir")
    ap.add_argument("--ids", required=True, help="token ids, space or comma separated, or @FILE")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--out", help="write the logits here as a float32 .npy")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--all-positions", action="store_true", help="save [T, V] logits instead of the last row")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()
    for name in ("params.json", "consolidated.00.pth"):
        if not os.path.isfile(os.path.join(a.model_dir, name)):
            input_error(os.path.join(a.model_dir, name), "missing (a Meta-layout model directory is needed)")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    import json
    with open(os.path.join(a.model_dir, "params.json")) as f:
        try:
            vocab_size = int(json.load(f)["vocab_size"])
        except (ValueError, KeyError) as e:
            input_error(os.path.join(a.model_dir, "params.json"), f"vocab_size: {e}")
    ids = parse_ids(a.ids, vocab_size)
    try:
        model = train_tiny.load_meta_model(a.model_dir, dtype=dtype, max_seq_len=max(len(ids), 16))
    except RuntimeError as e:  # load_state_dict: missing/unexpected names or wrong shapes
        input_error(os.path.join(a.model_dir, "consolidated.00.pth"), str(e).splitlines()[0])
    with torch.no_grad():
        logits = model(torch.as_tensor([ids]), last_only=not a.all_positions)[0]  # [T or 1, V] fp32
    last = logits[-1]
    top = torch.topk(last, min(a.top, last.numel()))
    print(f"tokens {len(ids)}, precision {a.precision}, vocab {last.numel()}")
    print(f"argmax {int(torch.argmax(last))}  logit {float(last.max()):.6f}")
    print("top " + " ".join(f"{int(i)}:{float(v):.4f}" for v, i in zip(top.values, top.indices)))
    if a.out:
        arr = (logits if a.all_positions else last).numpy().astype(np.float32)
        tmp = a.out + ".partial.npy"
        np.save(tmp, arr)
        os.replace(tmp, a.out)
        print(f"wrote {a.out} {list(arr.shape)} float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
