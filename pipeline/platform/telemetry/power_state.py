"""Record the power state a profile ran under: nvpmodel mode, jetson_clocks, fan, clocks, L4T.

A latency number means little without it: the same engine is twice as slow in a 15 W mode, and
jetson_clocks pins the clocks so runs are comparable night to night. Every reader takes the
filesystem root and a command runner, so tests feed recorded outputs and a recorded sysfs tree.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Runner = Callable[[Sequence[str]], str]


def run_command(cmd: Sequence[str]) -> str:
    """Run a host tool and return its stdout; raise OSError or CalledProcessError on failure."""
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=30).stdout


@dataclass
class PowerState:
    nvpmodel_mode: str | None = None
    nvpmodel_id: int | None = None
    jetson_clocks: bool | None = None
    fan: dict[str, Any] = field(default_factory=dict)
    clocks_mhz: dict[str, Any] = field(default_factory=dict)
    l4t: str | None = None
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        """A short identity for the history: `MAXN/clocks-on`."""
        clocks = {True: "clocks-on", False: "clocks-off", None: "clocks-?"}[self.jetson_clocks]
        return f"{self.nvpmodel_mode or '?'}/{clocks}"


def parse_nvpmodel_query(text: str) -> tuple[str | None, int | None]:
    """`nvpmodel -q` prints `NV Power Mode: MAXN` then the mode id on its own line (after warnings)."""
    mode = re.search(r"NV Power Mode:\s*(\S+)", text)
    if mode is None:
        return None, None
    after = text[mode.end() :].split()
    mode_id = int(after[0]) if after and after[0].isdigit() else None
    return mode.group(1), mode_id


def parse_jetson_clocks_show(text: str) -> dict[str, Any]:
    """`jetson_clocks --show`: per-CPU and GPU/EMC min/max/current frequencies, fan, power mode.

    jetson_clocks is "on" when it has pinned the minimum frequency to the maximum for every online
    CPU and the GPU (that is what running `jetson_clocks` does; `--restore` undoes it).
    """
    cpus = []
    for m in re.finditer(
        r"^cpu(\d+): Online=(\d)\s.*?MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", text, re.MULTILINE
    ):
        cpus.append(
            {"cpu": int(m.group(1)), "online": m.group(2) == "1", "min_khz": int(m.group(3)),
             "max_khz": int(m.group(4)), "cur_khz": int(m.group(5))}
        )
    units = {}
    for m in re.finditer(r"^(GPU|EMC) MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", text, re.MULTILINE):
        units[m.group(1)] = {"min_hz": int(m.group(2)), "max_hz": int(m.group(3)), "cur_hz": int(m.group(4))}
    fan = re.search(r"speed=(\d+)", text)
    online = [c for c in cpus if c["online"]]
    pinned: bool | None = None
    if online and "GPU" in units:
        pinned = all(c["min_khz"] == c["max_khz"] for c in online) and (
            units["GPU"]["min_hz"] == units["GPU"]["max_hz"]
        )
    return {"cpus": cpus, "units": units, "fan_speed": int(fan.group(1)) if fan else None, "pinned": pinned}


def read_l4t(root: Path) -> str | None:
    """`# R36 (release), REVISION: 4.0, ...` in /etc/nv_tegra_release becomes `36.4.0`."""
    path = root / "etc" / "nv_tegra_release"
    if not path.exists():
        return None
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)", path.read_text(errors="replace"))
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else None


def read_fan(root: Path) -> dict[str, Any]:
    """PWM (0-255) and tachometer RPM from hwmon, found by the driver's name, not its number."""
    fan: dict[str, Any] = {}
    for hwmon in sorted((root / "sys" / "class" / "hwmon").glob("hwmon*")):
        name = _read(hwmon / "name")
        if name in ("pwmfan", "pwm-fan") and (pwm := _read_int(hwmon / "pwm1")) is not None:
            fan["pwm"] = pwm
            fan["percent"] = round(pwm * 100 / 255, 1)
        if name in ("pwm_tach", "tachometer") and (rpm := _read_int(hwmon / "rpm")) is not None:
            fan["rpm"] = rpm
    return fan


def read_clocks(root: Path) -> dict[str, Any]:
    """Current CPU (per policy), GPU and EMC clocks in MHz from sysfs."""
    clocks: dict[str, Any] = {}
    cpu: dict[str, float] = {}
    for policy in sorted((root / "sys" / "devices" / "system" / "cpu" / "cpufreq").glob("policy*")):
        khz = _read_int(policy / "scaling_cur_freq")
        if khz is not None:
            cpu[policy.name] = khz / 1000
    if cpu:
        clocks["cpu"] = cpu
    for devfreq in sorted((root / "sys" / "class" / "devfreq").glob("*")):
        # The Orin GPU is 17000000.ga10b (r35) or 17000000.gpu (r36); Xavier's is 17000000.gv11b.
        if re.search(r"\.(gpu|ga10b|gv11b|gp10b)$", devfreq.name):
            for key, fname in (("gpu", "cur_freq"), ("gpu_max", "max_freq")):
                hz = _read_int(devfreq / fname)
                if hz is not None:
                    clocks[key] = hz / 1e6
    emc = _read_int(root / "sys" / "kernel" / "debug" / "bpmp" / "debug" / "clk" / "emc" / "rate")
    if emc is not None:
        clocks["emc"] = emc / 1e6
    return clocks


def record_power_state(root: Path = Path("/"), run: Runner = run_command) -> PowerState:
    """Everything readable; what is not (no tool, no permission) goes to `notes`, never an error."""
    state = PowerState(l4t=read_l4t(root), fan=read_fan(root), clocks_mhz=read_clocks(root))
    try:
        state.nvpmodel_mode, state.nvpmodel_id = parse_nvpmodel_query(run(["nvpmodel", "-q"]))
    except (OSError, subprocess.SubprocessError) as e:
        state.notes.append(f"nvpmodel -q: {e}")
    try:
        shown = parse_jetson_clocks_show(run(["jetson_clocks", "--show"]))
        state.jetson_clocks = shown["pinned"]
        if shown["fan_speed"] is not None:
            state.fan.setdefault("jetson_clocks_speed", shown["fan_speed"])
        if "GPU" in shown["units"]:
            state.clocks_mhz.setdefault("gpu_max", shown["units"]["GPU"]["max_hz"] / 1e6)
    except (OSError, subprocess.SubprocessError) as e:
        state.notes.append(f"jetson_clocks --show: {e}")
    return state


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
