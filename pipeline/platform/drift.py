"""Drift guard: an engine runs only where it was built for (TensorRT version, L4T, SM, DLA core).

TensorRT plans are bound to the exact TensorRT build and GPU; loading one elsewhere fails deep in
deserialization with a cryptic message. The manifest's `system` section records what the engine was
built for; this compares it with the running system first and says plainly what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PipelineError

FIELDS = {
    "trt_version": "TensorRT",
    "l4t": "L4T",
    "compute_capability": "compute capability",
    "dla_core": "DLA core",
}


class DriftError(PipelineError):
    """The engine was built for a different TensorRT / L4T / GPU / DLA core than this system."""


def running_system(root: Path = Path("/"), dla_core: int | None = None) -> dict[str, Any]:
    """What this system would record in a manifest: read from the Jetson files and the TRT backend."""
    from .host import detect

    info = detect(root)
    trt_version = info.trt_version
    if trt_version is None and root == Path("/"):
        from ..trt.backend import select_backend

        trt_version = select_backend().version
    compute = None
    if info.is_jetson:
        from .targets import _table

        compute = str(_table()["common"]["compute_capability"])
    dla_cores = None
    if info.target is not None:
        from .targets import get_target

        dla_cores = get_target(info.target).dla_cores
    return {"trt_version": trt_version, "l4t": info.l4t, "compute_capability": compute, "dla_core": dla_core,
            "dla_cores": dla_cores}


def _show(value: Any) -> str:
    return "none (not a Jetson build)" if value is None else str(value)


def _tensorrt_lines(a: Any, b: Any) -> tuple[str, str]:
    """Name the JetPack line of each TensorRT when they differ (an engine from JetPack 6 on JetPack 7.2 is
    the usual case after an upgrade), from pipeline/data/jetson_lines.yaml."""
    from .lines import line_for_tensorrt

    la, lb = (line_for_tensorrt(str(v)) if v else None for v in (a, b))
    if la is None or lb is None or la.key == lb.key:
        return _show(a), _show(b)
    short = {line.key: "no JetPack" if line.jetpack == "none" else f"JetPack {line.jetpack}" for line in (la, lb)}
    return f"{a} ({short[la.key]})", f"{b} ({short[lb.key]})"


def same_trt_version(a: str, b: str) -> bool:
    """"10.3.0.30" and "10.3.0" agree (a library reports no build number); fewer than three shared
    components ("10" vs "10.3.0") never do. The cases are tests/contracts/drift_cases.json, which the
    C++ guard (jetson/cpp/src/drift.cpp) is tested against too."""
    pa, pb = str(a).split("."), str(b).split(".")
    n = min(len(pa), len(pb))
    if n < 3 and len(pa) != len(pb):
        return False
    return pa[:n] == pb[:n]


def _differs(key: str, a: Any, b: Any) -> bool:
    if key == "trt_version" and a is not None and b is not None:
        return not same_trt_version(a, b)
    return str(a) != str(b)


def differences(built_for: dict[str, Any], running: dict[str, Any]) -> list[str]:
    """One phrase per field that differs, naming both sides."""
    out = []
    for key, label in FIELDS.items():
        a, b = built_for.get(key), running.get(key)
        if key == "dla_core":
            a_s, b_s = ("GPU" if a is None else a), ("GPU" if b is None else b)
            cores = running.get("dla_cores")
            if a_s != b_s:
                out.append(f"{label}: engine {a_s}, requested {b_s}")
            elif a is not None and cores is not None and a >= cores:
                out.append(f"{label}: engine {a}, this system has {cores} DLA core(s)")
            continue
        if _differs(key, a, b):
            shown = _tensorrt_lines(a, b) if key == "trt_version" else (_show(a), _show(b))
            out.append(f"{label}: engine {shown[0]}, this system {shown[1]}")
    return out


def check_manifest(manifest: dict[str, Any], running: dict[str, Any], engine: Path | str,
                   action: str = "load") -> None:
    """Raise DriftError before TensorRT sees an engine built for another system."""
    built_for = manifest.get("system")
    if not isinstance(built_for, dict):
        raise DriftError(f"{engine}: its manifest has no 'system' section; rebuild the engine to record it")
    diffs = differences(built_for, running)
    if diffs:
        raise DriftError(
            f"cannot {action} {engine}: built for a different system ({'; '.join(diffs)}); "
            "rebuild it on this system (make engine) or run it where it was built"
        )


def guard_on_jetson(manifest: dict[str, Any], engine: Path | str, action: str, root: Path = Path("/")) -> None:
    """For steps that hand an engine to a device (publish / deploy): on a Jetson, refuse an engine built
    for another TensorRT / L4T / DLA core; on a host there is no device to compare with."""
    from .host import detect

    if not detect(root).is_jetson:
        return
    built_for = manifest.get("system") or {}
    check_manifest(manifest, running_system(root, dla_core=built_for.get("dla_core")), engine, action)
