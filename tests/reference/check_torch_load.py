#!/usr/bin/python3
"""check_torch_load.py: PyTorch's own torch.load reads what our C writers wrote, and the values are the ones they
should be. Run with Debian's /usr/bin/python3 (torch 1.13, numpy). Exit 0 when every check passes, 1 otherwise; each
failure is printed as "FAIL: ...". Used by tests/test_make_model.sh.

  fixtures DIR          the files of `build/tests/test_pth_write --write-fixtures DIR`: names, dtypes, shapes and values
                        through torch.load(weights_only=True); zipfile's CRC check; and the bytes torch.save writes for
                        the same dict are OUR bytes (nbo/: written without the byteorder entry, which torch 1.13 lacks;
                        for 1000+ tensors torch orders the data entries differently, so there the pickle and every
                        entry are compared)
  model DIR PRESET SEED [LAYERS]
                        a wt-make-model output: params.json, tensor names/order/dtypes/shapes, and values recomputed
                        here with numpy from the generator documented in common/rng.h and weights_tools/wt-make-model.c
  forward DIR           a forward pass of the model in float32 on the tutorial's 17 token ids: the attention scores must
                        have a spread of a few units (softmax rows not uniform) and the residual stream must stay O(1)
  npy DIR NAME FILE.npy [NAME FILE.npy]...
                        the tensor NAME as torch loads it equals FILE.npy (e.g. written by wt-inspect --dump) exactly
"""
import json
import math
import os
import sys
import tempfile
import zipfile

import numpy as np
import torch

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)
    return cond


# ---- fixtures of test_pth_write --------------------------------------------------------------------------------------

MIXED = [
    ("tok_embeddings.weight", torch.bfloat16, (3, 5)),
    ("layers.0.attention.wq.weight", torch.float16, (2, 3, 4)),
    ("norm.weight", torch.float32, (7,)),
    ("scalar", torch.float32, ()),
    ("four_d", torch.bfloat16, (2, 1, 3, 2)),
    ("empty", torch.float32, (2, 0, 3)),
    ("ids", torch.int64, (4,)),
    ("wide", torch.bfloat16, (2, 70000)),
]
N_MANY = 1001
MANY = [("layers.%d.w" % i, [torch.float32, torch.bfloat16, torch.float16][i % 3], (i % 5 + 1,)) for i in range(N_MANY)]


def fixture_tensor(t, dtype, shape):
    """Element k of tensor t: ((k*37) % 101 - 50) / 4 + t; integers: (k*37) % 101 - 50 + t."""
    numel = int(np.prod(shape)) if shape else 1
    k = np.arange(numel, dtype=np.int64)
    base = (k * 37) % 101 - 50
    if dtype == torch.int64:
        return torch.from_numpy(base + t).reshape(shape)
    return torch.from_numpy(base / 4.0 + t).to(dtype).reshape(shape)


def check_state_dict(path, expected):
    sd = torch.load(path, map_location="cpu", weights_only=True)
    check(isinstance(sd, dict), "%s: torch.load must give a dict" % path)
    check(list(sd.keys()) == [n for n, _, _ in expected], "%s: names or order differ" % path)
    bad = []
    for t, (name, dtype, shape) in enumerate(expected):
        x = sd.get(name)
        if x is None or x.dtype != dtype or tuple(x.shape) != shape or not x.is_contiguous() or x.requires_grad:
            bad.append(name)
            continue
        if not torch.equal(x, fixture_tensor(t, dtype, shape)):
            bad.append(name + " (values)")
    check(not bad, "%s: %d tensors wrong: %s" % (path, len(bad), bad[:5]))
    with zipfile.ZipFile(path) as z:
        check(z.testzip() is None, "%s: zipfile finds a bad CRC" % path)
    return sd


