"""Image loading and the preprocessing an image model sees, identical at calibration and inference.

The manifest's `preprocess` section is the contract: `preprocess_image(img, spec)` implements it, and
the C++ samples implement the same arithmetic (checked with shared golden vectors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the input: maps boxes back to the original image."""

    ratio: float
    pad_left: int
    pad_top: int
    src_size: tuple[int, int]  # (height, width) of the original

    def to_source(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        out = boxes_xyxy.astype(np.float32).copy()
        out[..., [0, 2]] = (out[..., [0, 2]] - self.pad_left) / self.ratio
        out[..., [1, 3]] = (out[..., [1, 3]] - self.pad_top) / self.ratio
        h, w = self.src_size
        out[..., [0, 2]] = out[..., [0, 2]].clip(0, w)
        out[..., [1, 3]] = out[..., [1, 3]].clip(0, h)
        return out


def list_images(folder: Path) -> list[Path]:
    """The images of a folder (recursively), rejecting anything else so a typo never calibrates on junk."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise PipelineError(f"image folder is empty: {folder}")
    other = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES and p.name != "README.md"]
    if other:
        raise PipelineError(
            f"{other[0]}: not an image (folder {folder} holds {len(other)} non-image file(s); "
            f"allowed: {', '.join(IMAGE_SUFFIXES)})"
        )
    return [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]


def load_rgb(path: Path) -> np.ndarray:
    """HWC uint8 RGB; a file that does not decode is named in the error."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in _WIDE_MODES:
                return _wide_to_rgb(np.asarray(im), im.mode, path)
            return np.asarray(im.convert("RGB"))
    except PipelineError:
        raise
    except Exception as e:  # PIL's own errors, or a plugin's (ultralytics hooks a HEIF fallback into open)
        raise PipelineError(f"{path}: cannot be decoded as an image ({e})") from e


# Pillow's modes for more than 8 bits a channel: convert("RGB") clips them at 255 (a 16-bit photo
# turns almost white), so they are scaled to 8 bits here instead.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _wide_to_rgb(pixels: np.ndarray, mode: str, path: Path) -> np.ndarray:
    if mode == "F":
        raise PipelineError(f"{path}: floating-point image (mode F); save it as 8- or 16-bit to use it")
    values = pixels.astype(np.float64)
    if mode == "I" and values.max(initial=0) > 65535:
        raise PipelineError(f"{path}: 32-bit integer image; save it as 8- or 16-bit to use it")
    gray = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _resize_bilinear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if (img.shape[1], img.shape[0]) == (width, height):
        return img
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def letterbox(img: np.ndarray, size: tuple[int, int], pad_value: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Fit HWC `img` into `size` (height, width) keeping aspect ratio, never upscaling past it; pad evenly."""
    h, w = img.shape[:2]
    th, tw = size
    r = min(th / h, tw / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    resized = _resize_bilinear(img, nw, nh)
    dw, dh = tw - nw, th - nh
    left, top = dw // 2, dh // 2
    out = np.full((th, tw, img.shape[2]), pad_value, dtype=img.dtype)
    out[top : top + nh, left : left + nw] = resized
    return out, Letterbox(r, left, top, (h, w))


def resize_crop(img: np.ndarray, size: tuple[int, int], resize_shorter: int) -> np.ndarray:
    """Resize the shorter side to `resize_shorter`, then center-crop `size` (height, width)."""
    h, w = img.shape[:2]
    r = resize_shorter / min(h, w)
    nw, nh = max(int(round(w * r)), size[1]), max(int(round(h * r)), size[0])
    resized = _resize_bilinear(img, nw, nh)
    top, left = (nh - size[0]) // 2, (nw - size[1]) // 2
    return resized[top : top + size[0], left : left + size[1]]


def normalize(img: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """HWC uint8 -> float32 in the manifest's layout (NCHW adds the batch axis), scaled and standardized."""
    x = img.astype(np.float32)
    if spec.get("color", "RGB") == "BGR":
        x = x[..., ::-1]
    x = x * float(spec.get("scale", 1.0))
    mean = np.asarray(spec.get("mean", [0.0, 0.0, 0.0]), dtype=np.float32)
    std = np.asarray(spec.get("std", [1.0, 1.0, 1.0]), dtype=np.float32)
    x = (x - mean) / std
    if spec.get("layout", "NCHW") == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def preprocess_image(img: np.ndarray, spec: dict[str, Any]) -> tuple[np.ndarray, Letterbox | None]:
    """Apply the manifest's `preprocess` section to one HWC uint8 RGB image."""
    size = tuple(spec["size"])
    mode = spec.get("resize", "letterbox")
    box = None
    if mode == "letterbox":
        img, box = letterbox(img, size, int(spec.get("pad_value", 114)))
    elif mode == "resize_crop":
        img = resize_crop(img, size, int(spec.get("resize_shorter", size[0])))
    elif mode == "resize":
        img = _resize_bilinear(img, size[1], size[0])
    else:
        raise PipelineError(f"preprocess.resize: unknown mode {mode!r} (letterbox, resize_crop, resize)")
    return normalize(img, spec), box
