"""Which Jetson this is: SKU (device tree), L4T release (/etc/nv_tegra_release), TensorRT version and,
from those two, the JetPack line (pipeline/platform/lines.py).

Everything is read relative to `root`, so tests point it at a folder holding fake copies of the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lines import Line

MODEL_FILE = "proc/device-tree/model"
COMPATIBLE_FILE = "proc/device-tree/compatible"
RELEASE_FILE = "etc/nv_tegra_release"
MEMINFO_FILE = "proc/meminfo"
TRT_HEADERS = ("usr/include/aarch64-linux-gnu/NvInferVersion.h", "usr/include/NvInferVersion.h")

@dataclass(frozen=True)
class JetsonInfo:
    model: str | None            # the device tree's model string, None when this is not a Jetson
    target: str | None           # e.g. "orin-nano-8-super"; None when the SKU is unknown
    l4t: str | None              # "36.4.0"
    trt_version: str | None      # "10.3.0.30"

    @property
    def is_jetson(self) -> bool:
        return self.model is not None and "jetson" in self.model.lower()

    @property
    def line(self) -> Line | None:
        """The JetPack line (pipeline/data/jetson_lines.yaml) this L4T / TensorRT belongs to."""
        if not self.is_jetson:
            return None
        from .lines import line_for

        return line_for(self.trt_version, self.l4t)

    def describe(self) -> str:
        if not self.is_jetson:
            return "this host is not a Jetson (no NVIDIA Jetson model in /proc/device-tree/model)"
        sku = self.target or "unknown SKU"
        line = self.line
        where = line.title if line else "a JetPack line not in pipeline/data/jetson_lines.yaml"
        return f"{self.model} -> {sku}, L4T {self.l4t or '?'}, TensorRT {self.trt_version or '?'}: {where}"


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_bytes().decode("utf-8", "replace").replace("\x00", "\n").strip()
    except OSError:
        return None


def parse_l4t_release(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.0, ...' -> '36.4.0'."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def parse_trt_header(text: str) -> str | None:
    """NvInferVersion.h -> 'MAJOR.MINOR.PATCH.BUILD' (TensorRT 10 spells them TRT_*_ENTERPRISE too)."""
    parts = []
    for field in ("MAJOR", "MINOR", "PATCH", "BUILD"):
        m = re.search(rf"#define\s+NV_TENSORRT_{field}\s+(\d+)", text) or re.search(
            rf"#define\s+TRT_{field}_ENTERPRISE\s+(\d+)", text)
        if not m:
            return ".".join(parts) or None
        parts.append(m.group(1))
    return ".".join(parts)


def _memory_gib(root: Path) -> float | None:
    text = _read(root, MEMINFO_FILE) or ""
    m = re.search(r"MemTotal:\s*(\d+)\s*kB", text)
    return int(m.group(1)) / (1 << 20) if m else None


def _sku(model: str, compatible: str, memory_gib: float | None) -> str | None:
    from .targets import module_sizes, part_numbers

    # The module's part number from the device tree's `compatible` (data/targets.yaml `part_numbers`).
    base = next((sku for part, sku in part_numbers().items() if part in compatible), None)
    if base is None:  # no part number: fall back to the model name and the memory size
        lower = model.lower()
        family = "agx" if "agx orin" in lower else "nx" if "orin nx" in lower else \
            "nano" if "orin nano" in lower else None
        if family is None or memory_gib is None:
            return None
        sizes = module_sizes(family)
        base = sizes[min(sizes, key=lambda s: abs(s - memory_gib))]
    # MAXN SUPER exists for NX and Nano only; JetPack 6.2 names it in the device-tree model.
    if "super" in model.lower() and not base.startswith("orin-agx"):
        return f"{base}-super"
    return base


def _trt_version(root: Path) -> str | None:
    for rel in TRT_HEADERS:
        text = _read(root, rel)
        if text and (version := parse_trt_header(text)):
            return version
    if root != Path("/"):
        return None
    try:  # a pip or JetPack Python package without headers
        from importlib.metadata import PackageNotFoundError, version

        return version("tensorrt")
    except (ImportError, PackageNotFoundError):
        return None


def detect(root: Path = Path("/")) -> JetsonInfo:
    root = Path(root)
    model = _read(root, MODEL_FILE)
    if model is None or "jetson" not in model.lower():
        return JetsonInfo(model=model, target=None, l4t=None, trt_version=None)
    release = _read(root, RELEASE_FILE)
    return JetsonInfo(
        model=model,
        target=_sku(model, _read(root, COMPATIBLE_FILE) or "", _memory_gib(root)),
        l4t=parse_l4t_release(release) if release else None,
        trt_version=_trt_version(root),
    )
