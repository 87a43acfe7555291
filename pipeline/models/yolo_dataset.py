"""An ultralytics dataset yaml, as users have it: `path` (the root), `train` / `val` / other splits (an image
folder, a .txt list of images, or a list of those, relative to the root) and `names`. Labels follow the
images/ -> labels/ convention; this module names each image's label file but never parses it
(pipeline/evaluation/yolo_labels.py reads labels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.artifacts import read_yaml
from ..errors import PipelineError
from ..processing.image import IMAGE_SUFFIXES, list_images


@dataclass(frozen=True)
class YoloDataset:
    yaml: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]]  # split name -> the image entries it lists (folders or files), resolved

    def has(self, split: str) -> bool:
        return split in self.splits

    def folder(self, split: str) -> Path:
        """The split as one image folder (what a calibration set is); other forms are refused by name."""
        entries = self._entries(split)
        if len(entries) != 1 or not entries[0].is_dir():
            raise PipelineError(f"{self.yaml}: split {split!r} must be one image folder to use here "
                                f"(it lists {', '.join(str(e) for e in entries)})")
        return entries[0]

    def images(self, split: str) -> list[Path]:
        """Every image of the split: folders recursively, .txt lists line by line."""
        out: list[Path] = []
        for entry in self._entries(split):
            if entry.is_dir():
                out += list_images(entry)
            elif entry.suffix == ".txt":
                out += [self._resolve(line.strip(), entry.parent) for line in
                        entry.read_text(encoding="utf-8").splitlines() if line.strip()]
            elif entry.suffix.lower() in IMAGE_SUFFIXES:
                out.append(entry)
            else:
                raise PipelineError(f"{self.yaml}: split {split!r}: {entry} is neither an image folder, a .txt "
                                    "list nor an image")
        missing = [p for p in out if not p.is_file()]
        if missing:
            raise PipelineError(f"{self.yaml}: split {split!r}: image {missing[0]} not found "
                                f"({len(missing)} missing)")
        return out

    def _entries(self, split: str) -> list[Path]:
        if split not in self.splits:
            raise PipelineError(f"{self.yaml}: no split {split!r} (it has {', '.join(self.splits) or 'none'})")
        for entry in self.splits[split]:
            if not entry.exists():
                raise PipelineError(f"{self.yaml}: split {split!r}: {entry} not found")
        return self.splits[split]

    def _resolve(self, value: str, relative_to: Path) -> Path:
        p = Path(value).expanduser()
        if p.is_absolute():
            return p
        # ultralytics lists are relative to the dataset root ("./images/x.jpg"), else to the list's folder.
        return (self.root / p) if (self.root / p).exists() else (relative_to / p)


def label_path(image: Path) -> Path:
    """`.../images/<split>/a.jpg` -> `.../labels/<split>/a.txt` (the last `images` folder of the path); an
    image under no `images` folder has its label beside it (`a.txt`), as in ultralytics."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _names(value: Any, path: Path) -> list[str]:
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    if isinstance(value, dict) and value:
        try:
            keys = sorted(value, key=int)
        except (TypeError, ValueError) as e:
            raise PipelineError(f"{path}: names: keys must be class indices 0..N-1") from e
        if [int(k) for k in keys] != list(range(len(keys))):
            raise PipelineError(f"{path}: names: class indices must run 0..{len(keys) - 1} without gaps")
        return [str(value[k]) for k in keys]
    raise PipelineError(f"{path}: names: expected the class names (a list, or a mapping index -> name)")


def read_dataset(path: Path) -> YoloDataset:
    path = Path(path).expanduser()
    if not path.is_file():
        raise PipelineError(f"dataset yaml {path} not found")
    raw = read_yaml(path, "dataset yaml")
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: expected an ultralytics dataset yaml (path, train, val, names)")
    root = Path(str(raw.get("path") or ".")).expanduser()
    root = root if root.is_absolute() else (path.parent / root).resolve()
    if "names" not in raw:
        raise PipelineError(f"{path}: names: required key missing (the class names)")
    splits: dict[str, list[Path]] = {}
    for key, value in raw.items():
        if key in ("path", "names", "nc", "download", "yaml_file", "channels") or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            continue  # not a split (another ultralytics key)
        splits[key] = [(root / v).resolve() if not Path(v).expanduser().is_absolute() else Path(v).expanduser()
                       for v in values]
    if "val" not in splits and "train" not in splits:
        raise PipelineError(f"{path}: needs a train or val split (image folders relative to path)")
    return YoloDataset(path, root, _names(raw["names"], path), splits)


def label_files(dataset: YoloDataset, split: str) -> dict[Path, Path]:
    """Each image of a split with its label file's path (which may not exist: an image without objects)."""
    return {image: label_path(image) for image in dataset.images(split)}
