"""`orin-trt tune` on the trained Llama and ViT fixtures (tests/fixtures/), on small slices of their held-out
data: the INT4 search over block size, AWQ variant and the LM head picks the fastest estimate within the
perplexity budget and records it in tune.json, the calibrate report and the manifest; the ViT INT8 search
runs end to end against its labels. The estimate sees what the candidate's graph holds: a smaller INT4
block reads more scales, a kept-out LM head more weight bytes, FP16 for the rest of a ViT less traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from pipeline.core import onnx_utils
from pipeline.core.artifacts import Layout, read_json, sha256_onnx
from tests.conftest import fixture_module

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def _recipe(dest: Path, family: str, **sections: Any) -> Path:
    """The fixture's recipe as a base, with test-sized data and search settings over it."""
    path = dest / f"{family}-tune.yaml"
    path.write_text(yaml.safe_dump({"base": str(FIXTURES / family / f"{family}.yaml"), "name": f"{family}-tune",
                                    **sections}, sort_keys=False))
    return path


def _tune(recipe: Path, base: Path, precision: str) -> int:
    return main(["tune", "--model", str(recipe), "--precision", precision, "--root", str(base / "engines"),
                 "--calib-root", str(base / "calib")])


def _rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["candidates"]}


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("tune-llama")
    paragraphs = (FIXTURES / "llama" / "heldout.txt").read_text().split("\n\n")
    heldout = base / "heldout.txt"
    heldout.write_text("\n\n".join(paragraphs[: len(paragraphs) // 10]))  # ~24 windows of 128 tokens
    recipe = _recipe(base, "llama", calibration={"max_samples": 8}, eval={"text": str(heldout)},
                     tune={"screen_samples": 6, "finalists": 1})
    assert _tune(recipe, base, "int4-awq") == 0
    layout = Layout(base / "engines", "llama-tune")
    return {"base": base, "recipe": recipe, "layout": layout,
            "doc": read_json(layout.precision_dir("int4-awq") / "tune.json")}


@pytest.mark.slow
def test_llama_int4_search_picks_the_fastest_estimate_within_the_perplexity_budget(llama: dict[str, Any]) -> None:
    doc, layout = llama["doc"], llama["layout"]
    rows = _rows(doc)
    assert set(rows) == {"awq_clip, block 128", "awq_clip, block 64", "awq_clip, block 32", "awq_lite, block 128",
                         "rtn_dq, block 128", "awq_clip, block 128, LM head kept out",
                         "awq_clip, block 32, LM head kept out"}
    assert doc["budget"] == {"metric": "perplexity", "source": "llama default", "max_increase_pct": 2.0}
    choice = doc["choice"]
    assert choice["within_budget"] and choice["loss"] <= 2.0 and choice["fp32"] < 2.4  # the trained model
    assert rows[choice["name"]]["measured_on"] == "full" and choice["samples"] > doc["screen_samples"]
    # Nothing measured within the budget is estimated faster than the choice.
    within = [r for r in doc["candidates"] if r["within_budget"]]
    assert choice["estimated_ms"] == min(r["estimated_ms"] for r in within)
    # The estimate and the weight bytes read the candidate: block 32 carries four times block 128's scales;
    # the LM head kept out of INT4 computes in float (slower), and since the fixture ties it to the FP16
    # embedding table, the engine no longer holds an INT4 copy of that table (fewer bytes).
    block128 = rows["awq_clip, block 128"]
    assert rows["awq_clip, block 32"]["estimated_ms"] > block128["estimated_ms"]
    assert rows["awq_clip, block 32"]["weight_bytes"] > block128["weight_bytes"]
    head_out = rows["awq_clip, block 128, LM head kept out"]
    assert head_out["estimated_ms"] > block128["estimated_ms"] and head_out["weight_bytes"] < block128["weight_bytes"]
    assert head_out["nodes_by_precision"]["int4-awq"] == block128["nodes_by_precision"]["int4-awq"] - 1
    # The calibrated ONNX is the measured candidate, and the report says why in the budget's unit.
    measured = layout.model_dir / ".tune-cache" / choice["key"] / "model.onnx"
    assert sha256_onnx(layout.calibrated_onnx("int4-awq")) == sha256_onnx(measured)
    md = (layout.precision_dir("int4-awq") / "tune.md").read_text()
    assert f"**Chosen: {choice['name']}**" in md and f"loss {choice['loss']:+.2f} %)" in md
    assert (layout.precision_dir("int4-awq") / "tune-pareto.png").read_bytes()[:4] == b"\x89PNG"
    record = read_json(layout.calibrate_report("int4-awq"))["tune"]
    assert record["candidate"] == choice["name"] and record["settings"]["block_size"] == choice["settings"]["block_size"]


@pytest.mark.slow
def test_llama_int4_choice_is_in_the_manifest(llama: dict[str, Any]) -> None:
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.build import build
    from pipeline.stages.plan import resolve_plan

    recipe, layout = load_recipe(str(llama["recipe"])), llama["layout"]
    build(recipe, layout, resolve_plan(recipe, None, "int4-awq"))
    tune = read_json(layout.manifest("int4-awq"))["precision_detail"]["tune"]
    choice = llama["doc"]["choice"]
    assert tune["candidate"] == choice["name"] and tune["loss"] == choice["loss"]
    assert tune["settings"]["method"] == choice["settings"]["method"] and tune["budget"]["max_increase_pct"] == 2.0
    assert tune["weight_bytes"] == choice["weight_bytes"] and tune["tune_json"] == "tune.json"


@pytest.mark.slow
def test_vit_int8_search_runs_end_to_end_against_labels(tmp_path: Path) -> None:
    write_split = fixture_module("vit", "make_dataset").write_split
    calib, heldout = write_split(tmp_path / "data", "calib", 16), write_split(tmp_path / "data", "heldout", 48)
    recipe = _recipe(tmp_path, "vit", calibration={"images": str(calib), "recommended_min": 16},
                     eval={"labelled": str(heldout)}, tune={"screen_samples": 8, "finalists": 1})
    assert _tune(recipe, tmp_path, "int8") == 0
    layout = Layout(tmp_path / "engines", "vit-tune")
    doc = read_json(layout.precision_dir("int8") / "tune.json")
    rows = _rows(doc)
    assert len(rows) == 7 and doc["budget"]["metric"] == "top1" and not doc["failed"]
    choice = doc["choice"]
    assert choice["within_budget"] and choice["samples"] == 48 and choice["fp32"] >= 0.9
    # Unquantized ops in FP16 move half the bytes of FP32 in the estimate.
    assert rows["entropy, rest fp16"]["estimated_ms"] < rows["entropy, rest fp32"]["estimated_ms"]
    assert choice["estimated_ms"] == min(r["estimated_ms"] for r in doc["candidates"] if r["within_budget"])
    onnx_utils.check(layout.calibrated_onnx("int8"))
    assert read_json(layout.calibrate_report("int8"))["tune"]["candidate"] == choice["name"]
