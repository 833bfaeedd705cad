"""Is model A better than model B on the same phrases? A paired comparison of two `eval --out`s.

    cargo run --release -- eval synth:600:val:7 --model A --out /tmp/a
    cargo run --release -- eval synth:600:val:7 --model B --out /tmp/b
    python3 tools/bench/paired.py /tmp/a/predictions.jsonl /tmp/b/predictions.jsonl

Both files must answer the same phrases in the same order (the same dataset). Per category and
overall: N, Acc@0.5 of A and of B, the phrases only A hits and only B hits, McNemar's z on those
(|z| >= 2: a difference unlikely to be chance, at about 5 %), the mean paired IoU difference
A - B with its standard error and z. Pairing removes the films' own difficulty from the
comparison, so it separates two models that an unpaired table (each with a standard error of
about 1.7 points of Acc@0.5 on 850 phrases) calls level. Standard library only.
"""

import argparse
import json
import math
import statistics


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def compare(pairs):
    """(n, acc_a, acc_b, only_a, only_b, mcnemar_z, mean_diff, se, z) of (a, b) record pairs."""
    n = len(pairs)
    hit = lambda r: r["iou"] >= 0.5
    only_a = sum(hit(a) and not hit(b) for a, b in pairs)
    only_b = sum(hit(b) and not hit(a) for a, b in pairs)
    acc_a = sum(hit(a) for a, _ in pairs) / n
    acc_b = sum(hit(b) for _, b in pairs) / n
    discordant = only_a + only_b
    mz = (only_a - only_b) / math.sqrt(discordant) if discordant else 0.0
    d = [a["iou"] - b["iou"] for a, b in pairs]
    mean = sum(d) / n
    se = statistics.stdev(d) / math.sqrt(n) if n > 1 else float("nan")
    z = mean / se if se and se > 0 else 0.0
    return n, acc_a, acc_b, only_a, only_b, mz, mean, se, z


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="predictions.jsonl of model A")
    p.add_argument("b", help="predictions.jsonl of model B (the same phrases)")
    args = p.parse_args()
    a, b = load(args.a), load(args.b)
    if len(a) != len(b):
        raise SystemExit(f"{len(a)} against {len(b)} answers: not the same dataset")
    for i, (x, y) in enumerate(zip(a, b)):
        if (x["phrase"], x["truth"]) != (y["phrase"], y["truth"]):
            raise SystemExit(f"answer {i} differs in phrase or truth: not the same dataset")
    by_cat = {}
    for x, y in zip(a, b):
        by_cat.setdefault(x["category"], []).append((x, y))
    print("| category | N | Acc@0.5 A | Acc@0.5 B | only A | only B | McNemar z "
          "| mean IoU A - B | se | z |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(c, by_cat[c]) for c in sorted(by_cat)] + [("**overall**", list(zip(a, b)))]
    for name, pairs in rows:
        n, aa, ab, oa, ob, mz, m, se, z = compare(pairs)
        print(f"| {name} | {n} | {aa:.3f} | {ab:.3f} | {oa} | {ob} | {mz:+.2f} "
              f"| {m:+.4f} | {se:.4f} | {z:+.2f} |")


if __name__ == "__main__":
    main()
