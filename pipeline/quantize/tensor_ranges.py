"""The range of every float tensor of an ONNX over calibration samples, in the memory of one inference.

AutoCast's own reference run marks every tensor a graph output and keeps each sample's outputs until the
end: every intermediate tensor of every sample at once (46 GB for 8 SD-1.5 UNet samples; a single one
does not fit 24 GiB). Here each tensor gets ReduceMin, ReduceMax and Shape nodes of its own (absmax is
the larger of -min and max: no full-size Abs copy), so ONNX Runtime frees the tensor as usual and returns
three small values; the samples run one at a time and only the running extremes are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..core.log import progress

FLOATS = (1, 10, 16)  # FLOAT, FLOAT16, BFLOAT16
SUFFIXES = ("min", "max", "shape")


@dataclass
class Range:
    absmax: float
    min_val: float
    max_val: float
    shape: tuple[int, ...]

    def update(self, absmax: float, lo: float, hi: float) -> None:
        self.absmax, self.min_val, self.max_val = max(self.absmax, absmax), min(self.min_val, lo), max(self.max_val, hi)


def float_tensors(model: Any) -> list[str]:
    """Node outputs with a float type (shape inference over the header; weights stay on disk)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]}
    inits = {i.name for i in model.graph.initializer}
    names = [o for n in model.graph.node if n.op_type != "Constant" for o in n.output if o and o not in inits]
    return [n for n in dict.fromkeys(names) if types.get(n) in FLOATS]


def _add_reductions(model: Any, names: list[str]) -> None:
    """Each tensor's reductions placed right after the node that makes it, so that in ONNX Runtime's
    priority-based order a tensor dies where it would without them."""
    from onnx import helper

    wanted = set(names)
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        for name in (o for o in node.output if o in wanted):
            out = {s: f"{name}::range.{s}" for s in SUFFIXES}
            nodes += [helper.make_node("ReduceMin", [name], [out["min"]], name=f"{name}::range_min", keepdims=0),
                      helper.make_node("ReduceMax", [name], [out["max"]], name=f"{name}::range_max", keepdims=0),
                      helper.make_node("Shape", [name], [out["shape"]], name=f"{name}::range_shape")]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def tensor_ranges(onnx_path: Path, feeds: Sequence[dict[str, np.ndarray]],
                  names: Sequence[str] | None = None) -> dict[str, Range]:
    """absmax / min / max of every float tensor (graph inputs included) over `feeds`, or of `names` only,
    and its shape on the first; a tensor with no elements is left out (nothing to overflow)."""
    import onnxruntime as ort

    header = onnx_utils.load_header(onnx_path)
    if names is None:
        names = float_tensors(header)
    else:  # graph inputs come from the feeds themselves
        made = {o for n in header.graph.node for o in n.output}
        names = [n for n in dict.fromkeys(names) if n in made]
    model = onnx_utils.ort_model(onnx_path, [f"{n}::range.{s}" for n in names for s in SUFFIXES],
                                 edit=lambda m: _add_reductions(m, names))
    ranges: dict[str, Range] = {}
    try:
        from ..runners.onnxrt import session_options

        options = session_options(onnx_path, priority=True)
        options.enable_cpu_mem_arena = False  # each tensor's memory goes back when it dies, not into a growing arena
        options.add_session_config_entry("session.disable_prepacking", "1")  # no second copy of the weights
        # ONNX Runtime's default order ran the reductions late, every tensor alive until then (3.5x the
        # memory of a plain inference on a UNet); by priority they run as soon as their tensor exists.
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                       providers=["CPUExecutionProvider"])
        wanted = [f"{n}::range.{s}" for n in names for s in SUFFIXES]
        for feed in progress(feeds, "tensor ranges (one sample at a time)", len(feeds)):
            # (run with no names would return the graph's outputs: none wanted, nothing run)
            values = dict(zip(wanted, session.run(wanted, feed), strict=True)) if wanted else {}
            stats = {}
            for n in names:
                lo, hi = float(values[f"{n}::range.min"]), float(values[f"{n}::range.max"])
                stats[n] = (max(-lo, hi), lo, hi, tuple(int(d) for d in values[f"{n}::range.shape"]))
            stats |= {k: (float(np.abs(v).max()), float(v.min()), float(v.max()), v.shape)
                      for k, v in feed.items() if v.dtype.kind == "f" and v.size}
            for name, (absmax, lo, hi, shape) in stats.items():
                if not np.prod(shape):
                    continue
                if name in ranges:
                    ranges[name].update(absmax, lo, hi)
                else:
                    ranges[name] = Range(absmax, lo, hi, shape)
        del session
    finally:
        if isinstance(model, Path):
            model.unlink(missing_ok=True)
    return ranges
