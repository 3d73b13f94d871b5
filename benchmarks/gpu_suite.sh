#!/usr/bin/env bash
# Every GPU measurement of docs/performance.md from one command, in a few minutes on one
# H100/H200: the GPU-only tests, the attention kernel jetfm's masks get, training throughput and
# MFU of the demo and paper encoders (eager and torch.compile, bf16) on full 128-constituent,
# JetClass-like and btag-like jets, KV-cache decoding, and demo-size downstream runs per hour on
# one GPU, one at a time against packed side by side (the tiny config's boosted jets). JSON and logs land in OUT (default
# gpu-results/).
#
#     bash benchmarks/gpu_suite.sh [OUT]
#
# PEAK_TFLOPS overrides the dense bf16 peak used for MFU (default from the GPU's name); SAMPLES
# picks the training-speed samples (default "full boosted btag"), ROUNDS their rounds (3).
# DEVICE=cpu runs the same sequence on the CPU: a rehearsal of the script, not a measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-results}
device=${DEVICE:-cuda}
rounds=${ROUNDS:-3}
mkdir -p "$out"
DEVICE=$device python - <<'PY' > "$out/gpu.txt"
import os
import torch
if os.environ["DEVICE"] == "cuda":
    assert torch.cuda.is_available(), "no CUDA device: this suite measures the GPU path (DEVICE=cpu rehearses it)"
    print(torch.cuda.get_device_name(0), torch.__version__, torch.version.cuda, sep=" | ")
else:
    print("cpu", torch.__version__, sep=" | ")
PY
name=$(cat "$out/gpu.txt")
case "$name" in
  *H100*PCIe*) peak=756 ;;
  *H100*|*H200*|*GH200*) peak=989 ;;
  *A100*) peak=312 ;;
  *) peak=989 ;;
esac
peak=${PEAK_TFLOPS:-$peak}
if [ "$device" = cuda ]; then
  echo "$name; MFU against $peak TFLOP/s" | tee -a "$out/gpu.txt"
else
  echo "$name: a rehearsal on the CPU (its rates are the CPU's)" | tee -a "$out/gpu.txt"
fi
run() {  # name, command...: JSON on stdout to OUT/name.json, the table and warnings to OUT/name.log
  local label=$1
  shift
  echo "== $label: $*"
  "$@" > "$out/$label.json" 2> "$out/$label.log" || { echo "   failed (see $out/$label.log)"; return 0; }
  grep -v -e Warning -e warn -e USDT "$out/$label.log" | tail -8
}
echo "== tests that need a GPU (pinned batches, steps without host waits)"
python -m pytest -q -rs tests/test_device_path.py > "$out/device_tests.txt" 2>&1 || true
tail -3 "$out/device_tests.txt"
run attention_kernels python benchmarks/attention_kernels.py --device "$device"
# full first: the papers' timing case; later samples reuse the compiled graphs from inductor's cache
for sample in ${SAMPLES:-full boosted btag}; do
  run "training_speed_$sample" python benchmarks/training_speed.py --device "$device" --compile \
    --rounds "$rounds" --sample "$sample" --peak-tflops "$peak"
done
run sampling_speed python benchmarks/sampling_speed.py --device "$device" --rounds "$rounds"
echo "== jets for the packed runs (tiny config, boosted sample)"
mkdir -p "$out/wf"
# the targets before --configfile, which takes several files
snakemake data/jets/boosted/train.json data/jets/boosted/val.json data/jets/boosted/test.json \
  -s "$PWD/Snakefile" -d "$out/wf" --cores "$(nproc)" --configfile "$PWD/config/tiny.yaml" \
  > "$out/wf.log" 2>&1 || echo "   failed (see $out/wf.log)"
run packed_runs python benchmarks/packed_runs.py --jets "$out/wf/data/jets/boosted" --device "$device" \
  --runs "${PACKED_RUNS:-4}" --steps "${PACKED_STEPS:-300}"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
