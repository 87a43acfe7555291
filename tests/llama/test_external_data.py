"""Models over 2 GB keep their weights in `model.onnx.data`. `export.external_data: true` forces that
layout on the tiny model: export, INT4, the two-profile build and generation work the same."""

from __future__ import annotations

from pipeline.core import onnx_utils
from pipeline.core.artifacts import Layout, read_json
from pipeline.llm.generation import generate
from pipeline.models.llama import LlamaAdapter
from pipeline.recipe.loader import load_recipe
from pipeline.stages.plan import resolve_plan

from .conftest import ort_session, tiny_llama_recipe


def test_external_data_through_export_int4_build_and_generation(tmp_path, llama_ws: dict) -> None:
    from pipeline.stages.flow import run_engine

    export_cfg = {**llama_ws["recipe"].section("export"), "external_data": True}
    recipe = load_recipe(str(tiny_llama_recipe(tmp_path, name="llama-big", export=export_cfg)))
    run_engine(recipe, resolve_plan(recipe, None, "int4-awq"), tmp_path / "engines", llama_ws["calib"])
    layout = Layout(tmp_path / "engines", recipe.name)
    for onnx in (layout.exported_onnx, layout.calibrated_onnx("int4-awq")):
        assert onnx_utils.uses_external_data(onnx)
        assert onnx.stat().st_size < 200_000 < onnx.with_name(onnx.name + ".data").stat().st_size
    manifest = read_json(layout.manifest("int4-awq"))
    assert manifest["onnx"]["external_data"] is True and manifest["llm"]["phases"] == {"prefill": 0, "decode": 1}
    prompt = LlamaAdapter().heldout_ids(recipe)[:10]
    with ort_session(layout.exported_onnx) as s:
        two_files = generate(s, prompt, 6).new_ids
    with ort_session(llama_ws["layout"].exported_onnx) as s:
        assert generate(s, prompt, 6).new_ids == two_files  # same weights, one file or two
    with ort_session(layout.calibrated_onnx("int4-awq")) as s:
        assert len(generate(s, prompt, 6).new_ids) == 6
