"""ViT image classifier (transformers ViTForImageClassification): a local from_pretrained folder or a
config in the recipe; preprocessing from the folder's image-processor config, identical for calibration,
evaluation and the manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.log import progress
from ..errors import PipelineError
from ..processing.image import list_images, preprocess_image
from ..recipe.loader import Recipe
from .base import DataSet, ExportResult, Feed, ModelAdapter, SourceInfo
from .classification_data import accuracy, agreement, builtin_heldout_crops, labelled_images
from .hf_source import HfSource, announce_random, read_json_file, resolve_source, source_info
from .image_data import BUILTIN, calibration_images, image_calibration_set, image_feeds, spread
from .torch_export import choose_dtype, export_module, float_io, torch_outputs

PROCESSOR_FILE = "preprocessor_config.json"
INPUT, OUTPUT = "pixel_values", "logits"


def _size(value: Any) -> tuple[int | None, int | None, int | None]:
    """(height, width, shortest_edge) from an image processor's `size` / `crop_size` entry."""
    if isinstance(value, int):
        return value, value, None
    value = value or {}
    return value.get("height"), value.get("width"), value.get("shortest_edge")


def processor_preprocess(proc: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `preprocess` section from a Hugging Face image-processor config."""
    spec = dict(base)
    h, w, shortest = _size(proc.get("size"))
    if proc.get("do_center_crop") and proc.get("crop_size"):
        ch, cw, _ = _size(proc["crop_size"])
        spec.update(resize="resize_crop", size=[ch, cw], resize_shorter=shortest or h)
    elif h and w:
        spec.update(resize="resize", size=[h, w])
        spec.pop("resize_shorter", None)
    elif shortest:  # shortest-edge resize with no crop keeps the aspect: crop square so shapes are static
        spec.update(resize="resize_crop", size=[shortest, shortest], resize_shorter=shortest)
    spec["scale"] = float(proc.get("rescale_factor", 1 / 255)) if proc.get("do_rescale", True) else 1.0
    if proc.get("do_normalize", True):
        spec.update(mean=[float(v) for v in proc.get("image_mean", spec.get("mean"))],
                    std=[float(v) for v in proc.get("image_std", spec.get("std"))])
    else:
        spec.update(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    spec["from"] = PROCESSOR_FILE
    return spec


def class_names(config: dict[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    if id2label:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    return [f"LABEL_{i}" for i in range(int(config.get("num_labels", 2)))]


class VitAdapter(ModelAdapter):
    family = "vit"
    tools = ("torch", "transformers")

    def _source(self, recipe: Recipe) -> HfSource:
        return resolve_source(recipe)

    def source(self, recipe: Recipe) -> SourceInfo:
        return source_info(self._source(recipe))

    def preprocess(self, recipe: Recipe) -> dict[str, Any]:
        """The recipe's preprocess, overridden by the folder's image-processor config when it has one."""
        source = self._source(recipe)
        spec = {"input": INPUT, **recipe.section("preprocess")}
        if source.folder and (source.folder / PROCESSOR_FILE).exists():
            spec = processor_preprocess(read_json_file(source.folder / PROCESSOR_FILE), spec)
        image_size = source.config.get("image_size", 224)
        want = list(image_size) if isinstance(image_size, (list, tuple)) else [image_size, image_size]
        if list(spec["size"]) != want:
            raise PipelineError(f"recipe {recipe.path}: preprocess size {spec['size']} does not match the "
                                f"model's image_size {want} ({source.describe()})")
        shape = recipe.inputs.get(spec["input"], {}).get("opt")
        if not shape or list(shape[2:]) != want:
            raise PipelineError(f"recipe {recipe.path}: inputs.{spec['input']} must be [batch, 3, {want[0]}, "
                                f"{want[1]}] to match the model")
        return spec

    def _load(self, source: HfSource, dtype: str = "float32") -> Any:
        from transformers import ViTConfig, ViTForImageClassification

        return source.load(ViTForImageClassification, lambda c: ViTForImageClassification(ViTConfig(**c)), dtype)

    def _dtype(self, recipe: Recipe, source: HfSource) -> tuple[str, str]:
        from transformers import ViTConfig, ViTForImageClassification

        return choose_dtype(recipe, lambda: ViTForImageClassification(ViTConfig(**source.config)), "ViT")

    def export(self, recipe: Recipe, onnx_out: Path, feeds: list[Feed]) -> ExportResult:
        import torch

        source = self._source(recipe)
        notes = [] if source.folder else [announce_random("export", "ViT", source)]
        dtype, why = self._dtype(recipe, source)
        notes.append(f"weights exported in {why}")
        model = self._load(source, dtype)

        class Logits(torch.nn.Module):
            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model  # node names read /model/vit/layers.<i>/...

            def forward(self, pixel_values: Any) -> Any:
                return self.model(pixel_values=pixel_values).logits

        wrapper = float_io(Logits(model).eval(), dtype)
        opset = int(recipe.section("export").get("opset", 17))
        export_module(
            wrapper, feeds[0], onnx_out, [OUTPUT], {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, opset,
            metadata={"orin_trt.preprocess": json.dumps(self.preprocess(recipe)),
                      "orin_trt.class_names": json.dumps(class_names(model.config.to_dict()))},
        )
        return ExportResult(torch_outputs(wrapper, feeds), source.random_weights, source.describe(), notes)

    def calibration_set(self, recipe: Recipe, calib_root: Path) -> DataSet:
        return image_calibration_set(recipe, calib_root)

    def calibration_feeds(self, recipe: Recipe, data: DataSet) -> list[Feed]:
        return image_feeds(calibration_images(data), self.preprocess(recipe), "calibration images")

    def _labelled(self, recipe: Recipe) -> list[tuple[Path, int]] | None:
        folder = recipe.section("eval").get("labelled")
        if not folder:
            return None
        pairs = labelled_images(recipe.resolve_path(folder), class_names(self._source(recipe).config))
        return pairs[: int(recipe.section("eval").get("max_samples", len(pairs)))]

    def eval_feeds(self, recipe: Recipe) -> list[Feed]:
        """Held-out inputs: a labelled folder (eval.labelled), an image folder (eval.images), or crops of
        the built-in held-out photos."""
        spec = self.preprocess(recipe)
        labelled = self._labelled(recipe)
        if labelled is not None:
            return image_feeds([p for p, _ in labelled], spec, "labelled images")
        images = recipe.section("eval").get("images", BUILTIN)
        if images != BUILTIN:
            return image_feeds(list_images(recipe.resolve_path(images)), spec, "held-out images")
        crops = builtin_heldout_crops()
        return [{spec["input"]: preprocess_image(c, spec)[0]} for c in progress(crops, "held-out crops", len(crops))]

    def deploy_info(self, recipe: Recipe, onnx_metadata: dict[str, str]) -> dict[str, Any]:
        try:
            pre = json.loads(onnx_metadata["orin_trt.preprocess"])
            names = json.loads(onnx_metadata["orin_trt.class_names"])
        except (KeyError, ValueError) as e:
            raise PipelineError(f"the ViT ONNX lacks its preprocess / class metadata ({e}); re-export it") from e
        post = {"top_k": 5, **recipe.section("postprocess")}
        post.update({"type": "classification", "output": post.get("output", OUTPUT),
                     "layout": "[batch, num_classes] logits; softmax over the last axis for probabilities",
                     "class_names": names})
        return {"preprocess": pre, "postprocess": post}

    def task_accuracy(self, recipe, output_names, reference, candidate) -> dict[str, Any]:
        out = output_names.index(recipe.section("postprocess").get("output", OUTPUT))
        ref = np.concatenate([r[out].reshape(-1, r[out].shape[-1]) for r in reference])
        cand = np.concatenate([c[out].reshape(-1, c[out].shape[-1]) for c in candidate])
        result: dict[str, Any] = {"metric": "top-k agreement of the candidate's logits with FP32's",
                                  "samples": int(ref.shape[0]), **agreement(ref, cand)}
        labelled = self._labelled(recipe)
        if labelled is not None:
            labels = np.asarray([c for _, c in labelled])
            result.update({f"fp32_{k}_accuracy": v for k, v in accuracy(ref, labels).items()})
            result.update({f"candidate_{k}_accuracy": v for k, v in accuracy(cand, labels).items()})
        floor = recipe.section("accuracy").get("min_top1_agreement")
        if floor is not None:
            result["min_top1_agreement"] = float(floor)
            result["floor_met"] = result["top1_agreement"] >= float(floor)
            # With labels the budget on top-1 accuracy decides; agreement with FP32 stays a diagnostic.
            if labelled is None:
                result["passed"] = result["floor_met"]
                if not result["passed"]:
                    result["gate_reason"] = f"top-1 agreement {result['top1_agreement']:.3f} < {float(floor)}"
        return result

    def ground_truth(self, recipe: Recipe, model: Path, samples: int | None = None) -> dict[str, Any] | None:
        """Top-1 / top-5 accuracy against the class folders of `eval.labelled`."""
        labelled = self._labelled(recipe)
        if labelled is None:
            return None
        from ..runners import run
        from ..runners.onnxrt import onnxrt_runner

        labelled = spread(labelled, samples) if samples else labelled  # across classes, not the first few
        out = recipe.section("postprocess").get("output", OUTPUT)
        feeds = image_feeds([p for p, _ in labelled], self.preprocess(recipe), "labelled images")
        with onnxrt_runner(model) as runner:
            logits = np.concatenate([o[0].reshape(-1, o[0].shape[-1]) for o in run(runner, feeds, [out])])
        return {"reference": f"labels ({recipe.section('eval')['labelled']}: {len(labelled)} images)",
                "samples": len(labelled), "metrics": accuracy(logits, np.asarray([c for _, c in labelled]))}
