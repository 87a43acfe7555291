"""Token embeddings where they belong in a quantized LLM: the Gather table in FP16, stored once.

The quantizers leave an LLM's embedding table (a Gather on a 2-D initializer by `input_ids`) in FP32, and
the exporter stores a tied embedding twice: the table and, for the LM head, its constant-folded transpose.
For Llama-3.2-1B that is 1.05 GB of FP32 table plus its 1.05 GB copy, most of an INT4 model. Here:
- the table becomes FP16 and a Cast after the Gather gives the graph the float it had (a lookup reads
  one row per token: no precision is lost that FP16 weights keep);
- an LM head whose weight (quantized or not) is still the FP32 transpose of the table reads the FP16 table
  through Cast + Transpose instead, so the table is stored once. An LM head already INT4 keeps its own
  packed copy (an eighth of the FP32 table, and what decode reads every token).
Models of any size: weights are read and written one tensor at a time through onnx_utils.SideData.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils

FLOAT = 1
FLOAT16 = 10


def embedding_gathers(model: Any) -> list[tuple[Any, Any]]:
    """(Gather node, FP32 table) for each lookup of a 2-D FP32 initializer by a graph input of token ids."""
    inits = {i.name: i for i in model.graph.initializer}
    inputs = {i.name for i in model.graph.input} - set(inits)
    return [(n, inits[n.input[0]]) for n in model.graph.node
            if n.op_type == "Gather" and n.input[0] in inits and n.input[1] in inputs
            and inits[n.input[0]].data_type == FLOAT and len(inits[n.input[0]].dims) == 2]


def fp16_embedding(model: Any, base_dir: Path, side: onnx_utils.SideData | None) -> dict[str, Any]:
    """Rewrite `model` (a header whose weights lie under `base_dir`, or a model holding them when `side` is
    None) in place; returns what changed and the bytes saved."""
    from onnx import helper, numpy_helper

    gathers = embedding_gathers(model)
    inits = {i.name: i for i in model.graph.initializer}
    saved, tied = 0, []
    for gather, table in gathers:
        values = numpy_helper.to_array(table, base_dir=str(base_dir))
        head = _tied_head_weight(model, inits, values, base_dir)
        half = values.astype(np.float16)
        del values
        saved += onnx_utils.tensor_bytes(table) // 2
        _store(table, half, side)
        del half
        as_float = f"{table.name}.as_float"
        nodes = list(model.graph.node)
        at = nodes.index(gather)
        cast_out = f"{gather.output[0]}.fp16"
        cast = helper.make_node("Cast", [cast_out], [gather.output[0]], to=FLOAT, name=f"{gather.name}.to_float")
        gather.output[0] = cast_out
        nodes.insert(at + 1, cast)
        if head is not None:
            saved += onnx_utils.tensor_bytes(inits[head])
            transposed = f"{table.name}.transposed"
            nodes.insert(0, helper.make_node("Cast", [table.name], [as_float], to=FLOAT, name=f"{table.name}/Cast"))
            nodes.insert(1, helper.make_node("Transpose", [as_float], [transposed], perm=[1, 0],
                                             name=f"{table.name}/Transpose"))
            for node in nodes:
                node.input[:] = [transposed if i == head else i for i in node.input]
            model.graph.initializer.remove(inits.pop(head))
            tied.append(head)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return {"tables": [t.name for _, t in gathers], "dtype": "fp16" if gathers else None,
            "tied_lm_head_reads_table": tied, "bytes_saved": saved}


def _tied_head_weight(model: Any, inits: dict[str, Any], table: np.ndarray, base_dir: Path) -> str | None:
    """The initializer holding table.T (the exporter's folded copy for a tied LM head), if any."""
    from onnx import numpy_helper

    rows, cols = table.shape
    for init in model.graph.initializer:
        if init.data_type == FLOAT and list(init.dims) == [cols, rows]:
            if np.array_equal(numpy_helper.to_array(init, base_dir=str(base_dir)), table.T):
                return init.name
    return None


def _store(tensor: Any, array: np.ndarray, side: onnx_utils.SideData | None) -> None:
    from onnx import numpy_helper

    if side is None:
        tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    else:
        side.store(tensor, array)
