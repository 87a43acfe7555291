"""Options shared by the stage subcommands, and turning them into a recipe and a precision."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..recipe import PRECISIONS, Recipe, load_recipe


def add_model_options(p: argparse.ArgumentParser, precision: bool = True) -> None:
    p.add_argument("--model", "-m", default=os.environ.get("MODEL", "yolo"),
                   help="built-in model name (yolo, ...) or a recipe .yaml path (default: yolo)")
    if precision:
        p.add_argument("--precision", "-p", default=None,
                       help=f"one of {', '.join(PRECISIONS)} (default: the recipe's)")
    p.add_argument("--target", default=None, help="Orin target, e.g. orin-agx-64, or auto")
    p.add_argument("--root", type=Path, default=Path("engines"), help="artifact root (default: engines)")
    p.add_argument("--calib-root", type=Path, default=Path("calib"),
                   help="calibration data root (default: calib)")
    p.add_argument("--force", action="store_true", help="redo the work even if nothing changed")


def resolve(args: argparse.Namespace) -> tuple[Recipe, str | None]:
    recipe = load_recipe(args.model)
    precision = recipe.resolve_precision(getattr(args, "precision", None)) if hasattr(args, "precision") else None
    return recipe, precision
