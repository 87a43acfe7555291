"""Labelled detection data in the two formats users have: an ultralytics dataset (a data yaml whose
`val:` names image folders, with YOLO txt labels `cls cx cy w h`, normalized, beside them under
`labels/`) and COCO json (`images`, `annotations` with pixel `bbox` [x, y, w, h], `categories`).

Both read into the same thing: per image, its path and its ground-truth boxes in source pixels (xyxy)
with contiguous class indices, which is what `detection_map` scores against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..models.yolo_dataset import label_path
from ..processing.image import list_images


@dataclass
class LabelledImage:
    path: Path
    height: int
    width: int
    boxes: np.ndarray  # [n, 4] xyxy in source pixels
    classes: np.ndarray  # [n] int64, contiguous 0..nc-1


@dataclass
class LabelledSet:
    images: list[LabelledImage]
    names: list[str] = field(default_factory=list)  # class index -> name ('' where unknown)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def boxes(self) -> int:
        return sum(len(i.classes) for i in self.images)


def parse_yolo_label(text: str, width: int, height: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """YOLO txt lines `cls cx cy w h` (normalized to 0..1) -> xyxy pixel boxes and classes. Segment
    labels (a class and a polygon) become the polygon's bounding box, as ultralytics does."""
    boxes, classes = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError as e:
            raise PipelineError(f"{where}:{lineno}: not numbers ({line.strip()!r})") from e
        if len(values) == 5:
            cls, cx, cy, w, h = values
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(values) >= 7 and len(values) % 2 == 1:
            cls, xs, ys = values[0], values[1::2], values[2::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        else:
            raise PipelineError(f"{where}:{lineno}: expected 'class cx cy w h' (5 numbers), got {len(values)}")
        if cls < 0 or cls != int(cls):
            raise PipelineError(f"{where}:{lineno}: class {parts[0]!r} is not a non-negative integer")
        boxes.append([x0 * width, y0 * height, x1 * width, y1 * height])
        classes.append(int(cls))
    return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(classes, dtype=np.int64))


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as e:  # PIL's errors, or a plugin's
        raise PipelineError(f"{path}: cannot be read as an image ({e})") from e


def read_yolo_folder(images: Path) -> LabelledSet:
    """Every image under `images` with its label file; an image without one has no objects (as in
    ultralytics)."""
    return read_labelled(list_images(images))


def read_labelled(paths: list[Path], names: list[str] | None = None) -> LabelledSet:
    """These images, in this order, each with its YOLO label file (`label_path`; none: no objects)."""
    out = []
    for path in paths:
        h, w = _image_size(path)
        lbl = label_path(path)
        text = lbl.read_text(encoding="utf-8") if lbl.is_file() else ""
        boxes, classes = parse_yolo_label(text, w, h, str(lbl))
        out.append(LabelledImage(path, h, w, boxes, classes))
    return LabelledSet(out, list(names or []))


def _names(raw: object, where: str) -> list[str]:
    if isinstance(raw, dict):
        return [str(raw[k]) for k in sorted(raw, key=int)]
    if isinstance(raw, list):
        return [str(v) for v in raw]
    if raw is None:
        return []
    raise PipelineError(f"{where}: names must be a list or an index -> name mapping")


def read_yolo_dataset(data_yaml: Path, split: str = "val") -> LabelledSet:
    """The `split` entry of an ultralytics data yaml: one image folder or a list of them, relative to
    `path:` (itself relative to the yaml's folder), labels found by `label_path`."""
    import yaml

    data_yaml = Path(data_yaml)
    try:
        cfg = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise PipelineError(f"{data_yaml}: cannot read the dataset yaml ({e})") from e
    if split not in cfg:
        raise PipelineError(f"{data_yaml}: no '{split}:' entry (the images to evaluate on)")
    root = Path(cfg.get("path") or ".")
    root = root if root.is_absolute() else data_yaml.parent / root
    entries = cfg[split] if isinstance(cfg[split], list) else [cfg[split]]
    images: list[LabelledImage] = []
    for entry in entries:
        folder = Path(entry) if Path(entry).is_absolute() else root / entry
        if not folder.is_dir():
            raise PipelineError(f"{data_yaml}: {split}: {folder} is not an image folder")
        images += read_yolo_folder(folder).images
    labelled = LabelledSet(images, _names(cfg.get("names"), f"{data_yaml}: names"))
    top = max((int(c) for i in images for c in i.classes), default=-1)
    if labelled.names and top >= len(labelled.names):
        raise PipelineError(f"{data_yaml}: a label uses class {top}, but names lists {len(labelled.names)} classes")
    return labelled


def read_coco(annotations: Path, images: Path) -> LabelledSet:
    """COCO json: categories sorted by id map to classes 0..nc-1 (what a detector trained on the set
    predicts); `iscrowd` boxes are dropped; images are found under `images` by `file_name`."""
    annotations = Path(annotations)
    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
        cats = sorted(data["categories"], key=lambda c: c["id"])
        index = {c["id"]: i for i, c in enumerate(cats)}
        by_image: dict[int, list[dict]] = {img["id"]: [] for img in data["images"]}
        for ann in data.get("annotations", []):
            if not ann.get("iscrowd", 0):
                by_image[ann["image_id"]].append(ann)
        out = []
        for img in data["images"]:
            anns = by_image[img["id"]]
            xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            classes = np.asarray([index[a["category_id"]] for a in anns], dtype=np.int64)
            path = Path(images) / img["file_name"]
            if not path.is_file():
                raise PipelineError(f"{annotations}: image {img['file_name']!r} not found under {images}")
            out.append(LabelledImage(path, int(img["height"]), int(img["width"]), boxes, classes))
    except (OSError, ValueError) as e:
        raise PipelineError(f"{annotations}: cannot read COCO json ({e})") from e
    except KeyError as e:
        raise PipelineError(f"{annotations}: not COCO json: missing key {e}") from e
    return LabelledSet(out, [str(c.get("name", "")) for c in cats])


def to_coco(labelled: LabelledSet) -> dict:
    """The COCO json of a labelled set (category ids = class indices), what pycocotools reads."""
    images, annotations = [], []
    for image_id, img in enumerate(labelled.images):
        images.append({"id": image_id, "file_name": img.path.name, "height": img.height, "width": img.width})
        for box, cls in zip(img.boxes, img.classes, strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": 0})
    nc = max([len(labelled.names)] + [int(c) + 1 for i in labelled.images for c in i.classes])
    names = labelled.names or [""] * nc
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": names[i] if i < len(names) else str(i)} for i in range(nc)]}
