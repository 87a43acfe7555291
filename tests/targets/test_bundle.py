"""Bundle round trip: the host writes a bundle, a fresh interpreter reads it and builds without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.core.artifacts import Layout, write_json
from pipeline.errors import PipelineError
from pipeline.recipe.loader import RECIPES_DIR, load_recipe
from pipeline.stages.bundle import bundle_dir, host_can_build_for, read_bundle, write_bundle
from pipeline.stages.plan import BuildPlan, DlaPlan, resolve_plan

from .graphs import conv_matmul, save
from .test_jetson_info import fake_jetson

REPO = Path(__file__).resolve().parents[2]


def calibrated_layout(tmp: Path, max_batch: int = 2) -> tuple[Layout, Path]:
    """A layout as calibrate leaves it (fp32 ONNX + calibrate.json) for a tiny recipe."""
    raw = yaml.safe_load((RECIPES_DIR / "yolo.yaml").read_text())
    raw["name"] = "tiny"
    raw["inputs"] = {"x": {"dtype": "float32", "min": [1, 4, 16, 16], "opt": [1, 4, 16, 16], "max": [max_batch, 4, 16, 16]}}
    raw.update(imgsz=16, preprocess={**raw["preprocess"], "input": "x"})  # the image size, said once, agrees
    recipe_path = tmp / "tiny.yaml"
    recipe_path.write_text(yaml.safe_dump(raw))
    layout = Layout(tmp / "engines", "tiny")
    layout.precision_dir("fp32").mkdir(parents=True)
    save(conv_matmul(), layout.calibrated_onnx("fp32"))
    write_json(layout.calibrate_report("fp32"), {"calibration": None, "method": None, "high_precision_dtype": None,
                                                  "kept_out": None})
    return layout, recipe_path


def test_host_writes_and_verifies_a_bundle(tmp_path: Path) -> None:
    layout, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    b = write_bundle(recipe, layout, resolve_plan(recipe, "orin-nano-8", "fp32"))
    assert b.path == bundle_dir(layout, "fp32")
    assert sorted(b.meta["files"]) == ["build_commands.sh", "calibrate.json", "model.onnx", "recipe.yaml"]
    assert b.meta["build"]["target"] == "orin-nano-8" and "x" in b.recipe().inputs
    assert read_bundle(b.path, "orin-nano-8-super").target == "orin-nano-8"  # power mode does not matter
    with pytest.raises(PipelineError, match="bundle made for orin-nano-8, but this Jetson is orin-agx-64"):
        read_bundle(b.path, "orin-agx-64")
    (b.path / "model.onnx").write_bytes(b"truncated")
    with pytest.raises(PipelineError, match="model.onnx: sha256 differs"):
        read_bundle(b.path)


def test_only_the_target_orin_builds_itself(tmp_path: Path) -> None:
    assert host_can_build_for(None, tmp_path)
    assert not host_can_build_for("orin-agx-64", tmp_path)  # a host that is no Jetson writes a bundle
    root = fake_jetson(tmp_path / "j", "NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3701-0005")
    assert host_can_build_for("orin-agx-64", root)
    assert not host_can_build_for("orin-nano-8", root)


def test_orin_side_builds_from_the_bundle_without_torch(tmp_path: Path) -> None:
    pytest.importorskip("polygraphy")
    layout, recipe_path = calibrated_layout(tmp_path)
    recipe = load_recipe(str(recipe_path))
    write_bundle(recipe, layout, resolve_plan(recipe, "orin-agx-64", "fp32"))
    # the Orin only has the bundle: drop what calibrate left
    layout.calibrated_onnx("fp32").unlink()
    layout.calibrate_report("fp32").unlink()
    jetson = fake_jetson(tmp_path / "jetson", "NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3701-0005")
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from pipeline.core.artifacts import Layout
        from pipeline.stages.bundle import build_from_bundle
        from pipeline.trt.backend import select_backend
        try:
            select_backend()
        except Exception as e:
            print(json.dumps({{"skip": str(e)}})); sys.exit(0)
        layout = Layout(Path({str(layout.root)!r}), "tiny")
        result = build_from_bundle(layout, "fp32", root=Path({str(jetson)!r}))
        print(json.dumps({{"torch": "torch" in sys.modules, "engine": layout.engine("fp32").stat().st_size,
                           "skipped": result.skipped}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(f"no TensorRT backend here: {out['skip']}")
    assert out == {"torch": False, "engine": out["engine"], "skipped": False} and out["engine"] > 0
    manifest = json.loads(layout.manifest("fp32").read_text())
    assert manifest["target"] == "orin-agx-64" and manifest["io"]["inputs"][0]["name"] == "x"


def test_dla_int8_bundle_carries_the_calibration_cache(tmp_path: Path) -> None:
    from pipeline.platform.dla.calib_cache import read_cache
    from pipeline.stages.bundle import bundle_stage

    from .graphs import qdq_conv

    raw = yaml.safe_load((RECIPES_DIR / "yolo.yaml").read_text())
    raw.update(name="tinyq", inputs={"x": {"dtype": "float32", "min": [1, 3, 8, 8], "opt": [1, 3, 8, 8],
                                            "max": [1, 3, 8, 8]}})
    raw.update(imgsz=8, preprocess={**raw["preprocess"], "input": "x"})
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(raw))
    recipe = load_recipe(str(tmp_path / "q.yaml"))
    layout = Layout(tmp_path / "engines", "tinyq")
    layout.precision_dir("int8").mkdir(parents=True)
    save(qdq_conv(x_scale=0.02), layout.calibrated_onnx("int8"))
    write_json(layout.calibrate_report("int8"), {"calibration": None, "method": "entropy"})
    result = bundle_stage(recipe, layout, resolve_plan(recipe, "orin-agx-64", "int8", dla_core=0))
    assert not result.skipped
    bundle = read_bundle(bundle_dir(layout, "int8"), "orin-agx-64")
    assert bundle.calibration_cache is not None and "calibration.cache" in bundle.meta["files"]
    header, scales = read_cache(bundle.calibration_cache)
    assert header == "TRT-100300-EntropyCalibration2" and scales["x"] == pytest.approx(0.02, rel=1e-7)
    assert bundle_stage(recipe, layout, resolve_plan(recipe, "orin-agx-64", "int8", dla_core=0)).skipped


def test_strict_dla_fails_on_the_host_before_bundling(tmp_path: Path) -> None:
    from pipeline.stages.bundle import bundle_stage

    layout, recipe_path = calibrated_layout(tmp_path, max_batch=1)
    with pytest.raises(PipelineError, match="--dla-policy strict"):
        bundle_stage(load_recipe(str(recipe_path)), layout, BuildPlan(
            precision="fp32", target="orin-agx-64", workspace_bytes=1 << 28, builder_optimization_level=3,
            dla=DlaPlan(0, "strict")))
    assert not bundle_dir(layout, "fp32").exists()
