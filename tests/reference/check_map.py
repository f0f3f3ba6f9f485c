#!/usr/bin/env python3
"""check_map.py: the shapes on the map (00_config's table, the boxes of architecture.png) against wt-inspect, and
what a browser saw when it followed the page's map.

    check_map.py LOG MODEL_DIR [--trace TRACE_DIR] [--wt-inspect BIN]
    check_map.py --nav REPORT.json PAGE.html

LOG: what build/steps/00_config printed on MODEL_DIR. Its map table has one row per box that holds a weight:
    "  Wq   layers.0.attention.wq.weight [4096, 4096] bf16   ColumnPar chapters 04 11 17 18"
The shapes in it come from the map's description (formulas of the config, common/draw/diagram.c); wt-inspect reads
the checkpoint itself. Checks, one line each:
  - every row's tensor is one wt-inspect lists, with the same shape and dtype;
  - the rows name every weight of layer 0 and every weight outside the layers that wt-inspect lists (for a dense
    model: tok_embeddings, attention_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3, norm, output);
  - the TP marks are the sources' (ColumnPar wq wk wv w1 w3 output, RowPar wo w2, VocabPar tok_embeddings);
  - with --trace: trace.json's "config" (what the page's map is drawn from) has wt-inspect's sizes and dtypes.
With --nav, REPORT.json is what tests/browser/map.js saw in Chromium: the page has one map; it needed nothing from the
network and logged no error; the map links every chapter section of the page (found in the HTML here, not taken from
the report) and nothing else; each link was clicked where its label is (not covered by another box), and the page
went there: location.hash is the link's and the section's top is at the top of the viewport (or the page is scrolled
to its end, with the section in view); every chapter but 00 has a small map that leads back to the map at the top.
Prints "N passed, N failed"; exit 1 when one failed, 2 on bad usage.
"""
import argparse
import json
import os
import re
import subprocess
import sys

passed = failed = 0


def check(ok, msg):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL", msg)
    return ok


def inspect(binary, model):
    out = subprocess.run([binary, model, "--no-checksums", "--no-verify"], capture_output=True, text=True, check=True).stdout
    tensors, config = {}, {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) (\S+) \[([0-9, ]*)\] offset=", line)
        if m:
            tensors[m.group(1)] = ([int(x) for x in m.group(3).split(",") if x.strip()], m.group(2))
        m = re.match(r"^  (\w+) +(\S+)", line)
        if m and not tensors:
            config[m.group(1)] = m.group(2)
    return tensors, config


WANT_PAR = {"wq": "ColumnPar", "wk": "ColumnPar", "wv": "ColumnPar", "w1": "ColumnPar", "w3": "ColumnPar",
            "output": "ColumnPar", "wo": "RowPar", "w2": "RowPar", "tok_embeddings": "VocabPar"}


