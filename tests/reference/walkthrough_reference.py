#!/usr/bin/python3
"""walkthrough_reference.py: the walkthrough's math in PyTorch, checked against every .npy the chapters wrote.

    walkthrough_reference.py MODEL_DIR TRACE_DIR...
    walkthrough_reference.py --write MODEL_DIR TRACE_DIR OUT_DIR [--plant MISTAKE]

TRACE_DIRs: traces of the chapters on the model in MODEL_DIR (any prompt, layer, head; any subset of the chapters).

An independent implementation (torch 1.13, CPU) of "llama3 from scratch", written from the tutorial at the precision
points of Meta's reference model.py:
    weights and activations bf16; every x·Wᵀ in fp32 from the bf16 operands, rounded once to bf16;
    RMSNorm: x.float() * rsqrt(mean(x²) + eps), rounded to bf16, then times the bf16 weight (rounded again);
    RoPE: the bf16 pairs as complex64 times freqs_cis (complex64), the result rounded to bf16;
    scores q·kᵀ/sqrt(head_dim) in fp32; + the causal mask; softmax in fp32, rounded to bf16;
    SwiGLU: silu(gate) in fp32 rounded once to bf16 (torch 1.13's bf16 F.silu on the CPU is 1-2 ulps off), times
    up, rounded again; residual adds rounded to bf16; logits fp32 from the bf16 operands.
The tokens come from TRACE_DIR/01_tokenize/tokens.npy; the weights from MODEL_DIR/consolidated.00.pth (torch.load).
The layer and head the chapters followed are read from the file names (04_query/q_layerL_headH.npy).

Each tensor is checked two ways, and one line is printed per tensor:
  op:    the reference op fed with the chapter's OWN upstream tensors (the .npy files it was computed from), so the
         comparison measures this op alone and the tolerance is tight: |ref - out| <= atol + rtol*|ref| per element.
           exact:  lookups, views, the mask, freqs (the same fp32 operations; any difference is a bug)
           fp32:   rtol 1e-5, atol 1e-5 x RMS(ref)  (fp32 accumulation in torch against double in C)
           bf16:   rtol 2^-7 (two bf16 ulps: the fp32 values before rounding may differ in the last fp32 bits and
                   round to the neighbouring bf16), atol 2^-8 x RMS(ref) (one bf16 ulp of the tensor's typical
                   magnitude, for elements where a sum cancelled)
           layer:  a whole transformer layer from the chapter's layer input: a dozen rounding points in a chain;
                   rtol 2^-5, atol 2^-6 x RMS(ref) (a flipped bf16 rounding early in the chain reaches the output
                   through the products)
  chain: the whole reference run from the checkpoint alone (no input taken from the chapters); the normalised
         error ||out - ref|| / ||ref|| must stay under 2^-6 (bf16-level drift), 1e-6 for tensors that do not
         depend on rounded activations. Catches an upstream tensor that is wrong in the same way in every chapter.
Also: next_token (the chapter's) equals torch.argmax of the op-level logits and of the chain's own logits; the
head of --head in the batched stacked_qkv_attention equals 10_value's qkv_attention; residual_norms of the chapter's
stream. Any .npy in TRACE_DIR that this script does not know how to check is a failure.
Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.

--write: the same implementation as a learner would run it, writing every tensor of chapters 01-15 flat into OUT_DIR
under the trace's names (the tokens, layer and head of TRACE_DIR), with one mistake planted (PLANTED: HF weights not
un-permuted, rotate-half RoPE, positions from 1, no 1/sqrt(head_dim), the mask missing or on the wrong side, softmax
over dim 0, kv head h % n_kv_heads, RMSNorm without eps / weight / with mean(x), SiLU on w3, the attention residual
forgotten; fp32: no bf16 rounding anywhere): the input of build/bin/verify's tests (tests/test_verify.sh).
"""
import json
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
BF16 = torch.bfloat16


# ---- the tutorial's ops at Meta's precision points ----------------------------------------------------------------
ROUND_BF16 = True  # False only in --write --plant fp32: a learner who computes in float32 throughout


def bf(x):
    """Round an fp32 tensor to bf16 (round to nearest even), as .to(torch.bfloat16) does."""
    return x.to(BF16) if ROUND_BF16 else x.float()


def linear(x, w):
    """torch.matmul(x, w.T) of bf16 operands: fp32 accumulation, one rounding to bf16."""
    return bf(x.float() @ w.float().T)


def rms_norm(x, w, eps):
    """Meta's RMSNorm: self._norm(x.float()).type_as(x) * self.weight."""
    xf = x.float()
    normed = bf(xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))
    return bf(normed.float() * w.float())


def rope_freqs(head_dim, theta):
    """zero_to_one_split_into_64_parts = torch.tensor(range(64))/64; freqs = 1.0 / (rope_theta ** that)."""
    half = head_dim // 2
    zero_to_one = torch.tensor(range(half)) / half
    return zero_to_one, 1.0 / (theta ** zero_to_one)


def rotate(x, freqs_cis):
    """view_as_real(view_as_complex(x.float().view(T, -1, 2)) * freqs_cis): returns (fp32 pairs, bf16 [T, Dh])."""
    pairs = x.float().view(x.shape[0], -1, 2)
    rotated = torch.view_as_real(torch.view_as_complex(pairs.contiguous()) * freqs_cis)
    return rotated, bf(rotated.reshape(x.shape))


def causal_mask(T):
    return torch.triu(torch.full((T, T), float("-inf")), diagonal=1)


def scores(q_rot, k_rot, head_dim):
    return (q_rot.float() @ k_rot.float().T) / (head_dim ** 0.5)


def softmax_bf16(masked):
    return bf(F.softmax(masked.float(), dim=1))


