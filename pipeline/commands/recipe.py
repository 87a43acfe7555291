"""`orin-trt recipe`: the recipe as the stages see it (base merged, --set applied, defaults and derived
shapes filled in, validated); `orin-trt recipe-docs`: regenerate docs/own-model.md's reference."""

from __future__ import annotations

import argparse
import os


def _show(args: argparse.Namespace) -> int:
    import yaml

    from ..recipe.loader import load_recipe
    from ..recipe.schema import KEY_ORDER

    recipe = load_recipe(args.model, args.overrides)
    ordered = dict(sorted(recipe.raw.items(), key=lambda kv: KEY_ORDER.index(kv[0]) if kv[0] in KEY_ORDER else 99))
    print(f"# {recipe.path}" + (" (built-in)" if recipe.builtin else ""))
    print(yaml.safe_dump(ordered, sort_keys=False, default_flow_style=None, width=110), end="")
    return 0


def _docs(args: argparse.Namespace) -> int:
    from ..recipe.docs import run

    return run(args.check)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help="validate a recipe and print it as the stages see it",
                       description="Base merged, --set applied, defaults and derived shapes filled in.")
    p.add_argument("--model", "-m", default=os.environ.get("MODEL", "yolo"),
                   help="built-in model name or a recipe .yaml path (default: yolo)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="change one recipe key (YAML value; repeatable)")
    p.set_defaults(func=_show)
    d = sub.add_parser("recipe-docs", help="regenerate the recipe reference in docs/own-model.md",
                       description="Every key with its default, from the schema; the common mistakes' errors.")
    d.add_argument("--check", action="store_true", help="exit 1 when the committed doc is out of date")
    d.set_defaults(func=_docs)
