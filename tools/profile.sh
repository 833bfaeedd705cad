#!/usr/bin/env bash
# Where a CPU training step's time goes (docs/speed.md): the
# 196-token tiny model's stage-2 step beside PyTorch + PEFT at 1 and 2 threads (how much of each
# side runs in parallel), the step's matrix products and elementwise ops timed alone on both
# sides, the vision tower's parts, and a flat `perf` profile of one-thread steps when perf is
# installed. Run after `bash tools/bench.sh` has made target/bench/tiny196 (or it makes it).
#   bash tools/profile.sh            # prints markdown tables; the perf report goes to $out
set -euo pipefail
cd "$(dirname "$0")/.."
out=${PROFILE_OUT:-target/profile}
mkdir -p "$out"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --locked ${FEATURES:+--features "$FEATURES"} \
  --bin medground --example profile_ops --example ground_parts
py=${PYTHON:-.venv/bin/python}
mg=./target/release/medground
dir=target/bench/tiny196
if [ ! -f "$dir/torch.json" ]; then
  SIZES=tiny196 SKIP_BROWSER=1 REPORT=0 NO_BUILD=1 bash tools/bench.sh
fi
figure() { "$py" -c "import json,sys; print(round(json.load(open(sys.argv[1]))[sys.argv[2]]))" "$1" "${2:-train_step_ms}"; }
echo "| threads | medground ms a step | forward | backward | PyTorch + PEFT ms a step | ratio |"
echo "|---:|---:|---:|---:|---:|---:|"
# The one-thread run is also the one `perf` samples, when it is installed (its figure then carries
# perf's sampling, about 1 %).
record=()
command -v perf > /dev/null && record=(perf record -q -e cpu-clock -F 499 -o "$out/perf.data")
for t in 1 2; do
  [ "$t" = 1 ] || record=()
  RAYON_NUM_THREADS=$t "${record[@]}" $mg bench --base "$dir/base" --model "$dir/demo" --batch 16 \
    --steps 3 --queries 1 --json "$out/native-$t.json" > /dev/null 2>&1
  "$py" tools/reference/bench_torch.py --device cpu --threads $t --base "$dir/base" \
    --model "$dir/demo" --steps 3 --queries 1 --inputs "$dir" --json "$out/torch-$t.json" > /dev/null
  n=$(figure "$out/native-$t.json"); p=$(figure "$out/torch-$t.json")
  f=$(figure "$out/native-$t.json" train_forward_ms); b=$(figure "$out/native-$t.json" train_backward_ms)
  echo "| $t | $n | $f | $b | $p | $("$py" -c "print(f'{$p / $n:.2f}x')") |"
done
echo
# The fused kernels (src/kernels/) against Burn's composition, the same binary, 2 threads.
echo "| path (2 threads) | ms a step | forward | backward | grounding ms |"
echo "|---|---:|---:|---:|---:|"
for f in 0 1; do
  MEDGROUND_FUSED=$f RAYON_NUM_THREADS=2 $mg bench --base "$dir/base" --model "$dir/demo" --batch 16 \
    --steps 4 --queries 10 --json "$out/fused-$f.json" > /dev/null 2>&1
  j=$out/fused-$f.json
  name=$([ $f = 1 ] && echo "fused (default)" || echo "Burn's composition (MEDGROUND_FUSED=0)")
  echo "| $name | $(figure $j) | $(figure $j train_forward_ms) | $(figure $j train_backward_ms) | $(figure $j ground_ms) |"
done
echo
echo "## medground (Burn flex), 2 threads"
RAYON_NUM_THREADS=2 ./target/release/examples/profile_ops "$dir/base/config.json"
echo
echo "## PyTorch, 2 threads"
"$py" tools/bench/torch_ops.py 2
# A grounding query's parts at SmolVLM-256M's structure, both sides (made by bench.sh's full run).
big=target/bench/smolvlm-256m
if [ -f "$big/inputs.safetensors" ]; then
  echo
  echo "## A grounding query's parts at SmolVLM-256M's structure, 2 threads: medground, then PyTorch"
  RAYON_NUM_THREADS=2 ./target/release/examples/ground_parts "$big/model"
  "$py" tools/reference/ground_parts.py --inputs "$big" --model "$big/model" 2> /dev/null
fi
if [ -f "$out/perf.data" ]; then
  perf report -i "$out/perf.data" --no-children --sort symbol --stdio 2> /dev/null \
    | grep -E '^ +[0-9]' | awk 'NR <= 25' > "$out/perf.txt"
  echo
  echo "perf, one thread, top symbols ($out/perf.txt):"
  cat "$out/perf.txt"
fi
