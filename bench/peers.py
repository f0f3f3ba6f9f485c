#!/usr/bin/env python3
"""peers.py: the PyTorch peers of `make bench` on the same GPU and the same weight shapes, and the final table.

Peers (random bf16 weights at Meta-Llama-3-8B's shapes, built in Python, no files, fed token ids):
  hf_eager          HF transformers' LlamaForCausalLM, attn_implementation="eager", dynamic cache
  hf_sdpa           the same with attn_implementation="sdpa"
  hf_static_compile the same with a static KV cache and torch.compile(mode="reduce-overhead") of the forward
  gpt_fast          pytorch-labs/gpt-fast run from its own directory (--gpt-fast DIR, never copied here): its
                    model.py (Transformer.from_name("llama-3-8b")) and generate.py as its main() runs them with
                    --compile --compile_prefill: decode_one_token under torch.compile(mode="reduce-overhead",
                    fullgraph=True), prefill under torch.compile(fullgraph=True, dynamic=True), its sampling defaults
                    (temperature 0.8, top_k 200); the JSON records the files' sha256 and setup.py's version
Measured like ours: prefill of 17 and 512 tokens, decode tok/s at context 128 and 1024, median of --runs runs after
a warm-up, CUDA events. HF decodes one token per step, synchronised, argmax on the device; gpt-fast decodes with its
own decode_n_tokens (the next token stays on the device, no synchronisation between steps), as its generate does.

Then it merges bench's JSON (--ours), computes ours/limit and ours/peer, prints the table and writes the result
with GPU, commit and date to --out.

Usage: python3 bench/peers.py --ours OURS.json --out RESULT.json [--runs 5] [--decode-steps 32] [--skip-peers]
                              [--gpt-fast DIR]
"""
import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
import types

PEERS = ("hf_eager", "hf_sdpa", "hf_static_compile", "gpt_fast")


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


