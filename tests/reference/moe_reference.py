#!/usr/bin/env python3
"""moe_reference.py: a PyTorch reference of a mixture-of-experts Llama (MiniMind's MoE feed-forward), written from the
equations of issue 14 / common/ref/ref_moe.h, on the CPU, to check our C reference and CUDA path against.

It reads three layouts on its own (not through our C readers):
  - ours, Meta-style: params.json (with MiniMind's MoE keys) + consolidated.00.pth, names
    layers.L.feed_forward.gate.weight, layers.L.feed_forward.experts.E.w1/w2/w3.weight, ...shared_experts.S.*;
  - MiniMind's: config.json (model_type "minimind", use_moe, ...) + one torch.save state dict (*.pth / *.bin) with
    model.layers.L.mlp.gate.weight, mlp.experts.E.{gate,up,down}_proj.weight, mlp.shared_experts.S.*, lm_head tied;
  - Mixtral's HF layout: config.json (model_type "mixtral") + model.safetensors (parsed here: 8-byte header length,
    JSON header, raw little-endian bytes) or pytorch_model.bin, with block_sparse_moe.gate / experts.E.w1/w2/w3.
RoPE: interleaved pairs on Meta-layout q/k (Meta's apply_rotary_emb), rotate_half on the HF layouts (MiniMind's and
Mixtral's own form, their rows as stored): the two are the same rotation, so this also checks our un-permutation.

The forward pass, with the rounding points of our C reference (ref_ops.h, ref_moe.h) in --precision bf16: weights
as bf16 (fp16 checkpoints are rounded to bf16, as the C programs do), products accumulated in float64 and rounded to
bf16, RMSNorm/RoPE/softmax in fp32, the gate's logits rounded like a product, its softmax, the top-k weights and their
renormalisation in fp32, the routed sum Σ_j w_j·expert_j(x) in float64 rounded once, each shared expert added with one
rounding, logits in fp32. --precision fp32 rounds nothing (weights stay their bf16 values).
    gate_scores = softmax(x · Wgᵀ);  w, idx = topk(scores, k) (torch.topk: largest first; exact ties in torch's
    CPU order, e.g. topk([.25, .25, .25, .25], 2) gives [2, 3], checked by --self-test)
    w /= Σw + 1e-20 if k > 1 and norm_topk_prob;  y = Σ w_j expert_j(x) + Σ shared(x)
    aux: seq_aux  ce[b,e] = count(b->e) / (T k / E);  alpha * mean_b Σ_e ce[b,e] mean_t s[b,t,e]
         batch    f_e = E count(e) / (N k);            alpha * Σ_e f_e mean_t s[t,e]

Usage:
  moe_reference.py MODEL_DIR --ids 1,2,3 [--layer L] [--precision bf16|fp32] [--out-dir DIR]
      writes DIR/{moe_input, gate_logits, gate_scores, topk_idx, topk_weight, routed_out, moe_out, aux_loss,
      logits}.npy for layer L (logits: the last token's, [V])
  moe_reference.py --compare REF_DIR TRACE_DIR [--logits FILE.npy]
      our chapter 20 tensors (TRACE_DIR/20_moe/*.npy) against the reference's; exit 1 on a mismatch
  moe_reference.py --aux-batch  (both aux forms on a batch of 2 sequences, printed; the C unit test uses the numbers)
  moe_reference.py --self-test
Exit 0 on success, 1 on a mismatch, 2 on bad input.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch


def input_error(path, msg):
    print(f"error: {path}: {msg}", file=sys.stderr)
    sys.exit(2)


# ---- reading the three layouts ---------------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    dtypes = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = bytearray(data[base + b:base + e])
        if info["dtype"] not in dtypes:
            input_error(path, f"{name}: dtype {info['dtype']}")
        t = torch.frombuffer(raw, dtype=dtypes[info["dtype"]]) if len(raw) else torch.zeros(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:
        return torch.load(path, map_location="cpu")


HF_LAYER = {"self_attn.q_proj.weight": "attention.wq.weight", "self_attn.k_proj.weight": "attention.wk.weight",
            "self_attn.v_proj.weight": "attention.wv.weight", "self_attn.o_proj.weight": "attention.wo.weight",
            "input_layernorm.weight": "attention_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "mlp.gate_proj.weight": "feed_forward.w1.weight", "mlp.down_proj.weight": "feed_forward.w2.weight",
            "mlp.up_proj.weight": "feed_forward.w3.weight"}
HF_PROJ = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3", "w1": "w1", "w2": "w2", "w3": "w3"}


def hf_name(name):
    """An HF (MiniMind / Mixtral / Llama) name -> our Meta-style name."""
    fixed = {"model.embed_tokens.weight": "tok_embeddings.weight", "model.norm.weight": "norm.weight",
             "lm_head.weight": "output.weight"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".")
    if parts[:2] != ["model", "layers"]:
        return None
    L, rest = parts[2], ".".join(parts[3:])
    if rest in HF_LAYER:
        return f"layers.{L}.{HF_LAYER[rest]}"
    p = rest.split(".")
    if p[0] in ("mlp", "block_sparse_moe"):
        if p[1:] == ["gate", "weight"]:
            return f"layers.{L}.feed_forward.gate.weight"
        if len(p) == 5 and p[1] in ("experts", "shared_experts") and p[3] in HF_PROJ and p[4] == "weight":
            return f"layers.{L}.feed_forward.{p[1]}.{p[2]}.{HF_PROJ[p[3]]}.weight"
    return None


def load_model(model_dir):
    """-> (cfg dict, weights {Meta-style name: bf16 tensor}, rope 'interleaved' | 'rotate_half')."""
    params, config = os.path.join(model_dir, "params.json"), os.path.join(model_dir, "config.json")
    if os.path.isfile(params):
        p = json.load(open(params))
        cfg = {"dim": p["dim"], "n_layers": p["n_layers"], "n_heads": p["n_heads"],
               "n_kv_heads": p.get("n_kv_heads") or p["n_heads"], "vocab_size": p["vocab_size"],
               "norm_eps": p.get("norm_eps", 1e-5), "rope_theta": p.get("rope_theta", 500000.0),
               "E": p.get("n_routed_experts", 0) if p.get("use_moe", True) else 0, "k": p.get("num_experts_per_tok", 2),
               "S": p.get("n_shared_experts", 1), "norm_topk_prob": p.get("norm_topk_prob", True),
               "alpha": p.get("aux_loss_alpha", 0.01), "seq_aux": p.get("seq_aux", True)}
        state = torch_load(os.path.join(model_dir, "consolidated.00.pth"))
        w = {k: v for k, v in state.items()}
        rope = "interleaved"
    elif os.path.isfile(config):
        c = json.load(open(config))
        mt = c.get("model_type", "llama")
        cfg = {"dim": c["hidden_size"], "n_layers": c["num_hidden_layers"], "n_heads": c["num_attention_heads"],
               "n_kv_heads": c.get("num_key_value_heads") or c["num_attention_heads"], "vocab_size": c["vocab_size"],
               "norm_eps": c.get("rms_norm_eps", 1e-6), "rope_theta": c.get("rope_theta", 10000.0)}
        if mt == "minimind":
            moe = c.get("use_moe", False)
            cfg.update(E=c.get("n_routed_experts", 4) if moe else 0, k=c.get("num_experts_per_tok", 2),
                       S=c.get("n_shared_experts", 1), norm_topk_prob=c.get("norm_topk_prob", True),
                       alpha=c.get("aux_loss_alpha", 0.01), seq_aux=c.get("seq_aux", True))
        elif mt == "mixtral":
            cfg.update(E=c["num_local_experts"], k=c.get("num_experts_per_tok", 2), S=0, norm_topk_prob=True,
                       alpha=c.get("router_aux_loss_coef", 0.001), seq_aux=False)
        else:
            cfg.update(E=0)
        files = sorted(os.listdir(model_dir))
        st = [f for f in files if f.endswith(".safetensors")]
        pt = [f for f in files if f.endswith(".pth") or f.endswith(".bin")]
        raw = {}
        if st:
            for f in st:
                raw.update(read_safetensors(os.path.join(model_dir, f)))
        elif len(pt) == 1:
            raw = torch_load(os.path.join(model_dir, pt[0]))
        else:
            input_error(model_dir, "expected *.safetensors or one .pth/.bin state dict")
        w = {}
        for k, v in raw.items():
            m = hf_name(k)
            if m is not None:
                w[m] = v
        if "output.weight" not in w:  # tied (MiniMind): lm_head is the embedding
            w["output.weight"] = w["tok_embeddings.weight"]
        rope = "rotate_half"
    else:
        input_error(model_dir, "neither params.json nor config.json")
    cfg["head_dim"] = cfg["dim"] // cfg["n_heads"]
    # the tracer's weights are bf16 whatever the file holds (fp16 is rounded to the nearest bf16)
    w = {k: v.to(torch.bfloat16) for k, v in w.items()}
    return cfg, w, rope


# ---- the forward pass with our rounding points ----------------------------------------------------------------

class Numerics:
    def __init__(self, precision):
        self.bf16 = precision == "bf16"

    def r(self, x):
        """the rounding point of an activation: to the nearest bf16 (ties to even), kept as fp32"""
        return x.to(torch.bfloat16).to(torch.float32) if self.bf16 else x.to(torch.float32)

    def matmul(self, x, w):
        """x [.., C] · Wᵀ, W [OC, C] bf16: accumulated in float64, rounded once"""
        return self.r((x.double() @ w.double().T).float())


def rmsnorm(n, x, w, eps):
    ms = (x.double() ** 2).mean(-1, keepdim=True).float()
    return n.r(n.r(x * (1.0 / torch.sqrt(ms + eps))) * w.float())


def rope_tables(head_dim, T, theta):
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * freqs[None, :]
    return torch.cos(ang), torch.sin(ang)  # [T, Dh/2]


def apply_rope(n, x, cos, sin, form):
    """x [T, heads, Dh] in fp32 -> rotated, rounded. interleaved: pairs (2i, 2i+1); rotate_half: (i, i + Dh/2)."""
    c, s = cos[:, None, :], sin[:, None, :]
    if form == "interleaved":
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return n.r(torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2))
    h = x.shape[-1] // 2
    x0, x1 = x[..., :h], x[..., h:]
    return n.r(torch.cat([x0 * c - x1 * s, x1 * c + x0 * s], dim=-1))


def attention(n, x, w, L, cfg, cos, sin, form):
    T, D, H, Hkv, Dh = x.shape[0], cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    q = n.matmul(x, w[f"layers.{L}.attention.wq.weight"]).view(T, H, Dh)
    k = n.matmul(x, w[f"layers.{L}.attention.wk.weight"]).view(T, Hkv, Dh)
    v = n.matmul(x, w[f"layers.{L}.attention.wv.weight"]).view(T, Hkv, Dh)
    q, k = apply_rope(n, q, cos, sin, form), apply_rope(n, k, cos, sin, form)
    out = torch.zeros(T, H, Dh)
    mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    for h in range(H):
        g = h // (H // Hkv)
        scores = ((q[:, h].double() @ k[:, g].double().T) / math.sqrt(Dh)).float() + mask
        p = n.r(torch.softmax(scores.double(), dim=-1).float())
        out[:, h] = n.r((p.double() @ v[:, g].double()).float())
    return n.matmul(out.reshape(T, H * Dh), w[f"layers.{L}.attention.wo.weight"])


def swiglu_ffn(n, x, w1, w2, w3):
    g, u = n.matmul(x, w1), n.matmul(x, w3)
    return n.matmul(n.r(n.r(g / (1.0 + torch.exp(-g))) * u), w2)


def moe(n, x, w, L, cfg):
    """MiniMind's MOEFeedForward on x [T, D]; returns the output and its intermediates."""
    E, k, S = cfg["E"], cfg["k"], cfg["S"]
    pre = f"layers.{L}.feed_forward."
    logits = n.matmul(x, w[pre + "gate.weight"])                     # F.linear(hidden_states, self.weight)
    scores = torch.softmax(logits.double(), dim=-1).float()          # logits.softmax(dim=-1), fp32
    topk_w, topk_idx = torch.topk(scores, k, dim=-1)                  # largest first
    if k > 1 and cfg["norm_topk_prob"]:
        topk_w = topk_w / (topk_w.sum(dim=-1, keepdim=True) + 1e-20)
    T, D = x.shape
    acc = torch.zeros(T, D, dtype=torch.float64)
    for e in range(E):                                               # expert-id order, as the C sums go
        tok, slot = torch.nonzero(topk_idx == e, as_tuple=True)
        if len(tok):
            out = swiglu_ffn(n, x[tok], w[f"{pre}experts.{e}.w1.weight"], w[f"{pre}experts.{e}.w2.weight"],
                             w[f"{pre}experts.{e}.w3.weight"])
            acc[tok] += topk_w[tok, slot].double()[:, None] * out.double()
    routed = n.r(acc.float())
    y = routed
    for s in range(S):
        y = n.r(y + swiglu_ffn(n, x, w[f"{pre}shared_experts.{s}.w1.weight"], w[f"{pre}shared_experts.{s}.w2.weight"],
                               w[f"{pre}shared_experts.{s}.w3.weight"]))
    return y, {"gate_logits": logits, "gate_scores": scores, "topk_idx": topk_idx.to(torch.int64),
               "topk_weight": topk_w, "routed_out": routed, "moe_out": y}


