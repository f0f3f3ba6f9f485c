#!/usr/bin/env bash
# test_diagram.sh: the map (common/draw/diagram.c) end to end.
#
# 1. build/tests/test_diagram --render draws the whole map of Llama-3-8B (EN, ZH), of a MoE model and without model
#    facts, and the small map of every chapter: each PNG decodes (tests/reference/check_png.py) at the expected size.
# 2. 00_config on the demo model, the synthetic tiny model and the MoE demo model (gate, experts, shared experts):
#    the shapes and dtypes of its map table equal what wt-inspect reads from the checkpoint, and trace.json's "config"
#    (what the page draws) has the same sizes
#    (tests/reference/check_map.py; the 8B-width model is checked the same way in test_walkthrough.sh). The tiny model
#    converted to HF with tied embeddings (no lm_head): the output projection's row is tok_embeddings.weight's.
# 3. Chapters 01, 04 and 09: the first line each prints names its box ("where: ... › Wq"), and where.png is there.
# 4. export-notebook on that trace: the page holds one <svg class="map">, well-formed XML (parsed with Python's xml
#    module), whose every link points at a chapter section of the page, and which links every section; each section
#    shows its where.png at the top; the notebook shows it too. The same for --lang zh.
# 5. The checker fails on a map row with a wrong shape (the tied output's too), and on a page whose map links a
#    missing chapter.
# 6. In Chromium (tests/browser/map.js, puppeteer-core): clicking the map reaches every chapter section, and each
#    chapter's small map leads back to the map (tests/reference/check_map.py --nav).
# expect: 53 s
source tests/lib.sh
DRIVER=build/tests/test_diagram
DEMO=build/models/llama3-tiny-trained
TINY=build/models/tiny
MOE=build/models/llama3-tiny-moe
CHECK_PNG="$PY tests/reference/check_png.py"
for f in "$DRIVER" build/steps/00_config build/bin/export-notebook build/bin/wt-inspect "$DEMO/params.json" "$TINY/params.json" \
    "$MOE/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done

# ---- 1. the pictures ------------------------------------------------------------------------------------------------
mkdir -p "$TMP/r"
check "render the maps" "$DRIVER" --render "$TMP/r"
for name in architecture_8b architecture_8b_zh architecture_moe architecture_symbols; do
    check "$name.png: 1280x1976, drawn" $CHECK_PNG "$TMP/r/$name.png" --min-size 1280x1976 --max-size 1280x1976 --min-colors 50
done
for f in "$TMP"/r/where_*.png; do
    check "$(basename "$f"): 512x790, drawn" $CHECK_PNG "$f" --min-size 512x790 --max-size 512x790 --min-colors 20
done
check "21 small maps for each of en, zh, MoE" test "$(ls "$TMP"/r/where_*.png | wc -l)" -eq 63
check "the SVGs of the driver are well-formed XML" $PY -c '
import sys, xml.etree.ElementTree as ET
for f in sys.argv[1:]:
    root = ET.parse(f).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
' "$TMP/r/map_8b.svg" "$TMP/r/map_symbols.svg"

# ---- 2. the shapes on the map are the checkpoint's ---------------------------------------------------------------------
for model in "$DEMO" "$TINY" "$MOE"; do
    m=$(basename "$model")
    check "00_config on $m" bash -c '"$1" --model "$2" --out "$3" --device cpu > "$4"' _ build/steps/00_config "$model" \
        "$TMP/t_$m" "$TMP/00_$m.log"
    check "$m: the map's shapes and dtypes = wt-inspect's; trace.json config too" \
        $PY tests/reference/check_map.py "$TMP/00_$m.log" "$model" --trace "$TMP/t_$m"
    check "$m: architecture.png 1280x1976" $CHECK_PNG "$TMP/t_$m/00_config/architecture.png" --min-size 1280x1976 \
        --max-size 1280x1976 --min-colors 50
done
check "00_config names the map as its figure" grep -q "architecture.png" "$TMP/00_llama3-tiny-trained.log"
# a tied model (HF tie_word_embeddings, no lm_head): the output projection's row is the embedding's tensor
TIED="$TMP/tied"
check "the tiny model as HF with tied embeddings" $PY tests/reference/hf_cases.py meta-to-hf-py "$TINY" "$TIED" --tied
check "00_config on the tied model" bash -c '"$1" --model "$2" --tokenizer "$3" --out "$4" --device cpu > "$5"' _ \
    build/steps/00_config "$TIED" build/models/tokenizer.model "$TMP/t_tied" "$TMP/00_tied.log"
