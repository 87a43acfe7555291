"""FP32: the exported model as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core import onnx_utils


def passthrough(src: Path, dst: Path, feeds: list, options: dict[str, Any], exclude: dict) -> dict[str, Any]:
    """The export's header, its data file hard-linked (the same weights: no copy of a multi-GB file)."""
    onnx_utils.save_moving(onnx_utils.load_header(src), dst, Path(src),
                           external_data=onnx_utils.uses_external_data(src) or None, link=True)
    return {"precision": "fp32", "method": "none"}