def aux_loss(scores, idx, E, alpha, seq_aux):
    """scores [B, T, E], idx [B, T, k] -> MiniMind's aux loss (float64)."""
    B, T, _ = scores.shape
    k = idx.shape[-1]
    counts = torch.zeros(B, E, dtype=torch.float64)
    counts.scatter_add_(1, idx.reshape(B, -1), torch.ones(B, T * k, dtype=torch.float64))
    s = scores.double()
    if seq_aux:
        ce = counts / (T * k / E)
        return alpha * float((ce * s.mean(dim=1)).sum(dim=1).mean())
    f = E * counts.sum(0) / (B * T * k)
    return alpha * float((s.reshape(-1, E).mean(0) * f).sum())


def forward(cfg, w, rope, ids, precision, layer):
    n = Numerics(precision)
    T = len(ids)
    cos, sin = rope_tables(cfg["head_dim"], T, cfg["rope_theta"])
    x = w["tok_embeddings.weight"][torch.as_tensor(ids)].float()
    rec = None
    for L in range(cfg["n_layers"]):
        xn = rmsnorm(n, x, w[f"layers.{L}.attention_norm.weight"], cfg["norm_eps"])
        x = n.r(x + attention(n, xn, w, L, cfg, cos, sin, rope))
        xn = rmsnorm(n, x, w[f"layers.{L}.ffn_norm.weight"], cfg["norm_eps"])
        if cfg["E"]:
            y, r = moe(n, xn, w, L, cfg)
            if L == layer:
                rec = {"moe_input": xn, **r}
                sc, ix = r["gate_scores"][None], r["topk_idx"][None]
                rec["aux_loss"] = torch.tensor([aux_loss(sc, ix, cfg["E"], cfg["alpha"], True),
                                                aux_loss(sc, ix, cfg["E"], cfg["alpha"], False)])
        else:
            pre = f"layers.{L}.feed_forward."
            y = swiglu_ffn(n, xn, w[pre + "w1.weight"], w[pre + "w2.weight"], w[pre + "w3.weight"])
        x = n.r(x + y)
    xn = rmsnorm(n, x[-1:], w["norm.weight"], cfg["norm_eps"])
    logits = (xn.double() @ w["output.weight"].double().T).float()[0]
    return logits, rec


