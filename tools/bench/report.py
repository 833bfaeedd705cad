"""Joins target/bench/{native,torch,browser}.json into one table (printed, and written to
docs/BENCHMARKS.md with the machine and the date). Run by tools/bench.sh."""

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load(path):
    p = pathlib.Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def cpu_name():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    bench = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "bench")
    native, torch, browser = (load(bench / f) for f in ("native.json", "torch.json", "browser.json"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    rows = []

    def row(what, ours, theirs, unit, higher_better):
        if ours is None or theirs is None:
            ratio = ""
        else:
            ratio = f"{(ours / theirs if higher_better else theirs / ours):.2f}x"
        fmt = lambda v: "" if v is None else f"{v:.1f}"
        rows.append(f"| {what} | {fmt(ours)} | {fmt(theirs)} | {unit} | {ratio} |")

    get = lambda d, k: None if d is None else d.get(k)
    row("stage-2 training (fwd + bwd + AdamW), batch %s" % get(native, "batch"),
        get(native, "train_samples_per_s"), get(torch, "train_samples_per_s"), "samples/s", True)
    row("greedy grounding, prefill + %s box tokens" % get(native, "new_tokens"),
        get(native, "ground_ms"), get(torch, "ground_ms"), "ms (median)", False)
    row("peak memory after grounding", get(native, "peak_rss_infer_mb"),
        get(torch, "peak_rss_infer_mb"), "MB RSS", False)
    row("peak memory after training", get(native, "peak_rss_train_mb"),
        get(torch, "peak_rss_train_mb"), "MB RSS", False)
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.date.today()} at commit `{commit}` by `bash tools/bench.sh` on "
        f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}.",
        f"Both sides use {get(native, 'threads')} threads"
        + (f"; PyTorch {get(torch, 'torch')} with PEFT." if torch else "; PyTorch side not run."),
        "Same tiny Idefics3 (the shipped bundles as f32), same LoRA (the `stage2` preset: r 16, "
        "alpha 32 on every linear layer of the text model; connector trained, vision frozen; "
        f"{get(native, 'trainable_params')} trainable parameters on both sides), same batch of "
        f"{get(native, 'batch')} synthetic films ({get(native, 'seq')} tokens each), same query. "
        "Medians after warm-up. Ratio: medground over PyTorch for throughput, PyTorch over "
        "medground for time and memory, so above 1.00x means medground is ahead.",
        "",
        "## Native CPU: medground (Burn flex) vs PyTorch + transformers + PEFT",
        "",
        "| figure | medground | PyTorch | unit | ratio |",
        "|---|---:|---:|---|---:|",
        *rows,
        "",
    ]
    if browser:
        lines += [
            "## Browser: the npm package in headless chromium",
            "",
            "WebGPU here is SwiftShader (a CPU implementation): it shows that the path works, not "
            "how fast a GPU is. Model load = fetch the bundle from loopback, check its sha256, "
            "build the model; the first query includes shader compilation.",
            "",
            "| backend | model load ms | first query ms | median query ms | queries |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in browser.items():
            lines.append(f"| {r['backend']} ({r.get('browser', '')}) | {r['loadMs']:.0f} | "
                         f"{r['firstMs']:.0f} | {r['medianMs']:.0f} | {r['queries']} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (ROOT / "docs" / "BENCHMARKS.md").write_text(text)


if __name__ == "__main__":
    main()