def check_nav(report, page_path):
    r = json.load(open(report, encoding="utf-8"))
    page = open(page_path, encoding="utf-8").read()
    sections = re.findall(r'<section class="chapter" id="(ch-[^"]+)"', page)
    check(len(sections) > 0, "the page has no chapter sections")
    check(r.get("sections") == sections, f"the browser saw sections {r.get('sections')}, the page has {sections}")
    check(r.get("maps") == 1, f"{r.get('maps')} maps in the page")
    check(r.get("requests_blocked") == [], f"network requests: {r.get('requests_blocked')}")
    check(r.get("console_errors") == [] and r.get("page_errors") == [],
          f"errors: {r.get('console_errors')} {r.get('page_errors')}")
    links = {l["href"]: l for l in r.get("links", [])}
    check(sorted(links) == sorted("#" + s for s in sections),
          f"the map links {sorted(links)}, the page's chapters are {sorted('#' + s for s in sections)}")
    for s in sections:
        l = links.get("#" + s)
        if not l:
            continue
        if not check(l.get("clicked"), f"#{s}: no link to it could be clicked where its label is ({l.get('links')} links)"):
            continue
        top, vh = l.get("section_top"), l.get("viewport") or 0
        at_top = top is not None and abs(top) <= 2
        in_view_at_end = bool(l.get("at_bottom")) and top is not None and 0 <= top < vh
        check(l.get("hash") == "#" + s and (at_top or in_view_at_end),
              f"#{s}: clicking \"{l.get('label')}\" went to {l.get('hash')}, the section's top at {top}")
        print(f"ok   {s}: \"{l.get('label')}\" -> {l.get('hash')}, top {top}")
    back = {b["id"]: b for b in r.get("back", [])}
    for s in sections:
        if s == "ch-00_config":
            check(s not in back, "00_config has a small map (it has the whole one)")
            continue
        b = back.get(s)
        top = b.get("map_top") if b else None
        check(b is not None and b.get("hash") == "#map" and top is not None and abs(top) <= 2,
              f"{s}: its small map leads to {b and b.get('hash')} (the map's top at {b and b.get('map_top')})")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--nav":
        check_nav(sys.argv[2], sys.argv[3])
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("model")
    ap.add_argument("--trace")
    ap.add_argument("--wt-inspect", default="build/bin/wt-inspect")
    a = ap.parse_args()
    tensors, config = inspect(a.wt_inspect, a.model)
    check(len(tensors) > 0, f"wt-inspect listed no tensors of {a.model}")

    rows = {}
    for line in open(a.log, encoding="utf-8"):
        m = re.match(r"^  \S.*?\s+(\S+\.weight) \[([0-9, ]*)\] (\S+)(?: \(tied: (\S+)\))?\s+(ColumnPar|RowPar|VocabPar)?\s*"
                     r"(?:chapters|章节)", line)
        if m:  # a tied output projection is the embedding: its shape and dtype are checked against that tensor
            rows[m.group(1)] = ([int(x) for x in m.group(2).split(",") if x.strip()], m.group(3), m.group(5), m.group(4))
    check(len(rows) >= 8, f"{a.log}: {len(rows)} rows in the map's table")
    for name, (shape, dtype, par, tied) in rows.items():
        have = tensors.get(tied or name)
        if check(have is not None, f"{name}: on the map, not in the checkpoint"):
            check(have == (shape, dtype), f"{name}: the map says {shape} {dtype}, wt-inspect {have[0]} {have[1]}")
        short = re.sub(r"^(layers\.0\.)?(attention\.|feed_forward\.)?", "", name).removesuffix(".weight")
        check(par == WANT_PAR.get(short), f"{name}: mark {par}, the sources' {WANT_PAR.get(short)}")
        print(f"ok   {name} {shape} {dtype} {par or ''}")
    for name in tensors:  # the map names every weight of layer 0 and the global ones (experts: expert 0's w1)
        if re.match(r"^layers\.(?!0\.)\d+\.", name) or re.search(r"experts\.\d+\.w[23]|experts\.[1-9]", name):
            continue
        check(name in rows, f"{name}: in the checkpoint, not on the map")

    if a.trace:
        t = json.load(open(os.path.join(a.trace, "trace.json"), encoding="utf-8"))
        cfg = t.get("config") or {}
        for key in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "head_dim"):
            check(str(cfg.get(key)) == config.get(key), f"trace.json config.{key} {cfg.get(key)}, wt-inspect {config.get(key)}")
        check(str(cfg.get("ffn_hidden")) == config.get("ffn_hidden"),
              f"trace.json config.ffn_hidden {cfg.get('ffn_hidden')}, wt-inspect {config.get('ffn_hidden')}")
        for name, dtype in (cfg.get("dtypes") or {}).items():
            check(name in tensors and tensors[name][1] == dtype, f"trace.json config.dtypes {name} {dtype}")
        check(len(cfg.get("dtypes") or {}) == len(rows), f"trace.json names {len(cfg.get('dtypes') or {})} dtypes")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
