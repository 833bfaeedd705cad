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


SIZE_NAMES = {
    "tiny49": "tiny, 49 image tokens (the shipped models)",
    "tiny196": "tiny, 196 image tokens",
    "smolvlm-256m": "SmolVLM-256M's shapes, one 512-px tile, random weights",
}


def main():
    bench = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "bench")
    sizes = os.environ.get("SIZES", "tiny49 tiny196 smolvlm-256m").split()
    browser = load(bench / "browser.json")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    get = lambda d, k: None if d is None else d.get(k)
    fmt = lambda v: "" if v is None else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"

    def ratio(ours, theirs, higher_better):
        if ours is None or theirs is None:
            return ""
        return f"{(ours / theirs if higher_better else theirs / ours):.2f}x"

    rows, about, torch_version, threads, backend = [], [], None, None, None
    for size in sizes:
        native, torch = load(bench / size / "native.json"), load(bench / size / "torch.json")
        if native is None:
            continue
        torch_version = torch_version or get(torch, "torch")
        threads, backend = get(native, "threads"), get(native, "backend")
        about.append(f"- {size}: {SIZE_NAMES.get(size, size)}; batch {get(native, 'batch')} of "
                     f"{get(native, 'seq')} tokens, {get(native, 'trainable_params')} trainable "
                     "parameters.")
        for what, key, unit, hb in [
            ("stage-2 training (fwd + bwd + AdamW)", "train_samples_per_s", "samples/s", True),
            ("stage-2 training, 2nd epoch on (vision features cached; PyTorch recomputes)",
             "train_cached_samples_per_s", "samples/s", True),
            (f"greedy grounding, prefill + {get(native, 'new_tokens')} box tokens", "ground_ms",
             "ms (median)", False),
            ("peak memory after grounding", "peak_rss_infer_mb", "MB RSS", False),
            ("peak memory after training", "peak_rss_train_mb", "MB RSS", False),
        ]:
            # PyTorch + PEFT recompute the frozen tower every epoch: its one training figure.
            ours, theirs = get(native, key), get(torch, key.replace("_cached", ""))
            rows.append(f"| {size} | {what} | {fmt(ours)} | {fmt(theirs)} | {unit} | "
                        f"{ratio(ours, theirs, hb)} |")
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.date.today()} at commit `{commit}` by `bash tools/bench.sh` on "
        f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}.",
        f"medground on `{backend}` with {threads} threads"
        + (f"; PyTorch {torch_version} with PEFT on the same device." if torch_version
           else "; PyTorch side not run."),
        "Same Idefics3 on both sides (bundles loaded as f32), same LoRA (the `stage2` preset: "
        "r 16, alpha 32 on every linear layer of the text model; connector trained, vision "
        "frozen), same batch of synthetic films, same query. Medians after warm-up. Ratio: "
        "medground over PyTorch for throughput, PyTorch over medground for time and memory, so "
        "above 1.00x means medground is ahead. Sizes:",
        *about,
        "",
        "## Native: medground (Burn) vs PyTorch + transformers + PEFT",
        "",
        "| size | figure | medground | PyTorch | unit | ratio |",
        "|---|---|---:|---:|---|---:|",
        *rows,
        "",
        "Where a training step's time goes on each side, and what was tried: docs/speed.md "
        "(`bash tools/profile.sh`).",
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
    elif (ROOT / "docs" / "BENCHMARKS.md").exists():
        # SKIP_BROWSER=1: keep the last browser table, saying when it was measured.
        previous = (ROOT / "docs" / "BENCHMARKS.md").read_text()
        if "## Browser" in previous:
            section = previous[previous.index("## Browser"):].rstrip().splitlines()
            measured = next((l for l in previous.splitlines() if l.startswith("Measured ")), "")
            when = measured.split(" by ")[0].replace("Measured ", "") or "an earlier run"
            note = f"Not rerun this time (SKIP_BROWSER=1): measured {when}."
            if any(l.startswith("Not rerun") for l in section):
                note = None  # already carried over once: its own date stays
            lines += [section[0], *(["", note] if note else []), *section[1:], ""]
    text = "\n".join(lines)
    print(text)
    if os.environ.get("REPORT", "1") != "0":
        (ROOT / "docs" / "BENCHMARKS.md").write_text(text)


if __name__ == "__main__":
    main()
