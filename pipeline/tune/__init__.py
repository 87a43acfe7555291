"""`orin-trt tune`: the calibration that meets the accuracy budget at the lowest estimated latency.

    candidates.py  the settings tried per precision (INT8 method x dtype, INT4 block x variant x LM head)
    search.py      measure (cached by content), screen, finalists, sensitivity-guided block fallback
    latency.py     estimated latency: the analyze roofline per node at each node's precision
    report.py      tune.json, tune.md, the Pareto plot

The choice becomes the precision's calibration (the calibrate stage takes it, the manifest records it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.artifacts import Layout, read_json
from ..core.cache import StageResult
from ..core.integrity import require
from ..core.log import log, warn
from ..errors import PipelineError
from ..evaluation.budget import format_loss
from ..recipe.loader import Recipe


def tune(recipe: Recipe, layout: Layout, precision: str, calib_root: Path, force: bool = False,
         time_limit_s: float | None = None, strict: bool | None = None, target: str | None = None,
         target_dla: bool = False) -> dict[str, Any]:
    """Search, write tune.json / tune.md / the plot beside the precision's artifacts, calibrate with the choice.
    Nothing within the budget: say so with the closest candidates, calibrate fp16 as the fallback (the
    precision keeps its recipe calibration), or with `strict` fail (exit 2)."""
    from ..stages.calibrate import calibrate
    from .report import write_report
    from .search import Search, Settings, run_search

    require(layout.exported_onnx, "export", recipe.name)
    settings = Settings.from_recipe(recipe, time_limit_s=time_limit_s, target=target,
                                    strict=strict if strict else None)
    search = Search(recipe, layout, precision, calib_root, settings, force)
    result = run_search(search)
    choice = result["choice"]
    fallback = None if choice else ("fp16" if recipe.spec.precisions.options("fp16") is not None else None)
    folder = layout.precision_dir(precision)
    paths = write_report(folder, recipe.name, result, None if settings.strict else fallback)
    if choice is None:
        closest = "; ".join(f"{r['name']}: {r['metric']} loss {format_loss(r['loss'], result['budget'])}"
                            for r in result["closest"])
        msg = (f"{paths['json']}: no {precision} candidate meets the budget {result['budget_text']} "
               f"(closest: {closest})")
        if settings.strict:
            raise PipelineError(msg)
        warn("tune", msg + (f"; falling back to {fallback}: calibrating it (build with --precision {fallback})"
                            if fallback else ""))
        if fallback:
            calibrate(recipe, layout, fallback, calib_root, force)
        stage = calibrate(recipe, layout, precision, calib_root, force, target_dla)
        return {"choice": None, "fallback": fallback, "paths": paths, "stage": stage}
    cand = result["candidates"][choice["name"]]
    folder_of = search.cache_dir / choice["key"]
    record = {"settings": choice["settings"], "candidate": choice["name"], "metric": choice["metric"],
              "fp32": choice["fp32"], "value": choice["value"], "loss": choice["loss"],
              "budget": result["budget"], "estimated_ms": choice["estimated_ms"], "target": result["target"],
              "weight_bytes": choice["weight_bytes"],
              "kept_out_blocks": [{"block": b, "sensitivity": g} for b, g in cand.sensitivity.items()],
              "tune_json": paths["json"].name}
    log("tune", f"{precision}: chose {choice['name']}: {choice['metric']} {choice['value']:.4f} "
        f"(FP32 {choice['fp32']:.4f}, loss {format_loss(choice['loss'], result['budget'])}, "
        f"budget {result['budget_text']}), "
        f"{choice['estimated_ms']:.3f} ms estimated on {result['target']}; {paths['md']}")
    stage = calibrate(recipe, layout, precision, calib_root, force, target_dla, choice={
        "key": choice["key"], "options": cand.options, "extra_keep_out": cand.extra_keep_out,
        "onnx": str(folder_of / "model.onnx"), "quantize": read_json(folder_of / "quantize.json"),
        "record": record})
    return {"choice": record, "fallback": None, "paths": paths, "stage": stage}


def calibrate_or_tune(recipe: Recipe, layout: Layout, precision: str, calib_root: Path, force: bool = False,
                      target_dla: bool = False) -> StageResult:
    """The calibrate stage as `calibrate` / `engine` run it: through the search where the recipe asks
    (`tune.enabled`) for a precision the search covers."""
    from ..stages.calibrate import calibrate
    from .candidates import TUNABLE

    if recipe.section("tune").get("enabled") and precision in TUNABLE:
        return tune(recipe, layout, precision, calib_root, force, target_dla=target_dla)["stage"]
    return calibrate(recipe, layout, precision, calib_root, force, target_dla)
