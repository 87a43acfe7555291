"""The Jetson software lines on Orin (pipeline/data/jetson_lines.yaml): which JetPack a TensorRT / L4T
release belongs to, and what the DLA can do there on each module family.

One table answers `--target auto` (jetson_info names the line), the DLA gate (trt/dla.py refuses a
TensorRT without Orin DLA up front, naming the line), the drift guard (both sides named with their line)
and the table in docs/targets.md (`markdown_table`, checked against the docs by a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.artifacts import read_yaml
from ..errors import PipelineError

TABLE = Path(__file__).parents[1] / "data" / "jetson_lines.yaml"
DLA_MODES = ("implicit-int8", "strongly-typed", "none")
FIELDS = ("jetpack", "l4t", "tensorrt", "tensorrt_range", "cuda", "python", "ubuntu", "dla")


def version_tuple(version: str) -> tuple[int, ...]:
    """'10.16.1.7' -> (10, 16, 1, 7); stops at the first part that is not a number ('11.4.1rc' -> (11, 4))."""
    out = []
    for part in str(version).split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


@dataclass(frozen=True)
class Line:
    key: str
    jetpack: str
    l4t: tuple[str, ...]
    tensorrt: str
    first: tuple[int, ...]
    end: tuple[int, ...] | None   # exclusive; None = open-ended
    cuda: str
    python: str
    ubuntu: str
    dla: dict[str, str]
    sources: dict[str, str]

    @property
    def title(self) -> str:
        if self.jetpack == "none":
            return f"TensorRT {self.tensorrt} (no JetPack release)"
        l4t = " / ".join(f"r{v}" for v in self.l4t)
        return f"JetPack {self.jetpack} (L4T {l4t}, TensorRT {self.tensorrt})"

    def covers(self, trt_version: str) -> bool:
        v = version_tuple(trt_version)
        return self.first <= v and (self.end is None or v < self.end)

    def dla_mode(self, family: str) -> str:
        if family not in self.dla:
            raise PipelineError(f"{TABLE}: lines.{self.key}.dla has no entry for {family}")
        return self.dla[family]

    def dla_modules(self) -> list[str]:
        return [f for f, mode in self.dla.items() if mode != "none"]


def module_family(target: str) -> str:
    """'orin-nx-16-super' -> 'orin-nx' (the DLA rules are per module family, not per memory size)."""
    parts = target.split("-")
    if len(parts) < 2 or parts[0] != "orin":
        raise PipelineError(f"--target {target}: not an Orin target name")
    return "-".join(parts[:2])


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    raw = read_yaml(TABLE, "Jetson line table")  # a missing or broken table names itself in one line
    known = set(raw["sources"])
    for key, spec in raw["lines"].items():
        cited = spec.get("source") or {}
        for field in FIELDS:
            if field not in spec:
                raise PipelineError(f"{TABLE}: lines.{key}.{field} is missing")
            if cited.get(field) not in known:
                raise PipelineError(f"{TABLE}: lines.{key}.{field} has no known source")
        if set(spec["dla"]) != set(raw["families"]) or not set(spec["dla"].values()) <= set(DLA_MODES):
            raise PipelineError(f"{TABLE}: lines.{key}.dla must give one of {DLA_MODES} for {raw['families']}")
    return raw


@lru_cache(maxsize=1)
def lines() -> tuple[Line, ...]:
    raw = _raw()
    out = []
    for key, s in raw["lines"].items():
        first, end = s["tensorrt_range"]
        out.append(Line(
            key=key, jetpack=str(s["jetpack"]), l4t=tuple(str(v) for v in s["l4t"]), tensorrt=str(s["tensorrt"]),
            first=version_tuple(first), end=version_tuple(end) if end else None,
            cuda=str(s["cuda"]), python=str(s["python"]), ubuntu=str(s["ubuntu"]), dla=dict(s["dla"]),
            sources={f: raw["sources"][s["source"][f]] for f in FIELDS},
        ))
    return tuple(out)


def get_line(key: str) -> Line:
    for line in lines():
        if line.key == key:
            return line
    raise PipelineError(f"unknown Jetson line {key!r} (known: {', '.join(x.key for x in lines())})")


def line_for_tensorrt(trt_version: str) -> Line | None:
    """The line whose TensorRT rules apply to this version; None before TensorRT 10 (not an Orin line here)."""
    return next((line for line in lines() if line.covers(trt_version)), None)


def line_for(trt_version: str | None = None, l4t: str | None = None) -> Line | None:
    """TensorRT decides (L4T r39.2 carries both TensorRT 10.16 and 11.4.1); without it, an L4T release
    that belongs to exactly one line."""
    if trt_version:
        return line_for_tensorrt(trt_version)
    if l4t:
        major_minor = ".".join(l4t.split(".")[:2])
        found = [line for line in lines() if major_minor in line.l4t]
        return found[0] if len(found) == 1 else None
    return None


def dla_mode(trt_version: str, target: str | None) -> tuple[str, Line | None]:
    """(mode, line) for a DLA build with this TensorRT on this target (None: the most permissive module)."""
    line = line_for_tensorrt(trt_version)
    if line is None:
        return "none", None
    if target is None:
        modes = [m for m in line.dla.values() if m != "none"]
        return (modes[0] if modes else "none"), line
    return line.dla_mode(module_family(target)), line


def dla_refusal(trt_version: str, target: str | None = None) -> str | None:
    """One sentence saying why this TensorRT (on this target) cannot build for the DLA, or None."""
    mode, line = dla_mode(trt_version, target)
    if mode != "none":
        return None
    if line is None:
        return f"TensorRT {trt_version} is older than any Orin line in {TABLE.name}"
    where = f" on {module_family(target)}" if target else ""
    with_dla = [x for x in lines() if x.dla_modules()]
    options = "; ".join(f"JetPack {x.jetpack} with TensorRT {x.tensorrt} ({', '.join(x.dla_modules())})"
                        for x in with_dla)
    return (f"TensorRT {trt_version} is the {line.title} line, which has no DLA{where} "
            f"({line.sources['dla'].split(',')[0]}); DLA builds need {options}")


def markdown_table() -> str:
    """The table docs/targets.md shows (a test keeps the two identical)."""
    raw = _raw()
    head = ["line", "L4T", "TensorRT", "CUDA", "Python", "Ubuntu", *(f"DLA {f}" for f in raw["families"])]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for line in lines():
        jetpack = "no JetPack release" if line.jetpack == "none" else f"JetPack {line.jetpack}"
        l4t = " / ".join(f"r{v}" for v in line.l4t) or "-"
        rows.append("| " + " | ".join([jetpack, l4t, line.tensorrt, line.cuda, line.python, line.ubuntu,
                                       *(line.dla[f] for f in raw["families"])]) + " |")
    return "\n".join(rows)
