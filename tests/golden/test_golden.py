"""The golden vectors: regenerated they match the committed files, and Python's pre/post-processing
reproduces the planted expectations. CTest (jetson/cpp/tests/test_golden.cpp) checks the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.processing.classification import topk
from pipeline.processing.detection import decode_yolo
from pipeline.processing.image import Letterbox, letterbox, preprocess_image
from tests.golden.make_golden import DATA, build

GOLDEN = json.loads((DATA / "golden.json").read_text())
TOL = GOLDEN["tolerance"]


def load(name: str) -> np.ndarray:
    return np.load(DATA / name, allow_pickle=False)


def assert_images_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """The documented bilinear tolerance: every pixel within 1 LSB, nearly all exact."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype == np.uint8
    diff = np.abs(actual.astype(int) - expected.astype(int))
    assert diff.max() <= TOL["uint8_lsb"]
    assert (diff == 0).mean() >= TOL["uint8_exact_fraction"]


def manifest(kind: str) -> dict:
    return json.loads((DATA / GOLDEN[kind]["manifest"]).read_text())


def test_regenerated_vectors_match_committed(tmp_path: Path) -> None:
    fresh = build(tmp_path)
    assert fresh == GOLDEN, "golden.json changed: rerun tests/golden/make_golden.py and review the diff"
    committed = sorted(p.name for p in DATA.glob("*.npy"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.npy"))
    for name in committed:
        old, new = load(name), np.load(tmp_path / name)
        if old.dtype == np.uint8:
            assert_images_close(new, old)
        else:
            np.testing.assert_allclose(new, old, atol=TOL["float_abs"], rtol=0, err_msg=name)


def test_png_holds_the_same_pixels() -> None:
    from pipeline.processing.image import load_rgb

    for kind in ("yolo", "vit"):
        np.testing.assert_array_equal(load_rgb(DATA / GOLDEN[kind]["image_png"]), load(GOLDEN[kind]["image"]))


def test_letterbox_and_tensor() -> None:
    g, spec = GOLDEN["yolo"], manifest("yolo")["preprocess"]
    img = load(g["image"])
    boxed, lb = letterbox(img, tuple(spec["size"]), spec["pad_value"])
    assert (lb.ratio, lb.pad_left, lb.pad_top) == (g["letterbox"]["ratio"], g["letterbox"]["pad_left"],
                                                   g["letterbox"]["pad_top"]) == (0.6, 0, 5)
    assert_images_close(boxed, load(g["letterboxed"]))
    assert (boxed[:5] == 114).all() and (boxed[-5:] == 114).all()  # 54 image rows, 5 + 5 of padding
    tensor, _ = preprocess_image(img, spec)
    assert tensor.shape == (1, 3, 64, 96) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, load(g["input"]), atol=1.5 / 255, rtol=0)


def test_yolo_decode_finds_the_planted_boxes() -> None:
    g, post = GOLDEN["yolo"], manifest("yolo")["postprocess"]
    (dets,) = decode_yolo(load(g["output"]), post["conf_threshold"], post["iou_threshold"], post["max_detections"])
    expected = g["detections"]
    assert [int(c) for c in dets.classes] == [d["class_id"] for d in expected]
    assert [float(s) for s in dets.scores] == [d["score"] for d in expected]
    np.testing.assert_allclose(dets.boxes, [d["box"] for d in expected], atol=TOL["box_abs"])
    lb = Letterbox(g["letterbox"]["ratio"], g["letterbox"]["pad_left"], g["letterbox"]["pad_top"], (90, 160))
    np.testing.assert_allclose(lb.to_source(dets.boxes), [d["box_source"] for d in expected], atol=TOL["box_abs"])
    # The box reaching into the top padding is clipped to the image.
    assert min(d["box_source"][1] for d in expected) == 0.0


def test_yolo_decode_stops_at_max_detections() -> None:
    g = GOLDEN["yolo"]
    n = g["max_detections_case"]
    (dets,) = decode_yolo(load(g["output"]), 0.25, 0.7, n)
    assert [int(c) for c in dets.classes] == [d["class_id"] for d in g["detections"][:n]]


def test_vit_crop_tensor_and_top5() -> None:
    g, spec = GOLDEN["vit"], manifest("vit")["preprocess"]
    tensor, box = preprocess_image(load(g["image"]), spec)
    assert box is None and tensor.shape == (1, 3, 32, 32)
    # One LSB of the crop moves a standardized value by at most 1/255/0.224.
    np.testing.assert_allclose(tensor, load(g["input"]), atol=1.5 / 255 / 0.224, rtol=0)
    result = topk(load(g["logits"]), 5).labeled(manifest("vit")["postprocess"]["class_names"])
    assert [r["class_id"] for r in result] == [t["class_id"] for t in g["top5"]] == [8, 2, 3, 7, 5]
    assert [r["label"] for r in result] == [t["label"] for t in g["top5"]]
    np.testing.assert_allclose([r["probability"] for r in result], [t["probability"] for t in g["top5"]], rtol=1e-6)


def test_topk_rules() -> None:
    result = topk(np.array([[1.0, 3.0, 3.0, -1.0]], dtype=np.float32), 3)
    assert result.indices.tolist() == [1, 2, 0]  # tie: lower index first
    assert result.probabilities.sum() < 1.0 and result.probabilities[0] == pytest.approx(result.probabilities[1])
    big = topk(np.array([1000.0, 0.0], dtype=np.float32), 5)  # no overflow, k clipped to the classes
    assert big.indices.tolist() == [0, 1] and big.probabilities[0] == pytest.approx(1.0)
