#!/usr/bin/env python3
"""check_notebook.py: checks a notebook made by build/bin/export-notebook against the trace it came from.

    /usr/bin/python3 tests/reference/check_notebook.py NOTEBOOK TRACE_DIR --lang en|zh [--execute] [--executed-out F]

Checks, from trace.json and the files of the trace (not from anything the exporter says about itself):
  - nbformat validates the file (nbformat 4);
  - one section per step, in the order of trace.json, each with its anchor, a title and an explanation in the
    requested language (Chinese text for zh, none for en);
  - the "printed" cell of each step holds exactly the step's printed lines;
  - every tensor of the trace is loaded by a numpy cell (load("step", "name")), whose filled-in output line has the
    .npy's real shape and dtype (read here with numpy) and the trace's statistics;
  - every image of the trace is embedded as an output, byte for byte the PNG file;
  - the verdict cell names every comparison with its verdict;
  - nothing in the code cells imports anything but numpy, matplotlib and the standard library.
With --execute, runs the notebook top to bottom with nbconvert's ExecutePreprocessor (in the notebook's folder) and
checks: no error; the printed and numpy cells print what was filled in (numbers to the 4 digits shown); every figure
cell draws one image. Prints one line per problem; exit 1 if there is any.
"""
import argparse
import base64
import copy
import json
import os
import re
import sys

import numpy as np
import nbformat

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL:", msg)


def has_cjk(text):
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def output_text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def pngs(cell):
    return [o["data"]["image/png"] for o in cell.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]


DESCRIBE = re.compile(r"^(\S+)\s+(\(.*?\))\s+(\S+)\s+(.*)$")


def parse_describe(line):
    """name, shape, dtype, [numbers] of a describe() line."""
    m = DESCRIBE.match(line)
    if not m:
        return None
    numbers = [float(x) for x in re.findall(r"(?:min|max|mean|non-finite)\s+(\S+)", m.group(4))]
    return m.group(1), m.group(2), m.group(3), numbers


def close(a, b):
    # the line shows 4 significant digits: one unit in the last digit is the most two correct roundings can differ
    return abs(a - b) <= 1.5e-3 * max(abs(a), abs(b)) + 1e-300


def sections(nb, trace):
    """{step id: [cells of its section]} using the anchors <a id="ch-ID">; also the order the anchors appear in."""
    out, order, current = {}, [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r'<a id="ch-([^"]+)"></a>', cell.source)
            if m:
                current = m.group(1)
                order.append(current)
                out[current] = []
        if current is not None:
            out[current].append(cell)
    return out, order


