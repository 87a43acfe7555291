"""calibrate: write the precision into the ONNX (AutoCast FP16, QDQ INT8, INT4 weight-only, or FP32 as is)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import onnx_utils, precisions
from ..artifacts import Layout, onnx_files, sha256_tree, write_json
from ..cache import StageResult, StageSpec, run_stage
from ..log import log, warn
from ..models import get_adapter
from ..models.base import DataSet
from ..quantize import get_quantizer, resolve_exclusions
from ..recipe import Recipe
from .common import ONNX_TOOLS, QUANT_TOOLS


def calibrate(recipe: Recipe, layout: Layout, precision: str, calib_root: Path, force: bool = False) -> StageResult:
    adapter = get_adapter(recipe.family)
    needs_data = precisions.get(precision).needs_data
    data = adapter.calibration_set(recipe, calib_root) if needs_data else None
    data_files = sorted(p for p in data.path.rglob("*") if p.is_file()) if data else []
    spec = StageSpec(
        name=f"calibrate[{precision}]",
        stamp=layout.stamp(f"calibrate-{precision}"),
        inputs={"onnx": onnx_files(layout.exported_onnx), "calibration": data_files},
        options={
            "precision": precision,
            "options": recipe.precision_options(precision),
            "calibration": recipe.section("calibration") if needs_data else None,
            "preprocess": recipe.section("preprocess"),
        },
        tools=[*ONNX_TOOLS, *QUANT_TOOLS],
        outputs=[layout.calibrated_onnx(precision), layout.calibrate_report(precision)],
    )
    return run_stage(spec, lambda: _calibrate(recipe, layout, precision, adapter, data), force)


def _calibrate(recipe: Recipe, layout: Layout, precision: str, adapter: Any, data: DataSet | None) -> dict:
    src, dst = layout.exported_onnx, layout.calibrated_onnx(precision)
    header = onnx_utils.load(src, with_weights=False)
    node_names = [n.name for n in header.graph.node]
    options = recipe.precision_options(precision)
    placeholders = adapter.placeholders(onnx_utils.metadata(header), node_names)
    exclude = resolve_exclusions(precision, options, placeholders, node_names)
    if data is not None and data.count < data.recommended_min:
        # Here, not where the set is found: only a run that really calibrates says it, once.
        warn(f"calibrate[{precision}]", f"calibration set {data.path} has {data.count} images; "
             f"{data.recommended_min} or more are recommended for stable INT8 scales")
    feeds = adapter.calibration_feeds(recipe, data) if data else []
    t0 = time.perf_counter()
    summary = get_quantizer(precision)(src, dst, feeds, options, exclude)
    seconds = time.perf_counter() - t0
    onnx_utils.check(dst)
    summary.update({
        "kept_out": {"nodes": exclude["nodes"], "op_types": exclude["op_types"], "reason": exclude["reason"]},
        "calibration": None if data is None else {
            "path": str(data.path), "samples": data.count, "description": data.description,
            "sha256": sha256_tree(data.path),
        },
        "seconds": round(seconds, 3),
        "onnx": str(dst),
        "bytes": dst.stat().st_size,
    })
    write_json(layout.calibrate_report(precision), {"stage": "calibrate", "model": recipe.name, **summary})
    log(f"calibrate[{precision}]", f"{dst} in {seconds:.1f} s")
    return summary
