"""ONNX Runtime through Polygraphy: the reference here (FP32 export) and each precision's ONNX."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import Runner, register

NAME = "onnxrt"


FLOAT16 = 10  # onnx.TensorProto.FLOAT16


@contextmanager
def onnxrt_runner(onnx_path: Path, providers: list[str] | None = None) -> Iterator[Any]:
    from polygraphy.backend.onnxrt import OnnxrtRunner

    with OnnxrtRunner(session(onnx_path, providers)) as runner:
        yield runner


def session_options(onnx_path: Path, priority: bool = False) -> Any:
    """ONNX Runtime options for a session on the ONNX at `onnx_path`. A model with external data (a large
    one) gets no prepacked weights (the CPU MatMul would otherwise hold a second, packed copy of every weight
    for the few inferences a check, a calibration or a profile runs) and no memory arena (activations freed
    as they die); with FP16 weights also no graph optimizations: the CPU provider has no FP16 MatMul, and
    constant folding of the Casts it inserts stores an FP32 copy of every FP16 weight (opening Llama-3.2-1B's
    3.1 GB FP16 export: 4.95 GiB, against 0.03 GiB unoptimized, where the Casts run per inference on the
    memory-mapped FP16 weights; benchmarks/ort_fp16_session_memory.py). `priority`: nodes run in priority order (calibrators' reductions run as soon
    as their tensor exists instead of keeping it alive)."""
    import onnxruntime as ort

    from ..core import onnx_utils

    options = ort.SessionOptions()
    if onnx_utils.uses_external_data(Path(onnx_path)):
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.enable_cpu_mem_arena = False
        header = onnx_utils.load_header(Path(onnx_path))
        if any(t.data_type == FLOAT16 for t in header.graph.initializer if t.external_data):
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if priority:
        options.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    return options


def session(onnx_path: Path, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session opened from the path (external data read beside it), with `session_options`."""
    import onnxruntime as ort

    names = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "trt": "TensorrtExecutionProvider"}
    return ort.InferenceSession(str(onnx_path), session_options(onnx_path),
                                providers=[names.get(p.split(":")[0], p) for p in providers or ["cpu"]])


RUNNER = register(Runner(name=NAME, artifact="onnx", open=onnxrt_runner, order=10))
