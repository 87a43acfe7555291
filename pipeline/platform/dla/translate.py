"""QDQ ONNX -> QDQ-free ONNX + TensorRT calibration cache with the same scales (DLA INT8 on JetPack 6).

The DLA on TensorRT 10.x takes INT8 through implicit quantization: per-tensor dynamic ranges from a
calibration cache, not Q/DQ nodes. This keeps the scales ModelOpt chose:
- an activation Q -> DQ pair on tensor X is removed and X gets the Q node's scale in the cache;
- a DequantizeLinear of an INT8 weight becomes the dequantized float weight ((q - zero_point) * scale),
  and a Q -> DQ on a float weight becomes the fake-quantized float weight, so the numbers TensorRT
  re-quantizes per channel are exactly the ones the QDQ model computed with;
- a scale also reaches the outputs of range-preserving ops (ReLU, max-pool, reshapes) that have none,
  as TensorRT's own calibrators would give them the same range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import PipelineError

RANGE_PRESERVING = frozenset({"Relu", "MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
                              "Identity", "Slice", "Resize", "Upsample"})


@dataclass
class Translation:
    model: Any
    scales: dict[str, float]                            # tensor -> scale, in graph order
    from_qdq: dict[str, str] = field(default_factory=dict)  # tensor -> the Q node its scale came from
    propagated: dict[str, str] = field(default_factory=dict)  # tensor -> the tensor it inherited from
    weights_dequantized: list[str] = field(default_factory=list)
    unscaled: list[str] = field(default_factory=list)   # activations left without a range (run FP16)


def _array(inits: dict[str, Any], name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(inits[name])


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _broadcast(param: np.ndarray, node: Any, rank: int) -> np.ndarray:
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    if _attr(node, "block_size", 0):
        raise PipelineError(f"node {node.name!r}: blocked (INT4) quantization cannot run on the DLA")
    axis = _attr(node, "axis", 1) % rank
    shape = [1] * rank
    shape[axis] = param.size
    return param.reshape(shape)


def _qparams(node: Any, inits: dict[str, Any], rank: int) -> tuple[np.ndarray, np.ndarray]:
    if len(node.input) < 2 or node.input[1] not in inits:
        raise PipelineError(f"node {node.name!r}: its scale is not a constant initializer")
    scale = _array(inits, node.input[1]).astype(np.float32)
    zero = _array(inits, node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros((), np.int8)
    if np.any(zero != 0):
        raise PipelineError(f"node {node.name!r}: zero point {zero.ravel()[:4]} != 0; "
                            "TensorRT INT8 is symmetric")
    return _broadcast(scale, node, rank), _broadcast(zero.astype(np.float32), node, rank)


def translate(model: Any) -> Translation:
    """The QDQ-free model and its per-tensor scales; `model` is not modified."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    graph_outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}      # removed DQ output -> the tensor consumers read instead
    removed: set[int] = set()
    result = Translation(out, {})
    new_inits: list[Any] = []

    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = node.input[0]
        q_node = producers.get(src)
        if src in inits:  # stored INT8 weight
            q = _array(inits, src)
            scale, zero = _qparams(node, inits, q.ndim)
            weight = ((q.astype(np.float32) - zero) * scale).astype(np.float32)
            new_inits.append(numpy_helper.from_array(weight, node.output[0]))
            result.weights_dequantized.append(node.output[0])
        elif q_node is not None and q_node.op_type == "QuantizeLinear":
            x = q_node.input[0]
            if x in inits:  # float weight fake-quantized in the graph
                w = _array(inits, x).astype(np.float32)
                scale, zero = _qparams(q_node, inits, w.ndim)
                q = np.clip(np.round(w / scale) + zero, -128, 127)
                new_inits.append(numpy_helper.from_array(((q - zero) * scale).astype(np.float32), node.output[0]))
                result.weights_dequantized.append(node.output[0])
            else:
                scale = _array(inits, q_node.input[1]).astype(np.float32)
                if scale.size != 1:
                    raise PipelineError(f"node {q_node.name!r}: per-channel activation scale on {x!r}; "
                                        "the calibration cache holds one scale per tensor")
                _qparams(q_node, inits, 1)  # zero-point check
                value = float(scale.reshape(()))
                if x in result.scales and result.scales[x] != value:
                    raise PipelineError(f"tensor {x!r}: two Q nodes give it different scales "
                                        f"({result.scales[x]} by {result.from_qdq[x]}, {value} by {q_node.name})")
                result.scales[x] = value
                result.from_qdq[x] = q_node.name or q_node.output[0]
                rename[node.output[0]] = x
            removed.add(id(q_node))
        else:
            raise PipelineError(f"node {node.name!r}: DequantizeLinear input {src!r} is neither an INT8 "
                                "initializer nor a QuantizeLinear output")
        removed.add(id(node))

    for node in graph.node:
        if node.op_type == "QuantizeLinear" and id(node) not in removed:
            raise PipelineError(f"node {node.name!r}: QuantizeLinear without a DequantizeLinear after it")

    kept = [n for n in graph.node if id(n) not in removed]
    for n in kept:
        for i, name in enumerate(n.input):
            if name in rename:
                n.input[i] = rename[name]
    tails = [onnx.helper.make_node("Identity", [rename[o]], [o], name=f"{o}/dequantized")
             for o in graph_outputs if o in rename]
    used = {i for n in kept for i in n.input} | {i for n in tails for i in n.input}
    dropped = {n.input[i] for n in graph.node if id(n) in removed for i in range(1, len(n.input))}
    dropped |= {n.input[0] for n in graph.node if id(n) in removed and n.input[0] in inits}
    keep_inits = [i for i in graph.initializer if i.name not in dropped or i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits + new_inits)
    del graph.node[:]
    graph.node.extend(kept + tails)
    del graph.value_info[:]  # Q/DQ outputs are gone; let consumers re-infer

    _propagate(graph, result)
    const = {i.name for i in graph.initializer}
    for n in graph.node:
        for o in n.output:
            if o and o not in result.scales and o not in const:
                result.unscaled.append(o)
    return result


def _propagate(graph: Any, result: Translation) -> None:
    for node in graph.node:  # graph order is topological, so one pass follows chains
        if node.op_type not in RANGE_PRESERVING or not node.input or node.input[0] not in result.scales:
            continue
        for o in node.output:
            if o and o not in result.scales:
                result.scales[o] = result.scales[node.input[0]]
                result.propagated[o] = node.input[0]


def translate_file(qdq_onnx: Path, out_onnx: Path, out_cache: Path, trt_version: str) -> Translation:
    """Write the QDQ-free ONNX and its calibration cache; both atomically."""
    from ...core import onnx_utils
    from .calib_cache import write_cache

    result = translate(onnx_utils.load(qdq_onnx))
    onnx_utils.save(result.model, out_onnx)
    write_cache(out_cache, result.scales, trt_version)
    return result
