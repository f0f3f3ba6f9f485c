#!/usr/bin/python3
"""hf_cases.py: the PyTorch side of tests/test_hf.sh (HF safetensors <-> Meta layout).

Run with Debian's /usr/bin/python3 (torch 1.13, numpy). The `safetensors` and `transformers` packages are not
needed: safetensors files are read and written here by hand from the format's spec (formats.md §5), with
struct + json, and the q/k permutation is the one of transformers' convert_llama_weights_to_hf.py:

    permute(w, n_heads, dim1, dim2)   = w.view(n_heads, dim1//n_heads//2, 2, dim2).transpose(1,2).reshape(dim1, dim2)

Commands (each exits 0 on success, 1 with a message on a mismatch):
  make-meta OUT [--seed S] [--scaled-rope] [--tied]  tiny random Llama in Meta's layout: params.json, consolidated.00.pth
                                                (torch.save, bf16), a stand-in tokenizer.model
  meta-to-hf-py META OUT [--shards K] [--inv-freq] [--tied] [--dtype bf16|f32]
                                                the reference conversion: HF names, permuted q/k, config.json,
                                                safetensors (sharded with an index when K > 1)
  compare-meta META_A META_B [--as-f32]         same params (derived sizes) and tensors, bit for bit, same order
  names META                                    the tensor names of META, one a line
  compare-npy META NPY_DIR                      NPY_DIR/<name>.npy (wt-inspect --dump) == META tensors, bit for bit
  check-hf HF_DIR META                          our meta-to-hf output: header layout, names, permuted rows bit for
                                                bit, config.json fields, generation_config.json, tokenizer copy
  rope-identity HF_DIR META                     Meta-RoPE on the Meta weights == HF rotate_half RoPE on the HF
                                                weights that our tool wrote (and the un-permuted ones fail it)
  transformers-check HF_DIR META                transformers' LlamaForCausalLM on HF_DIR gives the logits of Meta's
                                                forward (written here, float32) on META (needs transformers)
  make-bad KIND META OUT                        an HF directory broken in one way (see BAD_KINDS)
  make-tokenizer OUT_JSON EXPECTED_MODEL        a small byte-level BPE tokenizer.json and the tokenizer.model
                                                formats.md §4 says it converts to
"""
import base64
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ---- the tiny model ---------------------------------------------------------------------------------------------
TINY = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=300, multiple_of=32, norm_eps=1e-05,
            rope_theta=500000.0)