check "tied: the output row says it is tok_embeddings.weight" \
    grep -q "  output.weight \[128256, 512\] bf16 (tied: tok_embeddings.weight)  *ColumnPar" "$TMP/00_tied.log"
check "tied: the map's shapes and dtypes = wt-inspect's (output = the embedding)" \
    $PY tests/reference/check_map.py "$TMP/00_tied.log" "$TIED" --trace "$TMP/t_tied"

# ---- 3. every chapter starts by naming its box -----------------------------------------------------------------------
TR="$TMP/t_llama3-tiny-trained"
for s in 01_tokenize 04_query 09_softmax; do
    check "$s runs" bash -c '"$1" --model "$2" --out "$3" --device cpu > "$4"' _ "build/steps/$s" "$DEMO" "$TR" "$TMP/$s.log"
    check "$s: where.png 512x790" $CHECK_PNG "$TR/$s/where.png" --min-size 512x790 --max-size 512x790 --min-colors 20
done
check "the first recorded line of each chapter names its box" $PY - "$TR" <<'PY'
import json, os, sys
t = json.load(open(os.path.join(sys.argv[1], "trace.json")))
want = {"00_config": "where: params.json", "01_tokenize": "where: Input: tokens",
        "04_query": "where: Transformer block × 4 › Multi-head attention (GQA) › Wq",
        "09_softmax": "where: Transformer block × 4 › Multi-head attention (GQA) › softmax(scores)"}
for s in t["steps"]:
    first = s["lines"][0]
    assert first.startswith(want[s["id"]]), (s["id"], first)
    imgs = [i["file"] for i in s["images"]]
    assert (s["id"] + "/where.png" in imgs) == (s["id"] != "00_config"), (s["id"], imgs)
print("ok")
PY
check "04_query prints the line first, after the header" bash -c 'sed -n 4p "$1" | grep -q "^where: .* › Wq   \[where.png\]$"' _ "$TMP/04_query.log"
check "--quiet prints no map line" bash -c '! "$1" --model "$2" --out "$3" --device cpu --quiet | grep -q where:' _ \
    build/steps/04_query "$DEMO" "$TMP/quiet"
check "--lang zh names the box in Chinese" bash -c '"$1" --model "$2" --out "$3" --device cpu --lang zh | grep -q "^位置: .*多头注意力"' _ \
    build/steps/04_query "$DEMO" "$TMP/zh"

# ---- 4. the page and the notebook ---------------------------------------------------------------------------------------
check_page_map() {  # PAGE TRACE: the inline SVG parses, links every chapter section, links nothing else
    $PY - "$1" "$2" <<'PY'
import json, os, re, sys, xml.etree.ElementTree as ET
page = open(sys.argv[1], encoding="utf-8").read()
steps = [s["id"] for s in json.load(open(os.path.join(sys.argv[2], "trace.json")))["steps"]]
svgs = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="map".*?</svg>', page, re.S)
assert len(svgs) == 1, "%d maps in the page" % len(svgs)
root = ET.fromstring(svgs[0])  # well-formed, or this raises
ns = "{http://www.w3.org/2000/svg}"
hrefs = [a.get("href") for a in root.iter(ns + "a")]
sections = re.findall(r'<section class="chapter" id="([^"]+)"', page)
assert sections == ["ch-" + s for s in steps], sections
bad = [h for h in hrefs if not h or h[1:] not in sections]
assert not bad, "links to no section: %s" % bad
assert re.search(r'<section class="map" id="map">\s*<h2>[^<]+</h2>\s*<p class="map-intro">[^<]+</p>\s*<div class="map-svg">\s*<svg ',
                 page), "the map is not in a section with id map (the small maps link there)"
missing = [s for s in sections if "#" + s not in hrefs]
assert not missing, "sections the map does not link: %s" % missing
# each section starts with its small map (00: none, it has the whole map among its figures)
for s in steps:
    body = page.split('id="ch-%s"' % s, 1)[1].split("</section>", 1)[0]
    has = re.search(r'<figure class="where"><a href="#map"><img [^>]*data-file="%s/where.png"' % s, body) is not None
    assert has == (s != "00_config"), (s, has)
print("ok: %d links, %d sections" % (len(hrefs), len(sections)))
PY
}
check "export-notebook (en)" build/bin/export-notebook "$TR"
check "the page's map: well-formed SVG, links resolve to every chapter section" check_page_map "$TR/index.html" "$TR"
check "the notebook shows where.png right after the explanation" $PY - "$TR/walkthrough.ipynb" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
cells = nb["cells"]
n = 0
for i, c in enumerate(cells):
    if c["cell_type"] == "code" and "".join(c["source"]).startswith('show_png("04_query/where.png")'):
        assert cells[i - 1]["cell_type"] == "markdown" and "04_query" in "".join(cells[i - 1]["source"])
        assert any("image/png" in o.get("data", {}) for o in c["outputs"])
        n += 1
