"""Structure fixture: a random Idefics3 with SmolVLM-256M's structure (image splitting into tiles
plus a global view, pixel shuffle by 4, tied embeddings, the chat template) at small widths, and
what transformers computes on a tall and a wide image through its processor.

Writes tests/fixtures/structure/: config.json and model.safetensors (save_pretrained),
tokenizer.json and the images (from tests/fixtures/processor), preprocessor_config.json (64-px
tiles, 128-px longest edge), processor_config.json, chat_template.jinja (SmolVLM's), expected.json (per image: rows, cols, input ids,
greedy tokens) and expected.safetensors (per image: pixel values, vision features, connector
output, logits). The Rust test `tests/structure.rs` checks medground against them.

tokenizer_chat.json and expected_chat.json: the same at a chat base's number spelling (no grid
tokens, digits one by one), for the answer grammar over such a tokenizer.

Regenerate after make_processor_fixtures.py (reference tooling only, not part of CI; Pillow < 13
as there):
    .venv/bin/python tools/reference/make_structure_fixture.py
"""

import json
import pathlib
import re
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
    (OUT / "chat_template.jinja").write_text(DEFAULT_CHAT_TEMPLATE)
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
    chat_spelling(model, pre, settings)


ALPHABET = set("{}<>0123456789")


def valid_prefix(text):
    """Whether some completion of `text` is a box answer `{<x1><y1><x2><y2>}` on the 0-100 grid
    (no leading zeros, x1 <= x2, y1 <= y2): the grammar of src/protocol/constrain.rs."""
    if not text:
        return True
    if not text.startswith("{"):
        return False
    m = re.fullmatch(r"\{((?:<(?:0|[1-9][0-9]*)>){0,4})(<[0-9]*)?(\})?", text)
    if not m:
        return False
    values = [int(v) for v in re.findall(r"<([0-9]+)>", m.group(1))]
    lows = [0, 0, values[0] if len(values) > 0 else 0, values[1] if len(values) > 1 else 0]
    if any(v > 100 or v < lows[k] for k, v in enumerate(values)):
        return False
    if m.group(3):
        return len(values) == 4 and not m.group(2)
    if m.group(2) is not None:
        if len(values) == 4:
            return False
        digits = m.group(2)[1:]
        return digits == "" or any(str(v).startswith(digits) for v in range(lows[len(values)], 101))
    return True


def chat_spelling(model, pre, settings):
    """A chat base's tokenizer has no <0>..<100> tokens and spells numbers digit by digit, as
    SmolLM2's does: the same vocabulary with the grid tokens renamed to reserved ones and a
    digit-splitting pre-tokenizer in front. Records how it spells an answer, which tokens can
    appear in one, and the box that greedy decoding constrained to the answer grammar gives on the
    tall image (transformers' generate with prefix_allowed_tokens_fn)."""
    t = json.loads((OUT / "tokenizer.json").read_text())
    for a in t["added_tokens"]:
        m = re.fullmatch(r"<([0-9]+)>", a["content"])
        if m:
            a["content"] = f"<|reserved_{m.group(1)}|>"
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, t["pre_tokenizer"]]}
    (OUT / "tokenizer_chat.json").write_text(json.dumps(t, ensure_ascii=False) + "\n")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer_chat.json"))
    proc = Idefics3Processor(Idefics3ImageProcessorPil(**settings), tok, image_seq_len=SEQ,
                             chat_template=DEFAULT_CHAT_TEMPLATE)
    texts = {i: tok.decode([i]) for i in range(len(tok))}
    answer_vocab = sorted(i for i, s in texts.items() if s and set(s) <= ALPHABET)
    eou = tok.convert_tokens_to_ids("<end_of_utterance>")
    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": f"[refer] give me the location of {PHRASE}"}]}]
    chat = proc.apply_chat_template(messages, add_generation_prompt=True)
    inputs = proc(text=chat, images=[Image.open(OUT / "tall.png")], return_tensors="pt")
    start = inputs["input_ids"].shape[1]

    def allowed(_, ids):
        so_far = "".join(texts[i] for i in ids[start:].tolist())
        if so_far.endswith("}"):
            return [eou]
        return [i for i in answer_vocab if valid_prefix(so_far + texts[i])]

    with torch.no_grad():
        gen = model.generate(**inputs, max_new_tokens=40, do_sample=False, pad_token_id=0,
                             prefix_allowed_tokens_fn=allowed, eos_token_id=eou)
    tokens = [i for i in gen[0, start:].tolist() if i != eou]
    answer = "{<7><13><100><99>}<end_of_utterance>"
    out = {"answer": answer, "answer_ids": tok(answer, add_special_tokens=False)["input_ids"],
           "answer_vocab": answer_vocab, "tall_input_ids": inputs["input_ids"][0].tolist(),
           "tall_tokens": tokens, "tall_text": "".join(texts[i] for i in tokens)}
    (OUT / "expected_chat.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"chat spelling: {answer!r} -> {len(out['answer_ids'])} tokens; tall -> {out['tall_text']}")


if __name__ == "__main__":
    main()
