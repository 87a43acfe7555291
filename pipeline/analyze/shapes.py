"""Concrete tensor shapes for one set of input shapes, from ONNX shape inference with data propagation.

Analysis never needs weights: models are read without external data and initializers keep their dims.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...] | None   # None where inference could not resolve every dim
    elem_type: int                  # onnx.TensorProto data type

    @property
    def numel(self) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n


def _dims(type_proto: Any) -> tuple[int, ...] | None:
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def graph_inputs(model: Any) -> list[Any]:
    inits = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def bind_inputs(model: Any, shapes: dict[str, list[int]]) -> Any:
    """A copy of `model` whose graph inputs have the given fixed shapes (every input must be given)."""
    import onnx

    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    for v in graph_inputs(bound):
        if v.name not in shapes:
            raise PipelineError(f"analyze: no shape for graph input {v.name!r} (pass --shape {v.name}=AxBxC)")
        dims = v.type.tensor_type.shape.dim
        shape = shapes[v.name]
        if len(dims) and len(dims) != len(shape):
            raise PipelineError(
                f"analyze: --shape {v.name} has rank {len(shape)}, the graph input has rank {len(dims)}")
        del dims[:]
        for d in shape:
            dims.add().dim_value = int(d)
    for out in bound.graph.output:  # declared symbolic output dims would clash with the bound inputs
        out.type.tensor_type.ClearField("shape")
    return bound


SMALL_INITIALIZER = 1 << 16  # elements; shape constants and biases the symbolic pass may need to read


def _symbolic(bound: Any, base_dir: Path | None) -> Any | None:
    """ONNX Runtime's symbolic shape inference, for shapes computed at run time (Expand by a Where, Range)
    that ONNX data propagation leaves open. It reads small initializers' values, so those are loaded."""
    try:
        import onnx
        from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError:
        return None
    model = onnx.ModelProto()
    model.CopyFrom(bound)
    for t in model.graph.initializer:
        if uses_external_data(t) and base_dir is not None and int(np.prod(t.dims)) <= SMALL_INITIALIZER:
            load_external_data_for_tensor(t, str(base_dir))
            t.data_location = onnx.TensorProto.DEFAULT
            del t.external_data[:]
    try:
        return SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    except Exception:  # noqa: BLE001 - the ONNX pass's result stands; unresolved nodes are reported
        return None


def infer(model: Any, shapes: dict[str, list[int]], base_dir: Path | None = None) -> dict[str, TensorInfo]:
    """Every tensor's shape and dtype: graph inputs, initializers, node outputs, graph outputs.

    `base_dir` is where the model's external data lives (for the symbolic fallback)."""
    import onnx

    bound = bind_inputs(model, shapes)
    del bound.graph.value_info[:]  # stale entries from earlier tools would pin symbolic dims
    try:
        inferred = onnx.shape_inference.infer_shapes(bound, data_prop=True)
    except Exception as e:  # noqa: BLE001 - onnx raises several unrelated types
        raise PipelineError(f"analyze: ONNX shape inference failed ({e.__class__.__name__}: {e})") from e
    info = _collect(inferred)
    if any(info.get(o) is None or info[o].shape is None for n in inferred.graph.node for o in n.output if o):
        symbolic = _symbolic(bound, base_dir)
        if symbolic is not None:
            for name, t in _collect(symbolic).items():
                if t.shape is not None and (name not in info or info[name].shape is None):
                    info[name] = t
    return info


def _collect(inferred: Any) -> dict[str, TensorInfo]:
    info: dict[str, TensorInfo] = {}
    for init in inferred.graph.initializer:
        info[init.name] = TensorInfo(tuple(int(d) for d in init.dims), init.data_type)
    for v in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        info[v.name] = TensorInfo(_dims(v.type), v.type.tensor_type.elem_type)
    for node in inferred.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    info[node.output[0]] = TensorInfo(tuple(int(d) for d in a.t.dims), a.t.data_type)
    return info
