"""The settings `orin-trt tune` tries per precision: each a full set of the precision's recipe options
(validated by the precision's option model) plus node patterns kept out beyond the recipe's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import PipelineError

TUNABLE = ("int8", "int4-awq")
LM_HEAD = r".*lm_head.*"


@dataclass
class Candidate:
    name: str
    options: dict[str, Any]
    extra_keep_out: list[str] = field(default_factory=list)
    sensitivity: dict[str, float] = field(default_factory=dict)  # block -> measured loss gained keeping it out

    def settings(self) -> dict[str, Any]:
        keys = ("method", "percentile", "high_precision_dtype", "block_size", "smoothquant")
        return {**{k: self.options[k] for k in keys if k in self.options and self.options[k] is not None},
                "extra_keep_out": list(self.extra_keep_out)}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    out.update(changes)
    return out


def int8_candidates(base: dict[str, Any]) -> list[Candidate]:
    """Calibration method x the dtype of the ops left unquantized (FP16 runs faster on an Orin; use it where it
    costs nothing). Percentile is ONNX Runtime's quantizer, which leaves the rest FP32."""
    out = []
    for method in ("entropy", "max"):
        for hp in ("fp16", "fp32"):
            out.append(Candidate(f"{method}, rest {hp}", _with(base, method=method, high_precision_dtype=hp)))
    for pct in (99.9, 99.99, 99.999):
        out.append(Candidate(f"percentile {pct:g}, rest fp32",
                             _with(base, method="percentile", percentile=pct, high_precision_dtype="fp32")))
    return out


def int4_candidates(base: dict[str, Any], node_names: list[str]) -> list[Candidate]:
    """Block size x AWQ variant, and the LM head in or out of INT4 (where the graph has one)."""
    out = [Candidate(f"awq_clip, block {b}", _with(base, method="awq_clip", block_size=b)) for b in (128, 64, 32)]
    out += [Candidate(f"{m}, block 128", _with(base, method=m, block_size=128)) for m in ("awq_lite", "rtn_dq")]
    if any(re.match(LM_HEAD, n) for n in node_names):
        out += [Candidate(f"awq_clip, block {b}, LM head kept out", _with(base, method="awq_clip", block_size=b),
                          [LM_HEAD]) for b in (128, 32)]
    return out


def candidates(precision: str, base: dict[str, Any], node_names: list[str]) -> list[Candidate]:
    """The recipe's own setting first (a time-limited search has at least the default to compare), then
    the rest, each once."""
    if precision == "int8":
        found = int8_candidates(base)
    elif precision == "int4-awq":
        found = int4_candidates(base, node_names)
    else:
        raise PipelineError(f"tune: --precision {precision}: nothing to search; tune searches {', '.join(TUNABLE)}")
    own = [c for c in found if c.options == base and not c.extra_keep_out]
    if not own:
        own = [Candidate("the recipe's setting", dict(base))]
    return [own[0], *[c for c in found if c is not own[0]]]


def block_of(node_name: str) -> str | None:
    """The block a node belongs to: its name's path up to the first numbered segment (`/model.3/...` ->
    `/model.3/`, `/model/layers.1/...` -> `/model/layers.1/`), or None for a node outside numbered blocks."""
    parts = node_name.split("/")
    if len(parts) < 3 or parts[0]:
        return None
    for i, part in enumerate(parts[1:-1], 1):
        if re.search(r"\.\d+$", part):
            return "/".join(parts[: i + 1]) + "/"
    return None
