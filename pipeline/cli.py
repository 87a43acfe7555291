"""`orin-trt`: argument parsing only. Each module in pipeline/commands/ registers its subcommands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands
from .errors import PipelineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orin-trt",
        description="PyTorch models to TensorRT engines for NVIDIA Jetson Orin: "
        "export -> calibrate -> build -> profile.",
    )
    parser.add_argument("--version", action="version", version=f"orin-trt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PipelineError as e:
        # One line, whatever the underlying tool's message looked like.
        message = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        print(f"orin-trt: error: {message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("orin-trt: interrupted; no artifact was left half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
