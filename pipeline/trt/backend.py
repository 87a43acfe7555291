"""Choose the TensorRT flavour: standard `tensorrt` where it is installed (Jetson, TensorRT hosts),
else `tensorrt_rtx` (pip-installable, builds ahead of time without a GPU). Always reported, never silent."""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from ..errors import PipelineError

BACKENDS = ("tensorrt", "tensorrt_rtx")


@dataclass(frozen=True)
class Backend:
    name: str
    version: str
    module: ModuleType

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt_rtx"

    @property
    def honours_extra_memory_target(self) -> bool:
        """TensorRT-RTX 1.7 stores the same engine with IOptimizationProfile.extra_memory_target at 0 as at
        1 (benchmarks/results/engine_weights_per_profile.md); TensorRT documents it as a hint it aims for."""
        return not self.is_rtx

    def describe(self) -> str:
        what = "TensorRT-RTX (ahead-of-time build; not an Orin engine)" if self.is_rtx else "TensorRT"
        return f"{what} {self.version}"


def _import(name: str) -> ModuleType | None:
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # a placeholder wheel or a broken install is as good as absent
        return None


@lru_cache(maxsize=1)
def select_backend() -> Backend:
    """`ORIN_TRT_BACKEND=tensorrt|tensorrt_rtx` forces one; otherwise standard TensorRT wins."""
    forced = os.environ.get("ORIN_TRT_BACKEND") or None
    if forced and forced not in BACKENDS:
        raise PipelineError(f"ORIN_TRT_BACKEND={forced!r}: choose one of {', '.join(BACKENDS)}")
    for name in [forced] if forced else list(BACKENDS):
        module = _import(name)
        if module is None:
            continue
        if name == "tensorrt_rtx":
            # Polygraphy picks its TensorRT module from this switch when its TensorRT backend is imported.
            os.environ["POLYGRAPHY_USE_TENSORRT_RTX"] = "1"
            import polygraphy.config

            polygraphy.config.USE_TENSORRT_RTX = True
        return Backend(name, str(module.__version__), module)
    wanted = forced or " or ".join(BACKENDS)
    raise PipelineError(
        f"no TensorRT backend importable ({wanted}); on a Jetson use the JetPack TensorRT, "
        "elsewhere `pip install tensorrt-rtx-cu13`"
    )


def cuda_device_count() -> int:
    """Devices the CUDA runtime sees; 0 without a driver (cuda-python, never pycuda)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        return 0
    try:
        err, count = runtime.cudaGetDeviceCount()
    except Exception:
        return 0
    return int(count) if int(err) == 0 else 0


def execution_blocker(backend: Backend) -> str | None:
    """Why engines from this backend cannot run here, or None when they can."""
    if backend.is_rtx:
        return ("engine built by TensorRT-RTX, which stands in for TensorRT on hosts without it; "
                "Orin engines run with TensorRT on the Jetson")
    if cuda_device_count() == 0:
        return "no CUDA device visible (cudaGetDeviceCount)"
    return None
