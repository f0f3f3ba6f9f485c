#!/usr/bin/python3
"""check_trace.py: checks a trace directory written by the walkthrough's chapters (steps/00_config .. 20_moe).

    check_trace.py [--mode MODE] TRACE_DIR MODEL_DIR STEP...

STEP: the chapter ids that ran into TRACE_DIR (e.g. 00_config 01_tokenize ...), in order. --mode: how they ran, as
trace.json records it ("cpu" for --device cpu; "cuda+cpu" for both paths, where the token heatmaps also have their
_compare.png; "cpu-only" or "cuda-only" for --no-compare runs, where no step may record a comparison); without it the
device must be cpu and the mode is not checked. Checks, one line each:
  - trace.json is valid JSON in format llama3-trace/1, with the run (model, prompt, device, precision), the tokens
    (ids and pieces, as many as tokens.npy holds) and exactly the steps given, in order, each with its title and the
    lines it printed;
  - every tensor a step lists: its .npy exists, loads, has the dtype and shape trace.json records, and that shape is
    the one the chapter must write for this model (from params.json: T, D, H, Hkv, Dh, F, V, L), the layer and
    head it followed (from 04_query's file names) and the tokens; the min/max/mean/std/NaN/Inf counts recorded are
    those of the file, and so is the FNV-1a checksum (for files up to 4M elements: a pure-Python hash is slow);
  - a step's vocab (the text of the token ids it writes) has one piece per id, and covers 19_logit_lens's top ids;
  - a step lists exactly the tensors and images it must write, no fewer and no more; every .npy and .png under
    TRACE_DIR is listed;
  - every image decodes (check_png.decode_png: chunk CRCs and IHDR with zlib, the pixels with Pillow), is 8-bit
    RGB/RGBA, between 300x200 and 4000x4000 pixels, and is not blank: at least 4 colours (a bar chart has few) and 1% of its pixels drawn
    (darker than light grey);
  - the tensors the walkthrough's issue names exist (token_embeddings_unnormalized ... next_token);
  - trace.json's "config" (the facts the page's map is drawn from) holds this model's sizes and the prompt's length;
    every chapter but 00 lists its where.png, 00 its architecture.png.
Prints "N passed, N failed"; exit 0 when all passed, 1 otherwise, 2 on bad usage.
"""
import json
import os
import re
import sys

import numpy as np

from check_png import decode_png

ISSUE_TENSORS = [  # the names the walkthrough's issue asks for; {L} and {h} are the layer and head followed, {half}
    # is head_dim / 2 (64 for Llama 3)
    "token_embeddings_unnormalized", "token_embeddings", "q_layer{L}", "q_layer{L}_head{h}", "q_per_token",
    "q_per_token_split_into_pairs", "zero_to_one_split_into_{half}_parts", "freqs", "freqs_cis", "q_per_token_rotated",
    "k_per_token_rotated", "qk_per_token", "mask", "qk_per_token_after_masking",
    "qk_per_token_after_masking_after_softmax", "v_per_token", "qkv_attention", "stacked_qkv_attention",
    "embedding_delta", "embedding_after_edit", "embedding_after_edit_normalized", "output_after_feedforward",
    "layer_{L}_embedding", "final_embedding", "logits", "next_token",
]


class Result:
    """Counts checks; prints every failure (and, with verbose, every pass). tests/gpu/compare_traces.py uses it too."""
    def __init__(self, verbose=False):
        self.passed = self.failed = 0
        self.verbose = verbose

    def check(self, ok, what):
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}", flush=True)
        return ok


def config(model_dir):
    p = json.load(open(os.path.join(model_dir, "params.json")))
    D, H = p["dim"], p["n_heads"]
    Hkv = p.get("n_kv_heads") or H
    hidden = int(2 * (4 * D) / 3)
    if p.get("ffn_dim_multiplier") is not None:
        hidden = int(p["ffn_dim_multiplier"] * hidden)
    m = p.get("multiple_of", 256)
    return dict(D=D, H=H, Hkv=Hkv, Dh=D // H, n_rep=H // Hkv, F=m * ((hidden + m - 1) // m), V=p["vocab_size"],
                L=p["n_layers"])


