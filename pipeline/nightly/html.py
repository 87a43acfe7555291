"""The morning report: one self-contained HTML page (plots inlined as PNG) per nightly run.

Top: the verdict and every regression or failure with what changed. Then tonight's results,
the trends of latency, memory, energy and accuracy per engine, and latency against accuracy per
model (each precision and batch size a point), so a faster-but-worse trade is visible at a glance.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..core.artifacts import write_text
from .collect import min_cosine, primary_latency, runner_of
from .history import History, StoredResult
from .regression import Decision
from .report_template import TEMPLATE


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _trend_panels(results: list[StoredResult]) -> list[tuple[str, str, Any]]:
    """(title, unit, function of a result's metrics -> value or None) for the four trend panels."""
    def latency(m: dict[str, float]) -> float | None:
        name = primary_latency(m)
        return m.get(name) if name else None

    def memory(m: dict[str, float]) -> float | None:
        if "power.ram_used_mb" in m:
            return m["power.ram_used_mb"]
        return m["memory.engine_bytes"] / 1e6 if "memory.engine_bytes" in m else None

    on_device = any("power.ram_used_mb" in r.metrics for r in results)
    return [
        ("latency p50", "ms", latency),
        ("memory (RAM used)" if on_device else "memory (engine file)", "MB", memory),
        ("energy per inference", "J", lambda m: m.get("power.energy_per_inference_j")),
        ("accuracy (worst output cosine)", "", min_cosine),
    ]


def trend_figure(engine: str, results: list[StoredResult]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.0))
    ok = [r for r in results if r.status == "ok"]
    failed = [r for r in results if r.status != "ok"]
    for ax, (title, unit, pick) in zip(axes, _trend_panels(results), strict=True):
        points = [(r.started_utc, pick(r.metrics)) for r in ok]
        points = [(t, v) for t, v in points if v is not None]
        ax.set_title(f"{title}" + (f" [{unit}]" if unit else ""), fontsize=10)
        if points:
            ax.plot([t for t, _ in points], [v for _, v in points], marker="o", color="#1f6feb")
            if len(points) == 1:  # one night: a day either side, not matplotlib's default of years
                ax.set_xlim(points[0][0] - timedelta(days=1), points[0][0] + timedelta(days=1))
            for r in failed:
                ax.axvline(r.started_utc, color="#d1242f", linestyle="--", linewidth=1)
        else:
            ax.text(0.5, 0.5, "not measured on this host", ha="center", va="center",
                    transform=ax.transAxes, color="#57606a", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(engine, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return _png(fig)


def tradeoff_figure(model: str, latest: list[StoredResult]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for r in latest:
        name = primary_latency(r.metrics)
        cos = min_cosine(r.metrics)
        if r.status == "ok" and name and cos is not None:
            points.append((r.metrics[name], cos, f"{r.precision} b{r.batch}"))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="#8250df", s=40)
    for x, y, label in points:
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.margins(x=0.2, y=0.2)  # room for the point labels
    ax.set_xlabel("latency p50 [ms] (lower is better)")
    ax.set_ylabel("worst output cosine (higher is better)")
    ax.set_title(f"{model}: latency against accuracy", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def sweep_figure(label: str, results: list[StoredResult]) -> str | None:
    """Throughput against latency over tonight's batch sizes of one engine (the batch sweep)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = sorted((r for r in results if r.status == "ok"), key=lambda r: r.batch)
    # One runner for every point: a latency every batch size measured, TensorRT's where it ran.
    common = set.intersection(*(set(r.metrics) for r in ok)) if len(ok) > 1 else set()
    name = primary_latency({k: 0.0 for k in common})
    throughput = name[: -len("p50_ms")] + "throughput_per_s" if name else None
    if not name or throughput not in common:
        return None
    points = [(r.metrics[name], r.metrics[throughput], r.batch) for r in ok]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#bf8700")
    for x, y, batch in points:
        ax.annotate(f"b{batch}", (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.margins(x=0.2, y=0.2)
    ax.set_xlabel("latency p50 [ms]")
    ax.set_ylabel("throughput [items/s]")
    ax.set_title(f"{label}: batch sweep ({runner_of(name)})", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _depth_rows(tonight: list[StoredResult]) -> list[dict[str, Any]]:
    """Per engine, what the TensorRT depth profile found (on the devkit): one table row per batch."""
    rows = []
    for r in tonight:
        device = r.details.get("device") or {} if isinstance(r.details, dict) else {}
        for point in device.get("batch_sweep", []):
            if point.get("batch") != r.batch:
                continue
            power = point.get("power") or {}
            rows.append({
                "engine": r.engine,
                "p50": _fmt(point["latency"]["p50_ms"]),
                "graph_p50": _fmt(point["cuda_graph"]["p50_ms"]),
                "split": " / ".join(_fmt(point["split_ms"].get(k), 3) for k in ("h2d", "compute", "d2h")),
                "power": _fmt(power.get("avg_power_w"), 3),
                "energy": _fmt(power.get("energy_per_inference_j")),
                "ram": power.get("ram_used_mb_max", "n/a"),
                "throttle": "; ".join(power.get("throttle_reasons") or []) or ("no" if power else "n/a"),
                "precisions": ", ".join(f"{k} {v}" for k, v in
                                        sorted((device.get("layer_info") or {}).get("precisions", {}).items())),
                "reformats": len((device.get("layer_info") or {}).get("reformat_layers", [])),
                "devices": ", ".join(f"{k} {v}" for k, v in (device.get("layer_info") or {}).get("devices", {}).items()),
                "top": ", ".join(f"{t['layer']} ({t['share']:.0%})" for t in device.get("top_layers", [])[:3]),
            })
    return rows


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _by_precision(results: list[StoredResult]) -> dict[str, list[StoredResult]]:
    groups: dict[str, list[StoredResult]] = defaultdict(list)
    for r in results:
        groups[f"{r.model}/{r.precision}"].append(r)
    return groups


def render_report(history: History, run_id: int, decisions: Sequence[Decision], out_dir: Path) -> Path:
    """Write `<out_dir>/run-<id>.html` and `<out_dir>/index.html` (the latest); return the former."""
    import jinja2

    run = history.run(run_id)
    tonight = history.run_results(run_id)
    # Trends up to this run: an older page re-rendered later shows what was known that morning.
    everything = [r for r in history.all_results() if r.run_id <= run_id]
    by_engine: dict[str, list[StoredResult]] = defaultdict(list)
    for r in everything:
        by_engine[r.engine].append(r)
    flagged = [d for d in decisions if d.is_regression]
    covered = {d.engine for d in flagged if d.status == "failed"}
    flagged += [Decision(r.engine, "status", "failed", message=f"{r.engine}: failed: {r.error}")
                for r in tonight if r.status != "ok" and r.engine not in covered]
    improved = [d for d in decisions if d.status == "improved"]
    rows = []
    notes: set[str] = set()  # said once under the table, not on every row
    for r in tonight:
        lat = primary_latency(r.metrics)
        power = r.details.get("device", {}) if isinstance(r.details, dict) else {}
        rows.append({
            "engine": r.engine, "status": r.status, "error": r.error,
            "latency": f"{_fmt(r.metrics.get(lat))} ({runner_of(lat)})" if lat else "n/a",
            "cosine": _fmt(min_cosine(r.metrics), 6),
            "engine_mb": _fmt(r.metrics["memory.engine_bytes"] / 1e6, 3) if "memory.engine_bytes" in r.metrics else "n/a",
            "energy": _fmt(r.metrics.get("power.energy_per_inference_j")),
            "throttled": "yes" if r.metrics.get("power.throttled") else ("no" if "power.throttled" in r.metrics else "n/a"),
            "load": _fmt(r.metrics.get("host.load_1m"), 3),
        })
        if isinstance(power, dict) and power.get("skipped"):
            notes.add(power["skipped"])
    models: dict[str, list[StoredResult]] = defaultdict(list)
    for r in tonight:
        models[r.model].append(r)
    html = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(TEMPLATE).render(
        run=run,
        verdict="REGRESSION" if flagged or run["exit_code"] else "OK",
        flagged=flagged,
        improved=improved,
        rows=rows,
        notes=sorted(notes),
        # An engine that never succeeded has nothing to plot; its failure is in the tables above.
        trends=[(engine, trend_figure(engine, results)) for engine, results in sorted(by_engine.items())
                if any(r.run_id == run_id for r in results) and any(r.status == "ok" for r in results)],
        tradeoffs=[(m, fig) for m, rs in sorted(models.items()) if (fig := tradeoff_figure(m, rs))],
        sweeps=[(label, fig) for label, rs in sorted(_by_precision(tonight).items())
                if (fig := sweep_figure(label, rs))],
        depth=_depth_rows(tonight),
        power_state=(tonight[0].details.get("power_state") if tonight else None) or {},
        fmt=_fmt,
    )
    out_dir = Path(out_dir)
    page = out_dir / f"run-{run_id}.html"
    write_text(page, html)
    write_text(out_dir / "index.html", html)
    return page
