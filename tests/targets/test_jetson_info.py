"""Jetson detection from a fake root: device-tree model / compatible, nv_tegra_release, TensorRT header."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.platform.host import detect, parse_l4t_release, parse_trt_header
from pipeline.platform.targets import get_target

RELEASE = "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13\n"
HEADER = """#define NV_TENSORRT_MAJOR 10 //!< TensorRT major version.
#define NV_TENSORRT_MINOR 3 //!< TensorRT minor version.
#define NV_TENSORRT_PATCH 0 //!< TensorRT patch version.
#define NV_TENSORRT_BUILD 30 //!< TensorRT build number.
"""


def fake_jetson(root: Path, model: str, compatible: str = "", mem_kb: int | None = None) -> Path:
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    if compatible:
        (root / "proc/device-tree/compatible").write_bytes(compatible.encode())
    if mem_kb:
        (root / "proc/meminfo").write_text(f"MemTotal:       {mem_kb} kB\n")
    (root / "etc").mkdir()
    (root / "etc/nv_tegra_release").write_text(RELEASE)
    inc = root / "usr/include/aarch64-linux-gnu"
    inc.mkdir(parents=True)
    (inc / "NvInferVersion.h").write_text(HEADER)
    return root


def test_nano_super_devkit(tmp_path: Path) -> None:
    root = fake_jetson(tmp_path, "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
                       "nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00")
    info = detect(root)
    assert (info.target, info.l4t, info.trt_version) == ("orin-nano-8-super", "36.4.0", "10.3.0.30")
    assert get_target("auto", root).key == "orin-nano-8-super"


def test_agx_by_part_number_and_nx_by_memory(tmp_path: Path) -> None:
    agx = fake_jetson(tmp_path / "a", "Jetson AGX Orin Developer Kit", "nvidia,p3737-0000+p3701-0005\x00")
    assert detect(agx).target == "orin-agx-64"
    nx = fake_jetson(tmp_path / "b", "NVIDIA Jetson Orin NX Developer Kit", mem_kb=7_630_000)
    assert detect(nx).target == "orin-nx-8"


def test_not_a_jetson(tmp_path: Path) -> None:
    info = detect(tmp_path)
    assert not info.is_jetson and info.target is None
    with pytest.raises(PipelineError, match="--target auto: this host is not a Jetson"):
        get_target("auto", tmp_path)


def test_parsers() -> None:
    assert parse_l4t_release(RELEASE) == "36.4.0"
    assert parse_l4t_release("garbage") is None
    assert parse_trt_header(HEADER) == "10.3.0.30"


def test_cli_targets_auto(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pipeline.cli import main

    root = fake_jetson(tmp_path, "NVIDIA Jetson Orin NX Developer Kit", "nvidia,p3767-0000")
    assert main(["targets", "auto", "--root-fs", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == "orin-nx-16"
    assert main(["targets", "auto", "--root-fs", str(tmp_path / "x86")]) == 2
    assert "not a Jetson" in capsys.readouterr().err
