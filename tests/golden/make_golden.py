"""Golden vectors shared by the Python and C++ test suites (pytest tests/golden, CTest jetson/cpp).

Python's pre- and post-processing (pipeline/processing/image.py, detection.py, classification.py) produce the
tensors here; the expected detections and top-5 are planted by construction (written out below, not
computed by the code under test), so both suites check their implementation against the same facts.

    .venv/bin/python tests/golden/make_golden.py [--out tests/golden/data]

writes golden.json (the index: files, shapes, expectations) and the arrays as .npy files beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.core.artifacts import write_bytes, write_json  # noqa: E402
from pipeline.processing.image import _resize_bilinear, letterbox, preprocess_image, resize_crop  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
YOLO_CLASSES = ["person", "bicycle", "car", "dog", "stop sign"]
VIT_CLASSES = ["tench", "goldfish", "shark", "hen", "ostrich", "robin", "jay", "owl", "frog", "turtle"]
YOLO_SIZE = (64, 96)  # (height, width): small, and not square, so padding shows
VIT_SIZE = (32, 32)
VIT_SHORTER = 36
# Source -> (width, height) targets checked for bit-exact bilinear resizing beyond the two pipelines:
# an exact 2x reduction (OpenCV switches algorithm there), a non-integer upscale and a mixed one.
RESIZE_TARGETS = [(12, 8), (37, 29), (9, 40)]


def make_image(width: int, height: int, seed: int) -> np.ndarray:
    """A deterministic RGB test card: gradients, hard-edged shapes (where resampling differs) and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) * 3 % 256], axis=-1)
    img[height // 4 : height // 2, width // 5 : width // 2] = (230, 40, 30)
    disk = (x - 0.7 * width) ** 2 + (y - 0.6 * height) ** 2 < (0.2 * height) ** 2
    img[disk] = (20, 200, 60)
    img = img + rng.integers(-12, 13, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def full_manifest(model: str, family: str, inputs: list[dict], outputs: list[dict], preprocess: dict,
                  postprocess: dict) -> dict[str, Any]:
    """A complete manifest (docs/manifest.md) for a model that only exists as golden vectors."""
    shape = inputs[0]["shape"]
    return {
        "schema": "orin-trt/manifest@1", "model": model, "family": family, "precision": "fp32",
        "created_utc": "2026-11-22T00:00:00Z", "pipeline_version": "golden",
        "engine": {"file": "model.engine", "bytes": 0, "sha256": None},
        "onnx": {"file": "model.onnx", "sha256": None, "external_data": False},
        "calibration": None,
        "weights": {"source": "golden vectors", "random": True},
        "precision_detail": {"precision": "fp32", "high_precision_dtype": None,
                             "kept_out": {"nodes": [], "op_types": [], "reason": None}},
        "io": {"inputs": inputs, "outputs": outputs},
        "profiles": [{"name": "default", "phase": None,
                      "shapes": {inputs[0]["name"]: {"min": [1, *shape[1:]], "opt": [1, *shape[1:]],
                                                     "max": [4, *shape[1:]]}}}],
        "builder": {"backend": "tensorrt", "version": "10.3.0.30", "strongly_typed": True},
        "system": {"trt_version": "10.3.0.30", "compute_capability": "8.7", "l4t": "36.4.0", "dla_core": None},
        "memory": {"engine_bytes": 0, "weights_bytes": 0, "activation_bytes": 0},
        "preprocess": preprocess,
        "postprocess": postprocess,
    }


def yolo_manifest(anchors: int) -> dict[str, Any]:
    h, w = YOLO_SIZE
    return full_manifest(
        "yolo-golden", "yolo",
        [{"name": "images", "dtype": "float32", "shape": [-1, 3, h, w]}],
        [{"name": "output0", "dtype": "float32", "shape": [-1, 4 + len(YOLO_CLASSES), anchors]}],
        {"input": "images", "size": [h, w], "resize": "letterbox", "pad_value": 114, "color": "RGB",
         "layout": "NCHW", "scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        {"type": "yolo_detect", "output": "output0", "layout": "[batch, 4 + num_classes, anchors]",
         "class_names": YOLO_CLASSES, "stride": [8, 16, 32], "conf_threshold": 0.25, "iou_threshold": 0.7,
         "max_detections": 300},
    )


def vit_manifest() -> dict[str, Any]:
    h, w = VIT_SIZE
    return full_manifest(
        "vit-golden", "vit",
        [{"name": "pixel_values", "dtype": "float32", "shape": [-1, 3, h, w]}],
        [{"name": "logits", "dtype": "float32", "shape": [-1, len(VIT_CLASSES)]}],
        {"input": "pixel_values", "size": [h, w], "resize": "resize_crop", "resize_shorter": VIT_SHORTER,
         "color": "RGB", "layout": "NCHW", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406],
         "std": [0.229, 0.224, 0.225]},
        {"type": "classification", "output": "logits", "top_k": 5,
         "layout": "[batch, num_classes] logits; softmax over the last axis for probabilities",
         "class_names": VIT_CLASSES},
    )


# Planted YOLO predictions: (anchor, cx, cy, w, h, {class: score}). Everything else scores < 0.2.
PLANTED = [
    (10, 30.0, 30.0, 20.0, 16.0, {0: 0.9}),            # A: kept
    (11, 31.0, 30.0, 20.0, 16.0, {0: 0.8}),            # B: same class as A, IoU 0.9 > 0.7: suppressed
    (12, 30.0, 30.0, 20.0, 16.0, {1: 0.85}),           # C: A's box, other class: kept (class-aware NMS)
    (40, 70.0, 40.0, 30.0, 20.0, {2: 0.6}),            # D: kept; ties H on score, lower anchor first
    (41, 80.0, 40.0, 30.0, 20.0, {2: 0.55}),           # E: IoU with D 0.5 <= 0.7: kept
    (42, 50.0, 20.0, 10.0, 10.0, {3: 0.25}),           # F: score == threshold, not above: dropped
    (100, 6.0, 8.0, 14.0, 10.0, {3: 0.7, 4: 0.7}),     # G: tied classes -> the first (3); reaches the pad
    (101, 20.0, 55.0, 12.0, 12.0, {0: 0.6}),           # H: kept, after D
]
# Expected survivors by construction: anchor order after sorting by score (ties: lower anchor first).
EXPECTED_ORDER = [(10, 0), (12, 1), (100, 3), (40, 2), (101, 0), (41, 2)]
MAX_DET_CASE = 3  # decoding with max_detections=3 keeps the first three of EXPECTED_ORDER


def yolo_output(anchors: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    nc = len(YOLO_CLASSES)
    out = np.zeros((1, 4 + nc, anchors), dtype=np.float32)
    h, w = YOLO_SIZE
    out[0, 0] = rng.uniform(0, w, anchors)
    out[0, 1] = rng.uniform(0, h, anchors)
    out[0, 2:4] = rng.uniform(2, 20, (2, anchors))
    out[0, 4:] = rng.uniform(0, 0.2, (nc, anchors))
    for anchor, cx, cy, bw, bh, scores in PLANTED:
        out[0, :4, anchor] = (cx, cy, bw, bh)
        out[0, 4:, anchor] = rng.uniform(0, 0.1, nc)
        for cls, score in scores.items():
            out[0, 4 + cls, anchor] = score
    return out


# Planted logits: a clear winner, a tie (3 and 7: 3 first), and negative values.
VIT_LOGITS = np.array([0.5, -1.0, 3.25, 2.0, -0.5, 1.5, 0.0, 2.0, 4.75, -2.0], dtype=np.float32)
VIT_EXPECTED_TOP5 = [8, 2, 3, 7, 5]


def build(out: Path) -> dict[str, Any]:
    """Write every golden file under `out` and return the index (also written as golden.json)."""
    files: dict[str, np.ndarray] = {}

    # YOLO: a wide image letterboxed into 64x96 (downscale 0.6, 5 px of padding top and bottom).
    yolo_img = make_image(160, 90, seed=1)
    ym = yolo_manifest(anchors=126)
    files["yolo_image.npy"] = yolo_img
    lb_img, lb = letterbox(yolo_img, YOLO_SIZE, ym["preprocess"]["pad_value"])
    tensor, lb2 = preprocess_image(yolo_img, ym["preprocess"])
    assert lb2 == lb
    files["yolo_letterbox.npy"] = lb_img
    files["yolo_input.npy"] = tensor
    raw = yolo_output(126, seed=2)
    files["yolo_output.npy"] = raw
    by_anchor = {p[0]: p for p in PLANTED}
    detections = []
    for anchor, cls in EXPECTED_ORDER:
        _, cx, cy, bw, bh, scores = by_anchor[anchor]
        box = np.array([[cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]], dtype=np.float32)
        detections.append({"anchor": anchor, "class_id": cls, "label": YOLO_CLASSES[cls],
                           "score": float(np.float32(scores[cls])), "box": box[0].tolist(),
                           "box_source": lb.to_source(box)[0].tolist()})

    # ViT: a small image (44x30) upscaled so its shorter side is 36, then center-cropped to 32x32.
    vit_img = make_image(44, 30, seed=3)
    vm = vit_manifest()
    files["vit_image.npy"] = vit_img
    files["vit_crop.npy"] = resize_crop(vit_img, VIT_SIZE, VIT_SHORTER)
    files["vit_input.npy"], _ = preprocess_image(vit_img, vm["preprocess"])
    files["vit_logits.npy"] = VIT_LOGITS[None]
    e = np.exp(VIT_LOGITS.astype(np.float64) - VIT_LOGITS.max())
    probs = e / e.sum()
    top5 = [{"class_id": i, "label": VIT_CLASSES[i], "probability": float(np.float32(probs[i])),
             "logit": float(VIT_LOGITS[i])} for i in VIT_EXPECTED_TOP5]

    # Plain bilinear resizes of one more image, compared pixel for pixel with OpenCV.
    resize_src = make_image(24, 16, seed=4)
    files["resize_src.npy"] = resize_src
    resize_cases = []
    for w, h in RESIZE_TARGETS:
        name = f"resize_{w}x{h}.npy"
        files[name] = _resize_bilinear(resize_src, w, h)
        resize_cases.append({"width": w, "height": h, "file": name})

    for name, array in files.items():
        write_bytes(out / name, npy_bytes(array))
    # The samples read image files: the same pixels as PNG (lossless).
    write_bytes(out / "yolo_image.png", png_bytes(yolo_img))
    write_bytes(out / "vit_image.png", png_bytes(vit_img))
    write_json(out / "yolo_manifest.json", ym)
    write_json(out / "vit_manifest.json", vm)
    index = {
        "schema": "orin-trt/golden@1",
        "tolerance": {"uint8_lsb": 1, "uint8_exact_fraction": 0.99, "float_abs": 1e-5, "box_abs": 1e-3},
        "yolo": {
            "manifest": "yolo_manifest.json", "image": "yolo_image.npy", "image_png": "yolo_image.png", "letterboxed": "yolo_letterbox.npy",
            "input": "yolo_input.npy", "output": "yolo_output.npy",
            "letterbox": {"ratio": lb.ratio, "pad_left": lb.pad_left, "pad_top": lb.pad_top},
            "detections": detections, "max_detections_case": MAX_DET_CASE,
        },
        "vit": {"manifest": "vit_manifest.json", "image": "vit_image.npy", "image_png": "vit_image.png", "cropped": "vit_crop.npy",
                "input": "vit_input.npy", "logits": "vit_logits.npy", "top5": top5},
        "resize": {"source": "resize_src.npy", "cases": resize_cases},
    }
    write_json(out / "golden.json", index)
    return index


def npy_bytes(array: np.ndarray) -> bytes:
    """The .npy encoding (format 1.0, C order) as bytes, so it can be written atomically."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def png_bytes(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA, help=f"output folder (default: {DATA})")
    args = parser.parse_args()
    build(args.out)
    print(f"golden vectors written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
