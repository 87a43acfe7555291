"""Class-aware NMS at 5,000 boxes: OpenCV's cv2.dnn.NMSBoxesBatched (pipeline.processing.detection.nms) vs the NumPy
greedy loop it replaced (tests/nms_oracle.py), same kept boxes checked on every run.

    .venv/bin/python benchmarks/nms.py [--boxes 5000] [--repeat 20] [--out benchmarks/results/nms.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402

from pipeline.core.artifacts import write_text  # noqa: E402
from pipeline.processing.detection import nms  # noqa: E402
from tests.nms_oracle import nms_oracle, random_boxes  # noqa: E402


def median_ms(fn, repeat: int) -> float:  # noqa: ANN001 - a zero-argument callable
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "nms.md")
    args = ap.parse_args()
    rows = []
    for classes, iou in ((80, 0.7), (80, 0.45), (1, 0.7)):
        boxes, scores, cls = random_boxes(args.boxes, classes, seed=0)
        kept = nms(boxes, scores, cls, iou)
        assert kept.tolist() == nms_oracle(boxes, scores, cls, iou).tolist(), "OpenCV and NumPy disagree"
        cv_ms = median_ms(lambda b=boxes, s=scores, c=cls, t=iou: nms(b, s, c, t), args.repeat)
        np_ms = median_ms(lambda b=boxes, s=scores, c=cls, t=iou: nms_oracle(b, s, c, t), args.repeat)
        rows.append(f"| {args.boxes} | {classes} | {iou} | {len(kept)} | {cv_ms:.2f} | {np_ms:.2f} | {np_ms / cv_ms:.1f}x |")
    lines = [
        "# NMS: OpenCV NMSBoxesBatched vs NumPy greedy",
        "",
        f"Recorded {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} (2 shared CPU "
        f"cores), OpenCV {cv2.__version__}, median of {args.repeat} runs. Command:",
        "",
        "    python benchmarks/nms.py",
        "",
        "Clustered random boxes (tests/nms_oracle.py `random_boxes`, seed 0), class-aware. Both keep the same "
        "boxes in the same order (asserted by the script and by tests/test_nms.py).",
        "",
        "| boxes | classes | IoU | kept | OpenCV ms | NumPy ms | speed-up |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    write_text(args.out, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
