"""`orin-trt targets`: the Orin target table (what `--target` / TARGET= accept), or one target in full."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _targets(args: argparse.Namespace) -> int:
    from ..platform.targets import format_table, get_target

    if args.lines:
        from ..platform.lines import TABLE, markdown_table

        print(markdown_table())
        print(f"\nSources for every field: {TABLE}")
        return 0
    if args.name == "auto" and not args.json:
        from ..platform.host import detect

        print(detect(args.root_fs).describe())
    if args.name:
        target = get_target(args.name, args.root_fs)
        if args.json:
            print(json.dumps({**target.as_dict(), "sources": target.sources}, indent=2))
        else:
            for key, value in target.as_dict().items():
                print(f"{key:24} {value}")
            print("\nsources:")
            for field, source in target.sources.items():
                print(f"  {field:24} {source}")
        return 0
    if args.json:
        from ..platform.targets import target_names

        print(json.dumps([get_target(n).as_dict() for n in target_names()], indent=2))
        return 0
    print(format_table())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="list the Jetson Orin targets (or show one; `auto` detects this Jetson)",
                       description="The Orin target table with the source of every number.")
    p.add_argument("name", nargs="?", help="one target to show in full, e.g. orin-nano-8 or auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--lines", action="store_true",
                   help="the Jetson software lines instead: L4T -> JetPack -> TensorRT, CUDA, Python, DLA per module")
    p.add_argument("--root-fs", type=Path, default=Path("/"),
                   help="filesystem root to detect the Jetson from (default: /)")
    p.set_defaults(func=_targets)