def swiglu_ffn(x, w1, w2, w3):
    """w2(silu(w1(x)) * w3(x)); silu in fp32 from the bf16 gate, rounded once."""
    gate, up = linear(x, w1), linear(x, w3)
    silu = bf(gate.float() * torch.sigmoid(gate.float()))
    return linear(bf(silu.float() * up.float()), w2)


def residual(a, b):
    return bf(a.float() + b.float())


class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "params.json")) as f:
            p = json.load(f)
        self.D, self.L, self.H = p["dim"], p["n_layers"], p["n_heads"]
        self.Hkv = p.get("n_kv_heads") or self.H
        self.V, self.eps = p["vocab_size"], float(p.get("norm_eps", 1e-5))
        self.theta = float(p.get("rope_theta", 500000.0))
        self.Dh, self.n_rep = self.D // self.H, self.H // self.Hkv
        hidden = int(2 * (4 * self.D) / 3)  # Meta's FeedForward rule
        if p.get("ffn_dim_multiplier") is not None:
            hidden = int(p["ffn_dim_multiplier"] * hidden)
        m = p.get("multiple_of", 256)
        self.F = m * ((hidden + m - 1) // m)
        if p.get("use_scaled_rope"):
            raise SystemExit("walkthrough_reference.py: use_scaled_rope models are not covered by this reference")
        self.w = torch.load(os.path.join(model_dir, "consolidated.00.pth"), map_location="cpu")

    def W(self, name):
        t = self.w[name]
        return t if t.dtype == BF16 else bf(t.float())


class Ops:
    """The ops of the tutorial's layer as this reference computes them (the functions above). The checks below use
    the one instance OPS; --write --plant MISTAKE (for build/bin/verify's tests) swaps one method for a learner's
    mistake (PLANTED) and writes the tensors under the trace's names."""
    def weight(self, m, name):
        return m.W(name)

    def positions(self, T):
        return torch.arange(T)

    def rms(self, x, eps):  # 03_rmsnorm's rms: the tutorial's (x.pow(2).mean(-1) + norm_eps)**0.5
        return (x.float().pow(2).mean(-1) + eps) ** 0.5

    def rms_norm(self, x, w, eps):
        return rms_norm(x, w, eps)

    def pairs(self, x):  # q.float().view(T, -1, 2): Meta's interleaved pairs (2i, 2i+1)
        return x.float().view(x.shape[0], -1, 2)

    def unpairs(self, p):
        return p.reshape(p.shape[0], -1)

    def rotate(self, x, freqs_cis):
        rotated = torch.view_as_real(torch.view_as_complex(self.pairs(x).contiguous()) * freqs_cis)
        return rotated, bf(self.unpairs(rotated))

    def scores(self, q_rot, k_rot, head_dim):
        return scores(q_rot, k_rot, head_dim)

    def mask(self, T):
        return causal_mask(T)

    def softmax(self, masked):
        return softmax_bf16(masked)

    def kv_head(self, m, head):
        return head // m.n_rep  # the tutorial's head//4, from the config

    def ffn(self, x, w1, w2, w3):
        return swiglu_ffn(x, w1, w2, w3)

    def residual_attn(self, x, delta):
        return residual(x, delta)


OPS = Ops()


def layer_forward(m, layer, x, freqs_cis, ops=OPS):
    """One layer as the tutorial's loop writes it (all heads), every intermediate kept. x: bf16 [T, D]."""
    T, Dh = x.shape[0], m.Dh
    pre = f"layers.{layer}."
    r = {"x_in": x}
    xn = ops.rms_norm(x, ops.weight(m, pre + "attention_norm.weight"), m.eps)
    r["x_norm"] = xn
    q_layer = ops.weight(m, pre + "attention.wq.weight").view(m.H, Dh, m.D)
    k_layer = ops.weight(m, pre + "attention.wk.weight").view(m.Hkv, Dh, m.D)
    v_layer = ops.weight(m, pre + "attention.wv.weight").view(m.Hkv, Dh, m.D)
    heads, probs = [], []
    for head in range(m.H):
        kv = ops.kv_head(m, head)
        q = linear(xn, q_layer[head])
        k = linear(xn, k_layer[kv])
        v = linear(xn, v_layer[kv])
        q_pairs_rot, q_rot = ops.rotate(q, freqs_cis)
        k_pairs_rot, k_rot = ops.rotate(k, freqs_cis)
        qk = ops.scores(q_rot, k_rot, Dh)
        masked = qk + ops.mask(T)
        p = ops.softmax(masked)
        out = bf(p.float() @ v.float())
        heads.append(out)
        probs.append(p)
        r[("head", head)] = dict(q=q, k=k, v=v, q_pairs_rot=q_pairs_rot, q_rot=q_rot, k_pairs_rot=k_pairs_rot,
                                 k_rot=k_rot, qk=qk, masked=masked, p=p, out=out)
    r["attn_all"] = torch.stack(probs)
    r["stacked"] = torch.cat(heads, dim=-1)
    r["delta"] = linear(r["stacked"], ops.weight(m, pre + "attention.wo.weight"))
    r["after_edit"] = ops.residual_attn(x, r["delta"])
    r["after_edit_norm"] = ops.rms_norm(r["after_edit"], ops.weight(m, pre + "ffn_norm.weight"), m.eps)
    r["ffn_out"] = ops.ffn(r["after_edit_norm"], ops.weight(m, pre + "feed_forward.w1.weight"),
                           ops.weight(m, pre + "feed_forward.w2.weight"), ops.weight(m, pre + "feed_forward.w3.weight"))
    r["out"] = residual(r["after_edit"], r["ffn_out"])
    return r


def logits_of(m, last_row):
    """torch.matmul(final_embedding[-1], output.weight.T) in fp32, in slices of the vocabulary (saves memory)."""
    w = m.W("output.weight")
    x = last_row.float()
    return torch.cat([w[i:i + 16384].float() @ x for i in range(0, w.shape[0], 16384)])


# ---- comparisons ------------------------------------------------------------------------------------------------------
TOL = {  # name: (rtol, atol as a multiple of RMS(ref))
    "exact": (0.0, 0.0),
    "fp32": (1e-5, 1e-5),
    "cos": (0.0, 0.0),  # special: 4 fp32 ulps of 1 absolute (freqs_cis values are in [-1, 1])
    "bf16": (2.0 ** -7, 2.0 ** -8),
    "layer": (2.0 ** -5, 2.0 ** -6),
}


class Checker:
    def __init__(self, out_dir):
        self.out = out_dir
        self.passed = self.failed = 0
        self.checked = set()

    def load(self, rel):
        return np.load(os.path.join(self.out, rel))

    def has(self, rel):
        return os.path.exists(os.path.join(self.out, rel))

    def t(self, rel):
        """A chapter's .npy as a torch tensor (float32; bf16-valued tensors are exact in it)."""
        return torch.from_numpy(self.load(rel).astype(np.float32))

    def result(self, ok, line):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(("ok   " if ok else "FAIL ") + line, flush=True)

    def compare(self, rel, op_ref, kind, chain_ref=None, chain_bound=2.0 ** -6):
        """rel: the .npy; op_ref: reference from the chapter's own inputs; chain_ref: from the checkpoint alone."""
        self.checked.add(rel)
        if not self.has(rel):
            self.result(False, f"{rel:58s} missing")
            return
        out = self.load(rel)
        ref = op_ref.detach().float().numpy() if torch.is_tensor(op_ref) else np.asarray(op_ref, dtype=np.float32)
        if out.dtype != np.float32 or tuple(out.shape) != tuple(ref.shape):
            self.result(False, f"{rel:58s} dtype/shape {out.dtype} {list(out.shape)}, want float32 {list(ref.shape)}")
            return
        o, r = out.astype(np.float64), ref.astype(np.float64)
        # infinities (the mask) must sit in the same places with the same sign; NaN never
        bad_inf = np.isinf(r) != np.isinf(o)
        bad_inf |= np.isinf(r) & (np.sign(r) != np.sign(o))
        if np.isnan(o).any() or np.isnan(r).any() or bad_inf.any():
            self.result(False, f"{rel:58s} NaN or misplaced inf ({int(np.isnan(o).sum())} NaN, {int(bad_inf.sum())} inf)")
            return
        fin = np.isfinite(r)
        o, r = o[fin], r[fin]
        rms = float(np.sqrt(np.mean(r * r))) if r.size else 0.0
        rtol, atol_rel = TOL[kind]
        atol = 4 * 2.0 ** -23 if kind == "cos" else atol_rel * rms
        err = np.abs(o - r)
        lim = atol + rtol * np.abs(r)
        n_bad = int((err > lim).sum())
        worst = int(np.argmax(err - lim)) if err.size else 0
        used = float(np.max(err / np.where(lim > 0, lim, np.inf), initial=0.0)) if lim.any() else 0.0
        line = (f"{rel:58s} {str(list(out.shape)):18s} op {kind:5s} max_abs {float(err.max(initial=0)):.2e} "
                f"({100 * used:3.0f}% of tol)")
        ok = n_bad == 0
        if not ok:
            line += f" {n_bad} mismatches, worst at {worst}: out {o[worst]:.7g} ref {r[worst]:.7g}"
        if chain_ref is not None:
            c = chain_ref.detach().float().numpy() if torch.is_tensor(chain_ref) else np.asarray(chain_ref, np.float32)
            c = c.astype(np.float64)[fin] if c.shape == out.shape else None
            if c is None:
                ok = False
                line += " chain: shape differs"
            else:
                den = float(np.sqrt(np.sum(c * c)))
                nerr = float(np.sqrt(np.sum((o - c) ** 2))) / den if den > 0 else float(np.abs(o - c).max(initial=0))
                line += f" | chain nerr {nerr:.1e} (<= {chain_bound:.1e})"
                if not nerr <= chain_bound:
                    ok = False
                    line += " FAILED"
        self.result(ok, line)

    def fact(self, what, ok, detail=""):
        self.result(bool(ok), f"{what:58s} {detail}")


def run_chain(m, tokens, ops=OPS):
    """The whole model from the checkpoint alone: every layer (all heads), the final norm and the logits."""
    T = int(tokens.shape[0])
    zero_to_one, freqs = rope_freqs(m.Dh, m.theta)
    angles = torch.outer(ops.positions(T).float(), freqs)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)
    emb = m.W("tok_embeddings.weight")[tokens]  # exact rows, bf16
    stream, layers = [emb], []
    for L in range(m.L):
        layers.append(layer_forward(m, L, stream[-1], freqs_cis, ops))
        stream.append(layers[-1]["out"])
    final_norm = ops.rms_norm(stream[-1], m.W("norm.weight"), m.eps)
    return dict(zero_to_one=zero_to_one, freqs=freqs, angles=angles, freqs_cis=freqs_cis, emb=emb, stream=stream,
                layers=layers, final_norm=final_norm, logits=logits_of(m, final_norm[-1]))