def cost_sweep_runs(c, T, cuda):
    """Whether 16_generate drew cost_per_token.png: its sweep of positions T, 2T, ... keeps at least T within a budget
    of the layers' matrix FLOPs (steps/16_generate.c: 5e9 on the CPU, 2e13 with the GPU)."""
    flops = 2 * c["L"] * (c["D"] * (c["H"] + 2 * c["Hkv"]) * c["Dh"] + c["H"] * c["Dh"] * c["D"] + 3 * c["D"] * c["F"])
    return (T + 1) * flops <= (2e13 if cuda else 5e9)


def tp_ranks(c):
    """18_tensor_parallel's N without --tp: 2 when it splits the model (common/tp.c's rule), else 1."""
    H, Hkv, N = c["H"], c["Hkv"], 2
    ok = H % N == 0 and (Hkv % N == 0 if N <= Hkv else N % Hkv == 0) and c["F"] % N == 0 and c["V"] % N == 0
    return N if ok else 1


def expected_outputs(c, T, layer, head, cuda=False):
    """{step: ({tensor name: (shape, dtype)}, [image files])} for a run on this model and prompt."""
    D, H, Hkv, Dh, V, NL = c["D"], c["H"], c["Hkv"], c["Dh"], c["V"], c["L"]
    half, kv, L = Dh // 2, head // c["n_rep"], layer
    f32 = "float32"
    pairs = ([T, half, 2], f32)
    want = {
        "00_config": ({}, ["architecture.png"]),
        "01_tokenize": ({"tokens": ([T], "int64")}, []),
        "02_embed": ({"token_embeddings_unnormalized": ([T, D], f32)}, []),
        "03_rmsnorm": ({"rms": ([T], f32), "token_embeddings": ([T, D], f32)}, []),
        "04_query": ({f"q_layer{L}": ([H, Dh, D], f32), f"q_layer{L}_head{head}": ([Dh, D], f32),
                      "q_per_token": ([T, Dh], f32)}, []),
        "05_rope": ({"q_per_token_split_into_pairs": pairs, f"zero_to_one_split_into_{half}_parts": ([half], f32),
                     "freqs": ([half], f32), "freqs_for_each_token": ([T, half], f32), "freqs_cis": pairs,
                     "q_per_token_as_complex_numbers": pairs, "q_per_token_as_complex_numbers_rotated": pairs,
                     "q_per_token_split_into_pairs_rotated": pairs, "q_per_token_rotated": ([T, Dh], f32)},
                    ["freqs_cis.png"]),
        "06_key": ({f"k_layer{L}": ([Hkv, Dh, D], f32), f"k_layer{L}_head{kv}": ([Dh, D], f32),
                    "k_per_token": ([T, Dh], f32), "k_per_token_split_into_pairs": pairs,
                    "k_per_token_as_complex_numbers": pairs, "k_per_token_split_into_pairs_rotated": pairs,
                    "k_per_token_rotated": ([T, Dh], f32)}, []),
        "07_scores": ({"qk_per_token": ([T, T], f32)}, ["scores.png"]),
        "08_mask": ({"mask": ([T, T], f32), "qk_per_token_after_masking": ([T, T], f32)}, ["scores_masked.png"]),
        "09_softmax": ({"qk_per_token_after_masking_after_softmax": ([T, T], f32)}, ["attention_weights.png"]),
        "10_value": ({f"v_layer{L}": ([Hkv, Dh, D], f32), f"v_layer{L}_head{kv}": ([Dh, D], f32),
                      "v_per_token": ([T, Dh], f32), "qkv_attention": ([T, Dh], f32)}, []),
        "11_multihead": ({"attn_weights_all": ([H, T, T], f32), "stacked_qkv_attention": ([T, H * Dh], f32)},
                         ["heads.png"]),
        "12_output": ({"embedding_delta": ([T, D], f32), "embedding_after_edit": ([T, D], f32)}, []),
        "13_ffn": ({"embedding_after_edit_normalized": ([T, D], f32), "output_after_feedforward": ([T, D], f32),
                    f"layer_{L}_embedding": ([T, D], f32)}, []),
        "14_layers": ({"final_embedding": ([T, D], f32), "layer_outputs": ([NL, T, D], f32),
                       "attn_weights_layers": ([NL, H, T, T], f32), "residual_norms": ([NL + 1, T], f32)},
                      [f"attention_layer_{i:02d}.png" for i in range(NL)] + ["residual_norms.png"]),
        "15_logits": ({"final_embedding": ([T, D], f32), "final_embedding_normalized": ([T, D], f32),
                       "logits": ([V], f32), "next_token": ([1], "int64"), "top_k_probs": ([min(10, V)], f32)},
                      ["top_k.png"]),
        # K = 10 best tokens per cell (LENS_TOPK in steps/19_logit_lens.c)
        "19_logit_lens": ({"layer_outputs_normalized": ([NL, T, D], f32), "logit_lens_top_ids": ([NL, T, min(10, V)], "int64"),
                           "logit_lens_top_probs": ([NL, T, min(10, V)], f32),
                           "logit_lens_last_token_logits": ([NL, V], f32), "final_prediction_rank": ([NL], "int64"),
                           "final_prediction_prob": ([NL], f32)},
                          ["logit_lens.png", "final_prediction_prob.png", "final_prediction_rank.png"]),
        # 8 new tokens (N_NEW in steps/16_generate.c); the cache holds every position but the last token's
        "16_generate": ({"mask_chunk_at_start_pos": ([3, T + 3], f32), "tokens": ([T + 8], f32),
                         "cache_k_layer0": ([T + 7, Hkv, Dh], f32)},
                        ["cost_per_token.png"] if cost_sweep_runs(c, T, cuda) else []),
        "17_packed": ({"qkv": ([T, (H + 2 * Hkv) * Dh], f32), "gate_up": ([T, 2 * c["F"]], f32),
                       "embedding_after_edit": ([T, D], f32), "embedding_after_edit_normalized": ([T, D], f32)},
                      ["packed_weights.png"]),
        "18_tensor_parallel": tp_outputs(c, T, layer, tp_ranks(c)),
    }
    for sid, (_, images) in want.items():  # every chapter but 00 (the whole map) draws its place on the map
        if sid != "00_config":
            images.insert(0, "where.png")
    return want


