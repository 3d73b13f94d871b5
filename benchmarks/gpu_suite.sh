#!/usr/bin/env bash
# Every GPU measurement of docs/performance.md from one command, in a few minutes on one
# H100/H200: the GPU-only tests, the attention kernel jetfm's masks get, training throughput and MFU of the demo and
# paper encoders (eager and torch.compile, bf16) on btag-like, JetClass-like and full
# 128-constituent jets, and KV-cache decoding. JSON and logs land in OUT (default gpu-results/).
#
#     bash benchmarks/gpu_suite.sh [OUT]
#
# PEAK_TFLOPS overrides the dense bf16 peak used for MFU (default from the GPU's name).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-results}
mkdir -p "$out"
python - <<'PY' > "$out/gpu.txt"
import torch
assert torch.cuda.is_available(), "no CUDA device: this suite measures the GPU path"
print(torch.cuda.get_device_name(0), torch.__version__, torch.version.cuda, sep=" | ")
PY
name=$(cat "$out/gpu.txt")
case "$name" in
  *H100*PCIe*) peak=756 ;;
  *H100*|*H200*|*GH200*) peak=989 ;;
  *A100*) peak=312 ;;
  *) peak=989 ;;
esac
peak=${PEAK_TFLOPS:-$peak}
echo "$name; MFU against $peak TFLOP/s" | tee -a "$out/gpu.txt"
run() {  # name, command...: JSON on stdout to OUT/name.json, the table and warnings to OUT/name.log
  local label=$1
  shift
  echo "== $label: $*"
  "$@" > "$out/$label.json" 2> "$out/$label.log" || { echo "   failed (see $out/$label.log)"; return 0; }
  grep -v -e Warning -e warn -e USDT "$out/$label.log" | tail -8
}
echo "== tests that need a GPU (pinned, asynchronous batches)"
python -m pytest -q -rs tests/test_device_path.py > "$out/device_tests.txt" 2>&1 || true
tail -3 "$out/device_tests.txt"
run attention_kernels python benchmarks/attention_kernels.py --device cuda
for sample in btag boosted full; do
  run "training_speed_$sample" python benchmarks/training_speed.py --device cuda --compile --rounds 3 \
    --sample "$sample" --peak-tflops "$peak"
done
run sampling_speed python benchmarks/sampling_speed.py --device cuda --rounds 3
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
