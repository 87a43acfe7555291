"""Failures a user meets outside the recipe: roots, disks, signals, concurrent runs, bad arguments.

Each asserts the one-line message, the exit code and what is left on disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.artifacts import Layout
from pipeline.core.locking import exclusive_lock
from pipeline.errors import PipelineError

from .conftest import REPO, small_yolo_recipe
from .test_bad_input import run_cli


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *argv]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small file system of our own (root only: CI and this machine run tests as root)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.name not in (".lock", ".scratch"))


def test_root_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "engines").write_text("not a folder")
    code, line = run_cli(capsys, "export", "--model", str(small_yolo_recipe(tmp_path)),
                         "--root", str(tmp_path / "engines"))
    assert code == 2 and line == f"orin-trt: error: output root {tmp_path / 'engines'} is a file, not a folder (pass another --root)"


@needs_root
def test_read_only_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        code, line = run_cli(capsys, "export", "--model", str(small_yolo_recipe(tmp_path)), "--root", str(ro))
    assert code == 2 and line == f"orin-trt: error: output root {ro} is not writable (read-only? pass another --root)"


@needs_root
def test_disk_full_during_export_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    recipe = small_yolo_recipe(tmp_path)
    with tmpfs(tmp_path / "small", "2m") as root:
        proc = subprocess.run(_cli("export", "--model", str(recipe), "--root", str(root)), env=_env(),
                              capture_output=True, text=True, timeout=300)
        last = proc.stderr.strip().splitlines()[-1]
        left = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".lock"]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert last.startswith("orin-trt: error: ") and "no space left on device" in last.lower(), last
    assert "Traceback" not in proc.stderr
    assert left == []  # no half-written ONNX, no stamp, no scratch


@pytest.mark.parametrize("argv, needle", [
    (["profile", "--batch", "-1"], "argument --batch: must be at least 1, got -1"),
    (["profile", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["profile", "--iterations", "0"], "argument --iterations: must be at least 1, got 0"),
    (["generate", "--prompt", ""], "argument --prompt: must not be empty"),
    (["generate", "--prompt", "x", "--max-new-tokens", "-5"], "argument --max-new-tokens: must be at least 1, got -5"),
])
def test_bad_counts_are_refused_at_the_argument(argv: list[str], needle: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_dla_without_a_target_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import pipeline.trt.backend as backend

    # A TensorRT whose line has DLA (JetPack 6): then the board decides, so --target is asked for.
    monkeypatch.setattr(backend, "select_backend", lambda: backend.Backend("tensorrt", "10.3.0.30", SimpleNamespace()))
    t0 = time.perf_counter()
    code, line = run_cli(capsys, "engine", "--model", str(small_yolo_recipe(tmp_path)), "--dla", "0",
                         "--root", str(tmp_path / "engines"))
    assert code == 2 and "--dla 0 needs --target" in line
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "engines").exists()


def test_a_model_name_with_a_path_cannot_escape_the_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import yaml

    recipe = small_yolo_recipe(tmp_path)
    raw = yaml.safe_load(recipe.read_text())
    raw["name"] = "../escape"
    recipe.write_text(yaml.safe_dump(raw))
    code, line = run_cli(capsys, "export", "--model", str(recipe), "--root", str(tmp_path / "engines"))
    assert code == 2 and f"recipe {recipe}: name: '../escape' must be letters, digits" in line
    assert not (tmp_path / "escape").exists()
    with pytest.raises(PipelineError, match="is not a plain name"):  # the layout refuses it too
        Layout(tmp_path / "engines", "../escape")


def test_what_a_killed_run_left_is_cleaned_by_the_next(workspace: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "engines"
    shutil.copytree(workspace["root"] / "yolo-test", root / "yolo-test", symlinks=True) \
        if (workspace["root"] / "yolo-test").exists() else None
    lay = Layout(root, "yolo-test")
    lay.precision_dir("int8").mkdir(parents=True, exist_ok=True)
    stale_engine = lay.precision_dir("int8") / ".model.engine.k3j4h5g6.tmp"
    stale_engine.write_bytes(b"x" * 1000)
    stale_images = tmp_path / "calib" / "yolo-test" / ".images.ab12cd34"
    stale_images.mkdir(parents=True)
    (stale_images / "img.jpg").write_bytes(b"x")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale_scratch = root / ".scratch" / dead.stdout.strip()
    stale_scratch.mkdir(parents=True)
    (stale_scratch / "quantizer.onnx").write_bytes(b"x" * 1000)
    assert main(["export", "--model", str(workspace["recipe"]), "--root", str(root),
                 "--calib-root", str(tmp_path / "calib")]) == 0
    assert not stale_engine.exists() and not stale_images.exists() and not stale_scratch.exists()
    assert leftovers(root / "yolo-test") == [".stamps"]  # no hidden temporaries left


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(_cli(*argv), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, needle: str, timeout: float = 120) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r}; stderr so far:\n{seen}")


def test_sigterm_of_a_running_stage_is_handled_like_ctrl_c(tmp_path: Path) -> None:
    recipe, root = small_yolo_recipe(tmp_path), tmp_path / "engines"
    proc = _start(["export", "--model", str(recipe), "--root", str(root)])
    _wait_for(proc, "running (")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "orin-trt: terminated (SIGTERM); no artifact was left half-written"
    lay = Layout(root, "yolo-test")
    assert not lay.stamp("export").exists() and not lay.exported_onnx.exists()
    assert not list((root / ".scratch").iterdir()) if (root / ".scratch").exists() else True


def test_a_second_run_on_the_same_model_waits_for_the_first(workspace: dict[str, Path]) -> None:
    root = workspace["root"]
    assert main(["export", "--model", str(workspace["recipe"]), "--root", str(root)]) == 0
    with exclusive_lock(root / "yolo-test" / ".lock", what="test"):
        proc = _start(["export", "--model", str(workspace["recipe"]), "--root", str(root)])
        seen = _wait_for(proc, "waiting for it", timeout=60)
        assert "another run on model 'yolo-test' is in progress" in seen
        time.sleep(0.5)
        assert proc.poll() is None  # it waits while the lock is held
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "up to date, skipped" in err


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from pipeline.processing.image import load_rgb

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = load_rgb(path)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert (rgb == 255).mean() < 0.01  # clipping made 99.6 % of it white
    assert abs(int(rgb[32, 0, 0]) - round(int(ramp[32, 0]) * 255 / 65535)) <= 1


def test_every_bad_file_of_a_calibration_folder_is_named_at_once(tmp_path: Path) -> None:
    from pipeline.errors import PipelineError
    from pipeline.models.image_data import image_feeds

    good = tmp_path / "good.jpg"
    good.write_bytes((REPO / "tests" / "data" / "tiny.jpg").read_bytes())
    bad = [tmp_path / f"broken{i}.jpg" for i in range(3)]
    for b in bad:
        b.write_bytes(b"not a jpeg")
    spec = {"input": "images", "size": [32, 32], "resize": "letterbox", "pad_value": 114, "color": "RGB",
            "layout": "NCHW", "scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1]}
    with pytest.raises(PipelineError) as e:
        image_feeds([good, *bad], spec, "calibration images")
    message = str(e.value)
    assert message.startswith("3 of 4 calibration images cannot be used: ")
    assert all(f"{b}: cannot be decoded as an image" in message for b in bad) and "\n" not in message


def test_a_graph_without_the_yolo_head_is_named_by_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    recipe = small_yolo_recipe(tmp_path)
    lay = Layout(tmp_path / "engines", "yolo-test")
    lay.model_dir.mkdir(parents=True)
    w = numpy_helper.from_array(np.ones((84, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["images", "w"], ["output0"], name="conv")], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["b", 3, 320, 320])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(lay.exported_onnx))
    code, line = run_cli(capsys, "calibrate", "--model", str(recipe), "--root", str(lay.root), "--precision", "int8",
                         "--calib-root", str(tmp_path / "calib"))
    assert code == 2 and line == (f"orin-trt: error: {lay.exported_onnx}: cannot find the YOLO head: "
                                  "no node is named /model.<i>/...")


def test_a_build_on_an_unknown_op_keeps_the_parsers_words(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from pipeline.errors import PipelineError
    from pipeline.trt.build import BuildOptions, build_engine

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu"), helper.make_node("FooOp", ["y"], ["z"], name="my_foo")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "foo.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(PipelineError) as e:
        build_engine(path, BuildOptions(profiles=[{}], workspace_bytes=1 << 24), tmp_path / "foo.engine")
    assert not (tmp_path / "foo.engine").exists()  # nothing half-written
    message = str(e.value)
    assert message.startswith(f"{path}: engine build failed (Could not parse ONNX correctly; In node 1 with name: "
                              "my_foo and operator: FooOp")


def test_analyze_refuses_an_unknown_op_and_writes_beside_a_given_onnx(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def model(op: str) -> Path:
        w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
                                   helper.make_node(op, ["y"], ["z"], name="tail")], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                                  [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])], [w])
        path = tmp_path / op / "m.onnx"
        path.parent.mkdir()
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
        return path

    bad = model("FooOp")
    code, line = run_cli(capsys, "analyze", "--onnx", str(bad), "--root", str(tmp_path / "engines"))
    assert code == 2 and line == (f"orin-trt: error: {bad}: node 'tail' uses op 'FooOp', which is not an ONNX op "
                                  "at opset 17")
    good = model("Relu")
    assert main(["analyze", "--onnx", str(good), "--root", str(tmp_path / "engines"), "--shape", "x=1x4"]) == 0
    assert not (tmp_path / "engines").exists() and any(p.suffix == ".json" for p in good.parent.iterdir())


def test_kill_9_mid_export_leaves_nothing_the_next_run_keeps(tmp_path: Path) -> None:
    recipe, root = small_yolo_recipe(tmp_path), tmp_path / "engines"
    proc = _start(["export", "--model", str(recipe), "--root", str(root)])
    _wait_for(proc, "running (")
    time.sleep(3)  # inside the export: ultralytics writing into the scratch folder
    proc.kill()
    proc.communicate(timeout=60)
    lay = Layout(root, "yolo-test")
    assert not lay.stamp("export").exists() and not lay.exported_onnx.exists()
    assert main(["export", "--model", str(recipe), "--root", str(root)]) == 0
    assert lay.exported_onnx.exists() and leftovers(lay.model_dir) == [".stamps"]
    assert [p.name for p in (root / ".scratch").iterdir()] == []  # the killed run's scratch is gone


def test_a_built_in_calibration_set_is_readable_by_others(tmp_path: Path) -> None:
    from pipeline.core.artifacts import atomic_dir

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "images") as tmp:
            (tmp / "a.jpg").write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "images").stat().st_mode & 0o777 == 0o755
