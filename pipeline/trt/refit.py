"""Weight-stripped, refittable plans (TensorRT 10 `STRIP_PLAN` + `REFIT_IDENTICAL`) and refitting one from
its ONNX on the device: the over-the-air payload when only weights change is the plan without its weights
plus the ONNX the device already has or receives.

Written against the TensorRT 10.3 Python API (JetPack 6), which TensorRT 11 and TensorRT-RTX share:
`Refitter`, `OnnxParserRefitter.refit_from_file`, `Refitter.refit_cuda_engine`. Refitting deserializes the
engine, so it needs the GPU the plan was built for: it runs on the Jetson.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PipelineError
from .backend import Backend, cuda_device_count

# STRIP_PLAN leaves out the weights that REFIT_IDENTICAL promises to refit with the very same values, so
# TensorRT may still fold and fuse them at build time (plain REFIT would forbid those optimizations).
STRIP_FLAGS = ("STRIP_PLAN", "REFIT_IDENTICAL")


def strip_flags(backend: Backend) -> list[Any]:
    """The builder flags of a weight-stripped plan; refused where the backend cannot build one."""
    flags = [getattr(backend.module.BuilderFlag, name, None) for name in STRIP_FLAGS]
    missing = [n for n, f in zip(STRIP_FLAGS, flags, strict=True) if f is None]
    if missing:
        raise PipelineError(f"--strip-weights: {backend.describe()} has no BuilderFlag {', '.join(missing)}")
    if backend.is_rtx and cuda_device_count() == 0:
        # Measured with TensorRT-RTX 1.7.1: any of REFIT / REFIT_IDENTICAL / STRIP_PLAN makes the build fail
        # in Myelin's JIT ("graph_jit.cpp:278: CHECK(status == CUDA_SUCCESS)") when no CUDA device is visible.
        raise PipelineError(f"--strip-weights: {backend.describe()} builds refittable plans only with a CUDA "
                            "device (its JIT compiles them at build time) and none is visible here; "
                            "build stripped plans on the Orin or a GPU host")
    return flags


def refit_from_onnx(backend: Backend, plan: bytes, onnx_path: Path) -> Any:
    """Deserialize a weight-stripped plan and put the ONNX's weights back; returns the ICudaEngine."""
    trt = backend.module
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise PipelineError(f"{onnx_path}: the weight-stripped plan does not deserialize on this device")
    refitter = trt.Refitter(engine, logger)
    parser = trt.OnnxParserRefitter(refitter, logger)
    if not parser.refit_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise PipelineError(f"{onnx_path}: cannot refit the engine from this ONNX ({errors})")
    if not refitter.refit_cuda_engine():
        missing = refitter.get_missing_weights()
        raise PipelineError(f"{onnx_path}: refit left {len(missing)} weight(s) unset: {', '.join(missing[:5])}")
    return engine
