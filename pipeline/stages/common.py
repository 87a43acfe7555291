"""What several stages need to know about the tools they depend on."""

from __future__ import annotations

# Distributions whose versions enter the cache key of any stage that runs ONNX or ONNX Runtime.
ONNX_TOOLS = ["onnx", "onnxruntime", "onnxruntime-gpu", "polygraphy"]
QUANT_TOOLS = ["nvidia-modelopt", "onnx-graphsurgeon"]
# The builder; whichever is installed is part of the build's key.
TRT_TOOLS = ["tensorrt", "tensorrt-rtx-cu13", "tensorrt_rtx_cu13_bindings"]