def cmd_fixtures(d):
    mixed = check_state_dict(os.path.join(d, "mixed.pth"), MIXED)
    check_state_dict(os.path.join(d, "many.pth"), MANY)
    # z64.pth: the same tensors with every offset and size >= 64 moved into zip64 extras. torch's miniz reader refuses
    # it (it bounds-checks 0xFFFFFFFF + 30 + size against the file size, which only a real > 4 GiB file passes), so
    # Python's zipfile reads it: the extras must give back the right offsets, sizes and CRCs.
    with zipfile.ZipFile(os.path.join(d, "z64.pth")) as z, zipfile.ZipFile(os.path.join(d, "mixed.pth")) as m:
        check(z.testzip() is None, "z64.pth: zipfile finds a bad CRC")
        infos = z.infolist()
        check([i.filename.replace("z64/", "mixed/", 1) for i in infos] == m.namelist(), "z64.pth: entry names")
        check(all(z.read(i) == m.read(i.filename.replace("z64/", "mixed/", 1)) for i in infos),
              "z64.pth: entry contents differ from mixed.pth's")
        check(all(len(i.extra) >= 12 and i.extra[:2] == b"\x01\x00" for i in infos[1:]),
              "z64.pth: a zip64 extra expected on every entry after the first")

    with tempfile.TemporaryDirectory() as tmp:
        # A dict of <= 10 tensors: torch 1.13 writes exactly our bytes.
        ours = os.path.join(d, "nbo", "mixed.pth")
        theirs = os.path.join(tmp, "mixed.pth")  # same basename, so the same archive folder name
        torch.save(mixed, theirs)
        a, b = open(ours, "rb").read(), open(theirs, "rb").read()
        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        check(a == b, "nbo/mixed.pth differs from torch.save's bytes (sizes %d vs %d, first difference at %d)"
              % (len(a), len(b), first))
        # One tensor: byte-identical too.
        one = check_state_dict(os.path.join(d, "nbo", "one.pth"), MANY[:1])
        theirs = os.path.join(tmp, "one.pth")
        torch.save(one, theirs)
        check(open(os.path.join(d, "nbo", "one.pth"), "rb").read() == open(theirs, "rb").read(),
              "nbo/one.pth differs from torch.save's bytes")
        # 1000 and 1001 tensors: torch orders the data entries as strings ("0", "1", "10", "100", ...), we in numeric
        # order; the pickle and every entry's contents must still be identical.
        for name, n in (("many", N_MANY), ("thousand", 1000)):
            ours = os.path.join(d, "nbo", name + ".pth")
            theirs = os.path.join(tmp, name + ".pth")
            torch.save(check_state_dict(ours, MANY[:n]), theirs)
            with zipfile.ZipFile(ours) as za, zipfile.ZipFile(theirs) as zb:
                check(sorted(za.namelist()) == sorted(zb.namelist()), "%s: entry names differ from torch.save's" % ours)
                pkl = name + "/data.pkl"
                check(za.read(pkl) == zb.read(pkl), "%s: data.pkl differs from torch.save's" % ours)
                diff = [e for e in zb.namelist() if e in za.namelist() and za.read(e) != zb.read(e)]
                check(not diff, "%s: entries differ from torch.save's: %s" % (ours, diff[:5]))


# ---- wt-make-model ---------------------------------------------------------------------------------------------------

PARAMS = {
    "tiny": {"dim": 512, "n_layers": 4, "n_heads": 4, "n_kv_heads": 1, "vocab_size": 128256, "multiple_of": 256,
             "norm_eps": 1e-05, "rope_theta": 500000.0},
    # Meta-Llama-3-8B/params.json (formats.md §1)
    "llama3-8b": {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
                  "multiple_of": 1024, "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
}
META_KEY_ORDER = ["dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "ffn_dim_multiplier",
                  "norm_eps", "rope_theta", "use_scaled_rope"]

U64 = np.uint64
GAMMA = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def mix64_int(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def rng_key(seed, stream):
    return mix64_int(mix64_int((seed + GAMMA) & MASK) ^ ((stream * 0xD1B54A32D192ED03 + GAMMA) & MASK))


def rng_normal(key, idx):
    """numpy twin of rng.h rng_normal for an array of element indices (uint64 arithmetic wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        z = U64(key) + (idx.astype(U64) + U64(1)) * U64(GAMMA)
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        z = z ^ (z >> U64(31))
    lanes = [((z >> U64(s)) & U64(0xFFFF)).astype(np.int64) for s in (0, 16, 32, 48)]
    s = lanes[0] + lanes[1] + lanes[2] + lanes[3]
    return (s - 131070).astype(np.float64) * (math.sqrt(3.0) / 65536.0)


def bf16_bits(values_f64):
    """float64 -> float32 -> bf16 (round to nearest even both times), as the C code's f32_to_bf16((float)v)."""
    u = values_f64.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + U64(0x7FFF) + ((u >> U64(16)) & U64(1))) >> U64(16)).astype(np.uint16)


