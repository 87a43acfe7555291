"""Where artifacts live, how they are written (atomically) and how they are hashed.

Every stage writes through these helpers so that an interrupted run never leaves half an
engine or half a manifest: data goes to a temporary file beside the target and is renamed
over it only once complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PipelineError

CHUNK = 1 << 20
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are shared files
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a scratch folder beside `target`; it replaces `target` only if the block succeeds."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a calibration set or bundle is shared
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: Path, data: Any) -> None:
    """`data`: anything with the buffer protocol (bytes, a TensorRT IHostMemory), written without a copy."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path, obj: Any) -> None:
    text = json.dumps(_finite(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    write_text(target, text + "\n")


def _finite(obj: Any) -> Any:
    """Strict JSON has no Infinity / NaN: write them as strings other parsers can read."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file users edit (recipe, matrix): a missing file or a syntax error names `what` and the path."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PipelineError(f"{what} {path}: not valid YAML ({str(e).splitlines()[0]})") from e


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def onnx_files(onnx_path: Path) -> list[Path]:
    """The ONNX file plus the external-data files stored beside it (for models over 2 GB).

    External data is found by the naming convention the stages use (`<model>.onnx.data`),
    so hashing never has to parse a multi-gigabyte protobuf.
    """
    onnx_path = Path(onnx_path)
    files = [onnx_path]
    data = onnx_path.with_name(onnx_path.name + ".data")
    if data.exists():
        files.append(data)
    return files


def sha256_files(paths: list[Path]) -> str:
    """One digest over several files, each contributing its name and content digest."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def sha256_onnx(onnx_path: Path) -> str:
    files = onnx_files(onnx_path)
    return sha256_file(files[0]) if len(files) == 1 else sha256_files(files)


def sha256_tree(folder: Path, suffixes: tuple[str, ...] | None = None) -> str:
    """Digest of a folder's files (relative names and contents): a calibration set's identity."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or (suffixes and p.suffix.lower() not in suffixes):
            continue
        h.update(str(p.relative_to(folder)).encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_json_default).encode()).hexdigest()


@dataclass(frozen=True)
class Layout:
    """The on-disk layout of one model's artifacts under the engines root.

    engines/<model>/model.onnx                      export
    engines/<model>/export.json                     export report (PyTorch vs ONNX Runtime parity)
    engines/<model>/<precision>/model.onnx          calibrate (precision written into the graph)
    engines/<model>/<precision>/calibrate.json      calibrate report
    engines/<model>/<precision>/model.engine        build (raw plan bytes)
    engines/<model>/<precision>/model.engine.json   build manifest
    engines/<model>/<precision>/report.{json,md}    profile
    engines/<model>/.stamps/<stage>.json            the stage cache
    """

    root: Path
    model: str

    def __post_init__(self) -> None:
        # The model name becomes a folder under the root: a name with a path in it would write elsewhere.
        if not _MODEL_NAME.fullmatch(self.model or "") or ".." in self.model:
            raise PipelineError(
                f"model name {self.model!r} is not a plain name (letters, digits, '.', '_', '-'; "
                "no '/' or '..'): it names the folder under the output root"
            )

    @property
    def model_dir(self) -> Path:
        return self.root / self.model

    @property
    def exported_onnx(self) -> Path:
        return self.model_dir / "model.onnx"

    @property
    def export_report(self) -> Path:
        return self.model_dir / "export.json"

    def precision_dir(self, precision: str) -> Path:
        return self.model_dir / precision

    def calibrated_onnx(self, precision: str) -> Path:
        return self.precision_dir(precision) / "model.onnx"

    def calibrate_report(self, precision: str) -> Path:
        return self.precision_dir(precision) / "calibrate.json"

    def engine(self, precision: str) -> Path:
        return self.precision_dir(precision) / "model.engine"

    def manifest(self, precision: str) -> Path:
        return self.precision_dir(precision) / "model.engine.json"

    def report_json(self, precision: str) -> Path:
        return self.precision_dir(precision) / "report.json"

    def report_md(self, precision: str) -> Path:
        return self.precision_dir(precision) / "report.md"

    def stamp(self, stage: str) -> Path:
        return self.model_dir / ".stamps" / f"{stage}.json"
