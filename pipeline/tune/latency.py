"""Estimated latency of one quantized ONNX on an Orin target: the analyze roofline per node, each node at
the precision the candidate really gave it (INT8 where its inputs come through Q/DQ, INT4 weights where
its weight is block-dequantized, else the high-precision dtype), summed over the FP32 graph's nodes.

It is the unfused floor (every activation through memory): an estimate that ranks candidates, not a
measurement; a real engine fuses and lands below it. The nightly on an Orin measures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..analyze import memory, roofline
from ..analyze.cost import node_costs
from ..analyze.shapes import infer
from ..core import onnx_utils
from ..platform.targets import Target


def node_precisions(candidate_onnx: Path, precision: str, high_precision: str) -> dict[str, str]:
    """Node name -> the precision it computes in, read off the candidate's graph: a compute node fed by a
    DequantizeLinear of an activation is INT8, of a constant weight only (INT4 AWQ) `int4-awq`."""
    graph = onnx_utils.load(candidate_onnx, with_weights=False).graph
    dq_out = {o: n for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    weights = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    out: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        fed = [dq_out[i] for i in node.input if i in dq_out]
        if not fed:
            out[node.name] = high_precision
        elif any(dq.input[0] not in weights and not dq.input[0].endswith("_quantized") for dq in fed):
            out[node.name] = "int8" if precision == "int8" else high_precision
        else:
            out[node.name] = "int4-awq" if precision == "int4-awq" else "int8"
    return out


def estimate_ms(fp32_onnx: Path, shapes: dict[str, list[int]], per_node: dict[str, str], default: str,
                target: Target, block_size: int | None = None) -> dict[str, Any]:
    """Sum of per-node roofline floors (ms) and weight bytes, every node of the FP32 graph at its precision
    (INT4 weights at `block_size`: a smaller block reads more scales)."""
    model = onnx_utils.load(fp32_onnx, with_weights=False)
    costs = node_costs(model, infer(model, shapes, Path(fp32_onnx).parent))
    total_s, weight_bytes = 0.0, 0
    by_precision: dict[str, int] = {}
    for c in costs:
        p = per_node.get(c.name, default)
        by_precision[p] = by_precision.get(p, 0) + 1
        weights = memory.weight_bytes(c.weight_elems_gemm, c.weight_elems_other, p, block_size)
        moved = c.act_elems * memory.ACTIVATION_BYTES[p] + weights
        seconds, _ = roofline.node_floor_s(c.flops, moved, target.peak_ops_per_s(memory.COMPUTE_DTYPE[p]),
                                           target.bandwidth_bytes_per_s)
        total_s += seconds
        weight_bytes += weights
    return {"estimated_ms": total_s * 1e3, "weight_bytes": weight_bytes, "nodes_by_precision": by_precision,
            "target": target.key}
