#!/usr/bin/env python3
"""moe_torch_files.py: mixture-of-experts checkpoints written by torch itself (torch.save of a state dict named as
MiniMind or Mixtral name theirs, with their config.json), and broken variants, for tests/test_moe.sh.

  moe_torch_files.py minimind DIR [--seed S]   MiniMind's own files: config.json (model_type "minimind", use_moe,
                                               intermediate_size null) + pretrain_256_moe.pth: fp16 tensors
                                               (MiniMind saves v.half()), model.layers.L.mlp.gate.weight,
                                               mlp.experts.E.{gate,up,down}_proj, mlp.shared_experts.S.*, and
                                               lm_head.weight equal to model.embed_tokens.weight (tied)
  moe_torch_files.py mixtral DIR [--seed S]    Mixtral's HF layout saved with safe_serialization=False:
                                               config.json (model_type "mixtral") + pytorch_model.bin, bf16,
                                               block_sparse_moe.gate / block_sparse_moe.experts.E.w1/w2/w3
  moe_torch_files.py ties SRC DST              SRC (our Meta-style MoE model) with every gate weight 0, so that
                                               all experts score the same and torch.topk's tie order decides
  moe_torch_files.py broken KIND SRC DST       SRC with one fault: KIND missing-expert (layers.1.feed_forward.
                                               experts.2.w3.weight removed), gate-shape (layers.0 gate with one row
                                               too many), k-gt-e (params.json num_experts_per_tok = E + 1)
The shapes are small (2 layers); every weight is drawn from torch's generator with the seed.
"""
import argparse
import json
import os
import sys

import torch


def attention_and_norms(sd, p, D, H, Hkv, r):
    """The HF Llama attention and norm weights of one layer (prefix p), as MiniMind and Mixtral both name them."""
    Dh = D // H
    sd[p + "self_attn.q_proj.weight"] = r(H * Dh, D, s=1.7 / D ** 0.5)
    sd[p + "self_attn.k_proj.weight"] = r(Hkv * Dh, D, s=1.7 / D ** 0.5)
    sd[p + "self_attn.v_proj.weight"] = r(Hkv * Dh, D, s=1 / D ** 0.5)
    sd[p + "self_attn.o_proj.weight"] = r(D, H * Dh, s=0.5 / D ** 0.5)
    sd[p + "input_layernorm.weight"] = 1 + r(D, s=0.05)
    sd[p + "post_attention_layernorm.weight"] = 1 + r(D, s=0.05)


