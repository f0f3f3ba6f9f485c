#!/usr/bin/env python3
"""tiny_model_check.py: the checks tests/test_tiny_model.sh makes on the trained demo model.

Two modes:

  attention NPY0 [NPY1 ...]
      NPYi = OUT/11_multihead/attn_weights_all.npy of the walkthrough run with --layer i ([H, T, T]; the first file
      must be layer 0). Applies the attention criteria that weights_tools/train_tiny.py uses to choose the kept
      checkpoint (the functions are imported from there, so the two cannot drift apart):
        on_previous(h) = mean over query positions t = 2..T-1 of w[h, t, t-1]
        on_bos(h)      = mean over query positions t = 1..T-1 of w[h, t, 0]
        met when max over the heads of layer 0 of on_previous > 0.5 and max over all heads of on_bos > 0.5.
      Prints every head's two numbers and the verdict. Exit 0 met, 1 not met, 2 bad input.

  logits C.npy TORCH.npy [--frac F]
      C.npy: the C forward pass's fp32 logits of the last prompt token ([V]); TORCH.npy: tests/reference/
      tiny_forward.py's of the same ids in the same precision. Passes when max |C - torch| <= F * max |torch|
      (default 0.02) and both have the same argmax. Exit 0 pass, 1 fail, 2 bad input.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "weights_tools"))
import train_tiny  # noqa: E402  (the criteria are defined next to the training that selects by them)


def load(path):
    if not os.path.isfile(path):
        print(f"error: {path}: no such file", file=sys.stderr)
        sys.exit(2)
    try:
        return np.load(path).astype(np.float64)
    except (ValueError, OSError) as e:
        print(f"error: {path}: not a readable .npy ({e})", file=sys.stderr)
        sys.exit(2)


def attention(paths):
    maps = []
    for p in paths:
        w = load(p)
        if w.ndim != 3 or w.shape[1] != w.shape[2] or w.shape[1] < 3:
            print(f"error: {p}: shape {list(w.shape)}, expected [H, T, T] with T >= 3", file=sys.stderr)
            sys.exit(2)
        # each row of a softmax sums to 1 and the causal mask leaves the upper triangle at 0: a sanity check that
        # this is a map of attention weights, not another array
        rows = w.sum(axis=2)
        upper = np.triu(np.ones(w.shape[1:], dtype=bool), 1)
        if np.abs(rows - 1).max() > 1e-2 or np.abs(w[:, upper]).max() > 0:
            print(f"error: {p}: not causal attention weights (row sums {rows.min():.4f}..{rows.max():.4f})",
                  file=sys.stderr)
            sys.exit(2)
        maps.append(w)
    crit = train_tiny.attention_criteria(maps)
    for r in crit["heads"]:
        print(f"layer {r['layer']} head {r['head']}: on_bos {r['on_bos']:.3f}  on_previous {r['on_previous']:.3f}")
    print(train_tiny.criteria_line(crit))
    p, b = crit["layer0_previous"], crit["bos_sink"]
    print(f"{'OK  ' if p['value'] > train_tiny.PREV_MIN else 'FAIL'} layer-0 previous-token head: "
          f"{p['value']:.3f} > {train_tiny.PREV_MIN}")
    print(f"{'OK  ' if b['value'] > train_tiny.BOS_MIN else 'FAIL'} BOS sink: {b['value']:.3f} > {train_tiny.BOS_MIN}")
    return 0 if crit["ok"] else 1


def logits(c_path, t_path, frac):
    a, b = load(c_path), load(t_path)
    if a.shape != b.shape or a.ndim != 1:
        print(f"error: {c_path} {list(a.shape)} and {t_path} {list(b.shape)}: expected two [V] arrays",
              file=sys.stderr)
        sys.exit(2)
    d, scale = float(np.abs(a - b).max()), float(np.abs(b).max())
    same = int(a.argmax()) == int(b.argmax())
    ok = d <= frac * scale and same
    print(f"{'OK  ' if ok else 'FAIL'} max |C - torch| {d:.4g} (limit {frac} x {scale:.4g} = {frac * scale:.4g}); "
          f"argmax C {int(a.argmax())} torch {int(b.argmax())}")
    return 0 if ok else 1


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    mode, rest = argv[0], argv[1:]
    if mode == "attention" and rest and not any(r.startswith("-") for r in rest):
        return attention(rest)
    if mode == "logits":
        frac = 0.02
        if "--frac" in rest:
            i = rest.index("--frac")
            try:
                frac = float(rest[i + 1])
            except (IndexError, ValueError):
                print("error: --frac: expected a number", file=sys.stderr)
                return 2
            rest = rest[:i] + rest[i + 2:]
        if len(rest) == 2 and not any(r.startswith("-") for r in rest):
            return logits(rest[0], rest[1], frac)
    print(f"error: {' '.join(argv)}: expected 'attention NPY...' or 'logits C.npy TORCH.npy [--frac F]' "
          "(see --help)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
