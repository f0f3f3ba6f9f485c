#!/usr/bin/env bash
# test_figures.sh: renders every figure of the walkthrough from realistic data (17 tutorial tokens with
# <|begin_of_text|>, a 17x17 causal matrix, 64 complex rays, a 32-head grid and the demo's 4-head one, a 32-layer
# line chart, top-10 bars, Chinese labels, 120 tokens) with build/tests/test_png_draw --render, and checks each PNG
# with an independent decoder (tests/reference/check_png.py: chunks with zlib + struct, pixels with Pillow, not
# libpng): size, colours, margins (nothing at the edge, no wide empty band), and for the heatmaps and grids a token
# label beside every labelled row and column.
# Then checks a sample trace directory in Python: every tensor's .npy against the min/max/mean/std and FNV-1a
# checksum that trace.json records; and that a bad trace.json is refused with exit 2.
# expect: 11 s
source tests/lib.sh

RENDER=build/tests/test_png_draw
TRACE=build/tests/test_trace
CHECK_PNG="$PY tests/reference/check_png.py"
for bin in "$RENDER" "$TRACE"; do
    [ -x "$bin" ] || { echo "missing $bin: run make first" >&2; no "built $bin"; finish; exit 1; }
done

check "render every figure" "$RENDER" --render "$TMP/figs"
# name  min size  max size  min colours
while read -r name min max colors; do
    check "$name" $CHECK_PNG "$TMP/figs/$name.png" --min-size "$min" --max-size "$max" --min-colors "$colors" --max-bytes 400000
done <<'LIST'
heatmap_scores   800x800   1600x1400  200
heatmap_masked   800x800   1600x1400  200
heatmap_softmax  800x800   1600x1400  200
heatmap_compare  1200x500  2400x1200  200
complex_rays     700x700   1400x1200  200
heatmap_grid     800x600   1800x1400  200
heatmap_grid4    800x400   1800x1000  200
line_chart       700x400   1600x1000  50
bar_chart        500x300   1400x1000  4
heatmap_zh       700x700   1600x1400  200
heatmap_120      800x800   2600x2600  200
LIST
check "no .partial files left" test -z "$(find "$TMP/figs" -name '*.partial')"

