"""FP32: the exported model as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core import onnx_utils


def passthrough(src: Path, dst: Path, feeds: list, options: dict[str, Any], exclude: dict) -> dict[str, Any]:
    """The export's weights copied, streamed: a hard link would do without the copy, but onnx.checker
    refuses a data file with more than one link (its hard-link attack check), onnx.load and ONNX Runtime
    a symbolic link ("is a symbolic link"; "escapes both model and data directories"), and both a location
    outside the model's folder."""
    onnx_utils.save(onnx_utils.load_header(src), dst, external_data=onnx_utils.uses_external_data(src) or None,
                    base_dir=Path(src).parent)
    return {"precision": "fp32", "method": "none"}
