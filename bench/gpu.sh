#!/usr/bin/env bash
# The video bench on the CUDA execution provider, for a machine with an NVIDIA GPU and
# onnxruntime-gpu installed (pip install onnxruntime-gpu in place of onnxruntime).
# Prints bench.video's table, then per-frame milliseconds at 1080p for both sides.
#   bench/gpu.sh            # full grid, 60 frames per clip
#   bench/gpu.sh --repeat 3 # any bench.video flag passes through
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python -c 'import onnxruntime, sys; sys.exit("CUDAExecutionProvider" not in onnxruntime.get_available_providers())'; then
  echo "bench/gpu.sh: this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu on a machine with an NVIDIA GPU)" >&2
  exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

output=$(python -m bench.video --execution-providers cuda cpu "$@")
echo "$output"
# table rows: "1080p N face(s) FRAMES REF_FPS ENCLAVE_FPS RATIO LANDMARK_FPS FACES"
echo "$output" | awk '$1 == "1080p" && $5 > 0 && $6 > 0 {
  printf "1080p %s face(s): reference %.1f ms/frame, enclave %.1f ms/frame, landmark swapper %.1f ms/frame\n", $2, 1000 / $5, 1000 / $6, 1000 / $8
}'
