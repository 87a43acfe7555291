#!/usr/bin/env bash
# Llama-3-8B rows of benchmarks/results/scale.md, on the 128 GiB GPU machine: one stage per call (each call
# is limited to 10 minutes), export first, then int4. That machine has torch, transformers, onnx,
# onnxruntime and cupy but not the rest of orin-trt's stack: WHEELS holds the wheels of the versions in
# the project's venv (docs/memory.md lists them), installed with --no-deps so that ModelOpt's onnx pin
# does not replace the machine's onnx.
set -euo pipefail
stage=${1:?usage: benchmarks/scale_gpu_host.sh export|int4|... [WHEELS]}
wheels=${2:-.whl}
site=/tmp/orin-trt-site
[ -d "$site" ] || pip install -q --no-index --no-deps --target "$site" "$wheels"/*.whl
export PYTHONPATH=$site:$PWD
python benchmarks/scale.py --models llama-3-8b --stages "$stage" --root /tmp/orin-trt-scale --redo
