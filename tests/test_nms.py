"""OpenCV's batched NMS (what decode_yolo uses) keeps exactly the boxes the NumPy greedy NMS keeps."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.processing.detection import decode_yolo, nms

from .nms_oracle import nms_oracle, random_boxes


def test_hand_made_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [1, 1, 11, 11]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.85], dtype=np.float32)
    same_class = np.zeros(4, dtype=np.int64)
    assert nms(boxes, scores, same_class, 0.5).tolist() == [0, 2]
    # Box 3 is another class: class-aware NMS keeps it, in score order.
    assert nms(boxes, scores, np.array([0, 0, 0, 1]), 0.5).tolist() == [0, 3, 2]
    assert nms(boxes[:0], scores[:0], same_class[:0], 0.5).tolist() == []


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("iou", [0.45, 0.7])
def test_same_kept_boxes_as_the_numpy_oracle_at_5000_boxes(seed: int, iou: float) -> None:
    boxes, scores, classes = random_boxes(5000, 80, seed)
    kept = nms(boxes, scores, classes, iou)
    assert 50 < len(kept) < 5000  # a real amount of suppression
    assert kept.tolist() == nms_oracle(boxes, scores, classes, iou).tolist()


def test_tied_scores_keep_the_lower_index_first() -> None:
    boxes, _, classes = random_boxes(2000, 3, 7)
    scores = np.round(np.random.default_rng(7).uniform(0.3, 1.0, len(boxes)), 1).astype(np.float32)  # many ties
    assert nms(boxes, scores, classes, 0.6).tolist() == nms_oracle(boxes, scores, classes, 0.6).tolist()


def test_decode_yolo_on_a_raw_head_matches_the_oracle() -> None:
    rng = np.random.default_rng(3)
    boxes, scores, classes = random_boxes(3000, 5, 3)
    out = np.zeros((1, 4 + 5, 3000), dtype=np.float32)
    out[0, 0:2] = ((boxes[:, :2] + boxes[:, 2:]) / 2).T
    out[0, 2:4] = (boxes[:, 2:] - boxes[:, :2]).T
    out[0, 4 + classes, np.arange(3000)] = scores
    out[0, 4:, :] += rng.uniform(0, 0.2, (5, 3000)) * (out[0, 4:, :] == 0)  # lower scores for the other classes
    (d,) = decode_yolo(out, conf_threshold=0.3, iou_threshold=0.7, max_detections=100)
    mask = scores > 0.3
    keep = nms_oracle(boxes[mask], scores[mask], classes[mask], 0.7)[:100]
    np.testing.assert_allclose(d.boxes, boxes[mask][keep], atol=1e-3)
    assert d.classes.tolist() == classes[mask][keep].tolist()
