"""calibrate: write the precision into the ONNX (AutoCast FP16, QDQ INT8, INT4 weight-only, or FP32 as is)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ..analyze.host import require_memory
from ..core import onnx_utils
from ..core.artifacts import Layout, onnx_files, sha256_tree, write_json
from ..core.cache import StageResult, StageSpec, run_stage
from ..core.integrity import check_onnx_belongs, require
from ..core.log import log, warn
from ..core.workspace import require_free_disk
from ..errors import PipelineError
from ..models import get_adapter
from ..models.base import DataSet
from ..quantize import quantize_onnx, resolve_exclusions
from ..recipe import precisions
from ..recipe.loader import Recipe
from .common import ONNX_TOOLS, QUANT_TOOLS


def quantizer_options(recipe: Recipe, precision: str, target_dla: bool = False) -> dict[str, Any]:
    """The recipe's options for this precision; for an INT8 build on a DLA core, ModelOpt's
    `target_dla=True` too: Q/DQ on every tensor, so the DLA (implicit INT8 on TensorRT 10.x through the
    translated calibration cache, strongly typed on 11.4.1+) has a scale for each one instead of falling
    back to FP16 or the GPU where ModelOpt's GPU-oriented placement left a tensor unquantized."""
    options = dict(recipe.precision_options(precision))
    if target_dla and precision == "int8":
        options["target_dla"] = True
    return options


def calibrate(recipe: Recipe, layout: Layout, precision: str, calib_root: Path, force: bool = False,
              target_dla: bool = False, choice: dict[str, Any] | None = None) -> StageResult:
    """`choice`: what `orin-trt tune` chose (pipeline/tune/): its options replace the recipe's, its extra
    keep-out patterns add to them, and its already quantized ONNX is used as is."""
    from .export import export_digest

    adapter = get_adapter(recipe.family)
    require(layout.exported_onnx, "export", recipe.name)
    check_onnx_belongs(layout.exported_onnx, recipe.name, export_digest(recipe))
    options = quantizer_options(recipe, precision, target_dla)
    if choice is not None:
        options = {**choice["options"], **({"target_dla": True} if options.get("target_dla") else {})}
    needs_data = precisions.get(precision).needs_data
    data = adapter.calibration_set(recipe, calib_root) if needs_data else None
    data_files = sorted(p for p in data.path.rglob("*") if p.is_file()) if data else []
    spec = StageSpec(
        name=f"calibrate[{precision}]",
        stamp=layout.stamp(f"calibrate-{precision}"),
        inputs={"onnx": onnx_files(layout.exported_onnx), "calibration": data_files},
        options={
            "precision": precision,
            "options": options,
            "calibration": recipe.section("calibration") if needs_data else None,
            "preprocess": recipe.section("preprocess"),
            # which files of a larger folder are used, and how many (models/image_data.spread)
            "selection": {"rule": "spread-v1", "samples": data.count} if data else None,
            "tune": None if choice is None else {k: choice[k] for k in ("key", "extra_keep_out")},
            "io_dtypes": adapter.io_dtypes(recipe, precision),
        },
        tools=[*ONNX_TOOLS, *QUANT_TOOLS],
        outputs=[layout.calibrated_onnx(precision), layout.calibrate_report(precision)],
    )
    return run_stage(spec, lambda: _calibrate(recipe, layout, precision, adapter, data, options, choice), force)


def memory_stage(precision: str, src: Path, options: dict[str, Any]) -> str:
    """The host plan's key for this calibration: the streaming quantizers have their own ratios."""
    if precision == "int8":
        from ..quantize.int8 import choose_calibrator

        if choose_calibrator(src, options) == "streaming":
            return "calibrate[int8-streaming]"
    if precision == "int4-awq":
        from ..quantize.int4 import choose_calibrator as int4_calibrator

        if int4_calibrator(src, options) == "streaming":
            return "calibrate[int4-awq-streaming]"
    return f"calibrate[{precision}]"


def _calibrate(recipe: Recipe, layout: Layout, precision: str, adapter: Any, data: DataSet | None,
               options: dict[str, Any], choice: dict[str, Any] | None = None) -> dict:
    src, dst = layout.exported_onnx, layout.calibrated_onnx(precision)
    header = onnx_utils.load(src, with_weights=False)
    node_names = [n.name for n in header.graph.node]
    try:
        placeholders = adapter.placeholders(onnx_utils.metadata(header), node_names)
    except PipelineError as e:  # the adapter knows the graph, not the file: name the file here
        raise PipelineError(f"{src}: {e}") from None
    exclude = resolve_exclusions(precision, options, placeholders, node_names)
    if choice is not None:
        exclude["nodes"] = [*exclude["nodes"], *choice["extra_keep_out"]]
    if data is not None and data.count < data.recommended_min:
        # Here, not where the set is found: only a run that really calibrates says it, once.
        warn(f"calibrate[{precision}]", f"calibration set {data.path} has {data.count} images; "
             f"{data.recommended_min} or more are recommended for stable INT8 scales")
    feeds = adapter.calibration_feeds(recipe, data) if data else []
    # Upper bounds, the model's size each: the tool's output in scratch and the calibrated model beside
    # the export; SmoothQuant adds the smoothed model (scratch) and its side file of weights (beside).
    times = 2 if options.get("smoothquant") else 1
    size = onnx_utils.model_bytes(src)
    require_free_disk(f"calibrate[{precision}]", {Path(tempfile.gettempdir()): times * size, dst.parent: times * size})
    require_memory(memory_stage(precision, src, options), size, str(src))
    t0 = time.perf_counter()
    chosen = Path(choice["onnx"]) if choice is not None else None
    if chosen is not None and chosen.is_file() and not options.get("target_dla"):
        # The measured candidate itself, so the engine is exactly what the search judged.
        from ..tune.search import copy_onnx

        copy_onnx(chosen, dst)
        summary = dict(choice["quantize"])
    else:
        summary = quantize_onnx(precision, src, dst, feeds, options, exclude, adapter.io_dtypes(recipe, precision))
    seconds = time.perf_counter() - t0
    onnx_utils.check(dst)
    summary.update({
        "kept_out": {"nodes": exclude["nodes"], "op_types": exclude["op_types"], "reason": exclude["reason"]},
        "calibration": None if data is None else {
            "path": str(data.path), "samples": data.count, "description": data.description,
            "sha256": sha256_tree(data.path),
        },
        "seconds": round(seconds, 3),
        "target_dla": bool(options.get("target_dla")),
        "tune": None if choice is None else choice["record"],
        "onnx": str(dst),
        "bytes": dst.stat().st_size,
    })
    write_json(layout.calibrate_report(precision), {"stage": "calibrate", "model": recipe.name, **summary})
    log(f"calibrate[{precision}]", f"{dst} in {seconds:.1f} s")
    return summary
