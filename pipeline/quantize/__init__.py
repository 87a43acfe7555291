"""Writing a precision into the ONNX graph, one function per precision, all with one signature:

    quantize(src, dst, feeds, options, exclude) -> summary dict

`options` is the recipe's `precisions.<p>` section; `exclude` holds the resolved node-name regexes
and op types to keep out of the low precision. Engines are then built as strongly typed networks.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from ..errors import PipelineError

QUANTIZERS = {
    "fp32": "pipeline.quantize.passthrough:passthrough",
    "fp16": "pipeline.quantize.fp16:autocast_fp16",
    "int8": "pipeline.quantize.int8:ptq_int8",
    "int4-awq": "pipeline.quantize.int4:int4_awq",
}

# Which recipe keys name what is kept out of the low precision, per precision.
EXCLUDE_KEYS = {
    "fp16": ("keep_fp32_nodes", "keep_fp32_op_types"),
    "int8": ("exclude_nodes", "exclude_op_types"),
    "int4-awq": ("exclude_nodes", "exclude_op_types"),
}


def get_quantizer(precision: str) -> Callable[..., dict[str, Any]]:
    if precision not in QUANTIZERS:
        raise PipelineError(f"no quantizer for precision {precision!r} (have {', '.join(QUANTIZERS)})")
    module, fn = QUANTIZERS[precision].split(":")
    return getattr(importlib.import_module(module), fn)


def resolve_exclusions(
    precision: str, options: dict[str, Any], placeholders: dict[str, str], node_names: list[str]
) -> dict[str, list[str]]:
    """Fill `{name}` placeholders (regex-escaped) and check each pattern matches a node, so a typo or a
    renamed graph is an error instead of a silently unprotected layer."""
    nodes_key, types_key = EXCLUDE_KEYS.get(precision, ("", ""))
    escaped = {k: re.escape(v) for k, v in placeholders.items()}
    patterns = []
    for raw in options.get(nodes_key) or []:
        try:
            pattern = raw.format(**escaped)
        except KeyError as e:
            raise PipelineError(f"precisions.{precision}.{nodes_key}: unknown placeholder {e} in {raw!r}") from e
        if not any(re.match(pattern, n) for n in node_names):
            raise PipelineError(f"precisions.{precision}.{nodes_key}: pattern {pattern!r} matches no node")
        patterns.append(pattern)
    return {"nodes": patterns, "op_types": list(options.get(types_key) or [])}


def matched_nodes(patterns: list[str], node_names: list[str]) -> list[str]:
    return [n for n in node_names if any(re.match(p, n) for p in patterns)]


def excluded_node_names(src: Any, exclude: dict[str, list[str]]) -> list[str]:
    """Names of the nodes of the ONNX at `src` that `exclude` keeps out: by name pattern or by op type."""
    from .. import onnx_utils

    nodes = onnx_utils.load(src, with_weights=False).graph.node
    names = matched_nodes(exclude["nodes"], [n.name for n in nodes])
    return names + [n.name for n in nodes if n.op_type in exclude["op_types"] and n.name not in names]
