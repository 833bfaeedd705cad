"""Does the model find the lesions it can see? Per category, how much each truth box stands out
of the film, and the model's hits and centre errors by that.

    cargo run --release -- data synth --n 600 --split val --seed 7 --out /tmp/v7
    cargo run --release -- eval /tmp/v7/val.jsonl --images /tmp/v7 --model assets/demo --out /tmp/ev
    python3 tools/bench/lesion_contrast.py /tmp/v7/val.jsonl /tmp/ev/predictions.jsonl \
        [--real tests/fixtures/chest_rg1.dcm tests/fixtures/chest_rg1_boxes.jsonl]

Contrast (CNR) of a box: the film's mean inside it minus the mean of a 6-px ring around it,
over the ring's standard deviation, on the film at 224 x 224 with dense = bright (rib shadows
and other structure in the ring count as noise, as they do for a reader). Per category: CNR
quantiles, then N, Acc@0.5 and the median of the larger of the x and y centre errors (px) for
the boxes with CNR >= --visible (default 0.9, about the real sample film's visible nodules:
`--real` prints its boxes' CNR) and for the rest. Needs numpy and pillow (pydicom for --real).
"""

import argparse
import json
import os

import numpy as np
from PIL import Image

from box_errors import centre

SIZE = 224
RING = 6


def cnr(film, box):
    x, y, w, h = [int(round(v)) for v in box]
    w, h = max(w, 1), max(h, 1)
    inner = film[y : y + h, x : x + w]
    y0, x0 = max(0, y - RING), max(0, x - RING)
    ring = film[y0 : y + h + RING, x0 : x + w + RING]
    keep = np.ones(ring.shape, bool)
    keep[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = False
    bg = ring[keep]
    return (inner.mean() - bg.mean()) / (bg.std() + 1e-3)


def centre_error(p):
    return max(abs(a - b) for a, b in zip(centre(p["box"]), centre(p["truth"])))


def real_film(dcm, boxes):
    import pydicom

    d = pydicom.dcmread(dcm)
    a = d.pixel_array.astype(np.float32)
    if d.PhotometricInterpretation == "MONOCHROME1":
        a = a.max() - a
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / (hi - lo), 0, 1)
    h, w = a.shape
    img = Image.fromarray((a * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)
    film = np.asarray(img, dtype=np.float32)
    sx, sy = SIZE / w, SIZE / h
    print("| real film box | CNR |")
    print("|---|---:|")
    for line in open(boxes):
        r = json.loads(line)
        x, y, bw, bh = r["box"]
        print(f"| {r['phrase']} | {cnr(film, (x * sx, y * sy, bw * sx, bh * sy)):.2f} |")
    print()


def group(rows):
    if not rows:
        return "0 | - | -"
    acc = sum(r["iou"] >= 0.5 for r in rows) / len(rows)
    return f"{len(rows)} | {acc:.3f} | {np.median([r['cerr'] for r in rows]):.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", help="the JSONL `data synth --out` wrote (images beside it)")
    ap.add_argument("predictions", help="`eval --out`'s predictions.jsonl on that JSONL")
    ap.add_argument("--visible", type=float, default=0.9)
    ap.add_argument("--real", nargs=2, metavar=("DICOM", "BOXES"))
    a = ap.parse_args()
    if a.real:
        real_film(*a.real)
    root = os.path.dirname(a.dataset) or "."
    records = [json.loads(line) for line in open(a.dataset) if line.strip()]
    films = {}
    by_cat = {}
    for line in open(a.predictions):
        if not line.strip():
            continue
        p = json.loads(line)
        rec = records[p["record"]]
        if rec["phrase"] != p["phrase"]:
            raise SystemExit(f"record {p['record']}: the predictions are not of {a.dataset}")
        if rec["image"] not in films:
            img = Image.open(f"{root}/{rec['image']}").convert("L").resize((SIZE, SIZE))
            films[rec["image"]] = np.asarray(img, dtype=np.float32)
        row = {"cnr": cnr(films[rec["image"]], rec["box"]), "iou": p["iou"], "cerr": centre_error(p)}
        by_cat.setdefault(p["category"], []).append(row)
    v = a.visible
    print(
        f"| category | CNR p10 / p50 / p90 | N (CNR >= {v}) | Acc@0.5 | centre err px "
        f"| N (CNR < {v}) | Acc@0.5 | centre err px |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for cat, rows in sorted(by_cat.items()):
        q = np.percentile([r["cnr"] for r in rows], [10, 50, 90])
        seen = [r for r in rows if r["cnr"] >= v]
        faint = [r for r in rows if r["cnr"] < v]
        print(f"| {cat} | {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} | {group(seen)} | {group(faint)} |")


if __name__ == "__main__":
    main()
