"""Graph inputs and outputs in the dtype a consumer binds, whatever the graph computes in: after each
precision's quantizer, an LLM's KV-cache I/O becomes float16 (fp16 / int8 / int4 engines; fp32 keeps
float32), so the runtime's cache is half the memory and bandwidth of an FP32 one.

Only the header is edited (a Cast per retyped tensor, the declared types); the weights stay on disk and
are streamed into the saved file, so a model over 2 GB is never one protobuf.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core import onnx_utils
from ..errors import PipelineError

METADATA_KEY = "orin_trt.io_dtypes"


def _elem(dtype: str) -> int:
    from onnx import helper

    try:
        return helper.np_dtype_to_tensor_dtype(__import__("numpy").dtype(dtype))
    except TypeError as e:
        raise PipelineError(f"io dtype {dtype!r} is not a numpy dtype name") from e


def retype(model: Any, dtypes: dict[str, str]) -> list[str]:
    """Rewrite `model` (a header) in place so that each named graph input / output has its dtype; returns
    the names changed. Inside the graph the tensor keeps its old dtype: an input gets a Cast after it, an
    output a Cast before it. A Cast of a retyped input straight back to the new dtype (AutoCast's own I/O
    casts) is bypassed, so FP16 stays FP16 with no round trip through FP32."""
    from onnx import helper

    graph = model.graph
    changed, front, back = [], [], []
    for value in [*graph.input, *graph.output]:
        if value.name not in dtypes:
            continue
        want = _elem(dtypes[value.name])
        old = value.type.tensor_type.elem_type
        if old == want:
            continue
        inner = f"{value.name}.as_{helper.tensor_dtype_to_np_dtype(old).name}"
        for node in graph.node:
            node.input[:] = [inner if i == value.name else i for i in node.input]
            node.output[:] = [inner if o == value.name else o for o in node.output]
        if value in graph.input:
            front.append(helper.make_node("Cast", [value.name], [inner], to=old, name=f"{value.name}/Cast"))
        else:
            back.append(helper.make_node("Cast", [inner], [value.name], to=want, name=f"{value.name}/Cast"))
        value.type.tensor_type.elem_type = want
        changed.append(value.name)
    nodes = [*front, *graph.node, *back]
    by_input = {n.output[0]: n.input[0] for n in front}
    for node in nodes:  # Cast(new dtype -> old) then Cast(old -> new dtype): read the input itself
        if node.op_type == "Cast" and node.input[0] in by_input and _to(node) == _elem(dtypes[by_input[node.input[0]]]):
            _rename_uses(nodes, node.output[0], by_input[node.input[0]])
    used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
    kept = [n for n in nodes if n.op_type != "Cast" or any(o in used for o in n.output)]
    del graph.node[:]
    graph.node.extend(kept)
    return changed


def _to(node: Any) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None)


def _rename_uses(nodes: list[Any], old: str, new: str) -> None:
    for node in nodes:
        node.input[:] = [new if i == old else i for i in node.input]


def cast_io(path: Path, dtypes: dict[str, str]) -> dict[str, Any]:
    """Retype the I/O of the ONNX at `path` in place; what changed, for the calibrate report."""
    if not dtypes:
        return {"retyped": []}
    path = Path(path)
    model = onnx_utils.load_header(path)
    missing = sorted(set(dtypes) - {v.name for v in [*model.graph.input, *model.graph.output]})
    if missing:
        raise PipelineError(f"{path}: no graph input or output named {missing[0]!r} to retype")
    changed = retype(model, dtypes)
    # What consumers bind, read back by the adapter's manifest section (deploy_info).
    onnx_utils.set_metadata(model, {METADATA_KEY: json.dumps(dtypes, sort_keys=True)})
    onnx_utils.save_header(model, path, path)
    return {"retyped": changed, "dtypes": sorted(set(dtypes[n] for n in changed))}