def moe_expected(out, model_dir, T, layer):
    """20_moe's tensors and images: the model's own MoE config, or the MoE demo model's when the model is dense (the
    chapter then traces that one, its last layer when --layer is beyond it). The experts' tensors follow the routing
    recorded in the chapter's own expert_load.npy (an expert no token picked writes none)."""
    p = json.load(open(os.path.join(model_dir, "params.json")))
    if not p.get("n_routed_experts"):
        here = os.path.dirname(os.path.abspath(__file__))
        p = json.load(open(os.path.join(here, "..", "..", "build", "models", "llama3-tiny-moe", "params.json")))
    D, E, k, S, NL = p["dim"], p["n_routed_experts"], p.get("num_experts_per_tok", 2), p.get("n_shared_experts", 1), p["n_layers"]
    L = min(layer, NL - 1)
    f32 = "float32"
    t = {"moe_input": ([T, D], f32), "gate_logits": ([T, E], f32), "gate_scores": ([T, E], f32),
         "topk_idx": ([T, k], f32), "topk_weight": ([T, k], f32), "routing_weights": ([T, E], f32),
         "expert_load": ([E], f32), "aux_loss": ([2], f32), "routed_out": ([T, D], f32), "moe_out": ([T, D], f32),
         f"layer_{L}_embedding": ([T, D], f32)}
    if S:
        t["shared_out"] = ([S, T, D], f32)
    load_path = os.path.join(out, "20_moe", "expert_load.npy")
    load = np.load(load_path) if os.path.isfile(load_path) else np.zeros(E)
    for e in range(E):
        n = int(round(float(load[e])))
        if n:
            t[f"expert_{e}_tokens"], t[f"expert_{e}_out"] = ([n], f32), ([n, D], f32)
    return t, ["where.png", "gate_scores.png", "routing_weights.png", "expert_load.png"]