def ffn_hidden(p):
    """Meta's FeedForward rule (model.py)."""
    hidden = int(2 * (4 * p["dim"]) / 3)
    if p.get("ffn_dim_multiplier") is not None:
        hidden = int(p["ffn_dim_multiplier"] * hidden)
    m = p.get("multiple_of", 256)
    return m * ((hidden + m - 1) // m)


def meta_names(n_layers):
    names = ["tok_embeddings.weight"]
    for layer in range(n_layers):
        for s in ["attention.wq", "attention.wk", "attention.wv", "attention.wo", "feed_forward.w1",
                  "feed_forward.w2", "feed_forward.w3", "attention_norm", "ffn_norm"]:
            names.append(f"layers.{layer}.{s}.weight")
    return names + ["norm.weight", "output.weight"]


def make_meta(out, seed, scaled_rope, tied):
    p = dict(TINY)
    if scaled_rope:
        p["use_scaled_rope"] = True
    D, H, KV, V, F = p["dim"], p["n_heads"], p["n_kv_heads"], p["vocab_size"], ffn_hidden(p)
    hd = D // H
    g = torch.Generator().manual_seed(seed)
    shapes = {"tok_embeddings.weight": [V, D], "norm.weight": [D], "output.weight": [V, D]}
    for layer in range(p["n_layers"]):
        pre = f"layers.{layer}."
        shapes.update({pre + "attention.wq.weight": [H * hd, D], pre + "attention.wk.weight": [KV * hd, D],
                       pre + "attention.wv.weight": [KV * hd, D], pre + "attention.wo.weight": [D, H * hd],
                       pre + "feed_forward.w1.weight": [F, D], pre + "feed_forward.w2.weight": [D, F],
                       pre + "feed_forward.w3.weight": [F, D], pre + "attention_norm.weight": [D],
                       pre + "ffn_norm.weight": [D]})
    sd = {}
    for name in meta_names(p["n_layers"]):
        scale = 1.0 if name.endswith("norm.weight") else 0.3
        t = torch.randn(shapes[name], generator=g) * scale + (1.0 if name.endswith("norm.weight") else 0.0)
        sd[name] = t.to(torch.bfloat16)
    if tied:  # what a tied HF model (no lm_head) means in Meta's layout
        sd["output.weight"] = sd["tok_embeddings.weight"].clone()
    os.makedirs(out, exist_ok=True)
    torch.save(sd, os.path.join(out, "consolidated.00.pth"))
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(p, f)
    # Not a real tokenizer: only its bytes travel (meta-to-hf copies it to original/).
    with open(os.path.join(out, "tokenizer.model"), "w") as f:
        for i in range(256):
            f.write(base64.b64encode(bytes([i])).decode() + f" {i}\n")


def load_meta(meta_dir):
    with open(os.path.join(meta_dir, "params.json")) as f:
        p = json.load(f)
    sd = torch.load(os.path.join(meta_dir, "consolidated.00.pth"), map_location="cpu")
    return p, sd


# ---- safetensors by hand ------------------------------------------------------------------------------------------
ST_DTYPES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}
ST_TORCH = {v: k for k, v in ST_DTYPES.items()}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def tensor_from_bytes(b, dtype, shape):
    if dtype == "BF16":
        return torch.from_numpy(np.frombuffer(b, dtype=np.int16).copy()).view(torch.bfloat16).reshape(shape)
    npd = {"F16": np.float16, "F32": np.float32}[dtype]
    return torch.from_numpy(np.frombuffer(b, dtype=npd).copy()).reshape(shape)


