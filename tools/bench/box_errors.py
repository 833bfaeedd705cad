"""Where the boxes miss, per category: centre and size errors from `eval --out DIR`.

    cargo run --release -- eval synth:600:val:7 --model assets/demo --out /tmp/ev
    python3 tools/bench/box_errors.py /tmp/ev/predictions.jsonl [--category "Lung Opacity"] [--by-side]

For each category (or phrase wording of one category with --category): N, Acc@0.5, the shares
of boxes that miss the truth entirely (IoU 0: the model pointed at something else) and that
overlap it but too little (near misses), the median
of the larger of the x and y centre errors (px), the median absolute width error (px), the
mean truth and predicted widths, and the correlation of truth and predicted widths (does the
model read the size from the film?). `--by-side` splits each category by the side its phrase
names (the patient's right or left). Standard library only.
"""

import argparse
import json
import statistics


def centre(b):
    return (b["x1"] + b["x2"]) / 2, (b["y1"] + b["y2"]) / 2


def width(b):
    return b["x2"] - b["x1"]


def corr(a, b):
    if len(a) < 3 or statistics.pstdev(a) == 0 or statistics.pstdev(b) == 0:
        return float("nan")
    return statistics.correlation(a, b)


def row(name, rows):
    cerr = [max(abs(p - t) for p, t in zip(centre(r["box"]), centre(r["truth"]))) for r in rows]
    werr = [abs(width(r["box"]) - width(r["truth"])) for r in rows]
    tw = [width(r["truth"]) for r in rows]
    pw = [width(r["box"]) for r in rows]
    acc = sum(r["iou"] >= 0.5 for r in rows) / len(rows)
    # Misses: the box does not touch the truth (the model found something else); near: it
    # overlaps but under 0.5.
    miss = sum(r["iou"] == 0 for r in rows) / len(rows)
    near = sum(0 < r["iou"] < 0.5 for r in rows) / len(rows)
    return (
        f"| {name} | {len(rows)} | {acc:.3f} | {miss:.3f} | {near:.3f} | {statistics.median(cerr):.1f} | "
        f"{statistics.median(werr):.1f} | {statistics.mean(tw):.1f} | {statistics.mean(pw):.1f} | "
        f"{corr(tw, pw):.2f} |"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("predictions")
    ap.add_argument("--category", help="split this category by the wording of its phrases")
    ap.add_argument("--by-side", action="store_true", help="split each category by side")
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.predictions) if line.strip()]
    print(
        "| group | N | Acc@0.5 | IoU 0 | IoU (0, 0.5) | centre err px | width err px | truth w "
        "| pred w | corr(w) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    if a.category:
        rows = [r for r in rows if r["category"] == a.category]
        groups = {}
        for r in rows:
            key = next((w for w in ("nodular", "ill-defined") if w in r["phrase"]), "other wording")
            groups.setdefault(key, []).append(r)
        groups["all"] = rows
    else:
        groups = {}
        for r in rows:
            key = r["category"]
            if a.by_side:
                words = r["phrase"].lower().split()
                side = next((w for w in ("right", "left") if w in words), "both / none")
                key = f"{key}, {side}"
            groups.setdefault(key, []).append(r)
        groups = dict(sorted(groups.items()))
    for name, g in groups.items():
        print(row(name, g))


if __name__ == "__main__":
    main()
