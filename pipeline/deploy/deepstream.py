"""A DeepStream nvinfer config (GLib key file) for a detector or classifier engine, plus its labels.

    <out>/config_infer_<model>.txt   [property] (+ [class-attrs-all] for detectors)
    <out>/model.engine               the engine, referenced relative to the config
    <out>/labels.txt                 detector: one label per line; classifier: one line, ';'-separated

nvinfer computes `y = net-scale-factor * (x - offsets[c])`; the manifest's `(x * scale - mean[c]) / std[c]`
is that with net-scale-factor = scale / std and offsets = mean / scale, exact when std is the same for
every channel. Where nvinfer cannot express the manifest (per-channel std, pad value, center crop), the
config says so in a NOTE comment and the command prints it.

YOLO outputs [4 + classes, anchors] need the parser in jetson/cpp/deepstream (NvDsInferParseOrinYolo,
built by `make cpp` where DeepStream's headers exist); it decodes, nvinfer clusters (NMS).
"""

from __future__ import annotations

from pathlib import Path

from ..core.artifacts import write_text
from ..errors import PipelineError
from ..recipe.precisions import PRECISIONS
from .source import EngineArtifacts, copy_file, write_labels

# nvinfer's network-mode values, from the precision table (int4-awq has none).
NETWORK_MODE = {n: p.nvinfer_network_mode for n, p in PRECISIONS.items() if p.nvinfer_network_mode is not None}
DETECTOR, CLASSIFIER = 0, 1  # network-type
YOLO_PARSER = "NvDsInferParseOrinYolo"
DEFAULT_CUSTOM_LIB = "/opt/orin-trt/jetson/build/deepstream/libnvdsinfer_orin_yolo.so"


def _fmt(x: float) -> str:
    """12 significant digits: beyond float32's precision (nvinfer's), without binary noise (123.675)."""
    return f"{x:.12g}"


def _normalization(pre: dict, notes: list[str]) -> tuple[float, list[float]]:
    scale = float(pre.get("scale", 1.0))
    mean = [float(m) for m in pre.get("mean", [0.0, 0.0, 0.0])]
    std = [float(s) for s in pre.get("std", [1.0, 1.0, 1.0])]
    if scale == 0:
        raise PipelineError("preprocess.scale: 0 leaves nothing of the image")
    std_used = sum(std) / len(std)
    worst = max(abs(std_used / s - 1.0) for s in std)
    if worst > 1e-6:
        notes.append(f"nvinfer has one scale factor: per-channel std {std} approximated by {std_used:.6g} "
                     f"(inputs off by up to {worst:.1%}); use nvdspreprocess for exact normalization")
    return scale / std_used, [m / scale for m in mean]


