"""Analyze an ONNX model for one precision on one target: costs per node and in total, memory,
roofline floors and the fits check, as one JSON-able dict (schema `orin-trt/analysis@1`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..platform.targets import Target
from . import memory, roofline
from .cost import NodeCost, constant_tensors, node_costs
from .shapes import graph_inputs, infer

SCHEMA = "orin-trt/analysis@1"


def _dedup_weights(costs: list[NodeCost], elem_of: dict[str, int]) -> tuple[int, int, int]:
    """(params, gemm elements, other elements) over all nodes.

    A weight shared by a linear layer and an embedding (tied input / output embeddings) is one model
    parameter and counted once. Other shared initializers are small constants an ONNX optimizer merged
    (identical zero biases): every layer owns its copy, so they count per use.
    """
    seen: set[str] = set()
    params = gemm = other = 0
    for c in costs:
        if c.kind in ("matmul", "embedding") and c.weight_names:
            fresh = [w for w in c.weight_names if w not in seen]
            seen.update(fresh)
            share = sum(elem_of.get(w, 0) for w in fresh)
            whole = sum(elem_of.get(w, 0) for w in c.weight_names) or 1
            params += c.params * share // whole
            gemm += c.weight_elems_gemm * share // whole
            other += c.weight_elems_other * share // whole
        else:
            params += c.params
            gemm += c.weight_elems_gemm
            other += c.weight_elems_other
    return params, gemm, other


def analyze_model(model: Any, shapes: dict[str, list[int]], precision: str, target: Target,
                  context: int | None = None, source: str = "", top: int = 25,
                  base_dir: Path | None = None) -> dict[str, Any]:
    info = infer(model, shapes, base_dir)
    const = constant_tensors(model)
    costs = node_costs(model, info)
    elem_of = {i.name: (info[i.name].numel or 0) for i in model.graph.initializer}
    params, gemm_elems, other_elems = _dedup_weights(costs, elem_of)
    act_bytes = memory.ACTIVATION_BYTES[precision]
    compute_dtype = memory.COMPUTE_DTYPE[precision]
    peak = target.peak_ops_per_s(compute_dtype)
    bandwidth = target.bandwidth_bytes_per_s

    batch = next(iter(shapes.values()))[0] if shapes else 1
    kv_bytes = memory.kv_cache_bytes(model, batch, context, precision) if context else 0
    weights_at = {p: memory.weight_bytes(gemm_elems, other_elems, p) for p in memory.PRECISIONS}
    io_elems = sum(info[v.name].numel or 0 for v in graph_inputs(model) if v.name in info)
    io_elems += sum(info[o.name].numel or 0 for o in model.graph.output if o.name in info)
    min_bytes = weights_at[precision] + io_elems * act_bytes + kv_bytes

    nodes, by_kind = [], defaultdict(lambda: {"nodes": 0, "params": 0, "flops": 0, "bytes": 0, "floor_ms": 0.0})
    unfused_s = 0.0
    for c in costs:
        moved = c.act_elems * act_bytes + memory.weight_bytes(c.weight_elems_gemm, c.weight_elems_other, precision)
        seconds, bound = roofline.node_floor_s(c.flops, moved, peak, bandwidth)
        unfused_s += seconds
        k = by_kind[c.kind]
        k["nodes"] += 1
        k["params"] += c.params
        k["flops"] += c.flops
        k["bytes"] += moved
        k["floor_ms"] += seconds * 1e3
        nodes.append({"name": c.name, "op": c.op, "kind": c.kind, "params": c.params, "flops": c.flops,
                      "macs": c.macs, "bytes": moved, "intensity": c.flops / moved if moved else 0.0,
                      "floor_ms": seconds * 1e3, "bound": bound, "shape_known": c.shape_known})
    flops = sum(c.flops for c in costs)
    activations = memory.activation_peak_elems(model, info, const) * act_bytes
    unknown = [n["name"] for n in nodes if not n["shape_known"] and n["kind"] != "shape"]
    return {
        "schema": SCHEMA,
        "source": source,
        "precision": precision,
        "shapes": shapes,
        "context": context,
        "totals": {
            "nodes": len(costs),
            "params": params,
            "flops": flops,
            "macs": sum(c.macs for c in costs),
            "bytes_unfused": sum(n["bytes"] for n in nodes),
            "bytes_min": min_bytes,
            "weights_bytes": weights_at,
            "activation_bytes": activations,
            "kv_cache_bytes": kv_bytes,
        },
        "by_kind": dict(by_kind),
        "roofline": roofline.roofline(flops, min_bytes, unfused_s, target, compute_dtype),
        "fits": roofline.fits(weights_at[precision], activations, kv_bytes, target),
        "nodes_top": sorted(nodes, key=lambda n: n["floor_ms"], reverse=True)[:top],
        "nodes_all": nodes,
        "unknown_shape_nodes": unknown,
    }


def analyze_onnx(path: Path, shapes: dict[str, list[int]], precision: str, target: Target,
                 context: int | None = None) -> dict[str, Any]:
    from ..core.onnx_utils import load
    from .weights import engine_weight_bytes

    model = load(Path(path), with_weights=False)  # dims are enough; multi-GB weights stay on disk
    analysis = analyze_model(model, shapes, precision, target, context, source=str(path), base_dir=Path(path).parent)
    # What this ONNX really holds (a calibrated one: its FP16 table, INT4 blocks, QDQ-folded INT8 weights),
    # which the builder's weights match; `weights_bytes` is the nominal width at each precision.
    analysis["totals"]["engine_weights_bytes"] = engine_weight_bytes(Path(path))
    return analysis
