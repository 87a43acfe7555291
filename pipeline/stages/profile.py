"""profile: accuracy against the FP32 reference, latency per runner, memory; report.json + report.md."""

from __future__ import annotations

import datetime as dt
import resource
from typing import Any

import numpy as np

from .. import onnx_utils
from ..artifacts import Layout, onnx_files, read_json, write_json, write_text
from ..cache import StageResult, StageSpec, run_stage
from ..device.power_state import record_power_state
from ..errors import PipelineError
from ..integrity import require, verify_engine_build
from ..log import log
from ..metrics import compare_batches, percentiles_ms
from ..models import get_adapter
from ..recipe import Recipe
from ..report import render_markdown
from .common import ONNX_TOOLS, TRT_TOOLS

REPORT_SCHEMA = "orin-trt/report@1"


def profile(recipe: Recipe, layout: Layout, precision: str, force: bool = False, batch: int | None = None,
            iterations: int | None = None) -> StageResult:
    for needed in (layout.engine(precision), layout.manifest(precision)):
        require(needed, "engine", recipe.name, precision)
    try:
        manifest = read_json(layout.manifest(precision))
    except ValueError as e:
        raise PipelineError(f"{layout.manifest(precision)}: not valid JSON ({e})") from None
    verify_engine_build(layout.manifest(precision), manifest, layout.calibrated_onnx(precision))
    cfg = dict(recipe.section("profile"))
    if iterations is not None:
        cfg["iterations"] = iterations
    spec = StageSpec(
        name=f"profile[{precision}]",
        stamp=layout.stamp(f"profile-{precision}"),
        inputs={
            "reference": onnx_files(layout.exported_onnx),
            "candidate": onnx_files(layout.calibrated_onnx(precision)),
            "engine": [layout.engine(precision), layout.manifest(precision)],
        },
        options={"profile": cfg, "batch": batch, "accuracy": recipe.section("accuracy"),
                 "eval": recipe.section("eval"), "preprocess": recipe.section("preprocess")},
        tools=[*ONNX_TOOLS, *TRT_TOOLS],
        outputs=[layout.report_json(precision), layout.report_md(precision)],
    )
    return run_stage(spec, lambda: _profile(recipe, layout, precision, cfg, batch), force)


