"""tune.json, the markdown section and the Pareto plot (estimated latency against loss, the budget drawn,
the choice marked) of one search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.artifacts import atomic_path, write_json, write_text
from ..evaluation.budget import format_loss

SCHEMA = "orin-trt/tune@1"


def rows_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per candidate: the whole-set measurement where it has one, else its screening."""
    out = []
    for r in result["rows"].values():
        m = r.get("full") or r["screen"]
        out.append({**m, "measured_on": "full" if "full" in r else "screen",
                    "screen_loss": r["screen"]["loss"], "chosen": result["choice"] is not None
                    and result["choice"]["key"] == m["key"]})
    return out


def write_tune_json(path: Path, model: str, result: dict[str, Any], fallback: str | None) -> dict[str, Any]:
    doc = {"schema": SCHEMA, "model": model, "precision": result["precision"], "budget": result["budget"],
           "target": result["target"], "latency_profile": result.get("latency_profile"),
           "screen_samples": result["screen_samples"], "seconds": result["seconds"],
           "candidates": rows_of(result), "choice": result["choice"], "closest": result["closest"],
           "sensitivity": result["sensitivity"], "skipped_time_limit": result["skipped_time_limit"],
           "failed": result.get("failed", {}),
           "fallback": fallback}
    write_json(path, doc)
    return doc


def pareto_png(doc: dict[str, Any], out: Path) -> Path | None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["candidates"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for measured, marker in (("screen", "o"), ("full", "s")):
        pts = [r for r in rows if r["measured_on"] == measured]
        ax.scatter([r["estimated_ms"] for r in pts], [r["loss"] for r in pts], marker=marker, alpha=0.7,
                   label=f"measured on {'the screening subset' if measured == 'screen' else 'the full set'}")
    budget = doc["budget"]
    limit = next(budget[k] for k in ("max_drop", "max_increase_pct", "max_ratio") if k in budget)
    ax.axhline(limit, color="red", linestyle="--", label=f"budget ({limit:g})")
    chosen = [r for r in rows if r["chosen"]]
    if chosen:
        ax.scatter([chosen[0]["estimated_ms"]], [chosen[0]["loss"]], s=220, facecolors="none", edgecolors="green",
                   linewidths=2, label=f"chosen: {chosen[0]['name']}")
    ax.set_xlabel(f"estimated latency on {doc['target']} (ms, roofline per node)")
    unit = {"max_increase_pct": ", % increase", "max_ratio": ", ratio to FP32"}.get(
        next((k for k in ("max_increase_pct", "max_ratio") if k in budget), ""), "")
    ax.set_ylabel(f"loss vs FP32 ({budget['metric']}{unit})")
    ax.set_title(f"{doc['model']} · {doc['precision']}: accuracy against estimated latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out


def markdown(doc: dict[str, Any], plot: str | None) -> str:
    out = [f"## Tuning · {doc['precision']}", "",
           f"Budget: {doc['budget']['metric']} ({', '.join(f'{k} {v}' for k, v in doc['budget'].items() if k != 'metric')}); "
           f"latency estimated on {doc['target']}"
           f"{' for one ' + doc['latency_profile'] + ' step' if doc.get('latency_profile') else ''} "
           f"(roofline per node, each node at its precision; an estimate "
           f"until measured on an Orin). {len(doc['candidates'])} candidates in {doc['seconds']} s.", ""]
    choice = doc["choice"]
    if choice:
        out += [f"**Chosen: {choice['name']}**: {choice['metric']} {choice['value']:.4f} (FP32 {choice['fp32']:.4f}, "
                f"loss {format_loss(choice['loss'], doc['budget'])}), {choice['estimated_ms']:.3f} ms estimated, "
                f"{choice['weight_bytes'] / 1e6:.2f} MB weights.", ""]
    else:
        out += ["**Nothing met the budget.** Closest: " + "; ".join(
            f"{r['name']} (loss {format_loss(r['loss'], doc['budget'])})" for r in doc["closest"]) +
            (f". Fell back to {doc['fallback']}." if doc.get("fallback") else "."), ""]
    if doc["skipped_time_limit"]:
        out += [f"Not tried (time limit): {', '.join(doc['skipped_time_limit'])}", ""]
    if doc.get("failed"):
        out += ["Failed (left out of the search):", ""] + [f"- {n}: {e}" for n, e in doc["failed"].items()] + [""]
    out += ["| candidate | measured on | samples | metric | loss | within budget | est. ms | weights MB | s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(doc["candidates"], key=lambda r: r["estimated_ms"]):
        mark = " **(chosen)**" if r["chosen"] else ""
        out.append(f"| {r['name']}{mark} | {r['measured_on']} | {r['samples']} | {r['value']:.4f} | {format_loss(r['loss'], doc['budget'])} | "
                   f"{'yes' if r['within_budget'] else 'no'} | {r['estimated_ms']:.3f} | {r['weight_bytes'] / 1e6:.2f} "
                   f"| {r['seconds']} |")
    out.append("")
    sens = doc.get("sensitivity") or {}
    if sens.get("gains"):
        out += [f"Block sensitivity (from {sens['from']}; loss gained keeping the block out of INT8):", ""]
        out += [f"- `{b}`: {g:+.4f}" for b, g in sens["gains"].items()] + [""]
    if plot:
        out += [f"![Pareto: estimated latency against loss]({plot})", ""]
    return "\n".join(out)


def write_report(folder: Path, model: str, result: dict[str, Any], fallback: str | None) -> dict[str, Path]:
    doc = write_tune_json(folder / "tune.json", model, result, fallback)
    png = pareto_png(doc, folder / "tune-pareto.png")
    write_text(folder / "tune.md", markdown(doc, png.name if png else None))
    return {"json": folder / "tune.json", "md": folder / "tune.md", **({"png": png} if png else {})}
