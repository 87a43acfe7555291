"""ONNX Runtime through Polygraphy: the reference here (FP32 export) and each precision's ONNX."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import Runner, register

NAME = "onnxrt"


@contextmanager
def onnxrt_runner(onnx_path: Path, providers: list[str] | None = None) -> Iterator[Any]:
    from polygraphy.backend.onnxrt import OnnxrtRunner

    with OnnxrtRunner(session(onnx_path, providers)) as runner:
        yield runner


def session(onnx_path: Path, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session opened from the path (external data read beside it). A model with external
    data (a large one) gets no prepacked weights (ONNX Runtime's CPU MatMul would otherwise hold a second,
    packed copy of every weight for the few inferences a check or a profile runs) and no memory arena."""
    import onnxruntime as ort

    from ..core import onnx_utils

    options = ort.SessionOptions()
    if onnx_utils.uses_external_data(Path(onnx_path)):
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.enable_cpu_mem_arena = False  # activations freed as they die, not kept in an arena at its peak
    names = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "trt": "TensorrtExecutionProvider"}
    return ort.InferenceSession(str(onnx_path), options,
                                providers=[names.get(p.split(":")[0], p) for p in providers or ["cpu"]])


RUNNER = register(Runner(name=NAME, artifact="onnx", open=onnxrt_runner, order=10))
