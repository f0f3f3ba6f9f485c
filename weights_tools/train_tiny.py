#!/usr/bin/env python3
"""train_tiny.py: trains the small Llama-3 that `make demo` traces, and saves it in Meta's own checkpoint layout.

The model is Llama-3 as Meta's reference (llama/model.py) builds it, written here from that description: token
embedding; n_layers blocks of  h = x + wo(attention(attention_norm(x)))  and  out = h + w2(silu(w1(n)) * w3(n)) with
n = ffn_norm(h); final norm; output projection. RMSNorm in fp32 with eps 1e-5; RoPE on interleaved pairs through
complex numbers with theta 500000; grouped-query attention where query head h reads kv head h // (n_heads/n_kv_heads)
(repeat-interleave); SwiGLU with Meta's hidden-size rule. Names (Dh = head_dim, F = FFN hidden, V = vocab):

    tok_embeddings.weight               [V, D]        layers.L.attention.wq.weight      [H*Dh, D]
    layers.L.attention.wk.weight        [Hkv*Dh, D]   layers.L.attention.wv.weight      [Hkv*Dh, D]
    layers.L.attention.wo.weight        [D, H*Dh]     layers.L.feed_forward.w1.weight   [F, D]   (gate)
    layers.L.feed_forward.w3.weight     [F, D] (up)   layers.L.feed_forward.w2.weight   [D, F]   (down)
    layers.L.attention_norm.weight      [D]           layers.L.ffn_norm.weight          [D]
    norm.weight                         [D]           output.weight                     [V, D]

Default shape: D=512, H=4, Hkv=1 (a GQA group of 4, like the 8B's 32/8), Dh=128 (so the walkthrough prints the
tutorial's 64 RoPE frequencies), 4 layers, F=1536, V=128256 (the real Llama-3 vocabulary).

The vocabulary trick. The corpus uses about 10k of the 128256 ids. Training keeps only those rows (a compact
embedding and output matrix), and treats every unused id as a token whose logit is exactly 0: the cross-entropy gets
one extra column holding log(number of unused ids), which is logsumexp of that many zero logits. At save time the
compact rows are scattered into full [128256, D] matrices whose other rows are exactly zero. The saved model
therefore computes exactly the function that was trained: unused ids get logit 0 (output row 0), their embedding
rows are never read on the corpus, and the softmax over all 128256 ids is the one the loss optimised. Since the
model had to push the likely tokens far above that block of ~118k zero logits (log 118k = 11.7), a confident
prediction such as "42" after the tutorial prompt has a large positive logit and stays the argmax over the full
vocabulary. The script checks that on the saved bf16 weights. The zero rows also let git store the file compressed.

What the demo must show, and the kept checkpoint. The walkthrough should show what the tutorial shows: a head of
layer 0 that looks at the previous token, an attention sink on <|begin_of_text|>, and the answer 42. Those criteria
are defined once below (attention_criteria) and tests/test_tiny_model.sh applies the same functions to the C
walkthrough's attention maps. Every --eval-every steps the held-out loss, the greedy answer and the criteria are
logged (train_log.json "evals"). The kept checkpoint is the lowest-held-out-loss evaluation that answers 42, is
within --loss-margin of the best held-out loss of the run, and meets the criteria with --select-margin to spare;
the saved bf16 file is checked again (falling back to the next candidate). Dropout (training only) lets the small
corpus be seen more times before the held-out loss turns up.

A previous-token head in layer 0 (--embed-init-std, --embed-init-shared). Layer 0's queries and keys are linear maps
of RMSNorm(the token's embedding) alone, rotated by RoPE. A head that looks at the previous token whatever the tokens
are needs a part of q and k that is the same for every token: q_t . R(t-s) k_s then has a content-free term that
depends on t-s only, and the rotation lets it peak at t-s = 1. Later layers get such a common part for free (layer
0's attention averages value vectors, a sink adds the same vector everywhere), which is why every earlier run had its
previous-token heads in layers 2-3 (up to 0.98 on the tutorial prompt) and none above 0.3 in layer 0, with or
without repeated-span data (--repeat-frac), whose induction circuit took its previous-token head from a later layer
too. In layer 0 the common part has to be in the embedding, and rows started as independent N(0, 0.02) draws stay
nearly isotropic (the frequency-weighted mean of the normalised rows is 0.06 of their length in the committed
model): layer 0 can only attend by content. --embed-init-shared S adds one random vector, entries N(0, S), to every
row at the start, so the rows share a direction from the first step. It sets no attention weights: wq and wk start
random as before, and training decides whether a head uses the shared direction and at which offset. The rows also
need to be large enough (--embed-init-std 0.1 rather than 0.02): with small rows, layer-0 heads became
self-attention heads that re-inject the token into the residual stream at ~15x the embedding's size; so did a run
with tied embeddings (one matrix as embedding and output, whose output gradient also makes the rows share a
direction), and a larger learning rate on the embedding did not help either (both tried on the CPU, options removed). Measured on the CPU
(dim 512, 4 layers, 4 heads, 1 kv head, 250 steps of 16 x 64 tokens, lr 2e-3): best layer-0 previous-token head
0.19 without, 0.75 with --embed-init-std 0.1 --embed-init-shared 0.1 (0.95-1.0 at most positions of the tutorial
prompt, 0.75 on held-out text too), held-out loss 4.98 -> 4.81. At full length on an H200 (1200 steps, tools/train_variants.sh,
8 variants of seed, shared scale, dropout, lr and repeated spans) every variant had one, 0.59-0.81, against 0.16-0.29
in 9 earlier GPU runs without the shared start; the demo model is one of them (models/README.md). Other options kept for such experiments:
--repeat-frac/--repeat-source/--repeat-min/--repeat-max (a share of each batch is BOS + a span repeated to fill the
window; the held-out loss stays measured on the unchanged valid.bin).

Outputs in OUT: params.json (Meta's keys), consolidated.00.pth (torch.save of a dict of bf16 contiguous tensors),
loss.csv (step, lr, train loss, held-out loss), loss.png (when matplotlib is importable), train_log.json, and a copy
of the corpus's tokenizer.model (so that OUT is a model directory the C programs read; not to be committed).

Use:
    python3 weights_tools/train_tiny.py --self-test        (checks the model code; prints "N passed, N failed")
    tools/make_corpus.sh build/corpus
    python3 weights_tools/train_tiny.py --corpus build/corpus --out build/train/try1 --device cuda --seed 1 \\
        --time-budget 50          (the defaults are the demo's recipe; models/README.md has the command that made it)
    python3 weights_tools/train_tiny.py --corpus build/corpus --out /tmp/smoke --device cpu --steps 10 \\
        --dim 128 --n-layers 2 --seq-len 64 --batch-size 4          (smoke test on the CPU)

Determinism: with the same --seed, corpus, device type and torch version the run repeats: every random choice
(init, the batches) comes from seeded generators, deterministic algorithms are requested and cuBLAS gets a fixed
workspace. What can still vary on a GPU: the cuBLAS/cuDNN kernels chosen for another GPU model, driver or torch
version (a different summation order, so bf16 results drift after many steps); ops that torch only warns about in
deterministic mode (listed on stderr if any); and --time-budget, which shortens the run when the GPU is too slow
(the number of steps then depends on the measured speed; train_log.json records it). Exit status: 0 when the saved
file answers 2983 ("42") to the tutorial prompt and meets the attention criteria, 3 when it does not (the files are
written all the same; the log says what failed), 2 on bad input, 1 on an internal failure.
"""
import argparse
import csv
import json
import math
import os
import random
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, asdict
from typing import Optional

# cuBLAS needs this before CUDA starts for deterministic GEMMs (torch's deterministic mode asks for it).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BOS_ID = 128000
FULL_VOCAB = 128256
# "the answer to the ultimate question of life, the universe, and everything is " with <|begin_of_text|>
TUTORIAL_PROMPT_IDS = [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220]
ANSWER_ID = 2983  # "42"


# ---------------------------------------------------------------------------------------------------------------
# The model: Meta's module structure and parameter names.

# params.json keys of the mixture-of-experts feed-forward, as MiniMind's config names them
MOE_KEYS = ("n_routed_experts", "num_experts_per_tok", "n_shared_experts", "scoring_func", "norm_topk_prob",
            "aux_loss_alpha", "seq_aux")

@dataclass
class ModelArgs:
    dim: int = 512
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: Optional[int] = 1
    vocab_size: int = FULL_VOCAB
    multiple_of: int = 256
    ffn_dim_multiplier: Optional[float] = None
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    max_seq_len: int = 2048
    dropout: float = 0.0  # training only (not in Meta's model, not in params.json): on the embedding and both branches
    # MiniMind's mixture of experts (--moe; params.json keys under MiniMind's names). 0 routed experts: the dense FFN.
    n_routed_experts: int = 0
    num_experts_per_tok: int = 2
    n_shared_experts: int = 1
    scoring_func: str = "softmax"
    norm_topk_prob: bool = True
    aux_loss_alpha: float = 0.01
    seq_aux: bool = True

    def params_json(self):
        # the keys of Meta's params.json (max_seq_len is a runtime argument there, not a file key)
        d = {"dim": self.dim, "n_layers": self.n_layers, "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads,
             "vocab_size": self.vocab_size, "multiple_of": self.multiple_of, "norm_eps": self.norm_eps,
             "rope_theta": self.rope_theta}
        if self.ffn_dim_multiplier is not None:
            d["ffn_dim_multiplier"] = self.ffn_dim_multiplier
        if self.n_routed_experts:
            d.update({k: getattr(self, k) for k in MOE_KEYS})
        return d

    @staticmethod
    def from_params_json(d, max_seq_len=2048):
        allowed = {"dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "ffn_dim_multiplier",
                   "norm_eps", "rope_theta", *MOE_KEYS}
        return ModelArgs(max_seq_len=max_seq_len, **{k: v for k, v in d.items() if k in allowed})


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        # normalise in fp32, come back to the activation dtype, then scale (Meta: self._norm(x.float()).type_as(x))
        return self._norm(x.float()).type_as(x) * self.weight


