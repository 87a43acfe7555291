"""Drift guard: a manifest's `system` against the running system, with both sides named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.platform.drift import DriftError, check_manifest, differences, running_system, same_trt_version

from .test_jetson_info import fake_jetson

CASES = json.loads((Path(__file__).parents[1] / "contracts" / "drift_cases.json").read_text())
BUILT = {"trt_version": "10.3.0.30", "l4t": "36.4.0", "compute_capability": "8.7", "dla_core": None}


def test_same_system_passes(tmp_path: Path) -> None:
    root = fake_jetson(tmp_path, "NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3701-0005")
    running = running_system(root)
    assert running == {**BUILT, "dla_cores": 2}
    check_manifest({"system": BUILT}, running, "model.engine")


def test_every_difference_names_both_sides() -> None:
    running = {"trt_version": "10.7.0.23", "l4t": "36.4.3", "compute_capability": "8.7", "dla_core": 1}
    with pytest.raises(DriftError) as err:
        check_manifest({"system": BUILT}, running, "engines/yolo/int8/model.engine", action="profile")
    msg = str(err.value)
    assert msg.startswith("cannot profile engines/yolo/int8/model.engine")
    assert "TensorRT: engine 10.3.0.30, this system 10.7.0.23" in msg
    assert "L4T: engine 36.4.0, this system 36.4.3" in msg
    assert "DLA core: engine GPU, requested 1" in msg
    assert "compute capability" not in msg


def test_dla_core_the_board_lacks(tmp_path: Path) -> None:
    root = fake_jetson(tmp_path, "NVIDIA Jetson Orin NX Developer Kit", "nvidia,p3767-0001")  # NX 8GB: 1 DLA
    with pytest.raises(DriftError, match="DLA core: engine 1, this system has 1 DLA core"):
        check_manifest({"system": {**BUILT, "dla_core": 1}}, running_system(root, dla_core=1), "m.engine")


def test_host_engine_on_a_jetson_is_refused() -> None:
    rtx = {"trt_version": "1.7.1.116", "l4t": None, "compute_capability": None, "dla_core": None}
    diffs = differences(rtx, BUILT)
    assert "L4T: engine none (not a Jetson build), this system 36.4.0" in diffs
    with pytest.raises(DriftError, match="no 'system' section"):
        check_manifest({}, BUILT, "x.engine")


def test_publish_guard_only_judges_on_a_jetson(tmp_path: Path) -> None:
    from pipeline.platform.drift import guard_on_jetson

    old = {"system": {**BUILT, "l4t": "35.4.1"}}
    guard_on_jetson(old, "m.engine", "publish", root=tmp_path / "host")  # a host: nothing to compare
    root = fake_jetson(tmp_path / "orin", "NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3701-0005")
    with pytest.raises(DriftError, match=r"cannot publish m.engine: .*L4T: engine 35.4.1, this system 36.4.0"):
        guard_on_jetson(old, "m.engine", "publish", root=root)
    guard_on_jetson({"system": BUILT}, "m.engine", "publish", root=root)


@pytest.mark.parametrize("case", CASES["trt_versions"], ids=lambda c: f"{c['engine']}~{c['system']}")
def test_trt_versions_agree_as_the_shared_table_says(case: dict) -> None:
    assert same_trt_version(case["engine"], case["system"]) is case["same"]


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_drift_cases_of_the_shared_table(case: dict) -> None:
    # The running side requests the engine's own DLA core: the cases are about the system, not the request.
    running = {**case["system"], "dla_core": case["engine"]["dla_core"]}
    assert sorted(d.split(":")[0] for d in differences(case["engine"], running)) == sorted(case["differs"])
