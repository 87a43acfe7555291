"""tegrastats lines of several L4T releases, as printed by real boards, and the sampler's window.

Where each sample line comes from (all public, all copied verbatim):
- R32_NANO: Jetson Nano, L4T r32 (POM_5V_* rails, IRAM, `GR3D_FREQ 0%@76`).
  rbonghi/jetson_stats, tests/tegrastats (the Jetson Nano example line in the emulator).
- R32_XAVIER: AGX Xavier, L4T r32 (VDD_* rails without units, `GR3D_FREQ x%@1300`, MTS, negative
  placeholder temperatures). rbonghi/jetson_stats, tests/tegrastats (the emulator's main line).
- R32_TX2: Jetson TX2, L4T r32 (`GR3D_FREQ 0%` with no frequency, VDD_SYS_* rails).
  FindHao/tx-utils issue #3 ("The code does not accommodate with the latest tegrastats").
- ORIN_NANO_BRACKETS: Orin Nano, timestamped, `GR3D_FREQ 63%@[621]`, rails in mW, lower-case sensors
  (the JetPack 5 / early JetPack 6 shape). henrygd/beszel, agent/gpu_test.go ("more valid data").
- R36_ORIN_NANO: Orin Nano on JetPack 6 (r36): `GR3D_FREQ 0%` without a frequency.
  henrygd/beszel, agent/gpu_test.go ("orin nano", 06-18-2025).
- AGX_ORIN: AGX Orin, timestamped, `GR3D_FREQ 0%@[0,0]` (two GPCs), no VDD_IN but VDD_GPU_SOC /
  VDD_CPU_CV / VIN_SYS_5V0, `-256C` absent sensors, `NC 0mW/0mW`. GDWR/jetson_exporter issue #14.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.platform.telemetry.energy import summarize_window
from pipeline.platform.telemetry.tegrastats import TegrastatsSampler, parse_line, parse_lines

R32_NANO = (
    "RAM 1180/3965MB (lfb 1x2MB) SWAP 149/1024MB (cached 7MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [30%@1036,33%@1036,28%@1036,26%@1036] EMC_FREQ 10%@1600 GR3D_FREQ 0%@76 NVENC 716 NVDEC 716 "
    "APE 25 PLL@57C CPU@60.5C PMIC@100C GPU@59C AO@65C thermal@59.75C POM_5V_IN 4520/4680 "
    "POM_5V_GPU 0/0 POM_5V_CPU 1078/1205"
)
R32_XAVIER = (
    "RAM 4722/7844MB (lfb 1x512kB) CPU [55%@2035,14%@2034,27%@2034,55%@2035,47%@2035,45%@2035] "
    "SWAP 149/1024MB (cached 7MB) EMC_FREQ 2%@1866 GR3D_FREQ 37%@1300 APE 150 MTS fg 0% bg 0% "
    "BCPU@-45C MCPU@-45C GPU@-51C PLL@45C AO@47.5C Tboard@37C Tdiode@46.75C PMIC@100C thermal@46.4C "
    "VDD_IN 14025/14416 VDD_CPU 2209/2538 VDD_GPU 6854/6903 VDD_SOC 1371/1370 VDD_WIFI 19/19 "
    "NVENC 716 NVDEC 716 VDD_DDR 2702/2702"
)
R32_TX2 = (
    "RAM 2020/7852MB (lfb 1164x4MB) CPU [9%@345,21%@345,25%@345,3%@345,1%@345,1%@345] EMC_FREQ 0% "
    "GR3D_FREQ 0% PLL@42.5C MCPU@42.5C PMIC@100C Tboard@40C GPU@41C BCPU@42.5C thermal@41.9C "
    "Tdiode@41.25C VDD_SYS_GPU 153/158 VDD_SYS_SOC 536/547 VDD_4V0_WIFI 633/527 VDD_IN 3140/3208 "
    "VDD_SYS_CPU 536/590 VDD_SYS_DDR 557/601"
)
ORIN_NANO_BRACKETS = (
    "11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) "
    "CPU [15%@729,11%@729,14%@729,13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] "
    "NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@53.968C soc2@52.437C soc0@50.75C "
    "gpu@53.343C tj@53.968C soc1@51.656C VDD_IN 12479mW/12479mW VDD_CPU_GPU_CV 4667mW/4667mW "
    "VDD_SOC 2817mW/2817mW"
)
R36_ORIN_NANO = (
    "06-18-2025 11:25:24 RAM 3452/7620MB (lfb 25x4MB) SWAP 1518/16384MB (cached 174MB) "
    "CPU [1%@1420,2%@1420,0%@1420,2%@1420,2%@729,1%@729] GR3D_FREQ 0% cpu@50.031C soc2@49.031C "
    "soc0@50C gpu@49.031C tj@50.25C soc1@50.25C VDD_IN 4824mW/4824mW VDD_CPU_GPU_CV 518mW/518mW "
    "VDD_SOC 1475mW/1475mW"
)
AGX_ORIN = (
    "04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) "
    "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] "
    "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C "
    "SOC2@40.093C Tdiode@33C SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C "
    "VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW "
    "VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"
)


def test_r32_nano_line_reads_ram_gpu_rails_and_temperatures():
    s = parse_line(R32_NANO)
    assert (s.ram_used_mb, s.ram_total_mb) == (1180, 3965)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0.0, (76,))
    assert s.rails_mw == {"POM_5V_IN": 4520, "POM_5V_GPU": 0, "POM_5V_CPU": 1078}
    assert s.input_power_mw == 4520
    assert s.temps_c["gpu"] == 59.0 and s.temps_c["thermal"] == 59.75
    assert s.printed_at is None


def test_r32_xavier_line_keeps_negative_placeholders_and_reads_unitless_rails():
    s = parse_line(R32_XAVIER)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (37.0, (1300,))
    assert s.input_power_mw == 14025
    assert s.rails_mw["VDD_GPU"] == 6854 and s.rails_mw["VDD_DDR"] == 2702
    assert "RAM" not in s.rails_mw and "SWAP" not in s.rails_mw
    assert s.temps_c["bcpu"] == -45.0  # printed by the board; only -256 means "absent"


def test_r32_tx2_line_without_gpu_frequency():
    s = parse_line(R32_TX2)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0.0, ())
    assert s.input_power_mw == 3140
    assert s.rails_mw["VDD_SYS_GPU"] == 153


def test_orin_line_with_timestamp_bracketed_frequency_and_mw_rails():
    s = parse_line(ORIN_NANO_BRACKETS)
    assert s.printed_at.isoformat() == "2024-11-15T08:38:09"
    assert (s.ram_used_mb, s.gpu_load_pct, s.gpu_freq_mhz) == (6185, 63.0, (621,))
    assert s.rails_mw == {"VDD_IN": 12479, "VDD_CPU_GPU_CV": 4667, "VDD_SOC": 2817}
    assert s.temps_c["tj"] == 53.968


def test_r36_orin_nano_line_without_gpu_frequency():
    s = parse_line(R36_ORIN_NANO)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0.0, ())
    assert s.rails_mw == {"VDD_IN": 4824, "VDD_CPU_GPU_CV": 518, "VDD_SOC": 1475}
    assert s.temps_c["cpu"] == 50.031


def test_agx_orin_sums_module_rails_and_drops_absent_sensors():
    s = parse_line(AGX_ORIN)
    assert s.gpu_freq_mhz == (0, 0)
    assert "NC" not in s.rails_mw
    assert s.input_power_mw == 2340 + 390 + 4025
    assert "cv0" not in s.temps_c and "gpu" not in s.temps_c
    assert s.temps_c["cpu"] == 44.562


def test_three_value_rails_of_newer_builds_read_the_instantaneous_value():
    line = R36_ORIN_NANO.replace("VDD_IN 4824mW/4824mW", "VDD_IN 4548mW/4548mW/4600mW").replace(
        "cpu@50.031C", "cpu@49.843C/49.843C")
    s = parse_line(line)
    assert s.rails_mw["VDD_IN"] == 4548
    assert s.temps_c["cpu"] == 49.843


def test_non_stat_lines_are_skipped():
    lines = ["", "tegrastats: failed to open /sys/...", R36_ORIN_NANO, "NVPM WARN: fan mode is not set!"]
    assert [s.ram_used_mb for s in parse_lines(lines)] == [3452]


def _fake_tegrastats(tmp_path: Path, lines: list[str], interval_s: float) -> list[str]:
    """A stand-in executable that prints recorded lines at tegrastats' cadence, forever."""
    script = tmp_path / "tegrastats"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        lines = {lines!r}
        i = 0
        while True:
            print(lines[i % len(lines)], flush=True)
            i += 1
            time.sleep({interval_s})
    """))
    return [sys.executable, str(script)]


def test_sampler_window_holds_the_benchmark_span_and_its_edges(tmp_path):
    busy = ORIN_NANO_BRACKETS
    command = _fake_tegrastats(tmp_path, [busy], 0.02)
    with TegrastatsSampler(command=command) as sampler:
        time.sleep(0.1)
        with sampler.window() as window:
            time.sleep(0.3)
        total_seen = len(sampler.samples)
    assert 0.29 <= window.seconds < 0.6
    inside = [s for s in window.samples if window.start <= s.t <= window.end]
    assert len(inside) >= 5
    assert window.samples[0].t < window.start and window.samples[-1].t > window.end
    assert len(window.samples) < total_seen  # readings before the window are not part of it
    summary = summarize_window(window, inferences=30)
    # A constant 12.479 W over the window: energy = P x t exactly, whatever the sample times.
    assert summary.avg_power_w == pytest.approx(12.479)
    assert summary.energy_j == pytest.approx(12.479 * window.seconds)
    assert summary.energy_per_inference_j == pytest.approx(12.479 * window.seconds / 30)


def test_sampler_names_a_tegrastats_that_prints_nothing(tmp_path):
    silent = tmp_path / "silent"
    silent.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(PipelineError, match="printed no reading"):
        with TegrastatsSampler(command=[sys.executable, str(silent)], first_sample_timeout_s=0.5):
            pass


def test_default_command_asks_for_line_buffered_tegrastats():
    command = TegrastatsSampler(interval_ms=250).command
    assert command[-3:] == ["tegrastats", "--interval", "250"]
    assert command[:2] == (["stdbuf", "-oL"] if shutil.which("stdbuf") else command[:2])


def test_sampler_names_a_missing_tegrastats():
    with pytest.raises(PipelineError, match="cannot start tegrastats"):
        with TegrastatsSampler(command=["/nonexistent/tegrastats"]):
            pass
