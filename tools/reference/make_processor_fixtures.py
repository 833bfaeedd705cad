"""Processor fixtures: what transformers' Idefics3 processor (PIL image path, SmolVLM's chat
template) makes of a tall, a wide and a small image, at small tile sizes so the files stay small.

Writes tests/fixtures/processor/: preprocessor_config.json (SmolVLM-256M's settings with 32-px
tiles and an 80-px longest edge), tokenizer.json (the parity fixture's tokenizer with the
`<row_R_col_C>` tokens added), the three images, expected.json (per image: rows, cols, the
prompt text and its input ids; the tile grid transformers computes for SmolVLM-256M's real
settings at many image sizes) and expected.safetensors (pixel values, with and without
splitting). The Rust test `tests/processor.rs` checks medground against them.

Pillow below 13: Pillow 12 and earlier always resize horizontally first (what the hub's
checkpoints were trained with, and what `src/image/resample.rs` does); Pillow 13 resizes some
shrinking images vertically first (its pull request 9549), which moves some pixels by one level.

Regenerate (reference tooling only, not part of CI):
    python3 -m venv .venv && .venv/bin/pip install torch transformers safetensors "pillow<13" numpy
    .venv/bin/python tools/reference/make_processor_fixtures.py
"""

import json
import pathlib

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast
from transformers.models.idefics3 import Idefics3Processor
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
OUT = ROOT / "processor"
TILE, LONGEST, SEQ = 32, 80, 4
PHRASE = "small left pleural effusion"
# SmolVLM-256M-Instruct's preprocessor_config.json, tiles and longest edge made small.
CONFIG = {
    "do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True,
    "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "Idefics3ImageProcessor", "image_std": [0.5, 0.5, 0.5],
    "max_image_size": {"longest_edge": TILE}, "processor_class": "Idefics3Processor",
    "resample": 1, "rescale_factor": 0.00392156862745098, "size": {"longest_edge": LONGEST},
}


def images():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:130, 0:50]
    tall = 30 + 2 * x + 1.2 * y + 60 * np.exp(-((x - 30) ** 2 + (y - 40) ** 2) / 80.0)
    tall = Image.fromarray(np.clip(tall + rng.normal(0, 6, tall.shape), 0, 255).astype(np.uint8), "L")
    y, x = np.mgrid[0:45, 0:140]
    wide = np.stack([x * 1.8, y * 5.0, 128 + 100 * np.sin(x / 7.0)], -1)
    wide = Image.fromarray(np.clip(wide + rng.normal(0, 8, wide.shape), 0, 255).astype(np.uint8), "RGB")
    small = Image.fromarray(rng.integers(0, 256, (14, 20), dtype=np.uint8), "L")
    return {"tall": tall, "wide": wide, "small": small}


def main():
    import PIL
    assert int(PIL.__version__.split(".")[0]) < 13, "use Pillow < 13 (see the docstring)"
    OUT.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(ROOT / "parity" / "tokenizer.json"))
    tok.add_special_tokens([f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)])
    tok.save(str(OUT / "tokenizer.json"))
    fast = PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer.json"))
    (OUT / "preprocessor_config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    settings = {k: v for k, v in CONFIG.items() if k not in ("image_processor_type", "processor_class")}
    proc = Idefics3Processor(Idefics3ImageProcessorPil(**settings), fast, image_seq_len=SEQ,
                             chat_template=DEFAULT_CHAT_TEMPLATE)
    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": f"[refer] give me the location of {PHRASE}"}]}]
    chat = proc.apply_chat_template(messages, add_generation_prompt=True)
    expected, tensors = {"phrase": PHRASE, "image_seq_len": SEQ, "chat": chat, "images": {}}, {}
    for name, img in images().items():
        img.save(OUT / f"{name}.png")
        out = proc(text=chat, images=[img], return_tensors="np")
        rows = proc.image_processor(img, return_row_col_info=True)
        text = proc.tokenizer.decode(out["input_ids"][0])
        expected["images"][name] = {
            "rows": int(rows["rows"][0][0]), "cols": int(rows["cols"][0][0]),
            "input_ids": out["input_ids"][0].tolist(), "text": text}
        tensors[name] = torch.from_numpy(out["pixel_values"][0].astype(np.float32)).contiguous()
        flat = proc.image_processor(img, do_image_splitting=False, return_tensors="np")
        tensors[f"{name}_nosplit"] = torch.from_numpy(flat["pixel_values"][0].astype(np.float32)).contiguous()
    # The tile grid for SmolVLM-256M's real settings (2048-px longest edge, 512-px tiles).
    real = Idefics3ImageProcessorPil(**{**settings, "max_image_size": {"longest_edge": 512},
                                        "size": {"longest_edge": 2048}})
    grids = []
    for h, w in [(512, 512), (2048, 2048), (488, 460), (3000, 2500), (100, 4000), (4000, 333),
                 (1, 1), (777, 1025), (2, 3000), (1536, 1537)]:
        patches, rows, cols = real.get_number_of_image_patches(h, w, {})
        dummy = Image.new("L", (w, h))
        info = real(dummy, return_row_col_info=True)
        grids.append({"height": h, "width": w, "rows": int(info["rows"][0][0]),
                      "cols": int(info["cols"][0][0]), "patches": patches})
    expected["smolvlm_256m_grids"] = grids
    save_file(tensors, str(OUT / "expected.safetensors"))
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {OUT}: " + ", ".join(f"{n} {e['rows']}x{e['cols']}" for n, e in expected["images"].items()))


if __name__ == "__main__":
    main()
