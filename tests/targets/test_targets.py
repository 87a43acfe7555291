"""The target table: sources for every number, numbers consistent with their formulas, refusals."""

from __future__ import annotations

import pytest

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.platform.targets import (
    GIB,
    MIB,
    _check_sources,
    _table,
    get_target,
    resolve_target,
    target_names,
)

EXPECTED = ["orin-agx-64", "orin-agx-32", "orin-nx-16", "orin-nx-8", "orin-nano-8", "orin-nano-4",
            "orin-nx-16-super", "orin-nx-8-super", "orin-nano-8-super", "orin-nano-4-super"]


def test_every_sku_and_super_mode_is_listed() -> None:
    assert target_names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_numbers_follow_their_formulas(name: str) -> None:
    t = get_target(name)
    assert t.compute_capability == "8.7"
    assert t.sms * 128 == t.cuda_cores and t.tensor_cores * 32 == t.cuda_cores
    # 1024 dense INT8 ops per tensor core per clock; FP16 is half of INT8 on Ampere tensor cores
    assert t.gpu_int8_tops_dense == pytest.approx(t.tensor_cores * 1024 * t.gpu_max_mhz * 1e6 / 1e12, abs=0.06)
    assert t.gpu_fp16_tflops_dense == pytest.approx(t.gpu_int8_tops_dense / 2, abs=0.06)
    # GPU sparse INT8 (2 x dense) plus the DLA's sparse INT8 is NVIDIA's headline AI TOPS
    assert 2 * t.gpu_int8_tops_dense + t.dla_int8_tops_sparse == pytest.approx(t.ai_tops_sparse, abs=2.5)
    assert (t.dla_cores == 0) == (t.dla_int8_tops_sparse == 0)
    assert 0 < t.usable_bytes < t.memory_gib * GIB
    assert set(t.sources) >= {"memory_bandwidth_gbs", "gpu_int8_tops_dense", "dla_cores", "compute_capability"}


def test_bandwidths_from_the_issue() -> None:
    bw = {n: get_target(n).memory_bandwidth_gbs for n in EXPECTED}
    assert bw["orin-agx-64"] == bw["orin-agx-32"] == 204.8
    assert bw["orin-nx-16"] == bw["orin-nx-8"] == 102.4
    assert bw["orin-nano-8"] == 68 and bw["orin-nano-8-super"] == 102


def test_a_number_without_a_source_is_refused() -> None:
    raw = _table()
    broken = {**raw, "targets": {"x": {**raw["targets"]["orin-nano-8"],
                                       "source": {**raw["targets"]["orin-nano-8"]["source"]}}}}
    del broken["targets"]["x"]["source"]["memory_bandwidth_gbs"]
    with pytest.raises(PipelineError, match="x.memory_bandwidth_gbs has no source"):
        _check_sources(broken)
    broken["targets"]["x"]["source"]["memory_bandwidth_gbs"] = "a-blog"
    with pytest.raises(PipelineError, match="unknown source 'a-blog'"):
        _check_sources(broken)


def test_precisions_the_target_lacks_are_refused_before_work() -> None:
    nano = get_target("orin-nano-8")
    for ok in ("fp32", "fp16", "int8", "int4-awq"):
        nano.check_precision(ok)
    with pytest.raises(PipelineError, match=r"--precision fp8: Jetson Orin Nano 8GB \(orin-nano-8"):
        nano.check_precision("fp8")
    with pytest.raises(PipelineError, match="nvfp4"):
        resolve_target("orin-agx-64", "nvfp4")
    with pytest.raises(PipelineError, match="unknown target"):
        resolve_target("orin-agx-128", "int8")
    assert resolve_target(None, "fp8") is None


def test_dla_requests_are_checked_against_the_board() -> None:
    with pytest.raises(PipelineError, match="has no DLA cores"):
        get_target("orin-nano-8").check_precision("int8", dla_core=0)
    with pytest.raises(PipelineError, match="has 1 DLA core"):
        get_target("orin-nx-8").check_precision("int8", dla_core=1)
    with pytest.raises(PipelineError, match="DLA runs only fp16 / int8"):
        get_target("orin-agx-64").check_precision("fp32", dla_core=0)
    get_target("orin-agx-64").check_precision("int8", dla_core=1)


def test_builder_caps_shrink_with_the_board() -> None:
    small, big = get_target("orin-nano-4").builder_caps(), get_target("orin-agx-64").builder_caps()
    assert small["workspace_bytes"] == int(3 * GIB * 0.125)
    assert big["workspace_bytes"] == 4096 * MIB  # capped
    assert small["tactic_dram_bytes"] < big["tactic_dram_bytes"]


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPECTED) and "204.8" in out
    assert main(["targets", "orin-nx-8", "--json"]) == 0
    assert '"dla_cores": 1' in capsys.readouterr().out
    assert main(["targets", "orin-tx2"]) == 2
