#!/usr/bin/env python3
"""peers.py: the PyTorch peers of `make bench` on the same GPU and the same weight shapes, and the final table.

Peers (HF transformers, a LlamaForCausalLM built from Meta-Llama-3-8B's config with random bf16 weights, no files):
  hf_eager          attn_implementation="eager", dynamic cache
  hf_sdpa           attn_implementation="sdpa", dynamic cache
  hf_static_compile a static KV cache and torch.compile(mode="reduce-overhead") of the forward: the strongest
                    plain-PyTorch decode path
Measured like ours: prefill of 17 and 512 tokens, decode tok/s at context 128 and 1024 (one token per step,
synchronised, argmax on the device), median of --runs runs after a warm-up, CUDA events.

Then it merges bench's JSON (--ours), computes ours/limit and ours/peer, prints the table and writes the result
with GPU, commit and date to --out.

Usage: python3 bench/peers.py --ours OURS.json --out RESULT.json [--runs 5] [--decode-steps 32] [--skip-peers]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import traceback


def llama3_8b_config(transformers):
    return transformers.LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=8192,
        tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001)


def cuda_ms(torch, fn):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b)


def measure_peer(name, runs, steps, log):
    import torch
    import transformers
    torch.manual_seed(0)
    cfg = llama3_8b_config(transformers)
    attn = "eager" if name == "hf_eager" else "sdpa"
    t0 = time.time()
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation=attn, torch_dtype=torch.bfloat16)
    torch.set_default_dtype(prev)
    model.eval()
    log(f"{name}: model built in {time.time() - t0:.1f} s")
    ids = torch.randint(0, 100000, (1, 1024 + steps + 8), device="cuda")
    ids[0, 0] = 128000
    res = {}
    static = name == "hf_static_compile"
    max_len = 1024 + steps + 8
    forward = model.forward
    if static:
        forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)

    def new_cache():
        if static:
            return transformers.StaticCache(config=cfg, max_cache_len=max_len)
        return transformers.DynamicCache()

    def prefill(T, cache):
        pos = torch.arange(T, device="cuda")
        # the prefill runs eagerly (model.forward): compiling every prompt length is not what a server does either
        return model(input_ids=ids[:, :T], past_key_values=cache, use_cache=True, cache_position=pos).logits[:, -1]

    def decode(ctx, n, cache):
        tok = ids[:, ctx:ctx + 1]
        for i in range(n):
            pos = torch.tensor([ctx + i], device="cuda")
            logits = forward(input_ids=tok, past_key_values=cache, use_cache=True, cache_position=pos).logits
            tok = logits[:, -1].argmax(-1, keepdim=True)
            torch.cuda.synchronize()  # as a generation loop needs the token

    with torch.no_grad():
        for T in (17, 512):
            for _ in range(2):
                prefill(T, new_cache())
            res[f"prefill_{T}_ms"] = statistics.median(cuda_ms(torch, lambda: prefill(T, new_cache())) for _ in range(runs))
            log(f"{name}: prefill {T}: {res[f'prefill_{T}_ms']:.2f} ms")
        for ctx in (128, 1024):
            cache = new_cache()
            prefill(ctx, cache)
            warm = 3 if static else 1  # reduce-overhead records its CUDA graph on the first calls
            decode(ctx, warm, cache)
            vals = []
            for _ in range(runs):
                cache = new_cache()
                prefill(ctx, cache)
                vals.append(steps / (cuda_ms(torch, lambda: decode(ctx, steps, cache)) * 1e-3))
            res[f"decode_{ctx}_tok_s"] = statistics.median(vals)
            log(f"{name}: decode at {ctx}: {res[f'decode_{ctx}_tok_s']:.1f} tok/s")
    res["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    del model
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--skip-peers", action="store_true")
    a = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)
    try:
        ours = json.load(open(a.ours))
    except (OSError, ValueError) as e:
        print(f"error: {a.ours}: {e}", file=sys.stderr)
        return 2
    peers = {}
    if not a.skip_peers:
        for name in ("hf_eager", "hf_sdpa", "hf_static_compile"):
            try:
                peers[name] = measure_peer(name, a.runs, a.decode_steps, log)
            except Exception as e:  # a peer that fails is recorded, not fatal: the table says so
                traceback.print_exc()
                peers[name] = {"error": f"{type(e).__name__}: {e}"}
    # the commit: GIT_COMMIT when set (the device machine has no .git: the caller passes it), else git rev-parse
    commit = os.environ.get("GIT_COMMIT") or os.environ.get("BENCH_COMMIT") or ""
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
        except OSError:
            commit = ""
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "commit": commit or "unknown", "gpu": ours.get("gpu"), "ours": ours, "peers": peers}
    try:
        import torch, transformers
        result["torch"], result["transformers"] = torch.__version__, transformers.__version__
    except Exception:
        pass
    limit = ours["limit_tok_s"]
    ratios = {}
    rows = []
    def row(metric, ours_v, better_high):
        cells = [f"{metric:<22}", f"{ours_v:>10.2f}"]
        for name in ("hf_eager", "hf_sdpa", "hf_static_compile"):
            p = peers.get(name, {}).get(metric)
            if p:
                r = ours_v / p if better_high else p / ours_v
                ratios[f"{metric}_vs_{name}"] = r
                cells.append(f"{p:>10.2f} (x{r:.2f})")
            else:
                cells.append(f"{'-':>18}")
        rows.append("  ".join(cells))
    for ctx in (128, 1024):
        m = f"decode_{ctx}_tok_s"
        ratios[f"{m}_vs_limit"] = ours[m] / limit
        ratios[f"{m}_cublas_vs_limit"] = ours[f"{m}_cublas"] / limit
        row(m, ours[m], True)
    for T in (17, 512):
        row(f"prefill_{T}_ms", ours[f"prefill_{T}_ms"], False)
    result["ratios"] = ratios
    print(f"\n== bench: {ours['gpu']}  commit {result['commit']}  {result['date']} ==")
    print(f"copy bandwidth {ours['copy_bandwidth_GBps']:.0f} GB/s; {ours['bytes_per_token']/1e9:.2f} GB per token; "
          f"limit {limit:.1f} tok/s")
    print(f"load {ours['load_s']:.2f} s; peak GPU {ours['peak_gpu_bytes']/2**30:.2f} GiB; host RSS "
          f"{ours['host_rss_bytes']/2**30:.2f} GiB (anonymous {ours['host_rss_anon_bytes']/2**30:.2f} GiB)")
    for ctx in (128, 1024):
        print(f"decode at {ctx}: ours {ours[f'decode_{ctx}_tok_s']:.1f} tok/s = {100*ratios[f'decode_{ctx}_tok_s_vs_limit']:.1f}% "
              f"of the limit; cuBLAS {ours[f'decode_{ctx}_tok_s_cublas']:.1f} tok/s = "
              f"{100*ratios[f'decode_{ctx}_tok_s_cublas_vs_limit']:.1f}%")
    print(f"\n{'metric':<22}  {'ours':>10}  {'hf_eager (ours/peer)':>18}  {'hf_sdpa':>18}  {'hf_static_compile':>18}")
    for r in rows:
        print(r)
    for name, p in peers.items():
        if "error" in p:
            print(f"{name}: FAILED: {p['error']}")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".partial"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    os.replace(tmp, a.out)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
