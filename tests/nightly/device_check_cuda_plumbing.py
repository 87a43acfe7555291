"""One-off check on a real GPU of trt_profiling's CUDA plumbing (pinned buffers, H2D/D2H copies,
CUDA-event split, CUDA-graph capture and replay). TensorRT is not installed on that machine, so a
device-to-device copy enqueued on the stream stands in for the engine's work. Not collected by
pytest (it needs a GPU); run from the repository root on a CUDA machine:

    PYTHONPATH=. python3 tests/nightly/device_check_cuda_plumbing.py

Recorded 2026-11-22 on one H100 (driver 580.159.04, cuda-bindings 13.3.1), 16 MiB per tensor, 50 iterations:
total p50 0.643 ms = H2D 0.314 + copy 0.016 + D2H 0.312; the same copy replayed from a CUDA graph
p50 0.011 ms; the data made the round trip intact."""
import ctypes
import json
import os

import numpy as np

from pipeline.platform.telemetry import trt_profiling as tp
from pipeline.platform.telemetry.layer_info import latency_stats

rt = tp._cudart()
stream = tp._ok(rt.cudaStreamCreate())
n = 1 << 22  # 16 MiB of float32 per tensor
nbytes = n * 4
io = object.__new__(tp._IO)
io.rt, io.names, io.inputs = rt, ["x", "y"], ["x"]
io.host, io.device, io._pinned = {}, {}, []
for name in io.names:
    ptr = tp._ok(rt.cudaMallocHost(nbytes))
    io._pinned.append(ptr)
    io.host[name] = np.frombuffer((ctypes.c_uint8 * nbytes).from_address(ptr), dtype=np.float32)
    io.device[name] = tp._ok(rt.cudaMalloc(nbytes))
io.host["x"][:] = np.arange(n, dtype=np.float32)
io.host["y"][:] = 0


class StandIn:
    def execute_async_v3(self, s):
        tp._ok(rt.cudaMemcpyAsync(io.device["y"], io.device["x"], nbytes,
                                  rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, s))
        return True


split = tp._time_split(rt, StandIn(), io, stream, 50)
assert np.array_equal(io.host["y"], io.host["x"]), "data did not make the round trip"
graph = tp._time_graph(rt, StandIn(), stream, 50)
out = {
    "total": latency_stats(split["total"], 1), "h2d_p50": sorted(split["h2d"])[25],
    "compute_p50": sorted(split["compute"])[25], "d2h_p50": sorted(split["d2h"])[25],
    "graph": latency_stats(graph, 1),
}
io.free()
print(json.dumps(out, indent=1))
json.dump(out, open(os.path.join(os.environ.get("OUT", "."), "cuda_plumbing.json"), "w"), indent=1)
