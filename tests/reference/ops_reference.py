#!/usr/bin/python3
"""ops_reference.py: PyTorch computes every op of one Llama-3 layer and checks the C reference (common/ref/ref_*.c).

Usage:  /usr/bin/python3 tests/reference/ops_reference.py DIR
where DIR was written by `build/tests/test_ref_ops --dump DIR` (meta.json, weights/*.npy, bf16/*.npy, fp32/*.npy).

Each op is computed by torch from the C reference's own inputs to that op (so an error is caught in the op that makes
it, not smeared over the rest of the layer), following Meta's llama/model.py: RMSNorm `_norm(x.float()).type_as(x) *
weight`, nn.Linear in bf16 (torch's CPU bf16 GEMM accumulates in fp32 and rounds the result to bf16),
`apply_rotary_emb` through complex numbers, softmax(scores.float()).type_as(q), `w2(silu(w1 x) * w3 x)`. The scores
are q·kᵀ/sqrt(Dh) in fp32 and the logits are an fp32 product, as DESIGN.md "Numerics" specifies. Then the whole layer
is computed by torch alone from the token ids (errors propagate) and compared with a looser, documented tolerance.

Prints one verdict line per comparison (`OK   ref_vs_torch  q_rotated [9, 256]  max_abs ... (x% of tol)`), then
"N passed, N failed"; exits 1 when anything failed (and names the failures on stderr), 2 on a bad DIR.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

# ---- tolerances (why) -----------------------------------------------------------------------------------------------
# bf16 outputs from the same inputs: the C reference accumulates in double, torch in fp32 (and cos/sin/exp may differ
# by an fp32 ulp), so a result lying next to a bf16 rounding boundary may round the other way: one bf16 ulp, which is
# at most 2^-7 of the value. atol covers results near zero.
BF16_ATOL, BF16_RTOL = 1e-6, 2.0 ** -7
# fp32 outputs: double vs fp32 accumulation over at most F=512 products of O(1) terms: a few 1e-7 relative, and an
# absolute error of ~sqrt(512) * 6e-8 * |terms| where cancellation makes the result small.
FP32_ATOL, FP32_RTOL = 1e-5, 1e-5
# freqs and freqs_cis: powf/cosf/sinf of glibc vs torch's vectorised versions differ by at most an fp32 ulp or two.
FREQ_ATOL, FREQ_RTOL = 2.5e-7, 2.5e-7
# The whole layer computed by torch alone: each bf16 rounding flip (one ulp, above) propagates through the following
# products; after ~10 rounding points a few ulps. Checked with 4 bf16 ulps and a normalised MSE bound.
CHAIN_BF16_ATOL, CHAIN_BF16_RTOL, CHAIN_NMSE = 1e-3, 4 * 2.0 ** -7, 1e-5

passed = failed = 0
failures = []


def compare(name, ref, out, atol, rtol, nmse_max=None):
    """The same rule as common/compare.c: |ref - out| <= atol + rtol*|ref|, NaN/Inf must match."""
    global passed, failed
    ref = np.asarray(ref, dtype=np.float64)
    out = np.asarray(out, dtype=np.float64)
    shape = "[" + ", ".join(str(d) for d in ref.shape) + "]"
    bad_special = 0
    if ref.shape != out.shape:
        ok, detail = False, f"shape {list(out.shape)} != {list(ref.shape)}"
        max_abs, used = float("inf"), float("inf")
    else:
        finite = np.isfinite(ref) & np.isfinite(out)
        special_ok = np.where(np.isnan(ref), np.isnan(out), ref == out)
        bad_special = int(np.sum(~finite & ~special_ok))
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = np.where(finite, np.abs(ref - out), 0.0)
            limit = atol + rtol * np.abs(np.where(finite, ref, 0.0))
            share = np.where(finite, np.where(limit > 0, diff / np.where(limit > 0, limit, 1.0),
                                              np.where(diff > 0, np.inf, 0.0)), 0.0)
        n_bad = int(np.sum(share > 1.0)) + bad_special
        max_abs = float(diff.max()) if diff.size else 0.0
        used = float(share.max()) if share.size else 0.0
        if bad_special:
            used = float("inf")
        ref2 = float(np.sum(np.where(finite, ref, 0.0) ** 2))
        nmse = float(np.sum(diff ** 2)) / ref2 if ref2 > 0 else 0.0
        ok = n_bad == 0 and (nmse_max is None or nmse <= nmse_max)
        detail = f"{n_bad} of {ref.size} mismatched" + (f", nmse {nmse:.2e}" if nmse_max is not None else "")
        if not ok and ref.size:
            worst = np.unravel_index(int(np.argmax(np.where(finite, share, 0.0 if special_ok.all() else
                                                            np.where(special_ok, 0.0, np.inf)))), ref.shape)
            detail += f"; worst {list(worst)}: torch {ref[worst]:.8e} C {out[worst]:.8e}"
    pct = f"{used * 100:.0f}% of tol"
    if math.isinf(used):
        pct = "NaN/Inf" if bad_special else "tolerance 0"
    line = f"{'OK' if ok else 'FAIL':<4} ref_vs_torch  {name} {shape}  max_abs {max_abs:.1e} ({pct})"
    if not ok:
        line += "  " + detail
        failed += 1
        failures.append(name)
    else:
        passed += 1
    print(line, flush=True)


def load(d, name):
    path = os.path.join(d, name + ".npy")
    if not os.path.exists(path):
        print(f"error: {path}: missing (run build/tests/test_ref_ops --dump DIR first)", file=sys.stderr)
        sys.exit(2)
    return np.load(path)


# ---- Meta's model.py, op by op --------------------------------------------------------------------------------------
def rmsnorm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * w


def silu(x):
    # F.silu on a bf16 tensor, as torch's CUDA kernel computes it (Meta's model runs on the GPU): in fp32, rounded
    # once. Torch 1.13's CPU kernel for bf16 rounds intermediate values to bf16 and lands 1-2 bf16 ulps away from the
    # correctly rounded value for ~25% of inputs, so it is not used as the reference here.
    return F.silu(x.float()).type_as(x)


def precompute_freqs_cis(dim, end, theta, use_scaled):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    if use_scaled:
        freqs = apply_scaling(freqs)
    t = torch.arange(end, dtype=torch.float32)
    freqs_cis = torch.polar(torch.ones(end, dim // 2), torch.outer(t, freqs))
    return freqs, freqs_cis


def apply_scaling(freqs):  # Llama 3.1, meta-llama/llama-models (the loop version)
    scale_factor, low_freq_factor, high_freq_factor, old_context_len = 8, 1, 4, 8192
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    new_freqs = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            new_freqs.append(freq)
        elif wavelen > low_freq_wavelen:
            new_freqs.append(freq / scale_factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            new_freqs.append((1 - smooth) * freq / scale_factor + smooth * freq)
    return torch.tensor(new_freqs, dtype=freqs.dtype)


def rope(x, freqs_cis, n_heads, dh):  # x [T, n_heads*Dh], freqs_cis [T, Dh/2] complex
    T = x.shape[0]
    xv = x.view(T, n_heads, dh)
    x_ = torch.view_as_complex(xv.float().reshape(T, n_heads, dh // 2, 2))
    out = torch.view_as_real(x_ * freqs_cis.view(T, 1, dh // 2)).flatten(2)
    return out.type_as(x).reshape(T, n_heads * dh)


def causal_mask(T, Tk, start_pos):
    mask = torch.full((T, T), float("-inf"))
    mask = torch.triu(mask, diagonal=1)
    return torch.hstack([torch.zeros((T, start_pos)), mask])[:, :Tk]


def matmul(a, b):
    """a @ b as the C reference and the kernels compute it: fp32 accumulation, one rounding to the operands' dtype.
    torch's own bf16 matmul on a CPU without AVX512-BF16 accumulates in bf16 for some shapes (seen: 0.06 off on a
    [9, 9] x [9, 64] product on an AMD EPYC), so the reference must not depend on which kernel torch picks."""
    return torch.matmul(a.float(), b.float()).to(a.dtype)


def attention(q, k, v, n_heads, n_kv, dh, act):  # q [T, H*Dh] rotated, k/v [T, Hkv*Dh]; returns out, probs
    T = q.shape[0]
    xq = q.view(T, n_heads, dh).transpose(0, 1)                                     # [H, T, Dh]
    keys = torch.repeat_interleave(k.view(T, n_kv, dh), n_heads // n_kv, dim=1).transpose(0, 1)
    values = torch.repeat_interleave(v.view(T, n_kv, dh), n_heads // n_kv, dim=1).transpose(0, 1)
    scores = torch.matmul(xq.float(), keys.float().transpose(1, 2)) / math.sqrt(dh)  # fp32 scores
    scores = scores + causal_mask(T, T, 0)
    probs = F.softmax(scores.float(), dim=-1).type_as(xq)
    out = matmul(probs, values)                                                      # bf16 product in bf16 mode
    return out.transpose(0, 1).reshape(T, n_heads * dh), probs


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    d = sys.argv[1]
    try:
        meta = json.load(open(os.path.join(d, "meta.json")))
    except (OSError, ValueError) as e:
        print(f"error: {d}/meta.json: {e}", file=sys.stderr)
        sys.exit(2)
    T, D, H, Hkv, Dh, V = (meta[k] for k in ("T", "D", "H", "Hkv", "Dh", "V"))
    eps, theta, far = meta["eps"], meta["theta"], meta["start_pos_far"]
    torch.set_num_threads(2)
    wd = os.path.join(d, "weights")
    tokens = torch.from_numpy(load(wd, "tokens"))
    W = {n: torch.from_numpy(load(wd, n)) for n in
         ("tok_embeddings", "attention_norm", "ffn_norm", "norm", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "output")}

    # RoPE tables (fp32 in both modes).
    fd = os.path.join(d, "fp32")
    n_pos = far + T
    freqs, cis = precompute_freqs_cis(Dh, n_pos, theta, False)
    freqs_s, cis_s = precompute_freqs_cis(Dh, n_pos, theta, True)
    compare("freqs", freqs, load(fd, "freqs"), FREQ_ATOL, FREQ_RTOL)
    compare("freqs_scaled", freqs_s, load(fd, "freqs_scaled"), FREQ_ATOL, FREQ_RTOL)
    # cos/sin of the same fp32 angle; at position 4000 the angle is large, and an ulp of cos is still ~1e-7.
    compare("freqs_cis", torch.view_as_real(cis), load(fd, "freqs_cis"), FREQ_ATOL, FREQ_RTOL)
    compare("freqs_cis_scaled", torch.view_as_real(cis_s), load(fd, "freqs_cis_scaled"), FREQ_ATOL, FREQ_RTOL)

    for prec in ("bf16", "fp32"):
        pd = os.path.join(d, prec)
        dt = torch.bfloat16 if prec == "bf16" else torch.float32
        atol, rtol = (BF16_ATOL, BF16_RTOL) if prec == "bf16" else (FP32_ATOL, FP32_RTOL)
        w = {n: t.to(dt) for n, t in W.items()}  # exact: the weights are bf16 values

        def c(name):  # a C tensor as torch, in this mode's dtype (exact: checked below for bf16)
            return torch.from_numpy(load(pd, name)).to(dt)

        def check(name, torch_value, a=atol, r=rtol):
            compare(f"{prec}/{name}", torch_value.float(), load(pd, name), a, r)

        if prec == "bf16":  # every bf16-mode activation is a bf16 value (scores and logits are fp32 by design)
            names = [n[:-4] for n in sorted(os.listdir(pd)) if n.endswith(".npy")]
            exact = [float(np.array_equal(a, torch.from_numpy(a).bfloat16().float().numpy()))
                     for a in (load(pd, n) for n in names if n not in ("scores_h0", "scores_masked_h0", "logits"))]
            compare("bf16/activations_are_bf16_values", np.ones(len(exact)), np.array(exact), 0, 0)

        check("embed", F.embedding(tokens, w["tok_embeddings"]), 0, 0)  # a lookup: exact
        check("attention_norm_out", rmsnorm(c("embed"), w["attention_norm"], eps))
        xn = c("attention_norm_out")
        check("q", F.linear(xn, w["wq"]))
        check("k", F.linear(xn, w["wk"]))
        check("v", F.linear(xn, w["wv"]))
        check("q_rotated", rope(c("q"), cis[:T], H, Dh))
        check("k_rotated", rope(c("k"), cis[:T], Hkv, Dh))
        check("q_rotated_far", rope(c("q"), cis[far:far + T], H, Dh))
        check("q_rotated_scaled", rope(c("q"), cis_s[far:far + T], H, Dh))
        # Head 0 the tutorial's way.
        q0 = c("q_rotated")[:, :Dh]
        k0 = c("k_rotated")[:, :Dh]
        v0 = c("v")[:, :Dh]
        check("scores_h0", torch.matmul(q0.float(), k0.float().T) / math.sqrt(Dh), FP32_ATOL, FP32_RTOL)
        check("scores_masked_h0", torch.from_numpy(load(pd, "scores_h0")) + causal_mask(T, T, 0), 0, 0)
        check("att_h0", F.softmax(torch.from_numpy(load(pd, "scores_masked_h0")).float(), dim=-1).type_as(q0))
        check("attn_out_h0", matmul(c("att_h0"), v0))
        out, probs = attention(c("q_rotated"), c("k_rotated"), c("v"), H, Hkv, Dh, dt)
        check("attn_out", out)
        check("att", probs)
        check("wo_out", F.linear(c("attn_out"), w["wo"]))
        check("h", c("embed") + c("wo_out"), 0, 0)  # one rounding of an exact sum: identical
        check("ffn_norm_out", rmsnorm(c("h"), w["ffn_norm"], eps))
        check("gate", F.linear(c("ffn_norm_out"), w["w1"]))
        check("up", F.linear(c("ffn_norm_out"), w["w3"]))
        check("swiglu", silu(c("gate")) * c("up"))
        check("ffn_out", F.linear(c("swiglu"), w["w2"]))
        check("layer_out", c("h") + c("ffn_out"), 0, 0)
        check("final_norm_out", rmsnorm(c("layer_out"), w["norm"], eps))
        logits = F.linear(c("final_norm_out")[-1:].float(), w["output"].float())[0]  # fp32 product of the inputs
        check("logits", logits, FP32_ATOL, FP32_RTOL)
        check("next_token", torch.tensor([float(torch.argmax(torch.from_numpy(load(pd, "logits"))))]), 0, 0)

        # The whole layer by torch alone, from the token ids.
        x = F.embedding(tokens, w["tok_embeddings"])
        xn = rmsnorm(x, w["attention_norm"], eps)
        q = rope(F.linear(xn, w["wq"]), cis[:T], H, Dh)
        k = rope(F.linear(xn, w["wk"]), cis[:T], Hkv, Dh)
        out, _ = attention(q, k, F.linear(xn, w["wv"]), H, Hkv, Dh, dt)
        h = x + F.linear(out, w["wo"])
        hn = rmsnorm(h, w["ffn_norm"], eps)
        layer = h + F.linear(silu(F.linear(hn, w["w1"])) * F.linear(hn, w["w3"]), w["w2"])
        if prec == "bf16":
            compare(f"{prec}/chain/layer_out", layer.float(), load(pd, "layer_out"), CHAIN_BF16_ATOL, CHAIN_BF16_RTOL,
                    CHAIN_NMSE)
        else:
            compare(f"{prec}/chain/layer_out", layer, load(pd, "layer_out"), FP32_ATOL, FP32_RTOL)

    print(f"{passed} passed, {failed} failed")
    if failed:
        print(f"error: {failed} comparisons with PyTorch failed: {', '.join(failures)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
