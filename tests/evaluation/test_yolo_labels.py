"""Reading labelled detection data: YOLO txt folders and data yamls, COCO json, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.evaluation.yolo_labels import (
    label_path,
    parse_yolo_label,
    read_coco,
    read_yolo_dataset,
    to_coco,
)


def _image(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


def test_yolo_line_to_pixel_box_by_hand() -> None:
    # cx 0.5, cy 0.25, w 0.2, h 0.1 on a 200 x 100 image -> x 80..120, y 20..30.
    boxes, classes = parse_yolo_label("2 0.5 0.25 0.2 0.1\n\n", 200, 100, "a.txt")
    np.testing.assert_allclose(boxes, [[80, 20, 120, 30]])
    assert classes.tolist() == [2]


def test_segment_label_becomes_its_bounding_box() -> None:
    boxes, _ = parse_yolo_label("0 0.1 0.2 0.5 0.2 0.3 0.6", 100, 100, "s.txt")
    np.testing.assert_allclose(boxes, [[10, 20, 50, 60]])


@pytest.mark.parametrize(("line", "match"), [("0 0.5 0.5 0.1", "5 numbers"), ("x 0.5 0.5 0.1 0.1", "not numbers"),
                                             ("1.5 0.5 0.5 0.1 0.1", "non-negative integer")])
def test_bad_label_line_names_file_and_line(line: str, match: str) -> None:
    with pytest.raises(PipelineError, match=rf"lbl\.txt:2: .*{match}"):
        parse_yolo_label("0 0.5 0.5 0.1 0.1\n" + line, 10, 10, "lbl.txt")


def test_label_path_swaps_the_last_images_folder() -> None:
    assert label_path(Path("/d/images/val/a.jpg")) == Path("/d/labels/val/a.txt")
    assert label_path(Path("/images/d/images/x.png")) == Path("/images/d/labels/x.txt")


def test_data_yaml_reads_images_labels_and_names(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "val" / "a.jpg", 64, 32)
    _image(tmp_path / "images" / "val" / "b.jpg", 64, 32)  # no label file: no objects
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n0 0.25 0.25 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text("path: .\nval: images/val\nnames:\n  0: cat\n  1: dog\n")
    ds = read_yolo_dataset(tmp_path / "data.yaml")
    assert [i.path.name for i in ds.images] == ["a.jpg", "b.jpg"] and ds.names == ["cat", "dog"]
    assert ds.boxes == 2 and len(ds.images[1].classes) == 0
    np.testing.assert_allclose(ds.images[0].boxes[0], [16, 8, 48, 24])
    with pytest.raises(PipelineError, match="no 'test:' entry"):
        read_yolo_dataset(tmp_path / "data.yaml", "test")
    (tmp_path / "labels" / "val" / "a.txt").write_text("5 0.5 0.5 0.5 0.5\n")
    with pytest.raises(PipelineError, match="class 5, but names lists 2"):
        read_yolo_dataset(tmp_path / "data.yaml")


def test_coco_json_round_trip_and_category_order(tmp_path: Path) -> None:
    _image(tmp_path / "img" / "x.jpg", 40, 30)
    coco = {"images": [{"id": 7, "file_name": "x.jpg", "width": 40, "height": 30}],
            "categories": [{"id": 90, "name": "late"}, {"id": 3, "name": "early"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 90, "bbox": [1, 2, 10, 5], "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 4, 4], "iscrowd": 1}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    ds = read_coco(tmp_path / "ann.json", tmp_path / "img")
    # Sorted category ids: 3 -> class 0, 90 -> class 1; the crowd box is dropped.
    assert ds.names == ["early", "late"] and ds.images[0].classes.tolist() == [1]
    np.testing.assert_allclose(ds.images[0].boxes, [[1, 2, 11, 7]])
    back = to_coco(ds)
    assert back["annotations"][0]["bbox"] == [1.0, 2.0, 10.0, 5.0] and back["annotations"][0]["category_id"] == 1
    with pytest.raises(PipelineError, match="missing key"):
        (tmp_path / "bad.json").write_text("{}")
        read_coco(tmp_path / "bad.json", tmp_path / "img")
