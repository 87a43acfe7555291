"""Where an LLM's weight bytes go: per precision, the calibrated ONNX's initializers by dtype, its files,
the builder's reported engine weights and analyze's prediction of them.

    .venv/bin/python benchmarks/llm_weights.py [--root /tmp/orin-trt-llm-weights] [--recipe llama]

Runs export -> calibrate -> build for the recipe (default: the built-in llama recipe, a tiny tied-embedding
Llama with random weights) at fp16, int8 and int4-awq and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.artifacts import Layout, read_json  # noqa: E402
from pipeline.recipe.loader import load_recipe  # noqa: E402
from pipeline.stages.flow import run_engine  # noqa: E402
from pipeline.stages.plan import resolve_plan  # noqa: E402

DTYPES = {1: "fp32", 10: "fp16", 3: "int8", 22: "int4", 21: "uint4", 6: "int32", 7: "int64"}


def onnx_weights(path: Path) -> dict[str, int]:
    """Initializer bytes by dtype, weights left on disk (plain onnx, so the script also runs on older trees)."""
    import math

    import onnx
    from onnx import helper

    by: collections.Counter[str] = collections.Counter()
    for init in onnx.load(str(path), load_external_data=False).graph.initializer:
        elems = math.prod(init.dims)
        size = (elems + 1) // 2 if init.data_type in (21, 22) else elems * helper.tensor_dtype_to_np_dtype(
            init.data_type).itemsize
        by[DTYPES.get(init.data_type, str(init.data_type))] += size
    return dict(by)


def files_bytes(path: Path) -> int:
    data = Path(str(path) + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def predicted(path: Path) -> int | None:
    try:
        from pipeline.analyze.weights import engine_weight_bytes
    except ImportError:
        return None
    return engine_weight_bytes(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/orin-trt-llm-weights"))
    ap.add_argument("--recipe", default="llama")
    ap.add_argument("--precisions", nargs="+", default=["fp16", "int8", "int4-awq"])
    args = ap.parse_args()
    recipe = load_recipe(args.recipe)
    layout = Layout(args.root / "engines", recipe.name)
    print("| precision | ONNX initializers by dtype | ONNX files | engine weights (builder) | analyze predicts |")
    print("|---|---|---|---|---|")
    for precision in args.precisions:
        run_engine(recipe, resolve_plan(recipe, None, precision), args.root / "engines", args.root / "calib")
        onnx = layout.calibrated_onnx(precision)
        mem = read_json(layout.manifest(precision))["memory"]
        by = ", ".join(f"{k} {v:,}" for k, v in sorted(onnx_weights(onnx).items()))
        print(f"| {precision} | {by} | {files_bytes(onnx):,} | {mem.get('weights_bytes') or 0:,} | "
              f"{predicted(onnx) or '-'} |")


if __name__ == "__main__":
    main()