# ---- a learner's tensors, with one mistake planted (build/bin/verify's tests, tests/test_verify.sh) --------------------
def hf_order(w, heads):
    """Meta's wq/wk rows -> HF's: within each head the pair (2i, 2i+1) goes to rows (i, i + Dh/2) (HF's permute)."""
    rows, D = w.shape
    Dh = rows // heads
    return w.view(heads, Dh // 2, 2, D).transpose(1, 2).reshape(rows, D)


class HfPermuted(Ops):  # HF weights used with Meta's interleaved RoPE: the q/k rows were not un-permuted
    def weight(self, m, name):
        w = m.W(name)
        if name.endswith("attention.wq.weight"):
            return hf_order(w, m.H)
        if name.endswith("attention.wk.weight"):
            return hf_order(w, m.Hkv)
        return w


class RotateHalf(Ops):  # HF's rotate_half on Meta-layout weights: pairs (i, i + Dh/2) instead of (2i, 2i+1)
    def pairs(self, x):
        h = x.shape[1] // 2
        return torch.stack((x.float()[:, :h], x.float()[:, h:]), dim=-1)

    def unpairs(self, p):
        return torch.cat((p[..., 0], p[..., 1]), dim=-1)


class PositionsFrom1(Ops):
    def positions(self, T):
        return torch.arange(1, T + 1)


class NoSqrtHeadDim(Ops):
    def scores(self, q_rot, k_rot, head_dim):
        return q_rot.float() @ k_rot.float().T


class MaskMissing(Ops):
    def mask(self, T):
        return torch.zeros(T, T)


class MaskWrongSide(Ops):
    def mask(self, T):
        return torch.tril(torch.full((T, T), float("-inf")), diagonal=-1)


class SoftmaxWrongDim(Ops):
    def softmax(self, masked):
        return bf(F.softmax(masked.float(), dim=0))


class KvHeadModulo(Ops):
    def kv_head(self, m, head):
        return head % m.Hkv


class RmsNormNoEps(Ops):
    def rms(self, x, eps):
        return x.float().pow(2).mean(-1) ** 0.5

    def rms_norm(self, x, w, eps):
        return rms_norm(x, w, 0.0)


class RmsNormNoWeight(Ops):
    def rms_norm(self, x, w, eps):
        xf = x.float()
        return bf(xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))


