"""C++ vs Python on real photos (ultralytics' bus.jpg and zidane.jpg), beyond the golden vectors.

1. Preprocessing: the photos' pixels (decoded once, by PIL, saved as PNG) through the C++ samples
   (`--save-input`) and through pipeline.processing.image, for a YOLO letterbox to 640 and a ViT resize-crop
   (shorter side 256, crop 224): share of identical tensor values and the largest difference.
2. With --onnx: a real YOLO output (ONNX Runtime, CPU) on bus.jpg, decoded by pipeline.processing.detection and by
   yolo_detect (`--raw-output`) at low thresholds (random weights score low), compared box for box.

    make cpp && .venv/bin/python tests/golden/parity_photos.py [--onnx engines/yolo/model.onnx]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.processing.detection import decode_yolo  # noqa: E402
from pipeline.processing.image import load_rgb, preprocess_image  # noqa: E402

DATA = REPO / "tests" / "golden" / "data"
SAMPLES = REPO / "jetson" / "build" / "samples"


def manifests(tmp: Path) -> dict[str, tuple[Path, str, Path]]:
    """kind -> (manifest, sample, a raw output the sample may decode) at deployment sizes."""
    yolo = json.loads((DATA / "yolo_manifest.json").read_text())
    yolo["preprocess"]["size"] = [640, 640]
    vit = json.loads((DATA / "vit_manifest.json").read_text())
    vit["preprocess"].update(size=[224, 224], resize_shorter=256)
    out = {}
    for kind, m, sample, raw in [("yolo", yolo, "yolo_detect", "yolo_output.npy"),
                                 ("vit", vit, "vit_classify", "vit_logits.npy")]:
        (tmp / f"{kind}.json").write_text(json.dumps(m))
        out[kind] = (tmp / f"{kind}.json", sample, DATA / raw)
    return out


def run_sample(sample: str, manifest: Path, image: Path, raw: Path, tmp: Path, *extra: str) -> None:
    subprocess.run([str(SAMPLES / sample), "--manifest", str(manifest), "--image", str(image), "--raw-output", str(raw),
                    "--json", str(tmp / "out.json"), *extra], check=True, capture_output=True)


def preprocessing(photos: list[Path], tmp: Path) -> None:
    from PIL import Image

    for photo in photos:
        rgb = load_rgb(photo)
        png = tmp / f"{photo.stem}.png"
        Image.fromarray(rgb).save(png)
        for kind, (manifest, sample, raw) in manifests(tmp).items():
            spec = json.loads(manifest.read_text())["preprocess"]
            run_sample(sample, manifest, png, raw, tmp, "--save-input", str(tmp / "in.npy"))
            diff = np.abs(np.load(tmp / "in.npy") - preprocess_image(rgb, spec)[0])
            lsb = float(spec["scale"]) / min(spec["std"])
            print(f"{photo.name} {rgb.shape[1]}x{rgb.shape[0]} -> {kind} {spec['size']}: identical values "
                  f"{(diff == 0).mean():.4%}, max |diff| {diff.max():.3g} ({diff.max() / lsb:.2f} LSB)")


def decoding(onnx: Path, photo: Path, tmp: Path) -> None:
    import onnxruntime as ort

    manifest, _, _ = manifests(tmp)["yolo"]
    spec = json.loads(manifest.read_text())["preprocess"]
    x, lb = preprocess_image(load_rgb(photo), spec)
    out = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, {spec["input"]: x})[0]
    np.save(tmp / "raw.npy", out)
    for conf in (1e-4, 1e-5):
        (dets,) = decode_yolo(out, conf, 0.7, 300)
        run_sample("yolo_detect", manifest, photo, tmp / "raw.npy", tmp, "--conf", str(conf))
        cpp = json.loads((tmp / "out.json").read_text())["detections"]
        same = len(cpp) == len(dets) and all(c["class_id"] == int(k) for c, k in zip(cpp, dets.classes, strict=True))
        boxes = np.array([c["box"] for c in cpp], dtype=np.float64).reshape(-1, 4)
        worst = float(np.abs(boxes - lb.to_source(dets.boxes)).max()) if same and len(cpp) else 0.0
        print(f"{photo.name} real YOLO output, conf {conf:g}: python {len(dets)} boxes, C++ {len(cpp)}, "
              f"same classes and order: {same}, max |box diff| {worst:.3g} px")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=None, help="a YOLO ONNX (e.g. engines/yolo/model.onnx)")
    args = parser.parse_args()
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        preprocessing([assets / "bus.jpg", assets / "zidane.jpg"], tmp)
        if args.onnx:
            decoding(args.onnx, assets / "bus.jpg", tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
