"""Each precision written into the graph, its numerics against FP32 on held-out text, and the
two-profile engine with its manifest (TensorRT-RTX builds ahead of time here)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import onnx_utils
from pipeline.core.artifacts import read_json
from pipeline.llm.perplexity import text_perplexity
from pipeline.models.llama import LlamaAdapter
from pipeline.stages.plan import resolve_plan

from .conftest import ort_session, prefill_logits


def _logits(onnx_path, feeds) -> np.ndarray:
    return prefill_logits(onnx_path, feeds)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize(("precision", "min_cosine"), [("fp16", 0.9999), ("int4-awq", 0.97), ("int8", 0.97)])
def test_precision_is_in_the_graph_and_close_to_fp32(llama_ws: dict, calibrated, precision: str,
                                                      min_cosine: float) -> None:
    import onnx

    recipe, layout = llama_ws["recipe"], llama_ws["layout"]
    path = calibrated(precision)
    model = onnx_utils.load(path)
    report = read_json(layout.calibrate_report(precision))
    inits = {i.name: i for i in model.graph.initializer}
    matmul_weights = [inits[n.input[1]] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    if precision == "fp16":
        assert {w.data_type for w in matmul_weights} == {onnx.TensorProto.FLOAT16}
        # RMSNorm's square / mean and the attention softmax are kept in FP32 by the recipe.
        assert any("_layernorm/Pow" in n for n in report["kept_out"]["nodes"][0:1] + report["kept_fp32_nodes"])
        assert any(n.endswith("/Softmax") for n in report["kept_fp32_nodes"])
    elif precision == "int4-awq":
        int4 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT4]
        # 2 layers x 7 linears + the LM head (tied to the embedding, which stays a float Gather table).
        assert len(int4) == report["int4_weights"] == 15
        assert report["block_size"] == 128 and report["method"] == "awq_clip"
        dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
        assert {a.i for n in dq for a in n.attribute if a.name == "block_size"} == {128}
    else:
        ops = [n.op_type for n in model.graph.node]
        assert ops.count("QuantizeLinear") >= 15 and report["method"] == "max"
        # every RMSNorm (2 per layer + the final one) smoothed into q/k/v, gate/up and the LM head
        assert (report["smoothquant"]["sites"], report["smoothquant"]["matmuls"]) == (5, 11)
    feeds = LlamaAdapter().eval_feeds(recipe)
    ref, got = _logits(layout.exported_onnx, feeds), _logits(path, feeds)
    assert _cosine(ref, got) >= min_cosine
    heldout = LlamaAdapter().heldout_ids(recipe)
    with ort_session(layout.exported_onnx) as s:
        ppl_ref = text_perplexity(s, heldout, 64)["perplexity"]
    with ort_session(path) as s:
        ppl = text_perplexity(s, heldout, 64)["perplexity"]
    assert abs(ppl - ppl_ref) / ppl_ref < 0.05


def test_two_profile_engine_and_manifest(llama_ws: dict, calibrated) -> None:
    from pipeline.stages.build import build

    recipe, layout = llama_ws["recipe"], llama_ws["layout"]
    calibrated("int4-awq")
    build(recipe, layout, resolve_plan(recipe, None, "int4-awq"))
    manifest = read_json(layout.manifest("int4-awq"))
    assert layout.engine("int4-awq").stat().st_size == manifest["engine"]["bytes"] > 0
    assert [p["phase"] for p in manifest["profiles"]] == ["prefill", "decode"]
    assert manifest["profiles"][0]["shapes"]["past_key_values.0.key"]["max"] == [0, 4, 2, 32]
    assert manifest["profiles"][1]["shapes"]["past_key_values.0.key"]["max"] == [255, 4, 2, 32]
    llm = manifest["llm"]
    # The device-resident KV-cache contract the C++ LlmSession reads (docs/llm.md); float16 for INT4.
    assert llm["kv_cache"] | {"bytes": 0, "bytes_per_token": 0, "for": 0} == {
        "layout": "position,batch,kv_heads,head_dim", "dtype": "float16", "layers": 2, "kv_heads": 2,
        "head_dim": 32, "max_context": 256, "max_batch": 4, "past_input": "past_key_values.{layer}.{kind}",
        "new_output": "new_key_values.{layer}.{kind}", "kinds": ["key", "value"], "bytes": 0, "bytes_per_token": 0,
        "for": 0}
    assert llm["logits"] == {"output": "logits", "positions_input": "logit_positions", "dtype": "float32",
                             "vocab": 512}
    assert llm["phases"] == {"prefill": 0, "decode": 1}
    assert (llm["max_batch"], llm["max_prompt"], llm["max_context"]) == (4, 128, 256)
    tokenizer = LlamaAdapter()._tokenizer(recipe)
    assert (llm["bos_id"], llm["eos_id"]) == (tokenizer.bos_token_id, tokenizer.eos_token_id)
    # keys + values, 2 layers, batch 4, 2 KV heads, 256 positions, head_dim 32, float16
    assert llm["kv_cache"]["bytes"] == 2 * 2 * 4 * 2 * 256 * 32 * 2 == 524_288
    assert llm["kv_cache"]["bytes_per_token"] == 2 * 2 * 2 * 32 * 2
    io = {t["name"]: t["dtype"] for t in manifest["io"]["inputs"] + manifest["io"]["outputs"]}
    assert io["past_key_values.1.value"] == io["new_key_values.0.key"] == "float16"
    assert manifest["weights"]["random"] is True
    assert manifest["postprocess"]["type"] == "causal_lm"
    assert manifest["memory"]["weights_bytes"] and manifest["memory"]["weights_bytes"] > 0


def test_profile_reports_llm_metrics_per_runner(llama_ws: dict, calibrated) -> None:
    from pipeline.stages.build import build
    from pipeline.stages.profile import profile

    recipe, layout = llama_ws["recipe"], llama_ws["layout"]
    calibrated("int4-awq")
    build(recipe, layout, resolve_plan(recipe, None, "int4-awq"))
    profile(recipe, layout, "int4-awq")
    report = read_json(layout.report_json("int4-awq"))
    metrics = report["family_metrics"]["by_runner"]
    assert list(metrics) == ["onnxrt-fp32", "onnxrt-int4-awq"]
    for m in metrics.values():
        assert m["perplexity"] > 1 and m["ttft_ms"] > 0 and m["decode_tokens_per_s"] > 0
        assert m["new_tokens"] == 8 and m["tokens_scored"] > 100
    assert metrics["onnxrt-fp32"]["match_rate"] == 1.0
    # The decode session's own count: token inputs in (8 bytes each), the logits out, at FP32 or FP16 cache.
    assert {(m["bytes_h2d_per_token"], m["bytes_d2h_per_token"]) for m in metrics.values()} == {(32, 512 * 4)}
    floor = metrics["onnxrt-fp32"]["floor_tokens_per_s"]  # AGX Orin 64GB: 204.8 GB/s over weights + cache
    assert metrics["onnxrt-fp32"]["floor_target"] == "orin-agx-64" and floor > 1000
    assert metrics["onnxrt-fp32"]["fraction_of_floor"] == pytest.approx(
        metrics["onnxrt-fp32"]["decode_tokens_per_s"] / floor)
    from pipeline.nightly.collect import report_metrics
    from pipeline.nightly.regression import direction

    nightly = report_metrics(report)
    assert nightly["llm.onnxrt-int4-awq.bytes_h2d_per_token"] == 32
    assert nightly["llm.onnxrt-int4-awq.decode_tokens_per_s"] > 0 and "llm.onnxrt-fp32.fraction_of_floor" in nightly
    assert [direction(f"llm.tensorrt.{k}") for k in ("decode_tokens_per_s", "ttft_ms", "fraction_of_floor",
                                                     "bytes_h2d_per_token", "perplexity")] == [1, -1, 1, -1, -1]
    assert report["accuracy"]["task"]["positions"] == 48
    md = layout.report_md("int4-awq").read_text()
    assert "## Model metrics" in md and "decode_tokens_per_s" in md
    assert [r["status"] for r in report["runners"] if r["name"] == "tensorrt"] == ["skipped"]


def test_awq_lite_runs_on_the_cpu_and_bad_options_are_named(llama_ws: dict, tmp_path) -> None:
    """modelopt 0.47's awq_lite needs awqlite_fuse_nodes=False without CUDA; the quantizer passes it."""
    from pipeline.errors import PipelineError
    from pipeline.quantize.int4 import int4_awq

    recipe, adapter = llama_ws["recipe"], LlamaAdapter()
    calib = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, llama_ws["calib"]))[:2]
    src, none = llama_ws["layout"].exported_onnx, {"nodes": [], "op_types": []}
    summary = int4_awq(src, tmp_path / "lite.onnx", calib, {"method": "awq_lite", "block_size": 128}, none)
    assert (summary["method"], summary["int4_weights"]) == ("awq_lite", 15)
    feeds = adapter.eval_feeds(recipe)
    assert _cosine(_logits(src, feeds), _logits(tmp_path / "lite.onnx", feeds)) > 0.97
    # Bad options are refused when the recipe loads, before any quantizer runs (the schema of the table).
    from pipeline.recipe.loader import load_recipe

    with pytest.raises(PipelineError, match="precisions.int4-awq.block_size: 96 is not a power of two"):
        load_recipe(str(recipe.path), ["precisions.int4-awq.block_size=96"])
    with pytest.raises(PipelineError, match="precisions.int4-awq.method: 'gptq' is not one of awq_clip, awq_lite"):
        load_recipe(str(recipe.path), ["precisions.int4-awq.method=gptq"])
