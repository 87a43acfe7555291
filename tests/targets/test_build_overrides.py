"""What trtexec users tune (--workspace, --opt-level, --timing-cache, --strip-weights) on build / engine:
checked, winning over the recipe, in the stage key and the manifest, and really reaching the builder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.artifacts import read_json
from pipeline.errors import PipelineError
from pipeline.platform.targets import MIB, get_target
from pipeline.recipe.loader import load_recipe
from pipeline.stages.build import build
from pipeline.stages.plan import resolve_plan

from .test_bundle import calibrated_layout
from .test_integration import _rtx_or_skip


def test_overrides_win_over_the_recipe_and_are_checked(tmp_path: Path) -> None:
    _, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    opts = resolve_plan(recipe, None, overrides={"workspace_mib": 256, "builder_optimization_level": 5,
                                                  "timing_cache": tmp_path / "t.cache"}).options()
    assert opts["workspace_bytes"] == 256 * MIB and opts["builder_optimization_level"] == 5
    assert opts["timing_cache"] == str(tmp_path / "t.cache")
    # For another Orin the bundle carries the request; that Orin's builder strips the plan.
    assert resolve_plan(recipe, "orin-agx-64", "fp32", overrides={"strip_weights": True}).options()["strip_weights"] is True
    assert opts["overrides"]["workspace_mib"] == 256
    plain = resolve_plan(recipe, None, overrides={"workspace_mib": None, "strip_weights": None}).options()
    assert "overrides" not in plain and "strip_weights" not in plain and plain["workspace_bytes"] == 1024 * MIB
    # An explicit workspace over the board's cap is used as asked (the default is capped).
    cap = get_target("orin-nano-4").builder_caps()["workspace_bytes"]
    assert resolve_plan(recipe, "orin-nano-4", "fp32", overrides={"workspace_mib": 2048}).options()["workspace_bytes"] == \
        2048 * MIB > cap
    with pytest.raises(PipelineError, match=r"--opt-level 7: choose 0\.\.5"):
        resolve_plan(recipe, None, overrides={"builder_optimization_level": 7}).options()
    with pytest.raises(PipelineError, match="--workspace 0: give the builder workspace in MiB"):
        resolve_plan(recipe, None, overrides={"workspace_mib": 0}).options()


def test_cli_overrides_reach_the_manifest_and_the_stage_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rtx_or_skip()
    layout, recipe_path = calibrated_layout(tmp_path)
    root = str(tmp_path / "engines")
    base = ["build", "--model", str(recipe_path), "--precision", "fp32", "--root", root]
    assert main([*base, "--workspace", "128", "--opt-level", "1", "--timing-cache", str(tmp_path / "my.cache")]) == 0
    builder = read_json(layout.manifest("fp32"))["builder"]
    assert builder["workspace_bytes"] == 128 * MIB and builder["builder_optimization_level"] == 1
    assert builder["overrides"] == {"workspace_mib": 128, "builder_optimization_level": 1,
                                    "timing_cache": str(tmp_path / "my.cache")}
    assert builder["strip_weights"] is False
    capsys.readouterr()
    assert main([*base, "--workspace", "128", "--opt-level", "2", "--timing-cache", str(tmp_path / "my.cache")]) == 0
    assert "changed: options" in capsys.readouterr().err  # a different level is a different engine
    assert main([*base, "--opt-level", "9"]) == 2
    assert "--opt-level 9: choose 0..5" in capsys.readouterr().err


def _strip_refusal() -> str | None:
    """Why this host's builder cannot strip (TensorRT-RTX without a CUDA device), or None."""
    from pipeline.trt.backend import cuda_device_count, select_backend

    backend = select_backend()
    return backend.describe() if backend.is_rtx and cuda_device_count() == 0 else None


def test_strip_weights_makes_a_smaller_refittable_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """STRIP_PLAN + REFIT_IDENTICAL leave the weights out of the plan. TensorRT-RTX 1.7 has the flags but
    builds refittable plans only with a CUDA device: without one the request is refused before any work."""
    _rtx_or_skip()
    layout, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    if (rtx := _strip_refusal()) is not None:
        with pytest.raises(PipelineError, match=rf"--strip-weights: {re.escape(rtx)} builds refittable plans only "
                           "with a CUDA device"):
            build(recipe, layout, resolve_plan(recipe, None, "fp32", overrides={"strip_weights": True}))
        assert not layout.engine("fp32").exists()
        assert main(["engine", "--model", str(recipe_path), "--precision", "fp32", "--strip-weights",
                     "--root", str(tmp_path / "engines")]) == 2
        assert "--strip-weights" in capsys.readouterr().err
        return
    build(recipe, layout, resolve_plan(recipe, None, "fp32"))
    full = layout.engine("fp32").stat().st_size
    build(recipe, layout, resolve_plan(recipe, None, "fp32", overrides={"strip_weights": True}))
    manifest = read_json(layout.manifest("fp32"))
    stripped = layout.engine("fp32").stat().st_size
    weights = 4 * (8 * 4 * 9 + 8 + 2048 * 10)  # conv + bias + matmul, FP32 (tests/targets/graphs.py)
    assert manifest["builder"]["strip_weights"] is True and manifest["engine"]["bytes"] == stripped
    assert full - stripped > 0.9 * weights, (full, stripped)


def test_refit_from_onnx_on_the_device(tmp_path: Path) -> None:
    """Refitting deserializes the plan: only the Jetson (standard TensorRT + its GPU) can run it."""
    from pipeline.runners.tensorrt import stripped_engine_onnx
    from pipeline.trt.backend import execution_blocker, select_backend

    _rtx_or_skip()
    backend = select_backend()
    if (why := execution_blocker(backend)) is not None:
        pytest.skip(f"needs a Jetson: refitting a weight-stripped engine deserializes it ({why})")
    layout, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    build(recipe, layout, resolve_plan(recipe, None, "fp32", overrides={"strip_weights": True}))
    assert stripped_engine_onnx(layout.engine("fp32")) == layout.calibrated_onnx("fp32")
    from pipeline.trt.refit import refit_from_onnx

    engine = refit_from_onnx(backend, layout.engine("fp32").read_bytes(), layout.calibrated_onnx("fp32"))
    assert engine.num_io_tensors == 2


def test_the_runner_refits_only_stripped_engines(tmp_path: Path) -> None:
    from pipeline.core.artifacts import write_json
    from pipeline.runners.tensorrt import stripped_engine_onnx

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    assert stripped_engine_onnx(engine) is None  # no manifest: an engine from elsewhere, run as it is
    write_json(tmp_path / "model.engine.json", {"builder": {"strip_weights": False}, "onnx": {"file": "model.onnx"}})
    assert stripped_engine_onnx(engine) is None
    write_json(tmp_path / "model.engine.json", {"builder": {"strip_weights": True}, "onnx": {"file": "model.onnx"}})
    assert stripped_engine_onnx(engine) == tmp_path / "model.onnx"
