"""Plan size with and without `--strip-weights` (STRIP_PLAN + REFIT_IDENTICAL) for YOLO recipes.

    .venv/bin/python benchmarks/strip_weights.py [--root /tmp/orin-trt-strip] [--out benchmarks/results/strip_weights.md]

Builds the test recipe (yolo11n at 320 px, tests/conftest.py) and the default yolo recipe (640 px) at FP32
and FP16, then rebuilds each with --strip-weights. Where the builder cannot strip (TensorRT-RTX without a
CUDA device) the table says so and gives the builder's own weights total, which is what stripping leaves
out of the plan (an upper bound on the saving, not a measurement of the stripped plan).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.artifacts import Layout, read_json, write_text  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.recipe.loader import load_recipe  # noqa: E402
from pipeline.stages.build import build  # noqa: E402
from pipeline.stages.flow import run_engine  # noqa: E402
from pipeline.stages.plan import resolve_plan  # noqa: E402
from pipeline.trt.backend import select_backend  # noqa: E402
from tests.conftest import small_yolo_recipe  # noqa: E402

PRECISIONS = ("fp32", "fp16")


def measure(recipe_arg: str, label: str, root: Path, calib: Path) -> list[list[str]]:
    recipe = load_recipe(recipe_arg)
    rows = []
    for precision in PRECISIONS:
        run_engine(recipe, resolve_plan(recipe, None, precision), root, calib)
        layout = Layout(root, recipe.name)
        manifest = read_json(layout.manifest(precision))
        full, weights = manifest["engine"]["bytes"], manifest["memory"]["weights_bytes"] or 0
        try:
            build(recipe, layout, resolve_plan(recipe, None, precision, overrides={"strip_weights": True}))
            stripped = f"{read_json(layout.manifest(precision))['engine']['bytes'] / 1e6:.2f}"
            note = "measured"
        except PipelineError as e:
            stripped = "refused"
            note = "needs a CUDA device (TensorRT-RTX compiles refittable plans at build time)" \
                if "only with a CUDA device" in str(e) else str(e)
        rows.append([label, precision, f"{full / 1e6:.2f}", f"{weights / 1e6:.2f}", f"{(full - weights) / 1e6:.2f}",
                     stripped, note])
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/orin-trt-strip"))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "strip_weights.md")
    args = ap.parse_args()
    shutil.rmtree(args.root, ignore_errors=True)
    args.root.mkdir(parents=True)
    test_recipe = small_yolo_recipe(args.root)
    rows = measure(str(test_recipe), "yolo-test (yolo11n, 320 px, random weights)", args.root / "engines",
                   args.root / "calib")
    rows += measure("yolo", "yolo (yolo11n, 640 px, random weights)", args.root / "engines", args.root / "calib")
    backend = select_backend()
    head = ["recipe", "precision", "plan MB", "builder weights MB", "plan - weights MB", "stripped plan MB", "note"]
    lines = [
        "# Weight-stripped plans (`--strip-weights`)",
        "",
        f"Recorded {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"(2 CPU cores, no GPU), builder {backend.describe()}. Command:",
        "",
        "    python benchmarks/strip_weights.py",
        "",
        "`plan MB` is the normal plan; `builder weights MB` is the builder's own `Total Weights Memory` (the "
        "manifest's `memory.weights_bytes`), which is what STRIP_PLAN leaves out, so `plan - weights` is the "
        "size a stripped plan approaches. `stripped plan MB` is measured where the builder can strip.",
        "",
        "TensorRT-RTX 1.7.1 has `STRIP_PLAN` / `REFIT_IDENTICAL`, but any refit flag (`REFIT` too) makes its "
        "build fail in Myelin's JIT without a CUDA device (`graph_jit.cpp:278: CHECK(status == CUDA_SUCCESS)`), "
        "so on this GPU-less host `--strip-weights` is refused up front and the stripped size is not measured.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    write_text(args.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
