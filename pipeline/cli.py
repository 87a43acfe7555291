"""`orin-trt`: argument parsing only. Each module in pipeline/commands/ registers its subcommands."""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import signal
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


class Terminated(BaseException):
    """SIGTERM (systemd, docker stop): unwinds like Ctrl-C so atomic writes clean up after themselves."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe_os_error(e: OSError) -> str:
    """A file-system failure as the user can act on it: the path and the cause, no traceback."""
    cause = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    where = e.filename if e.filename is not None else None
    if e.filename2 is not None:
        where = f"{e.filename} -> {e.filename2}"
    return f"{where}: {cause}" if where else one_line(str(e))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except PipelineError as e:
        # One line, whatever the underlying tool's message looked like.
        print(f"orin-trt: error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"orin-trt: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("orin-trt: interrupted; no artifact was left half-written", file=sys.stderr)
        return 130
    except Terminated:
        print("orin-trt: terminated (SIGTERM); no artifact was left half-written", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
