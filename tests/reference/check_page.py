#!/usr/bin/env python3
"""check_page.py: opens a page made by build/bin/export-notebook in headless Chromium and checks it against the trace.

    /usr/bin/python3 tests/reference/check_page.py PAGE.html TRACE_DIR --lang en|zh --screenshot OUT.png

From the DOM that Chromium built (--dump-dom), not from the HTML text:
  - <html lang> is the requested language; the chapter list links to every chapter;
  - one <section data-step=ID> per step of trace.json, in order, with a title (Chinese for zh) and an explanation;
  - per section, one table row per tensor (name, the shape from trace.json) and one <img> per image whose data: URI
    decodes to the PNG file byte for byte, and one verdict row per comparison;
  - the page needs nothing outside itself: scripts inline only, no stylesheet link, no http(s) or file reference;
and from Chromium's screenshot (1280x2000): it is not blank (a good share of the pixels are not the background
colour, with many distinct colours). Prints one line per problem; exit 1 if there is any.
Chromium: $CHROMIUM or `chromium`.
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

import numpy as np
import matplotlib.image as mpimg

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL:", msg)


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], []

    def all(self, tag=None):
        for c in self.children:
            if tag is None or c.tag == tag:
                yield c
            yield from c.all(tag)

    def text_content(self):
        return "".join(self.text) + "".join(c.text_content() for c in self.children)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", [], None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text.append(data)


def chromium(args, timeout=120):
    exe = os.environ.get("CHROMIUM", "chromium")
    profile = tempfile.mkdtemp(prefix="l3t-chromium-")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + profile]
    r = subprocess.run([exe] + flags + args, capture_output=True, timeout=timeout)
    subprocess.run(["rm", "-rf", profile])
    return r


def has_cjk(text):
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("trace_dir")
    ap.add_argument("--lang", choices=["en", "zh"], required=True)
    ap.add_argument("--screenshot", required=True)
    args = ap.parse_args()
    with open(os.path.join(args.trace_dir, "trace.json"), encoding="utf-8") as f:
        trace = json.load(f)
    url = "file://" + os.path.abspath(args.page)

    r = chromium(["--dump-dom", url])
    dom = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0 or "<section" not in dom:
        problem("chromium --dump-dom failed (exit %d): %s" % (r.returncode, r.stderr.decode()[-300:]))
        return 1
    tb = TreeBuilder()
    tb.feed(dom)
    root = tb.root

    html = next(root.all("html"), None)
    want_lang = "zh-CN" if args.lang == "zh" else "en"
    if html is None or html.attrs.get("lang") != want_lang:
        problem("<html lang> is %r, expected %r" % (html.attrs.get("lang") if html else None, want_lang))
    for sc in root.all("script"):  # inline only: the page's explorer (page_explorer.js) and its JSON data
        if "src" in sc.attrs:
            problem("the page loads a script from %r" % sc.attrs["src"][:80])
    for n in root.all():
        for k in ("src", "href"):
            v = n.attrs.get(k)
            if v and not (v.startswith("#") or v.startswith("data:")):
                problem("<%s %s=%r> points outside the page" % (n.tag, k, v[:80]))
    if re.search(r"url\((?!data:)", dom) or "@import" in dom:
        problem("the style sheet loads something from outside the page")

    nav_links = [a.attrs.get("href") for nav in root.all("nav") for a in nav.all("a")]
    sections = [s for s in root.all("section") if "data-step" in s.attrs]
    ids = [s["id"] for s in trace["steps"]]
    if [s.attrs["data-step"] for s in sections] != ids:
        problem("sections %s, expected %s" % ([s.attrs["data-step"] for s in sections], ids))
    by_id = {s.attrs["data-step"]: s for s in sections}
    for st in trace["steps"]:
        sid = st["id"]
        if "#ch-" + sid not in nav_links:
            problem("%s: not in the chapter list" % sid)
        sec = by_id.get(sid)
        if sec is None:
            continue
        if sec.attrs.get("id") != "ch-" + sid:
            problem("%s: section id is %r" % (sid, sec.attrs.get("id")))
        h2 = next(sec.all("h2"), None)
        title = h2.text_content().strip() if h2 else ""
        if len(title) < len(sid) + 3:
            problem("%s: no title" % sid)
        if args.lang == "zh" and not has_cjk(title) and sid[:2] <= "16":
            problem("%s: title %r is not Chinese" % (sid, title))
        explain = [d for d in sec.all("div") if "explain" in d.attrs.get("class", "")]
        text = explain[0].text_content() if explain else ""
        if len(text.strip()) < 60 or (args.lang == "zh") != has_cjk(text):
            problem("%s: the explanation is missing or not in %s" % (sid, args.lang))

        rows = [tr for t in sec.all("table") if "tensors" in t.attrs.get("class", "") for tr in t.all("tr")
                if "data-file" in tr.attrs]
        if len(rows) != len(st.get("tensors", [])):
            problem("%s: %d tensor rows, the trace has %d tensors" % (sid, len(rows), len(st.get("tensors", []))))
        for tr, t in zip(rows, st.get("tensors", [])):
            cells = [td.text_content().strip() for td in tr.all("td")]
            shape = "[" + ", ".join(str(d) for d in t["shape"]) + "]"
            if tr.attrs["data-file"] != t["file"] or not cells or cells[0] != t["name"] or cells[1] != shape:
                problem("%s: tensor row %s, expected %s %s" % (sid, cells[:2], t["name"], shape))
            for col, key in ((3, "min"), (4, "max"), (5, "mean")):
                v = t.get(key)
                shown = cells[col] if len(cells) > col else ""
                if v is None:
                    ok = shown in ("–", "-")
                else:
                    try:
                        ok = abs(float(shown) - v) <= 1e-3 * abs(v) + 1e-300
                    except ValueError:
                        ok = False
                if not ok:
                    problem("%s: %s %s shown as %r, trace.json says %r" % (sid, t["name"], key, shown, v))

        imgs = list(sec.all("img"))
        if len(imgs) != len(st.get("images", [])):
            problem("%s: %d images, the trace has %d" % (sid, len(imgs), len(st.get("images", []))))
        for img, im in zip(imgs, st.get("images", [])):
            src = img.attrs.get("src", "")
            with open(os.path.join(args.trace_dir, im["file"]), "rb") as f:
                want = f.read()
            if not src.startswith("data:image/png;base64,") or base64.b64decode(src.split(",", 1)[1]) != want:
                problem("%s: the image of %s is not embedded byte for byte" % (sid, im["file"]))

        verdicts = [tr for t in sec.all("table") if "verdicts" in t.attrs.get("class", "") for tr in t.all("tr")
                    if next(tr.all("td"), None) is not None]
        if len(verdicts) != len(st.get("comparisons", [])):
            problem("%s: %d verdict rows, the trace has %d comparisons" % (sid, len(verdicts),
                                                                          len(st.get("comparisons", []))))
        for tr, c in zip(verdicts, st.get("comparisons", [])):
            cells = [td.text_content().strip() for td in tr.all("td")]
            if cells[0] != c["name"] or c["verdict"] not in cells[-1]:
                problem("%s: verdict row %s, expected %s %s" % (sid, cells, c["name"], c["verdict"]))

    # the screenshot
    shot = os.path.abspath(args.screenshot)
    if os.path.exists(shot):
        os.unlink(shot)
    r = chromium(["--screenshot=" + shot, "--window-size=1280,2000", "--hide-scrollbars", url])
    if r.returncode != 0 or not os.path.exists(shot):
        problem("chromium --screenshot failed (exit %d): %s" % (r.returncode, r.stderr.decode()[-300:]))
    else:
        img = mpimg.imread(shot)  # float RGB(A) in 0..1
        if img.shape[0] < 1000 or img.shape[1] < 1000:
            problem("screenshot is %dx%d, expected 1280x2000" % (img.shape[1], img.shape[0]))
        rgb = (img[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
        colours, counts = np.unique(rgb, axis=0, return_counts=True)
        background = counts.max() / len(rgb)
        ink = ((rgb.astype(int).sum(axis=1)) < 300).mean()  # dark pixels: text
        print("screenshot %s: %d colours, background %.0f%%, dark pixels %.1f%%" % (shot, len(colours),
                                                                                    100 * background, 100 * ink))
        if len(colours) < 64 or background > 0.97 or ink < 0.005:
            problem("the screenshot looks blank (%d colours, %.1f%% background, %.2f%% dark)" % (
                len(colours), 100 * background, 100 * ink))
    print("%s: %d sections, %d problems" % (args.page, len(sections), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
