"""PyTorch + transformers + PEFT side of docs/BENCHMARKS.md, on the inputs `medground bench
--save-inputs DIR` measured: the same tiny Idefics3 (the shipped bundles, loaded as f32), LoRA with
the same targets, rank and alpha (the `stage2` preset's, read from inputs.json; no dropout) plus
the connector, AdamW with gradient clipping, the same batch; greedy grounding of the same query for
the same number of new tokens; peak resident memory. Medians after warm-up, torch limited to
--threads threads.

Install (reference tooling only, not part of CI; PyPI):
    python3 -m venv .venv && .venv/bin/pip install torch transformers peft safetensors
Run (tools/bench.sh does all of this):
    medground bench --save-inputs target/bench --json target/bench/native.json
    .venv/bin/python tools/reference/bench_torch.py --inputs target/bench --json target/bench/torch.json
"""

import argparse
import json
import pathlib
import resource
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import Idefics3ForConditionalGeneration


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_ms(warm, timed, fn, device):
    times = []
    for k in range(warm + timed):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if k >= warm:
            times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", default="target/bench")
    ap.add_argument("--base", default="assets/base")
    ap.add_argument("--model", default="assets/demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--json")
    a = ap.parse_args()
    device = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    inputs = load_file(str(pathlib.Path(a.inputs) / "inputs.safetensors"), device=str(device))
    meta = json.loads((pathlib.Path(a.inputs) / "inputs.json").read_text())
    n_new = meta["new_tokens"]

    # Grounding: prefill and n_new greedy tokens.
    model = Idefics3ForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32).to(device).eval()
    q_ids = inputs["query_ids"]
    q_pixels = inputs["query_pixels"][:, None]  # [1, images, 3, H, W]

    def ground():
        with torch.inference_mode():
            model.generate(input_ids=q_ids, pixel_values=q_pixels,
                           attention_mask=torch.ones_like(q_ids), max_new_tokens=n_new,
                           min_new_tokens=n_new, do_sample=False, pad_token_id=0)

    ground_ms = median_ms(3, a.queries, ground, device)
    rss_infer = peak_rss_mb()
    del model

    # Training: stage 2 (vision frozen, LoRA on q/v, connector trained).
    base = Idefics3ForConditionalGeneration.from_pretrained(a.base, dtype=torch.float32).to(device)
    lo = meta["lora"]
    lora = LoraConfig(r=lo["rank"], lora_alpha=lo["alpha"], lora_dropout=0.0, bias="none",
                      target_modules=lo["modules"])
    model = get_peft_model(base, lora)
    for name, p in model.named_parameters():
        if ".connector." in name:
            p.requires_grad_(True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    optim = torch.optim.AdamW(params, lr=meta["lr"], weight_decay=meta["weight_decay"],
                              eps=meta.get("eps", 1e-8))
    ids, labels = inputs["input_ids"], inputs["labels"]
    pixels = inputs["pixel_values"][:, None]
    mask = torch.ones_like(ids)

    def step():
        out = model(input_ids=ids, pixel_values=pixels, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, meta["clip_norm"])
        optim.step()
        optim.zero_grad(set_to_none=True)

    step_ms = median_ms(2, a.steps, step, device)
    batch = ids.shape[0]
    figures = {
        "backend": f"torch-{device.type}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "seq": ids.shape[1],
        "trainable_params": trainable,
        "train_step_ms": step_ms,
        "train_samples_per_s": batch * 1000.0 / step_ms,
        "ground_ms": ground_ms,
        "new_tokens": n_new,
        "peak_rss_infer_mb": rss_infer,
        "peak_rss_train_mb": peak_rss_mb(),
    }
    if device.type == "cuda":
        figures["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(figures, indent=2))
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
