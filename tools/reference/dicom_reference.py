"""Reference pixels for the DICOM conformance test (tests/dicom_conformance.rs, tests/node/).

For every .dcm file of the pydicom-data wheel (MIT; pydicom's own test films: compressed,
colour, palette, multi-frame, big endian, broken on purpose), pydicom with its pixel-data
plugins (pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle) decodes the first frame
as a viewer starts from it: `pixel_array` (YBR turned into RGB) and, for palette colour,
`apply_color_lut`. Writes OUT/index.json (one entry a file: name, transfer syntax, whether the
syntax is lossy, shape, or why pydicom refused it) and OUT/NAME.f64 (the values, float64 little
endian, row-major, samples interleaved).

    python -m venv .venv-ref && .venv-ref/bin/pip install pydicom pydicom-data pylibjpeg \
        pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle numpy
    .venv-ref/bin/python tools/reference/dicom_reference.py target/dicom-ref
"""

import json
import pathlib
import sys

import data_store  # the pydicom-data wheel's package
import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut
from pydicom.uid import UID

# Transfer syntaxes whose decoded values may differ between decoders (lossy coding).
LOSSY = {
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossy allowed)
    "1.2.840.10008.1.2.4.203",  # HTJ2K
}


def first_frame(ds):
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2":
            # pydicom 3.0 reads the (unsegmented) OW table data of a big-endian file without
            # swapping its words: OBXXXX1A_expb.dcm would come out byte-swapped, unlike
            # OBXXXX1A.dcm, the same image little endian. Swap them as the standard reads them.
            for c in ("Red", "Green", "Blue"):
                key = f"{c}PaletteColorLookupTableData"
                if key in ds:
                    ds[key].value = np.frombuffer(ds[key].value, ">u2").astype("<u2").tobytes()
        arr = apply_color_lut(arr, ds)
    return np.ascontiguousarray(arr, dtype="<f8")


def main(out):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = pathlib.Path(data_store.__file__).parent / "data"
    entries = []
    for path in sorted(root.glob("*.dcm")):
        entry = {"file": str(path), "name": path.name}
        try:
            ds = pydicom.dcmread(path)
            uid = ds.file_meta.TransferSyntaxUID
            entry.update(syntax=UID(uid).name, uid=str(uid), lossy=str(uid) in LOSSY)
            arr = first_frame(ds)
            entry.update(status="decoded", shape=list(arr.shape))
            arr.tofile(out / (path.name + ".f64"))
        except Exception as e:  # pydicom refuses it: medground must refuse it too, by name
            entry.update(status="refused", reason=f"{type(e).__name__}: {e}"[:200])
        entries.append(entry)
    (out / "index.json").write_text(json.dumps(entries, indent=1))
    decoded = sum(e["status"] == "decoded" for e in entries)
    print(f"{len(entries)} files, {decoded} decoded by pydicom, references in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
