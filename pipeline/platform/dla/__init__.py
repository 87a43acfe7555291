"""DLA support: options, preflight (what cannot run on the DLA) and the QDQ -> calibration-cache translation.

`check_options` is what a build calls with `--dla` / `--dla-policy` before any work: the target must
have that DLA core, the precision must be FP16 or INT8, and under `strict` every node must pass the
preflight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import PipelineError

POLICIES = ("strict", "fallback")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise PipelineError(f"--dla-policy {policy}: choose {' or '.join(POLICIES)}")
    return policy


def tensorrt_verdict(onnx_path: Path, dla_core: int) -> list[str] | None:
    """Layers TensorRT itself says cannot run on the DLA (`can_run_on_DLA`), where TensorRT has a DLA
    (on the Orin); None elsewhere."""
    from ...trt.backend import select_backend
    from ...trt.dla_build import dla_blocker, layers_not_on_dla
    from ..host import detect

    if not detect().is_jetson:  # only a Jetson's TensorRT carries the DLA compiler
        return None
    try:
        backend = select_backend()
    except PipelineError:
        return None
    if dla_blocker(backend):
        return None
    return layers_not_on_dla(backend, Path(onnx_path), dla_core)


def run_preflight(onnx_path: Path, profiles: list[dict[str, Any]], policy: str, limit: int = 10,
                  dla_core: int = 0) -> dict[str, Any]:
    """Preflight the ONNX at the profile's opt shapes; under `strict`, refuse any GPU node."""
    from ...analyze import recipe_shapes
    from ...analyze.shapes import graph_inputs, infer
    from ...core import onnx_utils
    from .preflight import dynamic_inputs, preflight

    check_policy(policy)
    model = onnx_utils.load(Path(onnx_path), with_weights=False)
    names = {v.name for v in graph_inputs(model)}
    shapes = {n: s for n, s in recipe_shapes(profiles, None).items() if n in names}
    result = preflight(model, infer(model, shapes), dynamic_inputs(profiles))
    summary = result.summary()
    summary["tensorrt_gpu_layers"] = tensorrt_verdict(onnx_path, dla_core)
    gpu = result.gpu_nodes
    if summary["tensorrt_gpu_layers"]:  # TensorRT's word beats the static reading
        gpu = {**gpu, **{name: "TensorRT can_run_on_DLA is false" for name in summary["tensorrt_gpu_layers"]}}
    if policy == "strict" and gpu:
        shown = "; ".join(f"{n} ({r})" for n, r in list(gpu.items())[:limit])
        more = f" and {len(gpu) - limit} more" if len(gpu) > limit else ""
        raise PipelineError(
            f"--dla-policy strict: {len(gpu)} of {summary['nodes']} nodes of {onnx_path} cannot run on the DLA: "
            f"{shown}{more}; use --dla-policy fallback to let them run on the GPU"
        )
    return summary
