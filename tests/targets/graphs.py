"""Tiny ONNX graphs built node by node, so every expected number can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_matmul(groups: int = 1) -> onnx.ModelProto:
    """x[1,4,16,16] -Conv(8 out, 3x3, pad 1, bias, groups)-> Relu -> Flatten -> MatMul W[2048,10] -> y.

    Conv: params 8*(4/g)*3*3 + 8, FLOPs 2*16*16*8*(4/g)*9. MatMul: params 20480, FLOPs 2*2048*10.
    """
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 4 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    fc = rng.standard_normal((2048, 10)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], group=groups),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "conv_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [_init("w", w), _init("b", b), _init("fc", fc)],
    )
    return helper.make_model(graph, opset_imports=OPSET)


def attention_with_kv() -> onnx.ModelProto:
    """q[1,2,4,8] . concat(past_key, k)^T -> softmax -> . concat(past_value, v): a single-head-group
    attention with a KV cache input laid out [batch, heads=2, past, head_dim=8]."""
    nodes = [
        helper.make_node("Concat", ["past_key", "k"], ["kk"], name="cat_k", axis=2),
        helper.make_node("Concat", ["past_value", "v"], ["vv"], name="cat_v", axis=2),
        helper.make_node("Transpose", ["kk"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "vv"], ["o"], name="pv"),
    ]
    spec = [("q", [1, 2, 4, 8]), ("k", [1, 2, 4, 8]), ("v", [1, 2, 4, 8]),
            ("past_key", [1, 2, "past", 8]), ("past_value", [1, 2, "past", 8])]
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in spec],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, 2, 4, 8]),
         helper.make_tensor_value_info("kk", TensorProto.FLOAT, [1, 2, "total", 8]),
         helper.make_tensor_value_info("vv", TensorProto.FLOAT, [1, 2, "total", 8])],
    )
    return helper.make_model(graph, opset_imports=OPSET)


def qdq_conv(x_scale: float = 0.02, y_scale: float = 0.05) -> onnx.ModelProto:
    """x -Q/DQ(x_scale)-> Conv(weight = DQ(int8, per-channel scales)) -> Relu -Q/DQ(y_scale)-> MaxPool -> y."""
    rng = np.random.default_rng(1)
    wq = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    ws = np.array([0.01, 0.02, 0.03, 0.04], dtype=np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "zp"], ["xq"], name="x_q"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "zp"], ["xdq"], name="x_dq"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wdq"], name="w_dq", axis=0),
        helper.make_node("Conv", ["xdq", "wdq"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "ys", "zp"], ["rq"], name="r_q"),
        helper.make_node("DequantizeLinear", ["rq", "ys", "zp"], ["rdq"], name="r_dq"),
        helper.make_node("MaxPool", ["rdq"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "qdq_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
        [_init("xs", np.array(x_scale, np.float32)), _init("ys", np.array(y_scale, np.float32)),
         _init("zp", np.array(0, np.int8)), _init("wq", wq), _init("ws", ws),
         _init("wzp", np.zeros(4, np.int8))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])

