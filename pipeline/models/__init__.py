"""Model family adapters, looked up by the recipe's `family`."""

from __future__ import annotations

import importlib

from ..errors import PipelineError
from .base import ModelAdapter

FAMILIES = {
    "yolo": "pipeline.models.yolo:YoloAdapter",
    "vit": "pipeline.models.vit:VitAdapter",
    "unet": "pipeline.models.unet:UnetAdapter",
    "llama": "pipeline.models.llama:LlamaAdapter",
}


def get_adapter(family: str) -> ModelAdapter:
    if family not in FAMILIES:
        raise PipelineError(f"unknown model family {family!r} (known: {', '.join(sorted(FAMILIES))})")
    module, cls = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), cls)()
