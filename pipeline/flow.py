"""The chains the CLI and make targets run: engine = export -> calibrate -> build; then profile."""

from __future__ import annotations

from pathlib import Path

from .artifacts import Layout
from .cache import StageResult
from .recipe import Recipe


def run_engine(recipe: Recipe, precision: str, root: Path, calib_root: Path, force: bool = False,
               target: str | None = None) -> list[StageResult]:
    from .stages.build import build
    from .stages.calibrate import calibrate
    from .stages.export import export

    layout = Layout(root, recipe.name)
    return [
        export(recipe, layout, force),
        calibrate(recipe, layout, precision, calib_root, force),
        build(recipe, layout, precision, force, target),
    ]


def run_profile(recipe: Recipe, precision: str, root: Path, force: bool = False, batch: int | None = None,
                iterations: int | None = None) -> StageResult:
    from .stages.profile import profile

    return profile(recipe, Layout(root, recipe.name), precision, force, batch, iterations)
