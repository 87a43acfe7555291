"""Static analysis of a model for an Orin target: cost per node, memory, roofline floor, fits check.

`analyze_for_recipe` is what `orin-trt analyze` and the profile report call: it picks the input
shapes (recipe `opt` profile, batch override) and the KV-cache context from the recipe, and writes
analysis.json plus the roofline PNG beside the model's artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifacts import write_json, write_text
from ..errors import PipelineError
from ..targets import Target

DEFAULT_TARGET = "orin-agx-64"


def recipe_shapes(profiles: list[dict[str, Any]], batch: int | None,
                  overrides: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """The first profile's `opt` shapes, with the batch dim replaced by `batch` and explicit overrides."""
    shapes = {n: list(s["opt"]) for n, s in profiles[0]["shapes"].items()}
    if batch:
        for dims in shapes.values():
            if dims:
                dims[0] = batch
    shapes.update(overrides or {})
    return shapes


def recipe_context(raw: dict[str, Any]) -> int | None:
    """The KV-cache length to plan for: `analyze.context` or `llm.context` of the recipe."""
    for section in ("analyze", "llm"):
        value = (raw.get(section) or {}).get("context")
        if value:
            return int(value)
    return None


def parse_shape(text: str) -> tuple[str, list[int]]:
    """'images=1x3x640x640' -> ('images', [1, 3, 640, 640])."""
    name, sep, dims = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, [int(d) for d in dims.lower().split("x")]
    except ValueError as e:
        raise PipelineError(f"--shape {text!r}: expected NAME=AxBxC, e.g. images=1x3x640x640") from e


def write_analysis(analysis: dict[str, Any], target: Target, out_dir: Path, stem: str = "analysis") -> dict[str, Path]:
    """analysis.json, analysis.md and (for graphs) the roofline PNG, written atomically in `out_dir`."""
    from .render import markdown

    out_dir = Path(out_dir)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
    plot_name = None
    if "nodes_all" in analysis:
        from .plot import roofline_png

        paths["png"] = roofline_png(analysis, target.key, out_dir / f"{stem}-roofline.png")
        plot_name = paths["png"].name
    write_json(paths["json"], {**analysis, "target": target.as_dict()})
    write_text(paths["md"], markdown(analysis, plot_name))
    return paths
