"""TensorRT calibration cache files: write and read the text format TensorRT's INT8 calibrators use.

Format (as TensorRT writes it and ONNX Runtime's TensorRT provider reads it):
    TRT-<version>-EntropyCalibration2
    <tensor name>: <IEEE-754 float32 scale as 8 hex digits, big-endian>
The scale is the quantization step: a tensor's dynamic range is scale * 127. <version> is TensorRT's
NV_TENSORRT_VERSION number (major*1000 + minor*100 + patch before TensorRT 10, major*10000 + ...
from 10 on: 8.6.1 -> 8601, 10.3.0 -> 100300); TensorRT ignores a cache written for another version.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from ...core.artifacts import write_text
from ...errors import PipelineError

ALGORITHM = "EntropyCalibration2"


def version_tag(trt_version: str) -> str:
    """'10.3.0.30' -> '100300'; '8.6.1.6' -> '8601'."""
    try:
        major, minor, patch = (int(p) for p in (trt_version.split(".") + ["0", "0"])[:3])
    except ValueError as e:
        raise PipelineError(f"TensorRT version {trt_version!r}: expected MAJOR.MINOR.PATCH") from e
    return str(major * (10000 if major >= 10 else 1000) + minor * 100 + patch)


def scale_to_hex(scale: float) -> str:
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text.strip().rjust(8, "0")))[0]


def render(scales: dict[str, float], trt_version: str) -> str:
    lines = [f"TRT-{version_tag(trt_version)}-{ALGORITHM}"]
    for name, scale in scales.items():
        if not math.isfinite(scale) or scale <= 0:
            raise PipelineError(f"calibration cache: tensor {name!r} has scale {scale}; scales must be > 0")
        if ": " in name or "\n" in name:
            raise PipelineError(f"calibration cache: tensor name {name!r} cannot be written (contains ': ')")
        lines.append(f"{name}: {scale_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def write_cache(path: Path, scales: dict[str, float], trt_version: str) -> Path:
    write_text(Path(path), render(scales, trt_version))
    return Path(path)


def read_cache(path: Path) -> tuple[str, dict[str, float]]:
    """(header, {tensor: scale}); a malformed line names the file and line number."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("TRT-"):
        raise PipelineError(f"{path}: not a TensorRT calibration cache (first line must be TRT-<version>-<algo>)")
    scales = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        if not sep:
            raise PipelineError(f"{path}:{number}: expected '<tensor>: <hex scale>', got {line!r}")
        try:
            scales[name] = hex_to_scale(value)
        except ValueError as e:
            raise PipelineError(f"{path}:{number}: {value!r} is not a hex float32") from e
    return lines[0], scales
