"""Derives the out-of-distribution set (tests/fixtures/ood/): images a chest-film model must
say it does not know, from what the package registries ship, each downscaled to at most 256 px
a side and written as PNG. `eval --ood tests/fixtures/ood` sweeps it (docs/real_inputs.md).

- photos/: natural photos, textures, micrographs, a fundus and a telescope image from the
  scikit-image wheel (`skimage.data`, BSD-3; their own licences are listed in skimage's docs);
- documents/: scikit-image's scanned page and text, and its logo and colour wheel;
- modalities/: other modalities and body parts from the pydicom-data wheel (MIT): MR, CT,
  ultrasound (grey and palette colour), a bone film (RG3), through pydicom's viewer pipeline;
- chest_turned/: the real sample chest film (tests/fixtures/chest_rg1_expected.png) and the
  page's synthetic film turned by 90, 180 and 270 degrees and mirrored upside down;
- flat/: blank black, white and grey images, uniform and Gaussian noise, a gradient.

Regenerate:
    python -m venv .venv-ref && .venv-ref/bin/pip install scikit-image pydicom pydicom-data \\
        pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg numpy pillow
    .venv-ref/bin/python tools/assets/derive_ood.py
"""

import pathlib

import data_store
import numpy as np
import pydicom
import skimage.data
from PIL import Image
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "ood"
SIDE = 256

PHOTOS = ["astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass",
          "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "moon", "retina",
          "rocket", "cell", "microaneurysms"]
DOCUMENTS = ["page", "text", "logo", "colorwheel", "checkerboard", "shepp_logan_phantom"]
MODALITIES = ["MR2_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "693_UNCR.dcm",
              "eCT_Supplemental.dcm", "US1_UNCR.dcm", "OBXXXX1A.dcm", "gdcm-US-ALOKA-16.dcm",
              "RG3_UNCR.dcm", "emri_small.dcm", "JPEG2000_UNC.dcm", "mlut_18.dcm"]


def save(arr, path):
    img = Image.fromarray(arr)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    img.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def to_u8(a):
    a = a.astype(np.float64)
    lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.5)
    return (np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1) * 255).round().astype(np.uint8)


def dicom_view(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds).astype(np.float64)
        return (rgb / rgb.max() * 255).round().astype(np.uint8)
    if arr.ndim == 3:
        return arr.astype(np.uint8)
    v = apply_voi_lut(apply_modality_lut(arr, ds), ds)
    v = to_u8(v)
    return 255 - v if pi == "MONOCHROME1" else v


def main():
    for n in PHOTOS:
        save(getattr(skimage.data, n)(), OUT / "photos" / f"{n}.png")
    for n in DOCUMENTS:
        a = getattr(skimage.data, n)()
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        if a.dtype != np.uint8:
            a = to_u8(a)
        save(a, OUT / "documents" / f"{n}.png")
    data = pathlib.Path(data_store.__file__).parent / "data"
    for n in MODALITIES:
        save(dicom_view(data / n), OUT / "modalities" / (n.removesuffix(".dcm") + ".png"))
    for src in [ROOT / "tests/fixtures/chest_rg1_expected.png", ROOT / "www/samples/synthetic.png"]:
        img = np.asarray(Image.open(src).convert("L"))
        stem = "real" if "rg1" in src.name else "synthetic"
        for k in (1, 2, 3):
            save(np.rot90(img, k).copy(), OUT / "chest_turned" / f"{stem}_rot{90 * k}.png")
        save(img[::-1].copy(), OUT / "chest_turned" / f"{stem}_upside_down.png")
    rng = np.random.default_rng(0)
    flat = {
        "black": np.zeros((256, 256), np.uint8),
        "white": np.full((256, 256), 255, np.uint8),
        "grey": np.full((256, 256), 128, np.uint8),
        "uniform_noise": rng.integers(0, 256, (256, 256), dtype=np.uint8),
        "gaussian_noise": np.clip(rng.normal(128, 40, (256, 256)), 0, 255).astype(np.uint8),
        "colour_noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "gradient": np.tile(np.linspace(0, 255, 256).astype(np.uint8), (256, 1)),
    }
    for n, a in flat.items():
        save(a, OUT / "flat" / f"{n}.png")
    files = sorted(OUT.rglob("*.png"))
    print(f"{len(files)} images, {sum(f.stat().st_size for f in files)} bytes in {OUT}")


if __name__ == "__main__":
    main()
