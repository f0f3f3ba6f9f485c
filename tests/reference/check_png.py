#!/usr/bin/env python3
"""check_png.py: checks a PNG written by llama3-trace, decoding it here with zlib + struct only (no imaging library).

    check_png.py FILE [--min-size WxH] [--max-size WxH] [--max-bytes N] [--min-colors N] [--min-ink F]
                      [--margin N] [--max-margin N] [--labels ROWS,COLS,MAP_X,MAP_Y,CELL,Y_STEP,X_STEP,Y_END,X_TOP]

Verifies the chunk structure and every CRC, that the image is 8-bit RGB or RGBA and decodes (all five PNG row
filters), then the limits: size in pixels, file size, number of distinct colours (a blank or one-colour image
fails), and the share of "ink" pixels (darker than light grey). Layout, when asked:
  --margin N      the outer N pixels on every side are background (white): nothing touches the edge;
  --max-margin N  something is drawn within N pixels of every edge: no large empty margin;
  --labels ...    a heatmap's token labels (the numbers test_png_draw --render writes to layout.txt): every Y_STEP-th
                  row of the map has ink in the strip left of Y_END (where the y labels end) at its height, and every
                  X_STEP-th column has ink just below X_TOP (where the x labels start) near its centre.
Prints one line; exits 0 when every check holds, 1 when one fails, 2 on bad usage.
"""
import struct
import sys
import zlib

import numpy as np


def fail(msg):
    print(f"FAIL {msg}", file=sys.stderr)
    sys.exit(1)


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path}: not a PNG signature")
    pos, chunks = 8, []
    while pos < len(data):
        if pos + 8 > len(data):
            fail(f"{path}: truncated chunk header at {pos}")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            fail(f"{path}: truncated {ctype!r} chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            fail(f"{path}: bad CRC in {ctype!r}")
        chunks.append((ctype, body))
        pos += 12 + length
        if ctype == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        fail(f"{path}: chunks must start with IHDR and end with IEND")
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        fail(f"{path}: expected 8-bit RGB/RGBA, not interlaced (depth {depth}, colour type {ctype})")
    channels = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(body for t, body in chunks if t == b"IDAT"))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        fail(f"{path}: {len(raw)} bytes of image data, expected {height * (stride + 1)}")
    rows, prev = [], np.zeros(stride, dtype=np.int64)
    for y in range(height):
        f = raw[y * (stride + 1)]
        cur = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int64)
        if f == 0:
            line = cur
        elif f == 1:  # Sub: a running sum along the row, per channel
            line = np.cumsum(cur.reshape(width, channels), axis=0).reshape(-1) & 0xFF
        elif f == 2:  # Up
            line = (cur + prev) & 0xFF
        elif f in (3, 4):  # Average and Paeth depend on the pixel just decoded: one byte at a time, plain ints
            line, up = bytearray(cur.astype(np.uint8).tobytes()), prev.astype(np.uint8).tobytes()
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = up[i]
                if f == 3:
                    pred = (a + b) >> 1
                else:
                    c = up[i - channels] if i >= channels else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            line = np.frombuffer(bytes(line), dtype=np.uint8).astype(np.int64)
        else:
            fail(f"{path}: row {y} has filter type {f}")
        rows.append(line)
        prev = line
    rows = np.stack(rows).astype(np.uint8).reshape(height, width, channels)
    return width, height, channels, rows, len(data)


def parse_size(s):
    w, h = s.lower().split("x")
    return int(w), int(h)


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if args else 2)
    path, opts = args[0], {"--min-size": "1x1", "--max-size": "4000x4000", "--max-bytes": "500000",
                           "--min-colors": "8", "--min-ink": "0.002", "--margin": "0", "--max-margin": "",
                           "--labels": ""}
    i = 1
    while i < len(args):
        if args[i] not in opts or i + 1 >= len(args):
            print(f"check_png.py: unknown or incomplete option {args[i]}", file=sys.stderr)
            sys.exit(2)
        opts[args[i]] = args[i + 1]
        i += 2
    width, height, channels, rows, nbytes = read_png(path)
    min_w, min_h = parse_size(opts["--min-size"])
    max_w, max_h = parse_size(opts["--max-size"])
    if not (min_w <= width <= max_w and min_h <= height <= max_h):
        fail(f"{path}: {width}x{height} outside {min_w}x{min_h} .. {max_w}x{max_h}")
    if nbytes > int(opts["--max-bytes"]):
        fail(f"{path}: {nbytes} bytes > {opts['--max-bytes']}")
    rgb = rows[:, :, :3].astype(np.int64)
    packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    colors = np.unique(packed)
    ink = int((rgb.sum(axis=2) < 3 * 200).sum())
    if len(colors) < int(opts["--min-colors"]):
        fail(f"{path}: only {len(colors)} distinct colours")
    ink_share = ink / (width * height)
    if ink_share < float(opts["--min-ink"]):
        fail(f"{path}: only {ink_share:.4f} of the pixels are drawn")
    background = (rgb == 255).all(axis=2)
    m = int(opts["--margin"])
    if m > 0:
        border = np.ones_like(background)
        border[m:height - m, m:width - m] = False
        touching = int((border & ~background).sum())
        if touching:
            fail(f"{path}: {touching} drawn pixels within {m} px of the edge")
    drawn_y, drawn_x = np.nonzero(~background)
    if opts["--max-margin"] and len(drawn_x):
        mm = int(opts["--max-margin"])
        gaps = {"left": int(drawn_x.min()), "right": width - 1 - int(drawn_x.max()), "top": int(drawn_y.min()),
                "bottom": height - 1 - int(drawn_y.max())}
        wide = {k: v for k, v in gaps.items() if v > mm}
        if wide:
            fail(f"{path}: empty margins wider than {mm} px: {wide}")
    labelled = ""
    if opts["--labels"]:
        nrows, ncols, map_x, map_y, cell, y_step, x_step, y_end, x_top = (int(v) for v in opts["--labels"].split(","))
        dark = rgb.sum(axis=2) < 3 * 160
        missing = []
        for r in range(0, nrows, y_step):  # the y label of row r ends 8 px left of Y_END, centred on the row (16 px tall)
            cy = map_y + r * cell + cell // 2
            if not dark[max(cy - 6, 0):cy + 7, max(y_end - 200, 0):y_end - 6].any():
                missing.append(f"row {r}")
        for c in range(0, ncols, x_step):  # the x label of column c starts 8 px below X_TOP at its tick
            cx = map_x + c * cell + cell // 2
            if not dark[x_top + 6:x_top + 30, max(cx - 12, 0):cx + 7].any():
                missing.append(f"column {c}")
        if missing:
            fail(f"{path}: no label beside {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        labelled = f", labels on {len(range(0, nrows, y_step))} rows and {len(range(0, ncols, x_step))} columns"
    print(f"ok {path}: {width}x{height}, {channels} channels, {nbytes} bytes, {len(colors)} colours, ink {ink_share:.3f}"
          f"{labelled}")


if __name__ == "__main__":
    main()