def precompute_freqs_cis(head_dim, end, theta):
    # one frequency per pair of dimensions: 1 / theta^(2i/head_dim), i = 0 .. head_dim/2-1 (64 of them for 128)
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: (head_dim // 2)].float() / head_dim))
    t = torch.arange(end, dtype=torch.float32)
    angles = torch.outer(t, freqs)                        # [end, head_dim/2]
    return torch.polar(torch.ones_like(angles), angles)   # complex64, cos + i sin


def apply_rotary_emb(xq, xk, freqs_cis):
    # pairs (0,1), (2,3), ... of each head become complex numbers, rotated by position * frequency
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))   # [B, T, H, Dh/2]
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    fc = freqs_cis.view(1, xq_.shape[1], 1, xq_.shape[-1])                  # broadcast over batch and heads
    xq_out = torch.view_as_real(xq_ * fc).flatten(3)
    xk_out = torch.view_as_real(xk_ * fc).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def repeat_kv(x, n_rep):
    # [B, T, Hkv, Dh] -> [B, T, Hkv*n_rep, Dh], each kv head repeated n_rep times in place (repeat-interleave)
    if n_rep == 1:
        return x
    b, t, n_kv, hd = x.shape
    return x[:, :, :, None, :].expand(b, t, n_kv, n_rep, hd).reshape(b, t, n_kv * n_rep, hd)


class Attention(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.n_heads if args.n_kv_heads is None else args.n_kv_heads
        self.n_rep = self.n_heads // self.n_kv_heads
        self.head_dim = args.dim // args.n_heads
        self.wq = nn.Linear(args.dim, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, self.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, args.dim, bias=False)
        self.capture = None  # a list to append each forward's attention weights [B, H, T, T] to (analysis only)

    def forward(self, x, freqs_cis, mask):
        # Meta's forward without the KV cache (start_pos = 0: the whole sequence at once)
        bsz, seqlen, _ = x.shape
        xq = self.wq(x).view(bsz, seqlen, self.n_heads, self.head_dim)
        xk = self.wk(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xv = self.wv(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis)
        keys = repeat_kv(xk, self.n_rep)
        values = repeat_kv(xv, self.n_rep)
        xq, keys, values = xq.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2)  # [B, H, T, Dh]
        scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)         # [B, H, T, T]
        if mask is not None:
            scores = scores + mask
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        if self.capture is not None:
            self.capture.append(scores.detach().float().cpu())
        output = torch.matmul(scores, values)                                              # [B, H, T, Dh]
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


def ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier):
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class FeedForward(nn.Module):
    def __init__(self, dim, multiple_of, ffn_dim_multiplier):
        super().__init__()
        hidden = ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoEFeedForward(nn.Module):
    """MiniMind's mixture-of-experts feed-forward (MoEGate + MOEFeedForward before its 2026 rewrite), written from its
    equations, for x [B, T, D] flattened to N = B*T tokens:
        s = softmax(x . Wg^T) over the E routed experts (fp32)         gate: feed_forward.gate.weight [E, D]
        w, idx = topk(s, k);  w /= sum(w) + 1e-20 when k > 1 and norm_topk_prob
        y = sum_j w_j expert_{idx_j}(x) + sum_s shared_s(x)            experts: SwiGLU FFNs of hidden F
    Training adds the load-balancing loss (self.aux_loss), MiniMind's two forms with E experts and k picks:
        seq_aux: ce[b,e] = #(picks of e in sequence b) / (T k / E);  aux = alpha mean_b sum_e ce[b,e] mean_t s[b,t,e]
        else:    f_e = E * (share of all picks that went to e);     aux = alpha sum_e mean_t s[t,e] f_e
    Each expert runs on the tokens routed to it only (the cost of k experts per token, not E)."""

    def __init__(self, args):
        super().__init__()
        self.E, self.k = args.n_routed_experts, args.num_experts_per_tok
        if args.scoring_func != "softmax":
            raise ValueError(f"scoring_func {args.scoring_func!r}: only 'softmax' is defined")
        if not 1 <= self.k <= self.E:
            raise ValueError(f"num_experts_per_tok {self.k} must be in 1..n_routed_experts {self.E}")
        self.norm_topk_prob, self.alpha, self.seq_aux = args.norm_topk_prob, args.aux_loss_alpha, args.seq_aux
        self.gate = nn.Linear(args.dim, self.E, bias=False)
        self.experts = nn.ModuleList([FeedForward(args.dim, args.multiple_of, args.ffn_dim_multiplier)
                                      for _ in range(self.E)])
        self.shared_experts = nn.ModuleList([FeedForward(args.dim, args.multiple_of, args.ffn_dim_multiplier)
                                             for _ in range(args.n_shared_experts)])
        self.aux_loss = None
        self.capture = None  # a list to append each forward's (scores [N, E], idx [N, k]) to (analysis only)

    def route(self, flat):
        scores = F.softmax(self.gate(flat).float(), dim=-1)            # [N, E]
        w, idx = torch.topk(scores, self.k, dim=-1)                     # [N, k]
        if self.k > 1 and self.norm_topk_prob:
            w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
        return scores, w, idx

    def forward(self, x):
        B, T, D = x.shape
        flat = x.reshape(-1, D)
        scores, w, idx = self.route(flat)
        y = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.nonzero(idx == e, as_tuple=True)
            if len(tok):
                y = y.index_add(0, tok, expert(flat[tok]) * w[tok, slot, None].to(flat.dtype))
        for shared in self.shared_experts:
            y = y + shared(flat)
        if self.capture is not None:
            self.capture.append((scores.detach().cpu(), idx.detach().cpu()))
        self.aux_loss = moe_aux_loss(scores.view(B, T, -1), idx.view(B, T, -1), self.alpha, self.seq_aux) \
            if self.training and self.alpha > 0 else None
        return y.view(B, T, D)


def moe_aux_loss(scores, idx, alpha, seq_aux):
    """scores [B, T, E], idx [B, T, k] -> MiniMind's auxiliary load-balancing loss (see MoEFeedForward)."""
    B, T, E = scores.shape
    k = idx.shape[-1]
    counts = F.one_hot(idx.reshape(B, -1), E).to(scores.dtype).sum(dim=1)    # [B, E] picks of each expert
    if seq_aux:
        ce = counts / (T * k / E)
        return alpha * (ce * scores.mean(dim=1)).sum(dim=1).mean()
    f = E * counts.sum(0) / (B * T * k)
    return alpha * (scores.reshape(-1, E).mean(0) * f).sum()


class TransformerBlock(nn.Module):
    def __init__(self, layer_id, args):
        super().__init__()
        self.layer_id = layer_id
        self.attention = Attention(args)
        self.feed_forward = MoEFeedForward(args) if args.n_routed_experts else \
            FeedForward(args.dim, args.multiple_of, args.ffn_dim_multiplier)
        self.attention_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.drop = nn.Dropout(args.dropout)  # identity in eval mode and when dropout is 0 (the saved model)

    def forward(self, x, freqs_cis, mask):
        h = x + self.drop(self.attention(self.attention_norm(x), freqs_cis, mask))
        return h + self.drop(self.feed_forward(self.ffn_norm(h)))


