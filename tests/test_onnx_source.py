"""A user's own ONNX as the source (`source.onnx`): export skipped, the file checked, named when it is bad."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.core.artifacts import Layout, read_json

from .conftest import small_yolo_recipe
from .test_bad_input import run_cli


def _exported(workspace: dict[str, Path]) -> Path:
    lay = Layout(workspace["root"], "yolo-test")
    if not lay.exported_onnx.exists():
        assert main(["export", "--model", str(workspace["recipe"]), "--root", str(workspace["root"])]) == 0
    return lay.exported_onnx


def _recipe(tmp_path: Path, onnx_value: str) -> Path:
    path = small_yolo_recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["name"] = "mine"
    raw["source"] = {"onnx": onnx_value}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_own_onnx_builds_without_an_export(workspace: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    mine = tmp_path / "models" / "detector.onnx"
    mine.parent.mkdir()
    shutil.copy(_exported(workspace), mine)
    recipe = _recipe(tmp_path, "models/detector.onnx")  # relative to the recipe's folder
    root = tmp_path / "engines"
    assert main(["engine", "--model", str(recipe), "--precision", "fp32", "--root", str(root)]) == 0
    assert "runs on ONNX Runtime" in capsys.readouterr().err
    lay = Layout(root, "mine")
    report = read_json(lay.export_report)
    assert report["source"] == f"onnx:{mine}" and report["random_weights"] is False
    manifest = read_json(lay.manifest("fp32"))
    assert "person" in manifest["postprocess"]["class_names"]  # ultralytics' metadata was kept
    assert main(["engine", "--model", str(recipe), "--precision", "fp32", "--root", str(root)]) == 0
    assert "[export] up to date" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["truncated", "unknown-op", "as-checkpoint", "missing", "wrong-input"])
def test_a_bad_own_onnx_is_one_line(workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
                                    case: str) -> None:
    import onnx
    from onnx import TensorProto, helper

    bad = tmp_path / "bad.onnx"
    src = _exported(workspace)
    if case == "truncated":
        bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    elif case in ("unknown-op", "wrong-input"):
        op = "FooOp" if case == "unknown-op" else "Relu"
        graph = helper.make_graph([helper.make_node(op, ["x" if case == "wrong-input" else "images"], ["output0"],
                                                    name="custom")], "g",
                                  [helper.make_tensor_value_info("x" if case == "wrong-input" else "images",
                                                                 TensorProto.FLOAT, [1, 3, 320, 320])],
                                  [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 320, 320])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(bad))
    recipe = _recipe(tmp_path, str(bad))
    if case == "as-checkpoint":
        raw = yaml.safe_load(recipe.read_text())
        raw["source"] = {"checkpoint": str(src)}
        recipe.write_text(yaml.safe_dump(raw))
    root = tmp_path / "engines"
    code, line = run_cli(capsys, "export", "--model", str(recipe), "--root", str(root))
    expected = {
        "truncated": f"{bad}: not a readable ONNX model",
        "unknown-op": f"{bad}: node 'custom' uses op 'FooOp', which is not an ONNX op at opset 17",
        "as-checkpoint": f"source.checkpoint: {src} is an ONNX model; write it as source.onnx",
        "missing": f"source.onnx: {bad} not found",
        "wrong-input": f"{bad}: has no input 'images' of the recipe's inputs (it has: x)",
    }[case]
    assert code == 2 and expected in line, line
    assert not Layout(root, "mine").exported_onnx.exists()
