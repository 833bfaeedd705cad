"""Parity fixtures: a tiny random Idefics3 built with transformers, and what it computes.

Writes tests/fixtures/parity/: config.json, model.safetensors, tokenizer.json (a small byte-level
BPE with the Idefics3 chat tokens and the answer grid tokens), image.png, expected.json (prompt,
input ids, greedy tokens) and expected.safetensors (pixel values, vision features, connector
output, logits). The Rust test `tests/parity.rs` checks medground against them.

Regenerate (reference tooling only, not part of CI):
    python3 -m venv .venv && .venv/bin/pip install torch transformers safetensors pillow numpy
    .venv/bin/python tools/reference/make_parity_fixtures.py
"""

import json
import pathlib

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Idefics3Config, Idefics3ForConditionalGeneration

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "parity"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>",
           "<global-img>", "<image>"]
GRID = [f"<{i}>" for i in range(101)]
IMAGE_SIZE, PATCH, SCALE = 64, 8, 2
IMAGE_TOKENS = (IMAGE_SIZE // PATCH // SCALE) ** 2
PHRASE = "small left pleural effusion"


def tokenizer():
    corpus = [
        "give me the location of small left pleural effusion",
        "where is the right apical pneumothorax ?",
        "from this image, tell me the location of cardiomegaly",
        "User: Assistant: [refer] bilateral edema consolidation atelectasis opacity pneumonia",
    ] * 20
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens(GRID)
    return tok


def prompt():
    image = "<fake_token_around_image><global-img>" + "<image>" * IMAGE_TOKENS + "<fake_token_around_image>"
    return (f"<|im_start|>User:{image}[refer] give me the location of {PHRASE}"
            "<end_of_utterance>\nAssistant:")


def small_model(image_token_id, vocab, image_size, patch, scale, tied, rope_theta, max_positions):
    """A random Idefics3 at small widths (vision 32 wide, text 48, two layers each), its weights
    larger than the default init so that the checks are not trivially near zero."""
    config = Idefics3Config(
        image_token_id=image_token_id,
        scale_factor=scale,
        tie_word_embeddings=tied,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=image_size, patch_size=patch,
                           num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6),
        text_config=dict(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         rms_norm_eps=1e-5, rope_theta=rope_theta,
                         max_position_embeddings=max_positions, tie_word_embeddings=tied,
                         hidden_act="silu"),
    )
    model = Idefics3ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
            elif "norm" in name:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.1)
    return model


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    tok.save(str(OUT / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    model = small_model(tok.token_to_id("<image>"), vocab, IMAGE_SIZE, PATCH, SCALE, tied=False,
                        rope_theta=10000.0, max_positions=256)
    model.save_pretrained(OUT, safe_serialization=True)
    for extra in ["generation_config.json"]:
        (OUT / extra).unlink(missing_ok=True)

    # A 64x64 grayscale film-like image: smooth gradient plus a bright blob.
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    img = 40 + 120 * (x / IMAGE_SIZE) + 90 * np.exp(-((x - 40) ** 2 + (y - 22) ** 2) / 60.0)
    img = np.clip(img, 0, 255).astype(np.uint8)
    Image.fromarray(img, mode="L").save(OUT / "image.png")
    pixels = torch.from_numpy(img.astype(np.float32) / 255.0 * 2.0 - 1.0)
    pixels = pixels[None, None].repeat(1, 3, 1, 1)  # [1, 3, H, W]

    text = prompt()
    ids = tok.encode(text).ids
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        vision = model.model.vision_model(pixel_values=pixels,
                                          patch_attention_mask=torch.ones(1, IMAGE_SIZE // PATCH, IMAGE_SIZE // PATCH, dtype=torch.bool)).last_hidden_state
        connector = model.model.connector(vision)
        out = model(input_ids=input_ids, pixel_values=pixels[None], attention_mask=torch.ones_like(input_ids))
        logits = out.logits
        gen = model.generate(input_ids=input_ids, pixel_values=pixels[None],
                             attention_mask=torch.ones_like(input_ids), max_new_tokens=12,
                             do_sample=False, min_new_tokens=12, pad_token_id=0)
    greedy = gen[0, len(ids):].tolist()
    save_file({"pixel_values": pixels.contiguous(), "vision_features": vision.contiguous(),
               "connector": connector.contiguous(), "logits": logits.contiguous()},
              str(OUT / "expected.safetensors"))
    (OUT / "expected.json").write_text(json.dumps(
        {"phrase": PHRASE, "prompt": text, "input_ids": ids, "greedy_tokens": greedy,
         "image_tokens": IMAGE_TOKENS}, indent=1))
    print(f"wrote {OUT}: vocab {vocab}, prompt {len(ids)} tokens, greedy {greedy}")


if __name__ == "__main__":
    main()
