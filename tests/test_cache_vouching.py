"""The stage cache vouches only for what it checked: relative stamps, hashed small outputs, corrupt stamps."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.core.cache import StageSpec, run_stage
from pipeline.errors import PipelineError


def _spec(model_dir: Path) -> StageSpec:
    return StageSpec("unit", model_dir / ".stamps" / "unit.json", inputs={"in": [model_dir / "in.txt"]},
                     options={"k": 1}, outputs=[model_dir / "out.json", model_dir / "big.bin"])


def _work(model_dir: Path, calls: list[int]):
    def work() -> dict:
        calls.append(1)
        (model_dir / "out.json").write_text(json.dumps({"precision": "int8"}))
        (model_dir / "big.bin").write_bytes(b"x" * 10)
        return {}
    return work


def _model(tmp_path: Path) -> Path:
    d = tmp_path / "root" / "m"
    d.mkdir(parents=True)
    (d / "in.txt").write_text("a")
    return d


def test_a_copied_root_is_checked_against_its_own_files(tmp_path: Path) -> None:
    d, calls = _model(tmp_path), []
    run_stage(_spec(d), _work(d, calls))
    stamp = json.loads((d / ".stamps" / "unit.json").read_text())
    assert set(stamp["outputs"]) == {"out.json", "big.bin"} and "in.txt" in stamp["inputs"]["files"]
    copy = tmp_path / "copy" / "m"
    shutil.copytree(d, copy, copy_function=shutil.copy2)
    assert run_stage(_spec(copy), _work(copy, calls)).skipped  # relative: the copy is valid as it is
    (copy / "big.bin").unlink()
    again = run_stage(_spec(copy), _work(copy, calls))
    assert not again.skipped and again.reason == "outputs missing or modified" and len(calls) == 2


def test_a_same_size_edit_with_its_mtime_restored_is_seen(tmp_path: Path) -> None:
    d, calls = _model(tmp_path), []
    run_stage(_spec(d), _work(d, calls))
    out = d / "out.json"
    st = out.stat()
    out.write_text(json.dumps({"precision": "fp16"}))  # same length as "int8"
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert out.stat().st_size == st.st_size
    assert run_stage(_spec(d), _work(d, calls)).reason == "outputs missing or modified"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"components": []}'])
def test_a_corrupt_stamp_is_one_line_naming_it_and_force_replaces_it(tmp_path: Path, content: str) -> None:
    d, calls = _model(tmp_path), []
    run_stage(_spec(d), _work(d, calls))
    stamp = d / ".stamps" / "unit.json"
    stamp.write_text(content)
    with pytest.raises(PipelineError, match=r"stage stamp .*unit\.json is corrupt .*--force"):
        run_stage(_spec(d), _work(d, calls))
    assert stamp.read_text() == content  # nothing lost before the user decides
    assert run_stage(_spec(d), _work(d, calls), force=True).reason == "--force"
    assert run_stage(_spec(d), _work(d, calls)).skipped
