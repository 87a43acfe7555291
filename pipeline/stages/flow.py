"""The chains the CLI and make targets run: engine = export -> calibrate -> build; then profile."""

from __future__ import annotations

from pathlib import Path

from ..core.artifacts import Layout
from ..core.cache import StageResult
from ..recipe.loader import Recipe
from .plan import BuildPlan


def run_engine(recipe: Recipe, plan: BuildPlan, root: Path, calib_root: Path,
               force: bool = False) -> list[StageResult]:
    """export -> calibrate -> build. TensorRT cannot cross-compile for a Jetson: for an Orin target this
    host is not (`plan.builds_here` is False), the last step writes a bundle instead; on the Orin, a bundle
    without the export is built from directly (no torch)."""
    from ..edgellm import uses_edgellm
    from .build import build
    from .bundle import build_from_bundle, bundle_dir, bundle_stage

    if uses_edgellm(recipe):  # NVIDIA's TensorRT Edge-LLM builds this LLM (pipeline/edgellm/)
        from ..edgellm.stages import run_engine as run_edgellm

        return run_edgellm(recipe, plan.precision, root, plan.target, force)
    precision = plan.precision
    layout = Layout(root, recipe.name)
    built = engine_layout(root, recipe, plan.sparse_weights)
    if plan.builds_here and bundle_dir(built, precision).exists() and not built.exported_onnx.exists():
        return [build_from_bundle(built, precision, force)]
    from ..tune import calibrate_or_tune
    from .export import export

    results = [export(recipe, layout, force)]
    if plan.sparse_weights:
        from .sparsify import sparsify_stage

        results.append(sparsify_stage(recipe, layout, force))
    layout = built
    results.append(calibrate_or_tune(recipe, layout, precision, calib_root, force, target_dla=plan.dla is not None))
    if plan.target and not all(r.skipped for r in results):  # before the long part: will it fit the board?
        from ..analyze import fits_note

        fits_note(recipe, layout.exported_onnx, precision, plan.target)
    last = build(recipe, layout, plan, force) if plan.builds_here else bundle_stage(recipe, layout, plan, force)
    return [*results, last]


def run_profile(recipe: Recipe, precision: str, root: Path, force: bool = False, batch: int | None = None,
                iterations: int | None = None, sparse: bool = False) -> StageResult:
    from ..edgellm import uses_edgellm
    from .profile import profile

    if uses_edgellm(recipe):
        from ..edgellm.stages import profile as profile_edgellm

        return profile_edgellm(recipe, Layout(root, recipe.name), precision, force)
    return profile(recipe, engine_layout(root, recipe, sparse), precision, force, batch, iterations)


def engine_layout(root: Path, recipe: Recipe, sparse: bool = False) -> Layout:
    """Where the engine is built and profiled: the 2:4-pruned export is calibrated, built and profiled
    on its own (engines/<model>-sparse24/)."""
    from .sparsify import sparse_layout

    layout = Layout(root, recipe.name)
    return sparse_layout(layout) if sparse else layout
