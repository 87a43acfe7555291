"""Weights where they belong: a quantized LLM's embedding table is FP16, a tied LM head reads that one
table, and analyze predicts the engine's weight bytes from what the calibrated ONNX holds, within 5 % of
what the TensorRT-RTX builder reports."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from pipeline.analyze.weights import engine_weight_bytes
from pipeline.core import onnx_utils
from pipeline.core.artifacts import Layout, read_json
from pipeline.models.llama import LlamaAdapter
from pipeline.quantize.embedding import embedding_gathers

from .conftest import prefill_logits


def _tables(path) -> list:
    model = onnx_utils.load_header(path)
    inits = {i.name: i for i in model.graph.initializer}
    return [inits[n.input[0]] for n in model.graph.node if n.op_type == "Gather" and n.input[0] in inits]


def _logits(path, feeds) -> np.ndarray:
    return prefill_logits(path, feeds)


@pytest.mark.parametrize("precision", ["int8", "int4-awq"])
def test_quantized_llm_keeps_its_embedding_table_in_fp16(llama_ws: dict, calibrated, precision: str) -> None:
    exported = _tables(llama_ws["layout"].exported_onnx)
    assert [t.data_type for t in exported] == [onnx.TensorProto.FLOAT]
    tables = _tables(calibrated(precision))
    assert [(t.name, t.data_type, list(t.dims)) for t in tables] == \
           [(exported[0].name, onnx.TensorProto.FLOAT16, list(exported[0].dims))]
    report = read_json(llama_ws["layout"].calibrate_report(precision))
    assert report["embedding"]["bytes_saved"] >= onnx_utils.tensor_bytes(exported[0]) // 2


def test_a_tied_lm_head_reads_the_one_table(llama_ws: dict, tmp_path) -> None:
    """INT8 without SmoothQuant leaves the LM head's weight the table's transpose: it is dropped and the head
    reads the FP16 table through Cast + Transpose; logits stay those of the untied graph."""
    from pipeline.quantize.int8 import ptq_int8

    recipe, src = llama_ws["recipe"], llama_ws["layout"].exported_onnx
    adapter = LlamaAdapter()
    calib = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, llama_ws["calib"]))
    feeds = adapter.eval_feeds(recipe)
    dst = tmp_path / "int8.onnx"
    info = ptq_int8(src, dst, calib, {"method": "max"}, {"nodes": [], "op_types": []})
    table = embedding_gathers(onnx_utils.load(src))[0][1]
    assert info["embedding"]["tied_lm_head_reads_table"] and info["embedding"]["bytes_saved"] == \
        onnx_utils.tensor_bytes(table) // 2 + onnx_utils.tensor_bytes(table)
    model = onnx_utils.load(dst)
    shaped = [i.name for i in model.graph.initializer if sorted(i.dims) == sorted(table.dims)]
    assert shaped == [table.name]  # stored once
    ref = _logits(src, feeds)
    got = _logits(dst, feeds)
    cos = float((ref.ravel() @ got.ravel()) / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cos > 0.97


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8", "int4-awq"])
def test_analyze_predicts_the_builders_weight_bytes(llama_ws: dict, calibrated, precision: str) -> None:
    from pipeline.stages.build import build
    from pipeline.stages.plan import resolve_plan

    recipe, layout = llama_ws["recipe"], llama_ws["layout"]
    onnx_path = calibrated(precision)
    build(recipe, layout, resolve_plan(recipe, None, precision))
    built = read_json(layout.manifest(precision))["memory"]["weights_bytes"]
    predicted = engine_weight_bytes(onnx_path)
    assert abs(predicted - built) / built < 0.05, (predicted, built)


@pytest.mark.slow
def test_analyze_predicts_a_tied_int8_engine_too(llama_ws: dict, tmp_path) -> None:
    """INT8 without SmoothQuant: the LM head reads the FP16 table through Cast + Transpose; the builder folds
    that into an INT8 weight of its own beside the table, and the prediction counts it."""
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.flow import run_engine
    from pipeline.stages.plan import resolve_plan

    from .conftest import tiny_llama_recipe

    raw = llama_ws["recipe"].section("precisions")
    precisions = {**raw, "int8": {k: v for k, v in raw["int8"].items() if k != "smoothquant"}}
    recipe = load_recipe(str(tiny_llama_recipe(tmp_path, name="llama-tied", precisions=precisions)))
    run_engine(recipe, resolve_plan(recipe, None, "int8"), tmp_path / "engines", llama_ws["calib"])
    layout = Layout(tmp_path / "engines", recipe.name)
    assert read_json(layout.calibrate_report("int8"))["embedding"]["tied_lm_head_reads_table"]
    built = read_json(layout.manifest("int8"))["memory"]["weights_bytes"]
    predicted = engine_weight_bytes(layout.calibrated_onnx("int8"))
    assert abs(predicted - built) / built < 0.05, (predicted, built)
