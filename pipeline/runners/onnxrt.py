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
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    with OnnxrtRunner(SessionFromOnnx(str(onnx_path), providers=providers or ["cpu"])) as runner:
        yield runner


RUNNER = register(Runner(name=NAME, artifact="onnx", open=onnxrt_runner, order=10))