def peak_and_release(torch, res):
    """The peer's peak GPU memory into res; the cached blocks of the deleted model freed for the next peer."""
    res["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return res


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
    del model
    return peak_and_release(torch, res)


def gpt_fast_version(path):
    """What identifies the gpt-fast checkout (it has no release): setup.py's version and the files' sha256."""
    v = {"path": os.path.abspath(path)}
    try:
        for line in open(os.path.join(path, "setup.py")):
            if "version=" in line:
                v["setup_py_version"] = line.split("version=")[1].strip().strip(",").strip("'\"")
    except OSError:
        pass
    for f in ("model.py", "generate.py"):
        with open(os.path.join(path, f), "rb") as fh:
            v[f"{f}_sha256"] = hashlib.sha256(fh.read()).hexdigest()
    return v


def measure_gpt_fast(path, runs, steps, log):
    """gpt-fast's own code at the 8B shape: its Transformer, its prefill and decode_n_tokens, compiled as its main()
    compiles them with --compile --compile_prefill."""
    import torch
    if not os.path.isfile(os.path.join(path, "model.py")):
        raise FileNotFoundError(f"{path}: no gpt-fast checkout there (model.py missing); pass --gpt-fast DIR")
    sys.path.insert(0, os.path.abspath(path))
    try:
        import tokenizer  # noqa: F401  gpt-fast's own; needs sentencepiece and tiktoken, which the bench never uses
    except ImportError:
        # generate.py imports get_tokenizer at module level; ids are fed directly, so a placeholder stands in
        stub = types.ModuleType("tokenizer")
        stub.get_tokenizer = lambda *a, **k: None
        sys.modules["tokenizer"] = stub
    import model as gf_model
    import generate as gf_gen
    version = gpt_fast_version(path)
    torch.manual_seed(0)
    t0 = time.time()
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    max_len = 1024 + steps + 8
    with torch.device("cuda"):
        model = gf_model.Transformer.from_name("llama-3-8b")
        model.setup_caches(max_batch_size=1, max_seq_length=max_len)
    torch.set_default_dtype(prev)
    model.eval()
    log(f"gpt_fast: model built in {time.time() - t0:.1f} s")
    # its main(): the module-level functions replaced by their compiled versions
    gf_gen.decode_one_token = torch.compile(gf_gen.decode_one_token, mode="reduce-overhead", fullgraph=True)
    prefill = torch.compile(gf_gen.prefill, fullgraph=True, dynamic=True)
    sampling = dict(temperature=0.8, top_k=200)  # generate.py's defaults
    ids = torch.randint(0, 100000, (1, max_len), device="cuda", dtype=torch.int)
    ids[0, 0] = 128000
    res = {"version": version, "sampling": sampling}

    def run_prefill(T):
        return prefill(model, ids[:, :T], torch.arange(0, T, device="cuda"), **sampling)

    def run_decode(ctx, n):
        tok = run_prefill(ctx)  # fills the cache rows 0..ctx-1 and gives the first token, as generate() does
        pos = torch.tensor([ctx], device="cuda", dtype=torch.int)
        return lambda: gf_gen.decode_n_tokens(model, tok.view(1, -1), pos.clone(), n, **sampling)

    with torch.no_grad():
        for T in (17, 512):
            for _ in range(2):
                run_prefill(T)
            res[f"prefill_{T}_ms"] = statistics.median(cuda_ms(torch, lambda: run_prefill(T)) for _ in range(runs))
            log(f"gpt_fast: prefill {T}: {res[f'prefill_{T}_ms']:.2f} ms")
        for ctx in (128, 1024):
            run_decode(ctx, 3)()  # compile and record the CUDA graph
            vals = []
            for _ in range(runs):
                dec = run_decode(ctx, steps)
                vals.append(steps / (cuda_ms(torch, dec) * 1e-3))
            res[f"decode_{ctx}_tok_s"] = statistics.median(vals)
            log(f"gpt_fast: decode at {ctx}: {res[f'decode_{ctx}_tok_s']:.1f} tok/s")
    del model
    return peak_and_release(torch, res)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--gpt-fast", default=None, help="the gpt-fast checkout to run (default: none, recorded so)")
    a = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)
    try:
        ours = json.load(open(a.ours))
    except (OSError, ValueError) as e:
        print(f"error: {a.ours}: {e}", file=sys.stderr)
        return 2
    peers = {}
    if not a.skip_peers:
        for name in PEERS:
            try:
                if name == "gpt_fast":
                    if not a.gpt_fast:
                        raise FileNotFoundError("no gpt-fast checkout given (--gpt-fast DIR, GPT_FAST_DIR in run.sh)")
                    peers[name] = measure_gpt_fast(a.gpt_fast, a.runs, a.decode_steps, log)
                else:
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
        for name in PEERS:
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
    if "prefill_512_tflops" in ours:
        print(f"prefill 512: ours {ours['prefill_512_tflops']:.1f} TFLOP/s = "
              f"{100 * ours.get('prefill_512_of_peak', 0):.1f}% of the dense bf16 peak "
              f"{ours['bf16_peak_tflops']:.1f} TFLOP/s ({ours['bf16_peak_source']})")
    for ctx in (128, 1024):
        print(f"decode at {ctx}: ours {ours[f'decode_{ctx}_tok_s']:.1f} tok/s = {100*ratios[f'decode_{ctx}_tok_s_vs_limit']:.1f}% "
              f"of the limit; cuBLAS {ours[f'decode_{ctx}_tok_s_cublas']:.1f} tok/s = "
              f"{100*ratios[f'decode_{ctx}_tok_s_cublas_vs_limit']:.1f}%")
    print(f"\n{'metric':<22}  {'ours':>10}  {'hf_eager (ours/peer)':>18}  {'hf_sdpa':>18}  {'hf_static_compile':>18}"
          f"  {'gpt_fast':>18}")
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
