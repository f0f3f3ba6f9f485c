#!/usr/bin/env python3
"""check_png.py: checks a PNG written by llama3-trace: its structure with zlib + struct, its pixels with Pillow.

    check_png.py FILE [--min-size WxH] [--max-size WxH] [--max-bytes N] [--min-colors N] [--min-ink F]
                      [--margin N] [--max-margin N] [--labels ROWS,COLS,MAP_X,MAP_Y,CELL,Y_STEP,X_STEP,Y_END,X_TOP]

Verifies the chunk structure and every CRC, that the image is 8-bit RGB or RGBA and decodes (Pillow's decoder: not
libpng, which wrote it), then the limits: size in pixels, file size, number of distinct colours (a blank or one-colour
image fails), and the share of "ink" pixels (darker than light grey). Layout, when asked:
  --margin N      the outer N pixels on every side are background (white): nothing touches the edge;
  --max-margin N  something is drawn within N pixels of every edge: no large empty margin;
  --labels ...    a heatmap's token labels (the numbers test_png_draw --render writes to layout.txt): every Y_STEP-th
                  row of the map has ink in the strip left of Y_END (where the y labels end) at its height, and every
                  X_STEP-th column has ink just below X_TOP (where the x labels start) near its centre.
Prints one line; exits 0 when every check holds, 1 when one fails, 2 on bad usage.
"""
import io
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def fail(msg):
    print(f"FAIL {msg}", file=sys.stderr)
    sys.exit(1)


def decode_png(path):
    """Reads a PNG: (width, height, channels, pixels [height, width, channels] uint8, file size). Raises ValueError
    (or OSError) naming what is wrong. The chunk structure, every CRC, IHDR and the size of the image data are checked
    here with struct and zlib; the rows are then unfiltered by Pillow (its own decoder, not libpng, which wrote them)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, chunks = 8, []
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError(f"truncated chunk header at {pos}")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError(f"truncated {ctype!r} chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in {ctype!r}")
        chunks.append((ctype, body))
        pos += 12 + length
        if ctype == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise ValueError("chunks must start with IHDR and end with IEND")
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        raise ValueError(f"expected 8-bit RGB/RGBA, not interlaced (depth {depth}, colour type {ctype})")
    channels = 3 if ctype == 2 else 4
    try:
        raw = zlib.decompress(b"".join(body for t, body in chunks if t == b"IDAT"))
    except zlib.error as e:
        raise ValueError(f"image data does not inflate: {e}")
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError(f"{len(raw)} bytes of image data, expected {height * (stride + 1)}")
    bad = sorted({raw[y * (stride + 1)] for y in range(height)} - {0, 1, 2, 3, 4})
    if bad:
        raise ValueError(f"row filter type {bad[0]} (0-4 exist)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            pixels = np.asarray(im.convert("RGBA" if channels == 4 else "RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for a PNG it cannot decode
        raise ValueError(f"Pillow cannot decode it: {e}")
    if pixels.shape != (height, width, channels):
        raise ValueError(f"Pillow decoded {pixels.shape}, IHDR says {(height, width, channels)}")
    return width, height, channels, pixels, len(data)


def read_png(path):
    """decode_png, or the one FAIL line and exit 1."""
    try:
        return decode_png(path)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


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
