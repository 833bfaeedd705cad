"""PyTorch + transformers' side of `examples/ground_parts.rs` (tools/profile.sh): a grounding
query's vision tower, connector with the embedding, prefill (with the head on the last position)
and 6 new tokens against the cache, each a mean over 8 queries after 2 untimed ones, on the
query `medground bench --save-inputs DIR` wrote.
    .venv/bin/python tools/reference/ground_parts.py --inputs DIR --model BUNDLE_DIR
"""

import argparse
import pathlib
import time

import torch
from safetensors.torch import load_file
from transformers import Idefics3ForConditionalGeneration

NEW, TIMED = 6, 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    inputs = load_file(str(pathlib.Path(a.inputs) / "inputs.safetensors"))
    model = Idefics3ForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32).eval()
    ids, pixels = inputs["query_ids"], inputs["query_pixels"]
    text, embed = model.model.text_model, model.model.get_input_embeddings()
    sums = [0.0] * 4
    with torch.inference_mode():
        for query in range(TIMED + 2):
            start = time.perf_counter()
            patches = model.model.vision_model(pixel_values=pixels).last_hidden_state
            vision = time.perf_counter()
            model.model.connector(patches)
            embeds = embed(ids)
            merged = time.perf_counter()
            out = text(inputs_embeds=embeds, use_cache=True)
            model.lm_head(out.last_hidden_state[:, -1:])
            cache = out.past_key_values
            prefilled = time.perf_counter()
            for _ in range(NEW):
                out = text(inputs_embeds=embed(torch.tensor([[10]])), past_key_values=cache,
                           use_cache=True)
                cache = out.past_key_values
                model.lm_head(out.last_hidden_state[:, -1:])
            end = time.perf_counter()
            if query >= 2:
                parts = [vision - start, merged - vision, prefilled - merged, end - prefilled]
                sums = [s + p * 1e3 / TIMED for s, p in zip(sums, parts)]
    v, c, p, d = sums
    print(f"| {ids.shape[1]} prompt tokens | vision {v:.1f} | connector and embedding {c:.1f} "
          f"| prefill {p:.1f} | {NEW} new tokens {d:.1f} | ms |")


if __name__ == "__main__":
    main()
