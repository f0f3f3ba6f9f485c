#!/usr/bin/python3
"""tp_reference.py: tensor parallelism in PyTorch, as Meta's fairscale layers split Llama-3, against our files.

    tp_reference.py shards MODEL_DIR MP_DIR N
        MP_DIR holds N files written by `wt-convert reshard --mp N MODEL_DIR MP_DIR`. Each consolidated.RR.pth,
        read with torch.load, must hold every tensor of MODEL_DIR (one file) in the same order and dtype, cut as
        model_parallel_size = N cuts it:
          ColumnParallelLinear (wq, wk, wv, w1, w3, output) and VocabParallelEmbedding (tok_embeddings): rank r
            holds rows chunk r of N along dim 0 (whole heads, FFN rows, vocabulary rows);
          RowParallelLinear (wo, w2): columns chunk r along dim 1;
          the norms: the whole tensor in every file;
          wk, wv with N > n_kv_heads: rank r holds the kv head its query heads read, r // (N // n_kv_heads),
            the same rows in N // n_kv_heads files.

    tp_reference.py chapter MODEL_DIR TRACE_DIR
        Every .npy chapter 18 (18_tensor_parallel --tp N) wrote, recomputed from MODEL_DIR's one file as Meta's
        model.py computes it on N ranks: each rank multiplies by its own weight slice (cut as above); the
        row-parallel products (wo, w2) give partial sums that an all-reduce adds (rank after rank, rounded after each
        addition, as the chapter emulates a ring); the embedding is looked up per vocabulary range and summed; the
        logits are each rank's vocabulary rows, gathered. Each tensor from the chapter's own inputs of that op
        (tolerances as walkthrough_reference.py's), and the split layer's output and the logits against torch's
        unsplit layer and logits.

Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage. Output ends with "N passed, N failed".
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import walkthrough_reference as wr  # noqa: E402  the tutorial's ops at Meta's precision points

# SwiGLU's output from the chapter's hn: gate and up are products (each may round to the neighbouring bf16), then
# silu(gate) is rounded and so is silu * up: three rounding points that may each land one bf16 ulp away, so four
# ulps relative (2^-6), where a single product or norm has "bf16"'s two (2^-7)
wr.TOL["swiglu"] = (2.0 ** -6, 2.0 ** -8)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
BF16 = torch.bfloat16


ROW_PARALLEL = ("attention.wo.weight", "feed_forward.w2.weight")
COLUMN_PARALLEL = ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "feed_forward.w1.weight",
                   "feed_forward.w3.weight")


def rank_part(name, t, m, N, r):
    """The part of the unsplit tensor t that rank r of N holds (fairscale's split, kv heads replicated); m: the model
    (walkthrough_reference.Model: its config)."""
    Hkv, Dh = m.Hkv, m.Dh
    if name.endswith(("attention.wk.weight", "attention.wv.weight")) and N > Hkv:
        kv = r // (N // Hkv)
        return t[kv * Dh:(kv + 1) * Dh]
    if name in ("tok_embeddings.weight", "output.weight") or name.endswith(COLUMN_PARALLEL):
        return t.chunk(N, dim=0)[r]
    if name.endswith(ROW_PARALLEL):
        return t.chunk(N, dim=1)[r]
    return t


def shards(model_dir, mp_dir, N):
    m = wr.Model(model_dir)
    ck = wr.Checker(mp_dir)
    check = lambda ok, what: ck.fact(what, ok)  # noqa: E731
    whole = m.w
    files = sorted(f for f in os.listdir(mp_dir) if f.startswith("consolidated.") and f.endswith(".pth"))
    check(files == ["consolidated.%02d.pth" % r for r in range(N)], "%s holds %s, expected %d files" % (mp_dir, files, N))
    for r in range(min(N, len(files))):
        part = torch.load(os.path.join(mp_dir, files[r]), map_location="cpu")
        check(list(part) == list(whole), "%s: the names in another order or missing" % files[r])
        for name, t in whole.items():
            if name not in part:
                continue
            want, got = rank_part(name, t, m, N, r), part[name]
            ok = got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)
            check(ok, "%s %s: %s %s, expected %s %s (rank %d of %d)" % (files[r], name, got.dtype, tuple(got.shape),
                                                                       want.dtype, tuple(want.shape), r, N))
    with open(os.path.join(model_dir, "params.json"), "rb") as a, open(os.path.join(mp_dir, "params.json"), "rb") as b:
        check(a.read() == b.read(), "params.json: a copy of the input's")
    return ck


# ---- chapter 18 ----------------------------------------------------------------------------------------------------
def rope_heads(x, freqs_cis):
    """RoPE of every head of x [T, heads * Dh]: Meta's apply_rotary_emb, the pairs as complex64, rounded to bf16."""
    T = x.shape[0]
    pairs = x.float().view(T, -1, freqs_cis.shape[1], 2)  # [T, heads, Dh/2, 2]
    rot = torch.view_as_real(torch.view_as_complex(pairs.contiguous()) * freqs_cis[:, None, :])
    return wr.bf(rot.reshape(x.shape))


def attention_heads(q, k, v, heads, kv_heads, Dh):
    """Causal attention of the rank's heads: local head j reads local kv head j // (heads // kv_heads)."""
    T, out = q.shape[0], []
    for j in range(heads):
        kv = j // (heads // kv_heads)
        qj, kj, vj = q[:, j * Dh:(j + 1) * Dh], k[:, kv * Dh:(kv + 1) * Dh], v[:, kv * Dh:(kv + 1) * Dh]
        p = wr.softmax_bf16(wr.scores(qj, kj, Dh) + wr.causal_mask(T))
        out.append(wr.bf(p.float() @ vj.float()))
    return torch.cat(out, dim=-1)


def all_reduce(parts):
    """dist.all_reduce of bf16 tensors as the chapter emulates a ring: rank after rank, rounded after each add."""
    acc = parts[0]
    for x in parts[1:]:
        acc = wr.residual(acc, x)
    return acc


def chapter(model_dir, out_dir):
    """Every .npy of 18_tensor_parallel, recomputed on N ranks from fairscale's split of the checkpoint's weights.

    Op level, as walkthrough_reference.py does: each tensor from the chapter's OWN inputs of that op, so a difference
    belongs to that op (exact: lookups, the all-reduces of the chapter's own partials, the residual adds, the gather;
    bf16: a product or a norm, two bf16 ulps; fp32: the logits). Then the layer's output against the unsplit layer
    of walkthrough_reference.layer_forward from the same input ("layer" tolerance: a chain of a dozen roundings)."""
    m = wr.Model(model_dir)
    ck = wr.Checker(out_dir)
    d = "18_tensor_parallel/"
    trace = json.load(open(os.path.join(out_dir, "trace.json")))
    tokens = torch.tensor(trace["tokens"]["ids"])
    T = int(tokens.shape[0])
    names = os.listdir(os.path.join(out_dir, d))
    layer = [int(n[6:-14]) for n in names if n.startswith("layer_") and n.endswith("_embedding.npy")]
    if len(layer) != 1:
        ck.fact(d + "layer_L_embedding.npy", False, "exactly one expected")
        return ck
    L = layer[0]
    N = int(ck.load(d + "q_per_rank.npy").shape[0])
    D, Dh, pre = m.D, m.Dh, "layers.%d." % L
    W = lambda name: m.W(name)  # noqa: E731
    _, freqs = wr.rope_freqs(Dh, m.theta)
    angles = torch.outer(torch.arange(T).float(), freqs)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)
    print("# %s: N = %d ranks, layer %d" % (out_dir, N, L))

    x = ck.t(d + "layer_input.npy")
    ck.checked.add(d + "layer_input.npy")  # the input: the unsplit chapters' stream, checked by walkthrough_reference
    xn = wr.rms_norm(x, W(pre + "attention_norm.weight"), m.eps)
    emb_parts, q_ranks, attn_ranks, delta_parts, hidden_ranks, ffn_parts, logit_parts = [], [], [], [], [], [], []
    got = {n: ck.t(d + n + ".npy") for n in ("tok_embeddings_partial", "q_per_rank", "k_per_rank", "v_per_rank",
                                              "attention_per_rank", "embedding_delta_partial", "ffn_hidden_per_rank",
                                              "output_after_feedforward_partial", "logits_per_rank")}
    h = ck.t(d + "embedding_after_edit.npy")
    ck.compare(d + "embedding_after_edit_normalized.npy", wr.rms_norm(h.to(BF16), W(pre + "ffn_norm.weight"), m.eps),
               "bf16")
    hn = ck.t(d + "embedding_after_edit_normalized.npy").to(BF16)  # the FFN's input: the chapter's own
    xn_final = ck.t(d + "final_embedding_normalized.npy")
    ck.checked.add(d + "final_embedding_normalized.npy")  # chapter 15's, computed unsplit
    for r in range(N):
        part = lambda name: rank_part(name, W(name), m, N, r)  # noqa: E731
        # VocabParallelEmbedding: the rank's rows for ids in its range, zeros elsewhere
        rows = part("tok_embeddings.weight")
        v0 = r * rows.shape[0]
        mine = (tokens >= v0) & (tokens < v0 + rows.shape[0])
        e = torch.zeros(T, D, dtype=BF16)
        e[mine] = rows[tokens[mine] - v0]
        emb_parts.append(e)
        # column-parallel q, k, v of the rank's heads, from the chapter's layer input
        q = rope_heads(wr.linear(xn, part(pre + "attention.wq.weight")), freqs_cis)
        k = rope_heads(wr.linear(xn, part(pre + "attention.wk.weight")), freqs_cis)
        v = wr.linear(xn, part(pre + "attention.wv.weight"))
        q_ranks.append((q, k, v))
        heads, kv_heads = q.shape[1] // Dh, k.shape[1] // Dh
        # attention of the rank's heads from the chapter's own q, k, v of this rank
        attn_ranks.append(attention_heads(got["q_per_rank"][r], got["k_per_rank"][r], got["v_per_rank"][r], heads,
                                          kv_heads, Dh))
        # RowParallelLinear: the partial product with the rank's columns of wo, from the chapter's own attention
        delta_parts.append(wr.linear(got["attention_per_rank"][r], part(pre + "attention.wo.weight")))
        # the FFN's rows of w1, w3 from the chapter's h; the partial with w2's columns from the chapter's hidden
        gate, up = wr.linear(hn, part(pre + "feed_forward.w1.weight")), wr.linear(hn, part(pre + "feed_forward.w3.weight"))
        silu = wr.bf(gate.float() * torch.sigmoid(gate.float()))
        hidden_ranks.append(wr.bf(silu.float() * up.float()))
        ffn_parts.append(wr.linear(got["ffn_hidden_per_rank"][r], part(pre + "feed_forward.w2.weight")))
        # ColumnParallelLinear output: the last token's logits of the rank's vocabulary rows, fp32
        logit_parts.append(part("output.weight").float() @ xn_final[-1].float())
    ck.compare(d + "tok_embeddings_partial.npy", torch.stack(emb_parts), "exact")
    ck.compare(d + "token_embeddings_unnormalized.npy", all_reduce(list(got["tok_embeddings_partial"].to(BF16))), "exact")
    ck.fact(d + "(the embedding all-reduced is the unsplit lookup)", torch.equal(
        ck.t(d + "token_embeddings_unnormalized.npy"), W("tok_embeddings.weight")[tokens].float()), "torch's rows")
    ck.compare(d + "q_per_rank.npy", torch.stack([t[0] for t in q_ranks]), "bf16")
    ck.compare(d + "k_per_rank.npy", torch.stack([t[1] for t in q_ranks]), "bf16")
    ck.compare(d + "v_per_rank.npy", torch.stack([t[2] for t in q_ranks]), "bf16")
    ck.compare(d + "attention_per_rank.npy", torch.stack(attn_ranks), "bf16")
    ck.compare(d + "embedding_delta_partial.npy", torch.stack(delta_parts), "bf16")
    delta = all_reduce(list(got["embedding_delta_partial"].to(BF16)))
    ck.compare(d + "embedding_delta.npy", delta, "exact")
    ck.compare(d + "embedding_after_edit.npy", wr.residual(x.to(BF16), ck.t(d + "embedding_delta.npy").to(BF16)), "exact")
    ck.compare(d + "ffn_hidden_per_rank.npy", torch.stack(hidden_ranks), "swiglu")
    ck.compare(d + "output_after_feedforward_partial.npy", torch.stack(ffn_parts), "bf16")
    ffn_out = all_reduce(list(got["output_after_feedforward_partial"].to(BF16)))
    ck.compare(d + "output_after_feedforward.npy", ffn_out, "exact")
    out = wr.residual(h.to(BF16), ck.t(d + "output_after_feedforward.npy").to(BF16))
    unsplit = wr.layer_forward(m, L, x.to(BF16), freqs_cis)["out"]
    # op: the last residual add from the chapter's own h and FFN output; chain: torch's UNSPLIT layer of the same input
    ck.compare(d + "layer_%d_embedding.npy" % L, out, "exact", chain_ref=unsplit, chain_bound=2.0 ** -6)
    ck.compare(d + "logits_per_rank.npy", torch.stack(logit_parts), "fp32")
    ck.compare(d + "logits.npy", got["logits_per_rank"].reshape(-1), "exact")
    unsplit_logits = wr.logits_of(m, xn_final[-1].to(BF16))
    ck.compare(d + "logits.npy", unsplit_logits, "fp32")
    for f in sorted(os.listdir(os.path.join(out_dir, d))):
        if f.endswith(".npy") and d + f not in ck.checked:
            ck.fact(d + f, False, "an .npy this reference does not know how to check")
    return ck


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "shards":
        ck = shards(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "chapter":
        ck = chapter(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
    print("%d passed, %d failed" % (ck.passed, ck.failed))
    sys.exit(1 if ck.failed else 0)


if __name__ == "__main__":
    main()
