"""Targets wired into the stages: refusals before any work, builder caps, sparse / DLA options, bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.artifacts import Layout, read_json
from pipeline.errors import PipelineError
from pipeline.platform.targets import MIB, get_target
from pipeline.recipe.loader import load_recipe
from pipeline.stages.build import build
from pipeline.stages.plan import resolve_plan

from .test_bundle import calibrated_layout


def _rtx_or_skip() -> None:
    from pipeline.trt.backend import select_backend

    try:
        select_backend()
    except PipelineError as e:
        pytest.skip(str(e))


def test_cli_refuses_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "engines"
    assert main(["engine", "--model", "yolo", "--precision", "int8", "--target", "orin-nano-8", "--dla", "0",
                 "--root", str(root)]) == 2
    assert "has no DLA cores" in capsys.readouterr().err
    assert main(["build", "--model", "yolo", "--precision", "fp32", "--target", "orin-agx-64", "--dla", "1",
                 "--root", str(root)]) == 2
    assert "the DLA runs only fp16 / int8" in capsys.readouterr().err
    assert main(["export", "--model", "yolo", "--target", "orin-agx-128", "--root", str(root)]) == 2
    assert "unknown target" in capsys.readouterr().err
    assert main(["calibrate", "--model", "yolo", "--precision", "fp8", "--target", "orin-nx-16",
                 "--root", str(root)]) == 2
    assert "no FP8 / FP4 tensor cores before SM 8.9" in capsys.readouterr().err
    assert not root.exists()  # nothing was started


def test_builder_caps_come_from_the_target(tmp_path: Path) -> None:
    _, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    assert resolve_plan(recipe, None).options()["workspace_bytes"] == 1024 * MIB  # the recipe's
    opts = resolve_plan(recipe, "orin-nano-4", "fp32").options()
    caps = get_target("orin-nano-4").builder_caps()
    assert opts["workspace_bytes"] == caps["workspace_bytes"] < 1024 * MIB
    assert opts["tactic_dram_bytes"] == caps["tactic_dram_bytes"]


def test_capped_sparse_build_records_its_options(tmp_path: Path) -> None:
    _rtx_or_skip()
    layout, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    build(recipe, layout, resolve_plan(recipe, "orin-nano-4", "fp32", sparse=True))
    manifest = read_json(layout.manifest("fp32"))
    caps = get_target("orin-nano-4").builder_caps()
    assert manifest["target"] == "orin-nano-4"
    assert manifest["builder"]["workspace_bytes"] == caps["workspace_bytes"]
    assert manifest["builder"]["tactic_dram_bytes"] == caps["tactic_dram_bytes"]
    assert manifest["builder"]["sparse_weights"] is True
    assert layout.engine("fp32").stat().st_size > 0


def test_dla_strict_fails_before_the_build_and_rtx_refuses_dla(tmp_path: Path) -> None:
    layout, recipe_path = calibrated_layout(tmp_path, max_batch=1)
    recipe = load_recipe(str(recipe_path))
    assert recipe.inputs["x"]["max"][0] == 1  # static shapes, as the DLA needs
    (layout.precision_dir("fp16")).mkdir()
    for name in ("model.onnx", "calibrate.json"):
        (layout.precision_dir("fp16") / name).write_bytes((layout.precision_dir("fp32") / name).read_bytes())
    with pytest.raises(PipelineError, match="--dla-policy strict: 1 of 4 nodes"):
        build(recipe, layout, resolve_plan(recipe, "orin-agx-64", "fp16", dla_core=0, dla_policy="strict"))
    _rtx_or_skip()
    from pipeline.trt.backend import select_backend

    if select_backend().is_rtx:
        with pytest.raises(PipelineError, match="--dla: TensorRT-RTX"):
            build(recipe, layout, resolve_plan(recipe, "orin-agx-64", "fp16", dla_core=0, dla_policy="fallback"))
    assert not layout.engine("fp16").exists()


@pytest.mark.slow
def test_engine_for_another_orin_writes_a_bundle(workspace: dict[str, Path]) -> None:
    recipe = load_recipe(str(workspace["recipe"]))
    from pipeline.stages.flow import run_engine

    results = run_engine(recipe, resolve_plan(recipe, "orin-nano-8", "fp32"), workspace["root"], workspace["calib"])
    assert [r.name for r in results] == ["export", "calibrate[fp32]", "bundle[fp32]"]
    layout = Layout(workspace["root"], recipe.name)
    meta = json.loads((layout.precision_dir("fp32") / "bundle" / "bundle.json").read_text())
    assert meta["target"] == "orin-nano-8"
    assert meta["build"]["workspace_bytes"] == get_target("orin-nano-8").builder_caps()["workspace_bytes"]
    assert {"model.onnx", "calibrate.json", "recipe.yaml"} <= set(meta["files"])
    again = run_engine(recipe, resolve_plan(recipe, "orin-nano-8", "fp32"), workspace["root"], workspace["calib"])
    assert again[-1].skipped


@pytest.mark.slow
def test_sparse_engine_and_its_report(workspace: dict[str, Path]) -> None:
    _rtx_or_skip()
    from pipeline.stages.flow import run_engine, run_profile

    recipe = load_recipe(str(workspace["recipe"]))
    results = run_engine(recipe, resolve_plan(recipe, None, "fp32", sparse=True), workspace["root"], workspace["calib"])
    assert [r.name for r in results] == ["export", "sparsify", "calibrate[fp32]", "build[fp32]"]
    layout = Layout(workspace["root"], f"{recipe.name}-sparse24")
    assert read_json(layout.manifest("fp32"))["builder"]["sparse_weights"] is True
    run_profile(recipe, "fp32", workspace["root"], sparse=True)
    report = read_json(layout.report_json("fp32"))
    assert report["sparsity"]["sparsity_ratio"] == pytest.approx(0.5)
    assert report["sparsity"]["accuracy_change"]["output0"]["cosine"] < 1.0
    assert report["analysis"]["target"] == "orin-agx-64" and report["analysis"]["totals"]["flops"] > 0
    md = layout.report_md("fp32").read_text()
    assert "## Sparsity" in md and "## Analysis" in md and "analysis-orin-agx-64-roofline.png" in md
    assert (layout.precision_dir("fp32") / "analysis-orin-agx-64-roofline.png").exists()
