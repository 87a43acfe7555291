"""`orin-trt deploy`: Triton model repositories and DeepStream nvinfer configs from a manifest, checked
for the fields those tools require. The manifests are the golden ones (tests/golden/data) beside a
stand-in engine file: deploy copies the engine and never parses it."""

from __future__ import annotations

import configparser
import hashlib
import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pipeline.cli import main
from pipeline.deploy.deepstream import nvinfer_config
from pipeline.deploy.source import load_manifest_file
from tests.golden.make_golden import DATA

ENGINE_BYTES = b"stand-in plan bytes: deploy copies the engine, it never parses it\n" * 16


def place_engine(root: Path, model: str, precision: str, golden: str, **changes: object) -> Path:
    """engines/<model>/<precision>/model.engine + model.engine.json from a golden manifest."""
    manifest = json.loads((DATA / golden).read_text())
    manifest.update(model=model, precision=precision)
    manifest["engine"] = {"file": "model.engine", "bytes": len(ENGINE_BYTES),
                          "sha256": hashlib.sha256(ENGINE_BYTES).hexdigest()}
    for key, value in changes.items():
        manifest[key] = value
    folder = root / model / precision
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.engine").write_bytes(ENGINE_BYTES)
    (folder / "model.engine.json").write_text(json.dumps(manifest))
    return folder / "model.engine.json"


