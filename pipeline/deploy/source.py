"""The engine a deploy starts from: its manifest, checked for what the generators read, and its file."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.artifacts import Layout, atomic_path, write_text
from ..core.integrity import verify_engine_build
from ..core.manifest import Manifest, read_manifest
from ..errors import PipelineError


@dataclass(frozen=True)
class EngineArtifacts:
    manifest_path: Path
    engine_path: Path
    manifest: Manifest

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def class_names(self) -> list[str]:
        return list((self.manifest.get("postprocess") or {}).get("class_names") or [])

    @property
    def profile_count(self) -> int:
        return len(self.manifest.get("profiles") or [])

    def input_ranges(self, name: str) -> list[dict[str, list[int]]]:
        """An input's min/opt/max in every optimization profile that records it (index order)."""
        ranges = [(p.get("shapes") or {}).get(name) for p in self.manifest.get("profiles") or []]
        return [r for r in ranges if r]


def load_engine(root: Path, model: str, precision: str) -> EngineArtifacts:
    """engines/<model>/<precision>/model.engine(.json), refusing a manifest the generators cannot read."""
    layout = Layout(Path(root), model)
    return load_manifest_file(layout.manifest(precision))


def load_manifest_file(path: Path) -> EngineArtifacts:
    path = Path(path)
    manifest = read_manifest(path)
    engine = verify_engine_build(path, manifest)
    if manifest.strip_weights:
        # Triton and DeepStream deserialize the plan as it is; a stripped plan must be refitted first.
        raise PipelineError(f"{path}: the engine is a weight-stripped plan (--strip-weights), which runs only "
                            "after a refit from its ONNX; deploy an engine built without --strip-weights")
    return EngineArtifacts(path, engine, manifest)


def copy_file(src: Path, dst: Path) -> None:
    """Copy atomically: a consumer watching the folder never sees half an engine."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def write_labels(path: Path, names: list[str], separator: str = "\n") -> None:
    for name in names:
        if "\n" in name or (separator != "\n" and separator in name):
            raise PipelineError(f"postprocess.class_names: label {name!r} contains the separator {separator!r}")
    write_text(path, separator.join(names) + "\n")
