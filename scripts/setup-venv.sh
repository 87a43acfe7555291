#!/usr/bin/env bash
# Create .venv/ and install orin-trt with what this machine can run.
#  - Jetson (JetPack): reuse the system's torch, TensorRT and onnxruntime wheels (NVIDIA's builds)
#    through --system-site-packages; never replace them from PyPI.
#  - Any other host: torch from PyPI, and TensorRT-RTX as the builder when standard TensorRT is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "orin-trt needs Python >= 3.10" >&2; exit 1; }
# Python 3.10 (JetPack 6.2): ModelOpt has announced dropping it; stay on the last release that supports it.
PINS=()
if "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  echo "setup: Python 3.10: pinning $(grep -v '^#' scripts/constraints-py310.txt) (scripts/constraints-py310.txt):" \
       "the last ModelOpt whose metadata admits 3.10; ModelOpt has announced dropping Python 3.10"
  PINS=(-c scripts/constraints-py310.txt)
fi

if [[ -f /etc/nv_tegra_release ]]; then
  echo "setup: Jetson detected ($(head -1 /etc/nv_tegra_release)); using JetPack's torch / TensorRT"
  "$PYTHON" -m venv --system-site-packages .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install "${PINS[@]}" -e ".[export,quantize,runtime,nightly,dev]"
  exit 0
fi

"$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# x86_64 without a GPU: these two are the CPU-usable pair (PyPI's torchvision 0.28 fails to import
# beside a CPU torch). They go first, then again in the same call as the rest so nothing replaces them.
TORCH=(torch==2.14.1 torchvision==0.29.1)
if [[ $(uname -m) == aarch64 ]]; then TORCH=(torch==2.9.1 torchvision==0.24.1); fi
.venv/bin/pip install "${TORCH[@]}"
EXTRAS="export,quantize,runtime,nightly,dev"
"$PYTHON" - <<'PY' || EXTRAS="$EXTRAS,rtx"
import importlib.util, sys
sys.exit(0 if importlib.util.find_spec("tensorrt") else 1)
PY
.venv/bin/pip install "${PINS[@]}" "${TORCH[@]}" -e ".[$EXTRAS]"