def nvinfer_config(art: EngineArtifacts, engine_file: str, labels_file: str, batch_size: int = 1,
                   custom_lib: str = DEFAULT_CUSTOM_LIB) -> tuple[str, list[str]]:
    """The config text and the notes on what nvinfer does differently from the manifest."""
    m = art.manifest
    pre, post = m.get("preprocess"), m.get("postprocess") or {}
    kind = post.get("type")
    if not pre or kind not in ("yolo_detect", "classification"):
        raise PipelineError(f"{art.manifest_path}: DeepStream configs are made for image detectors and classifiers "
                            f"(postprocess.type yolo_detect or classification), not {kind!r}")
    precision = m["precision"]
    if precision not in NETWORK_MODE:
        raise PipelineError(f"{art.manifest_path}: precision {precision} has no nvinfer network-mode "
                            f"({', '.join(NETWORK_MODE)})")
    if pre.get("layout", "NCHW") != "NCHW":
        raise PipelineError(f"{art.manifest_path}: preprocess.layout {pre.get('layout')}: nvinfer feeds NCHW only")
    ranges = art.input_ranges(pre["input"])
    if ranges and not int(ranges[0]["min"][0]) <= batch_size <= int(ranges[0]["max"][0]):
        raise PipelineError(f"--batch-size {batch_size}: the engine's profile takes batches "
                            f"{ranges[0]['min'][0]}..{ranges[0]['max'][0]}")
    notes: list[str] = []
    scale, offsets = _normalization(pre, notes)
    height, width = (int(v) for v in pre["size"])
    names = art.class_names
    if not names:
        raise PipelineError(f"{art.manifest_path}: postprocess.class_names is empty; nvinfer needs a label file")
    outputs = [t["name"] for t in m["io"]["outputs"]]
    prop = {
        "gpu-id": 0,
        "model-engine-file": engine_file,
        "labelfile-path": labels_file,
        "batch-size": batch_size,
        "network-mode": NETWORK_MODE[precision],
        "network-type": DETECTOR if kind == "yolo_detect" else CLASSIFIER,
        "process-mode": 1,
        "gie-unique-id": 1,
        "interval": 0,
        "infer-dims": f"3;{height};{width}",
        "net-scale-factor": _fmt(scale),
        "offsets": ";".join(_fmt(o) for o in offsets),
        "model-color-format": 1 if pre.get("color", "RGB") == "BGR" else 0,
        "scaling-filter": 1,  # bilinear, as the pipeline resizes
        "output-blob-names": ";".join(outputs),
    }
    dla = (m.get("system") or {}).get("dla_core")
    if dla is not None:
        prop.update({"enable-dla": 1, "use-dla-core": int(dla)})
    sections = {"property": prop}
    if kind == "yolo_detect":
        prop.update({
            "num-detected-classes": len(names),
            "maintain-aspect-ratio": 1 if pre.get("resize") == "letterbox" else 0,
            "symmetric-padding": 1,
            "cluster-mode": 2,  # NMS by nvinfer; the parser only decodes
            "parse-bbox-func-name": YOLO_PARSER,
            "custom-lib-path": custom_lib,
        })
        sections["class-attrs-all"] = {
            "pre-cluster-threshold": _fmt(float(post.get("conf_threshold", 0.25))),
            "nms-iou-threshold": _fmt(float(post.get("iou_threshold", 0.7))),
            "topk": int(post.get("max_detections", 300)),
        }
        if pre.get("resize") == "letterbox" and int(pre.get("pad_value", 114)) != 0:
            notes.append(f"nvinfer pads the letterbox with black, the pipeline with {pre.get('pad_value', 114)}: "
                         "scores near the image borders may differ slightly")
    else:
        prop.update({"classifier-threshold": 0.0, "classifier-async-mode": 0})
        if pre.get("resize") == "resize_crop":
            notes.append(f"nvinfer scales the whole frame or object to {height}x{width}; the pipeline resizes the "
                         f"shorter side to {pre.get('resize_shorter')} and center-crops (crop upstream to match)")
    lines = [f"# Generated by `orin-trt deploy --format deepstream` from {art.manifest_path}"]
    lines += [f"# NOTE: {n}" for n in notes]
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k}={v}" for k, v in values.items()]
    return "\n".join(lines) + "\n", notes


def config_name(art: EngineArtifacts) -> str:
    return f"config_infer_{art.model}.txt"


def write_config(art: EngineArtifacts, out: Path, batch_size: int = 1,
                 custom_lib: str = DEFAULT_CUSTOM_LIB) -> tuple[Path, list[str]]:
    """Write the config, the labels and a copy of the engine under `out`; returns the config and notes."""
    out = Path(out)
    text, notes = nvinfer_config(art, "model.engine", "labels.txt", batch_size, custom_lib)
    kind = art.manifest["postprocess"]["type"]
    copy_file(art.engine_path, out / "model.engine")
    # nvinfer reads a classifier's labels as one line per output layer, ';' between classes.
    write_labels(out / "labels.txt", art.class_names, "\n" if kind == "yolo_detect" else ";")
    path = out / config_name(art)
    write_text(path, text)
    return path, notes