def check_static(nb, trace, trace_dir, lang):
    steps = trace["steps"]
    secs, order = sections(nb, trace)
    ids = [s["id"] for s in steps]
    if order != ids:
        problem("sections %s, expected the trace's steps in order %s" % (order, ids))
    meta = nb.metadata.get("llama3_trace", {})
    if meta.get("lang") != lang:
        problem("metadata.llama3_trace.lang is %r, expected %r" % (meta.get("lang"), lang))
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for m in re.finditer(r"^\s*(?:import|from)\s+([A-Za-z_.]+)", code, re.M):
        if m.group(1).split(".")[0] not in ("json", "os", "numpy", "matplotlib"):
            problem("the notebook imports %s (only numpy, matplotlib and the standard library are allowed)" % m.group(1))
    if re.search(r"^\s*(?!#)[^#\n]*\btorch\.", code, re.M):
        problem("a code cell runs torch (the tutorial's lines must stay comments)")

    for s in steps:
        sid = s["id"]
        cells = secs.get(sid)
        if cells is None:
            continue
        md = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        heading = [l for l in md.splitlines() if l.startswith("## ")]
        if not heading:
            problem("%s: no '## ' title" % sid)
        elif lang == "zh" and not has_cjk(heading[0]) and sid[:2] <= "16":
            problem("%s: title %r is not in Chinese" % (sid, heading[0]))
        body = md.split("\n", 5)[-1]
        if lang == "zh" and not has_cjk(md):
            problem("%s: no Chinese text in the section" % sid)
        if lang == "en" and has_cjk(md):
            problem("%s: Chinese text in the English notebook" % sid)
        if len(body.strip()) < 80:
            problem("%s: the explanation is missing or too short" % sid)

        # printed lines
        want = "".join(l + "\n" for l in s.get("lines", []))
        printed = [c for c in cells if c.cell_type == "code" and c.source.startswith("printed(")]
        if want and (len(printed) != 1 or output_text(printed[0]) != want):
            problem("%s: the printed cell does not hold the step's %d printed lines" % (sid, len(s["lines"])))

        # tensors: the load calls and the filled-in describe lines, against the .npy files themselves
        described = {}
        for c in cells:
            if c.cell_type == "code" and "describe(" in c.source:
                for line in output_text(c).splitlines():
                    p = parse_describe(line)
                    if p:
                        described[p[0]] = p
        for t in s.get("tensors", []):
            call = 'load("%s", "%s")' % (sid, t["name"])
            if not any(call in c.source for c in cells if c.cell_type == "code"):
                problem("%s: no cell loads %s" % (sid, t["name"]))
                continue
            a = np.load(os.path.join(trace_dir, t["file"]), mmap_mode="r")
            d = described.get(t["name"])
            if not d:
                problem("%s: no filled-in output describes %s" % (sid, t["name"]))
                continue
            if d[1] != str(tuple(int(x) for x in a.shape)) or d[2] != str(a.dtype):
                problem("%s: %s is described as %s %s, the .npy is %s %s" % (sid, t["name"], d[1], d[2],
                                                                            tuple(a.shape), a.dtype))
            stats = [t[k] for k in ("min", "max", "mean") if t.get(k) is not None]
            nonfinite = t.get("n_nan", 0) + t.get("n_inf", 0)
            if nonfinite:
                stats.append(nonfinite)
            if len(stats) != len(d[3]) or not all(close(x, y) for x, y in zip(stats, d[3])):
                problem("%s: %s statistics %s, trace.json says %s" % (sid, t["name"], d[3], stats))

        # images, byte for byte
        embedded = [base64.b64decode(p) for c in cells if c.cell_type == "code" for p in pngs(c)]
        for im in s.get("images", []):
            with open(os.path.join(trace_dir, im["file"]), "rb") as f:
                data = f.read()
            if data not in embedded:
                problem("%s: %s is not embedded (byte for byte)" % (sid, im["file"]))
        if len(embedded) != len(s.get("images", [])):
            problem("%s: %d images embedded, the trace has %d" % (sid, len(embedded), len(s.get("images", []))))

        # verdicts
        rows = [re.sub(r"\\(.)", r"\1", l) for l in md.splitlines() if l.startswith("| ")]  # markdown unescaped
        for cmp_ in s.get("comparisons", []):
            if not any(cmp_["name"] in l and cmp_["verdict"] in l.split("|")[-2] for l in rows):
                problem("%s: comparison %r with verdict %s not shown" % (sid, cmp_["name"], cmp_["verdict"]))


def check_executed(nb, ran):
    for before, after in zip(nb.cells, ran.cells):
        if before.cell_type != "code":
            continue
        errors = [o for o in after.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            problem("cell %s raised %s" % (before.get("id"), errors[0].get("ename")))
        src = before.source
        if src.startswith("printed(") and output_text(before) != output_text(after):
            problem("cell %s (%s): printed output differs after running" % (before.get("id"), src))
        if "describe(" in src:
            a = [parse_describe(l) for l in output_text(before).splitlines()]
            b = [parse_describe(l) for l in output_text(after).splitlines()]
            if len(a) != len(b) or any(x is None or y is None for x, y in zip(a, b)):
                problem("cell %s: %d describe lines filled in, %d printed when run" % (before.get("id"), len(a), len(b)))
                continue
            for x, y in zip(a, b):
                if x[:3] != y[:3] or len(x[3]) != len(y[3]) or not all(close(u, v) for u, v in zip(x[3], y[3])):
                    problem("cell %s: filled in %s, running prints %s" % (before.get("id"), x, y))
        if pngs(before) and len(pngs(after)) != len(pngs(before)):
            problem("cell %s: %d figures filled in, %d drawn when run" % (before.get("id"), len(pngs(before)),
                                                                        len(pngs(after))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("trace_dir")
    ap.add_argument("--lang", choices=["en", "zh"], required=True)
    ap.add_argument("--execute", action="store_true")
    ap.add_argument("--executed-out")
    args = ap.parse_args()
    with open(os.path.join(args.trace_dir, "trace.json"), encoding="utf-8") as f:
        trace = json.load(f)
    nb = nbformat.read(args.notebook, as_version=4)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        problem("nbformat: %s" % str(e).splitlines()[0])
    check_static(nb, trace, args.trace_dir, args.lang)
    if args.execute:
        from nbconvert.preprocessors import ExecutePreprocessor, CellExecutionError
        ran = copy.deepcopy(nb)
        ep = ExecutePreprocessor(timeout=900, kernel_name="python3")
        try:
            ep.preprocess(ran, {"metadata": {"path": os.path.dirname(os.path.abspath(args.notebook))}})
        except CellExecutionError as e:
            problem("execution failed: %s" % str(e).strip().splitlines()[-1])
        else:
            check_executed(nb, ran)
            if args.executed_out:
                nbformat.write(ran, args.executed_out)
    n_cells = len(nb.cells)
    print("%s: %d cells, %d steps, %d problems" % (args.notebook, n_cells, len(trace["steps"]), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
