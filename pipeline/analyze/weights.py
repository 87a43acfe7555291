"""The engine's weight bytes, predicted from what a calibrated ONNX really holds (not from the precision's
nominal widths): every initializer and Constant at its own dtype, INT4 packed two to a byte, except that a
float weight quantized by a constant QuantizeLinear is stored at the quantized type (TensorRT folds the Q
into the weight). Zero points are not weights. DequantizeLinear scales count at their dtype."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core import onnx_utils

# Packed sub-byte types: INT4, UINT4 (bits per element).
_BITS = {22: 4, 21: 4}


def _elems(tensor: Any) -> int:
    n = 1
    for d in tensor.dims:
        n *= int(d)
    return n


def _itemsize(data_type: int) -> float:
    from onnx import helper

    if data_type in _BITS:
        return _BITS[data_type] / 8
    return helper.tensor_dtype_to_np_dtype(data_type).itemsize


def engine_weight_bytes(onnx_path: Path) -> int:
    """Predicted bytes of the engine's weights for the ONNX at `onnx_path` (weights are not read)."""
    model = onnx_utils.load_header(onnx_path)
    tensors = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.dims:
                    tensors[node.output[0]] = attr.t
    quantized_to: dict[str, int] = {}  # weight -> the type a constant QuantizeLinear turns it into
    zero_points: set[str] = set()
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero_points.add(node.input[2])
        if node.op_type == "QuantizeLinear" and node.input[0] in tensors:
            zp = tensors.get(node.input[2]) if len(node.input) > 2 else None
            quantized_to[node.input[0]] = zp.data_type if zp is not None else 2  # default: UINT8
    used = {name for node in model.graph.node for name in node.input}
    total = 0.0
    for name, tensor in tensors.items():
        if name not in used or name in zero_points:
            continue
        total += _elems(tensor) * _itemsize(quantized_to.get(name, tensor.data_type))
    # A QuantizeLinear of a constant reached through Cast / Transpose (a tied LM head reading the embedding
    # table): the builder folds it into a weight of its own, beside the table.
    producer = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in tensors:
            continue
        source = producer.get(node.input[0])
        while source is not None and source.op_type in _FOLDED and source.input[0] not in tensors:
            source = producer.get(source.input[0])
        if source is not None and source.op_type in _FOLDED:
            zp = tensors.get(node.input[2]) if len(node.input) > 2 else None
            total += _elems(tensors[source.input[0]]) * _itemsize(zp.data_type if zp is not None else 2)
    return int(total)


_FOLDED = {"Cast", "Transpose", "Identity", "Reshape"}
