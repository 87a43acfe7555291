"""FP32 vs FP16 vs INT8 for YOLO recipes: stage times, engine and builder memory, accuracy, ORT latency.

    .venv/bin/python benchmarks/yolo_precisions.py [--recipe tests/fixtures/shapes/shapes.yaml --recipe yolo]
        [--root /tmp/orin-trt-bench] [--out benchmarks/results/yolo_precisions.md]

Runs `engine` then `profile` per precision into a scratch root (wiped first, so every stage really runs;
the export is shared by the precisions of one recipe) and writes a markdown table. Run from the repo root:
the fixture recipe's paths are relative to it; its image folders are generated when missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.artifacts import Layout, read_json, write_text  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.recipe.loader import load_recipe  # noqa: E402
from pipeline.stages.plan import resolve_plan  # noqa: E402

PRECISIONS = ("fp32", "fp16", "int8")
SHAPES_DATA = REPO / "calib" / "shapes-data"


def ensure_shapes_data() -> None:
    """The fixture recipe reads calib/shapes-data/images/{calib,heldout}; write them if absent."""
    if (SHAPES_DATA / "images" / "calib").is_dir() and (SHAPES_DATA / "images" / "heldout").is_dir():
        return
    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "shapes"))
    from make_dataset import write_dataset

    write_dataset(SHAPES_DATA, {"calib": 64, "heldout": 24})


def _mb(v: int | None) -> str:
    return "n/a" if v is None else f"{v / 1e6:.2f}"


def _num(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def bench_one(recipe_arg: str, precision: str, root: Path, calib_root: Path) -> dict[str, Any]:
    from pipeline.stages.flow import run_engine, run_profile

    recipe = load_recipe(recipe_arg)
    times = {r.name.split("[")[0]: (None if r.skipped else r.seconds)
             for r in run_engine(recipe, resolve_plan(recipe, None, precision), root, calib_root)}
    t0 = time.perf_counter()
    gate_error = None
    try:
        run_profile(recipe, precision, root)
    except PipelineError as e:  # the report is written before the gate raises; the table shows the verdict
        gate_error = str(e)
    times["profile"] = time.perf_counter() - t0
    report = read_json(Layout(root, recipe.name).report_json(precision))
    acc, lat, mem = report["accuracy"], report["latency"], report["memory"]
    task = acc.get("task") or {}
    return {
        "recipe": recipe.name, "precision": precision, "times": times, "random": report["weights"].get("random"),
        "engine_bytes": mem["engine_bytes"], "weights_bytes": mem.get("weights_bytes"),
        "activation_bytes": mem.get("activation_bytes"),
        "cosine": min(o["cosine"] for o in acc["outputs"].values()),
        "map": task.get("map50_95_vs_fp32"), "gate": "FAILED" if gate_error else "passed", "gate_error": gate_error,
        "ort_p50_ms": lat[acc["candidate"]]["p50_ms"], "ort_fp32_p50_ms": lat["onnxrt-fp32"]["p50_ms"],
        "backend": f"{report['builder']['backend']} {report['builder']['version']}",
    }


def render(rows: list[dict[str, Any]], command: str) -> str:
    def t(row: dict[str, Any], stage: str) -> str:
        v = row["times"].get(stage)
        return "cached" if v is None else f"{v:.1f}"

    lines = [
        "# YOLO precisions: FP32 vs FP16 vs INT8",
        "",
        f"Recorded {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPU cores, no GPU), builder {rows[0]['backend']} (ahead-of-time; not an Orin "
        "engine). Command:",
        "",
        f"    {command}",
        "",
        "Stage times are wall seconds on this host (export is shared by a recipe's precisions: `cached`). "
        "Engine and builder memory come from the TensorRT-RTX build. Cosine and mAP50-95 compare the "
        "calibrated ONNX with FP32 on ONNX Runtime (CPU) over the recipe's held-out images; ORT p50 is "
        "ONNX Runtime's CPU latency at batch 1, which simulates FP16/INT8 numerics and says nothing about "
        "speed on an Orin. ORT FP32 p50 is the same FP32 model timed again in each row: its spread is the "
        "noise of this shared host.",
        "",
        "| recipe | precision | export s | calibrate s | build s | profile s | engine MB | builder weights MB "
        "| builder activations MB | cosine | mAP50-95 vs FP32 | gate | ORT p50 ms | ORT FP32 p50 ms |",
        "|" + "---|" * 14,
    ]
    for r in rows:
        name = r["recipe"] + (" (random weights)" if r["random"] else "")
        lines.append(
            f"| {name} | {r['precision']} | {t(r, 'export')} | {t(r, 'calibrate')} | {t(r, 'build')} | "
            f"{t(r, 'profile')} | {_mb(r['engine_bytes'])} | {_mb(r['weights_bytes'])} | "
            f"{_mb(r['activation_bytes'])} | {_num(r['cosine'])} | {_num(r['map'], 3)} | {r['gate']} | "
            f"{r['ort_p50_ms']:.2f} | {r['ort_fp32_p50_ms']:.2f} |"
        )
    failures = [r for r in rows if r["gate_error"]]
    if failures:
        lines += ["", "Gate failures:", ""] + [f"- {r['recipe']} {r['precision']}: {r['gate_error']}" for r in failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", action="append", help="recipe name or path, repeatable "
                        "(default: tests/fixtures/shapes/shapes.yaml and yolo)")
    parser.add_argument("--precision", action="append", choices=PRECISIONS, help="repeatable (default: all)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/orin-trt-bench"), help="scratch root (wiped)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "yolo_precisions.md")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    recipes = args.recipe or ["tests/fixtures/shapes/shapes.yaml", "yolo"]
    if any("shapes" in r for r in recipes):
        ensure_shapes_data()
    shutil.rmtree(args.root, ignore_errors=True)
    rows = [bench_one(r, p, args.root / "engines", args.root / "calib")
            for r in recipes for p in (args.precision or PRECISIONS)]
    command = "python benchmarks/yolo_precisions.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_text(args.out, render(rows, command.strip()))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