def write_safetensors(path, tensors, header_hook=None):
    """tensors: list of (name, tensor). The reference writer's layout: by dtype size (desc), then by name."""
    items = sorted(tensors, key=lambda nt: (-nt[1].element_size(), nt[0]))
    header, blobs, pos = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    if header_hook:
        header_hook(header)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    """Returns (n_header, header dict in file order, {name: tensor}) and checks the format's rules."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    raw = data[8:8 + n]
    header = json.loads(raw, object_pairs_hook=lambda kv: dict(kv))
    base = 8 + n
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items() if k != "__metadata__")
    pos = 0
    for b, e, k in spans:
        assert b == pos, f"{path}: {k} starts at {b}, expected {pos}"
        pos = e
    assert base + pos == len(data), f"{path}: tensors end at {base + pos}, file has {len(data)} bytes"
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = tensor_from_bytes(data[base + b:base + e], v["dtype"], v["shape"])
    return n, raw, header, out


# ---- Meta -> HF, the reference way ----------------------------------------------------------------------------------
def permute(w, n_heads, dim1, dim2):
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def hf_name(meta):
    if meta == "tok_embeddings.weight":
        return "model.embed_tokens.weight"
    if meta == "norm.weight":
        return "model.norm.weight"
    if meta == "output.weight":
        return "lm_head.weight"
    parts = meta.split(".")
    layer, rest = parts[1], ".".join(parts[2:])
    m = {"attention.wq.weight": "self_attn.q_proj.weight", "attention.wk.weight": "self_attn.k_proj.weight",
         "attention.wv.weight": "self_attn.v_proj.weight", "attention.wo.weight": "self_attn.o_proj.weight",
         "feed_forward.w1.weight": "mlp.gate_proj.weight", "feed_forward.w2.weight": "mlp.down_proj.weight",
         "feed_forward.w3.weight": "mlp.up_proj.weight", "attention_norm.weight": "input_layernorm.weight",
         "ffn_norm.weight": "post_attention_layernorm.weight"}[rest]
    return f"model.layers.{layer}.{m}"


def hf_tensors(p, sd):
    """Meta state dict -> list of (HF name, tensor) with q/k permuted."""
    D, H = p["dim"], p["n_heads"]
    KV = p.get("n_kv_heads", H)
    hd = D // H
    out = []
    for name, t in sd.items():
        if name.endswith("attention.wq.weight"):
            t = permute(t, H, H * hd, D)
        elif name.endswith("attention.wk.weight"):
            t = permute(t, KV, KV * hd, D)  # n_kv_heads, not n_heads: the GQA pitfall
        out.append((hf_name(name), t))
    return out


def hf_config(p, tied, dtype="bfloat16"):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": p["dim"],
           "intermediate_size": ffn_hidden(p), "num_attention_heads": p["n_heads"],
           "num_key_value_heads": p.get("n_kv_heads", p["n_heads"]), "num_hidden_layers": p["n_layers"],
           "vocab_size": p["vocab_size"], "rms_norm_eps": p["norm_eps"], "rope_theta": p["rope_theta"],
           "max_position_embeddings": 8192, "hidden_act": "silu", "tie_word_embeddings": tied,
           "torch_dtype": dtype, "rope_scaling": None}
    if p.get("use_scaled_rope"):
        cfg["rope_scaling"] = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 8192, "rope_type": "llama3"}
    return cfg


def meta_to_hf_py(meta_dir, out, shards, inv_freq, tied, dtype):
    p, sd = load_meta(meta_dir)
    tensors = hf_tensors(p, sd)
    if tied:  # a tied model has no lm_head: the output projection is the embedding (make it so)
        tensors = [(n, t) for n, t in tensors if n != "lm_head.weight"]
    if dtype == "f32":
        tensors = [(n, t.float()) for n, t in tensors]
    if inv_freq:  # old conversions saved these buffers; readers must ignore them
        hd = p["dim"] // p["n_heads"]
        inv = 1.0 / (p["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        tensors += [(f"model.layers.{i}.self_attn.rotary_emb.inv_freq", inv) for i in range(p["n_layers"])]
    os.makedirs(out, exist_ok=True)
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    else:
        weight_map, total = {}, 0
        per = math.ceil(len(tensors) / shards)
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = tensors[s * per:(s + 1) * per]
            write_safetensors(os.path.join(out, fname), part)
            for n, t in part:
                weight_map[n] = fname
                total += t.numel() * t.element_size()
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hf_config(p, tied, "float32" if dtype == "f32" else "bfloat16"), f, indent=2)


# ---- comparisons --------------------------------------------------------------------------------------------------
def fail(msg):
    print("MISMATCH: " + msg, file=sys.stderr)
    sys.exit(1)


def same_bits(a, b):
    if a.dtype != b.dtype or list(a.shape) != list(b.shape):
        return False
    if a.dtype == torch.bfloat16:
        return torch.equal(a.view(torch.int16), b.view(torch.int16))
    return torch.equal(a.view(torch.int32) if a.dtype == torch.float32 else a, b.view(torch.int32) if b.dtype == torch.float32 else b)


def derived(p):
    H = p["n_heads"]
    return dict(dim=p["dim"], n_layers=p["n_layers"], n_heads=H, n_kv_heads=p.get("n_kv_heads") or H,
                vocab_size=p["vocab_size"], ffn_hidden=ffn_hidden(p), norm_eps=p.get("norm_eps", 1e-5),
                rope_theta=p.get("rope_theta", 500000.0), use_scaled_rope=bool(p.get("use_scaled_rope", False)))


def compare_meta(a_dir, b_dir, as_f32):
    pa, sa = load_meta(a_dir)
    pb, sb = load_meta(b_dir)
    if as_f32:  # A is bf16, B was written from an f32 copy of it: compare A upcast (exact)
        sa = {k: v.float() for k, v in sa.items()}
    if derived(pa) != derived(pb):
        fail(f"params differ: {derived(pa)} vs {derived(pb)}")
    if list(sa.keys()) != list(sb.keys()):
        fail(f"tensor names or order differ:\n  {list(sa.keys())}\n  {list(sb.keys())}")
    for k in sa:
        if not same_bits(sa[k], sb[k]):
            fail(f"{k}: {sa[k].dtype} {list(sa[k].shape)} vs {sb[k].dtype} {list(sb[k].shape)}, or the bits differ")
    print(f"{len(sa)} tensors identical, params {derived(pa)}")


def compare_npy(meta_dir, npy_dir):
    _, sd = load_meta(meta_dir)
    for k, t in sd.items():
        a = np.load(os.path.join(npy_dir, k + ".npy"))
        ref = t.float().numpy()  # bf16 -> f32 is exact, as wt-inspect --dump writes it
        if a.dtype != np.float32 or a.shape != ref.shape or not np.array_equal(a.view(np.int32), ref.view(np.int32)):
            fail(f"{k}: dumped {a.dtype} {a.shape} differs from Meta's {ref.shape}")
    print(f"{len(sd)} dumped tensors equal Meta's bit for bit")


def check_hf(hf_dir, meta_dir):
    p, sd = load_meta(meta_dir)
    n, raw, header, tensors = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    if n % 8 or raw[:1] != b"{":
        fail(f"header length {n} is not a multiple of 8 or does not start with '{{'")
    if header.get("__metadata__") != {"format": "pt"}:
        fail(f"__metadata__ is {header.get('__metadata__')}, transformers needs {{'format': 'pt'}}")
    names = [k for k in header if k != "__metadata__"]
    by_offset = sorted(names, key=lambda k: header[k]["data_offsets"][0])
    if by_offset != sorted(names, key=lambda k: (-torch.tensor([], dtype=ST_TORCH[header[k]["dtype"]]).element_size(), k)):
        fail("the buffer is not laid out by (element size, name) as the reference writer does")
    want = dict(hf_tensors(p, sd))
    if set(want) != set(tensors):
        fail(f"names differ: extra {set(tensors) - set(want)}, missing {set(want) - set(tensors)}")
    for k, t in want.items():
        if not same_bits(t, tensors[k]):
            fail(f"{k}: not the permuted Meta tensor bit for bit")
    with open(os.path.join(hf_dir, "config.json")) as f:
        cfg = json.load(f)
    d = derived(p)
    expect = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d["dim"],
              "intermediate_size": d["ffn_hidden"], "num_attention_heads": d["n_heads"],
              "num_key_value_heads": d["n_kv_heads"], "num_hidden_layers": d["n_layers"],
              "vocab_size": d["vocab_size"], "rms_norm_eps": d["norm_eps"], "rope_theta": d["rope_theta"],
              "max_position_embeddings": 131072 if d["use_scaled_rope"] else 8192, "bos_token_id": 128000,
              "eos_token_id": 128001, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu",
              "head_dim": d["dim"] // d["n_heads"], "attention_bias": False, "mlp_bias": False,
              "rope_scaling": hf_config(p, False)["rope_scaling"]}
    for k, v in expect.items():
        if k not in cfg or cfg[k] != v or type(cfg[k]) != type(v):
            fail(f"config.json {k}: {cfg.get(k)!r}, expected {v!r}")
    with open(os.path.join(hf_dir, "generation_config.json")) as f:
        gen = json.load(f)
    if gen.get("bos_token_id") != 128000 or gen.get("eos_token_id") != 128001 or gen.get("do_sample"):
        fail(f"generation_config.json: {gen}")
    with open(os.path.join(meta_dir, "tokenizer.model"), "rb") as f1, \
            open(os.path.join(hf_dir, "original", "tokenizer.model"), "rb") as f2:
        if f1.read() != f2.read():
            fail("original/tokenizer.model is not a copy of Meta's tokenizer.model")
    print(f"{len(want)} tensors permuted bit for bit; config.json has {len(cfg)} keys")


def rope_identity(hf_dir, meta_dir):
    """formats.md §5: Meta-RoPE(x Wq_meta^T) . Meta-RoPE(x Wk_meta^T) == HF-RoPE(x Wq_hf^T) . HF-RoPE(x Wk_hf^T)."""
    p, sd = load_meta(meta_dir)
    _, _, _, hf = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    D, H = p["dim"], p["n_heads"]
    KV = p.get("n_kv_heads", H)
    hd, T = D // H, 9
    n_rep = H // KV
    freqs = 1.0 / (p["rope_theta"] ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    t = torch.arange(T, dtype=torch.float32)
    angles = torch.outer(t, freqs)  # [T, hd/2]
    freqs_cis = torch.polar(torch.ones_like(angles), angles)
    cos = torch.cat([angles, angles], dim=-1).cos()
    sin = torch.cat([angles, angles], dim=-1).sin()
    x = torch.randn(T, D, generator=torch.Generator().manual_seed(5))

    def meta_rope(w, heads):  # model.py apply_rotary_emb: interleaved pairs as complex numbers
        q = (x @ w.float().T).view(T, heads, hd // 2, 2)
        qc = torch.view_as_complex(q.contiguous())
        return torch.view_as_real(qc * freqs_cis[:, None, :]).reshape(T, heads, hd)

    def hf_rope(w, heads):  # modeling_llama.py apply_rotary_pos_emb: rotate_half
        q = (x @ w.float().T).view(T, heads, hd)
        rot = torch.cat([-q[..., hd // 2:], q[..., : hd // 2]], dim=-1)
        return q * cos[:, None, :] + rot * sin[:, None, :]

    def scores(q, k):  # [H, T, T], query head h uses kv head h // n_rep
        k = k.repeat_interleave(n_rep, dim=1)
        return torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)

    worst = 0.0
    for layer in range(p["n_layers"]):
        wq_m, wk_m = sd[f"layers.{layer}.attention.wq.weight"], sd[f"layers.{layer}.attention.wk.weight"]
        wq_h, wk_h = hf[f"model.layers.{layer}.self_attn.q_proj.weight"], hf[f"model.layers.{layer}.self_attn.k_proj.weight"]
        s_meta = scores(meta_rope(wq_m, H), meta_rope(wk_m, KV))
        s_hf = scores(hf_rope(wq_h, H), hf_rope(wk_h, KV))
        # fp32 throughout; the two paths do the same products in a different order of rows, so they agree to a few
        # fp32 ulps of the largest score (1e-5 relative is ~80 ulps of headroom, far below any layout error).
        tol = 1e-5 * float(s_meta.abs().max())
        diff = float((s_meta - s_hf).abs().max())
        worst = max(worst, diff / tol)
        if diff > tol:
            fail(f"layer {layer}: scores differ by {diff:.3g} > {tol:.3g}")
        # Negative control: HF RoPE on the Meta-order (un-permuted) weights must NOT reproduce the scores.
        s_wrong = scores(hf_rope(wq_m, H), hf_rope(wk_m, KV))
        if float((s_meta - s_wrong).abs().max()) <= 100 * tol:
            fail(f"layer {layer}: the negative control agrees too; the check cannot tell the layouts apart")
    print(f"RoPE identity holds on {p['n_layers']} layers (worst {worst:.1%} of the tolerance)")


# ---- transformers itself (on a machine that has it: the GPU machine) -----------------------------------------------------
def apply_scaling(freqs):
    """Llama 3.1 frequency scaling, formats.md §6 (Meta's apply_scaling)."""
    scale_factor, low_freq_factor, high_freq_factor, old_context_len = 8, 1, 4, 8192
    low_wl, high_wl = old_context_len / low_freq_factor, old_context_len / high_freq_factor
    out = []
    for f in freqs.tolist():
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(f)
        elif wl > low_wl:
            out.append(f / scale_factor)
        else:
            smooth = (old_context_len / wl - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append((1 - smooth) * f / scale_factor + smooth * f)
    return torch.tensor(out, dtype=freqs.dtype)


def meta_forward(p, sd, tokens):
    """Meta's model.py forward in float32 on the Meta-layout weights: logits [T, V]."""
    D, H, L = p["dim"], p["n_heads"], p["n_layers"]
    KV = p.get("n_kv_heads") or H
    hd, T, eps = D // H, len(tokens), p.get("norm_eps", 1e-5)
    w = {k: v.float() for k, v in sd.items()}
    freqs = 1.0 / (p.get("rope_theta", 500000.0) ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    if p.get("use_scaled_rope"):
        freqs = apply_scaling(freqs)
    angles = torch.outer(torch.arange(T, dtype=torch.float32), freqs)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)

    def rms(x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g

    def rope(x):  # [T, heads, hd]
        xc = torch.view_as_complex(x.reshape(T, x.shape[1], hd // 2, 2).contiguous())
        return torch.view_as_real(xc * freqs_cis[:, None, :]).reshape(T, x.shape[1], hd)

    h = w["tok_embeddings.weight"][torch.tensor(tokens)]
    mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    for i in range(L):
        pre = f"layers.{i}."
        x = rms(h, w[pre + "attention_norm.weight"])
        q = rope((x @ w[pre + "attention.wq.weight"].T).view(T, H, hd))
        k = rope((x @ w[pre + "attention.wk.weight"].T).view(T, KV, hd)).repeat_interleave(H // KV, dim=1)
        v = (x @ w[pre + "attention.wv.weight"].T).view(T, KV, hd).repeat_interleave(H // KV, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        out = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(T, D)
        h = h + out @ w[pre + "attention.wo.weight"].T
        x = rms(h, w[pre + "ffn_norm.weight"])
        ff = torch.nn.functional.silu(x @ w[pre + "feed_forward.w1.weight"].T) * (x @ w[pre + "feed_forward.w3.weight"].T)
        h = h + ff @ w[pre + "feed_forward.w2.weight"].T
    return rms(h, w["norm.weight"]) @ w["output.weight"].T


def transformers_check(hf_dir, meta_dir):
    """LlamaForCausalLM.from_pretrained(HF_DIR) in float32 gives Meta's logits on META's weights."""
    import transformers  # only where it is installed
    p, sd = load_meta(meta_dir)
    tokens = torch.randint(0, p["vocab_size"], (12,), generator=torch.Generator().manual_seed(3)).tolist()
    ref = meta_forward(p, sd, tokens)
    model = transformers.LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        got = model(torch.tensor([tokens])).logits[0].float()
    # float32 both ways; only the order of reductions differs (a few ulps per op over a 2-layer model).
    tol = 1e-4 * float(ref.abs().max())
    diff = float((ref - got).abs().max())
    if diff > tol or not torch.equal(ref.argmax(-1), got.argmax(-1)):
        fail(f"transformers {transformers.__version__}: logits differ by {diff:.3g} (tol {tol:.3g})")
    print(f"transformers {transformers.__version__} logits == Meta reference (max diff {diff:.3g}, tol {tol:.3g})")


# ---- broken HF directories --------------------------------------------------------------------------------------------
BAD_KINDS = ["overlap", "bad-dtype", "unknown-dtype", "missing-config-key", "q-shape", "truncated", "no-norm",
             "index-names-missing-tensor"]


def make_bad(kind, meta_dir, out):
    p, sd = load_meta(meta_dir)
    tensors = hf_tensors(p, sd)
    cfg = hf_config(p, False)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.safetensors")
    if kind == "overlap":
        def hook(h):  # the second tensor in the buffer starts 2 bytes early (and the sizes no longer add up)
            k = sorted((v["data_offsets"][0], k) for k, v in h.items() if k != "__metadata__")[1][1]
            h[k]["data_offsets"] = [h[k]["data_offsets"][0] - 2, h[k]["data_offsets"][1] - 2]
        write_safetensors(path, tensors, hook)
    elif kind in ("bad-dtype", "unknown-dtype"):
        def hook(h):
            h["model.norm.weight"]["dtype"] = "F8_E4M3" if kind == "bad-dtype" else "BF17"
            h["model.norm.weight"]["shape"] = [h["model.norm.weight"]["shape"][0] * 2]  # same byte count
        write_safetensors(path, tensors, hook)
    elif kind == "missing-config-key":
        write_safetensors(path, tensors)
        del cfg["num_hidden_layers"]
    elif kind == "q-shape":  # a q_proj with one head's rows missing
        tensors = [(n, t[: -(p["dim"] // p["n_heads"])] if n.endswith("0.self_attn.q_proj.weight") else t) for n, t in tensors]
        write_safetensors(path, tensors)
    elif kind == "truncated":
        write_safetensors(path, tensors)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 100)
    elif kind == "no-norm":
        write_safetensors(path, [(n, t) for n, t in tensors if n != "model.norm.weight"])
    elif kind == "index-names-missing-tensor":
        write_safetensors(os.path.join(out, "model-00001-of-00001.safetensors"), tensors)
        wm = {n: "model-00001-of-00001.safetensors" for n, _ in tensors}
        wm["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00001.safetensors"
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f)
    else:
        raise SystemExit(f"unknown kind {kind}; one of {BAD_KINDS}")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)


# ---- a small tokenizer.json ------------------------------------------------------------------------------------------
def bytes_to_unicode():
    """GPT-2's byte -> code point table (formats.md §4)."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + n)
            n += 1
    return table


def make_tokenizer(out_json, expected_model):
    """Ranks 0..255 are the single bytes in printable-first order (as Llama 3's), then a few merged tokens."""
    b2u = bytes_to_unicode()
    order = [b for b in range(256) if ord(b2u[b]) == b] + [b for b in range(256) if ord(b2u[b]) != b]
    toks = [bytes([b]) for b in order] + [b" t", b"he", b" the", b"\n\n", "é".encode(), b"\xe4\xb8\xad"]
    vocab = {"".join(b2u[c] for c in t): i for i, t in enumerate(toks)}
    merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["Ċ", "Ċ"], ["Ã", "©"]]
    added = [{"id": len(toks) + i, "content": s, "special": True, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False}
             for i, s in enumerate(["<|begin_of_text|>", "<|end_of_text|>"])]
    tj = {"version": "1.0", "added_tokens": added,
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "ignore_merges": True, "byte_fallback": False,
                    "fuse_unk": False, "vocab": vocab, "merges": merges}}
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)  # raw UTF-8 'Ġ' etc., as HF writes it
    with open(expected_model, "wb") as f:
        for i, t in enumerate(toks):
            f.write(base64.b64encode(t) + f" {i}\n".encode())


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, args = argv[1], argv[2:]
    flags = {a for a in args if a.startswith("--")}

    def opt(name, default):
        return args[args.index(name) + 1] if name in args else default

    pos = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] not in ("--seed", "--shards", "--dtype"))]
    if cmd == "make-meta":
        make_meta(pos[0], int(opt("--seed", "1")), "--scaled-rope" in flags, "--tied" in flags)
    elif cmd == "meta-to-hf-py":
        meta_to_hf_py(pos[0], pos[1], int(opt("--shards", "1")), "--inv-freq" in flags, "--tied" in flags,
                      opt("--dtype", "bf16"))
    elif cmd == "compare-meta":
        compare_meta(pos[0], pos[1], "--as-f32" in flags)
    elif cmd == "names":
        print("\n".join(load_meta(pos[0])[1].keys()))
    elif cmd == "compare-npy":
        compare_npy(pos[0], pos[1])
    elif cmd == "check-hf":
        check_hf(pos[0], pos[1])
    elif cmd == "rope-identity":
        rope_identity(pos[0], pos[1])
    elif cmd == "transformers-check":
        transformers_check(pos[0], pos[1])
    elif cmd == "meta-forward":  # prints the argmax per position (a smoke test of the reference itself)
        p, sd = load_meta(pos[0])
        print(meta_forward(p, sd, [1, 2, 3, 4]).argmax(-1).tolist())
    elif cmd == "make-bad":
        make_bad(pos[0], pos[1], pos[2])
    elif cmd == "make-tokenizer":
        make_tokenizer(pos[0], pos[1])
    else:
        raise SystemExit(f"unknown command {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
