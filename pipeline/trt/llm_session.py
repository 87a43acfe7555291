"""The TensorRT decode session: the KV cache in device memory allocated once (cuda-python), every tensor
bound by address, prefill on the `prefill` profile and decode on the `decode` profile, and optionally one
CUDA graph per past-length bucket of the decode step.

The plan (what is bound where, what is copied) is pipeline/llm/session.py's, shared with the ONNX Runtime
session that runs here; this file only issues it: `set_tensor_address`, `set_input_shape`,
`set_optimization_profile_async`, `execute_async_v3` (TensorRT 10.3 API, the same in 10.16 and 11.x; also
TensorRT-RTX), and cudaMemcpyAsync / cudaMemsetAsync / graph capture on one stream. Runs only where an
engine can execute (a Jetson): not verified on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError
from ..llm.session import INT64, Copy, DecodeSession, Geometry, StepIO, StepPlan, device_layout, step_io


def cuda_runtime() -> Any:
    """cuda-python's runtime module: `cuda.bindings.runtime` (12.6+ / 13), else the older `cuda.cudart`."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime  # type: ignore[no-redef]
        except ImportError as e:
            raise PipelineError("the TensorRT decode session needs cuda-python (pip install "
                                "'orin-trt[jetson]', or cuda-python matching the board's CUDA)") from e
    return runtime


class Cuda:
    """The few CUDA runtime calls the session makes, each checked: a failed call is a one-line error."""

    def __init__(self) -> None:
        self.rt = cuda_runtime()

    def check(self, result: Any, what: str) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            text = self.rt.cudaGetErrorString(err)[1]
            raise PipelineError(f"CUDA {what} failed: {text.decode() if isinstance(text, bytes) else text}")
        return rest[0] if len(rest) == 1 else rest

    def copy(self, c: Copy, stream: Any) -> None:
        kinds = {"h2d": self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                 "d2d": self.rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                 "d2h": self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost}
        if c.nbytes:
            self.check(self.rt.cudaMemcpyAsync(c.dst, c.src, c.nbytes, kinds[c.kind], stream), f"{c.kind} copy")


