"""A detector's mAP50-95 and mAP50 against labelled images, computed by pycocotools.

The detections come from the pipeline's own decode and NMS (pipeline/detection.py) at the settings of
ultralytics' validator (confidence 0.001, IoU 0.7, 300 per image, every class above the threshold per
anchor), on the recipe's preprocessing; boxes are mapped back to source pixels through the letterbox.
With those settings our number is ultralytics' `yolo val` number on the same ONNX (tested).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PipelineError
from ..processing.detection import Detections, decode_yolo
from ..processing.image import load_rgb, preprocess_image
from .yolo_labels import LabelledSet, to_coco

Infer = Callable[[np.ndarray], np.ndarray]  # preprocessed input [1, 3, H, W] -> raw output [1, 4 + nc, anchors]


@dataclass(frozen=True)
class ValSettings:
    """ultralytics' validator defaults: mAP wants the whole precision-recall curve, hence conf 0.001."""

    conf_threshold: float = 0.001
    iou_threshold: float = 0.7
    max_detections: int = 300
    multi_label: bool = True


def detect(infer: Infer, labelled: LabelledSet, preprocess: dict[str, Any],
           settings: ValSettings = ValSettings()) -> list[Detections]:
    """Run `infer` on every labelled image; detections in source pixels."""
    out = []
    for image in labelled.images:
        x, box = preprocess_image(load_rgb(image.path), preprocess)
        det = decode_yolo(np.asarray(infer(x)), settings.conf_threshold, settings.iou_threshold,
                          settings.max_detections, settings.multi_label)[0]
        boxes = box.to_source(det.boxes) if box is not None else det.boxes
        out.append(Detections(boxes, det.scores, det.classes))
    return out


def coco_map(labelled: LabelledSet, detections: list[Detections]) -> dict[str, Any]:
    """pycocotools' COCOeval (bbox): mAP50-95 (stats[0]) and mAP50 (stats[1]), area range all, 100
    detections per image and class."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(labelled):
        raise PipelineError(f"{len(detections)} detection lists for {len(labelled)} labelled images")
    if not labelled.boxes:
        raise PipelineError("the labelled set has no boxes: mAP is undefined")
    results = [
        {"image_id": image_id, "category_id": int(c), "score": float(s),
         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
        for image_id, det in enumerate(detections)
        for b, s, c in zip(det.boxes, det.scores, det.classes, strict=True)
    ]
    total = len(results)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        gt = COCO()
        gt.dataset = to_coco(labelled)
        gt.createIndex()
        if not results:
            return {"map50_95": 0.0, "map50": 0.0, "images": len(labelled), "boxes": labelled.boxes,
                    "detections": 0}
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"map50_95": float(ev.stats[0]), "map50": float(ev.stats[1]), "images": len(labelled),
            "boxes": labelled.boxes, "detections": total}


def ultralytics_map(labelled: LabelledSet, detections: list[Detections]) -> dict[str, Any]:
    """The same detections scored by ultralytics' own metric code (its validator's greedy matching and
    `ap_per_class`): what `yolo val` prints. It integrates the precision-recall curve by the trapezoid
    rule with sentinels, so a perfect class scores 0.995 at IoU 0.5 where COCO's 101-point sum gives 1.0;
    the two differ by a few thousandths on a good detector."""
    from types import SimpleNamespace

    import torch
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import ap_per_class

    from ..processing.detection import box_iou

    iouv = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    tps, confs, pred_cls, target_cls = [], [], [], []
    for image, det in zip(labelled.images, detections, strict=True):
        order = np.argsort(-det.scores, kind="stable")
        boxes, scores, classes = det.boxes[order], det.scores[order], det.classes[order]
        target_cls.append(image.classes)
        if not len(scores):
            continue
        correct = np.zeros((len(scores), 10), dtype=bool)
        if len(image.classes):
            iou = torch.from_numpy(box_iou(image.boxes.astype(np.float64), boxes.astype(np.float64)))
            correct = BaseValidator.match_predictions(iouv, torch.from_numpy(classes), torch.from_numpy(image.classes),
                                                      iou).numpy()
        tps.append(correct)
        confs.append(scores)
        pred_cls.append(classes)
    if not tps:
        return {"map50_95": 0.0, "map50": 0.0}
    result = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pred_cls),
                          np.concatenate(target_cls))
    ap = result[5]  # [classes with labels, 10 thresholds]
    return {"map50_95": float(ap.mean()), "map50": float(ap[:, 0].mean())}


def onnx_infer(onnx_path: Any, output: str | None = None) -> Infer:
    """An ONNX Runtime CPU session as an `Infer` (first input; `output` or the first output)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = output or session.get_outputs()[0].name
    return lambda x: session.run([out], {name: x})[0]


def labelled_map(onnx_path: Any, labelled: LabelledSet, preprocess: dict[str, Any], output: str | None = None,
                 settings: ValSettings = ValSettings()) -> dict[str, Any]:
    """mAP50-95 / mAP50 of an ONNX detector against the labels (pycocotools), at the validator's settings."""
    return coco_map(labelled, detect(onnx_infer(onnx_path, output), labelled, preprocess, settings))
