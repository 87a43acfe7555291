"""Image sets for image-model families: the built-in offline calibration set, folders, and feeds."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..core.artifacts import atomic_dir
from ..core.log import log, progress
from ..errors import PipelineError
from ..processing.image import list_images, load_rgb, preprocess_image
from ..recipe.loader import Recipe
from .base import DataSet, Feed, LazyFeeds

BUILTIN = "builtin"
BUILTIN_COUNT = 32
DEFAULT_MAX_SAMPLES = 512


def spread(files: list[Path], count: int) -> list[Path]:
    """`count` of `files` evenly spaced over the sorted list, so a `<class>/<image>` tree or a folder
    sorted by time is sampled across, not just its first classes or first hour."""
    if count >= len(files):
        return list(files)
    return [files[(i * len(files)) // count] for i in range(count)]


def calibration_images(data: DataSet) -> list[Path]:
    """The images of a calibration set that its `count` selects (the calibrate stage's cache key covers
    the folder's content and this rule)."""
    return spread(list_images(data.path), data.count)


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PipelineError(f"package {package!r} is not installed (needed for {'/'.join(parts)})")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise PipelineError(f"{path}: expected file missing from package {package!r}")
    return path


def heldout_images() -> list[Path]:
    """Ultralytics' two bundled photos: never used for calibration, so they are held out."""
    return [package_file("ultralytics", "assets", n) for n in ("bus.jpg", "zidane.jpg")]


def _calibration_sources() -> list[np.ndarray]:
    names = [("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
             ("matplotlib", "mpl-data", "sample_data", "Minduka_Present_Blue_Pack.png")]
    return [load_rgb(package_file(*n)) for n in names]


def _synthetic_scene(rng: np.random.Generator, size: int = 640) -> np.ndarray:
    """Shapes over a gradient: covers value ranges and edges that two photos alone do not."""
    import cv2

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0, 255, 3) * (1 - yy[..., None]) + rng.uniform(0, 255, 3) * xx[..., None]
    img = np.clip(base, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 9)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = (int(v) for v in rng.integers(0, size - 40, 2))
        w, h = (int(v) for v in rng.integers(20, size // 2, 2))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (min(x0 + w, size - 1), min(y0 + h, size - 1)), color, -1)
        else:
            cv2.ellipse(img, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), float(rng.uniform(0, 180)), 0, 360, color, -1)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def write_builtin_calibration_images(dest: Path, count: int = BUILTIN_COUNT, seed: int = 0) -> None:
    """Deterministic crops, flips and rescales of sample photos shipped with matplotlib, plus synthetic
    scenes. Written to a temporary folder and renamed, so an interrupted run leaves nothing behind."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sources = _calibration_sources()
    with atomic_dir(dest) as tmp:
        for i in range(count):
            if i % 2 == 0:
                src = sources[(i // 2) % len(sources)]
                h, w = src.shape[:2]
                frac = rng.uniform(0.5, 1.0)
                ch, cw = int(h * frac), int(w * frac)
                y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                img = src[y0 : y0 + ch, x0 : x0 + cw]
                if rng.random() < 0.5:
                    img = img[:, ::-1]
            else:
                img = _synthetic_scene(rng)
            Image.fromarray(np.ascontiguousarray(img)).save(tmp / f"calib_{i:03d}.jpg", quality=92)


def calibration_folder(recipe: Recipe, calib_root: Path) -> tuple[Path, str]:
    """The calibration image folder: a dataset yaml's split (`calibration.data`), the user's folder, or
    the built-in set generated into calib/<model>/images."""
    cfg = recipe.section("calibration")
    if cfg.get("data"):
        from .yolo_dataset import read_dataset

        dataset = read_dataset(recipe.resolve_path(cfg["data"]))
        split = cfg.get("split") or ("calib" if dataset.has("calib") else "train")
        return dataset.folder(split), f"split {split!r} of {dataset.yaml}"
    images = cfg.get("images") or BUILTIN
    if images == BUILTIN:
        folder = calib_root / recipe.name / "images"
        if not folder.is_dir() or not any(folder.iterdir()):
            write_builtin_calibration_images(folder)
        return folder, f"built-in offline set ({folder})"
    folder = recipe.resolve_path(images)
    return folder, str(folder)


def image_calibration_set(recipe: Recipe, calib_root: Path) -> DataSet:
    cfg = recipe.section("calibration")
    folder, description = calibration_folder(recipe, calib_root)
    files = list_images(folder)
    if cfg.get("max_samples") is None and len(files) > DEFAULT_MAX_SAMPLES:
        # Calibration past a few hundred images changes INT8 scales little and costs time; a capped
        # default keeps a 20,000-image folder from being read whole by accident.
        log("calibrate", f"calibration folder {folder} has {len(files)} images; using {DEFAULT_MAX_SAMPLES} "
            "spread across it (set calibration.max_samples to choose)")
    count = min(len(files), int(cfg.get("max_samples") or DEFAULT_MAX_SAMPLES))
    return DataSet(folder, count, description, int(cfg.get("recommended_min", 0)))


def eval_images(recipe: Recipe) -> list[Path]:
    """Held-out images: a dataset yaml's val split (`eval.data`), a folder, or the built-in photos."""
    cfg = recipe.section("eval")
    if cfg.get("data"):
        from .yolo_dataset import read_dataset

        paths = read_dataset(recipe.resolve_path(cfg["data"])).images(cfg.get("split", "val"))
    else:
        images = cfg.get("images") or BUILTIN
        paths = heldout_images() if images == BUILTIN else list_images(recipe.resolve_path(images))
    return paths[: int(cfg.get("max_samples") or len(paths))]


def _image_feed(path: Path, spec: dict) -> Feed:
    return {spec.get("input", "images"): preprocess_image(load_rgb(path), spec)[0]}


def image_feeds(paths: list[Path], spec: dict, desc: str) -> LazyFeeds:
    """The images as feeds made on demand; every file is decoded once first, so all the bad ones are
    named together (not one per run) and nothing fails half way through a calibration."""
    bad: list[str] = []
    for p in progress(paths, f"checking {desc}", len(paths)):
        try:
            load_rgb(p)
        except PipelineError as e:
            bad.append(str(e))
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise PipelineError(f"{len(bad)} of {len(paths)} {desc} cannot be used: {shown}")
    return LazyFeeds(paths, functools.partial(_image_feed, spec=dict(spec)))


def calibration_image_feeds(recipe: Recipe, data: DataSet) -> list[Feed]:
    return image_feeds(calibration_images(data), recipe.section("preprocess"), "calibration images")


def eval_image_feeds(recipe: Recipe) -> list[Feed]:
    return image_feeds(eval_images(recipe), recipe.section("preprocess"), "held-out images")
