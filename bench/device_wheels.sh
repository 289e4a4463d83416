#!/usr/bin/env bash
# Wheels of the packages that `imagenet_multimodal.train` imports and the GPU machine's image lacks
# (it has torch, transformers, accelerate, tokenizers, pyarrow, numpy, tqdm, regex, pyyaml), for its
# Python (3.12, x86-64), into .whl/ (git-ignored). Run here, where PyPI is reachable; the device
# machine reaches nothing, so the wheels travel with the working tree (`carry: [".whl"]`).
#
#   bash bench/device_wheels.sh               # PYVER=3.12
#   then on the device machine:  bash bench/gpu_device.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER="${PYVER:-3.12}"
rm -rf .whl.tmp && mkdir .whl.tmp
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl.tmp "orjson==3.13.0" "syntok==1.4.4"
rm -rf .whl && mv .whl.tmp .whl
ls -l .whl
