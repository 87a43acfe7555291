"""Run built-in models through every stage per precision and print one markdown table of what was measured
(stage times, sizes, accuracy against FP32). The output recorded in docs/families.md came from:

    .venv/bin/python scripts/bench_families.py --root /tmp/bench/engines --calib-root /tmp/bench/calib vit unet

Use a fresh --root: times are read from the stage stamps, so a stage skipped as up to date shows its last run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.cli import main as cli
from pipeline.core.artifacts import Layout, onnx_files, read_json
from pipeline.recipe.loader import load_recipe

PRECISIONS = ("fp32", "fp16", "int8")


def _mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:.2f}"


def _num(v: Any, digits: int) -> str:
    """A float, or the string strict JSON stores for an infinite one (a candidate identical to FP32)."""
    return v if isinstance(v, str) else f"{v:.{digits}f}"


def _task_summary(task: dict[str, Any], family_metrics: dict[str, Any], candidate: str) -> str:
    if "top1_agreement" in task:
        return f"top-1 agree {task['top1_agreement']:.3f}, top-5 overlap {task['top5_overlap']:.3f} (n={task['samples']})"
    if "worst_cosine" in task:
        loop = (family_metrics.get("by_runner") or {}).get(candidate, {})
        return (f"worst per-timestep cos {_num(task['worst_cosine'], 5)} / SNR {_num(task['worst_snr_db'], 1)} dB; "
                f"10-step loop PSNR {_num(loop.get('latent_psnr_db'), 1)} dB")
    return ""


def row(layout: Layout, precision: str) -> list[str]:
    stamp = {s: read_json(layout.stamp(s)) for s in (f"calibrate-{precision}", f"build-{precision}")}
    manifest, report = read_json(layout.manifest(precision)), read_json(layout.report_json(precision))
    acc = report["accuracy"]
    out = next(iter(acc["outputs"].values()))
    candidate = acc["candidate"]
    onnx_bytes = sum(p.stat().st_size for p in onnx_files(layout.calibrated_onnx(precision)))
    return [
        layout.model, precision,
        f"{stamp[f'calibrate-{precision}']['seconds']:.1f}", f"{stamp[f'build-{precision}']['seconds']:.1f}",
        _mb(onnx_bytes), _mb(manifest["engine"]["bytes"]), _mb(manifest["memory"]["weights_bytes"]),
        _mb(manifest["memory"]["activation_bytes"]),
        _num(out["cosine"], 6), _num(out["snr_db"], 1),
        _task_summary(acc["task"], report.get("family_metrics") or {}, candidate),
        f"{report['latency'][candidate]['p50_ms']:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--calib-root", type=Path, required=True)
    args = parser.parse_args()
    header = ["model", "precision", "calibrate s", "build s", "ONNX MB", "engine MB", "TRT weights MB",
              "TRT activations MB", "cosine vs FP32", "SNR dB", "task-level", "ORT CPU p50 ms"]
    rows, exports = [], []
    for model in args.models:
        recipe = load_recipe(model)
        layout = Layout(args.root, recipe.name)
        for precision in PRECISIONS:
            common = ["--model", model, "--precision", precision, "--root", str(args.root)]
            if cli(["engine", *common, "--calib-root", str(args.calib_root)]) != 0:
                raise SystemExit(f"engine {model} {precision} failed")
            cli(["profile", *common])  # a failed gate still writes the report; the table shows it
            rows.append(row(layout, precision))
        export = read_json(layout.export_report)
        exports.append(f"- {recipe.name}: export {read_json(layout.stamp('export'))['seconds']:.1f} s "
                       f"(torch.onnx.export {export['export_seconds']:.1f} s), {export['nodes']} nodes, "
                       f"parity cosine {next(iter(export['parity']['outputs'].values()))['cosine']:.7f}, "
                       f"random weights: {export['random_weights']}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("\n".join(exports))


if __name__ == "__main__":
    main()
