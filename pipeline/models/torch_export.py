"""Exporting a torch module to ONNX for families without their own exporter (ViT, UNet).

The TorchScript exporter writes weights over 2 GB as many loose files beside the model; exporting into a
scratch folder and saving once through onnx_utils gathers them into the one `<name>.data` file every
stage expects (and writes it atomically).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from .base import Feed


def export_module(
    module: Any,
    example: Feed,
    onnx_out: Path,
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
    metadata: dict[str, str] | None = None,
) -> None:
    """Export `module(**example)` with its inputs named as in `example`, in that order; `metadata` goes into
    the model's metadata_props (what deploy_info reads back)."""
    import torch

    args = tuple(torch.from_numpy(a) for a in example.values())
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".orin-trt-export-", dir=onnx_out.parent) as tmp:
        path = Path(tmp) / "model.onnx"
        with torch.no_grad():
            # The dynamo exporter renames nodes per release and fails on data-dependent guards in
            # these models (shared notes); TorchScript export names nodes after their modules, which
            # the recipes' keep-out patterns rely on.
            torch.onnx.export(
                module, args, str(path), input_names=list(example), output_names=output_names,
                dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False,
            )
        model = onnx_utils.load_header(path)  # large weights stay in the exporter's files, streamed
        onnx_utils.set_metadata(model, metadata or {})
        onnx_utils.save(model, onnx_out, external_data=None, base_dir=Path(tmp))


def torch_outputs(module: Any, feeds: list[Feed]) -> list[list[np.ndarray]]:
    """The module's single output on each feed (inputs passed positionally, in feed order)."""
    import torch

    outs = []
    with torch.no_grad():
        for feed in feeds:
            out = module(*(torch.from_numpy(a) for a in feed.values()))
            outs.append([out.detach().float().numpy()])
    return outs
