"""mAP against labels: pycocotools on hand-made cases, and our whole path (preprocess, ONNX Runtime,
decode, NMS, scoring) against ultralytics' own `yolo val` on the trained shapes detector."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.evaluation.detection_map import ValSettings, coco_map, detect, onnx_infer, ultralytics_map
from pipeline.evaluation.yolo_labels import LabelledImage, LabelledSet, read_yolo_dataset
from pipeline.processing.detection import Detections, decode_yolo

REPO = Path(__file__).resolve().parents[2]
SHAPES = REPO / "tests" / "fixtures" / "shapes"


def _set(*boxes_per_image: list[list[float]]) -> LabelledSet:
    images = [LabelledImage(Path(f"{i}.jpg"), 100, 100, np.asarray(b, float).reshape(-1, 4),
                            np.zeros(len(b), np.int64)) for i, b in enumerate(boxes_per_image)]
    return LabelledSet(images, ["thing"])


def _det(boxes: list[list[float]], scores: list[float]) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                      np.zeros(len(scores), np.int64))


def test_perfect_detections_score_one_and_none_score_zero() -> None:
    gt = _set([[10, 10, 50, 50]], [[20, 20, 80, 60], [0, 0, 10, 10]])
    perfect = [_det([[10, 10, 50, 50]], [0.9]), _det([[20, 20, 80, 60], [0, 0, 10, 10]], [0.8, 0.7])]
    assert coco_map(gt, perfect)["map50_95"] == pytest.approx(1.0)
    assert coco_map(gt, [_det([], []), _det([], [])])["map50_95"] == 0.0
    # ultralytics integrates with sentinels: a perfect class is 0.995 at IoU 0.5, not 1.
    assert ultralytics_map(gt, perfect)["map50"] == pytest.approx(0.995)


def test_half_the_objects_found_by_hand() -> None:
    # Two objects, one found exactly: precision 1 up to recall 0.5, nothing after. COCO's 101 recall
    # points 0, 0.01, ..., 0.5 (51 of them) reach precision 1: AP = 51 / 101 at every IoU threshold.
    gt = _set([[10, 10, 50, 50], [60, 60, 90, 90]])
    m = coco_map(gt, [_det([[10, 10, 50, 50]], [0.9])])
    assert m["map50_95"] == pytest.approx(51 / 101) and m["map50"] == pytest.approx(51 / 101)


def test_a_box_off_by_a_known_iou_counts_only_below_it() -> None:
    # Shifted by 10 px on a 40 px box: IoU = 30*40 / (2*1600 - 1200) = 0.6 -> a hit at 0.5, 0.55, 0.6 only.
    gt = _set([[10, 10, 50, 50]])
    m = coco_map(gt, [_det([[20, 10, 60, 50]], [0.9])])
    assert m["map50"] == pytest.approx(1.0) and m["map50_95"] == pytest.approx(0.3)


def test_mismatched_lengths_and_empty_labels_are_errors() -> None:
    with pytest.raises(PipelineError, match="2 detection lists for 1 labelled images"):
        coco_map(_set([[0, 0, 1, 1]]), [_det([], []), _det([], [])])
    with pytest.raises(PipelineError, match="no boxes"):
        coco_map(_set([]), [_det([], [])])


def test_multi_label_decode_keeps_every_class_above_the_threshold() -> None:
    # One anchor, box at (50, 50) 20x20, scores 0.6 (class 0) and 0.3 (class 1).
    out = np.array([[[50.0], [50.0], [20.0], [20.0], [0.6], [0.3]]], np.float32)
    assert len(decode_yolo(out, 0.1)[0]) == 1
    both = decode_yolo(out, 0.1, multi_label=True)[0]
    assert sorted(both.classes.tolist()) == [0, 1] and sorted(both.scores.tolist()) == pytest.approx([0.3, 0.6])


@pytest.fixture(scope="module")
def shapes_val(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """30 generated val images with labels, and the shapes detector exported as ultralytics does."""
    from ultralytics import YOLO

    sys.path.insert(0, str(SHAPES))
    from make_dataset import write_dataset

    base = tmp_path_factory.mktemp("shapes-val")
    data_yaml = write_dataset(base / "data", {"val": 30})
    model = YOLO(str(SHAPES / "shapes-yolo.pt"))
    model.model.pt_path = str(base / "model.pt")  # ultralytics writes the ONNX beside it
    onnx = Path(model.export(format="onnx", dynamic=True, simplify=True, opset=17, imgsz=[320, 320], verbose=False))
    shutil.move(onnx, base / "shapes.onnx")
    return {"data": data_yaml, "onnx": base / "shapes.onnx"}


def test_our_map_equals_yolo_val_on_the_same_onnx(shapes_val: dict) -> None:
    from ultralytics import YOLO

    labelled = read_yolo_dataset(shapes_val["data"], "val")
    preprocess = yaml.safe_load((SHAPES / "shapes.yaml").read_text())["preprocess"]
    detections = detect(onnx_infer(shapes_val["onnx"]), labelled, preprocess, ValSettings())
    ours = ultralytics_map(labelled, detections)
    coco = coco_map(labelled, detections)
    # rect=False: a dynamic-shape ONNX is otherwise letterboxed to 352 for 320 images; like for like.
    val = YOLO(str(shapes_val["onnx"]), task="detect").val(
        data=str(shapes_val["data"]), imgsz=320, rect=False, batch=1, conf=0.001, iou=0.7, device="cpu",
        plots=False, verbose=False, save_json=False)
    print(f"yolo val {val.box.map:.4f} / {val.box.map50:.4f}; ours (ultralytics metric) {ours['map50_95']:.4f} / "
          f"{ours['map50']:.4f}; pycocotools {coco['map50_95']:.4f} / {coco['map50']:.4f}")
    assert labelled.boxes > 60 and val.box.map > 0.9  # a trained detector, or nothing here means anything
    assert ours["map50_95"] == pytest.approx(val.box.map, abs=0.002)
    assert ours["map50"] == pytest.approx(val.box.map50, abs=0.002)
    # pycocotools scores the same detections; only the curve's integration differs (0.995 vs 1 at best).
    assert coco["map50_95"] == pytest.approx(ours["map50_95"], abs=0.01)
    assert coco["map50_95"] >= ours["map50_95"]


def test_coco_json_labels_give_the_same_map_as_yolo_txt(shapes_val: dict, tmp_path: Path) -> None:
    import json

    from pipeline.evaluation.yolo_labels import read_coco, to_coco

    labelled = read_yolo_dataset(shapes_val["data"], "val")
    (tmp_path / "val.json").write_text(json.dumps(to_coco(labelled)))
    from_json = read_coco(tmp_path / "val.json", labelled.images[0].path.parent)
    assert [i.path for i in from_json.images] == [i.path for i in labelled.images]
    preprocess = yaml.safe_load((SHAPES / "shapes.yaml").read_text())["preprocess"]
    detections = detect(onnx_infer(shapes_val["onnx"]), labelled, preprocess)
    assert coco_map(from_json, detections)["map50_95"] == pytest.approx(coco_map(labelled, detections)["map50_95"])


def test_a_coco_json_is_a_recipes_ground_truth_like_its_yolo_labels(shapes_val: dict, tmp_path: Path) -> None:
    import json

    from pipeline.evaluation.yolo_labels import to_coco
    from pipeline.models import get_adapter
    from pipeline.recipe.loader import load_recipe

    labelled = read_yolo_dataset(shapes_val["data"], "val")
    (tmp_path / "val.json").write_text(json.dumps(to_coco(labelled)))
    images = labelled.images[0].path.parent
    common = f"base: {SHAPES / 'demo.yaml'}\nname: coco-gt\n"
    by_yaml = load_recipe(str(_write(tmp_path / "a.yaml", common + f"eval: {{data: {shapes_val['data']}}}\n")))
    by_coco = load_recipe(str(_write(tmp_path / "b.yaml", common + f"eval: {{data: null, images: {images}, "
                                     f"coco: {tmp_path / 'val.json'}}}\n")))
    adapter = get_adapter("yolo")
    a, b = (adapter.ground_truth(r, shapes_val["onnx"]) for r in (by_yaml, by_coco))
    assert b["reference"].startswith("labels (COCO val.json: 30 images")
    assert b["metrics"]["map50_95"] == pytest.approx(a["metrics"]["map50_95"]) and b["samples"] == a["samples"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
