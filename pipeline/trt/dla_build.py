"""The TensorRT calls for DLA builds (TensorRT 10.3 Python API, JetPack 6).

DLA INT8 on TensorRT 10.x is implicit quantization: a network that is not strongly typed, the FP16
and INT8 builder flags, and an IInt8EntropyCalibrator2 that only hands TensorRT the calibration
cache written by pipeline.platform.dla.translate (no batches: the scales are ModelOpt's). TensorRT 11 removed
the precision flags and calibrators, and DLA with them until 11.4.1 (JetPack 7.2.2+, AGX Orin only): from
there the DLA takes the strongly typed QDQ network as it is. TensorRT-RTX has no DLA; it, TensorRT
10.8-10.16 (JetPack 7.2 / 7.2.1: no Orin DLA) and 11.0-11.4.0 are refused up front, naming the line
(pipeline/data/jetson_lines.yaml).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from .backend import Backend


def dla_is_strongly_typed(backend: Backend, target: str | None = None) -> bool:
    """True where the DLA takes the QDQ network as it is (TensorRT >= 11.4.1); False on 10.x, where
    DLA INT8 needs implicit quantization (flags + calibration cache). The rule per TensorRT version and
    module is pipeline/data/jetson_lines.yaml's."""
    from ..platform.lines import dla_mode

    return dla_mode(backend.version, target)[0] == "strongly-typed"


def dla_blocker(backend: Backend, target: str | None = None) -> str | None:
    """Why this backend (on this target) cannot build for the DLA, or None."""
    if backend.is_rtx:
        return f"{backend.describe()} has no DLA; build DLA engines with TensorRT on the Orin"
    from ..platform.lines import dla_refusal

    return dla_refusal(backend.version, target)


def require_dla(backend: Backend, target: str | None = None) -> None:
    if reason := dla_blocker(backend, target):
        raise PipelineError(f"--dla: {reason}")


def _cache_calibrator(trt: Any, cache: Path) -> Any:
    """An IInt8EntropyCalibrator2 that serves a finished cache and never asks for data."""
    data = Path(cache).read_bytes()

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # TensorRT calibrates only when the cache is missing or stale

        def read_calibration_cache(self) -> bytes:
            return data

        def write_calibration_cache(self, cache: bytes) -> None:
            return None

    return CacheCalibrator()


def configure_dla(backend: Backend, dla_core: int, fallback: bool, precision: str,
                  calibration_cache: Path | None, target: str | None = None) -> Callable[[Any, Any, Any], None]:
    """A Polygraphy PostprocessConfig callback that puts the network on `dla_core`."""
    require_dla(backend, target)
    trt = backend.module
    explicit = dla_is_strongly_typed(backend, target)
    if precision == "int8" and calibration_cache is None and not explicit:
        raise PipelineError("--dla with int8 needs the calibration cache from the QDQ translation")

    def apply(builder: Any, network: Any, config: Any) -> None:
        if dla_core >= builder.num_DLA_cores:
            raise PipelineError(f"--dla {dla_core}: this device has {builder.num_DLA_cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        if fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        if explicit:  # the network's types say it all; the precision flags no longer exist
            return
        config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = _cache_calibrator(trt, calibration_cache)

    return apply


def layers_not_on_dla(backend: Backend, onnx_path: Path, dla_core: int = 0) -> list[str]:
    """TensorRT's own verdict (`can_run_on_DLA`) for every layer of the parsed network."""
    require_dla(backend)
    trt = backend.module
    from polygraphy.backend.trt import NetworkFromOnnxPath

    explicit = dla_is_strongly_typed(backend)
    builder, network, _parser = NetworkFromOnnxPath(str(onnx_path), strongly_typed=explicit)()
    config = builder.create_builder_config()
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = dla_core
    if not explicit:
        config.set_flag(trt.BuilderFlag.FP16)
    return [network.get_layer(i).name for i in range(network.num_layers)
            if not config.can_run_on_DLA(network.get_layer(i))]

