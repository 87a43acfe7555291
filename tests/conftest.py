"""Shared fixtures: a small YOLO recipe (320 px, few calibration images) and a scratch workspace."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipeline.recipe.loader import RECIPES_DIR

REPO = Path(__file__).resolve().parents[1]

# ultralytics writes its settings on first import; keep that out of the user's home in CI.
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".pytest_cache" / "ultralytics"))


def derived_recipe(builtin: str, dest: Path, name: str, shrink: Callable[[dict], None],
                   overrides: dict[str, object]) -> Path:
    """A built-in recipe made test-sized by `shrink`, renamed, with top-level `overrides`, written to `dest`."""
    raw = yaml.safe_load((RECIPES_DIR / f"{builtin}.yaml").read_text())
    raw["name"] = name
    shrink(raw)
    raw.update(overrides)
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def scratch(base: Path, recipe: Path) -> dict[str, Path]:
    """An engines/ and calib/ root of their own, shared by a test module or package."""
    return {"base": base, "root": base / "engines", "calib": base / "calib", "recipe": recipe}


def small_yolo_recipe(dest: Path, **overrides: object) -> Path:
    """yolo.yaml shrunk for tests: 320x320 input, batch 1..2, 8 calibration images, yolo11n from yaml."""

    def shrink(raw: dict) -> None:
        # No checkpoint: the yolo11n architecture with random weights, whatever .pt lies in the clone.
        raw["source"] = {"checkpoint": None, "config": "yolo11n.yaml"}
        raw["imgsz"], raw["batch"] = 320, {"min": 1, "opt": 1, "max": 2}
        raw["calibration"].update(max_samples=8, recommended_min=8)
        raw["profile"] = {"warmup": 1, "iterations": 3}

    return derived_recipe("yolo", dest, "yolo-test", shrink, overrides)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One engines/ and calib/ root for the session, so stages reuse each other's outputs."""
    base = tmp_path_factory.mktemp("ws")
    return scratch(base, small_yolo_recipe(base))


def fixture_module(family: str, name: str):  # noqa: ANN201 - a module
    """A fixture folder's script as a module of its own name per family: every fixture has a
    make_dataset.py, so `sys.path` + `import make_dataset` gets whichever was imported first."""
    import importlib.util
    import sys

    key = f"fixture_{family}_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, REPO / "tests" / "fixtures" / family / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def labelled_shapes_recipe(base: Path, calib: int = 16, heldout: int = 12, **sections: object) -> Path:
    """The trained shapes detector's recipe with `eval.data`: a dataset yaml whose val split is `heldout`
    generated, labelled images (tests/fixtures/shapes/make_dataset.py), calibrated on `calib` others."""
    shapes = REPO / "tests" / "fixtures" / "shapes"
    generator = fixture_module("shapes", "make_dataset")
    CLASSES, write_dataset = generator.CLASSES, generator.write_dataset  # noqa: N806 - the generator's names

    write_dataset(base / "data", {"calib": calib, "heldout": heldout})
    data_yaml = base / "data" / "heldout.yaml"
    data_yaml.write_text(yaml.safe_dump({"path": str(base / "data"), "val": "images/heldout",
                                         "names": dict(enumerate(CLASSES))}))
    raw = yaml.safe_load((shapes / "shapes.yaml").read_text())
    raw["source"] = {k: str(shapes / v) for k, v in raw["source"].items()}
    raw["calibration"]["images"] = str(base / "data" / "images" / "calib")
    raw["eval"] = {"data": str(data_yaml), "task_conf_threshold": 0.001}
    raw["profile"] = {"warmup": 1, "iterations": 2}
    raw.update(sections)
    path = base / "shapes.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
