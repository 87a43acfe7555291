"""A tiny ViT recipe (32 px, 2 layers, named classes) built from the shipped vit.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.recipe.loader import RECIPES_DIR

from ..conftest import derived_recipe, scratch

TINY = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "num_labels": 4,
        "id2label": {"0": "tench, Tinca tinca", "1": "goldfish", "2": "bus", "3": "person"}}


def tiny_vit_recipe(dest: Path, name: str = "vit-test", **overrides: object) -> Path:
    def shrink(raw: dict) -> None:
        raw["source"] = {"pretrained": None, "config": TINY, "seed": 0}
        raw["batch"] = {"min": 1, "opt": 1, "max": 2}  # the 32 px input shape comes from TINY's image_size
        raw["preprocess"].update(resize_shorter=36)
        raw["calibration"].update(max_samples=8, recommended_min=8)
        raw["profile"] = {"warmup": 1, "iterations": 2}

    return derived_recipe("vit", dest, name, shrink, overrides)


@pytest.fixture(scope="package")
def vit_ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("vit")
    # External data forced: the >2 GB layout through every stage (ModelOpt INT8 and AutoCast included).
    export = {**yaml.safe_load((RECIPES_DIR / "vit.yaml").read_text())["export"], "external_data": True}
    return scratch(base, tiny_vit_recipe(base, export=export))
