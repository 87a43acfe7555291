"""Profiles after the first carry TensorRT's extra memory target (`build.extra_profile_memory`): 0 for an
LLM's decode profile by default, so the builder aims to reuse the prefill profile's weights instead of
storing every GEMM weight twice. The value reaches the real TensorRT-RTX profile objects and the engine
builds with it; the recipe, the family default and the recorded build options agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.errors import PipelineError
from pipeline.recipe.loader import load_recipe
from pipeline.stages.plan import resolve_plan
from pipeline.trt.build import BuildOptions, _profiles, build_engine
from tests.conftest import REPO

LLAMA = str(REPO / "tests" / "fixtures" / "llama" / "llama.yaml")
TWO_PROFILES = [{"x": ([1, 2, 64], [1, 8, 64], [1, 16, 64])}, {"x": ([1, 1, 64], [1, 1, 64], [1, 1, 64])}]


def _matmul(tmp_path: Path) -> Path:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 256)).astype(np.float16), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, "s", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, "s", 256])], [w])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


def test_later_profiles_carry_the_memory_target_into_tensorrt(tmp_path: Path) -> None:
    from pipeline.trt.backend import select_backend

    trt = select_backend().module
    from polygraphy.backend.trt import NetworkFromOnnxPath

    path = _matmul(tmp_path)
    builder, network, parser = NetworkFromOnnxPath(str(path), strongly_typed=True)()
    opts = BuildOptions(profiles=TWO_PROFILES, workspace_bytes=64 << 20, extra_profile_memory=0.0)
    made = [p.to_trt(builder, network) for p in _profiles(opts)]
    assert isinstance(made[1], trt.IOptimizationProfile)
    assert [p.extra_memory_target for p in made] == [1.0, 0.0]  # the first profile keeps TensorRT's default
    default = [p.to_trt(builder, network) for p in _profiles(BuildOptions(TWO_PROFILES, 64 << 20))]
    assert [p.extra_memory_target for p in default] == [1.0, 1.0]
    # A real two-profile build with the target set.
    out = build_engine(path, opts, tmp_path / "mm.engine")
    assert out.plan_bytes == (tmp_path / "mm.engine").stat().st_size > 64 * 256 * 2


def test_llms_share_profile_weights_by_default_and_the_recipe_decides() -> None:
    plan = resolve_plan(load_recipe(LLAMA), None, "fp16")
    assert plan.extra_profile_memory == 0.0
    assert plan.options()["extra_profile_memory"] == 0.0  # recorded: manifest, stage key, bundle
    own = resolve_plan(load_recipe(LLAMA, ["build.extra_profile_memory=1"]), None, "fp16")
    assert own.extra_profile_memory == 1.0
    yolo = resolve_plan(load_recipe("yolo"), None, "fp16")  # one profile: nothing to constrain
    assert yolo.extra_profile_memory is None and "extra_profile_memory" not in yolo.options()


def test_a_memory_target_outside_zero_to_one_is_a_one_line_error() -> None:
    with pytest.raises(PipelineError, match="extra_profile_memory"):
        load_recipe(LLAMA, ["build.extra_profile_memory=2"])


def test_the_equivalent_commands_say_what_they_cannot_express() -> None:
    from pipeline.trt.commandlines import equivalents

    build = resolve_plan(load_recipe(LLAMA), None, "fp16").options()
    profiles = load_recipe(LLAMA).profiles
    notes = [n for c in equivalents(profiles, build, "fp16") for n in c.notes]
    assert any("extra_memory_target = 0" in n for n in notes)