def read_pbtxt(path: Path) -> model_config_pb2.ModelConfig:
    """Triton's own schema (model_config.proto as tritonclient ships it): an unknown field, a wrong type or a
    bad enum value fails here as it fails in tritonserver when it loads the model."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def read_nvinfer(path: Path) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    cfg.optionxform = str  # nvinfer keys are case-sensitive
    cfg.read_string(path.read_text())
    return cfg


def test_triton_repository_for_yolo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "engines"
    place_engine(root, "yolo", "int8", "yolo_manifest.json")
    out = tmp_path / "repo"
    assert main(["deploy", "--model", "yolo", "--precision", "int8", "--format", "triton", "--root", str(root),
                 "--out", str(out)]) == 0
    assert "tritonserver --model-repository" in capsys.readouterr().out
    model = out / "yolo"
    assert (model / "1" / "model.plan").read_bytes() == ENGINE_BYTES  # version folder, Triton's default name
    cfg = read_pbtxt(model / "config.pbtxt")
    assert cfg.name == "yolo" == model.name  # Triton requires the folder and the name to agree
    assert cfg.platform == "tensorrt_plan"
    assert cfg.max_batch_size == 4  # profile max batch; dims then leave the batch axis out
    (inp,) = cfg.input
    assert (inp.name, inp.data_type, list(inp.dims)) == ("images", 11, [3, 64, 96])  # 11 = TYPE_FP32
    (outp,) = cfg.output
    assert (outp.name, outp.data_type, list(outp.dims)) == ("output0", 11, [9, 126])
    assert outp.label_filename == "labels.txt"
    assert (model / "labels.txt").read_text().splitlines() == ["person", "bicycle", "car", "dog", "stop sign"]
    assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert cfg.instance_group[0].count == 1
    assert inp.data_type == model_config_pb2.TYPE_FP32
    assert cfg.HasField("dynamic_batching")


def test_triton_fixed_batch_and_dynamic_dims(tmp_path: Path) -> None:
    manifest = json.loads((DATA / "vit_manifest.json").read_text())
    io = {"inputs": [{"name": "pixel_values", "dtype": "float16", "shape": [1, 3, -1, -1]}],
          "outputs": [{"name": "logits", "dtype": "float16", "shape": [1, 10]}]}
    profiles = [{"name": "default", "shapes": {"pixel_values": {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64],
                                                                "max": [1, 3, 96, 96]}}}]
    path = place_engine(tmp_path, "vit", "fp16", "vit_manifest.json", io=io, profiles=profiles,
                        preprocess=manifest["preprocess"])
    assert main(["deploy", "--manifest", str(path), "--format", "triton", "--out", str(tmp_path / "repo"),
                 "--name", "vit_fp16"]) == 0
    cfg = read_pbtxt(tmp_path / "repo" / "vit_fp16" / "config.pbtxt")
    assert cfg.name == "vit_fp16" and cfg.max_batch_size == 0  # batch fixed at 1: full shapes, no batcher
    assert list(cfg.input[0].dims) == [1, 3, -1, -1] and cfg.input[0].data_type == 10  # TYPE_FP16
    assert list(cfg.output[0].dims) == [1, 10]
    assert not cfg.HasField("dynamic_batching")


def test_deepstream_detector_config(tmp_path: Path) -> None:
    path = place_engine(tmp_path, "yolo", "int8", "yolo_manifest.json")
    out = tmp_path / "ds"
    assert main(["deploy", "--manifest", str(path), "--format", "deepstream", "--out", str(out),
                 "--custom-lib", "/opt/lib/libnvdsinfer_orin_yolo.so"]) == 0
    config = out / "config_infer_yolo.txt"
    cfg = read_nvinfer(config)
    assert cfg.sections() == ["property", "class-attrs-all"]
    p = cfg["property"]
    assert (config.parent / p["model-engine-file"]).read_bytes() == ENGINE_BYTES
    labels = (config.parent / p["labelfile-path"]).read_text().splitlines()
    assert len(labels) == int(p["num-detected-classes"]) == 5
    assert p["network-type"] == "0" and p["network-mode"] == "1"  # detector, INT8
    assert p["infer-dims"] == "3;64;96" and p["model-color-format"] == "0"
    assert float(p["net-scale-factor"]) == pytest.approx(1 / 255, rel=1e-9)
    assert [float(v) for v in p["offsets"].split(";")] == [0.0, 0.0, 0.0]
    assert p["maintain-aspect-ratio"] == "1" and p["symmetric-padding"] == "1"
    assert p["parse-bbox-func-name"] == "NvDsInferParseOrinYolo"
    assert p["custom-lib-path"] == "/opt/lib/libnvdsinfer_orin_yolo.so"
    assert p["output-blob-names"] == "output0" and p["cluster-mode"] == "2"
    attrs = cfg["class-attrs-all"]
    assert float(attrs["pre-cluster-threshold"]) == 0.25 and float(attrs["nms-iou-threshold"]) == 0.7
    assert attrs["topk"] == "300"
    assert "NOTE: nvinfer pads the letterbox with black" in config.read_text()


def test_deepstream_classifier_normalization_and_labels(tmp_path: Path) -> None:
    path = place_engine(tmp_path, "vit", "fp16", "vit_manifest.json")
    art = load_manifest_file(path)
    text, notes = nvinfer_config(art, "model.engine", "labels.txt")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    p = parser["property"]
    assert p["network-type"] == "1" and p["network-mode"] == "2" and "parse-bbox-func-name" not in p
    # nvinfer's y = k * (x - offset_c) against the manifest's (x * scale - mean_c) / std_c: exact up to the
    # single k standing for three stds, which the config and the notes both state.
    pre = art.manifest["preprocess"]
    k, offsets = float(p["net-scale-factor"]), [float(v) for v in p["offsets"].split(";")]
    for c in range(3):
        for x in (0.0, 128.0, 255.0):
            expected = (x * pre["scale"] - pre["mean"][c]) / pre["std"][c]
            assert k * (x - offsets[c]) == pytest.approx(expected, rel=0.03, abs=0.03)
    assert any("per-channel std" in n for n in notes) and any("center-crops" in n for n in notes)
    assert main(["deploy", "--manifest", str(path), "--format", "deepstream", "--out", str(tmp_path / "ds")]) == 0
    labels = (tmp_path / "ds" / "labels.txt").read_text().splitlines()
    assert len(labels) == 1 and labels[0].split(";") == art.class_names  # classifier: one line, ';'


def test_default_output_lands_beside_the_engine(tmp_path: Path) -> None:
    path = place_engine(tmp_path, "yolo", "int8", "yolo_manifest.json")
    assert main(["deploy", "--manifest", str(path), "--format", "triton"]) == 0
    assert (path.parent / "triton" / "yolo" / "config.pbtxt").exists()


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("none", ["--format", "triton"], "no engine manifest; build the engine first"),
    ("short", ["--format", "triton"], "records"),
    ("llm", ["--format", "deepstream"], "not 'causal_lm'"),
    ("int4", ["--format", "deepstream"], "precision int4-awq has no nvinfer network-mode"),
    ("fp8", ["--format", "triton"], "dtype fp8, which Triton has no type for"),
    ("yolo", ["--format", "deepstream", "--batch-size", "8"], "--batch-size 8: the engine's profile takes batches 1..4"),
])
def test_bad_input_names_the_file_or_option(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str,
                                            args: list[str], message: str) -> None:
    path = tmp_path / "yolo" / "int8" / "model.engine.json"
    if setup != "none":
        path = place_engine(tmp_path, "yolo", "int8", "yolo_manifest.json")
        manifest = json.loads(path.read_text())
        if setup == "short":
            (path.parent / "model.engine").write_bytes(b"truncated")
        elif setup == "llm":
            manifest["postprocess"] = {"type": "causal_lm"}
        elif setup == "int4":
            manifest["precision"] = "int4-awq"
        elif setup == "fp8":
            manifest["io"]["outputs"][0]["dtype"] = "fp8"
        path.write_text(json.dumps(manifest))
    assert main(["deploy", "--manifest", str(path), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("orin-trt: error: ") and message in err


def test_triton_lists_every_profile_and_unpins_what_they_vary(tmp_path: Path) -> None:
    """An LLM-like engine: prefill pins the past length to 0, decode lets it grow."""
    io = {"inputs": [{"name": "input_ids", "dtype": "int64", "shape": [-1, -1]},
                     {"name": "past", "dtype": "float16", "shape": [-1, 2, -1, 32]}],
          "outputs": [{"name": "logits", "dtype": "float32", "shape": [-1, -1, 512]}]}
    profiles = [
        {"name": "prefill", "shapes": {"input_ids": {"min": [1, 1], "opt": [1, 64], "max": [4, 128]},
                                       "past": {"min": [1, 2, 0, 32], "opt": [1, 2, 0, 32], "max": [4, 2, 0, 32]}}},
        {"name": "decode", "shapes": {"input_ids": {"min": [1, 1], "opt": [1, 1], "max": [2, 1]},
                                      "past": {"min": [1, 2, 1, 32], "opt": [1, 2, 64, 32], "max": [2, 2, 255, 32]}}},
    ]
    path = place_engine(tmp_path, "llama", "fp16", "yolo_manifest.json", io=io, profiles=profiles,
                        preprocess=None, postprocess={"type": "causal_lm", "output": "logits"})
    assert main(["deploy", "--manifest", str(path), "--format", "triton", "--out", str(tmp_path / "repo")]) == 0
    cfg = read_pbtxt(tmp_path / "repo" / "llama" / "config.pbtxt")
    assert cfg.max_batch_size == 2  # the decode profile stops at 2
    assert [list(i.dims) for i in cfg.input] == [[-1], [2, -1, 32]]  # past length: 0 in prefill, 1..255 in decode
    assert [i.data_type for i in cfg.input] == [9, 10]  # TYPE_INT64, TYPE_FP16
    assert list(cfg.instance_group[0].profile) == ["0", "1"]


def test_the_schema_is_tritons_own(tmp_path: Path) -> None:
    """tritonclient's ModelConfig: what a look-alike would let through fails, and our config round-trips."""
    with pytest.raises(text_format.ParseError, match="max_batch"):
        text_format.Parse('name: "m"\nmax_batch: 4\n', model_config_pb2.ModelConfig())
    with pytest.raises(text_format.ParseError, match="TYPE_FLOAT32"):
        text_format.Parse('input [ { name: "x" data_type: TYPE_FLOAT32 dims: [ 3 ] } ]', model_config_pb2.ModelConfig())
    root = tmp_path / "engines"
    place_engine(root, "yolo", "int8", "yolo_manifest.json")
    assert main(["deploy", "--model", "yolo", "--precision", "int8", "--format", "triton", "--root", str(root),
                 "--out", str(tmp_path / "repo")]) == 0
    cfg = read_pbtxt(tmp_path / "repo" / "yolo" / "config.pbtxt")
    assert text_format.Parse(text_format.MessageToString(cfg), model_config_pb2.ModelConfig()) == cfg
    assert cfg.HasField("dynamic_batching")


def test_a_weight_stripped_engine_is_not_deployed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "engines"
    place_engine(root, "yolo", "int8", "yolo_manifest.json", builder={"strip_weights": True})
    assert main(["deploy", "--model", "yolo", "--precision", "int8", "--format", "triton", "--root", str(root),
                 "--out", str(tmp_path / "repo")]) == 2
    assert "weight-stripped plan (--strip-weights)" in capsys.readouterr().err
