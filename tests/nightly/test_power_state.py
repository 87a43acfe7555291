"""The power state recorder on recorded command outputs and a built sysfs tree.

- NVPMODEL_Q: the shape of rbonghi/jetson_stats tests/nvpmodel (show_query: a warning line, then
  `NV Power Mode: <name>`, then the id).
- CLOCKS_OFF_TX2: verbatim rbonghi/jetson_stats tests/jetson_clocks (show_tx2).
- CLOCKS_ON: written here for an AGX Orin in the same line format as that file's show_on (pinned
  Min=Max frequencies), not a capture from a board; the r36 fan line follows JetPack 6's wording.
- The sysfs tree mirrors r36 paths (hwmon `pwmfan` / `pwm_tach`, devfreq `17000000.gpu`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.platform.telemetry.power_state import (
    parse_jetson_clocks_show,
    parse_nvpmodel_query,
    read_clocks,
    read_fan,
    read_l4t,
    record_power_state,
)

NVPMODEL_Q = "NVPM WARN: fan mode is not set!\nNV Power Mode: MAXN\n0\n"

CLOCKS_ON = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu1: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu2: Online=0 Governor=schedutil MinFreq=115200 MaxFreq=2201600 CurrentFreq=729600 IdleStates: WFI=1 c7=1
GPU MinFreq=1300500000 MaxFreq=1300500000 CurrentFreq=1300500000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
FAN Dynamic Speed control=active hwmon4 :speed=255
NV Power Mode: MAXN
"""

CLOCKS_OFF_TX2 = """SOC family:tegra186  Machine:quill
Online CPUs: 0,3-5
CPU Cluster Switching: Disabled
cpu0: Online=1 Governor=schedutil MinFreq=345600 MaxFreq=2035200 CurrentFreq=2035200 IdleStates: C1=1 c7=1
cpu1: Online=0 Governor=schedutil MinFreq=345600 MaxFreq=2035200 CurrentFreq=1113600 IdleStates: C1=1 c6=1 c7=1
cpu3: Online=1 Governor=schedutil MinFreq=345600 MaxFreq=2035200 CurrentFreq=1881600 IdleStates: C1=1 c7=1
GPU MinFreq=114750000 MaxFreq=1134750000 CurrentFreq=114750000
EMC MinFreq=40800000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=0
Fan: speed=0
NV Power Mode: MAXP_CORE_ARM
"""


def test_nvpmodel_query_after_a_warning():
    assert parse_nvpmodel_query(NVPMODEL_Q) == ("MAXN", 0)
    assert parse_nvpmodel_query("NV Power Mode: MODE_15W\n2\n") == ("MODE_15W", 2)
    assert parse_nvpmodel_query("nvpmodel: command failed") == (None, None)


def test_jetson_clocks_on_means_every_online_cpu_and_the_gpu_pinned():
    on = parse_jetson_clocks_show(CLOCKS_ON)
    assert on["pinned"] is True  # cpu2 is offline: its range does not matter
    assert on["units"]["GPU"]["max_hz"] == 1300500000
    assert on["fan_speed"] == 255
    off = parse_jetson_clocks_show(CLOCKS_OFF_TX2)
    assert off["pinned"] is False
    assert [c["cpu"] for c in off["cpus"] if c["online"]] == [0, 3]
    assert off["fan_speed"] == 0


def _sysfs(root: Path) -> Path:
    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")

    put("etc/nv_tegra_release", "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
        "DATE: Fri Sep 13 04:36:44 UTC 2024")
    put("sys/class/hwmon/hwmon0/name", "ina3221")
    put("sys/class/hwmon/hwmon1/name", "pwmfan")
    put("sys/class/hwmon/hwmon1/pwm1", "102")
    put("sys/class/hwmon/hwmon2/name", "pwm_tach")
    put("sys/class/hwmon/hwmon2/rpm", "2315")
    put("sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1497600")
    put("sys/devices/system/cpu/cpufreq/policy4/scaling_cur_freq", "729600")
    put("sys/class/devfreq/17000000.gpu/cur_freq", "611250000")
    put("sys/class/devfreq/17000000.gpu/max_freq", "918000000")
    put("sys/class/devfreq/15810000.nvdla0/cur_freq", "1000")
    return root


def test_sysfs_readers_find_devices_by_name(tmp_path):
    root = _sysfs(tmp_path)
    assert read_l4t(root) == "36.4.0"
    assert read_fan(root) == {"pwm": 102, "percent": 40.0, "rpm": 2315}
    clocks = read_clocks(root)
    assert clocks["cpu"] == {"policy0": 1497.6, "policy4": 729.6}
    assert clocks["gpu"] == 611.25 and clocks["gpu_max"] == 918.0
    assert "emc" not in clocks  # debugfs not readable: absent, not an error


def test_record_power_state_with_recorded_tools(tmp_path):
    root = _sysfs(tmp_path)
    outputs = {("nvpmodel", "-q"): NVPMODEL_Q, ("jetson_clocks", "--show"): CLOCKS_ON}
    state = record_power_state(root, lambda cmd: outputs[tuple(cmd)])
    assert (state.nvpmodel_mode, state.nvpmodel_id, state.jetson_clocks) == ("MAXN", 0, True)
    assert state.l4t == "36.4.0" and state.label == "MAXN/clocks-on"
    assert state.clocks_mhz["gpu_max"] == 918.0  # sysfs wins over jetson_clocks' reading
    assert state.notes == []


def test_missing_tools_become_notes_not_errors(tmp_path):
    def run(cmd):
        if cmd[0] == "nvpmodel":
            raise FileNotFoundError(2, "No such file or directory", "nvpmodel")
        raise subprocess.CalledProcessError(1, cmd, "", "Please run as root")

    state = record_power_state(tmp_path, run)
    assert state.nvpmodel_mode is None and state.jetson_clocks is None and state.l4t is None
    assert len(state.notes) == 2 and state.notes[0].startswith("nvpmodel -q:")
    assert state.label == "?/clocks-?"