class RmsNormMean(Ops):  # mean(x) where the norm needs mean(x^2)
    def rms(self, x, eps):
        return (x.float().mean(-1) + eps) ** 0.5

    def rms_norm(self, x, w, eps):
        xf = x.float()
        normed = bf(xf * torch.rsqrt(xf.mean(-1, keepdim=True) + eps))
        return bf(normed.float() * w.float())


class SiluOnW3(Ops):
    def ffn(self, x, w1, w2, w3):
        return swiglu_ffn(x, w3, w2, w1)


class ResidualForgotten(Ops):
    def residual_attn(self, x, delta):
        return delta


PLANTED = {"none": Ops, "fp32": Ops, "hf-permuted": HfPermuted, "rotate-half": RotateHalf,
           "rope-positions-from-1": PositionsFrom1, "no-sqrt-head-dim": NoSqrtHeadDim, "mask-missing": MaskMissing,
           "mask-wrong-side": MaskWrongSide, "softmax-wrong-dim": SoftmaxWrongDim, "kv-head-modulo": KvHeadModulo,
           "rmsnorm-no-eps": RmsNormNoEps, "rmsnorm-no-weight": RmsNormNoWeight, "rmsnorm-mean": RmsNormMean,
           "silu-on-w3": SiluOnW3, "residual-forgotten": ResidualForgotten}


def write_learner(m, tokens, layer, head, out_dir, ops):
    """Every tensor of chapters 01-15 under the trace's names, flat in out_dir, as a learner following the tutorial
    would np.save them (complex tensors as complex64, ids as int64), computed with `ops`."""
    os.makedirs(out_dir, exist_ok=True)
    C = run_chain(m, tokens, ops)
    R, T, kv = C["layers"][layer], int(tokens.shape[0]), head // m.n_rep
    Rh, L = R[("head", head)], layer
    pre = f"layers.{L}.attention."

    def save(name, x):
        if torch.is_tensor(x) and x.dtype == BF16:
            x = x.float()  # numpy has no bf16: a learner saves .float() (exact)
        a = x.detach().numpy() if torch.is_tensor(x) else np.asarray(x)
        if a.dtype not in (np.int64, np.complex64):
            a = a.astype(np.float32)
        np.save(os.path.join(out_dir, name + ".npy"), a)

    def complex_of(pairs):
        return torch.view_as_complex(pairs.float().contiguous())

    wq = ops.weight(m, pre + "wq.weight").view(m.H, m.Dh, m.D)
    wk = ops.weight(m, pre + "wk.weight").view(m.Hkv, m.Dh, m.D)
    wv = ops.weight(m, pre + "wv.weight").view(m.Hkv, m.Dh, m.D)
    lkv = ops.kv_head(m, head)  # the kv head the learner's code reads; saved under the trace's name
    save("tokens", tokens.to(torch.int64))
    save("token_embeddings_unnormalized", C["emb"])
    save("rms", ops.rms(C["stream"][L], m.eps))
    save("token_embeddings", R["x_norm"])
    save(f"q_layer{L}", wq)
    save(f"q_layer{L}_head{head}", wq[head])
    save("q_per_token", Rh["q"])
    q_pairs = ops.pairs(Rh["q"])
    save("q_per_token_split_into_pairs", q_pairs)
    save(f"zero_to_one_split_into_{m.Dh // 2}_parts", C["zero_to_one"])
    save("freqs", C["freqs"])
    save("freqs_for_each_token", C["angles"])
    save("freqs_cis", C["freqs_cis"].to(torch.complex64))
    save("q_per_token_as_complex_numbers", complex_of(q_pairs))
    save("q_per_token_as_complex_numbers_rotated", complex_of(Rh["q_pairs_rot"]))
    save("q_per_token_split_into_pairs_rotated", Rh["q_pairs_rot"])
    save("q_per_token_rotated", Rh["q_rot"])
    save(f"k_layer{L}", wk)
    save(f"k_layer{L}_head{kv}", wk[lkv])
    save("k_per_token", Rh["k"])
    k_pairs = ops.pairs(Rh["k"])
    save("k_per_token_split_into_pairs", k_pairs)
    save("k_per_token_as_complex_numbers", complex_of(k_pairs))
    save("k_per_token_split_into_pairs_rotated", Rh["k_pairs_rot"])
    save("k_per_token_rotated", Rh["k_rot"])
    save("qk_per_token", Rh["qk"])
    save("mask", ops.mask(T))
    save("qk_per_token_after_masking", Rh["masked"])
    save("qk_per_token_after_masking_after_softmax", Rh["p"])
    save(f"v_layer{L}", wv)
    save(f"v_layer{L}_head{kv}", wv[lkv])
    save("v_per_token", Rh["v"])
    save("qkv_attention", Rh["out"])
    save("attn_weights_all", R["attn_all"])
    save("stacked_qkv_attention", R["stacked"])
    save("embedding_delta", R["delta"])
    save("embedding_after_edit", R["after_edit"])
    save("embedding_after_edit_normalized", R["after_edit_norm"])
    save("output_after_feedforward", R["ffn_out"])
    save(f"layer_{L}_embedding", R["out"])
    stream = C["stream"]
    save("final_embedding", stream[-1])
    save("layer_outputs", torch.stack(stream[1:]))
    save("attn_weights_layers", torch.stack([r["attn_all"] for r in C["layers"]]))
    save("residual_norms", torch.stack(stream).double().pow(2).sum(-1).sqrt())
    save("final_embedding_normalized", C["final_norm"])
    save("logits", C["logits"])
    save("next_token", torch.tensor([int(torch.argmax(C["logits"]))], dtype=torch.int64))
    save("top_k_probs", torch.topk(torch.softmax(C["logits"].double(), 0), min(10, m.V)).values)


