"""TensorRT profiling depth, where TensorRT executes (a Jetson, or a GPU with standard TensorRT).

Written against the TensorRT 10.3 Python API of JetPack 6 and nothing removed in TensorRT 11
(name-based I/O, `execute_async_v3`, no builder flags). CUDA through cuda-python's runtime
bindings. Per batch size it measures:
- end-to-end latency with its H2D / compute / D2H split (CUDA events around each part),
- compute latency replayed from a CUDA graph (what launch overhead costs at small batches),
- optionally the tegrastats window around the timed loop (power, energy per inference),
then once: the per-layer profile (IProfiler) and the engine inspector's layer information.
Everything that interprets these numbers lives in `layer_info` / `energy` and is tested there;
this module cannot run on a machine without a GPU, so it stays a thin sequence of API calls.
"""

from __future__ import annotations

import ctypes
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import PipelineError
from .energy import summarize_window
from .layer_info import latency_stats, summarize_inspector, top_layers
from .tegrastats import TegrastatsSampler


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6 (cuda-bindings)
    except ImportError:
        from cuda import cudart as runtime  # older cuda-python, as on some JetPack 6 images
    return runtime


def _ok(result: Any) -> Any:
    """cuda-python returns (error, value...): raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise PipelineError(f"CUDA call failed: {err!r}")
    return values[0] if len(values) == 1 else (values or None)


class _LayerTimes:
    """Collects IProfiler callbacks; a factory builds the trt.IProfiler subclass lazily."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)


def _make_profiler(trt: Any, sink: _LayerTimes) -> Any:
    class Profiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            sink.times[layer_name].append(ms)

    return Profiler()


