"""The accuracy budget: resolving it (recipe, per precision, family default), judging a candidate, and the
profile gate on the trained shapes detector against its labels: a good INT8 passes, a collapsed one fails,
and the message names the metric, FP32's value, the candidate's and the budget."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.core.artifacts import Layout, read_json, write_json
from pipeline.errors import PipelineError
from pipeline.evaluation.budget import Budget, judge, resolve_budget
from pipeline.models import get_adapter
from pipeline.recipe.loader import load_recipe
from tests.conftest import REPO, labelled_shapes_recipe


def _truth(value: float, metric: str = "map50_95") -> dict[str, Any]:
    return {"metrics": {metric: value}}


def test_family_defaults_and_per_precision() -> None:
    assert resolve_budget(load_recipe("yolo"), "int8").describe() == "map50_95 drop <= 0.005"
    assert resolve_budget(load_recipe("vit"), "int8").describe() == "top1 drop <= 0.005"
    assert resolve_budget(load_recipe("llama"), "int4-awq").describe() == "perplexity increase <= 2 %"
    assert resolve_budget(load_recipe("llama"), "int8").describe() == "perplexity increase <= 1 %"
    assert resolve_budget(load_recipe("unet"), "int8").describe() == "eps_mse <= 1.05x FP32's"
    stated = load_recipe("llama", ["accuracy.budget={metric: perplexity, max_increase_pct: 3}",
                                   "accuracy.budget_by_precision={int8: {metric: perplexity, max_increase_pct: 0.5}}"])
    assert resolve_budget(stated, "int4-awq").limit == 3 and resolve_budget(stated, "int8").limit == 0.5
    assert resolve_budget(stated, "int8").source == "recipe"


def test_judge_in_each_unit() -> None:
    drop = Budget("map50_95", max_drop=0.005)
    ok, bad = judge(drop, _truth(0.98), _truth(0.976), "labels"), judge(drop, _truth(0.98), _truth(0.0), "labels")
    assert ok["passed"] and not bad["passed"] and bad["loss"] == pytest.approx(0.98)
    assert bad["message"] == ("map50_95 against labels: FP32 0.9800, candidate 0.0000, loss +0.9800, "
                              "budget map50_95 drop <= 0.005 (recipe)")
    ppl = Budget("perplexity", max_increase_pct=2.0)
    assert judge(ppl, _truth(2.0, "perplexity"), _truth(2.03, "perplexity"), "text")["passed"]
    assert not judge(ppl, _truth(2.0, "perplexity"), _truth(2.05, "perplexity"), "text")["passed"]
    ratio = Budget("eps_mse", max_ratio=1.05)
    assert judge(ratio, _truth(0.1, "eps_mse"), _truth(0.104, "eps_mse"), "noise")["loss"] == pytest.approx(1.04)
    assert not judge(ratio, _truth(0.1, "eps_mse"), _truth(0.11, "eps_mse"), "noise")["passed"]
    # Equal to FP32 passes a zero budget.
    assert judge(Budget("top1", max_drop=0.0), _truth(0.9, "top1"), _truth(0.9, "top1"), "labels")["passed"]


@pytest.mark.parametrize("budget, words", [
    ("{metric: map50_95, max_increase_pct: 2}", "max_increase_pct is for metric perplexity"),
    ("{metric: perplexity, max_drop: 0.1}", "perplexity grows when accuracy is lost"),
    ("{metric: top1}", "exactly one of"),
    ("{metric: eps_mse, max_ratio: 0.9}", "max_ratio"),
])
def test_bad_budgets_are_one_line_errors(budget: str, words: str) -> None:
    with pytest.raises(PipelineError, match=words):
        load_recipe("yolo", [f"accuracy.budget={budget}"])


# ---- the profile gate on the trained detector, against labels ----------------------------------------------
@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shapes recipe with `eval.data`: a dataset yaml whose val split is 12 generated, labelled images."""
    from pipeline.stages.export import export

    base = tmp_path_factory.mktemp("budget")
    labelled_shapes_recipe(base)
    recipe = load_recipe(str(base / "shapes.yaml"))
    layout = Layout(base / "engines", recipe.name)
    export(recipe, layout)
    return {"base": base, "recipe": recipe, "layout": layout}


