"""Every bad input gets a one-line error naming the thing at fault, exit code 2, and no half-written
artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.core.artifacts import Layout

from .conftest import small_yolo_recipe


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def artifacts(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def recipe_with(tmp_path: Path, **changes: object) -> Path:
    path = small_yolo_recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw[section][key] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def with_exported_model(workspace: dict[str, Path], root: Path, recipe: Path) -> None:
    """A fresh root holding only the exported ONNX, so calibration errors are tested in isolation. The
    copy is stamped as `recipe`'s export (its checkpoint path differs, so the recorded digest would)."""
    import onnx

    from pipeline.core.integrity import DIGEST_KEY
    from pipeline.core.onnx_utils import set_metadata
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.export import export_digest

    src = Layout(workspace["root"], "yolo-test").exported_onnx
    if not src.exists():
        assert main(["export", "--model", str(workspace["recipe"]), "--root", str(workspace["root"])]) == 0
    dst = Layout(root, "yolo-test").exported_onnx
    dst.parent.mkdir(parents=True)
    model = onnx.load(str(src))
    set_metadata(model, {DIGEST_KEY: export_digest(load_recipe(str(recipe)))})
    onnx.save(model, str(dst))


def test_unknown_model_precision_and_option(capsys: pytest.CaptureFixture) -> None:
    code, line = run_cli(capsys, "engine", "--model", "nosuch")
    assert code == 2 and line.startswith("orin-trt: error: unknown model 'nosuch'")
    code, line = run_cli(capsys, "engine", "--model", "yolo", "--precision", "int3")
    assert code == 2 and "unknown precision 'int3'" in line
    with pytest.raises(SystemExit) as e:
        main(["engine", "--bogus-option"])
    assert e.value.code == 2
    assert "--bogus-option" in capsys.readouterr().err


def test_corrupt_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"this is not a torch checkpoint")
    recipe = recipe_with(tmp_path, source__checkpoint=str(ckpt))
    root = tmp_path / "engines"
    code, line = run_cli(capsys, "export", "--model", str(recipe), "--root", str(root))
    assert code == 2 and f"{ckpt}: cannot load the YOLO checkpoint" in line
    assert not any(a.endswith(".onnx") or a.endswith("export.json") for a in artifacts(root))


def test_missing_and_corrupt_onnx(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe, root = small_yolo_recipe(tmp_path), tmp_path / "engines"
    code, line = run_cli(capsys, "calibrate", "--model", str(recipe), "--precision", "fp32", "--root", str(root))
    assert code == 2 and line.endswith("model.onnx not found: run `orin-trt export --model yolo-test` first")
    lay = Layout(root, "yolo-test")
    lay.model_dir.mkdir(parents=True, exist_ok=True)
    lay.exported_onnx.write_bytes(b"\x08\x07garbage")
    code, line = run_cli(capsys, "calibrate", "--model", str(recipe), "--precision", "fp32", "--root", str(root))
    assert code == 2 and f"{lay.exported_onnx}: not a readable ONNX model" in line
    assert not lay.calibrated_onnx("fp32").exists() and not lay.stamp("calibrate-fp32").exists()


@pytest.mark.parametrize("case", ["empty", "non-image", "undecodable"])
def test_bad_calibration_folder(workspace, tmp_path: Path, capsys: pytest.CaptureFixture, case: str) -> None:
    folder = tmp_path / "calib-images"
    folder.mkdir()
    if case == "non-image":
        (folder / "a.jpg").write_bytes((Path(__file__).parent / "data" / "tiny.jpg").read_bytes())
        (folder / "labels.csv").write_text("x,y\n")
    if case == "undecodable":
        (folder / "broken.jpg").write_bytes(b"not a jpeg")
    recipe = recipe_with(tmp_path, calibration__images=str(folder))
    root = tmp_path / "engines"
    with_exported_model(workspace, root, recipe)
    code, line = run_cli(capsys, "calibrate", "--model", str(recipe), "--precision", "int8", "--root", str(root))
    assert code == 2
    expected = {
        "empty": f"image folder is empty: {folder}",
        "non-image": f"{folder / 'labels.csv'}: not an image",
        "undecodable": f"{folder / 'broken.jpg'}: cannot be decoded as an image",
    }[case]
    assert expected in line
    assert not Layout(root, "yolo-test").calibrated_onnx("int8").exists()


def test_small_calibration_set_warns(workspace, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "few"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((Path(__file__).parent / "data" / "tiny.jpg").read_bytes())
    recipe = recipe_with(tmp_path, calibration__images=str(folder), calibration__recommended_min=500)
    root = tmp_path / "engines"
    with_exported_model(workspace, root, recipe)
    assert main(["calibrate", "--model", str(recipe), "--precision", "fp16", "--root", str(root)]) == 0
    assert "has 1 images; 500 or more are recommended" in capsys.readouterr().err


def test_shape_outside_the_profile(workspace, capsys: pytest.CaptureFixture) -> None:
    base = ["--model", str(workspace["recipe"]), "--root", str(workspace["root"]), "--calib-root", str(workspace["calib"])]
    assert main(["engine", "--precision", "fp32", *base]) == 0
    code, line = run_cli(capsys, "profile", "--precision", "fp32", "--batch", "8", *base)
    assert code == 2 and "input 'images' shape [8, 3, 320, 320] is outside the profile" in line


def test_profile_before_build_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, line = run_cli(capsys, "profile", "--model", str(small_yolo_recipe(tmp_path)), "--precision", "fp32",
                         "--root", str(tmp_path / "engines"))
    assert code == 2 and "model.engine not found: run `orin-trt engine" in line
