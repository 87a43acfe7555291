"""Options shared by the stage subcommands, and turning them into a recipe and a precision."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PipelineError
from ..recipe.loader import PRECISIONS, Recipe, load_recipe

if TYPE_CHECKING:
    from ..stages.plan import BuildPlan


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
    if getattr(args, "dla", None) is not None and not getattr(args, "target", None):
        # Said before any work: a TensorRT with no Orin DLA at all (JetPack 7.2, TensorRT-RTX) first, since
        # no --target helps there; otherwise which DLA cores exist depends on the board.
        from ..trt.backend import select_backend
        from ..trt.dla_build import require_dla

        require_dla(select_backend())
        raise PipelineError(f"--dla {args.dla} needs --target (an Orin with DLA cores, e.g. orin-agx-64, or auto)")
    if getattr(args, "target", None):
        from ..platform.targets import resolve_target

        # Refuse a precision or DLA core the board lacks before any work (fp8 on an Orin is a board
        # limit, said as such); `auto` becomes the detected SKU.
        args.target = resolve_target(args.target, getattr(args, "precision", None), getattr(args, "dla", None)).key
    recipe = load_recipe(args.model, args.overrides)
    precision = recipe.resolve_precision(getattr(args, "precision", None)) if hasattr(args, "precision") else None
    if getattr(args, "target", None) and precision:
        from ..platform.targets import get_target

        get_target(args.target).check_precision(precision, getattr(args, "dla", None))  # the recipe's default
    return recipe, precision


def add_build_options(p: argparse.ArgumentParser) -> None:
    """What trtexec users tune, over the recipe's `build:` section (trtexec's flag in each help)."""
    p.add_argument("--workspace", type=int, default=None, metavar="MIB", dest="workspace_mib",
                   help="builder workspace pool in MiB (trtexec --memPoolSize=workspace:MIB; default: the "
                   "recipe's build.workspace_mib, capped by --target)")
    p.add_argument("--opt-level", type=int, default=None, metavar="N", dest="builder_optimization_level",
                   help="builder optimization level 0..5 (trtexec --builderOptimizationLevel; default 3)")
    p.add_argument("--timing-cache", type=Path, default=None, metavar="PATH", dest="timing_cache",
                   help="timing cache file to load and save (trtexec --timingCacheFile; default: "
                   "engines/<model>/.cache/timing-<backend>-<version>.cache)")
    p.add_argument("--strip-weights", action="store_true", default=None, dest="strip_weights",
                   help="weight-stripped, refittable plan (STRIP_PLAN + REFIT_IDENTICAL, trtexec --stripWeights): "
                   "the device refits it from the ONNX before it runs")


def build_plan(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> BuildPlan:
    """The build plan from the command line: target, DLA, sparsity and the build overrides it set (None:
    not given, the recipe decides)."""
    from ..stages.plan import OVERRIDES, resolve_plan

    return resolve_plan(recipe, args.target, precision, args.dla, args.dla_policy, args.sparse,
                        {key: getattr(args, key, None) for key in OVERRIDES})


def positive_int(text: str) -> int:
    """An argparse type: a count that must be at least 1 (a batch, iterations, tokens)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_empty_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def guarded(handler):  # noqa: ANN001, ANN201 - a decorator over (args) -> int handlers
    """Run a handler that writes a model's artifacts inside its workspace guard (pipeline/core/workspace.py)."""
    import functools

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from ..core.workspace import model_workspace

        recipe, precision = resolve(args)
        with model_workspace(args.root, recipe.name, getattr(args, "calib_root", None)):
            return handler(args, recipe, precision)

    return run