# ---- comparisons -------------------------------------------------------------------------------------------------

def close(name, ref, out, atol, rtol):
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    if ref.shape != out.shape:
        print(f"FAIL {name}: shape {list(out.shape)} vs reference {list(ref.shape)}")
        return False
    err = np.abs(ref - out)
    bad = int((err > atol + rtol * np.abs(ref)).sum())
    print(f"{'OK  ' if bad == 0 else 'FAIL'} {name} {list(ref.shape)}: max abs {err.max() if err.size else 0:.3g}, "
          f"{bad} beyond atol {atol:.3g} + rtol {rtol:.3g}")
    return bad == 0


def compare(ref_dir, trace_dir, logits_file):
    ch = os.path.join(trace_dir, "20_moe")
    ld = lambda d, f: np.load(os.path.join(d, f + ".npy"))
    ok = True
    rms = lambda a: float(np.sqrt(np.mean(np.asarray(a, np.float64) ** 2))) if np.size(a) else 0.0
    # bf16 activations computed from the same bf16 inputs: a rounding of the output apart at most (the C sums in
    # double in another order than torch's float64): 2 bf16 ulps relative, one ulp of the RMS absolute. The layers
    # before the MoE feed its input, so that input carries the same tolerance; the fp32 router values 1e-5.
    for name in ("moe_input", "gate_logits", "routed_out", "moe_out"):
        r = ld(ref_dir, name)
        ok &= close(name, r, ld(ch, name), rms(r) / 256, 1 / 128)
    for name in ("gate_scores", "topk_weight"):
        ok &= close(name, ld(ref_dir, name), ld(ch, name), 1e-5, 1e-4)
    ok &= close("topk_idx (exact)", ld(ref_dir, "topk_idx"), ld(ch, "topk_idx"), 0, 0)
    ok &= close("aux_loss (seq_aux, batch)", ld(ref_dir, "aux_loss"), ld(ch, "aux_loss"), 1e-7, 1e-4)
    if logits_file:
        r, c = ld(ref_dir, "logits"), np.load(logits_file)
        ok &= close("logits of the last token", r, c, 0.02 * float(np.abs(r).max()), 0)
        same = int(np.argmax(r)) == int(np.argmax(c))
        print(f"{'OK  ' if same else 'FAIL'} argmax {int(np.argmax(c))} (reference {int(np.argmax(r))})")
        ok &= same
    return ok


