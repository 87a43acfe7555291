"""The bundle's trtexec / polygraphy command lines: every trtexec flag is one `trtexec --help` documents for
that TensorRT (10.3 and 11, pipeline/data/trtexec_flags.yaml), the values are the build's, the Polygraphy
line parses with Polygraphy's own argparser, and it really builds with TensorRT-RTX."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.trt.commandlines import equivalents, polygraphy, render_script, trtexec

REPO = Path(__file__).resolve().parents[2]
FLAGS = {v: set(d["flags"]) for v, d in
         yaml.safe_load((REPO / "pipeline/data/trtexec_flags.yaml").read_text())["versions"].items()}
TABLE = {"10": "10.3", "11": "11"}

YOLO = [{"name": "default", "shapes": {"images": {"min": [1, 3, 640, 640], "opt": [1, 3, 640, 640],
                                                   "max": [4, 3, 640, 640]}}}]
LLM = [{"name": "prefill", "shapes": {"input_ids": {"min": [1, 1], "opt": [1, 64], "max": [4, 128]},
                                      "past:key.0": {"min": [1, 2, 0, 32], "opt": [1, 2, 0, 32], "max": [4, 2, 0, 32]}}},
       {"name": "decode", "shapes": {"input_ids": {"min": [1, 1], "opt": [1, 1], "max": [4, 1]},
                                     "past:key.0": {"min": [1, 2, 1, 32], "opt": [1, 2, 127, 32],
                                                    "max": [4, 2, 255, 32]}}}]
BASE = {"workspace_bytes": 512 << 20, "builder_optimization_level": 4, "tactic_dram_bytes": 1536 << 20}
CASES = {
    "gpu-fp16": (YOLO, BASE, "fp16"),
    "llm-two-profiles-sparse-stripped": (LLM, {**BASE, "sparse_weights": True, "strip_weights": True}, "int8"),
    "dla-int8-fallback": (YOLO, {**BASE, "dla": {"core": 0, "policy": "fallback"}}, "int8"),
    "dla-fp16-strict-core1": (YOLO, {**BASE, "dla": {"core": 1, "policy": "strict"}}, "fp16"),
}


def test_the_flag_tables_are_nvidias() -> None:
    assert {"onnx", "saveEngine", "stronglyTyped", "minShapes", "memPoolSize", "timingCacheFile",
            "builderOptimizationLevel", "stripWeights", "useDLACore", "fp16", "int8", "calib"} <= FLAGS["10.3"]
    # TensorRT 11 removed the precision flags and calibration (NVIDIA's 10.x -> 11.x trtexec migration page);
    # --stronglyTyped stays, as a no-op.
    assert not {"fp16", "int8", "best", "calib", "bf16"} & FLAGS["11"]
    assert {"stronglyTyped", "stripWeights", "refitFromOnnx", "useDLACore", "adjustForDLA"} <= FLAGS["11"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("major", ["10", "11"])
def test_every_trtexec_flag_is_documented_and_carries_the_build(case: str, major: str) -> None:
    profiles, build, precision = CASES[case]
    argv = trtexec(profiles, build, precision, major).argv
    assert argv[0] == "trtexec"
    flags = [a[2:].split("=", 1)[0] for a in argv[1:]]
    undocumented = [f for f in flags if f not in FLAGS[TABLE[major]]]
    assert not undocumented, f"not in trtexec {TABLE[major]}'s --help: {undocumented}"
    values = {}
    for a in argv[1:]:
        key, _, value = a[2:].partition("=")
        values.setdefault(key, []).append(value)
    assert values["memPoolSize"] == ["workspace:512"] and values["builderOptimizationLevel"] == ["4"]
    assert values["timingCacheFile"] == ["timing.cache"]
    # One min/opt/max triple per profile, `--profile=i` before each when there are several.
    assert values.get("profile", []) == ([str(i) for i in range(len(profiles))] if len(profiles) > 1 else [])
    for i, profile in enumerate(profiles):
        for key in ("min", "opt", "max"):
            spec = values[f"{key}Shapes"][i]
            parsed = dict(re.match(r"('?)(.+)\1:([\dx]+)$", part).group(2, 3) for part in _split_spec(spec))
            assert parsed == {n: "x".join(map(str, s[key])) for n, s in profile["shapes"].items()}
    dla = build.get("dla")
    implicit = bool(dla) and major == "10"
    assert ("stronglyTyped" in values) == (not implicit)
    assert ("int8" in values) == (implicit and precision == "int8")
    assert ("calib" in values) == (implicit and precision == "int8")
    assert values.get("useDLACore") == ([str(dla["core"])] if dla else None)
    assert ("allowGPUFallback" in values) == bool(dla and dla["policy"] == "fallback")
    assert ("sparsity" in values) == bool(build.get("sparse_weights"))
    assert ("stripWeights" in values) == bool(build.get("strip_weights"))


def _split_spec(spec: str) -> list[str]:
    """trtexec's `name:dims,name:dims` with single-quoted names that may hold ',' or ':'."""
    return re.findall(r"(?:'[^']*'|[^,:']+):[\dx]+", spec)