assert n == 1, n
print("ok")
PY
check "export-notebook (zh)" build/bin/export-notebook "$TR" --lang zh
check "the zh page's map: well-formed SVG, links resolve to every chapter section" check_page_map "$TR/index_zh.html" "$TR"
check "the zh page's map is in Chinese" grep -q "多头注意力" "$TR/index_zh.html"

# ---- 5. the checkers fail when they must ---------------------------------------------------------------------------------
fails() { local what="$1"; shift; if "$@" >"$TMP/out" 2>&1; then no "$what: passed"; elif [ $? -eq 1 ]; then ok; else no "$what: exit $?"; fi; }
sed 's/\(layers\.0\.attention\.wk\.weight\) \[128, 512\]/\1 [512, 512]/' "$TMP/00_llama3-tiny-trained.log" > "$TMP/bad.log"
check "the tampered log differs" bash -c '! cmp -s "$1" "$2"' _ "$TMP/bad.log" "$TMP/00_llama3-tiny-trained.log"
fails "check_map fails on a wrong shape" $PY tests/reference/check_map.py "$TMP/bad.log" "$DEMO"
grep -v "layers.0.attention.wv.weight" "$TMP/00_llama3-tiny-trained.log" > "$TMP/bad2.log"
fails "check_map fails when a weight is missing from the map" $PY tests/reference/check_map.py "$TMP/bad2.log" "$DEMO"
sed 's/^\(  Output projection  *output\.weight\) \[128256, 512\]/\1 [128256, 511]/' "$TMP/00_tied.log" > "$TMP/bad3.log"
check "the tampered tied log differs" bash -c '! cmp -s "$1" "$2"' _ "$TMP/bad3.log" "$TMP/00_tied.log"
fails "check_map fails on a wrong shape of the tied output row" $PY tests/reference/check_map.py "$TMP/bad3.log" "$TIED"
sed 's/href="#ch-04_query"/href="#ch-44_nowhere"/' "$TR/index.html" > "$TMP/bad.html"
fails "the page check fails on a link to a missing chapter" check_page_map "$TMP/bad.html" "$TR"
sed 's|</text>|</tekst>|' "$TR/index.html" > "$TMP/bad2.html"
fails "the page check fails on a map that is not well-formed" check_page_map "$TMP/bad2.html" "$TR"

# ---- 6. in a browser: the map navigates to every chapter, each small map back to the map ---------------------------
# tests/browser/map.js drives Debian's chromium through puppeteer-core (tests/browser/setup.sh installs what is missing,
# as for the page's other browser test, tests/test_page_explorer.sh).
source tests/browser/setup.sh
if browser_ready; then
    mkdir -p build/test-logs  # the screenshots stay there (tests/run.sh makes it; a script run alone may not have it)
    for lang in en zh; do
        page="$TR/index.html"; [ $lang = zh ] && page="$TR/index_zh.html"
        check "map.js follows every link of the map ($lang)" bash -c 'node tests/browser/map.js "$1" "$2" > "$3"' _ "$page" \
            "build/test-logs/page_map_$lang.png" "$TMP/nav_$lang.json"
        check "every chapter reached from the map, every small map leads back ($lang)" \
            $PY tests/reference/check_map.py --nav "$TMP/nav_$lang.json" "$page"
    done
    $PY - "$TMP/nav_en.json" "$TMP/nav_bad.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["links"] = r["links"][1:]                # a chapter the map did not reach
r["back"][0]["hash"] = "#ch-00_config"     # a small map that leads elsewhere
json.dump(r, open(sys.argv[2], "w"))
PY
    fails "check_map --nav fails on a chapter the map does not reach" $PY tests/reference/check_map.py --nav "$TMP/nav_bad.json" "$TR/index.html"
fi
finish
