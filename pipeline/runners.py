"""Runners that execute a model on feeds, all through Polygraphy: ONNX Runtime (the reference here)
and TensorRT where an engine can execute."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PipelineError, ShapeOutOfProfileError

Feed = dict[str, np.ndarray]


def ort_providers() -> list[str]:
    """CUDA where ONNX Runtime can use it, else CPU; Polygraphy takes the short names."""
    import onnxruntime as ort

    from .trt.backend import cuda_device_count

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available and cuda_device_count() > 0:
        return ["cuda", "cpu"]
    return ["cpu"]


@contextmanager
def onnxrt_runner(onnx_path: Path, providers: list[str] | None = None) -> Iterator[Any]:
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    with OnnxrtRunner(SessionFromOnnx(str(onnx_path), providers=providers or ["cpu"])) as runner:
        yield runner


@contextmanager
def trt_runner(engine_path: Path) -> Iterator[Any]:
    """The TensorRT runner over a plan file; only where the backend can execute (see trt.backend)."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    from .trt.backend import select_backend

    backend = select_backend()
    onnx = stripped_engine_onnx(Path(engine_path))
    if onnx is not None:  # a weight-stripped plan: refit it from its ONNX before it can run
        from .trt.refit import refit_from_onnx

        loader: Any = refit_from_onnx(backend, Path(engine_path).read_bytes(), onnx)
    else:
        loader = EngineFromBytes(BytesFromPath(str(engine_path)))
    with TrtRunner(loader) as runner:
        yield runner


def stripped_engine_onnx(engine_path: Path) -> Path | None:
    """The ONNX to refit from when the engine's manifest says its plan is weight-stripped, else None."""
    import json

    manifest = engine_path.with_name(engine_path.name + ".json")
    if not manifest.exists():
        return None
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if not (meta.get("builder") or {}).get("strip_weights"):
        return None
    return engine_path.with_name(meta["onnx"]["file"])


def run(runner: Any, feeds: list[Feed], output_names: list[str]) -> list[list[np.ndarray]]:
    outs = []
    for feed in feeds:
        result = runner.infer(feed_dict=feed)
        outs.append([np.asarray(result[n]) for n in output_names])
    return outs


def time_runner(runner: Any, feed: Feed, warmup: int, iterations: int) -> list[float]:
    """Wall time of each inference call (host to host), after `warmup` untimed calls."""
    for _ in range(warmup):
        runner.infer(feed_dict=feed)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        runner.infer(feed_dict=feed)
        times.append(time.perf_counter() - t0)
    return times


def check_in_profile(feed: Feed, profile: dict[str, dict[str, Any]], where: str) -> None:
    """Refuse a shape the engine was not built for, naming the input, its shape and the bounds."""
    for name, arr in feed.items():
        spec = profile.get(name)
        if spec is None:
            raise PipelineError(f"{where}: input {name!r} is not an input of the model")
        lo, hi = spec["min"], spec["max"]
        if len(arr.shape) != len(lo) or any(not (a <= s <= b) for s, a, b in zip(arr.shape, lo, hi, strict=True)):
            raise ShapeOutOfProfileError(
                f"{where}: input {name!r} shape {list(arr.shape)} is outside the profile min {lo} .. max {hi}"
            )
