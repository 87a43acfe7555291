"""Bytes per element at each precision, activation memory by liveness, and the KV cache.

Weight bytes: GEMM-like weights (conv, matmul, linear) take the precision's dtype; biases, norms and
embeddings stay in the high-precision dtype, as ModelOpt leaves them. INT4 AWQ adds one FP16 scale
per block of 128 weights.
"""

from __future__ import annotations

import re
from typing import Any

from .shapes import TensorInfo, graph_inputs

PRECISIONS = ("fp32", "fp16", "int8", "int4-awq")
INT4_BLOCK = 128
GEMM_WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0, "int4-awq": 0.5 + 2.0 / INT4_BLOCK}
OTHER_WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "int8": 2.0, "int4-awq": 2.0}
# The dtype activations are stored in, and the dtype the math runs in (INT4 is weight-only).
ACTIVATION_BYTES = {"fp32": 4, "fp16": 2, "int8": 1, "int4-awq": 2}
COMPUTE_DTYPE = {"fp32": "fp32", "fp16": "fp16", "int8": "int8", "int4-awq": "fp16"}
KV_BYTES = {"fp32": 4, "fp16": 2, "int8": 2, "int4-awq": 2}  # KV caches stay FP16 (no INT8 KV here)
KV_INPUT = re.compile(r"past|cache", re.IGNORECASE)


def weight_bytes(gemm_elems: int, other_elems: int, precision: str) -> int:
    return int(gemm_elems * GEMM_WEIGHT_BYTES[precision] + other_elems * OTHER_WEIGHT_BYTES[precision])


def activation_peak_elems(model: Any, info: dict[str, TensorInfo], const: set[str]) -> int:
    """Peak elements of simultaneously live activations over a topological walk of the graph.

    TensorRT reuses activation buffers once their last reader has run; this counts the same thing
    (without fusion, so an upper estimate of what the engine's activation pool needs).
    """
    last_use: dict[str, int] = {}
    for i, node in enumerate(model.graph.node):
        for t in node.input:
            if t and t not in const:
                last_use[t] = i
    outputs = {o.name for o in model.graph.output}
    live: dict[str, int] = {}
    for v in graph_inputs(model):
        live[v.name] = info[v.name].numel or 0 if v.name in info else 0
    peak = sum(live.values())
    for i, node in enumerate(model.graph.node):
        for o in node.output:
            if o and o not in const:
                live[o] = (info[o].numel or 0) if o in info else 0
        peak = max(peak, sum(live.values()))
        for t in list(live):
            if last_use.get(t, -1) <= i and t not in outputs:
                del live[t]
    return peak


def kv_cache_inputs(model: Any) -> list[Any]:
    return [v for v in graph_inputs(model) if KV_INPUT.search(v.name)]


def kv_cache_bytes(model: Any, batch: int, context: int, precision: str) -> int:
    """KV cache at `batch` x `context` tokens: every past input laid out [batch, kv_heads, seq, head_dim]."""
    total = 0
    for v in kv_cache_inputs(model):
        dims = v.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        heads, head_dim = dims[1].dim_value, dims[3].dim_value
        if heads <= 0 or head_dim <= 0:
            continue
        total += batch * heads * context * head_dim * KV_BYTES[precision]
    return total