def _polygraphy_parse(argv: list[str]) -> argparse.Namespace:
    """Polygraphy's own CLI parser (polygraphy.tools._main), without running the tool."""
    from polygraphy.tools.registry import TOOL_REGISTRY

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="tools")
    for tool in TOOL_REGISTRY:
        tool.setup_parser(sub)
    args, unknown = parser.parse_known_args(argv)
    assert not unknown, unknown
    return args


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("major", ["10", "11"])
def test_the_polygraphy_line_parses_with_polygraphys_argparser(case: str, major: str) -> None:
    profiles, build, precision = CASES[case]
    cmd = polygraphy(profiles, build, precision, major)
    args = _polygraphy_parse(cmd.argv[1:])
    assert args.tools == "convert" and args.convert_to == "trt" and args.output == "model.engine"
    from polygraphy.tools.args import TrtConfigArgs

    args.subcommand.parse(args)  # Polygraphy's own reading of the groups: the profiles as orin-trt builds them
    config = args.subcommand.arg_groups[TrtConfigArgs]
    assert config.profile_dicts == [{n: (s["min"], s["opt"], s["max"]) for n, s in p["shapes"].items()}
                                    for p in profiles]
    assert args.builder_optimization_level == 4
    assert bool(getattr(args, "strongly_typed", False)) == (not (build.get("dla") and major == "10"))
    assert bool(args.strip_plan) == bool(build.get("strip_weights"))
    if build.get("dla", {}).get("core") == 1:
        assert any("core 0 only" in n for n in cmd.notes)


def test_the_script_runs_the_same_argv_and_differs_only_where_tensorrt_does() -> None:
    for case, (profiles, build, precision) in CASES.items():
        commands = equivalents(profiles, build, precision)
        script = render_script(commands, case, {**build, "target": "orin-agx-64"})
        execs = re.findall(r"  exec (.*?)\nfi", script, flags=re.S)
        assert [shlex.split(e.replace("\\\n", " ")) for e in execs] == [c.argv for c in commands]
        # GPU builds: one pair serves TensorRT 10 and 11; DLA builds differ (implicit INT8 on 10.x).
        assert len(commands) == (4 if build.get("dla") else 2), case
        subprocess.run(["sh", "-n", "-c", script], check=True)
        if build.get("dla"):  # the DLA commands name only the lines whose TensorRT has a DLA on AGX Orin
            assert "# TensorRT 10.x (JetPack 6.2)\n" in script and "# TensorRT 11.x (JetPack 7.2.2+)\n" in script
        else:
            assert "# TensorRT 10.x and 11.x alike (JetPack 6.2, JetPack 7.2 / 7.2.1; JetPack 7.2.2+)" in script


@pytest.mark.slow
def test_the_polygraphy_line_builds_with_tensorrt_rtx(tmp_path: Path) -> None:
    """Run the bundle's own polygraphy line (TensorRT-RTX through POLYGRAPHY_USE_TENSORRT_RTX=1)."""
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.bundle import COMMANDS_NAME, write_bundle
    from pipeline.stages.plan import resolve_plan

    from .test_bundle import calibrated_layout
    from .test_integration import _rtx_or_skip

    _rtx_or_skip()
    layout, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    bundle = write_bundle(recipe, layout, resolve_plan(recipe, "orin-nano-8", "fp32",
                                                       overrides={"builder_optimization_level": 1}))
    script = bundle.path / COMMANDS_NAME
    env = {**os.environ, "POLYGRAPHY_USE_TENSORRT_RTX": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["sh", str(script), "polygraphy"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # The same plan as orin-trt's own build of that ONNX with those options.
    from pipeline.stages.build import build

    build(recipe, layout, resolve_plan(recipe, None, "fp32", overrides={"builder_optimization_level": 1}))
    assert (bundle.path / "model.engine").stat().st_size == layout.engine("fp32").stat().st_size > 100_000
