"""Models over 2 GB keep their weights in `model.onnx.data`: the Llama export and INT4 write that layout
and generation runs from it. The threshold is lowered so the tiny model takes that path."""

from __future__ import annotations

import pytest

from pipeline import onnx_utils
from pipeline.llm.generation import generate
from pipeline.llm.session import onnxrt_session
from pipeline.models.llama import LlamaAdapter
from pipeline.quantize.int4 import int4_awq


def test_external_data_through_export_int4_and_generation(tmp_path, llama_ws: dict,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_utils, "EXTERNAL_DATA_THRESHOLD", 100_000)
    recipe, adapter = llama_ws["recipe"], LlamaAdapter()
    exported = tmp_path / "model.onnx"
    adapter.export(recipe, exported, adapter.eval_feeds(recipe))
    assert onnx_utils.uses_external_data(exported)
    assert exported.stat().st_size < 200_000 < onnx_utils.load(exported).ByteSize()
    calib = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, llama_ws["calib"]))
    int4 = tmp_path / "int4" / "model.onnx"
    int4_awq(exported, int4, calib, {"method": "awq_clip", "block_size": 128}, {"nodes": [], "op_types": []})
    assert onnx_utils.uses_external_data(int4)
    prompt = adapter.heldout_ids(recipe)[:10]
    with onnxrt_session(exported) as s:
        reference = generate(s, prompt, 6).new_ids
    with onnxrt_session(llama_ws["layout"].exported_onnx) as s:
        assert generate(s, prompt, 6).new_ids == reference  # same weights, one file or two
    with onnxrt_session(int4) as s:
        assert len(generate(s, prompt, 6).new_ids) == 6
