"""Text for calibration and held-out evaluation: the files the repo ships, or the user's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError
from .kv_cache import CacheShape, prefill_feed
from .tokenizer import DATA_DIR

BUILTIN = "builtin"
BUILTIN_CALIBRATION = DATA_DIR / "calibration.txt"
BUILTIN_HELDOUT = DATA_DIR / "heldout.txt"


def text_files(folder: Path) -> list[Path]:
    """Every file of a folder, recursively, whatever its extension (hidden files aside)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise PipelineError(f"{folder}: no text files")
    return files


def read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PipelineError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise PipelineError(f"{path}: cannot read ({e.strerror})") from e


def materialize_calibration_text(value: str, dest: Path) -> Path:
    """A folder holding the calibration text: the user's folder as is; a single file (or the built-in
    text) is copied into `dest` so the calibration set is a folder whose content is its identity."""
    if value != BUILTIN and Path(value).expanduser().is_dir():
        return Path(value).expanduser()
    src = BUILTIN_CALIBRATION if value == BUILTIN else Path(value).expanduser()
    if not src.is_file():
        raise PipelineError(f"calibration.text: {src} is neither a text file nor a folder")
    target = dest / src.name
    if not target.exists() or target.read_bytes() != src.read_bytes():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return dest


def heldout_path(value: str) -> Path:
    """The held-out text: a file, or a folder of text files (any extension)."""
    path = BUILTIN_HELDOUT if value == BUILTIN else Path(value).expanduser()
    if not path.exists():
        raise PipelineError(f"eval.text: held-out text file {path} not found")
    return path


def heldout_text(value: str) -> str:
    path = heldout_path(value)
    files = text_files(path) if path.is_dir() else [path]
    return "\n".join(read_text(f) for f in files)


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids without special tokens: windows are cut from one running stream."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def windows(token_ids: list[int], length: int, count: int) -> list[np.ndarray]:
    """Up to `count` non-overlapping windows of exactly `length` tokens."""
    out = [np.array(token_ids[i : i + length]) for i in range(0, len(token_ids) - length + 1, length)]
    if not out:
        raise PipelineError(f"text has {len(token_ids)} tokens, fewer than one window of {length}")
    return out[:count]


def prefill_feeds(token_windows: list[np.ndarray], cache: CacheShape) -> list[dict[str, np.ndarray]]:
    return [prefill_feed(w[None], cache) for w in token_windows]