def main_write(args):
    """--write MODEL_DIR TRACE_DIR OUT_DIR [--plant MISTAKE]: tokens, layer and head from TRACE_DIR (chapters 01, 04)."""
    global ROUND_BF16
    plant = "none"
    if "--plant" in args:
        i = args.index("--plant")
        plant = args[i + 1] if i + 1 < len(args) else ""
        args = args[:i] + args[i + 2:]
    if len(args) != 3 or plant not in PLANTED:
        print("usage: walkthrough_reference.py --write MODEL_DIR TRACE_DIR OUT_DIR [--plant %s]" % "|".join(PLANTED),
              file=sys.stderr)
        return 2
    model_dir, trace_dir, out_dir = args
    tokens = torch.from_numpy(np.load(os.path.join(trace_dir, "01_tokenize", "tokens.npy")))
    names = [n for n in os.listdir(os.path.join(trace_dir, "04_query")) if re.fullmatch(r"q_layer\d+_head\d+\.npy", n)]
    layer, head = map(int, re.fullmatch(r"q_layer(\d+)_head(\d+)\.npy", names[0]).groups())
    ROUND_BF16 = plant != "fp32"
    m = Model(model_dir)
    write_learner(m, tokens, layer, head, out_dir, PLANTED[plant]())
    print(f"wrote the tensors of chapters 01-15 into {out_dir} (planted: {plant}; layer {layer}, head {head})")
    return 0


