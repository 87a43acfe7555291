"""YOLO (yolo11n from its yaml, 320 px) through every stage, on real artifacts: ONNX that onnx.checker
and ONNX Runtime accept, engines the TensorRT-RTX builder really built, reports against FP32."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.cli import main
from pipeline.core.artifacts import Layout, read_json, sha256_file
from pipeline.recipe.loader import load_recipe

PRECISIONS = ["fp32", "fp16", "int8"]


def cli(ws: dict[str, Path], *args: str) -> int:
    return main([*args, "--model", str(ws["recipe"]), "--root", str(ws["root"]), "--calib-root", str(ws["calib"])])


@pytest.fixture(scope="module")
def built(workspace: dict[str, Path]) -> dict[str, Path]:
    for precision in PRECISIONS:
        assert cli(workspace, "engine", "--precision", precision) == 0
        assert cli(workspace, "profile", "--precision", precision) == 0
    return workspace


def layout(ws: dict[str, Path]) -> Layout:
    return Layout(ws["root"], "yolo-test")


def test_export_is_checked_dynamic_and_carries_metadata(built: dict[str, Path]) -> None:
    lay = layout(built)
    onnx.checker.check_model(str(lay.exported_onnx))
    model = onnx.load(str(lay.exported_onnx))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # dynamic batch
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["stride"] == "32" and "person" in meta["names"] and meta["imgsz"] == "[320, 320]"
    assert meta["orin_trt.random_weights"] == "true"
    report = read_json(lay.export_report)
    assert report["random_weights"] is True and any("RANDOM WEIGHTS" in n for n in report["notes"])
    assert report["parity"]["outputs"]["output0"]["cosine"] > 0.9999
    # The export is slimmed: far fewer nodes than the raw trace (~650 for yolo11n).
    assert report["nodes"] < 500


def test_precision_is_written_into_the_graph(built: dict[str, Path]) -> None:
    lay = layout(built)
    int8 = onnx.load(str(lay.calibrated_onnx("int8")))
    ops = [n.op_type for n in int8.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    # The head trap: nothing the recipe keeps out of INT8 may read a dequantized tensor.
    producers = {o: n for n in int8.graph.node for o in n.output}
    head = [n for n in int8.graph.node if n.name.startswith("/model.23/") and n.op_type in ("Concat", "Sigmoid")]
    assert head
    for node in head:
        for i in node.input:
            assert i not in producers or producers[i].op_type != "DequantizeLinear", node.name
    fp16 = onnx.load(str(lay.calibrated_onnx("fp16")))
    halves = [t for t in fp16.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) > 50
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # IO stays FP32
    fp32 = onnx.load(str(lay.calibrated_onnx("fp32")))
    assert "QuantizeLinear" not in {n.op_type for n in fp32.graph.node}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_manifest_describes_the_engine(built: dict[str, Path], precision: str) -> None:
    lay = layout(built)
    m = read_json(lay.manifest(precision))
    engine = lay.engine(precision)
    assert m["schema"] == "orin-trt/manifest@1" and m["precision"] == precision
    assert m["engine"]["sha256"] == sha256_file(engine) and m["engine"]["bytes"] == engine.stat().st_size
    assert engine.read_bytes()[:4] in (b"vtrt", b"ftrt")  # raw plan, no prefix: trtexec loads it as is
    assert m["onnx"]["sha256"] == sha256_file(lay.calibrated_onnx(precision))
    assert m["builder"]["backend"] == "tensorrt_rtx" and m["builder"]["strongly_typed"] is True
    assert m["io"]["inputs"] == [{"name": "images", "dtype": "float32", "shape": [-1, 3, -1, -1]}]
    assert m["io"]["outputs"][0]["name"] == "output0"
    shapes = m["profiles"][0]["shapes"]["images"]
    assert shapes == {"min": [1, 3, 320, 320], "opt": [1, 3, 320, 320], "max": [2, 3, 320, 320]}
    assert m["memory"]["weights_bytes"] > 0 and m["memory"]["activation_bytes"] > 0
    assert m["preprocess"]["resize"] == "letterbox" and m["preprocess"]["size"] == [320, 320]
    assert len(m["postprocess"]["class_names"]) == 80 and m["postprocess"]["class_names"][0] == "person"
    assert m["weights"]["random"] is True
    if precision == "fp32":
        assert m["calibration"] is None
    else:
        cal = read_json(lay.calibrate_report(precision))
        assert m["calibration"]["sha256"] == cal["calibration"]["sha256"]
    if precision == "int8":
        assert m["precision_detail"]["high_precision_dtype"] == "fp32"
        assert any("dfl" in p for p in m["precision_detail"]["kept_out"]["nodes"])
        assert "rounds the scores to 0" in m["precision_detail"]["kept_out"]["reason"]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_profile_report(built: dict[str, Path], precision: str) -> None:
    lay = layout(built)
    r = read_json(lay.report_json(precision))
    assert r["accuracy"]["gate"]["passed"]
    assert r["accuracy"]["outputs"]["output0"]["cosine"] >= 0.99
    assert "onnxrt-fp32" in r["latency"] and r["latency"]["onnxrt-fp32"]["p50_ms"] > 0
    trt = next(x for x in r["runners"] if x["name"] == "tensorrt")
    assert trt["status"] == "skipped" and "TensorRT-RTX" in trt["reason"]
    assert r["memory"]["engine_bytes"] == lay.engine(precision).stat().st_size
    md = lay.report_md(precision).read_text()
    assert "Random weights" in md and "## Latency" in md and "p50 ms" in md


def test_fp16_and_int8_engines_are_smaller_than_fp32(built: dict[str, Path]) -> None:
    lay = layout(built)
    w = {p: read_json(lay.manifest(p))["memory"]["weights_bytes"] for p in PRECISIONS}
    assert w["int8"] < w["fp16"] < w["fp32"]


def test_rerun_skips_and_force_redoes(built: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    lay = layout(built)
    before = lay.engine("int8").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert cli(built, "engine", "--precision", "int8") == 0
    assert time.perf_counter() - t0 < 3.0
    err = capsys.readouterr().err
    assert err.count("up to date, skipped") == 3
    assert lay.engine("int8").stat().st_mtime_ns == before
    assert cli(built, "build", "--precision", "int8", "--force") == 0
    assert "running (--force)" in capsys.readouterr().err
    assert lay.engine("int8").stat().st_mtime_ns != before


def test_changed_recipe_option_reruns_only_what_depends_on_it(built: dict[str, Path], capsys) -> None:
    import yaml

    raw = yaml.safe_load(built["recipe"].read_text())
    raw["build"]["workspace_mib"] = 512
    changed = built["base"] / "yolo-test-ws.yaml"
    changed.write_text(yaml.safe_dump(raw))
    assert main(["engine", "--precision", "fp32", "--model", str(changed), "--root", str(built["root"]),
                 "--calib-root", str(built["calib"])]) == 0
    err = capsys.readouterr().err
    assert "[export] up to date" in err and "[calibrate[fp32]] up to date" in err
    assert "[build[fp32]] running (changed: options)" in err
    assert read_json(layout(built).manifest("fp32"))["builder"]["workspace_bytes"] == 512 << 20


def test_engine_outputs_match_recipe_names(built: dict[str, Path]) -> None:
    recipe = load_recipe(str(built["recipe"]))
    assert recipe.name == "yolo-test"
    assert np.all(np.array(read_json(layout(built).manifest("int8"))["postprocess"]["stride"]) == [8, 16, 32])
