"""A tiny conditional UNet through every stage and precision with its weights in external data (the
>2 GB path, forced): recorded calibration, QDQ / AutoCast graphs, engines the TensorRT-RTX builder built,
manifests with multi-file hashes, reports with per-timestep and denoising-loop accuracy."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.cli import main
from pipeline.core.artifacts import Layout, read_json, sha256_files

PRECISIONS = ["fp32", "fp16", "int8"]


def cli(ws: dict[str, Path], *args: str) -> int:
    return main([*args, "--model", str(ws["recipe"]), "--root", str(ws["root"]), "--calib-root", str(ws["calib"])])


@pytest.fixture(scope="module")
def built(unet_ws: dict[str, Path]) -> Layout:
    for precision in PRECISIONS:
        assert cli(unet_ws, "engine", "--precision", precision) == 0
        assert cli(unet_ws, "profile", "--precision", precision) == 0
    return Layout(unet_ws["root"], "unet-test")


def _data(onnx_path: Path) -> Path:
    return Path(str(onnx_path) + ".data")


def test_export_has_three_dynamic_inputs_and_external_weights(built: Layout) -> None:
    header = onnx.load(str(built.exported_onnx), load_external_data=False)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in header.graph.input}
    assert inputs == {"sample": ["batch", 4, "height", "width"], "timestep": ["batch"],
                      "encoder_hidden_states": ["batch", "sequence", 32]}
    # Weights live in model.onnx.data, referenced by that name (the header alone is small).
    locations = {e.value for t in header.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"model.onnx.data"} and _data(built.exported_onnx).stat().st_size > 3_000_000
    assert built.exported_onnx.stat().st_size < 1_000_000
    report = read_json(built.export_report)
    assert report["parity"]["outputs"]["out_sample"]["cosine"] > 0.9999 and report["parity"]["feeds"] == 3


def test_calibration_is_recorded_over_the_denoising_schedule(built: Layout, unet_ws: dict[str, Path]) -> None:
    folder = unet_ws["calib"] / "unet-test" / "denoise"
    files = sorted(folder.glob("sample_*.npz"))
    assert len(files) == 2 * 4  # runs x steps
    timesteps = sorted({float(np.load(f)["timestep"][0]) for f in files})
    assert len(timesteps) == 4 and timesteps[0] < 100 and timesteps[-1] > 700
    with np.load(files[0]) as first:
        assert first["sample"].shape == (2, 4, 16, 16) and first["encoder_hidden_states"].shape == (2, 8, 32)
    cal = read_json(built.calibrate_report("int8"))
    assert cal["calibration"]["samples"] == 8 and "sampling runs" in cal["calibration"]["description"]


def test_every_precision_keeps_external_data_and_the_manifest_hashes_both_files(built: Layout) -> None:
    for precision in PRECISIONS:
        onnx_path = built.calibrated_onnx(precision)
        assert _data(onnx_path).exists(), precision
        manifest = read_json(built.manifest(precision))
        assert manifest["onnx"]["external_data"] is True
        assert manifest["onnx"]["sha256"] == sha256_files([onnx_path, _data(onnx_path)])
        assert built.engine(precision).stat().st_size == manifest["engine"]["bytes"] > 0
        calibrate_stamp = read_json(built.stamp(f"calibrate-{precision}"))
        assert "model.onnx.data" in calibrate_stamp["inputs"]["files"]  # relative to the model folder


def test_int8_is_max_qdq_with_attention_blocks_kept_out(built: Layout) -> None:
    model = onnx.load(str(built.calibrated_onnx("int8")))
    producers = {o: n for n in model.graph.node for o in n.output}

    def dq_fed(node: onnx.NodeProto) -> bool:
        return any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input)

    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert sum(dq_fed(n) for n in convs) > len(convs) // 2
    attention = [n for n in model.graph.node if re.search(r"/attentions\.\d+/", n.name)]
    assert attention and not any(dq_fed(n) for n in attention)
    assert not any(dq_fed(n) for n in model.graph.node if n.name.startswith("/unet/conv_in/"))
    # TensorRT takes INT8 DequantizeLinear only (no INT32 bias).
    inits = {i.name: i.data_type for i in model.graph.initializer}
    assert {inits.get(n.input[0]) for n in model.graph.node if n.op_type == "DequantizeLinear"} <= {
        onnx.TensorProto.INT8, None}
    assert read_json(built.manifest("int8"))["calibration"]["method"] == "max"


def test_fp16_is_written_into_the_graph(built: Layout) -> None:
    model = onnx.load(str(built.calibrated_onnx("fp16")))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input)


def test_reports_carry_per_timestep_error_and_the_denoising_loop(built: Layout) -> None:
    for precision in ("fp16", "int8"):
        report = read_json(built.report_json(precision))
        task = report["accuracy"]["task"]
        per_t = [k for k in task if k.endswith(" cosine")]
        assert len(per_t) == 3 and task["worst_cosine"] == min(task[k] for k in per_t)
        loop = report["family_metrics"]["by_runner"]
        assert set(loop) == {"onnxrt-fp32", f"onnxrt-{precision}"}
        assert loop["onnxrt-fp32"]["latent_psnr_db"] == "inf"  # the reference against itself
        assert loop[f"onnxrt-{precision}"]["latent_psnr_db"] > (50 if precision == "fp16" else 15)
        assert "DDIM loop" in built.report_md(precision).read_text()
    fp16 = read_json(built.report_json("fp16"))["accuracy"]
    assert fp16["task"]["worst_cosine"] > 0.9999 and fp16["gate"]["passed"]


def test_manifest_describes_noise_prediction(built: Layout) -> None:
    manifest = read_json(built.manifest("fp16"))
    assert manifest["postprocess"]["type"] == "noise_prediction"
    assert manifest["postprocess"]["prediction_type"] == "epsilon"
    assert manifest["postprocess"]["scheduler"]["beta_schedule"] == "scaled_linear"
    assert manifest["preprocess"]["latent_channels"] == 4
    assert manifest["profiles"][0]["shapes"]["sample"]["max"] == [2, 4, 16, 16]
    assert [i["name"] for i in manifest["io"]["inputs"]] == ["sample", "timestep", "encoder_hidden_states"]


def test_rerun_is_skipped_and_calibration_not_rerecorded(built: Layout, unet_ws: dict[str, Path]) -> None:
    folder = unet_ws["calib"] / "unet-test" / "denoise"
    before = {f: f.stat().st_mtime_ns for f in folder.iterdir()}
    assert cli(unet_ws, "engine", "--precision", "int8") == 0
    assert {f: f.stat().st_mtime_ns for f in folder.iterdir()} == before
    assert read_json(built.stamp("calibrate-int8"))["stage"] == "calibrate[int8]"


def test_orin_bundle_carries_the_external_data(built: Layout, unet_ws: dict[str, Path]) -> None:
    """A host that is not the Orin writes a bundle; the weights file must travel with the ONNX."""
    from pipeline.stages.bundle import bundle_dir

    assert cli(unet_ws, "engine", "--precision", "fp16", "--target", "orin-agx-64") == 0
    folder = bundle_dir(built, "fp16")
    assert (folder / "model.onnx").exists() and (folder / "model.onnx.data").exists()
    assert (folder / "model.onnx.data").read_bytes() == _data(built.calibrated_onnx("fp16")).read_bytes()
    listed = str(read_json(folder / "bundle.json")["files"])
    assert "model.onnx.data" in listed
