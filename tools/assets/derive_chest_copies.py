"""Derives tests/fixtures/chest_copies/: the sample film (tests/fixtures/chest_rg1_expected.png,
RG1 of pydicom-data as decoded) as other hospitals' films reach a reader: a 40-px black or white
border, a 5-degree tilt, a crop to the lungs, a burned-in "PA ERECT" and "R", a black band
below (a digitiser's or a screenshot's). `tests/ood.rs` asserts that each reads inside; no
threshold or setting was chosen with them.

    python -m venv /tmp/v && /tmp/v/bin/pip install pillow numpy
    /tmp/v/bin/python tools/assets/derive_chest_copies.py
"""

import json
import pathlib

from PIL import Image, ImageDraw, ImageFont

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
OUT = FIX / "chest_copies"


def lungs_box():
    boxes = [json.loads(line) for line in open(FIX / "chest_rg1_boxes.jsonl")]
    lungs = [b["box"] for b in boxes if b["phrase"] in ("the right lung", "the left lung")]
    x0 = min(b[0] for b in lungs)
    y0 = min(b[1] for b in lungs)
    x1 = max(b[0] + b[2] for b in lungs)
    y1 = max(b[1] + b[3] for b in lungs)
    return x0, y0, x1, y1


def main():
    film = Image.open(FIX / "chest_rg1_expected.png").convert("L")
    w, h = film.size
    OUT.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, fill in (("black_border", 0), ("white_border", 255)):
        c = Image.new("L", (w + 80, h + 80), fill)
        c.paste(film, (40, 40))
        copies[name] = c
    copies["tilted"] = film.rotate(5, resample=Image.BILINEAR, expand=True, fillcolor=0)
    x0, y0, x1, y1 = lungs_box()
    copies["cropped"] = film.crop((max(x0 - 10, 0), max(y0 - 10, 0), min(x1 + 10, w), min(y1 + 10, h)))
    label = film.copy()
    draw = ImageDraw.Draw(label)
    font = ImageFont.load_default(size=18)
    draw.text((w - 110, 12), "PA ERECT", fill=255, font=font)
    draw.text((14, 60), "R", fill=255, font=ImageFont.load_default(size=28))
    copies["label"] = label
    band = Image.new("L", (w, h + h // 4), 0)
    band.paste(film, (0, 0))
    copies["black_band"] = band
    for name, img in copies.items():
        img.save(OUT / f"{name}.png", optimize=True)
        print(name, img.size)


if __name__ == "__main__":
    main()
