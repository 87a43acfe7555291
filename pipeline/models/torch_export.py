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

    from ..core.log import log

    args = tuple(torch.from_numpy(a) for a in example.values())
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    params = sum(p.numel() for p in module.parameters())
    log("export", f"torch.onnx.export of {params / 1e6:.1f}M parameters at opset {opset} (minutes for a real-size "
                  "model)...")
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
        log("export", "exported; gathering the weights into one file")
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


def export_dtype(recipe: Any, fp32_bytes: int, family: str) -> tuple[str, str]:
    """The dtype the weights are exported in, and why: the recipe's `export.dtype`, or for `auto` FP32
    unless this host's memory (pipeline/analyze/host.py, the measured export ratio) cannot take an FP32
    export of `fp32_bytes` of weights, then FP16."""
    from ..analyze.host import memory_available, stage_memory

    asked = str(recipe.section("export").get("dtype", "auto"))
    if asked != "auto":
        return asked, f"export.dtype: {asked}"
    need, free = stage_memory("export", fp32_bytes), memory_available()
    if need <= free:
        return "float32", f"FP32 ({fp32_bytes / 1e9:.2f} GB of weights; the export needs about {need / 2**30:.1f} GiB, " \
                          f"{free / 2**30:.1f} GiB available)"
    return "float16", (f"FP16: an FP32 export of this {family} ({fp32_bytes / 1e9:.2f} GB of weights) needs about "
                       f"{need / 2**30:.1f} GiB of memory, {free / 2**30:.1f} GiB available (export.dtype: float32 "
                       "forces it)")


def choose_dtype(recipe: Any, build: Any, family: str) -> tuple[str, str]:
    """The export dtype (export_dtype over the meta-built model's size), after checking this host can take
    the export at it (analyze/host.py: refused in one line, before the model is loaded, when not)."""
    from ..analyze.host import require_memory
    from ..core.log import log

    fp32 = parameter_bytes(build)
    dtype, why = export_dtype(recipe, fp32, family)
    log("export", f"weights in {why}")
    require_memory("export", fp32 if dtype == "float32" else fp32 // 2, f"{family} parameters in {dtype}")
    return dtype, why


def parameter_bytes(build: Any) -> int:
    """FP32 bytes of the parameters `build()` makes, built on the meta device (no memory, no init)."""
    import torch

    with torch.device("meta"):
        module = build()
    return sum(p.numel() for p in module.parameters()) * 4


def float_io(module: Any, dtype: str, output_dtypes: list[Any] | None = None) -> Any:
    """`module` (weights in `dtype`) behind the FP32 interface the ONNX keeps: floating inputs cast to
    `dtype` on the way in, outputs to `output_dtypes` (default float32) on the way out; the casts export as
    Cast nodes, so every consumer feeds and reads what it did for an FP32 export. The module's own forward
    is wrapped in place (not a parent module), so node names, which keep-out patterns match, stay as they are."""
    import torch

    if dtype == "float32":
        return module
    target, inner = getattr(torch, dtype), module.forward

    def forward(*args: Any) -> Any:
        out = inner(*(a.to(target) if a.is_floating_point() else a for a in args))
        outs = out if isinstance(out, tuple) else (out,)
        types = output_dtypes or [torch.float32] * len(outs)
        cast = tuple(o.to(t) if o.is_floating_point() else o for o, t in zip(outs, types, strict=True))
        return cast if isinstance(out, tuple) else cast[0]

    module.forward = forward
    return module
