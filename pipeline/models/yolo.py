"""YOLO (ultralytics) adapter: a .pt checkpoint or a model yaml, exported with ultralytics' own exporter."""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.log import warn
from ..errors import PipelineError
from ..recipe.loader import Recipe
from .base import DataSet, ExportResult, Feed, ModelAdapter, SourceInfo
from .image_data import calibration_image_feeds, eval_image_feeds, image_calibration_set


def dataset_yaml(recipe: Recipe) -> Path | None:
    data = recipe.section("eval").get("data") or recipe.section("calibration").get("data")
    return recipe.resolve_path(data) if data else None


def dataset_class_names(recipe: Recipe, model_names: list[str]) -> list[str]:
    """The class names of the recipe's dataset yaml (eval.data, else calibration.data) when it has one,
    else the model's. A dataset whose class count differs from the model's head is the wrong dataset."""
    path = dataset_yaml(recipe)
    if path is None:
        return model_names
    from .yolo_dataset import read_dataset

    dataset = read_dataset(path)
    if len(dataset.names) != len(model_names):
        raise PipelineError(f"{dataset.yaml}: names lists {len(dataset.names)} classes but the model detects "
                            f"{len(model_names)}; is this the dataset the checkpoint was trained on?")
    return dataset.names


class YoloAdapter(ModelAdapter):
    family = "yolo"
    tools = ("torch", "ultralytics", "onnxslim")

    def source(self, recipe: Recipe) -> SourceInfo:
        src = recipe.section("source")
        ckpt = src.get("checkpoint")
        # The dataset whose `names` the export writes into the model (and so into the manifest).
        dataset = dataset_yaml(recipe)
        if dataset and not dataset.is_file():
            raise PipelineError(f"recipe {recipe.path}: dataset yaml {dataset} not found")
        names = {"class_names_from": str(dataset)} if dataset else {}
        if ckpt and Path(ckpt).suffix.lower() == ".onnx":
            raise PipelineError(f"recipe {recipe.path}: source.checkpoint: {ckpt} is an ONNX model; write it as "
                                "source.onnx (the export is then skipped)")
        if ckpt and Path(ckpt).exists():
            return SourceInfo({"checkpoint": str(ckpt), "local": True, **names}, [Path(ckpt), *([dataset] if dataset else [])])
        if ckpt and ("/" in ckpt or Path(ckpt).is_absolute()):
            # A path (recipe-relative ones are absolute by now) that is not there: said before any fallback.
            raise PipelineError(f"recipe {recipe.path}: source.checkpoint: {ckpt} not found")
        # A bare name: ultralytics resolves it (its weights folder, then a download). The cache key
        # records that state, so placing the checkpoint later triggers a fresh export.
        return SourceInfo({"checkpoint": ckpt, "local": False, "config": src.get("config"), **names},
                          [dataset] if dataset else [])

    def _load(self, recipe: Recipe) -> tuple[Any, bool, str, list[str]]:
        from ultralytics import YOLO

        src = recipe.section("source")
        ckpt, config = src.get("checkpoint"), src.get("config")
        notes: list[str] = []
        if ckpt:
            path = Path(ckpt)
            try:
                return YOLO(str(path)), False, str(path), notes
            except Exception as e:  # a corrupt file, or a name ultralytics cannot get offline
                if path.exists():
                    raise PipelineError(f"{path}: cannot load the YOLO checkpoint ({e})") from e
                if not recipe.is_builtin_default("source", "checkpoint"):
                    raise PipelineError(f"recipe {recipe.path}: source.checkpoint: {ckpt!r} not found (not beside "
                                        f"the recipe, and ultralytics cannot get it: {e.__class__.__name__})") from e
                notes.append(f"checkpoint {ckpt} could not be had offline ({e.__class__.__name__}: {e})")
        if not config:
            raise PipelineError(f"recipe {recipe.path}: source: give checkpoint (a trained .pt) or config")
        msg = (f"!!! {notes[-1] if notes else 'no source.checkpoint given'}; building {config} with "
               "RANDOM WEIGHTS: accuracy numbers will be meaningless !!!")
        warn("export", msg)
        try:
            model = YOLO(config)
        except Exception as e:
            raise PipelineError(f"recipe {recipe.path}: source.config {config!r}: cannot build the YOLO model "
                                f"({e})") from e
        self._name_classes_like_coco(model)
        return model, True, str(config), notes + [msg]

    @staticmethod
    def _name_classes_like_coco(model: Any) -> None:
        """A config-built model numbers its classes; an 80-class head is COCO's, so name them so."""
        import yaml
        from ultralytics.utils import ROOT

        names = model.model.names
        if len(names) == 80 and all(str(v) == str(k) for k, v in names.items()):
            coco = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
            model.model.names = dict(coco)

    def export(self, recipe: Recipe, onnx_out: Path, feeds: list[Feed]) -> ExportResult:
        import torch

        model, random_weights, source, notes = self._load(recipe)
        names = model.model.names
        # The dataset's names travel in the ONNX metadata, so a build from a bundle needs no dataset file.
        model.model.names = dict(enumerate(dataset_class_names(recipe, [names[k] for k in sorted(names)])))
        cfg = recipe.section("export")
        size = recipe.section("preprocess")["size"]
        with tempfile.TemporaryDirectory(prefix="orin-trt-export-") as tmp:
            # ultralytics writes the ONNX beside the model's file; point that at a scratch folder.
            model.model.pt_path = str(Path(tmp) / "model.pt")
            exported = model.export(
                format="onnx", dynamic=True, simplify=bool(cfg.get("simplify", True)),
                opset=int(cfg.get("opset", 17)), imgsz=list(size), verbose=False,
            )
            shutil.move(str(exported), onnx_out)
        net = model.model.eval()
        outputs = []
        with torch.inference_mode():
            for feed in feeds:
                out = net(torch.from_numpy(next(iter(feed.values()))))
                out = out[0] if isinstance(out, (list, tuple)) else out
                outputs.append([out.numpy()])
        return ExportResult(outputs, random_weights, source, notes)

    def calibration_set(self, recipe: Recipe, calib_root: Path) -> DataSet:
        return image_calibration_set(recipe, calib_root)

    def calibration_feeds(self, recipe: Recipe, data: DataSet) -> list[Feed]:
        return calibration_image_feeds(recipe, data)

    def eval_feeds(self, recipe: Recipe) -> list[Feed]:
        return eval_image_feeds(recipe)

    def deploy_info(self, recipe: Recipe, onnx_metadata: dict[str, str]) -> dict[str, Any]:
        names = ast.literal_eval(onnx_metadata.get("names", "{}"))
        stride = int(onnx_metadata.get("stride", 32))
        post = dict(recipe.section("postprocess"))
        post.update({
            "layout": "[batch, 4 + num_classes, anchors]; rows 0-3 box cx, cy, w, h in input pixels; "
                      "then class scores in 0..1",
            "class_names": [names[k] for k in sorted(names)],
            "stride": [s for s in (8, 16, 32, 64) if s <= stride],
        })
        return {"preprocess": dict(recipe.section("preprocess")), "postprocess": post}

    def placeholders(self, onnx_metadata: dict[str, str], node_names: list[str]) -> dict[str, str]:
        # ultralytics names the nodes of module i `/model.<i>/...`; the Detect head is the last module.
        indices = [int(m.group(1)) for n in node_names if (m := re.match(r"/model\.(\d+)/", n))]
        if not indices:
            raise PipelineError("cannot find the YOLO head: no node is named /model.<i>/...")
        return {"head": f"/model.{max(indices)}"}

    def ground_truth(self, recipe: Recipe, model: Path, samples: int | None = None) -> dict[str, Any] | None:
        """mAP against the labels of `eval.data` (an ultralytics dataset yaml: its val split's YOLO txt labels)
        or of `eval.coco` (a COCO json over the `eval.images` folder)."""
        cfg = recipe.section("eval")
        if not cfg.get("data") and not cfg.get("coco"):
            return None
        from ..evaluation.detection_map import labelled_map
        from ..evaluation.yolo_labels import LabelledSet, read_coco, read_labelled
        from .image_data import eval_images, spread

        if cfg.get("coco"):
            coco = recipe.resolve_path(cfg["coco"])
            full = read_coco(coco, recipe.resolve_path(cfg["images"]))
            labelled = LabelledSet(spread(full.images, samples) if samples else full.images, full.names)
            where = f"COCO {coco.name}"
        else:
            paths = eval_images(recipe)
            labelled = read_labelled(spread(paths, samples) if samples else paths)
            where = f"{dataset_yaml(recipe).name} split {cfg.get('split', 'val')}"
        m = labelled_map(model, labelled, recipe.section("preprocess"), recipe.section("postprocess").get("output"))
        return {"reference": f"labels ({where}: {m['images']} images, {m['boxes']} boxes)",
                "samples": m["images"], "metrics": {"map50_95": m["map50_95"], "map50": m["map50"]}}

    def task_accuracy(self, recipe, output_names, reference, candidate) -> dict[str, Any]:
        from ..processing.detection import decode_yolo, map50_95

        post = recipe.section("postprocess")
        out = output_names.index(post.get("output", output_names[0]))
        conf = float(recipe.section("eval").get("task_conf_threshold", post.get("conf_threshold", 0.25)))
        iou = float(post.get("iou_threshold", 0.7))
        ref = [d for r in reference for d in decode_yolo(r[out], conf, iou)]
        cand = [d for c in candidate for d in decode_yolo(c[out], conf, iou)]
        m = map50_95(ref, cand)
        scores_ref = np.concatenate([r[out][:, 4:].ravel() for r in reference])
        scores_cand = np.concatenate([c[out][:, 4:].ravel() for c in candidate])
        result: dict[str, Any] = {
            "metric": "mAP50-95 of the candidate's detections against FP32's (after NMS)",
            "conf_threshold": conf,
            "map50_95_vs_fp32": m,
            "reference_detections": int(sum(len(d) for d in ref)),
            "candidate_detections": int(sum(len(d) for d in cand)),
            "note": None if m is not None else "FP32 made no detections at this threshold (random weights?)",
            # The trap a tensor-level cosine hides: class scores crushed by a shared INT8 scale.
            "class_score_max_abs_error": float(np.abs(scores_ref - scores_cand).max()),
            "class_score_max": float(scores_ref.max()),
        }
        # A tensor cosine near 1 can hide crushed class scores (the scores are tiny beside the pixel boxes
        # in one tensor), so detection is gated on the detections themselves where the recipe sets a floor.
        # Agreement with FP32 at val-style confidence counts thousands of low-score boxes nobody keeps: it
        # measures noise (issue 12). It gates only a recipe without labels; with labels the budget decides.
        floor = recipe.section("accuracy").get("min_map50_95_vs_fp32")
        if floor is not None and m is not None:
            result["min_map50_95_vs_fp32"] = float(floor)
            result["floor_met"] = m >= float(floor)
            if not recipe.section("eval").get("data"):
                result["passed"] = result["floor_met"]
                if not result["passed"]:
                    result["gate_reason"] = f"mAP50-95 vs FP32 {m:.3f} < {float(floor)}"
        return result