class Transformer(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.params = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList([TransformerBlock(i, args) for i in range(args.n_layers)])
        self.norm = RMSNorm(args.dim, eps=args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        self.drop = nn.Dropout(args.dropout)
        # not a parameter and not in the checkpoint: computed from the config, as in Meta's code. A plain attribute,
        # not a buffer, so that model.to(torch.bfloat16) cannot cast the complex table (it would drop the sines).
        self.freqs_cis = precompute_freqs_cis(args.dim // args.n_heads, args.max_seq_len * 2, args.rope_theta)

    def forward(self, tokens, logits=True, last_only=False):
        """tokens [B, T] -> logits [B, T, V] in fp32 (every position; Meta's inference keeps only the last).
        last_only: the output head on the last position alone, [B, 1, V] (the same values: the norm and the head work
        row by row; bf16 products over 128256 ids are slow on a CPU). logits=False stops after the last layer (for
        analyses of the layers alone): returns the residual stream."""
        _, seqlen = tokens.shape
        h = self.drop(self.tok_embeddings(tokens))
        self.freqs_cis = self.freqs_cis.to(h.device)
        freqs_cis = self.freqs_cis[:seqlen]
        mask = None
        if seqlen > 1:
            mask = torch.triu(torch.full((seqlen, seqlen), float("-inf"), device=tokens.device), diagonal=1).type_as(h)
        for layer in self.layers:
            h = layer(h, freqs_cis, mask)
        if not logits:
            return h
        return self.output(self.norm(h[:, -1:] if last_only else h)).float()

    def aux_loss(self):
        """The MoE layers' load-balancing losses of the last forward in training mode, summed (MiniMind adds this
        sum to the cross-entropy); 0 for a dense model."""
        losses = [l.feed_forward.aux_loss for l in self.layers if getattr(l.feed_forward, "aux_loss", None) is not None]
        return sum(losses) if losses else 0.0


def init_weights(model, seed):
    # GPT-2-like: N(0, 0.02) everywhere, the two projections back into the residual stream scaled by
    # 1/sqrt(2 * n_layers) so the stream does not grow with depth at the start; norms start at 1.
    g = torch.Generator().manual_seed(seed)
    n_layers = model.params.n_layers
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            nn.init.ones_(p)
            continue
        if name.endswith("feed_forward.gate.weight"):
            # MiniMind's MoEGate: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(D), 1/sqrt(D)): logits of a spread
            # that lets the routing differ between tokens from the first step
            bound = 1.0 / math.sqrt(p.shape[1])
            with torch.no_grad():
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            continue
        std = 0.02
        if name.endswith("attention.wo.weight") or name.endswith("w2.weight"):  # experts' w2 too
            std = 0.02 / math.sqrt(2 * n_layers)
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def init_embedding(model, seed, std, shared):
    """The embedding's start (--embed-init-std, --embed-init-shared): N(0, std) per entry (init_weights drew it with
    0.02; rescaled here), plus, when shared > 0, one vector of N(0, shared) entries added to every row: a direction
    all tokens start with (see the docstring, "A previous-token head in layer 0"). From their own generator, so the
    other weights are the same draws whatever these are."""
    with torch.no_grad():
        w = model.tok_embeddings.weight
        if std != 0.02:
            w.mul_(std / 0.02)
        if shared > 0:
            g = torch.Generator().manual_seed(seed + 3)
            w.add_((torch.randn(w.shape[1], generator=g) * shared).to(w.device, w.dtype))


# ---------------------------------------------------------------------------------------------------------------
# Loading and saving Meta's layout (also used by tests/reference/tiny_forward.py).

def load_meta_model(model_dir, dtype=torch.float32, max_seq_len=2048):
    """params.json + consolidated.00.pth -> Transformer on the CPU in `dtype` (strict: every name must match)."""
    with open(os.path.join(model_dir, "params.json")) as f:
        args = ModelArgs.from_params_json(json.load(f), max_seq_len=max_seq_len)
    try:
        state = torch.load(os.path.join(model_dir, "consolidated.00.pth"), map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only
        state = torch.load(os.path.join(model_dir, "consolidated.00.pth"), map_location="cpu")
    # load_state_dict(strict) overwrites every parameter: skip the random initialisation of the large ones (the output
    # head and the embedding of 128256 ids: about a second on a CPU)
    saved = nn.Linear.reset_parameters, nn.Embedding.reset_parameters
    nn.Linear.reset_parameters = nn.Embedding.reset_parameters = lambda self: None
    try:
        model = Transformer(args)
    finally:
        nn.Linear.reset_parameters, nn.Embedding.reset_parameters = saved
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items() if k != "rope.freqs"}, strict=True)
    return model.to(dtype).eval()


def full_vocab_state(model, used_ids, dtype=torch.bfloat16):
    """The compact model's weights as Meta's state dict: embedding/output rows scattered to their real ids."""
    state = {}
    idx = torch.as_tensor(used_ids, dtype=torch.long)
    for name, p in model.state_dict().items():
        p = p.detach().to("cpu", torch.float32)
        if name in ("tok_embeddings.weight", "output.weight"):
            full = torch.zeros(FULL_VOCAB, p.shape[1], dtype=torch.float32)
            full[idx] = p
            p = full
        state[name] = p.to(dtype).contiguous().clone()  # clone: each tensor gets its own storage, like Meta's file
    return state


def save_meta_checkpoint(out_dir, args_full, state):
    part = os.path.join(out_dir, ".partial")
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(part)
    with open(os.path.join(part, "params.json"), "w") as f:
        json.dump(args_full.params_json(), f)
        f.write("\n")
    # torch.save names the zip's top folder after the file, so the file gets its final name inside .partial/
    torch.save(state, os.path.join(part, "consolidated.00.pth"))
    for name in ("consolidated.00.pth", "params.json"):
        os.replace(os.path.join(part, name), os.path.join(out_dir, name))
    os.rmdir(part)


# ---------------------------------------------------------------------------------------------------------------
# Data

def input_error(path, msg):
    print(f"error: {path}: {msg}", file=sys.stderr)
    sys.exit(2)


def load_corpus(corpus_dir):
    info_path = os.path.join(corpus_dir, "corpus.json")
    if not os.path.isfile(info_path):
        input_error(info_path, "missing (make it with tools/make_corpus.sh DIR)")
    try:
        with open(info_path) as f:
            info = json.load(f)
    except ValueError as e:
        input_error(info_path, f"not JSON: {e}")
    splits = {}
    for split in ("train", "valid"):
        path = os.path.join(corpus_dir, info.get("files", {}).get(split, f"{split}.bin"))
        if not os.path.isfile(path):
            input_error(path, "missing")
        size = os.path.getsize(path)
        if size == 0 or size % 4:
            input_error(path, f"size {size} is not a positive multiple of 4 (uint32 token ids)")
        a = np.fromfile(path, dtype="<u4").astype(np.int64)
        if a.max() >= FULL_VOCAB:
            input_error(path, f"token id {int(a.max())} is not below the vocabulary size {FULL_VOCAB}")
        if a[0] != BOS_ID:
            input_error(path, f"the first token is {int(a[0])}, expected <|begin_of_text|> {BOS_ID}")
        want = info.get("tokens", {}).get(split)
        if want is not None and want != len(a):
            input_error(path, f"{len(a)} tokens but corpus.json says {want}")
        splits[split] = a
    return info, splits["train"], splits["valid"]


def doc_starts(tokens, seq_len):
    # training windows start at a document's <|begin_of_text|>, as every prompt of the demo does
    starts = np.nonzero(tokens == BOS_ID)[0]
    return starts[starts + seq_len + 1 <= len(tokens)]


def repeated_windows(pool, bos_c, n, seq_len, source, min_len, max_len, gen):
    """n training windows of seq_len + 1 compact ids, each <|begin_of_text|> followed by a span S of L tokens
    (L uniform in [min_len, max_len]) repeated until the window is full: BOS S S S ... (the last copy cut short).
    pool: train.bin's compact ids without <|begin_of_text|>. source "random": S = tokens at L random positions of
    the pool (unigram frequencies, unpredictable the first time); "corpus": S = L consecutive pool tokens (text).
    Every draw comes from the torch generator `gen`, so the windows follow from the seed."""
    rows = np.empty((n, seq_len + 1), dtype=np.int64)
    for i in range(n):
        L = int(torch.randint(min_len, max_len + 1, (1,), generator=gen))
        if source == "random":
            span = pool[torch.randint(len(pool), (L,), generator=gen).numpy()]
        else:
            o = int(torch.randint(len(pool) - L + 1, (1,), generator=gen))
            span = pool[o:o + L]
        rows[i, 0] = bos_c
        rows[i, 1:] = np.resize(span, seq_len)  # np.resize repeats the span cyclically
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Training

def parse_args(argv):
    p = argparse.ArgumentParser(description="Train the small Llama-3 of the demo and save it in Meta's layout.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--self-test", action="store_true",
                   help="alone: check the model's pieces against independent formulations and exit")
    p.add_argument("--corpus", required=True, help="directory made by tools/make_corpus.sh")
    p.add_argument("--out", required=True, help="output directory (params.json, consolidated.00.pth, logs)")
    p.add_argument("--steps", type=int, default=1200, help="optimizer steps (the cosine schedule spans them)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--time-budget", type=float, default=0,
                   help="seconds for the training loop; if the first steps show it cannot finish, fewer steps are run "
                        "(0: no limit)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--n-kv-heads", type=int, default=1)
    p.add_argument("--multiple-of", type=int, default=256)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr = lr * this")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay of the matrices (not norms)")
    p.add_argument("--embed-init-std", type=float, default=0.02,
                   help="standard deviation of the embedding's entries at the start")
    p.add_argument("--embed-init-shared", type=float, default=0.0,
                   help="at the start, every embedding row also gets one common random vector with entries of this "
                        "standard deviation (0: none): the content-independent direction layer 0's queries and keys "
                        "need for attention by relative position, such as a previous-token head")
    p.add_argument("--dropout", type=float, default=0.1,
                   help="training-time dropout on the embedding and on the attention and FFN branches (the saved "
                        "model has none, as Meta's)")
    p.add_argument("--repeat-frac", type=float, default=0.0,
                   help="fraction of each batch's sequences built as <|begin_of_text|> + a span of tokens repeated "
                        "until the window is full (S S S ...): the data from which an induction circuit, and with it "
                        "a previous-token head in an early layer, is learned (0: plain corpus windows only)")
    p.add_argument("--repeat-source", choices=["random", "corpus"], default="random",
                   help="the repeated span: random = tokens drawn at random positions of train.bin (unigram "
                        "frequencies, no <|begin_of_text|>), so only the repetition can predict them; corpus = a "
                        "contiguous stretch of train.bin's text (its <|begin_of_text|> ids left out)")
    p.add_argument("--repeat-min", type=int, default=8, help="shortest repeated span (tokens)")
    p.add_argument("--repeat-max", type=int, default=0,
                   help="longest repeated span (tokens; 0: half of --seq-len, so every span is seen at least twice)")
    p.add_argument("--moe", action="store_true",
                   help="MiniMind's mixture-of-experts feed-forward in every layer (the MoE demo model): the routing "
                        "criteria (moe_criteria) replace the attention criteria and the answer in the kept-checkpoint "
                        "rule and the exit status")
    p.add_argument("--n-experts", type=int, default=4, help="--moe: routed experts E (n_routed_experts)")
    p.add_argument("--experts-per-tok", type=int, default=2, help="--moe: k, experts per token (num_experts_per_tok)")
    p.add_argument("--n-shared-experts", type=int, default=1, help="--moe: always-on experts (n_shared_experts)")
    p.add_argument("--aux-alpha", type=float, default=0.01, help="--moe: aux_loss_alpha of the load-balancing loss")
    p.add_argument("--no-seq-aux", action="store_true", help="--moe: the batch-level aux loss instead of seq_aux")
    p.add_argument("--gate-lr-mult", type=float, default=1.0,
                   help="--moe: the gates' learning rate is this times --lr (a short CPU run: the gate otherwise stays "
                        "near its start while the rest learns)")
    p.add_argument("--ffn-dim-multiplier", type=float, default=None,
                   help="Meta's ffn_dim_multiplier (F = multiple_of-rounded int(multiplier * int(8D/3)); none: 1)")
    p.add_argument("--eval-windows", type=int, default=0,
                   help="held-out windows the evaluations use (0: every held-out document; a CPU run takes fewer)")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--keep", choices=["best", "last"], default="best",
                   help="best: the kept-checkpoint rule (see --loss-margin); last: the final weights")
    p.add_argument("--loss-margin", type=float, default=0.1,
                   help="kept-checkpoint rule: among the evaluations whose held-out loss is within this many nats "
                        "of the best one and that answer 42, the lowest-loss one whose attention meets the criteria "
                        "with --select-margin to spare; if none does, the lowest-loss one that answers 42 (exit 3)")
    p.add_argument("--select-margin", type=float, default=0.05,
                   help="a checkpoint is chosen only if its layer-0 previous-token head and its BOS sink exceed the "
                        f"criteria ({PREV_MIN}, {BOS_MIN}) by this much (bf16 and other rounding cost a little)")
    a = p.parse_args(argv)
    for name in ("steps", "dim", "n_layers", "n_heads", "n_kv_heads", "seq_len", "batch_size", "log_every",
                 "eval_every", "multiple_of"):
        if getattr(a, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if a.dim % a.n_heads or a.n_heads % a.n_kv_heads or (a.dim // a.n_heads) % 2:
        p.error("--dim must divide into --n-heads heads of even size, and --n-heads must be a multiple of --n-kv-heads")
    if a.embed_init_std <= 0 or a.embed_init_shared < 0:
        p.error("--embed-init-std must be positive, --embed-init-shared not negative")
    if not 0 <= a.dropout < 1:
        p.error("--dropout must be in [0, 1)")
    if a.loss_margin < 0 or a.select_margin < 0:
        p.error("--loss-margin and --select-margin must not be negative")
    if a.seq_len < len(TUTORIAL_PROMPT_IDS):
        p.error(f"--seq-len must be at least {len(TUTORIAL_PROMPT_IDS)}")
    if not 0 <= a.repeat_frac <= 1:
        p.error("--repeat-frac must be in [0, 1]")
    if a.repeat_max == 0:
        a.repeat_max = a.seq_len // 2
    if not 1 <= a.repeat_min <= a.repeat_max <= a.seq_len // 2:
        p.error(f"need 1 <= --repeat-min <= --repeat-max <= --seq-len/2 = {a.seq_len // 2} (every span must be seen "
                "twice)")
    if a.repeat_frac > 0 and round(a.repeat_frac * a.batch_size) == 0:
        p.error(f"--repeat-frac {a.repeat_frac:g} of a batch of {a.batch_size} is no sequence at all")
    if a.moe and not (1 <= a.experts_per_tok <= a.n_experts and a.n_shared_experts >= 0 and a.aux_alpha >= 0):
        p.error("--moe needs 1 <= --experts-per-tok <= --n-experts, --n-shared-experts >= 0, --aux-alpha >= 0")
    if a.ffn_dim_multiplier is not None and a.ffn_dim_multiplier <= 0:
        p.error("--ffn-dim-multiplier must be positive")
    return a


def lr_at(step, a, total_steps):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    progress = min(1.0, (step - a.warmup) / max(1, total_steps - a.warmup))
    return a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def compact_loss(logits, targets, log_n_unused):
    # cross-entropy over the full vocabulary where the unused ids all have logit 0: one extra column of
    # log(n_unused) stands for all of them (logsumexp of n zeros = log n)
    extra = torch.full((*logits.shape[:-1], 1), log_n_unused, dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(torch.cat([logits, extra], dim=-1).view(-1, logits.shape[-1] + 1), targets.reshape(-1))


@torch.no_grad()
def evaluate(model, valid_c, starts, seq_len, batch, device, autocast, log_n_unused):
    """Mean held-out loss over windows that start at every held-out document (all positions count)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        s = starts[i:i + batch]
        win = torch.as_tensor(np.stack([valid_c[j:j + seq_len + 1] for j in s])).to(device)
        with autocast():
            logits = model(win[:, :-1])
        loss = compact_loss(logits, win[:, 1:], log_n_unused)
        total += loss.item() * win[:, 1:].numel()
        count += win[:, 1:].numel()
    model.train()
    return total / count


@torch.no_grad()
def greedy_answer(model, prompt_c, device, autocast, compact_to_full, log_n_unused):
    """Greedy next token over the full vocabulary: the best used id, unless the unused ids' logit 0 is higher."""
    model.eval()
    with autocast():
        logits = model(torch.as_tensor([prompt_c], device=device))[0, -1]
    model.train()
    best = int(torch.argmax(logits))
    # an unused id wins only if 0 beats every used logit (ties go to the lowest id, as argmax does)
    if float(logits[best]) < 0:
        return -1, float(logits[best])
    return int(compact_to_full[best]), float(logits[best])


# The attention criteria of the demo. tests/test_tiny_model.sh asserts the very same ones (it imports these
# functions) on the walkthrough's OUT/11_multihead/attn_weights_all.npy of the saved model. For one layer's weights
# w [H, T, T] on the tutorial prompt (T = 17; position 0 is <|begin_of_text|>):
#   on_previous(h) = mean over the query positions t = 2..T-1 of w[h, t, t-1]. t = 1 is left out: its previous
#                    token is BOS itself, so it would count the sink as previous-token attention.
#   on_bos(h)      = mean over the query positions t = 1..T-1 of w[h, t, 0] (t = 0 can only look at itself).
# A uniform causal row (1/(t+1) on each visible key) gives on_bos 0.152 and on_previous 0.129 for T = 17.
# Criteria: a previous-token head in layer 0:  max over the heads of layer 0 of on_previous > PREV_MIN;
#           a visible attention sink:          max over every layer and head of on_bos     > BOS_MIN
# (more than half of the weight, over 3x uniform). Training keeps a checkpoint only if it meets them with the
# margin of --select-margin, so that the bf16 file read by the C walkthrough still meets them.
PREV_MIN = 0.5
BOS_MIN = 0.5


def head_scores(w):
    """w: one layer's attention weights [H, T, T] -> (on_bos [H], on_previous [H]) as defined above."""
    w = np.asarray(w, dtype=np.float64)
    T = w.shape[1]
    if w.ndim != 3 or w.shape[2] != T or T < 3:
        raise ValueError(f"attention weights of shape {list(w.shape)}: expected [H, T, T] with T >= 3")
    on_bos = w[:, 1:, 0].mean(axis=1)
    on_previous = w[:, np.arange(2, T), np.arange(1, T - 1)].mean(axis=1)
    return on_bos, on_previous


def attention_criteria(maps, prev_min=PREV_MIN, bos_min=BOS_MIN):
    """maps: the attention weights of layers 0, 1, ... ([H, T, T] each; at least layer 0). Returns the per-head
    scores, the best previous-token head of layer 0, the strongest BOS sink of all layers, and whether both
    criteria hold (strictly above prev_min and bos_min)."""
    heads, sink = [], None
    prev0 = None
    for L, w in enumerate(maps):
        on_bos, on_prev = head_scores(w)
        for h in range(len(on_bos)):
            heads.append({"layer": L, "head": h, "on_bos": round(float(on_bos[h]), 4),
                          "on_previous": round(float(on_prev[h]), 4)})
            if sink is None or on_bos[h] > sink["value"]:
                sink = {"layer": L, "head": h, "value": round(float(on_bos[h]), 4)}
            if L == 0 and (prev0 is None or on_prev[h] > prev0["value"]):
                prev0 = {"layer": 0, "head": h, "value": round(float(on_prev[h]), 4)}
    ok = prev0["value"] > prev_min and sink["value"] > bos_min
    return {"heads": heads, "layer0_previous": prev0, "bos_sink": sink, "ok": bool(ok)}


@torch.no_grad()
def attention_maps(model, ids):
    """The attention weights [H, T, T] of every layer of `model` on one prompt (in eval mode: no dropout)."""
    was_training = model.training
    model.eval()
    maps = []
    for layer in model.layers:
        layer.attention.capture = maps
    try:
        model(torch.as_tensor([ids], device=model.output.weight.device))
    finally:
        for layer in model.layers:
            layer.attention.capture = None
        model.train(was_training)
    return [m[0].numpy() for m in maps]


def criteria_line(crit):
    p, b = crit["layer0_previous"], crit["bos_sink"]
    return (f"layer-0 previous-token head {p['head']}: {p['value']:.3f}; BOS sink layer {b['layer']} head "
            f"{b['head']}: {b['value']:.3f}")


# The routing criteria of the MoE demo model (--moe). tests/test_tiny_moe.sh applies the same function to the C
# walkthrough's chapter 20 tensors of the saved model. For one MoE layer: the gate's scores s [N, E] (softmax over the
# E routed experts) and the top-k picks idx [N, k] of N tokens:
#   confidence = mean over the tokens of max_e s[t, e]        the gate's preference; a uniform gate gives 1/E
#   load[e]    = (picks of expert e) / (N k / E)              1 for every expert when the load is balanced
# Met when, in every MoE layer, confidence >= CONF_MIN_FACTOR / E (the favourite expert gets at least twice the
# uniform share, on average: the choice is far from uniform), on the tutorial prompt and on the held-out text, and on
# the held-out text every load[e] lies within a factor LOAD_FACTOR of balanced (no expert starved or swamped; the
# prompt's 17 tokens make too few picks for that statistic: its loads are reported, not judged).
CONF_MIN_FACTOR = 2.0
LOAD_FACTOR = 2.0


def routing_stats(scores, idx, E):
    """scores [N, E], idx [N, k] (numpy or torch) -> {"confidence", "load" [E], "top1" [E] (tokens whose favourite
    is e), "tokens"}."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1, E)
    i = np.asarray(idx).reshape(s.shape[0], -1)
    N, k = i.shape
    picks = np.bincount(i.reshape(-1), minlength=E)[:E]
    return {"confidence": round(float(s.max(axis=1).mean()), 4),
            "load": [round(float(c / (N * k / E)), 4) for c in picks],
            "top1": np.bincount(s.argmax(axis=1), minlength=E)[:E].tolist(), "tokens": int(N)}


def moe_criteria(layers, E, conf_factor=CONF_MIN_FACTOR, load_factor=LOAD_FACTOR, check_load=True):
    """layers: routing_stats of every MoE layer. Returns them with the verdict (see above); check_load=False judges
    the confidence alone (the 17 tokens of the prompt are too few picks for a load statistic)."""
    def layer_ok(r):
        return r["confidence"] >= conf_factor / E and \
            (not check_load or all(1 / load_factor <= x <= load_factor for x in r["load"]))
    return {"layers": layers, "ok": bool(all(layer_ok(r) for r in layers)), "load_checked": check_load,
            "worst_confidence": min(r["confidence"] for r in layers),
            "load_range": [min(min(r["load"]) for r in layers), max(max(r["load"]) for r in layers)]}


@torch.no_grad()
def moe_routes(model, windows):
    """(scores [N, E], idx [N, k]) of every MoE layer of `model` over the token windows (a list of id lists, or an
    array [B, T]), in eval mode."""
    was_training = model.training
    model.eval()
    caps = [[] for _ in model.layers]
    for layer, c in zip(model.layers, caps):
        layer.feed_forward.capture = c
    try:
        dev = model.output.weight.device
        for w in windows:
            model(torch.as_tensor(np.asarray(w)[None], device=dev), logits=False)
    finally:
        for layer in model.layers:
            layer.feed_forward.capture = None
        model.train(was_training)
    return [(torch.cat([x[0] for x in c]).numpy(), torch.cat([x[1] for x in c]).numpy()) for c in caps]


def moe_check(model, prompt, valid_windows, E):
    """The routing criteria on the tutorial prompt and on the held-out windows."""
    out = {}
    for name, wins in (("prompt", [prompt]), ("held_out", valid_windows)):
        out[name] = moe_criteria([routing_stats(sc, ix, E) for sc, ix in moe_routes(model, wins)], E,
                                 check_load=name == "held_out")
    out["ok"] = out["prompt"]["ok"] and out["held_out"]["ok"]
    return out


def moe_line(crit):
    p, v = crit["prompt"], crit["held_out"]
    return (f"routing: confidence {p['worst_confidence']:.3f} (prompt) {v['worst_confidence']:.3f} (held-out), "
            f"load {p['load_range'][0]:.2f}..{p['load_range'][1]:.2f} (prompt) "
            f"{v['load_range'][0]:.2f}..{v['load_range'][1]:.2f} (held-out)")


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.self_test:
        return self_test()
    command = " ".join(shlex.quote(x) for x in [sys.executable] + sys.argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        input_error("--device", "cuda was asked for but torch sees no GPU (use --device cpu)")
    device = torch.device(a.device)
    seed_everything(a.seed)
    os.makedirs(a.out, exist_ok=True)

    info, train, valid = load_corpus(a.corpus)
    used_ids = np.unique(np.concatenate([train, valid, np.asarray(TUTORIAL_PROMPT_IDS + [ANSWER_ID])]))
    missing = [t for t in TUTORIAL_PROMPT_IDS[1:] + [ANSWER_ID] if t not in set(train.tolist())]
    if missing:
        input_error(os.path.join(a.corpus, "train.bin"),
                    f"never uses the tutorial's token ids {missing}: the model could not learn the answer 42")
    full_to_compact = np.full(FULL_VOCAB, -1, dtype=np.int64)
    full_to_compact[used_ids] = np.arange(len(used_ids))
    train_c, valid_c = full_to_compact[train], full_to_compact[valid]
    prompt_c = full_to_compact[np.asarray(TUTORIAL_PROMPT_IDS)].tolist()
    n_used = len(used_ids)
    log_n_unused = math.log(FULL_VOCAB - n_used)
    train_starts, valid_starts = doc_starts(train, a.seq_len), doc_starts(valid, a.seq_len)
    if len(train_starts) == 0 or len(valid_starts) == 0:
        input_error(a.corpus, f"no document start leaves room for a window of {a.seq_len + 1} tokens")
    if a.eval_windows > 0:  # evenly spread over the held-out documents
        valid_starts = valid_starts[np.linspace(0, len(valid_starts) - 1, min(a.eval_windows, len(valid_starts))).astype(int)]

    moe_args = dict(n_routed_experts=a.n_experts, num_experts_per_tok=a.experts_per_tok,
                    n_shared_experts=a.n_shared_experts, aux_loss_alpha=a.aux_alpha, seq_aux=not a.no_seq_aux) \
        if a.moe else {}
    args_full = ModelArgs(dim=a.dim, n_layers=a.n_layers, n_heads=a.n_heads, n_kv_heads=a.n_kv_heads,
                          vocab_size=FULL_VOCAB, multiple_of=a.multiple_of, ffn_dim_multiplier=a.ffn_dim_multiplier,
                          max_seq_len=a.seq_len, **moe_args)
    args_compact = ModelArgs(**{**asdict(args_full), "vocab_size": n_used, "dropout": a.dropout})
    model = Transformer(args_compact)
    init_weights(model, a.seed)
    init_embedding(model, a.seed, a.embed_init_std, a.embed_init_shared)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    n_params_full = sum(v.numel() for v in model.state_dict().values()) + 2 * (FULL_VOCAB - n_used) * a.dim

    # AdamW groups: the matrices with weight decay; the norms and the embedding without; the MoE gates apart (their
    # own learning rate, --gate-lr-mult, no decay)
    is_gate = lambda n: n.endswith("feed_forward.gate.weight")
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n != "tok_embeddings.weight" and not is_gate(n)]
    no_decay = [p for n, p in model.named_parameters() if p.dim() != 2]
    gates = [p for n, p in model.named_parameters() if is_gate(n)]
    opt_kw = dict(lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    if device.type == "cuda" and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames:
        opt_kw["fused"] = True
    groups = [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0},
              {"params": [model.tok_embeddings.weight], "weight_decay": 0.0}]
    if gates:
        groups.append({"params": gates, "weight_decay": 0.0, "lr_mult": a.gate_lr_mult})
    opt = torch.optim.AdamW(groups, **opt_kw)
    if device.type == "cuda":
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    else:  # fp32 on the CPU: bf16 matmuls there are slow and the smoke test only needs the plumbing
        autocast = lambda: torch.autocast("cpu", enabled=False)
    batch_gen = torch.Generator().manual_seed(a.seed + 1)
    # the routing criteria during training look at the first 32 held-out windows (the saved file at all of them)
    moe_valid_windows = [valid_c[j:j + a.seq_len] for j in valid_starts[:32]]
    # the repeated-span sequences (--repeat-frac): their own generator, so the corpus windows are the same draws
    # as without them; they replace the first n_repeat windows of every batch
    n_repeat = int(round(a.repeat_frac * a.batch_size))
    repeat_gen = torch.Generator().manual_seed(a.seed + 2)
    bos_c = int(full_to_compact[BOS_ID])
    repeat_pool = train_c[train_c != bos_c] if n_repeat else None

    print(f"corpus {a.corpus}: {len(train)} train tokens, {len(valid)} held-out tokens, {n_used} distinct ids "
          f"of {FULL_VOCAB}")
    print(f"model: dim {a.dim}, {a.n_layers} layers, {a.n_heads} heads, {a.n_kv_heads} kv heads, head_dim "
          f"{a.dim // a.n_heads}, ffn {ffn_hidden_dim(a.dim, a.multiple_of, a.ffn_dim_multiplier)}"
          + (f" per expert, {a.n_experts} routed experts (top {a.experts_per_tok}) + {a.n_shared_experts} shared, aux "
             f"alpha {a.aux_alpha:g}{'' if a.no_seq_aux else ' (seq_aux)'}" if a.moe else "")
          + f"; {n_params / 1e6:.2f}M trained "
          f"parameters ({n_params_full / 1e6:.1f}M with the full vocabulary)")
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", torch {torch.__version__}, {a.steps} steps of {a.batch_size} x {a.seq_len} tokens")
    if n_repeat:
        print(f"repeated spans: {n_repeat} of the {a.batch_size} windows of every batch are BOS + a {a.repeat_source} "
              f"span of {a.repeat_min}..{a.repeat_max} tokens, repeated to fill the window")

    csv_path = os.path.join(a.out, "loss.csv")
    csv_file = open(csv_path + ".partial", "w", newline="")
    log = csv.writer(csv_file)
    log.writerow(["step", "lr", "train_loss", "valid_loss", "tokens_seen", "elapsed_s"])
    total_steps = a.steps
    budget_note = None
    kept_states = {}  # step -> weights on the CPU, of the evaluations the kept-checkpoint rule may still choose
    best_loss = math.inf
    loss_at = {}      # step -> held-out loss
    evals = []
    running, running_n = 0.0, 0
    t0 = time.time()
    t10 = 0.0
    step = 0
    while step < total_steps:
        lr = lr_at(step, a, total_steps)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        pick = torch.randint(len(train_starts), (a.batch_size,), generator=batch_gen).numpy()
        rows = np.stack([train_c[s:s + a.seq_len + 1] for s in train_starts[pick]])
        if n_repeat:
            rows[:n_repeat] = repeated_windows(repeat_pool, bos_c, n_repeat, a.seq_len, a.repeat_source,
                                               a.repeat_min, a.repeat_max, repeat_gen)
        win = torch.as_tensor(rows).to(device)
        with autocast():
            logits = model(win[:, :-1])
        loss = compact_loss(logits, win[:, 1:], log_n_unused) + model.aux_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running += loss.detach()  # stays on the device: no sync per step
        running_n += 1
        elapsed = time.time() - t0
        if device.type == "cuda" and step in (10, 30):
            torch.cuda.synchronize()  # the timing below must see the steps done, not just queued
            elapsed = time.time() - t0
        if step == 10:
            t10 = elapsed
        if a.time_budget > 0 and step == 30 and total_steps > 30:
            # speed from steps 11..30 (the first steps pay for CUDA's warm-up and would understate it); 15% is left
            # for the evaluations
            per_step = (elapsed - t10) / 20
            fits = 30 + int((a.time_budget - elapsed) * 0.85 / per_step)
            if fits < total_steps:
                total_steps = max(fits, 31)
                budget_note = (f"--time-budget {a.time_budget:g}s at {per_step * 1000:.0f} ms/step: running "
                               f"{total_steps} of {a.steps} steps")
                print("note: " + budget_note)
        if a.time_budget > 0 and elapsed > 1.25 * a.time_budget and step < total_steps:
            budget_note = (f"--time-budget {a.time_budget:g}s: stopped at step {step} of {total_steps} after "
                           f"{elapsed:.0f}s (the learning rate had not finished its decay)")
            print("note: " + budget_note)
            total_steps = step
        last = step == total_steps
        valid_loss = ""
        if step % a.eval_every == 0 or last:
            valid_loss = evaluate(model, valid_c, valid_starts, a.seq_len, a.batch_size, device, autocast,
                                  log_n_unused)
            answer, logit = greedy_answer(model, prompt_c, device, autocast, used_ids, log_n_unused)
            with autocast():
                crit = attention_criteria(attention_maps(model, prompt_c))
                routing = moe_check(model, prompt_c, moe_valid_windows, a.n_experts) if a.moe else None
            evals.append({"step": step, "valid_loss": valid_loss, "answer": answer, "answer_logit": round(logit, 3),
                          "layer0_previous": crit["layer0_previous"], "bos_sink": crit["bos_sink"],
                          "attention_ok": crit["ok"], "attention": crit["heads"],
                          **({"routing": routing} if a.moe else {})})
            print(f"step {step:5d}  held-out loss {valid_loss:.4f}  answer {answer}"
                  f"{' (42)' if answer == ANSWER_ID else ''}  logit {logit:.2f}  "
                  + (moe_line(routing) if a.moe else criteria_line(crit)))
            best_loss = min(best_loss, valid_loss)
            if a.keep == "best" and (a.moe or answer == ANSWER_ID) and valid_loss <= best_loss + a.loss_margin:
                kept_states[step] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            loss_at[step] = valid_loss
            for s_ in [s_ for s_ in kept_states if loss_at[s_] > best_loss + a.loss_margin]:
                del kept_states[s_]  # no longer within the margin of the best: the rule cannot choose it
        if step % a.log_every == 0 or last or valid_loss != "":
            tl = float(running) / running_n
            if not math.isfinite(tl):
                print(f"fatal: the training loss became {tl} by step {step} (try a lower --lr)", file=sys.stderr)
                return 1
            log.writerow([step, f"{lr:.6g}", f"{tl:.5f}", "" if valid_loss == "" else f"{valid_loss:.5f}",
                          step * a.batch_size * a.seq_len, f"{elapsed:.1f}"])
            csv_file.flush()
            if valid_loss == "":
                print(f"step {step:5d}  loss {tl:.4f}  lr {lr:.2e}  {elapsed:.0f}s")
            running, running_n = 0.0, 0
    train_seconds = time.time() - t0
    csv_file.close()
    os.replace(csv_path + ".partial", csv_path)

    last_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    # The kept-checkpoint rule (--keep best), in order of preference:
    #   1. evaluations that answer 42, with a held-out loss within --loss-margin of the best of the run, whose
    #      attention meets the criteria with --select-margin to spare: the lowest held-out loss first;
    #   2. the other evaluations within the margin that answer 42, lowest loss first (the run then exits 3);
    #   3. the final weights (exit 3 unless they happen to meet everything).
    # Each is saved and checked as the demo reads it (the bf16 file over the full vocabulary); the first whose saved
    # file answers 42 and meets the criteria is kept, else the first of the list.
    by_step = {e["step"]: e for e in evals}
    within = sorted((s_ for s_ in kept_states if by_step[s_]["valid_loss"] <= best_loss + a.loss_margin),
                    key=lambda s_: by_step[s_]["valid_loss"])
    if a.moe:  # the MoE model: its routing, not the attention or the answer, decides
        strong = [s_ for s_ in within if by_step[s_]["routing"]["ok"]]
    else:
        strong = [s_ for s_ in within
                  if by_step[s_]["layer0_previous"]["value"] > PREV_MIN + a.select_margin
                  and by_step[s_]["bos_sink"]["value"] > BOS_MIN + a.select_margin]
    order = strong + [s_ for s_ in within if s_ not in strong]
    why_strong, why_weak = ("routing", "lowest loss only") if a.moe else ("attention and answer", "answer only")
    candidates = [(s_, kept_states[s_], why_strong if s_ in strong else why_weak) for s_ in order]
    if not candidates or candidates[0][0] != step:
        candidates.append((step, last_state, "final weights"))
    if a.keep == "last":
        candidates = [(step, last_state, "final weights (--keep last)")]
    prompt = torch.as_tensor([TUTORIAL_PROMPT_IDS])
    chosen, first, on_disk = None, None, None
    for n_try, (kept_step, weights, why) in enumerate(candidates):
        if n_try == 4:
            break  # each try writes 287 MB: a few are enough
        print(f"saving the weights of step {kept_step} ({why})")
        model.load_state_dict(weights)
        save_meta_checkpoint(a.out, args_full, full_vocab_state(model, used_ids))
        on_disk = kept_step
        # Check the saved file the way the demo reads it: the full-vocabulary model from consolidated.00.pth.
        reloaded = load_meta_model(a.out, dtype=torch.float32, max_seq_len=max(a.seq_len, len(TUTORIAL_PROMPT_IDS)))
        answers = {}
        with torch.no_grad():
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                logits = reloaded.to(dtype)(prompt)[0, -1]
                answers[name] = {"argmax": int(torch.argmax(logits)), "logit": float(logits.max()),
                                 "top5": torch.topk(logits, 5).indices.tolist()}
        saved_crit = attention_criteria(attention_maps(reloaded.to(torch.bfloat16), TUTORIAL_PROMPT_IDS))
        if a.moe:  # the routing of the saved bf16 file on the prompt and on every held-out window (real ids)
            saved_routing = moe_check(reloaded, TUTORIAL_PROMPT_IDS,
                                      [valid[j:j + a.seq_len] for j in valid_starts], a.n_experts)
        reloaded = reloaded.to(torch.float32)
        answer_ok = all(v["argmax"] == ANSWER_ID for v in answers.values())
        met = saved_routing["ok"] if a.moe else answer_ok and saved_crit["ok"]
        tried = (kept_step, weights, why, answers, saved_crit, answer_ok, saved_routing if a.moe else None)
        first = first or tried
        if met:
            chosen = tried
            break
        print(f"note: the saved weights of step {kept_step} answer {answers['bf16']['argmax']} (want {ANSWER_ID}); "
              + (moe_line(saved_routing) if a.moe else
                 f"{criteria_line(saved_crit)} (want > {PREV_MIN} and > {BOS_MIN})"))
    if chosen is None:  # nothing met everything: keep the rule's first choice and say so (exit 3)
        chosen = first
        if on_disk != chosen[0]:
            model.load_state_dict(chosen[1])
            save_meta_checkpoint(a.out, args_full, full_vocab_state(model, used_ids))
            reloaded = load_meta_model(a.out, dtype=torch.float32,
                                       max_seq_len=max(a.seq_len, len(TUTORIAL_PROMPT_IDS)))
    result = chosen
    kept_step, _, kept_why, answers, saved_crit, ok, routing = result
    attention_ok = saved_crit["ok"]
    attention = saved_crit["heads"]
    print("attention on the tutorial prompt, saved bf16 model (mean weight on <|begin_of_text|> / on the previous "
          "token):")
    for r in attention:
        print(f"  layer {r['layer']} head {r['head']}:  BOS {r['on_bos']:.2f}   previous {r['on_previous']:.2f}")
    print(criteria_line(saved_crit) + f"  -> criteria {'met' if attention_ok else 'NOT met'}")
    if a.moe:
        for where in ("prompt", "held_out"):
            for L, r in enumerate(routing[where]["layers"]):
                print(f"  routing, {where}, layer {L}: confidence {r['confidence']:.3f} (uniform {1 / a.n_experts:.3f}), "
                      f"load {' '.join(f'{x:.2f}' for x in r['load'])} (balanced 1), favourite of "
                      f"{' '.join(map(str, r['top1']))} of {r['tokens']} tokens")
        print(moe_line(routing) + f"  -> routing criteria {'met' if routing['ok'] else 'NOT met'}")
    reloaded = reloaded.to(device, torch.bfloat16)
    if device.type == "cpu":
        # bf16 products over all 128256 ids run at ~1 GFLOP/s on a CPU (a dense 64-wide model: 10 s for 35 held-out
        # documents): evaluate the saved (bf16) weights in fp32 arithmetic on the used rows, with the unused ids'
        # column of zero logits (compact_loss): the loss of the saved weights over the full vocabulary, up to the order
        # of the sums and fp32 instead of bf16 activations
        compact = Transformer(ModelArgs(**{**asdict(args_full), "vocab_size": n_used}))
        cs = {k: (v[torch.as_tensor(used_ids)] if k in ("tok_embeddings.weight", "output.weight") else v).float()
              for k, v in reloaded.state_dict().items()}
        compact.load_state_dict(cs)
        saved_valid_loss = evaluate(compact, valid_c, valid_starts, a.seq_len, a.batch_size, device, autocast,
                                    log_n_unused)
    else:
        # small batches: these logits span all 128256 ids
        saved_valid_loss = evaluate_full(reloaded, valid, valid_starts, a.seq_len, min(a.batch_size, 8), device)
    print(f"saved model (bf16): held-out loss {saved_valid_loss:.4f}; greedy next token after the tutorial prompt: "
          f"{answers['bf16']['argmax']}{' = 42' if answers['bf16']['argmax'] == ANSWER_ID else ''} (fp32: "
          f"{answers['fp32']['argmax']})")

    # the tokenizer the corpus was made with, beside the weights: the directory is then a model the C programs (the
    # walkthrough, generate, tests/test_tiny_model.sh with TINY_MODEL=OUT) read as they are (not committed: `make
    # models` copies its own)
    tok_src = (info.get("tokenizer") or {}).get("file")
    if tok_src and os.path.isfile(tok_src):
        shutil.copyfile(tok_src, os.path.join(a.out, "tokenizer.model.partial"))
        os.replace(os.path.join(a.out, "tokenizer.model.partial"), os.path.join(a.out, "tokenizer.model"))

    # git stores objects zlib-compressed; gzip -9 of the file is the proxy the project uses (limit 40 MiB)
    import zlib
    comp, gz_bytes = zlib.compressobj(9), 0
    with open(os.path.join(a.out, "consolidated.00.pth"), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            gz_bytes += len(comp.compress(chunk))
    gz_bytes += len(comp.flush())
    size_note = f"consolidated.00.pth compresses to {gz_bytes / 2**20:.1f} MiB (zlib -9; the limit for git is 40 MiB)"
    print(size_note if gz_bytes <= 40 * 2**20 else "WARNING: " + size_note + ": use fewer layers")

    png = None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rows = list(csv.DictReader(open(csv_path)))
        fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
        ax.plot([int(r["step"]) for r in rows], [float(r["train_loss"]) for r in rows], label="train")
        vr = [r for r in rows if r["valid_loss"]]
        ax.plot([int(r["step"]) for r in vr], [float(r["valid_loss"]) for r in vr], "o-", label="held-out")
        ax.axvline(kept_step, color="grey", ls=":", label=f"kept (step {kept_step})")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.set_title(f"tiny Llama-3{' MoE' if a.moe else ''} ({a.n_layers} layers, dim {a.dim}) on KJV + extra "
                     "sentences")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        png = os.path.join(a.out, "loss.png")
        fig.savefig(png + ".partial.png")
        os.replace(png + ".partial.png", png)
    except ImportError:
        print("note: matplotlib is not importable; no loss.png")

    train_log = {
        "command": command,
        "corpus": {"dir": a.corpus, "tokens": info.get("tokens"), "documents": info.get("documents"),
                   "distinct_token_ids": n_used, "sources": info.get("sources"),
                   "tokenizer": info.get("tokenizer")},
        "params": args_full.params_json(),
        "train": {"steps_requested": a.steps, "steps_done": step, "kept_step": kept_step, "keep": a.keep,
                  "kept_because": kept_why, "best_held_out_loss": best_loss, "loss_margin": a.loss_margin,
                  "select_margin": a.select_margin, "dropout": a.dropout,
                  "batch_size": a.batch_size, "seq_len": a.seq_len, "tokens_seen": step * a.batch_size * a.seq_len,
                  "repeat": {"frac": a.repeat_frac, "windows_per_batch": n_repeat, "source": a.repeat_source,
                             "min_len": a.repeat_min, "max_len": a.repeat_max},
                  "epochs": step * (a.batch_size - n_repeat) * a.seq_len / len(train), "lr": a.lr,
                  "min_lr_ratio": a.min_lr_ratio,
                  "warmup": a.warmup, "weight_decay": a.weight_decay, "gate_lr_mult": a.gate_lr_mult,
                  "eval_windows": a.eval_windows,
                  "embed_init_std": a.embed_init_std, "embed_init_shared": a.embed_init_shared,
                  "seed": a.seed, "seconds": round(train_seconds, 1),
                  "time_budget_s": a.time_budget, "time_budget_note": budget_note},
        "evals": evals,
        "held_out_loss_saved_bf16": saved_valid_loss,
        **({"held_out_loss_note": "the saved bf16 weights in fp32 arithmetic over the used rows plus the zero-logit "
                                  "column (a CPU run)"} if a.moe and device.type == "cpu" else {}),
        "held_out_windows": int(len(valid_starts)),
        "answer": {"prompt_ids": TUTORIAL_PROMPT_IDS, "expected": ANSWER_ID, **answers, "ok": ok},
        "attention_on_tutorial_prompt": attention,
        "attention_criteria": {
            "definition": "on_previous(h) = mean over query positions t=2..T-1 of w[h,t,t-1]; on_bos(h) = mean over "
                          "t=1..T-1 of w[h,t,0]; w = softmax weights [H,T,T] of the tutorial prompt (T=17) in the "
                          "saved bf16 model. Met when max over layer-0 heads of on_previous > %g and max over all "
                          "heads of on_bos > %g" % (PREV_MIN, BOS_MIN),
            "layer0_previous": saved_crit["layer0_previous"], "bos_sink": saved_crit["bos_sink"],
            "ok": attention_ok},
        **({"routing_criteria": {
            "definition": "per MoE layer: confidence = mean over tokens of max_e s[t,e] (s = the gate's softmax over "
                          "the E routed experts); load[e] = picks of e / (N k / E). Met when every layer has "
                          "confidence >= %g/E on the tutorial prompt and on the held-out windows, and every load in "
                          "[1/%g, %g] on the held-out windows, in the saved bf16 model"
                          % (CONF_MIN_FACTOR, LOAD_FACTOR, LOAD_FACTOR),
            **routing}} if a.moe else {}),
        "parameters": {"trained": n_params, "in_checkpoint": n_params_full},
        "checkpoint_bytes": os.path.getsize(os.path.join(a.out, "consolidated.00.pth")),
        "checkpoint_zlib9_bytes": gz_bytes,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "files": {"params": "params.json", "checkpoint": "consolidated.00.pth", "loss_csv": "loss.csv",
                  "loss_png": "loss.png" if png else None},
    }
    with open(os.path.join(a.out, "train_log.json.partial"), "w") as f:
        json.dump(train_log, f, indent=1)
        f.write("\n")
    os.replace(os.path.join(a.out, "train_log.json.partial"), os.path.join(a.out, "train_log.json"))
    if a.moe:  # the MoE model is judged by its routing; the answer and the attention are reported above
        if not routing["ok"]:
            print(f"FAIL: the routing criteria are not met ({moe_line(routing)})", file=sys.stderr)
            return 3
        print(f"OK   wrote {a.out}/params.json and consolidated.00.pth; {moe_line(routing)}; answer "
              f"{answers['bf16']['argmax']}")
        return 0
    if not ok:
        print(f"FAIL: the greedy answer is {answers} instead of {ANSWER_ID} ('42'): train longer or with more "
              "weight on corpus_extra.txt", file=sys.stderr)
        return 3
    if not attention_ok:
        print(f"FAIL: the attention criteria are not met ({criteria_line(saved_crit)}; want > {PREV_MIN} and "
              f"> {BOS_MIN}): try another --seed", file=sys.stderr)
        return 3
    print(f"OK   wrote {a.out}/params.json and consolidated.00.pth; the answer is 42; {criteria_line(saved_crit)}")
    return 0


@torch.no_grad()
def evaluate_full(model, valid, starts, seq_len, batch, device):
    """Held-out loss of the full-vocabulary model as saved (real ids, all 128256 logits)."""
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        s = starts[i:i + batch]
        win = torch.as_tensor(np.stack([valid[j:j + seq_len + 1] for j in s])).to(device)
        logits = model(win[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), win[:, 1:].reshape(-1),
                                 reduction="sum").item()
        count += win[:, 1:].numel()
    return total / count

# ---------------------------------------------------------------------------------------------------------------
# Self-test (--self-test): the model's pieces against independent formulations; prints "N passed, N failed".

def naive_forward(state, args, ids):
    """The same network written out position by position in float64 numpy, with RoPE as cos/sin on pairs
    (formats.md section 6) and the kv head of query head h taken as h // (H/Hkv): an independent check."""
    W = {k: v.detach().double().numpy() for k, v in state.items()}
    D, H = args.dim, args.n_heads
    Hkv = args.n_kv_heads or H
    Dh, rep_ = D // H, H // Hkv
    T = len(ids)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + args.norm_eps) * w

    def rope(v, pos):  # v: [Dh]
        out = np.empty_like(v)
        for i in range(Dh // 2):
            f = 1.0 / args.rope_theta ** (2 * i / Dh)
            c, s_ = math.cos(pos * f), math.sin(pos * f)
            out[2 * i] = v[2 * i] * c - v[2 * i + 1] * s_
            out[2 * i + 1] = v[2 * i] * s_ + v[2 * i + 1] * c
        return out

    x = W["tok_embeddings.weight"][ids]
    for L in range(args.n_layers):
        pre = f"layers.{L}."
        n = rms(x, W[pre + "attention_norm.weight"])
        q, k, v = n @ W[pre + "attention.wq.weight"].T, n @ W[pre + "attention.wk.weight"].T, n @ W[pre + "attention.wv.weight"].T
        att = np.zeros((T, H * Dh))
        for h in range(H):
            g = h // rep_
            qh = np.stack([rope(q[t, h * Dh:(h + 1) * Dh], t) for t in range(T)])
            kh = np.stack([rope(k[t, g * Dh:(g + 1) * Dh], t) for t in range(T)])
            vh = v[:, g * Dh:(g + 1) * Dh]
            for t in range(T):
                sc = kh[:t + 1] @ qh[t] / math.sqrt(Dh)
                w = np.exp(sc - sc.max())
                att[t, h * Dh:(h + 1) * Dh] = (w / w.sum()) @ vh[:t + 1]
        x = x + att @ W[pre + "attention.wo.weight"].T
        n = rms(x, W[pre + "ffn_norm.weight"])
        a1, a3 = n @ W[pre + "feed_forward.w1.weight"].T, n @ W[pre + "feed_forward.w3.weight"].T
        x = x + (a1 / (1 + np.exp(-a1)) * a3) @ W[pre + "feed_forward.w2.weight"].T
    return rms(x, W["norm.weight"]) @ W["output.weight"].T


def self_test():
    passed, failed = 0, 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL: {what}")

    torch.manual_seed(0)
    # Meta's FFN rule: 8B, 70B, 405B and the demo's shape
    check(ffn_hidden_dim(4096, 1024, 1.3) == 14336, "FFN hidden of the 8B is 14336")
    check(ffn_hidden_dim(8192, 4096, 1.3) == 28672, "FFN hidden of the 70B is 28672")
    check(ffn_hidden_dim(16384, 4096, 1.2) == 53248, "FFN hidden of the 405B is 53248")
    check(ffn_hidden_dim(512, 256, None) == 1536, "FFN hidden of the demo model is 1536")
    # the tutorial's 64 frequencies for head_dim 128, theta 500000
    fc = precompute_freqs_cis(128, 4, 500000.0)
    freqs = fc[1].angle()
    want = {0: 1.0, 1: 8.1462e-01, 2: 6.6360e-01, 3: 5.4058e-01, 62: 3.0139e-06, 63: 2.4551e-06}
    check(fc.shape == (4, 64) and all(abs(float(freqs[i]) - v) <= 1e-4 * v for i, v in want.items()),
          f"RoPE frequencies {[float(freqs[i]) for i in want]} vs the tutorial's {list(want.values())}")
    # RoPE through complex numbers == the cos/sin formula on interleaved pairs
    xq, xk = torch.randn(2, 5, 4, 8), torch.randn(2, 5, 1, 8)
    rq, rk = apply_rotary_emb(xq, xk, precompute_freqs_cis(8, 5, 10000.0))
    f = 1.0 / 10000.0 ** (torch.arange(0, 8, 2).float() / 8)
    ang = torch.arange(5).float()[:, None] * f[None, :]                  # [T, 4]
    c, s_ = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    even, odd = xq[..., 0::2], xq[..., 1::2]
    ref = torch.stack([even * c - odd * s_, even * s_ + odd * c], dim=-1).flatten(3)
    check(torch.allclose(rq, ref, atol=1e-5), "RoPE: complex product equals the cos/sin pair formula")
    check(torch.allclose(rk[:, 0], apply_rotary_emb(xk, xk, precompute_freqs_cis(8, 5, 10000.0))[0][:, 0]),
          "RoPE: keys rotate like queries")
    # GQA: query head h reads kv head h // n_rep
    kv = torch.randn(1, 3, 2, 4)
    r = repeat_kv(kv, 4)
    check(all(torch.equal(r[:, :, h], kv[:, :, h // 4]) for h in range(8)), "repeat_kv: head h uses kv head h // 4")
    # whole forward in fp32 against the float64 loop version
    args = ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=50, multiple_of=32, max_seq_len=16)
    m = Transformer(args)
    init_weights(m, 3)
    with torch.no_grad():
        for n_, p_ in m.named_parameters():
            if n_.endswith("norm.weight"):
                p_.add_(torch.randn(p_.shape) * 0.1)
    ids = [1, 7, 3, 3, 49, 0, 12]
    with torch.no_grad():
        got = m(torch.as_tensor([ids]))[0].double().numpy()
    ref = naive_forward(m.state_dict(), args, ids)
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    check(err < 1e-5, f"forward pass vs the naive float64 version: relative max error {err:.2e}")
    # causality: a later token does not change earlier logits
    with torch.no_grad():
        got2 = m(torch.as_tensor([ids[:-1] + [5]]))[0].double().numpy()
    check(np.array_equal(got[:-1], got2[:-1]) and not np.allclose(got[-1], got2[-1]), "causal mask")
    # the compact-vocabulary loss equals the full-vocabulary loss of the saved (scattered) model
    used = np.array(sorted({0, 5, 17, 999, 2983, BOS_ID, FULL_VOCAB - 1}))
    cargs = ModelArgs(dim=16, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=len(used), multiple_of=16,
                      max_seq_len=8)
    cm = Transformer(cargs)
    init_weights(cm, 4)
    win = torch.randint(len(used), (3, 7))
    with torch.no_grad():
        closs = float(compact_loss(cm(win[:, :-1]), win[:, 1:], math.log(FULL_VOCAB - len(used))))
        fm = Transformer(ModelArgs(**{**asdict(cargs), "vocab_size": FULL_VOCAB}))
        fm.load_state_dict(full_vocab_state(cm, used, dtype=torch.float32))
        real = torch.as_tensor(used)[win]
        flog = fm(real[:, :-1])
        floss = float(F.cross_entropy(flog.reshape(-1, FULL_VOCAB), real[:, 1:].reshape(-1)))
        unused_rows = torch.ones(FULL_VOCAB, dtype=torch.bool)
        unused_rows[torch.as_tensor(used)] = False
    check(abs(closs - floss) < 1e-5 * abs(floss), f"compact loss {closs:.7f} == full-vocabulary loss {floss:.7f}")
    check(bool((flog[..., unused_rows] == 0).all()), "unused ids have logit exactly 0 in the saved model")
    # the attention criteria on hand-made maps: uniform causal rows, a pure previous-token head, a pure sink
    T = len(TUTORIAL_PROMPT_IDS)
    causal = np.tril(np.ones((T, T)))
    uniform = np.repeat((causal / causal.sum(1, keepdims=True))[None], 4, axis=0)
    on_bos, on_prev = head_scores(uniform)
    want_bos = np.mean([1 / (t + 1) for t in range(1, T)])
    want_prev = np.mean([1 / (t + 1) for t in range(2, T)])
    check(np.allclose(on_bos, want_bos) and np.allclose(on_prev, want_prev) and abs(want_bos - 0.152) < 1e-3
          and abs(want_prev - 0.129) < 1e-3, f"uniform map: on_bos {on_bos[0]:.4f}, on_previous {on_prev[0]:.4f}")
    prev_map, sink_map = uniform.copy(), uniform.copy()
    prev_map[2] = np.eye(T, k=-1)
    prev_map[2, 0, 0] = 1
    sink_map[1] = 0
    sink_map[1, :, 0] = 1
    c1 = attention_criteria([prev_map, sink_map])
    c2 = attention_criteria([sink_map, prev_map])
    check(c1["ok"] and c1["layer0_previous"] == {"layer": 0, "head": 2, "value": 1.0}
          and c1["bos_sink"] == {"layer": 1, "head": 1, "value": 1.0},
          f"criteria met by a layer-0 previous-token head and a sink in layer 1: {c1['layer0_previous']}")
    check(not c2["ok"] and not attention_criteria([uniform])["ok"],
          "criteria not met by a previous-token head in layer 1 only, nor by uniform maps")
    # the repeated-span windows (--repeat-frac): BOS, then a span of L tokens, then that span again and again
    pool = np.arange(1, 200)
    for source in ("random", "corpus"):
        w1 = repeated_windows(pool, 0, 6, 32, source, 2, 16, torch.Generator().manual_seed(5))
        w2 = repeated_windows(pool, 0, 6, 32, source, 2, 16, torch.Generator().manual_seed(5))
        periodic = []
        for row in w1:
            body = row[1:]
            L = next(L for L in range(2, 17) if np.array_equal(body[L:], body[:-L]))  # the shortest period
            periodic.append(L <= 16 and (source == "random" or np.all(np.diff(body[:L]) == 1)))
        check(w1.shape == (6, 33) and np.all(w1[:, 0] == 0) and np.all(w1[:, 1:] != 0) and np.array_equal(w1, w2)
              and all(periodic), f"repeated_windows ({source}): BOS + a span of <= 16 repeated, the same for a seed")
    # the MoE feed-forward (--moe) against a dense evaluation: every expert on every token, weights 0 where not picked
    margs = ModelArgs(dim=16, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=20, multiple_of=16, max_seq_len=8,
                      n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1)
    moe = MoEFeedForward(margs)
    with torch.no_grad():
        for p_ in moe.parameters():
            p_.copy_(torch.randn(p_.shape) * 0.3)
        x = torch.randn(2, 5, 16)
        got = moe(x)
        scores, w, idx = moe.route(x.reshape(-1, 16))
        dense_w = torch.zeros(10, 4).scatter(1, idx, w)
        ref = sum(dense_w[:, e:e + 1] * moe.experts[e](x.reshape(-1, 16)) for e in range(4))
        ref = (ref + moe.shared_experts[0](x.reshape(-1, 16))).view(2, 5, 16)
    check(torch.allclose(got, ref, atol=1e-6) and torch.allclose(w.sum(-1), torch.ones(10)),
          "MoE: routed sum == dense evaluation with zero weights where not picked; the top-k weights sum to 1")
    # MiniMind's aux loss, worked out by hand (the same case as tests/unit/test_moe.c): seq_aux 1.5 alpha, batch 1.0 alpha
    sc = torch.tensor([[[0.8, 0.2], [0.6, 0.4]], [[0.3, 0.7], [0.1, 0.9]]])
    ix = torch.tensor([[[0], [0]], [[1], [1]]])
    check(abs(float(moe_aux_loss(sc, ix, 0.1, True)) - 0.15) < 1e-6 and
          abs(float(moe_aux_loss(sc, ix, 0.1, False)) - 0.10) < 1e-6, "MoE aux loss: both forms on a hand-worked case")
    # the routing criteria: a uniform gate fails, a confident balanced one passes
    uni = routing_stats(np.full((8, 4), 0.25), np.tile([0, 1], (8, 1)), 4)
    sharp = routing_stats(np.eye(4)[np.arange(8) % 4] * 0.9 + 0.025, np.stack([np.arange(8) % 4, (np.arange(8) + 1) % 4], 1), 4)
    check(not moe_criteria([uni], 4)["ok"] and moe_criteria([sharp], 4)["ok"],
          "routing criteria: a uniform gate fails, a confident balanced one passes")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main())
