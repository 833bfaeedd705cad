"""JPEG-LS streams for src/image/dicom/jpegls.rs's tests, encoded by CharLS (the pyjpegls wheel,
MIT), with the values CharLS decodes them to: tests/fixtures/jpegls/NAME.jls and NAME.u16
(little-endian samples, interleaved). Lossless and near-lossless, 8, 12 and 16 bits, one and
three components in each interleave mode; images with flat areas (run mode), edges and noise.

    python -m venv /tmp/jls && /tmp/jls/bin/pip install pyjpegls numpy
    /tmp/jls/bin/python tools/reference/jpegls_fixtures.py tests/fixtures/jpegls
"""

import pathlib
import sys

import jpeg_ls
import numpy as np


def image(h, w, bits, channels, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    top = (1 << bits) - 1
    base = (np.sin(x / 5.0) * np.cos(y / 7.0) + 1) / 2 * top * 0.8
    base[h // 3 : h // 2, :] = top // 3  # a flat band: runs
    base[:, w // 2 : w // 2 + 3] = top  # a bright line: an edge
    planes = []
    for c in range(channels):
        noise = rng.normal(0, top * 0.01 * (c + 1), (h, w))
        planes.append(np.clip(base + noise + c * top * 0.05, 0, top))
    arr = np.stack(planes, -1) if channels > 1 else planes[0]
    return arr.astype(np.uint8 if bits <= 8 else np.uint16)


CASES = [
    # name, height, width, bits, channels, near, interleave
    ("grey8", 23, 37, 8, 1, 0, 0),
    ("grey12", 30, 41, 12, 1, 0, 0),
    ("grey16", 17, 29, 16, 1, 0, 0),
    ("grey8_near2", 23, 37, 8, 1, 2, 0),
    ("grey16_near3", 17, 29, 16, 1, 3, 0),
    ("rgb8_none", 19, 21, 8, 3, 0, 0),
    ("rgb8_line", 19, 21, 8, 3, 0, 1),
    ("rgb8_sample", 19, 21, 8, 3, 0, 2),
    ("rgb8_sample_near1", 19, 21, 8, 3, 1, 2),
    ("rgb8_line_near2", 19, 21, 8, 3, 2, 1),
]


def main(out):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, h, w, bits, ch, near, ilv) in enumerate(CASES):
        arr = image(h, w, bits, ch, i)
        if bits == 12:
            arr = arr & 0x0FFF
        # pyjpegls takes (and gives) colour in interleave mode 0 plane by plane.
        planar = ch > 1 and ilv == 0
        src = np.ascontiguousarray(arr.transpose(2, 0, 1)) if planar else arr
        data = bytes(jpeg_ls.encode_array(src, lossy_error=near, interleave_mode=ilv))
        raw, info = jpeg_ls.decode_buffer(data)
        back = np.frombuffer(bytes(raw), np.uint8 if bits <= 8 else "<u2")
        back = back.reshape(ch, h, w).transpose(1, 2, 0) if planar else back.reshape(arr.shape)
        assert info["components"] == ch and info["width"] == w, (name, info)
        assert np.abs(back.astype(int) - arr).max() <= near, name
        if near == 0:
            assert np.array_equal(back, arr), name
        (out / f"{name}.jls").write_bytes(data)
        np.ascontiguousarray(back, "<u2").tofile(out / f"{name}.u16")
        print(name, back.shape, len(data), "bytes")


if __name__ == "__main__":
    main(sys.argv[1])