def main(argv):
    if argv[1:2] == ["--write"]:
        return main_write(argv[2:])
    args = argv[1:]
    if len(args) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    model_dir, out_dirs = args[0], args[1:]
    for out_dir in out_dirs:
        if not os.path.isfile(os.path.join(out_dir, "trace.json")):
            print(f"walkthrough_reference.py: {out_dir}: no trace.json", file=sys.stderr)
            return 2
    m = Model(model_dir)
    chains = {}  # one chain per distinct prompt
    passed = failed = 0
    for out_dir in out_dirs:
        ck = Checker(out_dir)
        check_dir(m, ck, out_dir, model_dir, chains)
        passed, failed = passed + ck.passed, failed + ck.failed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def check_dir(m, ck, out_dir, model_dir, chains):
    if not ck.has("01_tokenize/tokens.npy"):
        ck.fact(f"{out_dir}/01_tokenize/tokens.npy", False, "missing: the tokens come from chapter 01")
        return
    T_ = ck.load("01_tokenize/tokens.npy")
    ck.checked.add("01_tokenize/tokens.npy")
    trace = json.load(open(os.path.join(out_dir, "trace.json")))
    ck.fact("01_tokenize/tokens.npy (int64 [T], = trace.json's ids)",
            T_.dtype == np.int64 and T_.ndim == 1 and T_.tolist() == trace["tokens"]["ids"] and T_[0] == 128000,
            f"{T_.tolist()}")
    tokens = torch.from_numpy(T_)
    T = int(tokens.shape[0])

    # the layer and head the chapters followed (04_query/q_layerL_headH.npy)
    layer, head = 0, 0
    if os.path.isdir(os.path.join(out_dir, "04_query")):
        names = [n for n in os.listdir(os.path.join(out_dir, "04_query")) if re.fullmatch(r"q_layer\d+_head\d+\.npy", n)]
        if len(names) != 1:
            ck.fact("04_query: exactly one q_layerL_headH.npy", False, str(names))
        else:
            layer, head = map(int, re.fullmatch(r"q_layer(\d+)_head(\d+)\.npy", names[0]).groups())
    kv = head // m.n_rep
    print(f"# {out_dir}: model {model_dir}: D={m.D} L={m.L} H={m.H} Hkv={m.Hkv} Dh={m.Dh} F={m.F} V={m.V}; T={T}; "
          f"layer {layer}, head {head} (kv head {kv})", flush=True)

    key = tuple(T_.tolist())
    if key not in chains:
        chains[key] = run_chain(m, tokens)
    C = chains[key]
    zero_to_one, freqs, angles, freqs_cis = C["zero_to_one"], C["freqs"], C["angles"], C["freqs_cis"]
    emb, stream, layers, final_norm, chain_logits = C["emb"], C["stream"], C["layers"], C["final_norm"], C["logits"]
    R = layers[layer]
    Rh = R[("head", head)]

    def present(step):
        return os.path.isdir(os.path.join(out_dir, step))

    # 02 embed
    if present("02_embed"):
        ck.compare("02_embed/token_embeddings_unnormalized.npy", emb, "exact", emb, 0.0)
    # the chapters' input of layer `layer`: the embeddings, or 14's output of the layer before
    if layer == 0:
        x_in = ck.t("02_embed/token_embeddings_unnormalized.npy").to(BF16) if present("02_embed") else emb
    elif ck.has("14_layers/layer_outputs.npy"):
        x_in = ck.t("14_layers/layer_outputs.npy")[layer - 1].to(BF16)
    else:
        x_in = stream[layer]
    # 03 rmsnorm
    if present("03_rmsnorm"):
        xf = x_in.float()
        rms = (xf.pow(2).mean(-1) + m.eps) ** 0.5  # the tutorial's (x.pow(2).mean(-1) + norm_eps)**0.5
        cx = stream[layer].float()
        ck.compare("03_rmsnorm/rms.npy", rms, "fp32", (cx.pow(2).mean(-1) + m.eps) ** 0.5)
        ck.compare("03_rmsnorm/token_embeddings.npy", rms_norm(x_in, m.W(f"layers.{layer}.attention_norm.weight"), m.eps),
                   "bf16", R["x_norm"])
    xn = ck.t("03_rmsnorm/token_embeddings.npy").to(BF16) if present("03_rmsnorm") else R["x_norm"]
    wq = m.W(f"layers.{layer}.attention.wq.weight").view(m.H, m.Dh, m.D)
    wk = m.W(f"layers.{layer}.attention.wk.weight").view(m.Hkv, m.Dh, m.D)
    wv = m.W(f"layers.{layer}.attention.wv.weight").view(m.Hkv, m.Dh, m.D)
    # 04 query
    if present("04_query"):
        ck.compare(f"04_query/q_layer{layer}.npy", wq, "exact", wq, 0.0)
        ck.compare(f"04_query/q_layer{layer}_head{head}.npy", wq[head], "exact", wq[head], 0.0)
        ck.compare("04_query/q_per_token.npy", linear(xn, wq[head]), "bf16", Rh["q"])
    q = ck.t("04_query/q_per_token.npy").to(BF16) if present("04_query") else Rh["q"]
    # 05 rope
    if present("05_rope"):
        d = "05_rope/"
        pairs = q.float().view(T, -1, 2)
        ck.compare(d + "q_per_token_split_into_pairs.npy", pairs, "exact", Rh["q"].float().view(T, -1, 2))
        ck.compare(d + f"zero_to_one_split_into_{m.Dh // 2}_parts.npy", zero_to_one, "exact", zero_to_one, 0.0)
        ck.compare(d + "freqs.npy", freqs, "exact", freqs, 0.0)
        ck.compare(d + "freqs_for_each_token.npy", angles, "exact", angles, 0.0)
        ck.compare(d + "freqs_cis.npy", torch.view_as_real(freqs_cis), "cos", torch.view_as_real(freqs_cis), 1e-6)
        ck.compare(d + "q_per_token_as_complex_numbers.npy", pairs, "exact", Rh["q"].float().view(T, -1, 2))
        # the chapter's own freqs_cis, so that this compares the product alone
        fc = torch.view_as_complex(ck.t(d + "freqs_cis.npy").contiguous())
        rot_pairs, rot = rotate(q, fc)
        ck.compare(d + "q_per_token_as_complex_numbers_rotated.npy", rot_pairs, "fp32", Rh["q_pairs_rot"])
        ck.compare(d + "q_per_token_split_into_pairs_rotated.npy", rot_pairs, "fp32", Rh["q_pairs_rot"])
        ck.compare(d + "q_per_token_rotated.npy", rot, "bf16", Rh["q_rot"])
    # 06 key
    if present("06_key"):
        d = "06_key/"
        ck.compare(d + f"k_layer{layer}.npy", wk, "exact", wk, 0.0)
        ck.compare(d + f"k_layer{layer}_head{kv}.npy", wk[kv], "exact", wk[kv], 0.0)
        ck.compare(d + "k_per_token.npy", linear(xn, wk[kv]), "bf16", Rh["k"])
        k = ck.t(d + "k_per_token.npy").to(BF16)
        pairs = k.float().view(T, -1, 2)
        ck.compare(d + "k_per_token_split_into_pairs.npy", pairs, "exact", Rh["k"].float().view(T, -1, 2))
        ck.compare(d + "k_per_token_as_complex_numbers.npy", pairs, "exact", Rh["k"].float().view(T, -1, 2))
        rot_pairs, rot = rotate(k, freqs_cis)
        ck.compare(d + "k_per_token_split_into_pairs_rotated.npy", rot_pairs, "fp32", Rh["k_pairs_rot"])
        ck.compare(d + "k_per_token_rotated.npy", rot, "bf16", Rh["k_rot"])
    # 07 scores, from the rotated q (05) and k (06) the chapters wrote
    q_rot = ck.t("05_rope/q_per_token_rotated.npy") if present("05_rope") else Rh["q_rot"]
    k_rot = ck.t("06_key/k_per_token_rotated.npy") if present("06_key") else Rh["k_rot"]
    if present("07_scores"):
        ck.compare("07_scores/qk_per_token.npy", scores(q_rot, k_rot, m.Dh), "fp32", Rh["qk"])
    # 08 mask
    if present("08_mask"):
        ck.compare("08_mask/mask.npy", causal_mask(T), "exact", None)
        qk = ck.t("07_scores/qk_per_token.npy") if present("07_scores") else Rh["qk"]
        ck.compare("08_mask/qk_per_token_after_masking.npy", qk + causal_mask(T), "exact", Rh["masked"])
    # 09 softmax
    if present("09_softmax"):
        masked = ck.t("08_mask/qk_per_token_after_masking.npy") if present("08_mask") else Rh["masked"]
        ck.compare("09_softmax/qk_per_token_after_masking_after_softmax.npy", softmax_bf16(masked), "bf16", Rh["p"])
    # 10 value
    if present("10_value"):
        d = "10_value/"
        ck.compare(d + f"v_layer{layer}.npy", wv, "exact", wv, 0.0)
        ck.compare(d + f"v_layer{layer}_head{kv}.npy", wv[kv], "exact", wv[kv], 0.0)
        ck.compare(d + "v_per_token.npy", linear(xn, wv[kv]), "bf16", Rh["v"])
        p = ck.t("09_softmax/qk_per_token_after_masking_after_softmax.npy") if present("09_softmax") else Rh["p"].float()
        v = ck.t(d + "v_per_token.npy")
        ck.compare(d + "qkv_attention.npy", bf(p @ v), "bf16", Rh["out"])
    # 11 multihead: every head from the chapter's token_embeddings; the values from its attention weights
    if present("11_multihead"):
        d = "11_multihead/"
        op = layer_forward_heads_from(m, layer, xn, freqs_cis)
        ck.compare(d + "attn_weights_all.npy", op["attn_all"], "bf16", R["attn_all"])
        p_all = ck.t(d + "attn_weights_all.npy")
        v_all = [linear(xn, wv[g]).float() for g in range(m.Hkv)]
        stacked = torch.cat([bf(p_all[h] @ v_all[h // m.n_rep]) for h in range(m.H)], dim=-1)
        ck.compare(d + "stacked_qkv_attention.npy", stacked, "bf16", R["stacked"])
        if present("10_value"):
            s = ck.load(d + "stacked_qkv_attention.npy")[:, head * m.Dh:(head + 1) * m.Dh]
            same = np.array_equal(s, ck.load("10_value/qkv_attention.npy"))
            ck.fact(f"head {head} of stacked_qkv_attention == 10_value/qkv_attention", same, "bit for bit" if same else "differs")
    # 12 output
    if present("12_output"):
        d = "12_output/"
        stacked = ck.t("11_multihead/stacked_qkv_attention.npy").to(BF16) if present("11_multihead") else R["stacked"]
        ck.compare(d + "embedding_delta.npy", linear(stacked, m.W(f"layers.{layer}.attention.wo.weight")), "bf16", R["delta"])
        ck.compare(d + "embedding_after_edit.npy", residual(x_in, ck.t(d + "embedding_delta.npy")), "bf16", R["after_edit"])
    # 13 ffn
    if present("13_ffn"):
        d = "13_ffn/"
        after = ck.t("12_output/embedding_after_edit.npy").to(BF16) if present("12_output") else R["after_edit"]
        ck.compare(d + "embedding_after_edit_normalized.npy", rms_norm(after, m.W(f"layers.{layer}.ffn_norm.weight"), m.eps),
                   "bf16", R["after_edit_norm"])
        normed = ck.t(d + "embedding_after_edit_normalized.npy").to(BF16)
        pre = f"layers.{layer}.feed_forward."
        ck.compare(d + "output_after_feedforward.npy",
                   swiglu_ffn(normed, m.W(pre + "w1.weight"), m.W(pre + "w2.weight"), m.W(pre + "w3.weight")), "bf16",
                   R["ffn_out"])
        ck.compare(d + f"layer_{layer}_embedding.npy", residual(after, ck.t(d + "output_after_feedforward.npy")), "bf16",
                   R["out"])
    # 14 layers: each layer from the chapter's own input of that layer
    if present("14_layers"):
        d = "14_layers/"
        outs = ck.t(d + "layer_outputs.npy")
        ins = [ck.t("02_embed/token_embeddings_unnormalized.npy") if present("02_embed") else emb.float()]
        ins += [outs[L] for L in range(m.L - 1)]
        op_layers = [layer_forward(m, L, ins[L].to(BF16), freqs_cis) for L in range(m.L)]
        ck.compare(d + "layer_outputs.npy", torch.stack([r["out"] for r in op_layers]), "layer",
                   torch.stack(stream[1:]))
        ck.compare(d + "attn_weights_layers.npy", torch.stack([r["attn_all"] for r in op_layers]), "layer",
                   torch.stack([r["attn_all"] for r in layers]))
        ck.compare(d + "final_embedding.npy", outs[-1], "exact", stream[-1])
        st = torch.stack([ins[0]] + [outs[L] for L in range(m.L)]).double()
        ck.compare(d + "residual_norms.npy", st.pow(2).sum(-1).sqrt(), "fp32",
                   torch.stack(stream).double().pow(2).sum(-1).sqrt())
    # 15 logits
    if present("15_logits"):
        d = "15_logits/"
        final = ck.t("14_layers/final_embedding.npy").to(BF16) if present("14_layers") else stream[-1]
        normed = rms_norm(final, m.W("norm.weight"), m.eps)
        ck.compare(d + "final_embedding.npy", normed, "bf16", final_norm)
        ck.compare(d + "final_embedding_normalized.npy", normed, "bf16", final_norm)
        c_final = ck.t(d + "final_embedding_normalized.npy")
        op_logits = logits_of(m, c_final[-1])
        ck.compare(d + "logits.npy", op_logits, "fp32", chain_logits)
        c_logits = torch.from_numpy(ck.load(d + "logits.npy").astype(np.float32))
        nt = ck.load(d + "next_token.npy")
        ck.checked.add(d + "next_token.npy")
        want_op, want_chain = int(torch.argmax(op_logits)), int(torch.argmax(chain_logits))
        top2 = torch.topk(chain_logits, 2).values
        ck.fact(d + "next_token.npy == torch.argmax(logits)", nt.shape == (1,) and int(nt[0]) == want_op == want_chain,
                f"chapter {nt.tolist()}, torch {want_op} (from the chapter's final embedding), {want_chain} (chain; "
                f"top-2 gap {float(top2[0] - top2[1]):.3g})")
        # exp() turns an absolute error of a logit into the same relative error of its probability, so the chain's
        # drift of the logits (about 2^-6 of their size) allows 2^-4 here.
        probs = torch.softmax(c_logits.double(), dim=0)
        ck.compare(d + "top_k_probs.npy", torch.topk(probs, 10).values, "fp32",
                   torch.topk(torch.softmax(chain_logits.double(), 0), 10).values, 2.0 ** -4)

    # 19 logit lens: chapter 15's final norm and output head after every layer, from the chapter's own inputs
    if present("19_logit_lens"):
        check_logit_lens(m, ck, present, stream, final_norm, chain_logits)

    # every .npy under the trace must have been checked
    for root, _, files in os.walk(out_dir):
        for f in sorted(files):
            if f.endswith(".npy"):
                rel = os.path.relpath(os.path.join(root, f), out_dir)
                if rel not in ck.checked:
                    ck.fact(rel, False, "an .npy this reference does not know how to check")


def lens_logits(m, xn):
    """logits of every row of xn [N, D] (bf16 values) against output.weight, accumulated in float64 and rounded once to
    float32: the C reference's order of operations (double sums), so the comparison can be tight. [N, V] float32."""
    w = m.W("output.weight")
    x = xn.double()
    return torch.cat([(x @ w[i:i + 8192].double().T).float() for i in range(0, w.shape[0], 8192)], dim=1)


def check_logit_lens(m, ck, present, stream, final_norm, chain_logits):
    d = "19_logit_lens/"
    norm_w = m.W("norm.weight")
    # the chapter's input: chapter 14's layer outputs when they are in the trace, else the chain's
    outs = ck.t("14_layers/layer_outputs.npy").to(BF16) if present("14_layers") else torch.stack(stream[1:])
    chain_norm = torch.stack([rms_norm(h, norm_w, m.eps) for h in stream[1:]])
    ck.compare(d + "layer_outputs_normalized.npy", rms_norm(outs, norm_w, m.eps), "bf16", chain_norm)
    xn = ck.t(d + "layer_outputs_normalized.npy")  # [NL, T, D]
    NL, T = xn.shape[0], xn.shape[1]
    lg = lens_logits(m, xn.reshape(NL * T, -1)).reshape(NL, T, -1)  # [NL, T, V] fp32
    probs = torch.softmax(lg.double(), dim=-1)
    ck.compare(d + "logit_lens_last_token_logits.npy", lg[:, -1], "fp32",
               torch.stack([logits_of(m, r[-1]) for r in chain_norm]), 2.0 ** -6)
    # the k best tokens of every cell: the reference's probabilities at the chapter's ids, and the reference's own k
    # largest probabilities, both equal to the chapter's (the two together: the ids are a top k, up to exact ties)
    ids, p = ck.load(d + "logit_lens_top_ids.npy"), ck.t(d + "logit_lens_top_probs.npy")
    ck.checked.add(d + "logit_lens_top_ids.npy")
    K = p.shape[-1]
    ok_ids = ids.dtype == np.int64 and ids.shape == tuple(p.shape) and ids.min() >= 0 and ids.max() < m.V
    ck.fact(d + "logit_lens_top_ids.npy: int64 token ids, the shape of the probabilities", ok_ids, f"{ids.dtype} {list(ids.shape)}")
    if ok_ids:
        at_ids = torch.gather(probs, 2, torch.from_numpy(ids)).float()
        ck.compare(d + "logit_lens_top_probs.npy", at_ids, "fp32")
        ck.fact(d + "logit_lens_top_probs.npy: the reference's top-%d probabilities" % K,
                np.allclose(p.numpy(), torch.topk(probs, K, dim=-1).values.float().numpy(), rtol=1e-5, atol=1e-12),
                "sorted, within rtol 1e-5")
    # the last layer is chapter 15: the same final norm and product on the same rows, bit for bit
    last = ck.load(d + "logit_lens_last_token_logits.npy")
    if present("15_logits"):
        same = np.array_equal(last[-1], ck.load("15_logits/logits.npy"))
        ck.fact(d + "logit_lens_last_token_logits[-1] == 15_logits/logits.npy", same, "bit for bit" if same else "differs")
    ck.fact(d + "the last layer's top-1 at the last position = torch.argmax of the chain's logits",
            ok_ids and int(ids[-1, -1, 0]) == int(torch.argmax(chain_logits)), f"{int(ids[-1, -1, 0])}")
    # the final prediction's rank and probability after each layer, from the chapter's own last-token logits
    target = int(np.argmax(last[-1]))
    rank = ck.load(d + "final_prediction_rank.npy")
    ck.checked.add(d + "final_prediction_rank.npy")
    want_rank = [1 + int((row > row[target]).sum()) for row in last]
    ck.fact(d + "final_prediction_rank.npy = 1 + #(logits > the prediction's)", rank.dtype == np.int64 and
            rank.tolist() == want_rank, f"{rank.tolist()} (want {want_rank})")
    want_prob = torch.softmax(torch.from_numpy(last).double(), dim=-1)[:, target]
    ck.compare(d + "final_prediction_prob.npy", want_prob, "fp32")


def layer_forward_heads_from(m, layer, xn, freqs_cis):
    """Chapter 11's batch: every head's attention weights from the chapter's token_embeddings (xn)."""
    T, Dh = xn.shape[0], m.Dh
    q_layer = m.W(f"layers.{layer}.attention.wq.weight").view(m.H, Dh, m.D)
    k_layer = m.W(f"layers.{layer}.attention.wk.weight").view(m.Hkv, Dh, m.D)
    probs = []
    for head in range(m.H):
        _, q_rot = rotate(linear(xn, q_layer[head]), freqs_cis)
        _, k_rot = rotate(linear(xn, k_layer[head // m.n_rep]), freqs_cis)
        probs.append(softmax_bf16(scores(q_rot, k_rot, Dh) + causal_mask(T)))
    return {"attn_all": torch.stack(probs)}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
