"""Writing a precision into the ONNX graph, one function per precision, all with one signature:

    quantize(src, dst, feeds, options, exclude) -> summary dict

`options` is the recipe's `precisions.<p>` section (validated by the precision's option model in
pipeline/recipe/precisions.py, which also names the quantizer); `exclude` holds the resolved `keep_out` node-name
regexes and op types. Engines are then built as strongly typed networks.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import PipelineError
from ..recipe import precisions


def get_quantizer(precision: str) -> Callable[..., dict[str, Any]]:
    module, fn = precisions.get(precision).quantizer.split(":")
    return getattr(importlib.import_module(module), fn)


def quantize_onnx(precision: str, src: Any, dst: Any, feeds: Any, options: dict[str, Any], exclude: dict,
                  io_dtypes: dict[str, str]) -> dict[str, Any]:
    """The precision's quantizer, then the adapter's I/O dtypes for it (quantize/io_dtype.py)."""
    from .io_dtype import cast_io

    summary = get_quantizer(precision)(src, dst, feeds, options, exclude)
    summary["io_dtypes"] = cast_io(dst, io_dtypes)
    return summary


def resolve_exclusions(
    precision: str, options: dict[str, Any], placeholders: dict[str, str], node_names: list[str]
) -> dict[str, list[str]]:
    """`keep_out` of the precision's options: fill `{name}` placeholders (regex-escaped) and check each
    pattern matches a node, so a typo or a renamed graph is an error instead of a silently unprotected layer.
    Returns the node patterns, the op types and the reason."""
    if "keep_out" not in precisions.get(precision).options.model_fields:  # fp32: nothing to keep out of
        return {"nodes": [], "op_types": [], "reason": None}
    keep_out = options.get("keep_out") or {}
    where = f"precisions.{precision}.keep_out.nodes"
    escaped = {k: re.escape(v) for k, v in placeholders.items()}
    patterns = []
    for raw in keep_out.get("nodes") or []:
        try:
            pattern = raw.format(**escaped)
        except KeyError as e:
            raise PipelineError(f"{where}: unknown placeholder {e} in {raw!r}") from e
        if not any(re.match(pattern, n) for n in node_names):
            raise PipelineError(f"{where}: pattern {pattern!r} matches no node")
        patterns.append(pattern)
    return {"nodes": patterns, "op_types": list(keep_out.get("op_types") or []), "reason": keep_out.get("reason")}


def matched_nodes(patterns: list[str], node_names: list[str]) -> list[str]:
    return [n for n in node_names if any(re.match(p, n) for p in patterns)]


def excluded_node_names(src: Any, exclude: dict[str, list[str]]) -> list[str]:
    """Names of the nodes of the ONNX at `src` that `exclude` keeps out: by name pattern or by op type."""
    from ..core import onnx_utils

    nodes = onnx_utils.load(src, with_weights=False).graph.node
    names = matched_nodes(exclude["nodes"], [n.name for n in nodes])
    return names + [n.name for n in nodes if n.op_type in exclude["op_types"] and n.name not in names]


def announce(precision: str, what: str, src: Any, samples: int) -> None:
    """One line before a tool that runs for minutes on a large model without a word of its own."""
    from ..core import onnx_utils
    from ..core.log import log

    size = onnx_utils.model_bytes(src) / 1e9
    log(f"calibrate[{precision}]", f"{what} on {size:.2f} GB of ONNX, {samples} calibration sample(s)...")


def progress_level(src: Any) -> str:
    """ModelOpt's log level: its step-by-step INFO lines on a model with external data (a large one, where
    a step takes minutes and silence looks hung), warnings only otherwise."""
    from ..core import onnx_utils

    return "INFO" if onnx_utils.uses_external_data(src) else "WARNING"


@contextlib.contextmanager
def priority_order() -> Iterator[None]:
    """ONNX Runtime sessions made inside run nodes in priority order. Calibrators add a ReduceMin /
    ReduceMax pair per tensor at the end of the graph; in the default order they run late and keep every
    intermediate tensor alive until then (what tensor_ranges.py measured: 3.5x a plain inference on a
    UNet); in priority order each runs as soon as its tensor exists."""
    import onnxruntime as ort

    base = ort.SessionOptions

    class Prioritized(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.execution_order = ort.ExecutionOrder.PRIORITY_BASED

    ort.SessionOptions = Prioritized
    try:
        yield
    finally:
        ort.SessionOptions = base
