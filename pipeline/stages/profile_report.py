"""The human-readable report.md rendered from report.json."""

from __future__ import annotations

from typing import Any

from ..core.artifacts import Layout
from ..errors import PipelineError
from ..recipe.loader import Recipe


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _mb(v: int | None) -> str:
    return "n/a" if v is None else f"{v / 1e6:.2f} MB"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    acc, mem, b = report["accuracy"], report["memory"], report["builder"]
    out = [f"# {report['model']} · {report['precision']}", ""]
    if report["weights"].get("random"):
        out += ["> **Random weights** (source: " + str(report["weights"].get("source")) + "): the checkpoint "
                "could not be had offline. Accuracy numbers below show that the pipeline works, "
                "not how good the model is.", ""]
    out += [f"Engine `{report['engine']}` built by **{b['backend']} {b['version']}** in {b['seconds']} s.", ""]
    from ..evaluation.gate import gate_markdown

    out += ["## Accuracy", "", f"{acc['candidate']} against {acc['reference']} on {acc['feeds']} held-out inputs.", ""]
    out += gate_markdown(acc["gate"])
    truth = acc.get("ground_truth")
    if truth:
        out += [f"Ground truth: {truth['reference']}, measured on ONNX Runtime (FP32 export and "
                f"`{truth['runner']}`, the ONNX the engine was built from)", ""]
        out += _table(["metric", "FP32", "candidate"],
                      [[k, v, truth["candidate"].get(k)] for k, v in truth["fp32"].items()])
    out += ["Agreement with FP32 (diagnostics where ground truth gates):", ""]
    out += _table(["runner", "output", "max abs", "max rel", "cosine", "SNR dB"], [
        [runner, name, m["max_abs"], m["max_rel"], m["cosine"], m["snr_db"]]
        for runner, r in acc["by_runner"].items() for name, m in r["outputs"].items()
    ])
    task = acc.get("task") or {}
    if task:
        out += ["Task-level: " + task.get("metric", "") + "", ""]
        out += _table(["key", "value"], [[k, v] for k, v in task.items() if k != "metric"])
    out += ["## Latency", ""]
    out += _table(["runner", "batch", "p50 ms", "p90 ms", "p99 ms", "throughput /s"], [
        [n, lat["batch"], lat["p50_ms"], lat["p90_ms"], lat["p99_ms"], lat["throughput_per_s"]]
        for n, lat in report["latency"].items()
    ])
    skipped = [r for r in report["runners"] if r["status"] != "ran"]
    for r in skipped:
        out += [f"- `{r['name']}` {r['status']}: {r['reason']}"]
    if skipped:
        out += [""]
    out += ["ONNX Runtime on a CPU simulates INT8/FP16 numerics; its latency says nothing about an Orin.", ""]
    out += _family_metrics(report.get("family_metrics") or {})
    out += ["## Memory", ""]
    out += _table(["what", "size"], [
        ["engine file", _mb(mem["engine_bytes"])],
        ["builder: weights", _mb(mem.get("weights_bytes"))],
        ["builder: activations", _mb(mem.get("activation_bytes"))],
        ["calibrated ONNX", _mb(mem.get("onnx_bytes"))],
        ["peak host RSS of the profiler", _mb(mem.get("peak_rss_bytes"))],
    ])
    power = report.get("power_state")
    if power:
        out += ["## Power state", ""]
        out += _table(["what", "value"], [
            ["nvpmodel", f"{power.get('nvpmodel_mode')} (id {power.get('nvpmodel_id')})"],
            ["jetson_clocks pinned", power.get("jetson_clocks")],
            ["L4T", power.get("l4t")],
            ["clocks MHz", power.get("clocks_mhz") or None],
        ])
        if not power.get("nvpmodel_mode"):
            out += ["Not a Jetson (or its tools are not readable): " + "; ".join(power.get("notes", [])), ""]
    return "\n".join(out)


def _family_metrics(metrics: dict[str, Any]) -> list[str]:
    """The family's own run-loop metrics (e.g. an LLM's perplexity and tokens/s), one row per runner."""
    rows = metrics.get("by_runner") or {}
    if not rows:
        return []
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    out = ["## Model metrics", "", str(metrics.get("metric", "")), ""]
    out += _table(["runner", *keys], [[name, *(r.get(k) for k in keys)] for name, r in rows.items()])
    extra = {k: v for k, v in metrics.items() if k not in ("metric", "by_runner")}
    for key, value in extra.items():
        out += [f"- {key}: {value}"]
    return out + ([""] if extra else [])


def analysis_section(recipe: Recipe, layout: Layout, precision: str, manifest: dict[str, Any],
                      report: dict[str, Any]) -> str:
    """report.md's analysis section: static cost / roofline / fits on the engine's target (AGX Orin 64GB when
    none), with its plot; the numbers also go into `report` (and the 2:4 sparsity section where there is one)."""
    from ..analyze import DEFAULT_TARGET, recipe_context, recipe_shapes, write_analysis
    from ..analyze.graph import analyze_onnx
    from ..analyze.render import markdown
    from ..analyze.shapes import graph_inputs
    from ..core import onnx_utils
    from ..platform.targets import get_target

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
    from .sparsify import report_section

    sparsity, sparsity_md = report_section(layout.model_dir)
    if sparsity is not None:
        report["sparsity"] = sparsity
    return "\n" + markdown(analysis, plot.name if plot else None) + sparsity_md
