"""Artifacts are used only when checked: one build's engine, manifest and ONNX; this model's export;
a copied root re-checked against its own files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.artifacts import Layout

from .conftest import small_yolo_recipe
from .test_bad_input import run_cli


@pytest.fixture(scope="module")
def fp32(workspace: dict[str, Path]) -> dict[str, Path]:
    args = ["--model", str(workspace["recipe"]), "--root", str(workspace["root"]),
            "--calib-root", str(workspace["calib"]), "--precision", "fp32"]
    assert main(["engine", *args]) == 0
    return workspace


def _copy(ws: dict[str, Path], dest: Path) -> Layout:
    shutil.copytree(ws["root"] / "yolo-test", dest / "yolo-test", copy_function=shutil.copy2)
    return Layout(dest, "yolo-test")


def _args(ws: dict[str, Path], root: Path, *extra: str) -> list[str]:
    return ["--model", str(ws["recipe"]), "--root", str(root), "--calib-root", str(ws["calib"]),
            "--precision", "fp32", *extra]


def test_a_copied_root_without_its_engine_rebuilds(fp32: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    lay = _copy(fp32, tmp_path)
    lay.engine("fp32").unlink()
    assert main(["engine", *_args(fp32, tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "[build[fp32]] running (outputs missing or modified)" in err and "[export] up to date" in err
    assert lay.engine("fp32").exists()


def test_profile_refuses_a_truncated_engine(fp32: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    lay = _copy(fp32, tmp_path)
    engine = lay.engine("fp32")
    engine.write_bytes(engine.read_bytes()[:1000])
    code, line = run_cli(capsys, "profile", *_args(fp32, tmp_path))
    assert code == 2 and line == (f"orin-trt: error: {engine}: 1000 bytes but {lay.manifest('fp32')} records "
                                  f"{json.loads(lay.manifest('fp32').read_text())['engine']['bytes']}; engine and "
                                  "manifest are from different builds (rebuild: orin-trt build ... --force)")


def test_profile_and_deploy_refuse_an_engine_older_than_its_onnx(fp32: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    import onnx

    lay = _copy(fp32, tmp_path)
    onnx_path = lay.calibrated_onnx("fp32")
    model = onnx.load(str(onnx_path))
    model.doc_string = "changed after the build"
    onnx.save(model, str(onnx_path))  # as a calibrate whose build then failed would leave it
    code, line = run_cli(capsys, "profile", *_args(fp32, tmp_path))
    assert code == 2 and "was built from another" in line and "run `orin-trt build --model yolo-test" in line
    code, line = run_cli(capsys, "deploy", "--model", str(fp32["recipe"]), "--root", str(tmp_path),
                         "--precision", "fp32", "--format", "triton", "--out", str(tmp_path / "repo"))
    assert code == 2 and "was built from another" in line
    assert not (tmp_path / "repo").exists()


def test_deploy_refuses_a_same_size_edit_of_the_engine(fp32: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    lay = _copy(fp32, tmp_path)
    engine = lay.engine("fp32")
    data = bytearray(engine.read_bytes())
    data[-1] ^= 0xFF
    st = engine.stat()
    engine.write_bytes(bytes(data))
    os.utime(engine, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, line = run_cli(capsys, "deploy", "--model", str(fp32["recipe"]), "--root", str(tmp_path),
                         "--precision", "fp32", "--format", "triton", "--out", str(tmp_path / "repo"))
    assert code == 2 and line.endswith("SHA-256 differs from " f"{lay.manifest('fp32')}; engine and manifest are "
                                       "from different builds (rebuild: orin-trt build ... --force)")


def test_calibrate_refuses_another_models_export(fp32: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    import yaml

    other = small_yolo_recipe(tmp_path)
    raw = yaml.safe_load(other.read_text())
    raw["name"] = "other"
    other.write_text(yaml.safe_dump(raw))
    src = Layout(fp32["root"], "yolo-test").exported_onnx
    dst = Layout(tmp_path / "engines", "other").exported_onnx
    dst.parent.mkdir(parents=True)
    shutil.copy(src, dst)
    code, line = run_cli(capsys, "calibrate", "--model", str(other), "--root", str(tmp_path / "engines"),
                         "--precision", "fp32")
    assert code == 2 and line == (f"orin-trt: error: {dst} was exported for model 'yolo-test', not 'other': "
                                  "run `orin-trt export --model other --force`")


def test_stages_run_out_of_order_name_the_missing_stage(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = small_yolo_recipe(tmp_path)
    root = tmp_path / "engines"
    code, line = run_cli(capsys, "calibrate", "--model", str(recipe), "--root", str(root), "--precision", "fp32")
    assert code == 2 and line.endswith("model.onnx not found: run `orin-trt export --model yolo-test` first")
    code, line = run_cli(capsys, "build", "--model", str(recipe), "--root", str(root), "--precision", "fp16")
    assert code == 2 and line.endswith("not found: run `orin-trt calibrate --model yolo-test --precision fp16` first")
