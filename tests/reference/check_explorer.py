#!/usr/bin/python3
"""check_explorer.py: checks what a reader saw in the page's interactive parts against the trace's .npy files.

    /usr/bin/python3 tests/reference/check_explorer.py REPORT.json TRACE_DIR --lang en|zh [--layer 3 --head 2]

REPORT.json is what tests/browser/explorer.js printed after driving Chromium over the page made from TRACE_DIR.
Checks, one line per problem (exit 1 if any):
  - no network request was made (every one is blocked and counted: the count must be 0), no console error, no
    uncaught exception; <html lang> is the requested language;
  - chapter 14's attention explorer: after clicking layer LAYER and pressing the right arrow HEAD times, it shows
    layer LAYER, head HEAD; the tooltip of the hovered cell (last query, key 0) names the query and key tokens as the
    trace's pieces (a space shown as ␣) and gives the weight of 14_layers/attn_weights_layers.npy[LAYER, HEAD, q, k]
    to the 4 decimals shown; a masked cell's tooltip says it is masked; the bars of the clicked row are that row's
    q + 1 weights, each with its key token; the page states the precision of the weights it holds (bf16);
  - chapter 19's logit-lens grid: the hovered cell (last layer, last position) shows the top-1 token of
    19_logit_lens/logit_lens_top_ids.npy as text (the step's vocab in trace.json), and its tooltip the five best ids,
    tokens and probabilities of logit_lens_top_ids/_top_probs.npy to the 4 decimals shown.
"""
import argparse
import json
import os
import sys

import numpy as np

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL:", msg)


def shown(piece):
    """A token as the page shows it: ␣ for a space, ↵ for a newline, ⇥ for a tab, ∅ for the empty string."""
    if piece == "":
        return "\u2205"
    return piece.replace(" ", "\u2423").replace("\n", "\u21b5").replace("\t", "\u21e5")


def near(text, value, decimals):
    """text is value written with `decimals` decimals (within the rounding of the last one)."""
    try:
        return abs(float(text) - float(value)) <= 0.5 * 10 ** -decimals + 1e-9
    except (TypeError, ValueError):
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("trace_dir")
    ap.add_argument("--lang", choices=["en", "zh"], required=True)
    ap.add_argument("--layer", type=int, default=3)
    ap.add_argument("--head", type=int, default=2)
    args = ap.parse_args()
    rep = json.load(open(args.report, encoding="utf-8"))
    trace = json.load(open(os.path.join(args.trace_dir, "trace.json"), encoding="utf-8"))
    pieces = trace["tokens"]["pieces"]

    if rep.get("requests_blocked"):
        problem("%d network request(s) were made (blocked): %s" % (len(rep["requests_blocked"]), rep["requests_blocked"][:3]))
    for kind in ("console_errors", "page_errors"):
        if rep.get(kind):
            problem("%s: %s" % (kind, rep[kind][:3]))
    want_lang = "zh-CN" if args.lang == "zh" else "en"
    if rep.get("lang") != want_lang:
        problem("<html lang> is %r, expected %r" % (rep.get("lang"), want_lang))
    print("page: %d bytes, %d requests blocked, %d console errors, %d exceptions"
          % (rep.get("bytes", 0), len(rep.get("requests_blocked", [])), len(rep.get("console_errors", [])),
             len(rep.get("page_errors", []))))

    # ---- chapter 14 ----
    att = rep.get("attention")
    if att is None:
        problem("no attention explorer in the page (chapter 14)")
    else:
        w = np.load(os.path.join(args.trace_dir, "14_layers", "attn_weights_layers.npy"))
        L, H, q, k = args.layer, args.head, att["q"], att["k"]
        if att["state"] != {"layer": str(L), "head": str(H)}:
            problem("after clicking layer %d and pressing ArrowRight %d times the explorer shows %s" % (L, H, att["state"]))
        if att["T"] != w.shape[2] or q != w.shape[2] - 1:
            problem("the map has %d rows, the trace T = %d" % (att["T"], w.shape[2]))
        tip = att["tooltip"]
        if tip["hidden"]:
            problem("the tooltip of a hovered attention cell is hidden")
        if tip.get("query") != shown(pieces[q]) or tip.get("key") != shown(pieces[k]):
            problem("tooltip tokens %r -> %r, expected %r -> %r" % (tip.get("query"), tip.get("key"), shown(pieces[q]),
                                                                     shown(pieces[k])))
        if not near(tip.get("weight"), w[L, H, q, k], 4):
            problem("tooltip weight %r, the .npy has %.6f at [%d, %d, %d, %d]" % (tip.get("weight"), w[L, H, q, k], L, H, q, k))
        else:
            print("attention tooltip: %s (attn_weights_layers.npy[%d, %d, %d, %d] = %.6f)"
                  % (tip["text"].replace("\n", " | "), L, H, q, k, w[L, H, q, k]))
        if not att.get("masked_tooltip"):
            problem("the tooltip of a masked cell does not say it is masked")
        bars = att["bars"]
        if [b["k"] for b in bars] != list(range(q + 1)):
            problem("the clicked row shows bars for keys %s, expected 0..%d" % ([b["k"] for b in bars], q))
        for b in bars:
            if not near(b["w"], w[L, H, q, b["k"]], 4) or not b["token"].endswith(shown(pieces[b["k"]])):
                problem("bar %d: %r %r, expected %.6f %r" % (b["k"], b["token"], b["w"], w[L, H, q, b["k"]], shown(pieces[b["k"]])))
                break
        if not att.get("precision") or "bf16" not in att["precision"]:
            problem("the page does not state the precision of the weights it holds: %r" % att.get("precision"))

    # ---- chapter 19 ----
    lens = rep.get("lens")
    if lens is None:
        problem("no logit-lens grid in the page (chapter 19)")
    else:
        d = os.path.join(args.trace_dir, "19_logit_lens")
        ids, probs = np.load(os.path.join(d, "logit_lens_top_ids.npy")), np.load(os.path.join(d, "logit_lens_top_probs.npy"))
        step = next(s for s in trace["steps"] if s["id"] == "19_logit_lens")
        vocab = dict(zip(step["vocab"]["ids"], step["vocab"]["pieces"]))
        l, t = lens["layer"], lens["pos"]
        if (l, t) != (ids.shape[0] - 1, ids.shape[1] - 1) or lens["dims"] != {"layers": ids.shape[0], "T": ids.shape[1]}:
            problem("the grid is %s, the trace's %s" % (lens["dims"], list(ids.shape[:2])))
        if lens["cell_text"] != shown(vocab[int(ids[l, t, 0])]):
            problem("cell (%d, %d) shows %r, the top-1 token is %d %r" % (l, t, lens["cell_text"], ids[l, t, 0], vocab[int(ids[l, t, 0])]))
        top = lens["tooltip"]["top"]
        if lens["tooltip"]["hidden"] or len(top) != min(5, ids.shape[2]):
            problem("the tooltip of a logit-lens cell lists %d tokens (hidden: %s), expected 5" % (len(top), lens["tooltip"]["hidden"]))
        for j, x in enumerate(top):
            want_id = int(ids[l, t, j])
            if x["id"] != want_id or x["token"] != shown(vocab[want_id]) or not near(x["p"], probs[l, t, j], 4):
                problem("tooltip entry %d: %s, expected id %d %r p %.6f" % (j + 1, x, want_id, shown(vocab[want_id]), probs[l, t, j]))
        if not problems:
            print("logit-lens tooltip: %s" % lens["tooltip"]["text"].replace("\n", " | "))
    print("%d problems" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
