"""TensorRT through Polygraphy's TrtRunner, over an engine's plan file; only where the backend can execute
(a GPU and standard TensorRT: see trt.backend.execution_blocker)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from . import Runner, register

NAME = "tensorrt"


def stripped_engine_onnx(engine_path: Path) -> Path | None:
    """The ONNX to refit from when the engine's manifest says its plan is weight-stripped, else None."""
    from ..core.artifacts import read_json
    from ..core.manifest import Manifest

    path = engine_path.with_name(engine_path.name + ".json")
    if not path.exists():
        return None
    manifest = Manifest(path, read_json(path))  # unchecked: only `builder` and `onnx` matter to running it
    return manifest.onnx_path if manifest.strip_weights else None


def engine_loader(backend: Any, engine_path: Path) -> Any:
    """A Polygraphy loader of the engine; a weight-stripped plan is refitted from its ONNX first."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes

    onnx = stripped_engine_onnx(Path(engine_path))
    if onnx is not None:
        from ..trt.refit import refit_from_onnx

        return refit_from_onnx(backend, Path(engine_path).read_bytes(), onnx)
    return EngineFromBytes(BytesFromPath(str(engine_path)))


def load_engine(backend: Any, engine_path: Path) -> Any:
    """The deserialized ICudaEngine, for code that drives TensorRT's execution context itself (the
    nightly's depth profile); one line naming the file when TensorRT refuses the plan."""
    if stripped_engine_onnx(Path(engine_path)) is not None:
        return engine_loader(backend, engine_path)()
    trt = backend.module
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise PipelineError(f"{engine_path}: TensorRT could not deserialize the engine "
                            "(built by another TensorRT version or GPU?)")
    return engine


@contextmanager
def trt_runner(engine_path: Path) -> Iterator[Any]:
    from polygraphy.backend.trt import TrtRunner

    from ..trt.backend import select_backend

    with TrtRunner(engine_loader(select_backend(), engine_path)) as runner:
        yield runner


def blocker(manifest: dict[str, Any] | None) -> str | None:
    """No GPU or TensorRT-RTX here; or an engine another backend built."""
    from ..trt.backend import execution_blocker, select_backend

    backend = select_backend()
    if manifest is not None and manifest["builder"]["backend"] != backend.name:
        return f"engine built by {manifest['builder']['backend']}, this host has {backend.name}"
    return execution_blocker(backend)


RUNNER = register(Runner(name=NAME, artifact="engine", open=trt_runner, blocker=blocker, order=20,
                         failure_is_result=True))
