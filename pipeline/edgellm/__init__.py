"""TensorRT Edge-LLM as a second LLM backend (`llm.backend: edgellm`, docs/llm.md).

Its exporter runs in its own virtual environment (`.venv-edgellm/`, env.py) because it pins torch,
transformers and onnx versions of its own; its builder and runtime are C++ tools on the Jetson
(commands.py). stages.py maps them onto orin-trt's stages and writes our manifest and report.
"""

from __future__ import annotations

from typing import Any

BACKEND = "edgellm"


def uses_edgellm(recipe: Any) -> bool:
    """Whether the recipe hands its LLM to Edge-LLM (only a family with an `llm:` section can)."""
    llm = getattr(recipe.spec, "llm", None)
    return getattr(llm, "backend", "native") == BACKEND