# Layout: nothing within 6 px of an edge and no empty margin wider than 90 px (48 px for the grids of heads, which
# once had large empty corners); the token labels of every heatmap and grid beside each labelled row and under each
# labelled column (where the driver's layout.txt says the maps are).
for f in "$TMP"/figs/*.png; do
    name=$(basename "$f" .png); max=90; [[ "$name" == heatmap_grid* ]] && max=48
    check "$name: margins" $CHECK_PNG "$f" --margin 6 --max-margin "$max" --min-colors 4
done
check "layout.txt lists the 7 heatmaps and grids" test "$(wc -l <"$TMP/figs/layout.txt")" -eq 7
while read -r name rows cols map_x map_y cell y_step x_step y_end x_top; do
    check "$name: token labels on every labelled row and column" $CHECK_PNG "$TMP/figs/$name.png" \
        --labels "$rows,$cols,$map_x,$map_y,$cell,$y_step,$x_step,$y_end,$x_top"
done <"$TMP/figs/layout.txt"
read -r name rows cols map_x map_y cell y_step x_step y_end x_top < <(grep '^heatmap_grid4 ' "$TMP/figs/layout.txt")
check "the demo's 4-head grid labels every token (cells of 17 px or more)" test "$y_step" -eq 1 -a "$x_step" -eq 1
# the same figure with the y labels painted over (white), and with the x labels painted over: the check must fail
$PY - "$TMP/figs/$name.png" "$TMP/no_ylabels.png" "$TMP/no_xlabels.png" "$y_end" "$x_top" <<'PY'
import struct, sys, zlib
sys.path.insert(0, "tests/reference")
from check_png import read_png
w, h, ch, px, _ = read_png(sys.argv[1])
y_end, x_top = int(sys.argv[4]), int(sys.argv[5])
def save(path, img):
    raw = b"".join(b"\x00" + img[y, :, :3].tobytes() for y in range(h))
    def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
a = px.copy(); a[:, 40:y_end - 5] = 255; save(sys.argv[2], a)
b = px.copy(); b[x_top + 5:, :] = 255; save(sys.argv[3], b)
PY
check_fails 1 "no label beside row 0" "the label check fails on the grid with its y labels painted over" \
    $CHECK_PNG "$TMP/no_ylabels.png" --labels "$rows,$cols,$map_x,$map_y,$cell,$y_step,$x_step,$y_end,$x_top"
check_fails 1 "no label beside column 0" "the label check fails on the grid with its x labels painted over" \
    $CHECK_PNG "$TMP/no_xlabels.png" --labels "$rows,$cols,$map_x,$map_y,$cell,$y_step,$x_step,$y_end,$x_top"
check_fails 2 "usage" "render driver rejects an unknown flag" "$RENDER" --bogus
check "render driver --help" "$RENDER" --help

# A blank or one-colour image must fail the checker (the checker can fail).
$PY - "$TMP/blank.png" <<'PY'
import struct, sys, zlib
w, h = 300, 200
raw = b"".join(b"\x00" + b"\xff" * (3 * w) for _ in range(h))
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
check_fails 1 "distinct colours" "checker refuses a blank image" $CHECK_PNG "$TMP/blank.png"
# ... an image drawn up to its edge, and one with a wide empty margin
$PY - "$TMP/edge.png" "$TMP/wide.png" <<'PY'
import struct, sys, zlib
def png(path, w, h, ink):
    rows = b"".join(b"\x00" + b"".join(b"\x20\x20\x20" if ink(x, y) else b"\xff\xff\xff" for x in range(w)) for y in range(h))
    def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
png(sys.argv[1], 200, 100, lambda x, y: x < 3 or (x + y) % 7 == 0)   # ink at the left edge
png(sys.argv[2], 200, 100, lambda x, y: 20 <= x < 60 and 20 <= y < 80 and (x + y) % 3 == 0)  # 140 px empty right
PY
check_fails 1 "within 6 px of the edge" "the margin check refuses a drawing that touches the edge" \
    $CHECK_PNG "$TMP/edge.png" --margin 6 --min-colors 2
check_fails 1 "empty margins wider than 90 px: \{'right': 140\}" "the margin check refuses a wide empty margin" \
    $CHECK_PNG "$TMP/wide.png" --max-margin 90 --min-colors 2
head -c 200 "$TMP/figs/heatmap_scores.png" > "$TMP/cut.png"
check_fails 1 "truncated|Error" "checker refuses a truncated PNG" $CHECK_PNG "$TMP/cut.png"

# trace.json: the stats it records are those of the .npy files it names.
check "write a sample trace" "$TRACE" --write "$TMP/trace"
check "trace stats match the .npy files" $PY - "$TMP/trace" <<'PY'
import json, os, sys
import numpy as np
out = sys.argv[1]
t = json.load(open(os.path.join(out, "trace.json")))
assert t["format"] == "llama3-trace/1", t["format"]
assert len(t["tokens"]["ids"]) == 17 and t["tokens"]["pieces"][0] == "<|begin_of_text|>"
ids = [s["id"] for s in t["steps"]]
assert ids == sorted(ids), ids
n = 0
for step in t["steps"]:
    for rec in step["tensors"]:
        a = np.load(os.path.join(out, rec["file"]))
        assert a.dtype == np.float32 and list(a.shape) == rec["shape"], (rec["name"], a.dtype, a.shape)
        h = 0xcbf29ce484222325
        for byte in a.astype("<f4").tobytes():
            h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        assert rec["checksum"] == "fnv1a64:%016x" % h, (rec["name"], rec["checksum"], "%016x" % h)
        finite = a[np.isfinite(a)].astype(np.float64)
        assert rec["n_inf"] == int(np.isinf(a).sum()) and rec["n_nan"] == int(np.isnan(a).sum())
        for key, want in (("min", finite.min()), ("max", finite.max()), ("mean", finite.mean()), ("std", finite.std())):
            assert abs(rec[key] - want) <= 1e-7 * max(1.0, abs(want)), (rec["name"], key, rec[key], want)
        n += 1
assert n >= 3, n
print(n, "tensors checked")
PY
mkdir -p "$TMP/bad"
echo '{"steps": [' > "$TMP/bad/trace.json"
check_fails 2 "trace.json.*not valid JSON" "a trace.json that is not JSON is refused" "$TRACE" --write "$TMP/bad"
echo '{"format": "llama3-trace/1", "steps": {}}' > "$TMP/bad/trace.json"
check_fails 2 "trace.json: steps: expected an array" "a trace.json that is not a trace is refused" "$TRACE" --write "$TMP/bad"
finish
