"""Skip a stage when nothing it depends on changed; the one place where skipping happens.

A stage declares what it depends on (input files, options, tool versions) and what it
produces. The digest of those inputs is stored in a stamp beside the artifacts once the
outputs are written. A later run with the same digest and intact outputs is skipped; any
difference names what changed, so the user knows why work is redone.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import PipelineError
from .artifacts import read_json, sha256_file, sha256_json, write_json
from .log import log

# Outputs up to this size (manifests, reports, small ONNX) are hashed into the stamp, so an edit that
# keeps size and mtime is still seen; larger ones (engines, weights) are checked by size and mtime
# here, and by SHA-256 against the manifest where they are used (profile, deploy).
HASHED_OUTPUT_MAX_BYTES = 4 << 20


@dataclass
class StageSpec:
    """Everything a stage's result depends on, and what it writes."""

    name: str
    stamp: Path
    inputs: dict[str, list[Path]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    tools: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)


@dataclass
class StageResult:
    name: str
    skipped: bool
    seconds: float
    summary: dict[str, Any]
    reason: str


def tool_versions(names: list[str]) -> dict[str, str]:
    """Installed versions of the named distributions, read from metadata without importing them."""
    versions = {"orin-trt": __version__}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _key(path: Path, base: Path) -> str:
    """A stamp names files relative to the model's folder, so a copied or moved root stays valid."""
    try:
        return os.path.relpath(path, base) if Path(path).resolve().is_relative_to(base.resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _unkey(key: str, base: Path) -> Path:
    p = Path(key)
    return p if p.is_absolute() else base / p


def _stamp_base(spec_or_stamp: Path) -> Path:
    """engines/<model>/.stamps/<stage>.json -> engines/<model>"""
    return Path(spec_or_stamp).parent.parent


def _file_digest(path: Path, known: dict[str, dict[str, Any]], key: str) -> str:
    """Content digest, reusing the previous one when size and mtime are unchanged (like make)."""
    st = path.stat()
    prev = known.get(key)
    if prev and prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
        return prev["sha256"]
    return sha256_file(path)


def _describe_inputs(spec: StageSpec, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = _stamp_base(spec.stamp)
    files: dict[str, dict[str, Any]] = {}
    digests: dict[str, list[str]] = {}
    for role, paths in spec.inputs.items():
        digests[role] = []
        for p in paths:
            p = Path(p)
            if not p.exists():
                digests[role].append(f"missing:{p.name}")
                continue
            st = p.stat()
            key = _key(p, base)
            digest = _file_digest(p, known, key)
            files[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            digests[role].append(digest)
    return {"files": files, "digests": digests}


def _components(spec: StageSpec, digests: dict[str, list[str]]) -> dict[str, str]:
    comps = {f"input:{role}": sha256_json(d) for role, d in digests.items()}
    comps["options"] = sha256_json(spec.options)
    comps["tools"] = sha256_json(tool_versions(spec.tools))
    return comps


def _describe_output(path: Path) -> dict[str, Any]:
    st = os.stat(path)
    rec: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if st.st_size <= HASHED_OUTPUT_MAX_BYTES:
        rec["sha256"] = sha256_file(path)
    return rec


def _outputs_intact(stamp: dict[str, Any], base: Path, expected: list[Path]) -> bool:
    recorded = stamp.get("outputs", {})
    if {_key(p, base) for p in expected} - set(recorded):
        return False  # the stage now writes something the stamp never vouched for
    for key, rec in recorded.items():
        p = _unkey(key, base)
        if not p.is_file():
            return False
        st = p.stat()
        if st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
            return False
        if "sha256" in rec and sha256_file(p) != rec["sha256"]:
            return False
    return True


def _read_stamp(path: Path, force: bool) -> dict[str, Any] | None:
    """The previous stamp; a corrupt or hand-edited one is named (with --force it is simply replaced)."""
    if not path.exists():
        return None
    try:
        stamp = read_json(path)
        problem = None if isinstance(stamp, dict) and all(
            isinstance(stamp.get(k), dict) for k in ("components", "inputs", "outputs")) else "not a stage stamp"
    except (OSError, ValueError) as e:
        problem = f"unreadable: {e}"
    if problem is None:
        return stamp
    if force:
        return None
    raise PipelineError(f"stage stamp {path} is corrupt ({problem}); delete it or re-run with --force")


def _why_rerun(stamp: dict[str, Any] | None, comps: dict[str, str], force: bool, spec: StageSpec) -> str | None:
    if force:
        return "--force"
    if stamp is None:
        return "no previous run"
    old = stamp.get("components", {})
    changed = sorted(k for k in set(old) | set(comps) if old.get(k) != comps.get(k))
    if changed:
        return "changed: " + ", ".join(changed)
    if not _outputs_intact(stamp, _stamp_base(spec.stamp), spec.outputs):
        return "outputs missing or modified"
    return None


def run_stage(spec: StageSpec, work: Callable[[], dict[str, Any]], force: bool = False) -> StageResult:
    """Run `work` unless the stamp shows identical inputs and intact outputs."""
    stamp = _read_stamp(spec.stamp, force)
    known = stamp.get("inputs", {}).get("files", {}) if stamp else {}
    described = _describe_inputs(spec, known)
    comps = _components(spec, described["digests"])
    reason = _why_rerun(stamp, comps, force, spec)
    if reason is None:
        log(spec.name, "up to date, skipped")
        return StageResult(spec.name, True, 0.0, stamp.get("summary", {}), "up to date")

    log(spec.name, f"running ({reason})")
    if spec.stamp.exists():
        spec.stamp.unlink()  # a crash mid-stage must not leave a stamp vouching for old outputs
    t0 = time.perf_counter()
    summary = work()
    seconds = time.perf_counter() - t0
    base = _stamp_base(spec.stamp)
    outputs = {_key(p, base): _describe_output(p) for p in spec.outputs}
    write_json(
        spec.stamp,
        {
            "stage": spec.name,
            "components": comps,
            "inputs": described,
            "options": spec.options,
            "tools": tool_versions(spec.tools),
            "outputs": outputs,
            "seconds": round(seconds, 3),
            "summary": summary,
        },
    )
    log(spec.name, f"done in {seconds:.1f} s")
    return StageResult(spec.name, False, seconds, summary, reason)