def dense_demo_instead(model_dir):
    """The model chapters 17 and 18 trace when model_dir is a mixture of experts (no w1/w2/w3 to pack or split): the
    dense demo model of common/util.c's default_model_dir, else None."""
    if not json.load(open(os.path.join(model_dir, "params.json"))).get("n_routed_experts"):
        return None
    models = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "models")
    for name in ("llama3-tiny-trained", "tiny"):
        if os.path.isfile(os.path.join(models, name, "params.json")):
            return os.path.join(models, name)
    return None


def tp_outputs(c, T, layer, N):
    """18_tensor_parallel's tensors and figures for N ranks (a kv head per rank when N > Hkv)."""
    D, Dh, f32 = c["D"], c["Dh"], "float32"
    HD, KD = c["H"] // N * Dh, max(c["Hkv"] // N, 1) * Dh
    return ({"layer_input": ([T, D], f32), "final_embedding_normalized": ([T, D], f32),
             "tok_embeddings_partial": ([N, T, D], f32), "token_embeddings_unnormalized": ([T, D], f32),
             "q_per_rank": ([N, T, HD], f32), "k_per_rank": ([N, T, KD], f32), "v_per_rank": ([N, T, KD], f32),
             "attention_per_rank": ([N, T, HD], f32), "embedding_delta_partial": ([N, T, D], f32),
             "embedding_delta": ([T, D], f32), "embedding_after_edit": ([T, D], f32),
             "embedding_after_edit_normalized": ([T, D], f32),
             "ffn_hidden_per_rank": ([N, T, c["F"] // N], f32), "output_after_feedforward_partial": ([N, T, D], f32),
             "output_after_feedforward": ([T, D], f32), f"layer_{layer}_embedding": ([T, D], f32),
             "logits_per_rank": ([N, c["V"] // N], f32), "logits": ([c["V"]], f32)},
            ["weight_split.png", "partial_sums_wo.png", "partial_sums_w2.png"])


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main(argv):
    mode = None
    if len(argv) > 2 and argv[1] == "--mode":
        mode, argv = argv[2], argv[:1] + argv[3:]
    if len(argv) < 4 or mode not in (None, "cpu", "cpu-only", "cuda-only", "cuda+cpu"):
        print(__doc__, file=sys.stderr)
        return 2
    out, model_dir, steps = argv[1], argv[2], argv[3:]
    R = Result()
    try:
        trace = json.load(open(os.path.join(out, "trace.json")))
    except (OSError, ValueError) as e:
        R.check(False, f"trace.json: {e}")
        print(f"{R.passed} passed, {R.failed} failed")
        return 1
    c = config(model_dir)
    R.check(trace.get("format") == "llama3-trace/1", f"trace.json format {trace.get('format')!r}")
    for key in ("model", "prompt", "device", "precision"):
        R.check(isinstance(trace.get(key), str) and trace[key], f"trace.json: run field {key!r} missing")
    want_cpu = mode is None or mode.startswith("cpu")
    R.check((trace.get("device") == "cpu") == want_cpu and trace.get("precision") == "bf16",
            f"trace.json: device {trace.get('device')!r}, precision {trace.get('precision')!r}: want "
            f"{'cpu' if want_cpu else 'a GPU'}, bf16")
    if mode:
        R.check(trace.get("mode") == mode, f"trace.json: mode {trace.get('mode')!r}, want {mode!r}")
        for step in trace.get("steps", []):
            R.check(step.get("mode") == mode, f"{step.get('id')}: mode {step.get('mode')!r}, want {mode!r}")
            if mode.endswith("-only"):  # --no-compare: nothing compared, so no verdict at all
                R.check(step.get("comparisons") == [], f"{step.get('id')}: a --no-compare run recorded comparisons "
                        f"{[c.get('name') for c in step.get('comparisons', [])]}")
    tok = trace.get("tokens", {})
    ids, pieces = tok.get("ids", []), tok.get("pieces", [])
    T = len(ids)
    R.check(T > 0 and len(pieces) == T and ids[0] == 128000 and pieces[0] == "<|begin_of_text|>",
            f"trace.json tokens: {T} ids, {len(pieces)} pieces")
    got_steps = [s.get("id") for s in trace.get("steps", [])]
    R.check(got_steps == steps, f"trace.json steps {got_steps}, want {steps}")
    # the model facts the map is drawn from (draw/diagram.h) are this model's
    cfg = trace.get("config") or {}
    want_cfg = {"dim": c["D"], "n_layers": c["L"], "n_heads": c["H"], "n_kv_heads": c["Hkv"], "head_dim": c["Dh"],
                "ffn_hidden": c["F"], "vocab_size": c["V"], "tokens": T}
    R.check({k: cfg.get(k) for k in want_cfg} == want_cfg,
            f"trace.json config {({k: cfg.get(k) for k in want_cfg})}, want {want_cfg}")

    # the layer and head the chapters followed
    layer, head = 0, 0
    qdir = os.path.join(out, "04_query")
    if os.path.isdir(qdir):
        found = [re.fullmatch(r"q_layer(\d+)_head(\d+)\.npy", n) for n in os.listdir(qdir)]
        found = [f for f in found if f]
        if R.check(len(found) == 1, "04_query: exactly one q_layerL_headH.npy"):
            layer, head = int(found[0].group(1)), int(found[0].group(2))
    want = expected_outputs(c, T, layer, head, cuda=trace.get("device") != "cpu")  # precision is bf16 (above)
    if "20_moe" in steps:
        want["20_moe"] = moe_expected(out, model_dir, T, layer)
    if mode == "cuda+cpu":  # with both paths a token heatmap also has its CUDA | CPU | difference figure
        for sid, figure in (("07_scores", "scores"), ("08_mask", "scores_masked"), ("09_softmax", "attention_weights")):
            want[sid][1].append(f"{figure}_compare.png")
    if dense_demo_instead(model_dir):  # 17 and 18 traced the dense demo model (Chapter.needs_dense)
        d = config(dense_demo_instead(model_dir))
        dense = expected_outputs(d, T, min(layer, d["L"] - 1), min(head, d["H"] - 1),
                                 cuda=trace.get("device") != "cpu")
        for sid in ("17_packed", "18_tensor_parallel"):
            want[sid] = dense[sid]

    listed_files, n_tensors, n_images = set(), 0, 0
    names_written = set()
    for step in trace.get("steps", []):
        sid = step.get("id")
        if sid not in want:
            R.check(False, f"trace.json: unknown step {sid!r}")
            continue
        want_tensors, want_images = want[sid]
        R.check(isinstance(step.get("title"), str) and step["title"], f"{sid}: no title")
        lines = step.get("lines")
        R.check(isinstance(lines, list) and len(lines) >= 3 and all(isinstance(x, str) for x in lines),
                f"{sid}: printed lines missing in trace.json")
        R.check(isinstance(step.get("comparisons"), list) and isinstance(step.get("timings"), dict),
                f"{sid}: comparisons/timings missing")
        names = [t.get("name") for t in step.get("tensors", [])]
        R.check(sorted(names) == sorted(want_tensors),
                f"{sid}: tensors {sorted(names)}, want {sorted(want_tensors)}")
        for rec in step.get("tensors", []):
            name, file = rec.get("name"), rec.get("file", "")
            names_written.add(name)
            listed_files.add(file)
            n_tensors += 1
            path = os.path.join(out, file)
            if not R.check(file == f"{sid}/{name}.npy" and os.path.isfile(path), f"{sid}/{name}: file {file!r} missing"):
                continue
            a = np.load(path)
            shape, dtype = want_tensors.get(name, (None, None))
            R.check(list(a.shape) == rec.get("shape") and list(a.shape) == shape and str(a.dtype) == dtype,
                    f"{file}: {a.dtype} {list(a.shape)}; trace.json says {rec.get('shape')}, want {dtype} {shape}")
            f = a.astype(np.float64).ravel()
            finite = f[np.isfinite(f)]
            ok = rec.get("n_nan") == int(np.isnan(f).sum()) and rec.get("n_inf") == int(np.isinf(f).sum())
            for key, val in (("min", finite.min()), ("max", finite.max()), ("mean", finite.mean()), ("std", finite.std())):
                ok = ok and abs(rec.get(key, np.nan) - val) <= 1e-6 * max(1.0, abs(val))
            R.check(ok, f"{file}: recorded min/max/mean/std/NaN/Inf are not the file's")
            if a.size <= 4 * 1024 * 1024:
                h = fnv1a64(a.astype("<f4").tobytes())
                R.check(rec.get("checksum") == "fnv1a64:%016x" % h, f"{file}: checksum {rec.get('checksum')} != {h:016x}")
        vocab = step.get("vocab")
        if vocab is not None or sid == "19_logit_lens":  # the text of the token ids the step's tensors hold
            vocab = vocab or {}
            v_ids, v_pieces = vocab.get("ids", []), vocab.get("pieces", [])
            R.check(len(v_ids) == len(v_pieces) == len(set(v_ids)) and all(isinstance(x, str) for x in v_pieces),
                    f"{sid}: vocab has {len(v_ids)} ids and {len(v_pieces)} pieces, each id once")
            if sid == "19_logit_lens" and os.path.isfile(os.path.join(out, sid, "logit_lens_top_ids.npy")):
                need = set(np.load(os.path.join(out, sid, "logit_lens_top_ids.npy")).ravel().tolist())
                R.check(need <= set(v_ids), f"{sid}: {len(need - set(v_ids))} ids of logit_lens_top_ids have no piece in vocab")
        imgs = [i.get("file") for i in step.get("images", [])]
        R.check(sorted(imgs) == sorted(f"{sid}/{x}" for x in want_images),
                f"{sid}: images {sorted(imgs)}, want {sorted(want_images)}")
        for file in imgs:
            listed_files.add(file)
            n_images += 1
            try:
                img = decode_png(os.path.join(out, file))[3]
            except (OSError, ValueError) as e:
                R.check(False, f"{file}: {e}")
                continue
            hgt, wid = img.shape[:2]
            rgb = img[:, :, :3].astype(np.int64)
            colours = len(np.unique((rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]))
            drawn = float((rgb.sum(axis=2) < 600).mean())
            if R.check(300 <= wid <= 4000 and 200 <= hgt <= 4000 and colours >= 4 and drawn >= 0.01,
                       f"{file}: {wid}x{hgt}, {colours} colours, {100 * drawn:.1f}% drawn"):
                print(f"ok   {file}: {wid}x{hgt}, {colours} colours, {100 * drawn:.1f}% drawn")
    # nothing on disk that trace.json does not list
    for root, _, files in os.walk(out):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), out)
            if f.endswith((".npy", ".png")):
                R.check(rel in listed_files, f"{rel}: on disk but not in trace.json")
    # the names the issue asks for (when the run covers all chapters that write them)
    if all(s in steps for s in ("02_embed", "13_ffn", "15_logits")):
        for n in ISSUE_TENSORS:
            n = n.format(L=layer, h=head, half=c["Dh"] // 2)
            R.check(n in names_written, f"tensor {n} (named in the issue) not written")
    print(f"# {out}: {len(steps)} steps, {n_tensors} tensors, {n_images} images")
    print(f"{R.passed} passed, {R.failed} failed")
    return 0 if R.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
