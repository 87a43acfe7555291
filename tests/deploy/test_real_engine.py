"""Deploy on an engine the pipeline really built (yolo11n at 320 px, TensorRT-RTX here), and the golden
manifests the C++ tests read kept in step with the manifests the build writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.artifacts import Layout
from tests.deploy.test_deploy import read_nvinfer, read_pbtxt
from tests.golden.make_golden import DATA


@pytest.fixture(scope="module")
def real_manifest(workspace: dict[str, Path]) -> Path:
    """The fp32 engine of the session's small YOLO recipe (reused if the pipeline tests built it)."""
    args = ["--model", str(workspace["recipe"]), "--root", str(workspace["root"]), "--calib-root", str(workspace["calib"])]
    assert main(["engine", "--precision", "fp32", *args]) == 0
    return Layout(workspace["root"], "yolo-test").manifest("fp32")


def test_triton_and_deepstream_from_a_built_engine(real_manifest: Path, tmp_path: Path) -> None:
    assert main(["deploy", "--manifest", str(real_manifest), "--format", "triton", "--out", str(tmp_path / "t")]) == 0
    cfg = read_pbtxt(tmp_path / "t" / "yolo-test" / "config.pbtxt")
    assert cfg.max_batch_size == 2 and list(cfg.input[0].dims) == [3, 320, 320]  # recipe: batch 1..2, 320 px
    assert list(cfg.output[0].dims) == [84, -1]
    plan = tmp_path / "t" / "yolo-test" / "1" / "model.plan"
    assert plan.read_bytes() == real_manifest.with_name("model.engine").read_bytes()
    assert main(["deploy", "--manifest", str(real_manifest), "--format", "deepstream", "--out", str(tmp_path / "d")]) == 0
    p = read_nvinfer(tmp_path / "d" / "config_infer_yolo-test.txt")["property"]
    assert p["infer-dims"] == "3;320;320" and p["num-detected-classes"] == "80"


def test_golden_manifests_have_the_built_manifests_keys(real_manifest: Path) -> None:
    real = json.loads(real_manifest.read_text())
    golden = json.loads((DATA / "yolo_manifest.json").read_text())
    for section in ("engine", "system", "preprocess", "postprocess"):
        assert set(golden[section]) == set(real[section]), (
            f"manifest section '{section}' changed: update tests/golden/make_golden.py and regenerate")
    assert set(golden["io"]["inputs"][0]) == set(real["io"]["inputs"][0])
    assert set(golden["profiles"][0]) == set(real["profiles"][0])
