"""The builder writes the plan into the engine file as it serializes (TensorRT-RTX, later TensorRT 10.x);
TensorRT 10.3 (JetPack 6) has no stream API and returns the plan in one buffer: both paths, with the real
TensorRT-RTX builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _network(tmp_path: Path) -> tuple[Any, Any, Any, Any, Any]:
    from pipeline.trt.backend import select_backend

    trt = select_backend().module  # first: it points Polygraphy at TensorRT-RTX
    from polygraphy.backend.trt import NetworkFromOnnxPath

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 32), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 32])], [w])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    builder, network, parser = NetworkFromOnnxPath(str(path), strongly_typed=True)()
    return trt, builder, network, parser, builder.create_builder_config()


class _TensorRT103Builder:
    """The real builder seen through TensorRT 10.3's API: build_serialized_network only."""

    def __init__(self, builder: Any) -> None:
        self._builder = builder

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        return self._builder.build_serialized_network(network, config)


def test_both_serialization_paths_write_the_plan_the_builder_made(tmp_path: Path) -> None:
    from pipeline.trt.build import _serialize

    trt, builder, network, parser, config = _network(tmp_path)
    assert hasattr(builder, "build_serialized_network_to_stream")  # TensorRT-RTX streams
    streamed = tmp_path / "streamed.engine"
    size = _serialize(trt, builder, network, config, streamed)
    buffered = tmp_path / "buffered.engine"
    size_103 = _serialize(trt, _TensorRT103Builder(builder), network, config, buffered)
    assert size == streamed.stat().st_size > 64 * 32 * 4  # the weights are in it
    assert size_103 == buffered.stat().st_size
    assert abs(size - size_103) <= 64, (size, size_103)  # the same engine, whichever way it was written
