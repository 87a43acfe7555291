"""The NumPy greedy NMS the pipeline used before OpenCV's: kept only as the oracle that
`pipeline.processing.detection.nms` (cv2.dnn.NMSBoxesBatched) must agree with, box for box."""

from __future__ import annotations

import numpy as np

from pipeline.processing.detection import box_iou


def nms_oracle(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by class-aware greedy NMS, highest score first (ties: lower index first). A box suppresses
    only boxes of its own class (no coordinate offset per class: float32 offsets cost IoU precision)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if order.size == 1:
            break
        ious = box_iou(boxes[i : i + 1], boxes[order[1:]])[0]
        rest = order[1:]
        order = rest[(ious <= iou_threshold) | (classes[rest] != classes[i])]
    return np.asarray(keep, dtype=np.int64)


def random_boxes(n: int, classes: int, seed: int, size: float = 640.0) -> tuple[np.ndarray, ...]:
    """Clustered boxes like a detector's raw output: many overlapping candidates around few objects, each
    object of one class (one candidate in ten votes for another class)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, size, (max(n // 50, 1), 2))
    wh = rng.uniform(10, 200, (len(centers), 2))
    pick = rng.integers(0, len(centers), n)
    c = centers[pick] + rng.normal(0, 6, (n, 2))
    s = wh[pick] * rng.uniform(0.8, 1.2, (n, 2))
    boxes = np.concatenate([c - s / 2, c + s / 2], axis=1).astype(np.float32)
    scores = rng.uniform(0.25, 1.0, n).astype(np.float32)
    labels = rng.integers(0, classes, len(centers))[pick]
    stray = rng.uniform(size=n) < 0.1
    labels[stray] = rng.integers(0, classes, int(stray.sum()))
    return boxes, scores, labels
