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
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="change one recipe key for this run, e.g. calibration.max_samples=32 (YAML value; "
                   "repeatable)")


def add_device_options(p: argparse.ArgumentParser) -> None:
    """DLA and sparsity options of a build (defaults from DLA=, DLA_POLICY=, SPARSE= as make passes them)."""
    dla = os.environ.get("DLA") or None
    p.add_argument("--dla", type=int, choices=(0, 1), default=int(dla) if dla else None,
                   help="build for this DLA core (needs a --target with DLA cores; fp16 or int8)")
    p.add_argument("--dla-policy", choices=("strict", "fallback"), default=os.environ.get("DLA_POLICY") or "fallback",
                   help="strict: fail before the build if any layer cannot run on the DLA; "
                   "fallback: let those layers run on the GPU (default)")
    p.add_argument("--sparse", action="store_true", default=bool(os.environ.get("SPARSE")),
                   help="enable the builder's 2:4 sparse-weights tactics (see `orin-trt sparsify`)")


def resolve(args: argparse.Namespace) -> tuple[Recipe, str | None]:
    if getattr(args, "target", None):
        from ..targets import resolve_target

        # Refuse a precision or DLA core the board lacks before any work (fp8 on an Orin is a board
        # limit, said as such); `auto` becomes the detected SKU.
        args.target = resolve_target(args.target, getattr(args, "precision", None), getattr(args, "dla", None)).key
    recipe = load_recipe(args.model, args.overrides)
    precision = recipe.resolve_precision(getattr(args, "precision", None)) if hasattr(args, "precision") else None
    if getattr(args, "target", None) and precision:
        from ..targets import get_target

        get_target(args.target).check_precision(precision, getattr(args, "dla", None))  # the recipe's default
    return recipe, precision