def self_test():
    passed = failed = 0

    def check(c, what):
        nonlocal passed, failed
        passed, failed = passed + bool(c), failed + (not c)
        if not c:
            print(f"FAIL: {what}")
    # torch.topk on the CPU with exact ties: not "lower index first" but the order its nth_element/sort steps leave
    # (ref/topk_torch.h redoes them; test_moe.c holds the same cases for the C code)
    check(torch.topk(torch.full((4,), 0.25), 2).indices.tolist() == [2, 3], "topk of 4 equal scores gives [2, 3]")
    check(torch.topk(torch.tensor([0.1, 0.3, 0.3, 0.3]), 2).indices.tolist() == [2, 3], "topk ties among the top")
    check(torch.topk(torch.tensor([0.2, 0.4, 0.2, 0.2]), 3).indices.tolist() == [1, 3, 0], "topk ties below the top")
    check(torch.topk(torch.full((8,), 0.25), 3).indices.tolist() == [6, 5, 4], "topk of 8 equal scores, k 3")
    # the two aux forms: equal for one sequence, different over a batch whose sequences route differently
    s = torch.softmax(torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(3)), dim=-1)
    ix = torch.topk(s, 2, dim=-1).indices
    a1, a2 = aux_loss(s[:1], ix[:1], 4, 0.1, True), aux_loss(s[:1], ix[:1], 4, 0.1, False)
    check(abs(a1 - a2) < 1e-12, f"one sequence: seq_aux {a1} == batch form {a2}")
    b1, b2 = aux_loss(s, ix, 4, 0.1, True), aux_loss(s, ix, 4, 0.1, False)
    check(abs(b1 - b2) > 1e-6, f"two sequences: seq_aux {b1} != batch form {b2}")
    # balanced uniform routing gives alpha exactly
    su = torch.full((1, 4, 4), 0.25)
    iu = torch.tensor([[[0, 1], [2, 3], [0, 1], [2, 3]]])
    check(abs(aux_loss(su, iu, 4, 0.1, True) - 0.1) < 1e-12, "uniform scores, balanced picks: aux = alpha")
    # the HF name map
    check(hf_name("model.layers.3.mlp.experts.2.down_proj.weight") == "layers.3.feed_forward.experts.2.w2.weight",
          "MiniMind expert name")
    check(hf_name("model.layers.0.block_sparse_moe.experts.7.w3.weight") == "layers.0.feed_forward.experts.7.w3.weight",
          "Mixtral expert name")
    check(hf_name("model.layers.1.mlp.shared_experts.0.gate_proj.weight") ==
          "layers.1.feed_forward.shared_experts.0.w1.weight", "MiniMind shared expert name")
    # interleaved RoPE on Meta rows == rotate_half on the HF rows (HF_row[h*Dh + j*Dh/2 + i] = Meta_row[h*Dh + 2i + j])
    n = Numerics("fp32")
    Dh, T = 8, 5
    x = torch.randn(T, 1, Dh)
    perm = [2 * i + j for j in range(2) for i in range(Dh // 2)]  # HF position -> Meta position
    cos, sin = rope_tables(Dh, T, 10000.0)
    a = apply_rope(n, x, cos, sin, "interleaved")
    b = apply_rope(n, x[..., perm], cos, sin, "rotate_half")
    check(torch.equal(a[..., perm], b), "rotate_half on HF rows == interleaved on Meta rows, bit for bit")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("--ids")
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--out-dir")
    ap.add_argument("--compare", nargs=2, metavar=("REF_DIR", "TRACE_DIR"))
    ap.add_argument("--logits")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if a.compare:
        return 0 if compare(a.compare[0], a.compare[1], a.logits) else 1
    if not a.model_dir or not a.ids or not a.out_dir:
        ap.error("MODEL_DIR, --ids and --out-dir are needed")
    cfg, w, rope = load_model(a.model_dir)
    ids = [int(t) for t in a.ids.replace(",", " ").split()]
    if any(t < 0 or t >= cfg["vocab_size"] for t in ids):
        input_error("--ids", f"ids must lie in 0..{cfg['vocab_size'] - 1}")
    if not cfg["E"]:
        input_error(a.model_dir, "not a mixture-of-experts model")
    if not 0 <= a.layer < cfg["n_layers"]:
        input_error("--layer", f"{a.layer} not in 0..{cfg['n_layers'] - 1}")
    with torch.no_grad():
        logits, rec = forward(cfg, w, rope, ids, a.precision, a.layer)
    os.makedirs(a.out_dir, exist_ok=True)
    rec["logits"] = logits
    for name, t in rec.items():
        np.save(os.path.join(a.out_dir, name + ".npy"), t.numpy().astype(np.float32))
    print(f"layer {a.layer}: topk_idx of the first tokens {rec['topk_idx'][:4].tolist()}; argmax {int(logits.argmax())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
