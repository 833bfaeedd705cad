"""Structure fixture: a random Idefics3 with SmolVLM-256M's structure (image splitting into tiles
plus a global view, pixel shuffle by 4, tied embeddings, the chat template) at small widths, and
what transformers computes on a tall and a wide image through its processor.

Writes tests/fixtures/structure/: config.json and model.safetensors (save_pretrained),
tokenizer.json and the images (from tests/fixtures/processor), preprocessor_config.json (64-px
tiles, 128-px longest edge), processor_config.json, expected.json (per image: rows, cols, input ids,
greedy tokens) and expected.safetensors (per image: pixel values, vision features, connector
output, logits). The Rust test `tests/structure.rs` checks medground against them.

Regenerate after make_processor_fixtures.py (reference tooling only, not part of CI; Pillow < 13
as there):
    .venv/bin/python tools/reference/make_structure_fixture.py
"""

import json
import pathlib
import shutil

import torch
from PIL import Image
from safetensors.torch import save_file
from make_parity_fixtures import small_model
from transformers import PreTrainedTokenizerFast
from transformers.models.idefics3 import Idefics3Processor
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
SRC, OUT = ROOT / "processor", ROOT / "structure"
TILE, PATCH, SCALE, LONGEST = 64, 8, 4, 128
SEQ = (TILE // PATCH // SCALE) ** 2
PHRASE = "small left pleural effusion"
GREEDY = 10


def main():
    import PIL
    assert int(PIL.__version__.split(".")[0]) < 13, "use Pillow < 13 (see make_processor_fixtures.py)"
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ["tokenizer.json", "tall.png", "wide.png"]:
        shutil.copy(SRC / name, OUT / name)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer.json"))
    pre = json.loads((SRC / "preprocessor_config.json").read_text())
    pre.update({"max_image_size": {"longest_edge": TILE}, "size": {"longest_edge": LONGEST}})
    (OUT / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    (OUT / "processor_config.json").write_text(json.dumps(
        {"image_seq_len": SEQ, "processor_class": "Idefics3Processor"}, indent=2) + "\n")
    settings = {k: v for k, v in pre.items() if k not in ("image_processor_type", "processor_class")}
    proc = Idefics3Processor(Idefics3ImageProcessorPil(**settings), tok, image_seq_len=SEQ,
                             chat_template=DEFAULT_CHAT_TEMPLATE)
    model = small_model(tok.convert_tokens_to_ids("<image>"), len(tok), TILE, PATCH, SCALE,
                        tied=True, rope_theta=100000.0, max_positions=512)
    model.save_pretrained(OUT, safe_serialization=True)
    (OUT / "generation_config.json").unlink(missing_ok=True)

    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": f"[refer] give me the location of {PHRASE}"}]}]
    chat = proc.apply_chat_template(messages, add_generation_prompt=True)
    expected, tensors = {"phrase": PHRASE, "image_seq_len": SEQ, "images": {}}, {}
    for name in ["tall", "wide"]:
        img = Image.open(OUT / f"{name}.png")
        inputs = proc(text=chat, images=[img], return_tensors="pt")
        info = proc.image_processor(img, return_row_col_info=True)
        pixels = inputs["pixel_values"]  # [1, tiles, 3, TILE, TILE]
        with torch.no_grad():
            vision = model.model.vision_model(pixel_values=pixels[0]).last_hidden_state
            connector = model.model.connector(vision)
            logits = model(**inputs).logits
            gen = model.generate(**inputs, max_new_tokens=GREEDY, min_new_tokens=GREEDY,
                                 do_sample=False, pad_token_id=0)
        ids = inputs["input_ids"][0].tolist()
        expected["images"][name] = {
            "rows": int(info["rows"][0][0]), "cols": int(info["cols"][0][0]), "input_ids": ids,
            "greedy_tokens": gen[0, len(ids):].tolist()}
        for key, t in [("pixel_values", pixels[0]), ("vision", vision), ("connector", connector),
                       ("logits", logits)]:
            tensors[f"{name}.{key}"] = t.float().contiguous()
    save_file(tensors, str(OUT / "expected.safetensors"))
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {OUT}: " + ", ".join(
        f"{n} {e['rows']}x{e['cols']}, {len(e['input_ids'])} ids" for n, e in expected["images"].items()))


if __name__ == "__main__":
    main()
