"""Summaries of TensorRT's engine inspector JSON and per-layer profile (the TensorRT calls that
produce them need a GPU and are not run here; see test_trt_profiling_on_device).

The inspector layers follow the documented `kDETAILED` shape (TensorRT developer guide, "Engine
Inspector": `Format/Datatype` strings such as "Thirty-two wide channel vectorized row major Int8
format.") and the Reformat layers TensorRT inserts ("Reformatting CopyNode for Input Tensor 0 to ..."). How a DLA
subgraph is labelled was not found in a public capture: the `{ForeignNode[...]}` entry with a DLA type
below is this project's assumption, to be checked against a devkit's DLA engine."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import PipelineError
from pipeline.platform.telemetry.layer_info import latency_stats, summarize_inspector, top_layers

INSPECTOR = {
    "Layers": [
        {"Name": "Reformatting CopyNode for Input Tensor 0 to /model.0/conv/Conv", "LayerType": "Reformat",
         "Inputs": [{"Name": "images", "Location": "Device", "Dimensions": [1, 3, 640, 640],
                     "Format/Datatype": "Row major linear FP32"}],
         "Outputs": [{"Name": "Reformatted Input Tensor 0 to /model.0/conv/Conv", "Location": "Device",
                      "Dimensions": [1, 3, 640, 640],
                      "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format."}]},
        {"Name": "/model.0/conv/Conv + /model.0/act/Sigmoid", "LayerType": "CaskConvolution",
         "Outputs": [{"Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format."}],
         "TacticName": "sm87_xmma_fprop_implicit_gemm_interleaved_i8i8_i8i32_f32"},
        {"Name": "/model.23/dfl/conv/Conv", "LayerType": "CaskConvolution",
         "Outputs": [{"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
        {"Name": "/model.23/Concat_5", "LayerType": "Reformat",
         "Outputs": [{"Format/Datatype": "Row major linear FP32"}]},
        {"Name": "{ForeignNode[/backbone/conv1...]}", "LayerType": "DLA",
         "Outputs": [{"Format/Datatype": "Channel major FP16 format where channel % 16 == 0"}]},
    ],
    "Bindings": ["images", "output0"],
}


def test_inspector_summary_precisions_reformats_and_devices():
    s = summarize_inspector(json.dumps(INSPECTOR))
    assert s["count"] == 5
    assert s["precisions"] == {"int8": 2, "fp16": 2, "fp32": 1}
    assert s["reformat_layers"] == ["Reformatting CopyNode for Input Tensor 0 to /model.0/conv/Conv",
                                    "/model.23/Concat_5"]
    assert s["devices"] == {"GPU": 4, "DLA": 1}
    assert s["layers"][1]["tactic"].startswith("sm87_")


def test_layer_names_only_verbosity_still_counts_layers():
    s = summarize_inspector({"Layers": ["conv1 + relu1", "Reformatting CopyNode for Output Tensor 0"],
                             "Bindings": []})
    assert s["count"] == 2 and s["precisions"] == {"unknown": 2}


def test_inspector_json_without_layers_names_the_likely_cause():
    with pytest.raises(PipelineError, match="DETAILED"):
        summarize_inspector({"Bindings": []})


def test_top_layers_rank_by_median_and_give_their_share():
    ranked = top_layers({"conv": [2.0, 2.2, 9.0], "head": [1.0, 1.0, 1.1], "tiny": [0.1, 0.1, 0.1]}, n=2)
    assert [r["layer"] for r in ranked] == ["conv", "head"]
    assert ranked[0]["median_ms"] == 2.2  # one slow outlier does not move the median
    assert ranked[0]["share"] == pytest.approx(2.2 / 3.3)


def test_latency_stats_percentiles_and_throughput():
    s = latency_stats([float(i) for i in range(1, 101)], batch=4)
    assert (s["p50_ms"], s["p90_ms"], s["p99_ms"]) == pytest.approx((50.5, 90.1, 99.01))
    assert s["mean_ms"] == 50.5 and s["throughput_per_s"] == pytest.approx(4000 / 50.5)
    with pytest.raises(PipelineError):
        latency_stats([], 1)
