#!/usr/bin/python3
"""torch_save_cases.py: checkpoints written by the real torch.save (Debian's python3-torch), for the C reader's tests.

    /usr/bin/python3 tests/reference/torch_save_cases.py write OUTDIR
        writes the cases below into OUTDIR and, for each good file F, OUTDIR/F.manifest: one line per tensor,
        "NAME DTYPE [d0, d1] crc32=XXXXXXXX", as build/bin/wt-inspect prints them (without offset=).
    /usr/bin/python3 tests/reference/torch_save_cases.py check-dumps FILE.pth DUMPDIR
        loads FILE.pth with torch and checks that DUMPDIR/NAME.npy (written by wt-inspect --dump) holds exactly the
        bits of t.float().numpy() (bf16) or t.numpy() (every other dtype), for every tensor NAME of the file.
    /usr/bin/python3 tests/reference/torch_save_cases.py corrupt-cd IN OUT
        copies IN to OUT with the first central-directory signature overwritten.

Good files: cases.pth (dtypes, 0-d to 4-d, a shared storage, strided views with storage offsets, an nn.Parameter,
an empty tensor, bf16/f16 special values), cases_p4.pth (the same with pickle_protocol=4), ordered.pth (an
nn.Module state_dict: OrderedDict with _metadata), nested.pth ({"model": state_dict, "step": 7}), many.pth
(1001 tensors: LONG_BINPUT memo indices, two SETITEMS batches),
meta1/ (params.json + consolidated.00.pth of a tiny Llama) and meta2/ (the same weights in two model-parallel shards).
Bad files: legacy.pth (_use_new_zipfile_serialization=False), torchscript.pt (torch.jit.save), evil_*.pth (a
data.pkl that runs a shell command that creates OUTDIR/pwned_*), storage_small.pth (a view larger than its storage),
entry_short.pth (a storage entry with fewer bytes than the pickle says), big_endian.pth (byteorder "big"),
meta_badshape/ (wk of the wrong shape).
"""
import collections
import io
import json
import os
import pickle
import shutil
import sys
import zipfile
import zlib

import numpy as np
import torch

DTYPE_NAMES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
               torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8",
               torch.bool: "bool"}