class _IO:
    """Pinned host and device buffers for every I/O tensor at one input shape."""

    def __init__(self, trt: Any, engine: Any, context: Any, batch: int) -> None:
        import numpy as np

        self.rt = _cudart()
        self.names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in self.names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name in self.inputs:
            _min, opt, _max = engine.get_tensor_profile_shape(name, 0)
            shape = (batch, *tuple(opt)[1:])
            if not context.set_input_shape(name, shape):
                raise PipelineError(f"engine rejects input {name!r} at shape {shape} (outside its profile?)")
        self.host: dict[str, Any] = {}
        self.device: dict[str, int] = {}
        self._pinned: list[int] = []
        for name in self.names:
            shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise PipelineError(f"tensor {name!r} has a data-dependent shape {shape}: not profiled here")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            ptr = _ok(self.rt.cudaMallocHost(max(nbytes, 1)))
            self._pinned.append(ptr)
            raw = (ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr)
            self.host[name] = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
            self.device[name] = _ok(self.rt.cudaMalloc(max(nbytes, 1)))
            context.set_tensor_address(name, self.device[name])
        rng = np.random.default_rng(0)
        for name in self.inputs:
            arr = self.host[name]
            arr[...] = rng.random(arr.shape).astype(arr.dtype) if arr.dtype.kind == "f" else 0

    def copy(self, names: Sequence[str], to_device: bool, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice if to_device else self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in names:
            host_ptr = self.host[name].ctypes.data
            dst, src = (self.device[name], host_ptr) if to_device else (host_ptr, self.device[name])
            _ok(self.rt.cudaMemcpyAsync(dst, src, self.host[name].nbytes, kind, stream))

    @property
    def outputs(self) -> list[str]:
        return [n for n in self.names if n not in self.inputs]

    def free(self) -> None:
        for ptr in self.device.values():
            self.rt.cudaFree(ptr)
        for ptr in self._pinned:
            self.rt.cudaFreeHost(ptr)


def _time_split(rt: Any, context: Any, io: _IO, stream: Any, iterations: int) -> dict[str, list[float]]:
    events = [_ok(rt.cudaEventCreate()) for _ in range(4)]
    split: dict[str, list[float]] = {"total": [], "h2d": [], "compute": [], "d2h": []}
    for _ in range(iterations):
        _ok(rt.cudaEventRecord(events[0], stream))
        io.copy(io.inputs, True, stream)
        _ok(rt.cudaEventRecord(events[1], stream))
        if not context.execute_async_v3(stream):
            raise PipelineError("execute_async_v3 failed")
        _ok(rt.cudaEventRecord(events[2], stream))
        io.copy(io.outputs, False, stream)
        _ok(rt.cudaEventRecord(events[3], stream))
        _ok(rt.cudaEventSynchronize(events[3]))
        for key, (a, b) in (("total", (0, 3)), ("h2d", (0, 1)), ("compute", (1, 2)), ("d2h", (2, 3))):
            split[key].append(_ok(rt.cudaEventElapsedTime(events[a], events[b])))
    for e in events:
        rt.cudaEventDestroy(e)
    return split


def _time_graph(rt: Any, context: Any, stream: Any, iterations: int) -> list[float]:
    # One plain enqueue first: TensorRT defers shape-dependent work to it, which must not be captured.
    context.execute_async_v3(stream)
    _ok(rt.cudaStreamSynchronize(stream))
    _ok(rt.cudaStreamBeginCapture(stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
    context.execute_async_v3(stream)
    graph = _ok(rt.cudaStreamEndCapture(stream))
    graph_exec = _ok(rt.cudaGraphInstantiate(graph, 0))
    start, end = _ok(rt.cudaEventCreate()), _ok(rt.cudaEventCreate())
    times = []
    for _ in range(iterations):
        _ok(rt.cudaEventRecord(start, stream))
        _ok(rt.cudaGraphLaunch(graph_exec, stream))
        _ok(rt.cudaEventRecord(end, stream))
        _ok(rt.cudaEventSynchronize(end))
        times.append(_ok(rt.cudaEventElapsedTime(start, end)))
    for e in (start, end):
        rt.cudaEventDestroy(e)
    rt.cudaGraphExecDestroy(graph_exec)
    rt.cudaGraphDestroy(graph)
    return times


def profile_engine(
    engine_path: Path,
    batches: Sequence[int],
    iterations: int = 200,
    warmup: int = 20,
    sampler: TegrastatsSampler | None = None,
    gpu_max_freq_mhz: float | None = None,
    top_n: int = 10,
) -> dict[str, Any]:
    """Profile one engine at each batch size; the result goes into the nightly history as is."""
    from ...runners import tensorrt as runner
    from ...trt.backend import select_backend

    # The engine comes from the TensorRT runner (which refits a weight-stripped plan); the timing below
    # drives TensorRT's execution context itself, which Polygraphy's TrtRunner does not expose.
    blocker = runner.blocker(None)
    if blocker:
        raise PipelineError(f"{engine_path}: cannot profile with TensorRT here: {blocker}")
    backend = select_backend()
    trt = backend.module
    rt = _cudart()
    engine = runner.load_engine(backend, Path(engine_path))
    stream = _ok(rt.cudaStreamCreate())
    sweep = []
    for batch in batches:
        context = engine.create_execution_context()
        io = _IO(trt, engine, context, batch)
        try:
            _time_split(rt, context, io, stream, warmup)
            if sampler is not None:
                with sampler.window() as window:
                    split = _time_split(rt, context, io, stream, iterations)
                power = summarize_window(window, batch * iterations, gpu_max_freq_mhz).to_dict()
            else:
                split, power = _time_split(rt, context, io, stream, iterations), None
            graph = _time_graph(rt, context, stream, iterations)
        finally:
            io.free()
        sweep.append({
            "batch": batch,
            "latency": latency_stats(split["total"], batch),
            "compute": latency_stats(split["compute"], batch),
            "cuda_graph": latency_stats(graph, batch),
            "split_ms": {k: sorted(v)[len(v) // 2] for k, v in split.items() if k != "total"},
            "power": power,
        })
    layers = _per_layer(trt, engine, stream, min(batches), max(10, iterations // 10))
    inspector = engine.create_engine_inspector()
    info_context = engine.create_execution_context()
    inspector.execution_context = info_context
    layer_info = summarize_inspector(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    rt.cudaStreamDestroy(stream)
    return {
        "runner": runner.NAME,
        "trt_version": trt.__version__,
        "batch_sweep": sweep,
        "top_layers": top_layers(layers, top_n),
        "layer_info": {k: v for k, v in layer_info.items() if k != "layers"},
        "layers": layer_info["layers"],
    }


def _per_layer(trt: Any, engine: Any, stream: Any, batch: int, iterations: int) -> dict[str, list[float]]:
    # A separate context: a profiler slows every enqueue, so it never touches the timed contexts.
    rt = _cudart()
    context = engine.create_execution_context()
    sink = _LayerTimes()
    context.profiler = _make_profiler(trt, sink)
    io = _IO(trt, engine, context, batch)
    try:
        for _ in range(iterations):
            context.execute_async_v3(stream)
            _ok(rt.cudaStreamSynchronize(stream))
    finally:
        io.free()
    return sink.times
