"""The runners: one registry of what can execute a model on feeds, all through Polygraphy.

Each runner is one module of this package that calls `register` with a `Runner`: its name, the artifact
it opens (an ONNX or an engine), why it cannot run here (None: it can) and how to open it. The stages
ask the registry (`registered`, `get_runner`, `runner_for`), never a runner by its file suffix; adding a
runner is adding one file here. Below the registry: running feeds, timing and the profile-shape check
every runner shares.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PipelineError, ShapeOutOfProfileError

if TYPE_CHECKING:  # the CLI lists the runners at start-up: no numpy there
    import numpy as np

Feed = dict[str, "np.ndarray"]

ARTIFACTS = {"onnx": ".onnx", "engine": ".engine"}  # what a runner opens -> the file it is


@dataclass(frozen=True)
class Runner:
    name: str
    artifact: str  # a key of ARTIFACTS
    open: Callable[[Path], AbstractContextManager[Any]]  # a Polygraphy runner (`infer(feed_dict=...)`)
    # Why it cannot run here, given the engine's manifest where there is one; None when it can.
    blocker: Callable[[dict[str, Any] | None], str | None] = lambda manifest: None
    order: int = 50  # profile runs the runners in this order
    # An engine that fails to run is a result the report shows; an ONNX that fails is a bug that stops.
    failure_is_result: bool = False

    def label(self, precision: str) -> str:
        """The name in reports: an ONNX runner per precision (`onnxrt-int8`), an engine runner by itself."""
        return f"{self.name}-{precision}" if self.artifact == "onnx" else self.name

    def path(self, layout: Any, precision: str) -> Path:
        """Where this runner's artifact of `precision` lies in a model's layout."""
        return layout.calibrated_onnx(precision) if self.artifact == "onnx" else layout.engine(precision)


_REGISTRY: dict[str, Runner] = {}


def register(runner: Runner) -> Runner:
    if runner.artifact not in ARTIFACTS:
        raise ValueError(f"runner {runner.name}: artifact {runner.artifact!r} is not one of {', '.join(ARTIFACTS)}")
    _REGISTRY[runner.name] = runner
    return runner


def registered() -> list[Runner]:
    """Every runner of this package, in their order (their modules import nothing heavy at the top)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return sorted(_REGISTRY.values(), key=lambda r: (r.order, r.name))


def get_runner(name: str) -> Runner:
    runners = {r.name: r for r in registered()}
    if name not in runners:
        raise PipelineError(f"unknown runner {name!r}; choose {', '.join(runners)}")
    return runners[name]


def runner_for(path: Path) -> Runner:
    """The first runner (in order) that opens this kind of artifact."""
    for runner in registered():
        if Path(path).suffix == ARTIFACTS[runner.artifact]:
            return runner
    raise PipelineError(f"{path}: no runner opens {Path(path).suffix or 'a file without suffix'} files "
                        f"({', '.join(ARTIFACTS.values())})")



def ort_providers() -> list[str]:
    """CUDA where ONNX Runtime can use it, else CPU; Polygraphy takes the short names."""
    import onnxruntime as ort

    from ..trt.backend import cuda_device_count

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available and cuda_device_count() > 0:
        return ["cuda", "cpu"]
    return ["cpu"]


def conform(runner: Any, feed: Feed) -> Feed:
    """The feed in the dtypes the model declares (an LLM's FP16 KV cache in a precision's ONNX, fed the
    adapter's float32 feeds): a cast per input whose dtype differs."""
    from polygraphy.datatype import DataType

    meta = runner.get_input_metadata()
    out = {}
    for name, value in feed.items():
        want = DataType.to_dtype(meta[name].dtype, "numpy") if name in meta and meta[name].dtype else None
        out[name] = value.astype(want) if want is not None and value.dtype != want else value
    return out


def run(runner: Any, feeds: list[Feed], output_names: list[str]) -> list[list[np.ndarray]]:
    import numpy as np

    outs = []
    for feed in feeds:
        result = runner.infer(feed_dict=conform(runner, feed))
        outs.append([np.asarray(result[n]) for n in output_names])
    return outs


def time_runner(runner: Any, feed: Feed, warmup: int, iterations: int) -> list[float]:
    """Wall time of each inference call (host to host), after `warmup` untimed calls."""
    feed = conform(runner, feed)
    for _ in range(warmup):
        runner.infer(feed_dict=feed)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        runner.infer(feed_dict=feed)
        times.append(time.perf_counter() - t0)
    return times


def check_in_profile(feed: Feed, profile: dict[str, dict[str, Any]], where: str) -> None:
    """Refuse a shape the engine was not built for, naming the input, its shape and the bounds."""
    for name, arr in feed.items():
        spec = profile.get(name)
        if spec is None:
            raise PipelineError(f"{where}: input {name!r} is not an input of the model")
        lo, hi = spec["min"], spec["max"]
        if len(arr.shape) != len(lo) or any(not (a <= s <= b) for s, a, b in zip(arr.shape, lo, hi, strict=True)):
            raise ShapeOutOfProfileError(
                f"{where}: input {name!r} shape {list(arr.shape)} is outside the profile min {lo} .. max {hi}"
            )
