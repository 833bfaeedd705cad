"""Derives the held-out outside set (tests/fixtures/ood_heldout/): images no design choice of the
out-of-distribution model looked at, which the test suite only measures (`tests/ood.rs`:
`eval --ood tests/fixtures/ood_heldout`). From the deid-data sdist on PyPI (MIT, pydicom's
de-identification test data): DICOM photos of cookies, a veterinary radiograph of a cat, head
CT slices and ultrasounds; each decoded by pydicom (first frame, VOI window or the full range,
MONOCHROME1 inverted), its longest side brought to at most 320 px, written as 8-bit PNG.

    pip download --no-deps -d /tmp/deid deid-data==0.0.20 && tar xzf /tmp/deid/*.tar.gz -C /tmp/deid
    python -m venv /tmp/v && /tmp/v/bin/pip install pydicom pylibjpeg pylibjpeg-libjpeg numpy pillow
    /tmp/v/bin/python tools/assets/derive_ood_heldout.py /tmp/deid/deid-data-0.0.20/deid_data/data
"""

import pathlib
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_voi_lut

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ood_heldout"
SIDE = 320


def picture(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = apply_voi_lut(arr, ds).astype(np.float64)
        lo, hi = np.percentile(arr, [0.5, 99.5])
        arr = np.clip((arr - lo) / max(hi - lo, 1e-6), 0, 1)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            arr = 1 - arr
        img = Image.fromarray((arr * 255).round().astype(np.uint8), "L")
    else:
        if ds.PhotometricInterpretation.startswith("YBR"):
            from pydicom.pixels import convert_color_space
            arr = convert_color_space(arr, ds.PhotometricInterpretation, "RGB")
        img = Image.fromarray(arr.astype(np.uint8), "RGB")
    img.thumbnail((SIDE, SIDE))
    return img


def main(data):
    data = pathlib.Path(data)
    OUT.mkdir(parents=True, exist_ok=True)
    seen = set()
    for path in sorted(data.rglob("*.dcm")):
        name = f"{path.parent.name}_{path.stem}.png"
        try:
            img = picture(path)
            if img.tobytes() in seen:  # the package holds one head CT slice twice
                print(f"left out {path.name}: the same image as one before")
                continue
            seen.add(img.tobytes())
            img.save(OUT / name, optimize=True)
            print(name)
        except Exception as e:  # a file pydicom cannot read is left out, with the reason
            print(f"left out {path.name}: {e}")


if __name__ == "__main__":
    main(sys.argv[1])
