#!/usr/bin/env python3
"""Makes the detection example's data from the real MNIST digits of ../mnist-insitu/data.

Each canvas is a 64x64 grayscale PNG holding 1 to 3 digits at random positions: every digit is cropped to the tight
box of its nonzero pixels and pasted where its box overlaps no other digit's box (2 pixels apart at least) and its
centre lies in an 8x8-pixel cell of its own (the detector's grid). The ESFs have the columns id,filepath,boxes, where
boxes is "label x0 y0 x1 y1" per digit, ';'-separated, in pixels, x1 and y1 exclusive.

Run from anywhere: python3 examples/detection/make-data.py. Plain Python 3 (csv, random, struct, zlib); the same
output every run. Digits come from the matching split: train canvases from train.csv, and so on; the 50 predict
canvases (no boxes column) are made from test digits.
"""
import csv
import os
import random
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "mnist-insitu", "data")
OUT = os.path.join(HERE, "data")
SIZE = 64  # canvas side, pixels
CELL = 8  # the detector's grid cell, pixels
GAP = 2  # the least distance between two digits' boxes
# name, canvases, seed, the MNIST split the digits come from; predict canvases have no boxes column
SPLITS = [("train", 1000, 1, "train"), ("validation", 200, 2, "validation"), ("test", 200, 3, "test"), ("predict", 50, 4, "test")]


def read_digits(path):
    """(label, crop) per row: crop is the tight box of the nonzero pixels, a list of rows of bytes."""
    digits = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        first = header.index("p0")
        label_at = header.index("label")
        for row in reader:
            pixels = [int(v) for v in row[first:first + 784]]
            rows = [pixels[r * 28:(r + 1) * 28] for r in range(28)]
            ys = [r for r in range(28) if any(rows[r])]
            xs = [c for c in range(28) if any(rows[r][c] for r in range(28))]
            crop = [bytes(rows[r][xs[0]:xs[-1] + 1]) for r in range(ys[0], ys[-1] + 1)]
            digits.append((int(row[label_at]), crop))
    return digits


def place(rng, crops):
    """Top-left corners for the crops (widths and heights), or None when they do not fit in a few tries."""
    boxes, cells = [], set()
    for w, h in crops:
        for _ in range(200):
            x, y = rng.randrange(0, SIZE - w + 1), rng.randrange(0, SIZE - h + 1)
            cell = ((x + w / 2) // CELL, (y + h / 2) // CELL)
            apart = all(x + w + GAP <= bx0 or bx1 + GAP <= x or y + h + GAP <= by0 or by1 + GAP <= y
                        for bx0, by0, bx1, by1 in boxes)
            if apart and cell not in cells:
                boxes.append((x, y, x + w, y + h))
                cells.add(cell)
                break
        else:
            return None
    return boxes


def png(pixels):
    """An 8-bit grayscale PNG of a SIZE x SIZE bytearray, row-major."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(pixels[r * SIZE:(r + 1) * SIZE]) for r in range(SIZE))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    for name, count, seed, source in SPLITS:
        digits = read_digits(os.path.join(SOURCE, f"{source}.csv"))
        rng = random.Random(seed)
        rows, total = [], 0
        while len(rows) < count:
            chosen = [digits[rng.randrange(len(digits))] for _ in range(rng.randint(1, 3))]
            boxes = place(rng, [(len(crop[0]), len(crop)) for _, crop in chosen])
            if boxes is None:
                continue
            canvas = bytearray(SIZE * SIZE)
            for (label, crop), (x0, y0, _, _) in zip(chosen, boxes):
                for r, line in enumerate(crop):
                    canvas[(y0 + r) * SIZE + x0:(y0 + r) * SIZE + x0 + len(line)] = line
            index = len(rows)
            path = f"images/{name}_{index:04d}.png"
            with open(os.path.join(OUT, path), "wb") as f:
                f.write(png(canvas))
            spec = ";".join(f"{label} {x0} {y0} {x1} {y1}" for (label, _), (x0, y0, x1, y1) in zip(chosen, boxes))
            rows.append((index, path, spec))
            total += len(chosen)
        with open(os.path.join(OUT, f"{name}.csv"), "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            if name == "predict":
                writer.writerow(["id", "filepath"])
                writer.writerows(row[:2] for row in rows)
            else:
                writer.writerow(["id", "filepath", "boxes"])
                writer.writerows(rows)
        print(f"{name}: {count} canvases, {total} digits, from {len(digits)} MNIST digits")


if __name__ == "__main__":
    main()
