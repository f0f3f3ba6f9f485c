#!/usr/bin/env python3
"""compare_traces.py REF_TRACE CUDA_ONLY_TRACE [--allow-generate-divergence]

Checks a trace written with `--device cuda --no-compare` (the CUDA path alone, every op fed by the CUDA op before it)
against a trace of the same model, prompt, layer and head written in the default mode (whose .npy files hold the CPU
reference's values, each CUDA op having been checked against them). One line per check, then "N passed, N failed";
exit 0 when all passed.

  - the CUDA-only trace records mode "cuda-only" for the run and every step, and no comparison;
  - the same steps, the same tensor names, shapes and dtype labels; the same figures, less the default mode's
    CUDA | CPU | diff panels (*_compare.png);
  - values. Tensors that are read, not computed (token ids, the mask, the RoPE tables, weights viewed per head): bit
    for bit. Tensors of one layer (chapters 02-13, --layer 0): the two paths start from the same embeddings and round
    at the same points, but each op of the CUDA chain reads the CUDA results before it, so one-ulp differences travel
    through the layer: the tolerance of chapter 14's per-layer check (a whole layer from the same input), 4 bf16 ulps
    of the tensor's RMS absolute plus 2^-6 relative, element by element. Tensors after the whole model (chapters
    14-16, and 18's final norm and logits): the drift of bf16 rounding through all the layers, judged as chapter 16
    judges it: normalised MSE <= 1e-2. The prediction as chapter 15 judges it: the same token, or one the reference scores within 3x the RMS
    logit error of its own best (a near tie). 19_logit_lens's top ids and the final prediction's rank: in each
    trace, those its own last-token logits give (the rest of the chapter by normalised MSE). top_k_probs: in each trace, the k largest probabilities of the softmax
    of its own logits (the logits themselves are compared above; exp() turns their drift into larger relative
    errors of the probabilities, and near ties reorder the top k). Non-finite values (the masked -inf) must sit in
    the same places.
  - chapter 16: the prompt's tokens equal; the generated ones equal (with --allow-generate-divergence, e.g. for
    random 8B weights whose logits have many near ties, the first difference is reported instead); the rows of
    cache_k_layer0 whose token is the same in both runs (a row depends on its token and position alone) within the
    one-layer tolerance.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from check_trace import Result  # noqa: E402  (tests/reference/check_trace.py)

READ_NOT_COMPUTED = {"tokens", "mask", "freqs", "freqs_cis", "freqs_for_each_token", "mask_chunk_at_start_pos"}
WHOLE_MODEL_STEPS = {"14_layers", "15_logits", "16_generate", "19_logit_lens"}
# tensors of other chapters that come after the whole model (18_tensor_parallel's logits: every layer, then split)
WHOLE_MODEL_TENSORS = {("18_tensor_parallel", "final_embedding_normalized"), ("18_tensor_parallel", "logits"),
                       ("18_tensor_parallel", "logits_per_rank")}
MAX_NMSE = 1e-2  # chapter 16's tolerance for logits after all the layers
# a product of two chained values (silu(gate) * up of a rank's FFN): their relative errors add
PRODUCT_TENSORS = {("18_tensor_parallel", "ffn_hidden_per_rank")}


def read_only(name):
    # q_layer0, q_layer0_head0, k_layer0_head1, ...: the checkpoint's weights viewed per head
    return name in READ_NOT_COMPUTED or name.startswith("zero_to_one_split_into_") or (
        name[:2] in ("q_", "k_", "v_") and name[2:].startswith("layer") and "embedding" not in name)


def nonfinite_same(a, b):
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(b), b, 0))


def one_layer_ok(ref, out, factors=1):
    """chapter 14's per-layer tolerance: |out - ref| <= 4 * RMS(ref) / 256 + factors * |ref| / 64 on the finite values
    (factors 2 for a product of two chained values, whose relative errors add: 18_tensor_parallel's hidden, as the
    chapter judges it); returns (ok, largest share of the tolerance used, max abs difference)."""
    f = np.isfinite(ref) & np.isfinite(out)
    r, o = ref[f].astype(np.float64), out[f].astype(np.float64)
    if r.size == 0:
        return True, 0.0, 0.0
    atol, rtol = 4 * np.sqrt(np.mean(r * r)) / 256, factors / 64
    tol = atol + rtol * np.abs(r)
    used = float(np.max(np.abs(o - r) / np.where(tol > 0, tol, 1e-30)))
    return used <= 1.0, used, float(np.max(np.abs(o - r)))


def nmse(ref, out):
    f = np.isfinite(ref) & np.isfinite(out)
    r, o = ref[f].astype(np.float64), out[f].astype(np.float64)
    den = float(np.sum(r * r))
    num = float(np.sum((o - r) ** 2))
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def main(argv):
    allow_divergence = "--allow-generate-divergence" in argv
    args = [a for a in argv[1:] if a != "--allow-generate-divergence"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ref_dir, cu_dir = args
    R = Result(verbose=True)
    ref = json.load(open(os.path.join(ref_dir, "trace.json")))
    cu = json.load(open(os.path.join(cu_dir, "trace.json")))
    R.check(cu.get("mode") == "cuda-only", f"{cu_dir}: run mode {cu.get('mode')!r}, want 'cuda-only'")
    R.check(ref.get("mode") == "cuda+cpu", f"{ref_dir}: run mode {ref.get('mode')!r}, want 'cuda+cpu' (the default with a GPU)")
    for key in ("prompt", "precision", "tokens"):
        R.check(ref.get(key) == cu.get(key), f"run field {key}: the same in both traces")
    ref_steps = {s["id"]: s for s in ref.get("steps", [])}
    cu_steps = {s["id"]: s for s in cu.get("steps", [])}
    R.check(sorted(ref_steps) == sorted(cu_steps), f"steps {sorted(cu_steps)} = {sorted(ref_steps)}")

    worst_layer, worst_nmse = 0.0, 0.0
    for sid in sorted(set(ref_steps) & set(cu_steps)):
        rs, cs = ref_steps[sid], cu_steps[sid]
        R.check(cs.get("mode") == "cuda-only" and cs.get("comparisons") == [],
                f"{sid}: mode {cs.get('mode')!r}, {len(cs.get('comparisons', []))} comparisons (want cuda-only, none)")
        rt = {t["name"]: t for t in rs.get("tensors", [])}
        ct = {t["name"]: t for t in cs.get("tensors", [])}
        R.check(sorted(rt) == sorted(ct), f"{sid}: tensors {sorted(ct)} = {sorted(rt)}")
        ri = sorted(i["file"] for i in rs.get("images", []) if not i["file"].endswith("_compare.png"))
        ci = sorted(i["file"] for i in cs.get("images", []))
        R.check(ri == ci, f"{sid}: figures {ci} = {ri} (the default mode's *_compare.png aside)")
        if sid == "16_generate":
            continue  # below: its tensors depend on the tokens each run generated
        for name in sorted(set(rt) & set(ct)):
            a = np.load(os.path.join(ref_dir, rt[name]["file"]))
            b = np.load(os.path.join(cu_dir, ct[name]["file"]))
            what = f"{sid}/{name} {list(b.shape)}"
            if not R.check(a.shape == b.shape and a.dtype == b.dtype and rt[name]["dtype"] == ct[name]["dtype"],
                           f"{what}: shape, dtype {b.dtype} {ct[name]['dtype']!r} = {list(a.shape)} {a.dtype} "
                           f"{rt[name]['dtype']!r}"):
                continue
            if name == "next_token":
                continue  # below, with the logits
            if read_only(name):
                R.check(np.array_equal(a, b, equal_nan=True), f"{what}: bit for bit (read, not computed)")
                continue
            if not R.check(nonfinite_same(a, b) and not np.isnan(b).any(), f"{what}: no NaN, -inf where the reference has it"):
                continue
            if name == "top_k_probs":
                # exp() turns the logits' drift (compared just above/below by normalised MSE) into relative errors
                # of the probabilities, and near ties reorder the top k; so each trace's table is checked against
                # its own logits: the k largest softmax probabilities, in order (float32 of a double softmax)
                for d, arr in ((ref_dir, a), (cu_dir, b)):
                    lg = np.load(os.path.join(d, f"{sid}/logits.npy")).astype(np.float64)
                    pr = np.exp(lg - lg.max())
                    pr /= pr.sum()
                    want = np.sort(pr)[::-1][:arr.shape[0]]
                    R.check(np.allclose(arr, want, rtol=1e-5, atol=1e-9),
                            f"{what}: the top {arr.shape[0]} of softmax(its own logits) in {os.path.basename(d.rstrip('/'))}")
                continue
            if sid == "19_logit_lens" and name in ("logit_lens_top_ids", "final_prediction_rank"):
                # ids and ranks are not close or far: each trace's must follow from its own last-token logits (the
                # logits, probabilities and the normalised stream are compared by normalised MSE)
                for d, arr in ((ref_dir, a), (cu_dir, b)):
                    last = np.load(os.path.join(d, f"{sid}/logit_lens_last_token_logits.npy"))
                    where = os.path.basename(d.rstrip('/'))
                    if name == "logit_lens_top_ids":
                        k = arr.shape[-1]
                        want = np.stack([np.sort(row)[::-1][:k] for row in last])
                        got = np.take_along_axis(last, arr[:, -1, :], axis=1)
                        R.check(np.array_equal(got, want), f"{what}: the last position's ids are the top {k} of its own "
                                f"last-token logits in {where}")
                    else:
                        target = int(np.argmax(last[-1]))
                        want = [1 + int((row > row[target]).sum()) for row in last]
                        R.check(arr.tolist() == want and want[-1] == 1, f"{what}: 1 + #(logits above the final "
                                f"prediction's) in {where}")
                continue
            if sid in WHOLE_MODEL_STEPS or (sid, name) in WHOLE_MODEL_TENSORS:
                e = nmse(a, b)
                worst_nmse = max(worst_nmse, e)
                R.check(e <= MAX_NMSE, f"{what}: normalised MSE {e:.2e} <= {MAX_NMSE:.0e} (whole model)")
            else:
                ok, used, max_abs = one_layer_ok(a, b, 2 if (sid, name) in PRODUCT_TENSORS else 1)
                worst_layer = max(worst_layer, used)
                R.check(ok, f"{what}: within one layer's tolerance ({100 * used:.0f}% used, max abs {max_abs:.2e})")

    # chapter 15: the prediction, as the chapter judges it
    if "15_logits" in ref_steps and "15_logits" in cu_steps:
        la, lb = np.load(os.path.join(ref_dir, "15_logits/logits.npy")), np.load(os.path.join(cu_dir, "15_logits/logits.npy"))
        na = int(np.load(os.path.join(ref_dir, "15_logits/next_token.npy"))[0])
        nb = int(np.load(os.path.join(cu_dir, "15_logits/next_token.npy"))[0])
        rms_err = float(np.sqrt(np.mean((lb.astype(np.float64) - la) ** 2)))
        gap = float(la[na]) - float(la[nb])
        R.check(nb == int(np.argmax(lb)), f"15_logits/next_token {nb} is the argmax of the CUDA-only logits")
        R.check(na == nb or gap <= 3 * rms_err,
                f"15_logits/next_token: CUDA-only {nb}, reference {na} (reference logit gap {gap:.3g}, RMS logit "
                f"error {rms_err:.3g}: {'the same' if na == nb else 'a near tie' if gap <= 3 * rms_err else 'different'})")

    # chapter 16: the generated tokens and the cache rows of equal tokens
    if "16_generate" in ref_steps and "16_generate" in cu_steps:
        ta = np.load(os.path.join(ref_dir, "16_generate/tokens.npy")).astype(np.int64)
        tb = np.load(os.path.join(cu_dir, "16_generate/tokens.npy")).astype(np.int64)
        T = len(ref.get("tokens", {}).get("ids", []))
        R.check(ta.shape == tb.shape and np.array_equal(ta[:T], tb[:T]), "16_generate/tokens: the same prompt")
        if ta.shape == tb.shape:
            same = ta == tb
            first = int(np.argmin(same)) if not same.all() else len(ta)
            if allow_divergence:
                print(f"note 16_generate/tokens: {int(same[T:].sum())} of {len(ta) - T} generated tokens equal"
                      f"{'' if first == len(ta) else f', the first difference at position {first}'}")
            else:
                R.check(same.all(), f"16_generate/tokens: the generated tokens equal ({tb[T:].tolist()} vs {ta[T:].tolist()})")
            ka = np.load(os.path.join(ref_dir, "16_generate/cache_k_layer0.npy"))
            kb = np.load(os.path.join(cu_dir, "16_generate/cache_k_layer0.npy"))
            rows = same[:ka.shape[0]]
            if R.check(ka.shape == kb.shape, f"16_generate/cache_k_layer0 {list(kb.shape)} = {list(ka.shape)}"):
                ok, used, _ = one_layer_ok(ka[rows], kb[rows])
                R.check(ok, f"16_generate/cache_k_layer0: the {int(rows.sum())} rows of equal tokens within one layer's "
                            f"tolerance ({100 * used:.0f}% used)")
        ma = np.load(os.path.join(ref_dir, "16_generate/mask_chunk_at_start_pos.npy"))
        mb = np.load(os.path.join(cu_dir, "16_generate/mask_chunk_at_start_pos.npy"))
        R.check(np.array_equal(ma, mb), "16_generate/mask_chunk_at_start_pos: bit for bit")

    print(f"# worst share of the one-layer tolerance {100 * worst_layer:.0f}%, worst whole-model normalised MSE "
          f"{worst_nmse:.2e}")
    print(f"{R.passed} passed, {R.failed} failed")
    return 0 if R.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