class TrtDecodeSession(DecodeSession):
    def __init__(self, name: str, engine_path: Path, geometry: Geometry, phase_profiles: dict[str, int],
                 cuda_graphs: bool = False, force_staging: bool = False) -> None:
        from ..runners.tensorrt import load_engine
        from .backend import select_backend

        super().__init__(name, geometry, force_staging)
        if cuda_graphs and geometry.bucket <= 0:
            raise PipelineError("CUDA graphs need a past-length bucket (geometry.bucket > 0)")
        self.cuda = Cuda()
        rt = self.cuda.rt
        self.engine = load_engine(select_backend(), engine_path)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise PipelineError(f"{engine_path}: TensorRT could not create an execution context")
        self.phase_profiles, self.cuda_graphs = phase_profiles, cuda_graphs
        self.layout = device_layout(geometry)
        self.stream = self.cuda.check(rt.cudaStreamCreate(), "cudaStreamCreate")
        self.device = int(self.cuda.check(rt.cudaMalloc(self.layout.total), "cudaMalloc"))
        self.host = int(self.cuda.check(rt.cudaMallocHost(self.layout.host_total), "cudaMallocHost"))
        # Zeros, once: masked padding rows of a bucketed past must hold numbers, not NaN garbage.
        self.cuda.check(rt.cudaMemsetAsync(self.device, 0, self.layout.total, self.stream), "cudaMemsetAsync")
        self._host_array("ones", np.int64)[:] = 1
        self._profile: int | None = None
        self._shapes_key: tuple[Any, ...] | None = None
        self._graphs: dict[int, Any] = {}  # bucket (past rows bound) -> instantiated graph
        self.io: StepIO | None = None

    def _host_array(self, name: str, dtype: Any) -> np.ndarray:
        import ctypes

        start = self.layout.host_offsets[name]
        size = self.layout.host_total - start
        buf = (ctypes.c_byte * size).from_address(self.host + start)
        return np.frombuffer(buf, dtype=dtype)

    def _reset_mask(self) -> None:
        offset = self.layout.offsets["attention_mask"]
        nbytes = self.geometry.batch * (self.geometry.capacity + 1) * INT64
        self.cuda.check(self.cuda.rt.cudaMemsetAsync(self.device + offset, 0, nbytes, self.stream), "cudaMemsetAsync")

    def _send(self, plan: StepPlan, ids: np.ndarray, positions: np.ndarray, picks: np.ndarray) -> None:
        self.cuda.check(self.cuda.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")  # host buffers free
        for name, values in (("input_ids", ids), ("position_ids", positions), ("logit_positions", picks)):
            self._host_array(name, np.int64)[: values.size] = values.reshape(-1)
        self.io = step_io(plan, self.layout, self.device, self.host, self.geometry.vocab)
        for c in self.io.before:
            self.cuda.copy(c, self.stream)

    def _bind(self, plan: StepPlan, io: StepIO) -> bool:
        """Profile, shapes and addresses for this step; True when they changed since the last step."""
        profile = self.phase_profiles[plan.phase]
        if profile != self._profile:
            if not self.context.set_optimization_profile_async(profile, int(self.stream)):
                raise PipelineError(f"{self.name}: TensorRT refused optimization profile {profile}")
            self._profile, self._shapes_key = profile, None
        key = (profile, tuple(sorted(io.shapes.items())), tuple(sorted(io.addresses.items())))
        if key == self._shapes_key:
            return False
        for name, shape in io.shapes.items():
            if not self.context.set_input_shape(name, shape):
                raise PipelineError(f"{self.name}: input {name!r} shape {list(shape)} is outside the engine's "
                                    f"{plan.phase} profile")
        for name, address in io.addresses.items():
            if not self.context.set_tensor_address(name, address):
                raise PipelineError(f"{self.name}: TensorRT refused the address of {name!r}")
        self._shapes_key = key
        return True

    def _execute(self, plan: StepPlan) -> None:
        io = self.io
        assert io is not None
        rt = self.cuda.rt
        changed = self._bind(plan, io)
        bucket = plan.past_bound if (self.cuda_graphs and plan.phase == "decode") else None
        if bucket is not None and not changed and bucket in self._graphs:
            self.cuda.check(rt.cudaGraphLaunch(self._graphs[bucket], self.stream), "cudaGraphLaunch")
        else:
            if not self.context.execute_async_v3(int(self.stream)):
                raise PipelineError(f"{self.name}: TensorRT execute_async_v3 failed ({plan.phase}, past {plan.past})")
            if bucket is not None and bucket not in self._graphs:
                # After one plain enqueue with these shapes (TensorRT's deferred work done), capture it.
                self.cuda.check(rt.cudaStreamBeginCapture(
                    self.stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture")
                self.context.execute_async_v3(int(self.stream))
                graph = self.cuda.check(rt.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
                self._graphs[bucket] = self.cuda.check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
                self.cuda.check(rt.cudaGraphDestroy(graph), "cudaGraphDestroy")
        for c in io.after:
            self.cuda.copy(c, self.stream)

    def _receive(self, plan: StepPlan) -> np.ndarray:
        self.cuda.check(self.cuda.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        batch = plan.shapes["input_ids"][0]
        n = batch * plan.n_logits * self.geometry.vocab
        return self._host_array("logits", np.float32)[:n].reshape(batch, plan.n_logits, self.geometry.vocab).copy()

    def close(self) -> None:
        rt = self.cuda.rt
        for graph in self._graphs.values():
            rt.cudaGraphExecDestroy(graph)
        self._graphs.clear()
        rt.cudaStreamSynchronize(self.stream)
        rt.cudaFree(self.device)
        rt.cudaFreeHost(self.host)
        rt.cudaStreamDestroy(self.stream)