def ffn_hidden(dim, multiple_of, mult):
    hidden = int(2 * (4 * dim) / 3)
    if mult is not None:
        hidden = int(mult * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def model_plan(p):
    """Names, shapes and (mean, std) of every tensor in Meta's order, as documented in wt-make-model.c."""
    D, L, H, Hkv, V = p["dim"], p["n_layers"], p["n_heads"], p["n_kv_heads"], p["vocab_size"]
    Dh = D // H
    F = ffn_hidden(D, p["multiple_of"], p.get("ffn_dim_multiplier"))
    branch = math.sqrt(2.0 * L)
    plan = [("tok_embeddings.weight", (V, D), 0.0, 0.5)]
    for l in range(L):
        a, f = "layers.%d.attention." % l, "layers.%d.feed_forward." % l
        plan += [(a + "wq.weight", (H * Dh, D), 0.0, math.sqrt(3.0) / math.sqrt(D)),
                 (a + "wk.weight", (Hkv * Dh, D), 0.0, math.sqrt(3.0) / math.sqrt(D)),
                 (a + "wv.weight", (Hkv * Dh, D), 0.0, 1.0 / math.sqrt(D)),
                 (a + "wo.weight", (D, H * Dh), 0.0, 1.0 / math.sqrt(H * Dh) / branch),
                 (f + "w1.weight", (F, D), 0.0, 1.0 / math.sqrt(D)),
                 (f + "w3.weight", (F, D), 0.0, 1.0 / math.sqrt(D)),
                 (f + "w2.weight", (D, F), 0.0, 1.0 / math.sqrt(F) / branch),
                 ("layers.%d.attention_norm.weight" % l, (D,), 1.0, 0.05),
                 ("layers.%d.ffn_norm.weight" % l, (D,), 1.0, 0.05)]
    plan += [("norm.weight", (D,), 1.0, 0.05), ("output.weight", (V, D), 0.0, 3.0 / math.sqrt(D))]
    return plan


def cmd_model(d, preset, seed, layers=None):
    seed = int(seed)
    want = dict(PARAMS[preset])
    if layers is not None:
        want["n_layers"] = int(layers)
    params_text = open(os.path.join(d, "params.json")).read()
    params = json.loads(params_text)
    check(params == want, "params.json: %s, expected %s" % (params, want))
    check(list(params.keys()) == [k for k in META_KEY_ORDER if k in params], "params.json: keys not in Meta's order")
    check(all(type(params[k]) is type(want[k]) for k in want if k in params),
          "params.json: a value has the wrong JSON type (int vs float)")

    sd = torch.load(os.path.join(d, "consolidated.00.pth"), map_location="cpu", weights_only=True)
    plan = model_plan(want)
    check(list(sd.keys()) == [n for n, _, _, _ in plan], "names or order differ from Meta's: %s ..." % list(sd.keys())[:12])
    bad_meta, bad_values, checked = [], [], 0
    rng = np.random.default_rng(seed)
    for stream, (name, shape, mean, std) in enumerate(plan):
        x = sd.get(name)
        if x is None or x.dtype != torch.bfloat16 or tuple(x.shape) != shape or not x.is_contiguous():
            bad_meta.append(name)
            continue
        flat = x.reshape(-1).view(torch.int16).numpy().view(np.uint16)
        numel = flat.size
        if numel <= 1 << 20:
            idx = np.arange(numel, dtype=np.int64)
        else:  # big matrices: whole first, middle and last rows, plus scattered elements
            cols = shape[-1]
            rows = [0, 1, shape[0] // 2, shape[0] - 1]
            idx = np.concatenate([np.arange(r * cols, (r + 1) * cols, dtype=np.int64) for r in rows] +
                                 [rng.integers(0, numel, 4096, dtype=np.int64)])
        expect = bf16_bits(mean + std * rng_normal(rng_key(seed, stream), idx))
        checked += idx.size
        if not np.array_equal(flat[idx], expect):
            bad_values.append("%s (%d of %d differ)" % (name, int((flat[idx] != expect).sum()), idx.size))
    check(not bad_meta, "dtype/shape wrong for %s" % bad_meta[:5])
    check(not bad_values, "values differ from the documented generator: %s" % bad_values[:5])
    # the distribution itself: the embedding's sample std and the norm weights' mean
    emb = sd["tok_embeddings.weight"][:256].float()
    check(abs(emb.std().item() - 0.5) < 0.01, "tok_embeddings std %.4f, expected ~0.5" % emb.std().item())
    check(abs(sd["norm.weight"].float().mean().item() - 1.0) < 0.02, "norm.weight mean should be ~1")
    print("model %s: %d tensors, %d values recomputed and compared" % (d, len(plan), checked))


# ---- forward-pass sanity ---------------------------------------------------------------------------------------------

TUTORIAL_IDS = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220]


def cmd_forward(d):
    p = json.load(open(os.path.join(d, "params.json")))
    sd = torch.load(os.path.join(d, "consolidated.00.pth"), map_location="cpu", weights_only=True)
    W = {k: v.float() for k, v in sd.items()}
    D, H, Hkv, L = p["dim"], p["n_heads"], p["n_kv_heads"], p["n_layers"]
    Dh, eps, T = D // H, p["norm_eps"], len(TUTORIAL_IDS)

    def rmsnorm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    freqs = 1.0 / (p["rope_theta"] ** (torch.arange(0, Dh, 2)[: Dh // 2].float() / Dh))
    cis = torch.polar(torch.ones(T, Dh // 2), torch.outer(torch.arange(T).float(), freqs))

    def rope(x):  # [T, heads, Dh], Meta's interleaved pairs
        xc = torch.view_as_complex(x.reshape(T, x.shape[1], Dh // 2, 2))
        return torch.view_as_real(xc * cis[:, None, :]).reshape(x.shape)

    h = W["tok_embeddings.weight"][torch.tensor(TUTORIAL_IDS)]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(L):
        pre = "layers.%d." % l
        x = rmsnorm(h, W[pre + "attention_norm.weight"])
        q = rope((x @ W[pre + "attention.wq.weight"].T).view(T, H, Dh))
        k = rope((x @ W[pre + "attention.wk.weight"].T).view(T, Hkv, Dh))
        v = (x @ W[pre + "attention.wv.weight"].T).view(T, Hkv, Dh)
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(Dh)  # [H, T, T]
        probs = torch.softmax(scores + mask, dim=-1)
        spread = scores.std().item()
        # the largest weight of each row from position 4 on, against the uniform 1/(t+1)
        peak = torch.stack([probs[:, t, : t + 1].max(-1).values * (t + 1) for t in range(4, T)]).mean().item()
        attn = torch.einsum("hts,shd->thd", probs, v).reshape(T, D)
        h = h + attn @ W[pre + "attention.wo.weight"].T
        x = rmsnorm(h, W[pre + "ffn_norm.weight"])
        h = h + (torch.nn.functional.silu(x @ W[pre + "feed_forward.w1.weight"].T) *
                 (x @ W[pre + "feed_forward.w3.weight"].T)) @ W[pre + "feed_forward.w2.weight"].T
        rms = h.pow(2).mean().sqrt().item()
        print("layer %2d: score std %.2f, row peak %.1fx uniform, residual rms %.3f" % (l, spread, peak, rms))
        if l == 0:
            check(1.5 <= spread <= 6.0, "layer 0 score std %.2f: expected a few units (1.5..6)" % spread)
            check(peak >= 2.0, "layer 0 attention is nearly uniform (peak %.2fx uniform)" % peak)
        check(0.2 <= rms <= 5.0, "layer %d residual rms %.3f outside 0.2..5" % (l, rms))
    logits = rmsnorm(h, W["norm.weight"])[-1] @ W["output.weight"].T
    top2 = logits.topk(2).values
    print("logits: std %.2f, argmax %d, top-1 margin %.3f" % (logits.std().item(), logits.argmax().item(),
                                                               (top2[0] - top2[1]).item()))
    check(1.0 <= logits.std().item() <= 10.0, "logit std %.2f outside 1..10" % logits.std().item())


def cmd_npy(d, *name_npy_pairs):
    path = d if d.endswith(".pth") else os.path.join(d, "consolidated.00.pth")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for name, npy_path in zip(name_npy_pairs[0::2], name_npy_pairs[1::2]):
        ref = np.load(npy_path)
        x = sd[name].float().numpy()
        check(ref.dtype == np.float32 and ref.shape == x.shape,
              "%s: npy %s %s vs torch %s" % (name, ref.dtype, ref.shape, x.shape))
        check(ref.shape == x.shape and np.array_equal(ref, x), "%s: values differ between torch.load and %s" % (name, npy_path))


def main(argv):
    cmds = {"fixtures": (cmd_fixtures, 1, 1), "model": (cmd_model, 3, 4), "forward": (cmd_forward, 1, 1), "npy": (cmd_npy, 3, 99)}
    if (len(argv) < 2 or argv[1] not in cmds or not cmds[argv[1]][1] <= len(argv) - 2 <= cmds[argv[1]][2]
            or (argv[1] == "npy" and len(argv) % 2 != 1)):
        print(__doc__, file=sys.stderr)
        return 2
    cmds[argv[1]][0](*argv[2:])
    print("%s: %s" % (argv[1], "ok" if failures == 0 else "%d failures" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