def _latency_feed(feed: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    return {n: np.repeat(a[:1], batch, axis=0) for n, a in feed.items()}


def _profile(recipe: Recipe, layout: Layout, precision: str, cfg: dict[str, Any], batch: int | None) -> dict:
    from ..runners import check_in_profile, onnxrt_runner, run, time_runner, trt_runner
    from ..trt.backend import execution_blocker, select_backend

    adapter = get_adapter(recipe.family)
    manifest = read_json(layout.manifest(precision))
    feeds = adapter.eval_feeds(recipe)
    shapes = manifest["profiles"][0]["shapes"]
    batch = batch or shapes[next(iter(shapes))]["opt"][0]
    bench_feed = _latency_feed(feeds[0], batch)
    check_in_profile(bench_feed, shapes, f"profile of {layout.engine(precision)}")
    warmup, iters = int(cfg.get("warmup", 3)), int(cfg.get("iterations", 20))
    names = [o["name"] for o in manifest["io"]["outputs"]]

    outputs: dict[str, list[list[np.ndarray]]] = {}
    latency: dict[str, dict[str, Any]] = {}
    runners: list[dict[str, Any]] = []

    def measure(name: str, runner: Any) -> None:
        outputs[name] = run(runner, feeds, names)
        times = time_runner(runner, bench_feed, warmup, iters)
        stats = percentiles_ms(times)
        latency[name] = {**stats, "throughput_per_s": batch * 1e3 / stats["mean_ms"], "batch": batch,
                         "iterations": iters, "warmup": warmup}
        runners.append({"name": name, "status": "ran", "reason": None})
        log(f"profile[{precision}]", f"{name}: p50 {stats['p50_ms']:.2f} ms at batch {batch}")

    reference = "onnxrt-fp32"
    with onnxrt_runner(layout.exported_onnx) as r:
        measure(reference, r)
    candidates = []
    if precision != "fp32":
        with onnxrt_runner(layout.calibrated_onnx(precision)) as r:
            measure(f"onnxrt-{precision}", r)
        candidates.append(f"onnxrt-{precision}")
    blocker = execution_blocker(select_backend())
    if manifest["builder"]["backend"] != select_backend().name:
        blocker = f"engine built by {manifest['builder']['backend']}, this host has {select_backend().name}"
    if blocker:
        runners.append({"name": "tensorrt", "status": "skipped", "reason": blocker})
        log(f"profile[{precision}]", f"tensorrt runner skipped: {blocker}")
    else:
        from ..drift import check_manifest, running_system

        # An engine built for another TensorRT / L4T / GPU / DLA: say so plainly, not via deserialization.
        check_manifest(manifest, running_system(dla_core=manifest["system"].get("dla_core")),
                       layout.engine(precision), action="profile")
        try:
            with trt_runner(layout.engine(precision)) as r:
                measure("tensorrt", r)
            candidates.append("tensorrt")
        except Exception as e:  # recorded as a result: the report says the engine failed to run
            runners.append({"name": "tensorrt", "status": "failed", "reason": f"{e.__class__.__name__}: {e}"})

    from ..evaluation.gate import accuracy_gate, measure_ground_truth

    # Ground truth on ONNX Runtime: FP32's export and the calibrated ONNX the engine was built from.
    truth = measure_ground_truth(adapter, recipe, layout.exported_onnx,
                                 layout.calibrated_onnx(precision) if precision != "fp32" else None,
                                 f"profile[{precision}]")
    by_runner = {}
    for cand in candidates or [reference]:
        per_output = compare_batches(names, outputs[reference], outputs[cand])
        task = adapter.task_accuracy(recipe, names, outputs[reference], outputs[cand])
        by_runner[cand] = {"outputs": per_output, "task": task,
                           "gate": accuracy_gate(recipe, precision, per_output, task, truth,
                                                 bool(manifest["weights"].get("random")))}
    primary = candidates[0] if candidates else reference
    # Families with their own run loop (an LLM's generation) measure it on every runner that ran here.
    models = {reference: layout.exported_onnx}
    if precision != "fp32":
        models[f"onnxrt-{precision}"] = layout.calibrated_onnx(precision)
    if "tensorrt" in candidates:
        models["tensorrt"] = layout.engine(precision)
    family_metrics = adapter.runtime_metrics(recipe, models, manifest)
    report = {
        "schema": REPORT_SCHEMA,
        "model": recipe.name,
        "family": recipe.family,
        "precision": precision,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "engine": str(layout.engine(precision)),
        "builder": manifest["builder"],
        "weights": manifest["weights"],
        "accuracy": {"reference": reference, "candidate": primary, "feeds": len(feeds), **by_runner[primary],
                     "ground_truth": ({"reference": truth[0]["reference"], "fp32": truth[0]["metrics"],
                                       "candidate": truth[1]["metrics"], "runner": f"onnxrt-{precision}"}
                                      if truth else None),
                     "by_runner": by_runner},
        "latency": latency,
        "runners": runners,
        "memory": {
            "engine_bytes": manifest["memory"]["engine_bytes"],
            "weights_bytes": manifest["memory"].get("weights_bytes"),
            "activation_bytes": manifest["memory"].get("activation_bytes"),
            "onnx_bytes": sum(p.stat().st_size for p in onnx_files(layout.calibrated_onnx(precision))),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        },
        "onnx_nodes": len(onnx_utils.load(layout.calibrated_onnx(precision), with_weights=False).graph.node),
        "family_metrics": family_metrics,
        # Latency means nothing without the clocks it ran at; off a Jetson the notes say what was unreadable.
        "power_state": record_power_state().to_dict(),
    }
    analysis_md = _analysis_section(recipe, layout, precision, manifest, report)
    write_json(layout.report_json(precision), report)
    write_text(layout.report_md(precision), render_markdown(report) + analysis_md)
    gate = report["accuracy"]["gate"]
    log(f"profile[{precision}]", f"report: {layout.report_md(precision)}")
    if not gate["passed"]:
        failed = gate["failed"]
        raise PipelineError(f"{layout.report_md(precision)}: accuracy gate failed: {primary} {failed['name']}: "
                            f"{failed['detail']}")
    return {"accuracy_passed": True, "latency": latency}


def _analysis_section(recipe: Recipe, layout: Layout, precision: str, manifest: dict[str, Any],
                      report: dict[str, Any]) -> str:
    """Static cost / roofline / fits analysis on the engine's target (AGX Orin 64GB when none), with its plot."""
    from ..analyze import DEFAULT_TARGET, recipe_context, recipe_shapes, write_analysis
    from ..analyze.graph import analyze_onnx
    from ..analyze.render import markdown
    from ..analyze.shapes import graph_inputs
    from ..targets import get_target

    try:
        target = get_target(manifest.get("target") or DEFAULT_TARGET)
        names = {v.name for v in graph_inputs(onnx_utils.load(layout.exported_onnx, with_weights=False))}
        shapes = {n: s for n, s in recipe_shapes(recipe.profiles, None).items() if n in names}
        analysis = analyze_onnx(layout.exported_onnx, shapes, precision, target, recipe_context(recipe.raw, recipe.profiles))
        paths = write_analysis(analysis, target, layout.precision_dir(precision), f"analysis-{target.key}")
    except PipelineError as e:  # the report still stands; it says why the analysis is missing
        report["analysis"] = {"error": str(e)}
        return f"\n## Analysis\n\nnot available: {e}\n"
    plot = paths.get("png")
    report["analysis"] = {"target": target.key, "totals": analysis["totals"], "roofline": analysis["roofline"],
                          "fits": analysis["fits"], "json": paths["json"].name, "plot": plot.name if plot else None}
    from ..sparsity import report_section

    sparsity, sparsity_md = report_section(layout.model_dir)
    if sparsity is not None:
        report["sparsity"] = sparsity
    return "\n" + markdown(analysis, plot.name if plot else None) + sparsity_md