def tensor_bytes(t):
    """The tensor's bytes in row-major order, as the C side hashes and dumps them."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def manifest_line(name, t):
    shape = "[" + ", ".join(str(d) for d in t.shape) + "]"
    return "%s %s %s crc32=%08x" % (name, DTYPE_NAMES[t.dtype], shape, zlib.crc32(tensor_bytes(t)))


def save_with_manifest(obj, path, state_dict, **kw):
    torch.save(obj, path, **kw)
    with open(path + ".manifest", "w") as f:
        for name, t in state_dict.items():
            f.write(manifest_line(name, t) + "\n")


def cases_dict():
    g = torch.Generator().manual_seed(1234)
    d = {}
    m = torch.randn(5, 7, generator=g).to(torch.bfloat16)
    specials = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.0, 1e-40, 3.0e38, -1.5])
    m[0, :] = specials.to(torch.bfloat16)
    d["bf16.matrix"] = m
    h = torch.randn(9, generator=g).to(torch.float16)
    h[:4] = torch.tensor([float("inf"), -0.0, 6e-8, 65504.0]).to(torch.float16)
    d["f16.vector"] = h
    d["f32.cube"] = torch.randn(2, 3, 4, generator=g)
    d["f32.four_d"] = torch.randn(2, 1, 3, 2, generator=g)
    d["f32.scalar"] = torch.tensor(3.25)
    d["bf16.scalar"] = torch.tensor(-7.5, dtype=torch.bfloat16)
    # One storage, three tensors: the whole, a row (storage offset 12) and the transpose (strides (1, 6)).
    base = torch.randn(4, 6, generator=g)
    d["shared.base"] = base
    d["shared.row2"] = base[2]
    d["shared.transposed"] = base.t()
    # A strided view with an offset, saved without .contiguous(): offset 6, strides (6, 2).
    w = torch.randn(4, 6, generator=g).to(torch.bfloat16)
    d["view.strided"] = w[1:, ::2]
    d["f64.vector"] = torch.randn(3, generator=g, dtype=torch.float64)
    d["i64.ids"] = torch.arange(10) * 100003
    d["i32.small"] = torch.tensor([-1, 2, -3], dtype=torch.int32)
    d["i16.small"] = torch.tensor([-300, 300], dtype=torch.int16)
    d["i8.small"] = torch.tensor([-128, 127], dtype=torch.int8)
    d["u8.bytes"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    d["bool.mask"] = torch.tensor([True, False, True])
    d["f32.empty"] = torch.zeros(0, 3)
    d["param.weight"] = torch.nn.Parameter(torch.randn(3, 2, generator=g))
    d["f32.large_dim"] = torch.randn(70000, generator=g)  # 70000 needs BININT (J), 300 BININT2 (M)
    d["f16.rows"] = torch.randn(300, 2, generator=g).to(torch.float16)
    return d


def tiny_llama(seed=7):
    """A tiny Llama in Meta's names and layout, and its params.json."""
    params = {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 256, "multiple_of": 32,
              "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0}
    D, H, Hkv, V = 64, 4, 2, 256
    Dh = D // H
    F = 224  # int(2*4*64/3) = 170 -> int(1.3*170) = 221 -> multiple of 32 -> 224
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g) * 0.1).to(torch.bfloat16)

    sd = {"tok_embeddings.weight": r(V, D)}
    for L in range(params["n_layers"]):
        p = "layers.%d." % L
        sd[p + "attention.wq.weight"] = r(H * Dh, D)
        sd[p + "attention.wk.weight"] = r(Hkv * Dh, D)
        sd[p + "attention.wv.weight"] = r(Hkv * Dh, D)
        sd[p + "attention.wo.weight"] = r(D, H * Dh)
        sd[p + "feed_forward.w1.weight"] = r(F, D)
        sd[p + "feed_forward.w2.weight"] = r(D, F)
        sd[p + "feed_forward.w3.weight"] = r(F, D)
        sd[p + "attention_norm.weight"] = (1 + r(D)).to(torch.bfloat16)
        sd[p + "ffn_norm.weight"] = (1 + r(D)).to(torch.bfloat16)
    sd["norm.weight"] = (1 + r(D)).to(torch.bfloat16)
    sd["output.weight"] = r(V, D)
    return params, sd


def split_dim(name):
    """Model-parallel cut of each Meta tensor (fairscale): 0 column-parallel, 1 row-parallel, None replicated."""
    if name in ("tok_embeddings.weight", "output.weight") or name.endswith(
            ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "feed_forward.w1.weight",
             "feed_forward.w3.weight")):
        return 0
    if name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
        return 1
    return None


def write_meta_dir(out, params, sd, n_shards, manifest_sd=None):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(params, f)
    for s in range(n_shards):
        shard = {}
        for name, t in sd.items():
            dim = split_dim(name)
            shard[name] = t.clone() if dim is None else t.chunk(n_shards, dim=dim)[s].clone()
        torch.save(shard, os.path.join(out, "consolidated.%02d.pth" % s))
    with open(os.path.join(out, "tokenizer.model"), "w") as f:
        f.write("")  # only its presence is recorded by the reader
    with open(out.rstrip("/") + ".manifest", "w") as f:
        for name, t in (manifest_sd or sd).items():
            f.write(manifest_line(name, t) + "\n")


class FakeStorage:
    """Stands for a storage in a hand-made pickle; persistent_id turns it into torch's storage tuple."""

    def __init__(self, storage_class, key, numel):
        self.pid = ("storage", storage_class, key, "cpu", numel)


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, FakeStorage) else None


