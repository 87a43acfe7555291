"""The roofline plot (PNG): attainable throughput against arithmetic intensity, with the model's
heaviest layers and the whole model placed under the target's roof."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.artifacts import atomic_path


def roofline_png(analysis: dict[str, Any], target_name: str, out: Path, max_points: int = 40) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on build hosts or the Orin over ssh
    import matplotlib.pyplot as plt
    import numpy as np

    roof = analysis["roofline"]
    peak, bw = roof["peak_ops_per_s"], roof["bandwidth_bytes_per_s"]
    nodes = [n for n in analysis["nodes_all"] if n["flops"] > 0 and n["bytes"] > 0]
    nodes = sorted(nodes, key=lambda n: n["flops"], reverse=True)[:max_points]
    xs = [n["intensity"] for n in nodes]
    lo = min([0.1, *xs]) / 2
    hi = max([roof["ridge_flops_per_byte"] * 10, *xs]) * 2
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.loglog(grid, np.minimum(peak, grid * bw) / 1e12, color="black", lw=2,
              label=f"roof: {peak / 1e12:.1f} T{roof['compute_dtype']} ops/s, {bw / 1e9:.0f} GB/s")
    colors = {"conv": "tab:blue", "matmul": "tab:orange", "attention": "tab:red", "other": "tab:gray"}
    for kind, color in colors.items():
        pts = [n for n in nodes if n["kind"] == kind]
        if pts:
            ax.scatter([n["intensity"] for n in pts],
                       [min(peak, n["intensity"] * bw) / 1e12 for n in pts],
                       s=18, color=color, alpha=0.7, label=f"{kind} layers")
    ai = roof["arithmetic_intensity"]
    if ai:
        ax.scatter([ai], [min(peak, ai * bw) / 1e12], marker="*", s=160, color="tab:green",
                   label=f"whole model (floor {roof['floor_ms']:.3g} ms)")
    ax.axvline(roof["ridge_flops_per_byte"], color="black", ls=":", lw=1)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("attainable T ops / s")
    ax.set_title(f"{Path(analysis['source']).name or 'model'} {analysis['precision']} on {target_name}")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out
