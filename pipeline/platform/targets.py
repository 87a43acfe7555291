"""The Jetson Orin targets: what each SKU can compute, hold and run, from pipeline/data/targets.yaml.

Every stage that takes `--target` asks this module first, so a precision or a DLA core the board
lacks is refused before any export, calibration or build work starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.artifacts import read_yaml
from ..errors import PipelineError
from ..recipe import precisions

TABLE = Path(__file__).parents[1] / "data" / "targets.yaml"
AUTO = "auto"
GIB = 1 << 30
MIB = 1 << 20

NUMERIC_FIELDS = (
    "memory_gib", "memory_bandwidth_gbs", "cuda_cores", "tensor_cores", "sms", "gpu_max_mhz",
    "gpu_int8_tops_dense", "gpu_fp16_tflops_dense", "dla_cores", "dla_int8_tops_sparse",
    "ai_tops_sparse", "os_reserved_gib",
)


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    compute_capability: str
    precisions: tuple[str, ...]
    dla_precisions: tuple[str, ...]
    memory_gib: float
    memory_bandwidth_gbs: float
    cuda_cores: int
    tensor_cores: int
    sms: int
    gpu_max_mhz: float
    gpu_int8_tops_dense: float
    gpu_fp16_tflops_dense: float
    dla_cores: int
    dla_int8_tops_sparse: float
    ai_tops_sparse: float
    os_reserved_gib: float
    runtime_overhead_mib: float
    sources: dict[str, str]

    @property
    def usable_bytes(self) -> int:
        """What an engine may use: total minus the OS share (override: ORIN_TRT_USABLE_GIB)."""
        override = os.environ.get("ORIN_TRT_USABLE_GIB")
        gib = float(override) if override else self.memory_gib - self.os_reserved_gib
        return int(gib * GIB)

    @property
    def runtime_overhead_bytes(self) -> int:
        return int(self.runtime_overhead_mib * MIB)

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gbs * 1e9

    def peak_ops_per_s(self, compute_dtype: str) -> float:
        """Dense tensor-core peak for the dtype the math runs in (a roofline ceiling, never reached).

        FP32 networks may use TF32 tensor cores (TensorRT's default), so the FP32 ceiling is TF32's.
        """
        fp16 = self.gpu_fp16_tflops_dense * 1e12
        rates = {"int8": self.gpu_int8_tops_dense * 1e12, "fp16": fp16, "bf16": fp16, "fp32": fp16 / 2}
        if compute_dtype not in rates:
            raise PipelineError(f"no peak rate for compute dtype {compute_dtype!r} on {self.key}")
        return rates[compute_dtype]

    def supports(self, precision: str) -> bool:
        return precisions.needs(precision) in self.precisions

    def check_precision(self, precision: str, dla_core: int | None = None) -> None:
        """Refuse, before any work, a precision or DLA core this board does not have."""
        if not self.supports(precision):
            raise PipelineError(
                f"--precision {precision}: {self.name} ({self.key}, Ampere SM {self.compute_capability}) "
                f"cannot run it (supported: {', '.join(self.precisions)}; no FP8 / FP4 tensor cores before SM 8.9)"
            )
        if dla_core is None:
            return
        if self.dla_cores == 0:
            raise PipelineError(f"--dla {dla_core}: {self.name} ({self.key}) has no DLA cores; drop --dla")
        if not 0 <= dla_core < self.dla_cores:
            raise PipelineError(
                f"--dla {dla_core}: {self.name} ({self.key}) has {self.dla_cores} DLA core(s): "
                f"choose {' or '.join(str(i) for i in range(self.dla_cores))}"
            )
        if precision not in self.dla_precisions:
            raise PipelineError(
                f"--dla {dla_core} with --precision {precision}: the DLA runs only "
                f"{' / '.join(self.dla_precisions)}"
            )

    def builder_caps(self) -> dict[str, int]:
        """Builder memory pool caps that keep a build on this board from being OOM-killed."""
        policy = _table()["policy"]
        usable = self.usable_bytes
        workspace = min(int(usable * policy["builder_workspace_fraction"]),
                        int(policy["builder_workspace_max_mib"]) * MIB)
        tactic = int(usable * policy["builder_tactic_dram_fraction"])
        return {"workspace_bytes": workspace, "tactic_dram_bytes": tactic}

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("key", "name", "compute_capability", *NUMERIC_FIELDS,
                                              "runtime_overhead_mib")}
        out["precisions"] = list(self.precisions)
        out["dla_precisions"] = list(self.dla_precisions)
        out["usable_bytes"] = self.usable_bytes
        out["builder_caps"] = self.builder_caps()
        return out


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    raw = read_yaml(TABLE, "target table")  # a missing or broken table names itself in one line
    _check_sources(raw)
    return raw


def _check_sources(raw: dict[str, Any]) -> None:
    """Every number carries a source that the table's `sources:` defines."""
    known = set(raw["sources"])
    sections = [("common", raw["common"]), ("policy", raw["policy"])]
    sections += [(f"targets.{k}", v) for k, v in raw["targets"].items()]
    for where, section in sections:
        cited = section.get("source") or {}
        for field, value in section.items():
            if field in ("source", "name", "architecture"):
                continue
            if field not in cited:
                raise PipelineError(f"{TABLE}: {where}.{field} has no source")
            if cited[field] not in known:
                raise PipelineError(f"{TABLE}: {where}.{field} cites unknown source {cited[field]!r}")
            if field in NUMERIC_FIELDS and not isinstance(value, (int, float)):
                raise PipelineError(f"{TABLE}: {where}.{field} must be a number, got {value!r}")


def target_names() -> list[str]:
    return list(_table()["targets"])


def part_numbers() -> dict[str, str]:
    """Device-tree part number -> the module's target (`part_numbers` in data/targets.yaml), for `auto`."""
    return {part: key for key, spec in _table()["targets"].items() for part in spec.get("part_numbers") or []}


def module_sizes(family: str) -> dict[float, str]:
    """A module family's memory sizes (GiB) -> its base target (no power mode), e.g. nano: {4: orin-nano-4, ...}."""
    return {float(spec["memory_gib"]): key for key, spec in _table()["targets"].items()
            if key.startswith(f"orin-{family}-") and spec.get("part_numbers")}


def get_target(name: str, root: Path = Path("/")) -> Target:
    """A target by name; `auto` detects the Jetson this runs on (see pipeline.platform.host)."""
    if name == AUTO:
        from .host import detect

        info = detect(root)
        if info.target is None:
            raise PipelineError(
                f"--target auto: {info.describe()}; name one of {', '.join(target_names())}"
            )
        name = info.target
    raw = _table()
    if name not in raw["targets"]:
        raise PipelineError(f"--target {name}: unknown target (choose from {', '.join(target_names())}, auto)")
    spec = raw["targets"][name]
    common = raw["common"]
    sources = {f: raw["sources"][s] for f, s in {**common["source"], **spec["source"]}.items()}
    return Target(
        key=name,
        name=spec["name"],
        compute_capability=str(common["compute_capability"]),
        precisions=tuple(common["precisions"]),
        dla_precisions=tuple(common["dla_precisions"]),
        runtime_overhead_mib=float(raw["policy"]["runtime_overhead_mib"]),
        sources=sources,
        **{f: spec[f] for f in NUMERIC_FIELDS},
    )


def resolve_target(name: str | None, precision: str | None = None, dla_core: int | None = None,
                   root: Path = Path("/")) -> Target | None:
    """What every stage calls with its `--target`: None stays None (no target-specific checks)."""
    if not name:
        return None
    target = get_target(name, root)
    if precision:
        target.check_precision(precision, dla_core)
    return target


def format_table() -> str:
    """The table `orin-trt targets` prints: one row per target, the numbers the planner uses."""
    cols = [("target", "key", "{}"), ("SMs", "sms", "{}"), ("CUDA", "cuda_cores", "{}"),
            ("TC", "tensor_cores", "{}"), ("GPU MHz", "gpu_max_mhz", "{:g}"),
            ("INT8 TOPS", "gpu_int8_tops_dense", "{:.1f}"), ("FP16 TFLOPS", "gpu_fp16_tflops_dense", "{:.1f}"),
            ("DLA", "dla_cores", "{}"), ("DLA TOPS*", "dla_int8_tops_sparse", "{:g}"),
            ("mem GiB", "memory_gib", "{:g}"), ("GB/s", "memory_bandwidth_gbs", "{:g}"),
            ("usable GiB", "usable_gib", "{:.1f}")]
    rows = []
    for name in target_names():
        t = get_target(name)
        values = {**t.as_dict(), "usable_gib": t.usable_bytes / GIB}
        rows.append([fmt.format(values[key]) for _, key, fmt in cols])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, (h, _, _) in enumerate(cols)]
    lines = ["  ".join(h.ljust(w) for (h, _, _), w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    common = _table()["common"]
    lines += [
        "",
        f"All: SM {common['compute_capability']} ({common['architecture']}); precisions "
        f"{', '.join(common['precisions'])} (no FP8 / FP4); DLA runs {' / '.join(common['dla_precisions'])}.",
        "INT8 / FP16 columns are dense GPU tensor-core peaks; *DLA TOPS are NVIDIA's sparse INT8 figures.",
        f"Sources for every number: {TABLE}",
    ]
    return "\n".join(lines)
