"""profile: accuracy against the FP32 reference, latency per runner, memory; report.json + report.md."""

from __future__ import annotations

import datetime as dt
import resource
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..core.artifacts import Layout, onnx_files, write_json, write_text
from ..core.cache import StageResult, StageSpec, run_stage
from ..core.integrity import require, verify_engine_build
from ..core.log import log
from ..core.manifest import read_manifest
from ..errors import PipelineError
from ..models import get_adapter
from ..platform.telemetry.power_state import record_power_state
from ..processing.comparison import compare_batches
from ..recipe.loader import Recipe
from .common import ONNX_TOOLS, TRT_TOOLS
from .latency import latency_feed, measure_latency
from .profile_report import analysis_section, render_markdown

REPORT_SCHEMA = "orin-trt/report@1"


def profile(recipe: Recipe, layout: Layout, precision: str, force: bool = False, batch: int | None = None,
            iterations: int | None = None) -> StageResult:
    for needed in (layout.engine(precision), layout.manifest(precision)):
        require(needed, "engine", recipe.name, precision)
    manifest = read_manifest(layout.manifest(precision))
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


def _profile(recipe: Recipe, layout: Layout, precision: str, cfg: dict[str, Any], batch: int | None) -> dict:
    from ..runners import check_in_profile, get_runner, registered, run
    from ..runners.onnxrt import NAME as ONNXRT

    adapter = get_adapter(recipe.family)
    manifest = read_manifest(layout.manifest(precision))
    feeds = adapter.eval_feeds(recipe)
    shapes = manifest["profiles"][0]["shapes"]
    batch = batch or shapes[next(iter(shapes))]["opt"][0]
    bench_feed = latency_feed(feeds[0], batch)
    check_in_profile(bench_feed, shapes, f"profile of {layout.engine(precision)}")
    warmup, iters = int(cfg.get("warmup", 3)), int(cfg.get("iterations", 20))
    names = manifest.output_names

    outputs: dict[str, list[list[np.ndarray]]] = {}
    latency: dict[str, dict[str, Any]] = {}
    runners: list[dict[str, Any]] = []

    def measure(name: str, runner: Any) -> None:
        outputs[name] = run(runner, feeds, names)
        latency[name] = measure_latency(runner, bench_feed, batch, warmup, iters)
        runners.append({"name": name, "status": "ran", "reason": None})
        log(f"profile[{precision}]", f"{name}: p50 {latency[name]['p50_ms']:.2f} ms at batch {batch}")

    reference_runner = get_runner(ONNXRT)
    reference = reference_runner.label("fp32")
    with reference_runner.open(layout.exported_onnx) as r:
        measure(reference, r)
    candidates = []
    models = {reference: layout.exported_onnx}  # what ran, for families with their own run loop
    for runner in registered():
        name = runner.label(precision)
        if name == reference:  # fp32's ONNX is the reference itself
            continue
        blocker = runner.blocker(manifest)
        if blocker:
            runners.append({"name": name, "status": "skipped", "reason": blocker})
            log(f"profile[{precision}]", f"{name} runner skipped: {blocker}")
            continue
        path = runner.path(layout, precision)
        if runner.artifact == "engine":
            from ..platform.drift import check_manifest, running_system

            # An engine built for another TensorRT / L4T / GPU / DLA: say so plainly, not via deserialization.
            check_manifest(manifest, running_system(dla_core=manifest["system"].get("dla_core")),
                           path, action="profile")
        try:
            with runner.open(path) as r:
                measure(name, r)
        except Exception as e:
            if not runner.failure_is_result:
                raise
            # recorded as a result: the report says the engine failed to run
            runners.append({"name": name, "status": "failed", "reason": f"{e.__class__.__name__}: {e}"})
            continue
        candidates.append(name)
        models[name] = path

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
    analysis_md = analysis_section(recipe, layout, precision, manifest, report)
    write_json(layout.report_json(precision), report)
    write_text(layout.report_md(precision), render_markdown(report) + analysis_md)
    gate = report["accuracy"]["gate"]
    log(f"profile[{precision}]", f"report: {layout.report_md(precision)}")
    if not gate["passed"]:
        failed = gate["failed"]
        raise PipelineError(f"{layout.report_md(precision)}: accuracy gate failed: {primary} {failed['name']}: "
                            f"{failed['detail']}")
    return {"accuracy_passed": True, "latency": latency}
