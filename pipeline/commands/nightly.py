"""`orin-trt nightly`: profile a matrix of engines, record the history, flag regressions, report."""

from __future__ import annotations

import argparse
from pathlib import Path


def _nightly(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..nightly.matrix import load_matrix
    from ..nightly.runner import run_nightly

    matrix = load_matrix(args.matrix)
    if args.root is not None:
        matrix = replace(matrix, root=args.root)
    if args.report_dir is not None:
        matrix = replace(matrix, report_dir=args.report_dir)
    if args.target is not None:
        matrix = replace(matrix, target=args.target)
    outcome = run_nightly(matrix, calib_root=args.calib_root, force_build=args.force, history_url=args.history)
    print(outcome.report)
    return outcome.exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "nightly",
        help="build and profile a matrix of engines; history, regressions, HTML report",
        description="Builds and profiles every (model, precision, batch) of the matrix, stores the results "
        "in the history database, compares each with its baseline and writes an HTML report. "
        "Exit code 1 when anything regressed or failed.",
    )
    p.add_argument("--matrix", type=Path, default=Path("jetson/nightly.yaml"),
                   help="the matrix YAML (default: jetson/nightly.yaml)")
    p.add_argument("--history", default=None,
                   help="history database URL, overriding the matrix's: sqlite:///path.sqlite or "
                   "postgresql+psycopg://user@host/db")
    p.add_argument("--root", type=Path, default=None, help="artifact root (default: the matrix's, else engines)")
    p.add_argument("--calib-root", type=Path, default=Path("calib"), help="calibration data root (default: calib)")
    p.add_argument("--report-dir", type=Path, default=None, help="where the HTML report goes "
                   "(default: the matrix's, else engines/nightly)")
    p.add_argument("--target", default=None, help="Orin target for the builds (default: the matrix's)")
    p.add_argument("--force", action="store_true", help="rebuild every engine even if nothing changed")
    p.set_defaults(func=_nightly)
