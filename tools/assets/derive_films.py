"""Derives the small real chest film used by tests, the CLI examples and the page.

Source: RG1_UNCR.dcm (a computed-radiography chest film, MONOCHROME1, 1841x1955, 16-bit) in the
MIT-licensed `pydicom-data` wheel on PyPI. Output, under tests/fixtures/:
  chest_rg1.dcm           the film downscaled 4x (area mean), still MONOCHROME1 16-bit with the
                          source's VOI window and a rescale slope/intercept added, so the DICOM
                          path (rescale, window, inversion) is exercised for real;
  chest_rg1_expected.png  what a viewer shows for it (pydicom's rescale, the linear VOI window,
                          inverted), 8-bit.

Regenerate:
    pip download --no-deps -d /tmp/pdd pydicom-data && (cd /tmp/pdd && unzip -o -q *.whl)
    .venv/bin/pip install pydicom numpy pillow
    .venv/bin/python tools/assets/derive_films.py /tmp/pdd/data_store/data/RG1_UNCR.dcm
"""

import pathlib
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
FACTOR = 4
SLOPE, INTERCEPT = 2.0, -1000.0


def main(src):
    ds = pydicom.dcmread(src)
    raw = ds.pixel_array.astype(np.float64)
    h, w = (raw.shape[0] // FACTOR) * FACTOR, (raw.shape[1] // FACTOR) * FACTOR
    small = raw[:h, :w].reshape(h // FACTOR, FACTOR, w // FACTOR, FACTOR).mean(axis=(1, 3))
    # Store values so that slope * stored + intercept gives back the source's values.
    stored = np.round((small - INTERCEPT) / SLOPE).astype(np.uint16)
    ds.PixelData = stored.tobytes()
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
    ds.RescaleType = "US"
    for tag in ["LargestImagePixelValue", "SmallestImagePixelValue"]:
        if tag in ds:
            del ds[tag]
    OUT.mkdir(parents=True, exist_ok=True)
    ds.save_as(OUT / "chest_rg1.dcm", enforce_file_format=True)

    back = pydicom.dcmread(OUT / "chest_rg1.dcm")
    values = apply_modality_lut(back.pixel_array, back)
    # The linear VOI function of DICOM PS3.3 C.11.2.1.2 on the rescaled values.
    c, w = float(back.WindowCenter), float(back.WindowWidth)
    shown = np.clip((values - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)
    if back.PhotometricInterpretation == "MONOCHROME1":
        shown = 1.0 - shown
    Image.fromarray(np.round(shown * 255).astype(np.uint8), mode="L").save(OUT / "chest_rg1_expected.png")
    print(f"wrote {OUT}/chest_rg1.dcm {stored.shape} and chest_rg1_expected.png")


if __name__ == "__main__":
    main(sys.argv[1])
