"""Static analysis of a model for an Orin target: cost per node, memory, roofline floor, fits check.

`analyze_for_recipe` is what `orin-trt analyze` and the profile report call: it picks the input
shapes (recipe `opt` profile, batch override) and the KV-cache context from the recipe, and writes
analysis.json plus the roofline PNG beside the model's artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.artifacts import write_json, write_text
from ..errors import PipelineError
from ..platform.targets import Target

DEFAULT_TARGET = "orin-agx-64"


def recipe_shapes(profiles: list[dict[str, Any]], batch: int | None,
                  overrides: dict[str, list[int]] | None = None, profile: str | None = None) -> dict[str, list[int]]:
    """A profile's `opt` shapes (the first, or the one named), with the batch dim replaced by `batch`
    and explicit overrides."""
    chosen = profiles[0]
    if profile is not None:
        named = {p.get("name"): p for p in profiles}
        if profile not in named:
            raise PipelineError(f"--profile {profile}: the recipe's profiles are {', '.join(map(str, named))}")
        chosen = named[profile]
    shapes = {n: list(s["opt"]) for n, s in chosen["shapes"].items()}
    if batch:
        for dims in shapes.values():
            if dims:
                dims[0] = batch
    shapes.update(overrides or {})
    return shapes


def recipe_context(raw: dict[str, Any], profiles: list[dict[str, Any]] | None = None) -> int | None:
    """The KV-cache length to plan for: `analyze.context` of the recipe, else the longest the profiles
    allow (max cached tokens + max new tokens of one profile, e.g. 255 + 1)."""
    from .memory import KV_INPUT, kv_axes

    value = (raw.get("analyze") or {}).get("context")
    if value:
        return int(value)
    longest = 0
    for p in profiles or []:
        shapes = p["shapes"]
        past = [s["max"][kv_axes(n)[0]] for n, s in shapes.items() if KV_INPUT.search(n) and len(s["max"]) == 4]
        new = [s["max"][1] for n, s in shapes.items() if n == "input_ids" and len(s["max"]) >= 2]
        if past:
            longest = max(longest, max(past) + max(new or [0]))
    return longest or None


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
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:  # an Orin without the nightly extra
            from ..core.log import warn

            warn("analyze", "matplotlib is not installed: no roofline plot (pip install matplotlib)")
        else:
            from .plot import roofline_png

            paths["png"] = roofline_png(analysis, target.key, out_dir / f"{stem}-roofline.png")
            plot_name = paths["png"].name
    write_json(paths["json"], {**analysis, "target": target.as_dict()})
    write_text(paths["md"], markdown(analysis, plot_name))
    return paths


def fits_note(recipe: Any, onnx_path: Path, precision: str, target_key: str) -> dict[str, Any] | None:
    """One log line before a long build: will this model fit the target, and its latency floor. Never
    fails the build (the estimate is an estimate); a shape it cannot resolve just skips the note."""
    from ..analyze.graph import analyze_onnx
    from ..analyze.shapes import graph_inputs
    from ..core.log import log, warn
    from ..core.onnx_utils import load
    from ..platform.targets import get_target

    target = get_target(target_key)
    try:
        names = {v.name for v in graph_inputs(load(onnx_path, with_weights=False))}
        shapes = {n: s for n, s in recipe_shapes(recipe.profiles, None).items() if n in names}
        analysis = analyze_onnx(onnx_path, shapes, precision, target, recipe_context(recipe.raw, recipe.profiles))
    except PipelineError as e:
        warn("analyze", f"no fits check for {target.key}: {e}")
        return None
    fits, roof = analysis["fits"], analysis["roofline"]
    line = (f"{recipe.name} {precision} on {target.key}: needs {fits['total_bytes'] / 2**30:.2f} GiB of "
            f"{fits['usable_bytes'] / 2**30:.2f} usable; latency floor {roof['floor_ms']:.3g} ms at batch "
            f"{next(iter(shapes.values()))[0] if shapes else 1} ({roof['bound']}-bound)")
    (log if fits["fits"] else warn)("analyze", line if fits["fits"] else f"DOES NOT FIT: {line}")
    return fits