@pytest.mark.slow
def test_good_int8_passes_the_budget_against_labels(labelled: dict[str, Any]) -> None:
    from pipeline.stages.build import build
    from pipeline.stages.calibrate import calibrate
    from pipeline.stages.plan import resolve_plan
    from pipeline.stages.profile import profile

    recipe, layout = labelled["recipe"], labelled["layout"]
    calibrate(recipe, layout, "int8", labelled["base"] / "calib")
    build(recipe, layout, resolve_plan(recipe, None, "int8"))
    profile(recipe, layout, "int8")
    report = read_json(layout.report_json("int8"))
    gate = report["accuracy"]["gate"]
    assert gate["passed"] and gate["reference"] == "ground truth"
    budget = gate["budget"]
    assert budget["metric"] == "map50_95" and budget["passed"] and budget["fp32"] > 0.9
    assert budget["loss"] <= 0.005 and "labels (heldout.yaml split val: 12 images" in budget["reference"]
    lines = {ln["name"]: ln for ln in gate["lines"]}
    # The FP32-agreement floor stays, as a diagnostic only: it no longer gates with labels present.
    assert lines["min_map50_95_vs_fp32 (agreement with FP32)"]["gates"] == "no"
    assert {ln["passed"] for ln in gate["lines"]} <= {"yes", "no"}
    md = layout.report_md("int8").read_text()
    assert "| accuracy budget (ground truth) | yes | yes | map50_95 against labels" in md


@pytest.mark.slow
def test_collapsed_int8_fails_the_budget_naming_metric_values_and_budget(labelled: dict[str, Any]) -> None:
    """The head trap (one INT8 scale over the output Concat, the head not kept out) as the INT8 calibration."""
    from pipeline.core import onnx_utils
    from pipeline.stages.build import build
    from pipeline.stages.plan import resolve_plan
    from pipeline.stages.profile import profile
    from tests.test_quantization_traps import write_head_qdq

    recipe, layout = labelled["recipe"], labelled["layout"]
    adapter = get_adapter("yolo")
    feeds = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, labelled["base"] / "calib"))
    trap = write_head_qdq(layout.exported_onnx, feeds[:8], labelled["base"] / "head-qdq.onnx")
    onnx_utils.save(onnx_utils.load(trap), layout.calibrated_onnx("int8"), external_data=None)
    write_json(layout.calibrate_report("int8"), {
        "stage": "calibrate", "model": recipe.name, "precision": "int8", "method": "one INT8 Q/DQ on the output Concat (test trap)",
        "high_precision_dtype": "fp32", "kept_out": {"nodes": [], "op_types": [], "reason": None},
        "calibration": None})
    build(recipe, layout, resolve_plan(recipe, None, "int8"), force=True)
    with pytest.raises(PipelineError, match=r"accuracy budget \(ground truth\): map50_95 against labels .*: "
                                            r"FP32 0\.9\d+, candidate 0\.0\d+, .*budget map50_95 drop <= 0\.005 "
                                            r"\(yolo default\)"):
        profile(recipe, layout, "int8", force=True)
    gate = read_json(layout.report_json("int8"))["accuracy"]["gate"]
    assert gate["failed"]["name"] == "accuracy budget (ground truth)" and gate["budget"]["candidate"] < 0.05


@pytest.mark.slow
def test_llama_ground_truth_on_the_trained_fixture_is_the_benchmarks_perplexity(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The adapter's ground truth (the standard protocol over tests/fixtures/llama/heldout.txt) is the
    FP32 perplexity benchmarks/results/accuracy_budget.md records for the fixture (2.1552)."""
    from pipeline.stages.export import export

    recipe = load_recipe(str(REPO / "tests" / "fixtures" / "llama" / "llama.yaml"))
    layout = Layout(tmp_path_factory.mktemp("llama-fixture") / "engines", recipe.name)
    export(recipe, layout)
    truth = get_adapter("llama").ground_truth(recipe, layout.exported_onnx)
    assert truth["metrics"]["perplexity"] == pytest.approx(2.1552, abs=5e-4)
    assert "247 windows of 128" in truth["reference"]
    assert resolve_budget(recipe, "int4-awq").describe() == "perplexity increase <= 2 %"
