#!/usr/bin/env python3
"""check_map_nav.py: checks what tests/browser/map.js saw when it followed the page's map in Chromium.

    check_map_nav.py REPORT.json PAGE.html

Checks, one line each: the page has one map; it needed nothing from the network and logged no error; the map links
every chapter section of the page (found in the HTML here, not taken from the report) and nothing else; each link
was clicked where its label is (not covered by another box), and the page went there: location.hash is the link's and
the section's top is at the top of the viewport (or the page is scrolled to its end, with the section in view);
every chapter but 00 has a small map that leads back to the map at the top.
Prints "N passed, N failed"; exit 1 when one failed.
"""
import json
import re
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


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_map_nav.py REPORT.json PAGE.html")
    r = json.load(open(sys.argv[1], encoding="utf-8"))
    page = open(sys.argv[2], encoding="utf-8").read()
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
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