def write_torch_like_zip(path, pickle_bytes, storages, extra=None):
    """A zip laid out like torch.save's: archive/data.pkl, archive/data/KEY, archive/version (Python's zipfile,
    so no zip64 records and no alignment: the reader must not depend on either)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        for name, data in (extra or {}).items():
            z.writestr("archive/" + name, data)
        for key, data in storages.items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", "3\n")


def torch_like_pickle(obj, protocol=2):
    buf = io.BytesIO()
    TorchLikePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


class Evil:
    """Unpickling this calls func(arg): what a malicious checkpoint does."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def write_bad_files(out):
    # Legacy format: a sequence of pickles starting with the magic number.
    torch.save({"w": torch.ones(2, 2)}, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    # TorchScript archive.
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(out, "torchscript.pt"))
    # Malicious pickles: if anything ran them, a marker file would appear. os.system pickles as "posix system".
    for tag, func, protocol in [("os_system", os.system, 2), ("eval", eval, 2), ("posix_p4", os.system, 4)]:
        marker = os.path.join(out, "pwned_" + tag)
        cmd = "touch '%s'" % marker
        arg = cmd if func is os.system else "__import__('os').system(%r)" % cmd
        good = FakeTensor(FakeStorage(torch.FloatStorage, "0", 4), 0, (4,), (1,))
        payload = {"ok.weight": good, "evil": Evil(func, arg)}
        write_torch_like_zip(os.path.join(out, "evil_%s.pth" % tag), torch_like_pickle(payload, protocol),
                             {"0": np.zeros(4, np.float32).tobytes()})
    # A (10, 10) view of a storage of 50 floats.
    t = FakeTensor(FakeStorage(torch.FloatStorage, "0", 50), 0, (10, 10), (10, 1))
    write_torch_like_zip(os.path.join(out, "storage_small.pth"), torch_like_pickle({"w": t}),
                         {"0": np.zeros(50, np.float32).tobytes()})
    # The pickle says 100 floats, the entry holds 50.
    t = FakeTensor(FakeStorage(torch.FloatStorage, "0", 100), 0, (10, 10), (10, 1))
    write_torch_like_zip(os.path.join(out, "entry_short.pth"), torch_like_pickle({"w": t}),
                         {"0": np.zeros(50, np.float32).tobytes()})
    # A good tensor in a big-endian archive, and the same archive saying "little" (which must load).
    t = FakeTensor(FakeStorage(torch.FloatStorage, "0", 4), 0, (4,), (1,))
    for order in ("big", "little"):
        write_torch_like_zip(os.path.join(out, "%s_endian.pth" % order), torch_like_pickle({"w": t}),
                             {"0": np.arange(4, dtype=np.float32).tobytes()}, extra={"byteorder": order})


def write(out):
    os.makedirs(out, exist_ok=True)
    d = cases_dict()
    save_with_manifest(d, os.path.join(out, "cases.pth"), d)
    save_with_manifest(d, os.path.join(out, "cases_p4.pth"), d, pickle_protocol=4)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2, bias=False))
    sd = model.state_dict()  # an OrderedDict with a _metadata attribute (pickled with BUILD)
    save_with_manifest(sd, os.path.join(out, "ordered.pth"), sd)
    save_with_manifest({"model": sd, "step": 7}, os.path.join(out, "nested.pth"), sd)
    g = torch.Generator().manual_seed(5)
    many = {"t.%04d" % i: torch.randn(i % 3 + 1, generator=g) for i in range(1001)}
    save_with_manifest(many, os.path.join(out, "many.pth"), many)
    params, llama = tiny_llama()
    write_meta_dir(os.path.join(out, "meta1"), params, llama, 1)
    write_meta_dir(os.path.join(out, "meta2"), params, llama, 2)
    bad = dict(llama)
    bad["layers.1.attention.wk.weight"] = bad["layers.1.attention.wk.weight"][:8].clone()
    write_meta_dir(os.path.join(out, "meta_badshape"), params, bad, 1)
    write_bad_files(out)


def check_dumps(path, dump_dir):
    state = torch.load(path)
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    bad = 0
    for name, t in state.items():
        t = t.detach()
        want = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        got = np.load(os.path.join(dump_dir, name + ".npy"))
        if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != np.ascontiguousarray(want).tobytes():
            print("MISMATCH %s: got %s %s, want %s %s" % (name, got.dtype, got.shape, want.dtype, want.shape))
            bad += 1
    print("%d tensors, %d mismatches" % (len(state), bad))
    return 1 if bad else 0


def corrupt_cd(src, dst):
    data = bytearray(open(src, "rb").read())
    pos = data.find(b"PK\x01\x02")
    if pos < 0:
        sys.exit("no central directory in " + src)
    data[pos:pos + 4] = b"XXXX"
    open(dst, "wb").write(data)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check-dumps":
        sys.exit(check_dumps(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "corrupt-cd":
        corrupt_cd(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
