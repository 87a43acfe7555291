"""The engine manifest (`model.engine.json`, docs/manifest.md): one reader, one writer, one checked type.

`Manifest` is the JSON as written, readable as a mapping (adapters and generators take it as such) and
with typed accessors for what the pipeline itself decides on. `read_manifest` refuses, in one line naming
the file, what C++'s `Manifest` would refuse too: not JSON, another schema, a missing key, io tensors
without name, dtype and shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from .artifacts import read_json, write_json

SCHEMA = "orin-trt/manifest@1"
REQUIRED = ("model", "precision", "engine", "io")


class Manifest(Mapping[str, Any]):
    __slots__ = ("_data", "path")

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = Path(path)
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def model(self) -> str:
        return str(self._data["model"])

    @property
    def precision(self) -> str:
        return str(self._data["precision"])

    @property
    def engine_path(self) -> Path:
        return self.path.parent / str(self._data["engine"].get("file", "model.engine"))

    @property
    def onnx_path(self) -> Path:
        return self.path.parent / str((self._data.get("onnx") or {}).get("file", "model.onnx"))

    @property
    def output_names(self) -> list[str]:
        return [t["name"] for t in self._data["io"]["outputs"]]

    @property
    def profiles(self) -> list[dict[str, Any]]:
        return list(self._data.get("profiles") or [])

    @property
    def builder(self) -> dict[str, Any]:
        return dict(self._data.get("builder") or {})

    @property
    def strip_weights(self) -> bool:
        """A weight-stripped plan: it runs only after a refit from the ONNX beside it."""
        return bool(self.builder.get("strip_weights"))


def _check(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise PipelineError(f"{path}: schema is not {SCHEMA}")
    for key in REQUIRED:
        if key not in data:
            raise PipelineError(f"{path}: missing '{key}'")
    io = data["io"]
    for side in ("inputs", "outputs"):
        tensors = io.get(side) if isinstance(io, dict) else None
        if not tensors or not all(isinstance(t, dict) and {"name", "dtype", "shape"} <= t.keys() for t in tensors):
            raise PipelineError(f"{path}: io.{side} must list tensors with name, dtype and shape")
    return data


def read_manifest(path: Path) -> Manifest:
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: no engine manifest; build the engine first (make engine MODEL=... PRECISION=...)")
    try:
        data = read_json(path)
    except ValueError as e:
        raise PipelineError(f"{path}: not valid JSON ({e})") from None
    return Manifest(path, _check(path, data))


def write_manifest(path: Path, data: dict[str, Any]) -> Manifest:
    """Checked as a reader would check it, then written atomically."""
    manifest = Manifest(Path(path), _check(Path(path), {"schema": SCHEMA, **data}))
    write_json(path, dict(manifest))
    return manifest
