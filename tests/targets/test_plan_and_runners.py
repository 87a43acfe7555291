"""The build plan (resolved once, recorded, resolved again on the Orin), the runner registry and the typed
manifest: the contracts build, bundle, profile and deploy share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from pipeline.core.manifest import SCHEMA, read_manifest, write_manifest
from pipeline.errors import PipelineError
from pipeline.platform.targets import get_target
from pipeline.recipe.loader import load_recipe
from pipeline.runners import get_runner, registered, run, runner_for
from pipeline.stages.plan import plan_from_options, resolve_plan

from .graphs import conv_matmul, save
from .test_bundle import calibrated_layout


def test_a_recorded_plan_resolves_to_the_same_plan(tmp_path: Path) -> None:
    _, recipe_path = calibrated_layout(tmp_path, max_batch=1)
    recipe = load_recipe(str(recipe_path))
    plan = resolve_plan(recipe, "orin-nx-16", "fp16", dla_core=1, dla_policy="strict", sparse=True,
                        overrides={"builder_optimization_level": 4, "workspace_mib": None})
    assert plan.target == "orin-nx-16" and plan.dla is not None and plan.dla.core == 1
    assert plan.tactic_dram_bytes == get_target("orin-nx-16").builder_caps()["tactic_dram_bytes"]
    assert plan.overrides == (("builder_optimization_level", 4),)
    assert not plan.builds_here  # this host is no Orin NX: the last step writes a bundle
    # What a bundle records is what the Orin resolves again, to the same plan.
    assert plan_from_options(recipe, "fp16", plan.target, plan.options()) == plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.workspace_bytes = 1  # type: ignore[misc]


def test_dla_preflight_is_one_step_of_the_plan(tmp_path: Path) -> None:
    layout, recipe_path = calibrated_layout(tmp_path, max_batch=1)
    recipe = load_recipe(str(recipe_path))
    onnx = layout.calibrated_onnx("fp32")
    gpu_only = resolve_plan(recipe, "orin-agx-64", "fp32")
    assert gpu_only.with_dla_preflight(onnx, recipe.profiles) is gpu_only
    plan = resolve_plan(recipe, "orin-agx-64", "fp16", dla_core=0).with_dla_preflight(onnx, recipe.profiles)
    summary = plan.options()["dla"]["preflight"]
    assert summary["nodes"] == 4 and set(summary) >= {"nodes", "tensorrt_gpu_layers"}


def test_the_registry_names_its_runners_and_what_they_open(tmp_path: Path) -> None:
    assert [(r.name, r.artifact) for r in registered()] == [("onnxrt", "onnx"), ("tensorrt", "engine")]
    assert runner_for(Path("engines/m/int8/model.engine")).name == "tensorrt"
    assert runner_for(Path("engines/m/int8/model.onnx")).name == "onnxrt"
    assert get_runner("onnxrt").label("int8") == "onnxrt-int8" and get_runner("tensorrt").label("int8") == "tensorrt"
    with pytest.raises(PipelineError, match=r"notes.txt: no runner opens \.txt files"):
        runner_for(tmp_path / "notes.txt")
    with pytest.raises(PipelineError, match="unknown runner 'tflite'; choose onnxrt, tensorrt"):
        get_runner("tflite")


def test_the_onnx_runner_computes_what_onnx_runtime_does(tmp_path: Path) -> None:
    path = save(conv_matmul(), tmp_path / "model.onnx")
    feed = {"x": np.random.default_rng(0).standard_normal((1, 4, 16, 16)).astype(np.float32)}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, feed)[0]
    runner = runner_for(path)
    assert runner.blocker(None) is None
    with runner.open(path) as r:
        [[got]] = run(r, [feed], [session.get_outputs()[0].name])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_the_manifest_has_one_checked_reader_and_writer(tmp_path: Path) -> None:
    io = {"inputs": [{"name": "x", "dtype": "float32", "shape": [1, 3]}],
          "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 2]}]}
    path = tmp_path / "model.engine.json"
    written = write_manifest(path, {"model": "m", "precision": "fp16", "engine": {"file": "model.engine"}, "io": io,
                                    "builder": {"strip_weights": True}, "onnx": {"file": "model.onnx"}})
    back = read_manifest(path)
    assert back["schema"] == SCHEMA and dict(back) == dict(written)
    assert back.output_names == ["y"] and back.engine_path == tmp_path / "model.engine"
    assert back.strip_weights and back.onnx_path == tmp_path / "model.onnx"
    with pytest.raises(PipelineError, match=r"model.engine.json: io.outputs must list tensors"):
        write_manifest(path, {"model": "m", "precision": "fp16", "engine": {}, "io": {"inputs": io["inputs"]}})
    path.write_text('{"schema": "orin-trt/manifest@0"}')
    with pytest.raises(PipelineError, match=r"model.engine.json: schema is not orin-trt/manifest@1"):
        read_manifest(path)