def moe_layers(seed, L, V, D, H, Hkv, F, E, S, block, names):
    """The embedding, L layers and the final norm of a MoE Llama in HF names, drawn from torch's generator: each
    layer's attention and norms, the gate {block}.gate [E, D], E routed experts {block}.experts.e and S shared ones
    {block}.shared_experts.s, each a SwiGLU FFN whose (gate, up, down) projections are named names. Returns sd, r."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, s=1.0: torch.randn(*shape, generator=g) * s
    sd = {"model.embed_tokens.weight": r(V, D, s=0.5)}
    for l in range(L):
        p = f"model.layers.{l}."
        attention_and_norms(sd, p, D, H, Hkv, r)
        sd[f"{p}{block}.gate.weight"] = r(E, D, s=1.5 / D ** 0.5)
        for grp, n in (("experts", E), ("shared_experts", S)):
            for e in range(n):
                q = f"{p}{block}.{grp}.{e}."
                sd[q + names[0] + ".weight"] = r(F, D, s=1 / D ** 0.5)
                sd[q + names[1] + ".weight"] = r(F, D, s=1 / D ** 0.5)
                sd[q + names[2] + ".weight"] = r(D, F, s=0.5 / F ** 0.5)
    sd["model.norm.weight"] = 1 + r(D, s=0.05)
    return sd, r


def minimind(out, seed):
    D, L, H, Hkv, V, E, S, k = 256, 2, 4, 1, 512, 4, 1, 2
    F = 64 * ((int(D * 8 / 3) + 63) // 64)  # MiniMind's intermediate_size when it is None
    sd, _ = moe_layers(seed, L, V, D, H, Hkv, F, E, S, "mlp", ("gate_proj", "up_proj", "down_proj"))
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]  # tied, as MiniMindForCausalLM does
    # torch.save({k: v.half() for k, v in state_dict.items()}, ...), as MiniMind's trainer saves
    os.makedirs(out, exist_ok=True)
    torch.save({name: v.half() for name, v in sd.items()}, os.path.join(out, f"pretrain_{D}_moe.pth"))
    cfg = {"architectures": ["MiniMindForCausalLM"], "model_type": "minimind", "hidden_size": D,
           "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": Hkv, "vocab_size": V,
           "intermediate_size": None, "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
           "max_position_embeddings": 32768, "flash_attn": True, "dropout": 0.0, "bos_token_id": 1,
           "eos_token_id": 2, "use_moe": True, "num_experts_per_tok": k, "n_routed_experts": E,
           "n_shared_experts": S, "scoring_func": "softmax", "aux_loss_alpha": 0.01, "seq_aux": True,
           "norm_topk_prob": True}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)


def mixtral(out, seed):
    D, L, H, Hkv, V, E, k, F = 128, 2, 4, 2, 1000, 8, 2, 256
    sd, r = moe_layers(seed, L, V, D, H, Hkv, F, E, 0, "block_sparse_moe", ("w1", "w3", "w2"))
    sd["lm_head.weight"] = r(V, D, s=3 / D ** 0.5)
    os.makedirs(out, exist_ok=True)
    torch.save({name: v.to(torch.bfloat16) for name, v in sd.items()}, os.path.join(out, "pytorch_model.bin"))
    cfg = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": D,
           "intermediate_size": F, "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": Hkv,
           "vocab_size": V, "num_local_experts": E, "num_experts_per_tok": k, "rms_norm_eps": 1e-5,
           "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02, "sliding_window": None, "hidden_act": "silu",
           "tie_word_embeddings": False, "torch_dtype": "bfloat16", "max_position_embeddings": 32768}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)


def load_meta(src):
    try:
        sd = torch.load(os.path.join(src, "consolidated.00.pth"), map_location="cpu", weights_only=True)
    except TypeError:
        sd = torch.load(os.path.join(src, "consolidated.00.pth"), map_location="cpu")
    return sd, json.load(open(os.path.join(src, "params.json")))


def save_meta(dst, sd, params):
    os.makedirs(dst, exist_ok=True)
    torch.save(sd, os.path.join(dst, "consolidated.00.pth"))
    json.dump(params, open(os.path.join(dst, "params.json"), "w"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["minimind", "mixtral", "ties", "broken"])
    ap.add_argument("args", nargs="+")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.what == "minimind":
        minimind(a.args[0], a.seed)
    elif a.what == "mixtral":
        mixtral(a.args[0], a.seed)
    elif a.what == "ties":
        sd, params = load_meta(a.args[0])
        for name in sd:
            if name.endswith("feed_forward.gate.weight"):
                sd[name] = torch.zeros_like(sd[name])
        save_meta(a.args[1], sd, params)
    else:
        kind, src, dst = a.args
        sd, params = load_meta(src)
        if kind == "missing-expert":
            del sd["layers.1.feed_forward.experts.2.w3.weight"]
        elif kind == "gate-shape":
            w = sd["layers.0.feed_forward.gate.weight"]
            sd["layers.0.feed_forward.gate.weight"] = torch.cat([w, w[:1]])
        elif kind == "k-gt-e":
            params["num_experts_per_tok"] = params["n_routed_experts"] + 1
        else:
            print(f"error: unknown fault {kind}", file=sys.stderr)
            return 2
        save_meta(dst, sd, params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
