"""The stage subcommands: export, calibrate, build, engine (all three), profile."""

from __future__ import annotations

import argparse
import os

from ..core.artifacts import Layout
from ..recipe.loader import Recipe
from ._common import (
    add_build_options,
    add_device_options,
    add_model_options,
    build_plan,
    guarded,
    positive_int,
)


@guarded
def _export(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> int:
    from ..edgellm import uses_edgellm
    from ..stages.export import export

    if uses_edgellm(recipe):  # Edge-LLM's ONNX is per precision; the export stage alone writes fp16's
        from ..edgellm.stages import export as export_edgellm

        export_edgellm(recipe, Layout(args.root, recipe.name), "fp16", args.force)
        return 0
    export(recipe, Layout(args.root, recipe.name), args.force)
    return 0


@guarded
def _calibrate(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> int:
    from ..edgellm import uses_edgellm
    from ..tune import calibrate_or_tune

    if uses_edgellm(recipe):
        from ..edgellm.stages import quantize

        quantize(recipe, Layout(args.root, recipe.name), precision, args.force)
        return 0
    calibrate_or_tune(recipe, Layout(args.root, recipe.name), precision, args.calib_root, args.force)
    return 0


@guarded
def _build(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> int:
    from ..edgellm import uses_edgellm
    from ..stages.build import build

    if uses_edgellm(recipe):
        from ..edgellm.stages import build as build_edgellm

        build_edgellm(recipe, Layout(args.root, recipe.name), precision, args.force)
        return 0
    build(recipe, Layout(args.root, recipe.name), build_plan(args, recipe, precision), args.force)
    return 0


@guarded
def _engine(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> int:
    from ..edgellm import uses_edgellm
    from ..stages.bundle import bundle_dir
    from ..stages.flow import engine_layout, run_engine

    plan = build_plan(args, recipe, precision)
    results = run_engine(recipe, plan, args.root, args.calib_root, args.force)
    layout = engine_layout(args.root, recipe, plan.sparse_weights)
    if uses_edgellm(recipe):  # its manifest beside the ONNX folder; the engine folder once built on the Orin
        print(f"{layout.manifest(precision)}  ({', '.join(f'{r.name} {r.reason}' for r in results)})")
        return 0
    done = ", ".join(f"{r.name} {'skipped' if r.skipped else f'{r.seconds:.1f} s'}" for r in results)
    print(f"{layout.engine(precision) if plan.builds_here else bundle_dir(layout, precision)}  ({done})")
    return 0


@guarded
def _profile(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> int:
    from ..stages.flow import engine_layout, run_profile

    result = run_profile(recipe, precision, args.root, args.force, args.batch, args.iterations, sparse=args.sparse)
    report = engine_layout(args.root, recipe, args.sparse).report_md(precision)
    # An Edge-LLM profile off the Jetson stops before llm_inference: there is no report to point at.
    print(report if report.exists() else f"{result.name}: {result.reason}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    specs = [
        ("export", _export, "PyTorch -> ONNX, checked against PyTorch on ONNX Runtime", False),
        ("calibrate", _calibrate, "write the precision into the ONNX (fp16 / int8 / int4-awq / fp32)", True),
        ("build", _build, "build the TensorRT engine and its manifest", True),
        ("engine", _engine, "export -> calibrate -> build, skipping what is up to date", True),
        ("profile", _profile, "accuracy, latency and memory report beside the engine", True),
    ]
    for name, func, help_text, has_precision in specs:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_model_options(p, precision=has_precision)
        if name in ("build", "engine"):
            add_device_options(p)
            add_build_options(p)
        if name == "profile":
            p.add_argument("--batch", type=positive_int, default=None, help="batch for latency (default: profile opt)")
            p.add_argument("--iterations", type=positive_int, default=None, help="timed iterations (default: recipe)")
            p.add_argument("--sparse", action="store_true", default=bool(os.environ.get("SPARSE")),
                           help="profile the 2:4-sparse engine (built with --sparse)")
        p.set_defaults(func=func)
