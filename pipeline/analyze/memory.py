"""Bytes per element at each precision, activation memory by liveness, and the KV cache.

Weight bytes: GEMM-like weights (conv, matmul, linear) take the precision's dtype; biases, norms and
embeddings stay in the high-precision dtype, as ModelOpt leaves them. INT4 AWQ adds one FP16 scale
per block of 128 weights.
"""

from __future__ import annotations

import re
from typing import Any

from ..recipe.precisions import NAMES
from ..recipe.precisions import PRECISIONS as TABLE
from .shapes import TensorInfo, graph_inputs

PRECISIONS = NAMES
# Byte widths per precision, from the one table (pipeline/recipe/precisions.py). INT4 is weight-only: its math
# and activations are FP16; KV caches stay in float (no INT8 KV here).
GEMM_WEIGHT_BYTES = {n: p.gemm_weight_bytes for n, p in TABLE.items()}
OTHER_WEIGHT_BYTES = {n: p.other_weight_bytes for n, p in TABLE.items()}
ACTIVATION_BYTES = {n: p.activation_bytes for n, p in TABLE.items()}
COMPUTE_DTYPE = {n: p.compute_dtype for n, p in TABLE.items()}
KV_BYTES = {n: p.kv_bytes for n, p in TABLE.items()}
KV_INPUT = re.compile(r"past|cache", re.IGNORECASE)


def gemm_bytes(precision: str, block_size: int | None = None) -> float:
    """Bytes per GEMM-like weight; INT4 at a stated block size pays one FP16 scale per `block_size` weights
    (the table's width assumes the default block)."""
    if precision == "int4-awq" and block_size:
        return 0.5 + 2.0 / block_size
    return GEMM_WEIGHT_BYTES[precision]


def weight_bytes(gemm_elems: int, other_elems: int, precision: str, block_size: int | None = None) -> int:
    return int(gemm_elems * gemm_bytes(precision, block_size) + other_elems * OTHER_WEIGHT_BYTES[precision])


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


def kv_axes(name: str) -> tuple[int, int]:
    """(sequence axis, KV-heads axis) of a 4-D past input: orin-trt's export (`past_key_values.*`) is
    sequence-major [seq, batch, kv_heads, head_dim] (llm/kv_cache.py); others the usual
    [batch, kv_heads, seq, head_dim]."""
    return (0, 2) if name.startswith("past_key_values.") else (2, 1)


def kv_cache_inputs(model: Any) -> list[Any]:
    return [v for v in graph_inputs(model) if KV_INPUT.search(v.name)]


def kv_cache_bytes(model: Any, batch: int, context: int, precision: str) -> int:
    """KV cache at `batch` x `context` tokens, every past input laid out as `kv_axes` says."""
    total = 0
    for v in kv_cache_inputs(model):
        dims = v.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        heads = dims[kv_axes(v.name)[1]].dim_value
        head_dim = dims[3].dim_value
        if heads <= 0 or head_dim <= 0:
            continue
        total += batch * heads * context * head_dim * KV_BYTES[precision]
    return total
