#!/usr/bin/env bash
# What the GPU machine runs (one call; `bench/device_wheels.sh` first, here): installs the carried
# wheels into a scratch folder, runs bench/gpu_train.sh with the image's python3 and the package from
# this working tree, and leaves the JSON lines and the whole log under $OUT.
#
#   run(command="bash bench/gpu_device.sh", carry=[".whl"], timeout_s=420)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:?set OUT to the folder that comes back}"
SITE="${SITE:-/tmp/site}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHON PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt" || true
"$PYTHON" -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)" | tee "$OUT/versions.txt"
RESULTS="$OUT/gpu_train.jsonl" bash bench/gpu_train.sh 2>&1 | tee "$OUT/log.txt"
