#!/usr/bin/env bash
# Create .venv-edgellm/: TensorRT Edge-LLM's Python exporter in its own environment. It pins torch,
# transformers and onnx versions of its own, which must not replace orin-trt's in .venv/.
# torch goes first on its own: where a CPU wheel of that version is on pip's find-links (CI's machines),
# pip takes it instead of downloading a CUDA build of several GB. The same pin goes into the second call
# so nothing replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${EDGELLM_VENV:-.venv-edgellm}
EDGELLM=${EDGELLM_VERSION:-0.11.0}
# export: the ONNX exporter (what runs here). A GPU host that quantizes adds tools (ModelOpt):
# EDGELLM_EXTRAS=export,tools make setup-edgellm
EXTRAS=${EDGELLM_EXTRAS:-export}
TORCH=torch==2.13.0
command -v "$PYTHON" >/dev/null || { echo "setup-edgellm: no Python at $PYTHON (set PYTHON=)" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "setup-edgellm: Edge-LLM needs Python >= 3.10" >&2; exit 1; }
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install "$TORCH"
"$VENV/bin/pip" install "$TORCH" "tensorrt-edgellm[$EXTRAS]==$EDGELLM"
"$VENV/bin/python" -c 'import importlib.metadata as m; print("setup-edgellm: tensorrt-edgellm", m.version("tensorrt-edgellm"))'
touch "$VENV/.installed"
