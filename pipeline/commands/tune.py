"""orin-trt tune: the calibration that meets the accuracy budget at the lowest estimated latency."""

from __future__ import annotations

import argparse

from ..core.artifacts import Layout
from ..recipe.loader import Recipe
from ._common import add_model_options, guarded


@guarded
def _tune(args: argparse.Namespace, recipe: Recipe, precision: str | None) -> int:
    from ..stages.export import export
    from ..tune import tune

    layout = Layout(args.root, recipe.name)
    export(recipe, layout)
    result = tune(recipe, layout, precision, args.calib_root, args.force, args.time_limit,
                  args.strict or None, args.target)
    print(result["paths"]["md"])
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    text = ("try calibration settings, measure each against the labelled held-out data, calibrate with the "
            "fastest (estimated on the target) within the accuracy budget")
    p = sub.add_parser("tune", help=text, description=text)
    add_model_options(p)
    p.add_argument("--time-limit", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="stop trying new candidates after this long (default: recipe tune.time_limit_s)")
    p.add_argument("--strict", action="store_true", help="nothing within the budget: fail (exit 2), no fp16 fallback")
    p.set_defaults(func=_tune)
