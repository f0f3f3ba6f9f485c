#!/usr/bin/env python3
"""torch.load(..., mmap=True) of the llama3-8b preset written by wt-make-model must give the same values as
`wt-inspect --dump` for a few tensors, names/dtypes/shapes for all. Usage: check_torch_mmap.py MODEL_DIR WT_INSPECT TMP"""
import os, subprocess, sys, time
import numpy as np
import torch

model_dir, inspect, tmp = sys.argv[1:4]
os.makedirs(tmp, exist_ok=True)
path = os.path.join(model_dir, "consolidated.00.pth")
t0 = time.time()
sd = torch.load(path, mmap=True, weights_only=True)
print(f"torch {torch.__version__}: torch.load(mmap=True) of {os.path.getsize(path)/1e9:.2f} GB in {time.time()-t0:.2f} s, {len(sd)} tensors")
listing = subprocess.run([inspect, model_dir, "--no-checksums"], capture_output=True, text=True, check=True).stdout
ours = {}
for line in listing.splitlines():
    parts = line.split(None, 2)
    if len(parts) >= 3 and parts[2].startswith("[") and (parts[0] in sd):
        ours[parts[0]] = (parts[1], parts[2][: parts[2].index("]") + 1])
bad = 0
for name, t in sd.items():
    want = ("bf16" if t.dtype == torch.bfloat16 else str(t.dtype), "[" + ", ".join(str(d) for d in t.shape) + "]")
    if ours.get(name) != want:
        print(f"MISMATCH listing {name}: ours {ours.get(name)} torch {want}"); bad += 1
names = ["tok_embeddings.weight", "layers.0.attention.wq.weight", "layers.17.feed_forward.w2.weight",
         "layers.31.attention.wk.weight", "norm.weight", "output.weight"]
for name in names:
    out = os.path.join(tmp, name + ".npy")
    subprocess.run([inspect, model_dir, "--no-checksums", "--dump", name, out], check=True, capture_output=True)
    a = np.load(out)
    b = sd[name].float().numpy()
    same = a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))
    print(f"{'ok  ' if same else 'DIFF'} {name} {list(b.shape)} bit-identical={same}")
    bad += not same
    os.remove(out)
print(f"{len(sd)} tensors listed, {len(names)} dumped: {'all equal' if bad == 0 else str(bad) + ' mismatches'}")
sys.exit(1 if bad else 0)
