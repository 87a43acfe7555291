"""The chains the CLI and make targets run: engine = export -> calibrate -> build; then profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .artifacts import Layout
from .cache import StageResult
from .recipe import Recipe


def run_engine(recipe: Recipe, precision: str, root: Path, calib_root: Path, force: bool = False,
               target: str | None = None, dla_core: int | None = None, dla_policy: str = "fallback",
               sparse: bool = False, overrides: dict[str, Any] | None = None) -> list[StageResult]:
    """export -> calibrate -> build. TensorRT cannot cross-compile for a Jetson: for an Orin target this
    host is not, the last step writes a bundle instead; on the Orin, a bundle without the export is
    built from directly (no torch)."""
    from .bundle import build_from_bundle, bundle_dir, bundle_stage, host_can_build_for
    from .stages.build import build, build_options

    layout = Layout(root, recipe.name)
    opts = build_options(recipe, target, precision, dla_core, dla_policy, sparse, overrides)  # refuses before any work
    target = opts["target"]  # `auto` resolved to the SKU
    if sparse:
        from .sparsity import sparse_layout

        built = sparse_layout(layout)  # the 2:4-pruned export is calibrated, built and profiled on its own
    else:
        built = layout
    if host_can_build_for(target) and bundle_dir(built, precision).exists() and not built.exported_onnx.exists():
        return [build_from_bundle(built, precision, force)]
    from .stages.export import export
    from .tune import calibrate_or_tune

    results = [export(recipe, layout, force)]
    if sparse:
        from .sparsity import sparsify_stage

        results.append(sparsify_stage(recipe, layout, force))
    layout = built
    results.append(calibrate_or_tune(recipe, layout, precision, calib_root, force, target_dla=dla_core is not None))
    if target and not all(r.skipped for r in results):  # before the long part: will it fit the board?
        from .analyze import fits_note

        fits_note(recipe, layout.exported_onnx, precision, target)
    if not host_can_build_for(target):
        return [*results, bundle_stage(recipe, layout, precision, opts["target"], opts, force)]
    return [*results, build(recipe, layout, precision, force, target, dla_core=dla_core, dla_policy=dla_policy,
                            sparse=sparse, overrides=overrides)]


def run_profile(recipe: Recipe, precision: str, root: Path, force: bool = False, batch: int | None = None,
                iterations: int | None = None, sparse: bool = False) -> StageResult:
    from .stages.profile import profile

    layout = Layout(root, recipe.name)
    if sparse:
        from .sparsity import sparse_layout

        layout = sparse_layout(layout)
    return profile(recipe, layout, precision, force, batch, iterations)
