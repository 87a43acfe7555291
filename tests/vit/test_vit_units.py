"""ViT pieces without a pipeline run: image-processor configs, labelled folders, top-k metrics, and a
local from_pretrained folder through the export stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.models.classification_data import accuracy, agreement, labelled_images
from pipeline.models.vit import VitAdapter, processor_preprocess
from pipeline.processing.classification import topk_indices as topk
from pipeline.recipe.loader import load_recipe
from tests.vit.conftest import TINY, tiny_vit_recipe


def test_processor_config_with_center_crop_becomes_resize_crop() -> None:
    spec = processor_preprocess({"do_resize": True, "size": {"shortest_edge": 256}, "do_center_crop": True,
                                 "crop_size": {"height": 224, "width": 224}, "rescale_factor": 1 / 255,
                                 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]},
                                {"input": "pixel_values", "layout": "NCHW"})
    assert spec["resize"] == "resize_crop" and spec["size"] == [224, 224] and spec["resize_shorter"] == 256
    assert spec["mean"] == [0.485, 0.456, 0.406] and spec["std"] == [0.229, 0.224, 0.225]


def test_vit_processor_config_resizes_without_crop() -> None:
    spec = processor_preprocess({"size": {"height": 224, "width": 224}, "do_normalize": False, "do_rescale": True},
                                {"resize": "resize_crop", "resize_shorter": 256})
    assert spec["resize"] == "resize" and spec["size"] == [224, 224] and "resize_shorter" not in spec
    assert spec["mean"] == [0.0, 0.0, 0.0] and spec["std"] == [1.0, 1.0, 1.0]


def test_topk_and_agreement_on_known_logits() -> None:
    ref = np.array([[0.1, 0.9, 0.5, 0.0], [3.0, 1.0, 2.0, 0.0]])
    cand = np.array([[0.1, 0.4, 0.5, 0.0], [3.0, 1.0, 2.0, 0.5]])
    assert topk(ref, 2).tolist() == [[1, 2], [0, 2]]
    got = agreement(ref, cand, k=2)
    assert got["top1_agreement"] == 0.5 and got["reference_top1_in_top2"] == 1.0 and got["top2_overlap"] == 1.0
    assert accuracy(ref, np.array([2, 0]), k=2) == {"top1": 0.5, "top2": 1.0}


def _write_images(folder: Path, names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for cls in names:
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / cls / f"{i}.png")


def test_labelled_folder_maps_index_label_and_synonym(tmp_path: Path) -> None:
    _write_images(tmp_path, ["0", "goldfish", "Tinca tinca"])
    names = ["tench, Tinca tinca", "goldfish"]
    pairs = labelled_images(tmp_path, names)
    assert sorted({(p.parent.name, c) for p, c in pairs}) == [("0", 0), ("Tinca tinca", 0), ("goldfish", 1)]
    _write_images(tmp_path / "bad", ["zebra"])
    with pytest.raises(PipelineError, match="zebra: class folder matches no class"):
        labelled_images(tmp_path / "bad", names)


def test_labelled_eval_reports_top1_accuracy(tmp_path: Path) -> None:
    _write_images(tmp_path / "val", ["goldfish", "bus"])
    path = tiny_vit_recipe(tmp_path, eval={"labelled": str(tmp_path / "val")})
    recipe, adapter = load_recipe(str(path)), VitAdapter()
    feeds = adapter.eval_feeds(recipe)
    assert len(feeds) == 4 and feeds[0]["pixel_values"].shape == (1, 3, 32, 32)
    logits = [[np.eye(4, dtype=np.float32)[[1, 1, 2, 3][i]][None]] for i in range(4)]  # bus, bus, goldfish x2
    task = adapter.task_accuracy(recipe, ["logits"], logits, logits)
    # Folder order: bus (2), goldfish (1); the logits say 1, 1, 2, 3.
    assert task["fp32_top1_accuracy"] == 0.0 and task["candidate_top1_accuracy"] == 0.0
    # With labels the agreement floor is a diagnostic (the budget on top-1 gates in profile): met, not gating.
    assert task["top1_agreement"] == 1.0 and task["floor_met"] is True and "passed" not in task


def test_local_pretrained_folder_is_exported_with_its_processor_config(tmp_path: Path) -> None:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from pipeline.core.artifacts import Layout, read_json
    from pipeline.stages.export import export

    folder = tmp_path / "my-vit"
    torch.manual_seed(1)
    ViTForImageClassification(ViTConfig(**TINY)).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.4, 0.4]).save_pretrained(folder)
    path = tiny_vit_recipe(tmp_path, name="vit-local", source={"pretrained": str(folder), "seed": 0})
    recipe = load_recipe(str(path))
    adapter = VitAdapter()
    spec = adapter.preprocess(recipe)
    assert spec["resize"] == "resize" and spec["mean"] == [0.4, 0.4, 0.4] and spec["from"] == "preprocessor_config.json"
    layout = Layout(tmp_path / "engines", "vit-local")
    export(recipe, layout)
    report = read_json(layout.export_report)
    assert report["random_weights"] is False and report["source"] == str(folder)
    assert not Path(str(layout.exported_onnx) + ".data").exists()  # small model: one file
    header = onnx.load(str(layout.exported_onnx), load_external_data=False)
    meta = adapter.deploy_info(recipe, {p.key: p.value for p in header.metadata_props})
    assert meta["preprocess"]["mean"] == [0.4, 0.4, 0.4]
    # The cache key sees the folder's files: a changed processor config re-exports.
    assert any(p.name == "preprocessor_config.json" for p in adapter.source(recipe).files)


def test_size_mismatch_names_the_recipe(tmp_path: Path) -> None:
    path = tiny_vit_recipe(tmp_path, name="vit-bad")
    raw = yaml.safe_load(path.read_text())
    raw["preprocess"]["size"] = [64, 64]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PipelineError, match=r"vit-bad.yaml: preprocess size \[64, 64\] does not match"):
        VitAdapter().preprocess(load_recipe(str(path)))
