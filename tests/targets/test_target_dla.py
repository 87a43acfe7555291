"""ModelOpt's `target_dla=True` for INT8 builds on a DLA core: it reaches the quantizer and changes the
Q/DQ placement of a real (tiny) network, and only a DLA INT8 calibration asks for it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.errors import PipelineError
from pipeline.quantize.int8 import ptq_int8


def conv_block(path: Path) -> Path:
    """x[1,3,16,16] -Conv-> Relu -Conv-> Add(relu) -> Sigmoid -> y: convs plus the elementwise ops ModelOpt's
    GPU placement leaves unquantized."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.3, n)
             for n, s in (("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (8, 8, 3, 3)), ("b2", (8,)))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        helper.make_node("Sigmoid", ["a"], ["y"], name="sigmoid"),
    ]
    graph = helper.make_graph(nodes, "conv_block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _quantize(src: Path, dst: Path, target_dla: bool) -> dict:
    feeds = [{"x": np.random.default_rng(i).standard_normal((1, 3, 16, 16)).astype(np.float32)} for i in range(8)]
    options = {"method": "max", "high_precision_dtype": "fp32", "target_dla": target_dla}
    return ptq_int8(src, dst, feeds, options, {"nodes": [], "op_types": []})


def _quantized_inputs(path: Path) -> Counter:
    """For each op type, how many of its inputs come from a DequantizeLinear."""
    model = onnx.load(str(path))
    dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return Counter(n.op_type for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
                   for i in n.input if i in dq)


def test_target_dla_reaches_modelopt_and_quantizes_every_tensor(tmp_path: Path) -> None:
    src = conv_block(tmp_path / "block.onnx")
    gpu = _quantize(src, tmp_path / "gpu.onnx", False)
    dla = _quantize(src, tmp_path / "dla.onnx", True)
    assert (gpu["target_dla"], dla["target_dla"]) == (False, True)
    gpu_in, dla_in = _quantized_inputs(tmp_path / "gpu.onnx"), _quantized_inputs(tmp_path / "dla.onnx")
    assert gpu_in["Conv"] > 0 and dla_in["Conv"] >= gpu_in["Conv"]
    # The DLA placement quantizes the elementwise ops too (GPU placement leaves them in float).
    assert dla_in["Add"] + dla_in["Sigmoid"] + dla_in["Relu"] > gpu_in["Add"] + gpu_in["Sigmoid"] + gpu_in["Relu"]
    assert dla["quantize_linear"] > gpu["quantize_linear"]
    x = np.random.default_rng(99).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for name in ("gpu", "dla"):
        onnx.checker.check_model(str(tmp_path / f"{name}.onnx"))
        out = ort.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        cosine = float(np.dot(out.ravel(), ref.ravel()) / (np.linalg.norm(out) * np.linalg.norm(ref)))
        assert cosine > 0.99, (name, cosine)  # still the same function, in INT8


def test_only_dla_int8_asks_for_it(tmp_path: Path) -> None:
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.calibrate import quantizer_options

    recipe = load_recipe("yolo")
    assert quantizer_options(recipe, "int8", target_dla=True)["target_dla"] is True
    assert quantizer_options(recipe, "int8")["target_dla"] is False  # the schema default
    assert "target_dla" not in quantizer_options(recipe, "fp16", target_dla=True)
    with pytest.raises(PipelineError, match="percentile .* has no DLA Q/DQ placement"):
        ptq_int8(conv_block(tmp_path / "b.onnx"), tmp_path / "o.onnx", [], {"method": "percentile", "target_dla": True},
                 {"nodes": [], "op_types": []})
