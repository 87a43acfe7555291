"""The Jetson line table: every TensorRT found on an Orin maps to one line, the DLA gate and `auto`
detection read it, the drift guard names it, and docs/targets.md shows it as it is."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.errors import PipelineError
from pipeline.platform.host import detect
from pipeline.platform.lines import (
    TABLE,
    dla_mode,
    dla_refusal,
    line_for,
    lines,
    markdown_table,
    version_tuple,
)
from pipeline.trt.backend import Backend

from .test_jetson_info import fake_jetson

REPO = Path(__file__).resolve().parents[2]
AGX = ("NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3737-0000+p3701-0005\x00")
NX = ("NVIDIA Jetson Orin NX Developer Kit", "nvidia,p3767-0000\x00")
NANO = ("NVIDIA Jetson Orin Nano Developer Kit", "nvidia,p3767-0003\x00")


def jetson(root: Path, board: tuple[str, str], l4t: str, trt: str | None) -> Path:
    """A fake Jetson root with this L4T release ('39.2.0') and TensorRT header ('10.16.1.7'; None: no header)."""
    fake_jetson(root, *board)
    major, revision = l4t.split(".", 1)
    (root / "etc/nv_tegra_release").write_text(f"# R{major} (release), REVISION: {revision}, GCID: 1, BOARD: generic\n")
    header = root / "usr/include/aarch64-linux-gnu/NvInferVersion.h"
    if trt is None:
        header.unlink()
    else:
        parts = dict(zip(("MAJOR", "MINOR", "PATCH", "BUILD"), trt.split("."), strict=True))
        header.write_text("".join(f"#define NV_TENSORRT_{k} {v}\n" for k, v in parts.items()))
    return root


def test_ranges_cover_every_tensorrt_from_10_once() -> None:
    ordered = sorted(lines(), key=lambda x: x.first)
    assert ordered[0].first == (10, 0) and ordered[-1].end is None
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert a.end == b.first, (a.key, b.key)  # no gap, no overlap
    assert all(line.sources[f] for line in lines() for f in ("jetpack", "tensorrt", "dla", "python"))


@pytest.mark.parametrize("trt, key, agx, nx, nano", [
    ("10.3.0.30", "jetpack-6.2", "implicit-int8", "implicit-int8", "none"),
    ("10.7.0.23", "jetpack-6.2", "implicit-int8", "implicit-int8", "none"),
    ("10.8.0.43", "jetpack-7.2", "none", "none", "none"),
    ("10.16.1.7", "jetpack-7.2", "none", "none", "none"),
    ("11.0.0.114", "tensorrt-11.0-11.4.0", "none", "none", "none"),
    ("11.4.0.5", "tensorrt-11.0-11.4.0", "none", "none", "none"),
    ("11.4.1.2", "jetpack-7.2.2", "strongly-typed", "none", "none"),
    ("11.6.0.1", "jetpack-7.2.2", "strongly-typed", "none", "none"),
])
def test_every_line_and_module(trt: str, key: str, agx: str, nx: str, nano: str) -> None:
    assert line_for(trt).key == key
    assert [dla_mode(trt, t)[0] for t in ("orin-agx-64", "orin-nx-16-super", "orin-nano-8")] == [agx, nx, nano]
    assert (dla_refusal(trt, "orin-agx-32") is None) == (agx != "none")


def test_the_dla_gate_names_the_line_in_one_line() -> None:
    from pipeline.trt.dla_build import dla_blocker, dla_is_strongly_typed, require_dla

    jp72 = Backend("tensorrt", "10.16.1.7", SimpleNamespace())
    with pytest.raises(PipelineError) as err:
        require_dla(jp72, "orin-agx-64")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("--dla: TensorRT 10.16.1.7 is the JetPack 7.2 / 7.2.1 (L4T r39.2, TensorRT 10.16) line")
    assert "TensorRT 10.16.1 Release Notes" in msg and "JetPack 6.2 with TensorRT 10.3" in msg
    trt11 = Backend("tensorrt", "11.4.1.2", SimpleNamespace())
    assert dla_blocker(trt11, "orin-agx-64") is None and dla_is_strongly_typed(trt11, "orin-agx-64")
    assert "no DLA on orin-nx" in dla_blocker(trt11, "orin-nx-16")
    assert not dla_is_strongly_typed(Backend("tensorrt", "10.3.0.30", SimpleNamespace()), "orin-nx-8")


def test_cli_refuses_dla_on_jetpack_7_2_before_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """What a JetPack 7.2 user sees: exit 2 at once, nothing exported."""
    import pipeline.trt.backend as backend
    from pipeline.cli import main

    monkeypatch.setattr(backend, "select_backend", lambda: Backend("tensorrt", "10.16.1.7", SimpleNamespace()))
    root = tmp_path / "engines"
    assert main(["engine", "--model", "yolo", "--precision", "int8", "--dla", "0", "--root", str(root)]) == 2
    assert "is the JetPack 7.2 / 7.2.1" in capsys.readouterr().err
    assert not root.exists()


@pytest.mark.parametrize("board, l4t, trt, key", [
    (NANO, "36.4.3", "10.3.0.30", "jetpack-6.2"),
    (AGX, "36.5.0", None, "jetpack-6.2"),          # no TensorRT header: the L4T release decides
    (AGX, "39.2.0", "10.16.1.7", "jetpack-7.2"),
    (NX, "39.2.1", "10.16.1.7", "jetpack-7.2"),
    (AGX, "39.2.0", "11.4.1.2", "jetpack-7.2.2"),  # same L4T, the TensorRT decides
    (AGX, "39.2.0", None, None),                   # ambiguous without TensorRT: not guessed
    (AGX, "35.4.1", None, None),                   # JetPack 5: not a line of this table
])
def test_auto_detection_names_the_line(tmp_path: Path, board: tuple[str, str], l4t: str, trt: str | None,
                                       key: str | None) -> None:
    info = detect(jetson(tmp_path, board, l4t, trt))
    assert (info.line.key if info.line else None) == key
    if key:
        assert info.line.title in info.describe()
    else:
        assert "not in pipeline/data/jetson_lines.yaml" in info.describe()


def test_drift_names_both_lines() -> None:
    from pipeline.platform.drift import differences

    built = {"trt_version": "10.3.0.30", "l4t": "36.4.0", "compute_capability": "8.7", "dla_core": None}
    running = {**built, "trt_version": "10.16.1.7", "l4t": "39.2.0"}
    assert "TensorRT: engine 10.3.0.30 (JetPack 6.2), this system 10.16.1.7 (JetPack 7.2 / 7.2.1)" in \
        differences(built, running)
    same_line = differences(built, {**built, "trt_version": "10.3.0.31"})
    assert same_line == ["TensorRT: engine 10.3.0.30, this system 10.3.0.31"]


def test_docs_show_the_table_as_it_is() -> None:
    assert markdown_table() in (REPO / "docs" / "targets.md").read_text(encoding="utf-8")


def test_version_tuple_and_bad_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.platform.lines as jl

    assert version_tuple("10.16.1.7") == (10, 16, 1, 7) and version_tuple("11.4.1rc1") == (11, 4)
    bad = tmp_path / "lines.yaml"
    bad.write_text(TABLE.read_text().replace("dla: trt-10-16-1-notes", "dla: nowhere"))
    monkeypatch.setattr(jl, "TABLE", bad)
    jl._raw.cache_clear()
    try:
        with pytest.raises(PipelineError, match=r"lines.jetpack-7.2.dla has no known source"):
            jl._raw()
    finally:
        jl._raw.cache_clear()


def test_targets_command_shows_the_lines_and_names_this_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    assert main(["targets", "--lines"]) == 0
    assert markdown_table() in capsys.readouterr().out
    root = jetson(tmp_path, AGX, "39.2.0", "10.16.1.7")
    assert main(["targets", "auto", "--root-fs", str(root)]) == 0
    out = capsys.readouterr().out
    assert "orin-agx-64, L4T 39.2.0, TensorRT 10.16.1.7: JetPack 7.2 / 7.2.1 (L4T r39.2, TensorRT 10.16)" in out
