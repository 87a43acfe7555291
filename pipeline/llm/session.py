"""One forward step of a KV-cache decoder, behind the same call for every runner.

ONNX Runtime runs here; TensorRT (10.3 API through Polygraphy's TrtRunner) runs where an engine can
execute, switching the optimization profile by phase: the manifest names the profile that serves
`prefill` and the one that serves `decode`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError
from .kv_cache import CacheShape

PHASES = ("prefill", "decode")


class DecoderSession:
    def __init__(self, name: str, runner: Any, cache: CacheShape, phase_profiles: dict[str, int] | None = None):
        self.name = name
        self.runner = runner
        self.cache = cache
        self.phase_profiles = phase_profiles
        self._active: int | None = None

    def step(self, feed: dict[str, np.ndarray], phase: str) -> dict[str, np.ndarray]:
        if self.phase_profiles is not None:
            index = self.phase_profiles[phase]
            if index != self._active:
                self.runner.set_profile(index)
                self._active = index
        out = self.runner.infer(feed_dict=feed)
        return {k: np.asarray(v) for k, v in out.items()}


def phase_profiles(manifest_profiles: list[dict[str, Any]], where: str) -> dict[str, int]:
    """Which optimization profile index serves each phase; one profile without phases serves both."""
    found = {p.get("phase"): i for i, p in enumerate(manifest_profiles)}
    if all(ph in found for ph in PHASES):
        return {ph: found[ph] for ph in PHASES}
    if len(manifest_profiles) == 1:
        return dict.fromkeys(PHASES, 0)
    raise PipelineError(f"{where}: profiles name phases {sorted(map(str, found))}; need 'prefill' and 'decode'")


@contextmanager
def onnxrt_session(onnx_path: Path, name: str = "onnxrt") -> Iterator[DecoderSession]:
    from ..core import onnx_utils
    from ..runners.onnxrt import onnxrt_runner

    cache = CacheShape.from_io(onnx_utils.io_spec(onnx_utils.load(onnx_path, with_weights=False)))
    with onnxrt_runner(onnx_path) as runner:
        yield DecoderSession(name, runner, cache)


@contextmanager
def tensorrt_session(engine_path: Path, manifest: dict[str, Any]) -> Iterator[DecoderSession]:
    """Needs a GPU that can execute the engine (a Jetson); see trt.backend.execution_blocker."""
    from ..runners.tensorrt import NAME, trt_runner

    cache = CacheShape.from_io(manifest["io"])
    profiles = phase_profiles(manifest["profiles"], str(engine_path))
    with trt_runner(engine_path) as runner:
        yield DecoderSession(NAME, runner, cache, profiles)
