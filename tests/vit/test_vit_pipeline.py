"""A tiny ViT through every stage and precision on real artifacts (weights in external data, forced):
ONNX that ONNX Runtime runs, engines the TensorRT-RTX builder built, manifests and reports vs FP32."""

from __future__ import annotations

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
def built(vit_ws: dict[str, Path]) -> Layout:
    for precision in PRECISIONS:
        assert cli(vit_ws, "engine", "--precision", precision) == 0
        assert cli(vit_ws, "profile", "--precision", precision) == 0
    return Layout(vit_ws["root"], "vit-test")


def test_export_is_opset17_with_one_layernorm_op_and_dynamic_batch(built: Layout) -> None:
    model = onnx.load(str(built.exported_onnx))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("LayerNormalization") == 2 * 2 + 1  # two per layer and the final one, each a single op
    assert ops.count("Softmax") == 2 and "ReduceMean" not in ops
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].name == "pixel_values" and dims[0].dim_param and not dims[0].dim_value
    report = read_json(built.export_report)
    assert report["random_weights"] is True and any("RANDOM WEIGHTS" in n for n in report["notes"])
    assert report["parity"]["outputs"]["logits"]["cosine"] > 0.9999 and report["parity"]["feeds"] == 16


def test_forced_external_data_reaches_every_stage(built: Layout) -> None:
    for onnx_path in [built.exported_onnx, *(built.calibrated_onnx(p) for p in PRECISIONS)]:
        data = Path(str(onnx_path) + ".data")
        # Every weight lives in the data file (an INT8 ONNX's are a quarter of the float bytes, so sizes
        # do not tell: the header's references do).
        header = onnx.load(str(onnx_path), load_external_data=False)
        big = [t for t in header.graph.initializer if np.prod(t.dims) >= 1024]
        assert data.exists() and big, onnx_path
        assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in big), onnx_path
    for precision in PRECISIONS:
        manifest = read_json(built.manifest(precision))
        onnx_path = built.calibrated_onnx(precision)
        assert manifest["onnx"]["external_data"] is True
        assert manifest["onnx"]["sha256"] == sha256_files([onnx_path, Path(str(onnx_path) + ".data")])
        stamp = read_json(built.stamp(f"build-{precision}"))
        assert f"{precision}/model.onnx.data" in stamp["inputs"]["files"]  # the cache sees the weights


def _fed_by_dequantize(model: onnx.ModelProto, node_name: str) -> bool:
    producers = {o: n for n in model.graph.node for o in n.output}
    node = next(n for n in model.graph.node if n.name == node_name)
    return any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input)


def test_int8_quantizes_weight_matmuls_and_keeps_attention_and_head_out(built: Layout) -> None:
    model = onnx.load(str(built.calibrated_onnx("int8")))
    names = [n.name for n in model.graph.node]
    for layer in (0, 1):
        prefix = f"/model/vit/layers.{layer}"
        for quantized in ("attention/q_proj/MatMul", "attention/o_proj/MatMul", "mlp/fc1/MatMul", "mlp/fc2/MatMul"):
            assert _fed_by_dequantize(model, f"{prefix}/{quantized}"), quantized
        for kept in ("attention/MatMul", "attention/MatMul_1", "attention/Softmax", "layernorm_before/LayerNormalization"):
            assert not _fed_by_dequantize(model, f"{prefix}/{kept}"), kept
    assert not _fed_by_dequantize(model, next(n for n in names if "/classifier/" in n))
    manifest = read_json(built.manifest("int8"))
    assert manifest["precision_detail"]["kept_out"]["nodes"] == [r".*/attention/MatMul(_\d+)?$", ".*/classifier/.*"]
    assert manifest["calibration"]["samples"] == 8


def test_fp16_is_written_into_the_graph_and_gated_on_top1(built: Layout) -> None:
    model = onnx.load(str(built.calibrated_onnx("fp16")))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O stays FP32
    report = read_json(built.report_json("fp16"))
    task = report["accuracy"]["task"]
    assert task["samples"] == 16 and task["top1_agreement"] == 1.0 and task["passed"] is True
    assert report["accuracy"]["gate"]["passed"] and report["accuracy"]["outputs"]["logits"]["cosine"] > 0.999


def test_int8_report_has_topk_agreement(built: Layout) -> None:
    task = read_json(built.report_json("int8"))["accuracy"]["task"]
    assert {"top1_agreement", "reference_top1_in_top5", "top5_overlap"} <= set(task)
    assert 0.0 <= task["top5_overlap"] <= 1.0 and task["reference_top1_in_top5"] >= task["top1_agreement"]
    assert "top-k agreement" in Path(built.report_md("int8")).read_text()


def test_manifest_describes_classification(built: Layout) -> None:
    manifest = read_json(built.manifest("fp16"))
    pre, post = manifest["preprocess"], manifest["postprocess"]
    assert pre["resize"] == "resize_crop" and pre["size"] == [32, 32] and pre["resize_shorter"] == 36
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["input"] == "pixel_values"
    assert post["type"] == "classification" and post["output"] == "logits" and post["top_k"] == 5
    assert post["class_names"] == ["tench, Tinca tinca", "goldfish", "bus", "person"]
    assert manifest["io"]["inputs"][0]["shape"] == [-1, 3, 32, 32]
    assert manifest["weights"]["random"] is True and Path(built.engine("fp16")).stat().st_size > 0


def test_preprocessing_matches_between_calibration_and_eval(built: Layout, vit_ws: dict[str, Path]) -> None:
    from pipeline.models.vit import VitAdapter
    from pipeline.recipe.loader import load_recipe

    recipe = load_recipe(str(vit_ws["recipe"]))
    adapter = VitAdapter()
    feeds = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, vit_ws["calib"]))
    x = feeds[0]["pixel_values"]
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    assert -1.0 - 1e-6 <= x.min() and x.max() <= 1.0 + 1e-6  # (v/255 - 0.5) / 0.5


def test_top1_agreement_floor_gates_the_profile(built: Layout, vit_ws: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import yaml

    root = tmp_path / "engines"
    shutil.copytree(vit_ws["root"], root)  # keep the module's reports as they are
    raw = yaml.safe_load(vit_ws["recipe"].read_text())
    raw["accuracy"]["min_top1_agreement"] = 1.5  # unreachable: the gate must fail on it, not on cosine
    recipe = tmp_path / "vit-test.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    code = main(["profile", "--model", str(recipe), "--precision", "fp16", "--root", str(root)])
    assert code == 2 and "top-1 agreement 1.000 < 1.5" in capsys.readouterr().err
    report = read_json(Layout(root, "vit-test").report_json("fp16"))
    assert report["accuracy"]["gate"]["passed"] is False and report["accuracy"]["outputs"]["logits"]["cosine"] > 0.999
