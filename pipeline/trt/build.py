"""Build a strongly typed engine from an ONNX through Polygraphy's loaders; plan bytes out.

Precision comes from the ONNX (AutoCast FP16, QDQ INT8, INT4 weight-only), never from builder flags:
the one path that works on TensorRT 10.3 (JetPack 6), on TensorRT 11 (flags removed) and on TensorRT-RTX.
The builder serializes without deserializing, so no GPU is needed where the backend allows, and writes the
plan into the engine file as it serializes where it can (`build_serialized_network_to_stream`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from .backend import Backend, select_backend

Shapes = dict[str, tuple[list[int], list[int], list[int]]]  # input -> (min, opt, max)


@dataclass
class BuildOptions:
    profiles: list[Shapes]
    workspace_bytes: int
    builder_optimization_level: int = 3
    timing_cache: Path | None = None
    # Target-specific (pipeline.platform.targets / pipeline.platform.dla): None / False leave TensorRT's defaults.
    tactic_dram_bytes: int | None = None
    sparse_weights: bool = False
    dla_core: int | None = None
    dla_fallback: bool = True
    dla_precision: str = "fp16"
    calibration_cache: Path | None = None
    strip_weights: bool = False  # a weight-stripped, refittable plan (trt/refit.py)
    target: str | None = None  # the Orin target: the DLA rules differ per module (jetson_lines.yaml)
    extra_profile_memory: float | None = None  # profiles after the first (`_profiles`); None: TensorRT's 1.0


@dataclass
class BuildOutput:
    plan_bytes: int  # the engine file's size: build_engine wrote it
    backend: Backend
    seconds: float
    memory: dict[str, int | None]
    timing_cache: Path | None
    log_lines: list[str] = field(default_factory=list)
    strongly_typed: bool = True  # False only for TensorRT 10.x DLA builds (implicit precision flags)
    widened: list[dict[str, Any]] = field(default_factory=list)  # profile dims given 1..2 (`_profiles`)


class _RecordingLogger:
    """TensorRT logger that keeps every message (memory totals are only reported there without a GPU)
    and forwards warnings and errors to Polygraphy's logger."""

    def __init__(self, trt: Any) -> None:
        from polygraphy.logger import G_LOGGER

        class Logger(trt.ILogger):
            def __init__(inner) -> None:
                trt.ILogger.__init__(inner)
                inner.lines: list[str] = []

            def log(inner, severity: Any, msg: str) -> None:
                inner.lines.append(msg)
                if severity in (trt.Logger.INTERNAL_ERROR, trt.Logger.ERROR):
                    G_LOGGER.error(msg)

        self.logger = Logger()


_LOGGER: _RecordingLogger | None = None


def _install_logger(trt: Any) -> _RecordingLogger:
    global _LOGGER
    if _LOGGER is None:
        import polygraphy.backend.trt.util as trt_util

        _LOGGER = _RecordingLogger(trt)
        trt_util.TRT_LOGGER = _LOGGER.logger
    _LOGGER.logger.lines.clear()
    return _LOGGER


_MEMORY_PATTERNS = {
    "weights_bytes": re.compile(r"Total Weights Memory:\s*(\d+)\s*bytes"),
    "activation_bytes": re.compile(r"Total Activation Memory:\s*(\d+)\s*bytes"),
    "host_persistent_bytes": re.compile(r"Total Host Persistent Memory:\s*(\d+)\s*bytes"),
    "device_persistent_bytes": re.compile(r"Total Device Persistent Memory:\s*(\d+)\s*bytes"),
}


def memory_from_log(lines: list[str]) -> dict[str, int | None]:
    """The builder's memory totals, as it reports them in its log (the last report wins)."""
    found: dict[str, int | None] = dict.fromkeys(_MEMORY_PATTERNS)
    for line in lines:
        for key, pattern in _MEMORY_PATTERNS.items():
            if m := pattern.search(line):
                found[key] = int(m.group(1))
    return found


# Each concern contributes one step to the builder config, the way Polygraphy composes CreateConfig with
# PostprocessConfig: a step returns CreateConfig arguments and/or an edit of the finished config (a flag
# CreateConfig has no argument for). Adding a concern is adding a step to CONFIG_STEPS.
Edit = Callable[[Any, Any, Any], None]  # (builder, network, config) -> None
ConfigStep = Callable[[Backend, BuildOptions], tuple[dict[str, Any], Edit | None]]


def _tactics(backend: Backend, opts: BuildOptions) -> tuple[dict[str, Any], Edit | None]:
    return {"builder_optimization_level": opts.builder_optimization_level,
            "profiling_verbosity": backend.module.ProfilingVerbosity.DETAILED}, None


def _memory(backend: Backend, opts: BuildOptions) -> tuple[dict[str, Any], Edit | None]:
    """The workspace pool and, on small boards, the target's cap on tactic scratch memory."""
    trt = backend.module
    pools = {trt.MemoryPoolType.WORKSPACE: opts.workspace_bytes}
    if opts.tactic_dram_bytes is not None:
        pools[trt.MemoryPoolType.TACTIC_DRAM] = opts.tactic_dram_bytes
    return {"memory_pool_limits": pools}, None


def _sparsity(backend: Backend, opts: BuildOptions) -> tuple[dict[str, Any], Edit | None]:
    return ({"sparse_weights": True} if opts.sparse_weights else {}), None


def _dla(backend: Backend, opts: BuildOptions) -> tuple[dict[str, Any], Edit | None]:
    if opts.dla_core is None:
        return {}, None
    from .dla_build import configure_dla

    return {}, configure_dla(backend, opts.dla_core, opts.dla_fallback, opts.dla_precision,
                             opts.calibration_cache, opts.target)


def _timing_cache(backend: Backend, opts: BuildOptions) -> tuple[dict[str, Any], Edit | None]:
    # TensorRT-RTX has no timing cache; a DLA build starts from none (its tactics are the DLA's own).
    if backend.is_rtx or opts.dla_core is not None or opts.timing_cache is None or not opts.timing_cache.exists():
        return {}, None
    return {"load_timing_cache": str(opts.timing_cache)}, None


def _strip_weights(backend: Backend, opts: BuildOptions) -> tuple[dict[str, Any], Edit | None]:
    if not opts.strip_weights:
        return {}, None
    from .refit import strip_flags

    flags = strip_flags(backend)

    def strip(builder: Any, network: Any, config: Any) -> None:
        for flag in flags:
            config.set_flag(flag)

    return {}, strip


CONFIG_STEPS: tuple[ConfigStep, ...] = (_tactics, _memory, _sparsity, _dla, _timing_cache, _strip_weights)


def _create_config(backend: Backend, opts: BuildOptions, profiles: list[Any]) -> Any:
    from polygraphy.backend.trt import CreateConfig, PostprocessConfig

    kwargs: dict[str, Any] = {"profiles": profiles}
    edits: list[Edit] = []
    for step in CONFIG_STEPS:
        args, edit = step(backend, opts)
        kwargs.update(args)
        if edit is not None:
            edits.append(edit)
    if backend.is_rtx and opts.dla_core is None:
        from polygraphy.backend.tensorrt_rtx import CreateConfigRTX

        base = CreateConfigRTX(**kwargs)
    else:
        base = CreateConfig(**kwargs)
    if not edits:
        return base

    def apply(builder: Any, network: Any, config: Any) -> None:
        for edit in edits:
            edit(builder, network, config)

    return PostprocessConfig(base, apply)


def _profiles(opts: BuildOptions, backend: Backend) -> tuple[list[Any], list[dict[str, Any]]]:
    """Polygraphy profiles for `opts.profiles`, and the dimensions widened for the builder (recorded in the
    manifest). Profiles after the first carry `extra_memory_target` (IOptimizationProfile since TensorRT 7,
    in 10.3, 11.4 and TensorRT-RTX; Polygraphy has no option for it): at 0 the builder aims to add no weight
    memory for them. TensorRT-RTX ignores it; there, a later profile's dynamic dimension that is 1 in every
    profile (an LLM's batch at `max_batch: 1`) goes to 1..2 instead (`_shared_weight_dims`)."""
    from polygraphy.backend.trt import Profile

    widen = set()
    if opts.extra_profile_memory == 0 and not backend.honours_extra_memory_target:
        widen = _shared_weight_dims(opts.profiles)
    widened: list[dict[str, Any]] = []

    class MemoryTargetProfile(Profile):
        extra_memory_target: float | None = None
        index = 0

        def to_trt(self, builder: Any, network: Any) -> Any:
            if self.index and widen:
                for k in range(network.num_inputs):
                    tensor = network.get_input(k)
                    for d, size in enumerate(tensor.shape):
                        if size == -1 and (tensor.name, d) in widen and tensor.name in self:
                            shapes = self[tensor.name]
                            self.add(tensor.name, min=shapes.min, opt=shapes.opt,
                                     max=[2 if e == d else m for e, m in enumerate(shapes.max)])
                            entry = {"profile": self.index, "input": tensor.name, "dim": d, "max": 2}
                            if entry not in widened:
                                widened.append(entry)
            profile = super().to_trt(builder, network)
            if self.extra_memory_target is not None:
                profile.extra_memory_target = self.extra_memory_target
            return profile

    out = []
    for i, shapes in enumerate(opts.profiles):
        profile = MemoryTargetProfile()
        profile.index = i
        if i:
            profile.extra_memory_target = opts.extra_profile_memory
        for name, (mn, opt, mx) in shapes.items():
            profile.add(name, min=mn, opt=opt, max=mx)
        out.append(profile)
    return out, widened  # filled as Polygraphy makes the TensorRT profiles


def weight_copies(backend: Backend, profiles: int, extra_profile_memory: float | None) -> int:
    """How many copies of the GEMM weights a build of `profiles` profiles holds, for the host plan: one
    where TensorRT-RTX gets the widened profiles (measured), else one per profile (TensorRT's extra
    memory target is a hint; not measured here)."""
    if profiles > 1 and extra_profile_memory == 0 and not backend.honours_extra_memory_target:
        return 1
    return max(1, profiles)


def _shared_weight_dims(profiles: list[Shapes]) -> set[tuple[str, int]]:
    """(input, dim) that is exactly 1 in every profile, where there is more than one. A later profile whose
    GEMMs all have static one-row inputs (an LLM's decode at batch 1) gets TensorRT-RTX to store each GEMM
    weight again, transposed; with that batch dimension at 1..2 the decode graph keeps the prefill graph's
    layout and one copy, its fused attention kernel kept, the prefill graph unchanged (Llama-3.2-1B FP16:
    engine 4.96 -> 3.01 GB, build 8.0 -> 4.4 GiB anonymous; benchmarks/results/engine_weights_per_profile.md).
    The runtime still feeds what the manifest's limits allow."""
    if len(profiles) < 2:
        return set()
    names = set.intersection(*(set(p) for p in profiles))
    return {(n, d) for n in names for d in range(len(profiles[0][n][0]))
            if all(p[n][0][d] == 1 and p[n][2][d] == 1 for p in profiles)}


def _parser_errors(trt: Any, onnx_path: Path) -> list[str]:
    """The ONNX parser's errors for `onnx_path` ("In node 3 with name: x and operator: FooOp ..."), if any."""
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)  # quiet; TensorRT keeps pointers to these: hold them until we are done
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    parser.parse_from_file(str(onnx_path))
    errors = [" ".join(str(parser.get_error(i)).split()) for i in range(parser.num_errors)]
    del parser, network, builder
    return errors


def _stream_writer(trt: Any, out: Any) -> Any:
    class Writer(trt.IStreamWriter):
        def __init__(self) -> None:
            trt.IStreamWriter.__init__(self)
            self.written = 0

        def write(self, data: Any) -> int:
            out.write(data)
            self.written += len(data)
            return len(data)

    return Writer()


def _serialize(trt: Any, builder: Any, network: Any, config: Any, target: Path) -> int:
    """Build and write the plan into `target`; its size. Streamed where the builder can (TensorRT-RTX,
    TensorRT's later 10.x releases): the whole serialized engine held at the end of the build took an FP16
    Llama-3.2-1B build from 8.0 to 9.9 GiB (benchmarks/results/llm_build_profiles.md). TensorRT 10.3
    (JetPack 6) returns the plan in its own buffer, written as it is."""
    with open(target, "wb") as out:
        if hasattr(builder, "build_serialized_network_to_stream"):
            writer = _stream_writer(trt, out)
            if not builder.build_serialized_network_to_stream(network, config, writer):
                raise RuntimeError("the builder returned no engine")
            return writer.written
        plan = builder.build_serialized_network(network, config)
        if not plan:
            raise RuntimeError("the builder returned no engine")
        out.write(plan)
        return memoryview(plan).nbytes


def _save_timing_cache(config: Any, path: Path) -> None:
    from ..core.artifacts import write_bytes

    cache = config.get_timing_cache()
    if cache is not None:
        write_bytes(path, cache.serialize())


def build_engine(onnx_path: Path, opts: BuildOptions, engine_path: Path) -> BuildOutput:
    """Build `onnx_path` into `engine_path` (written atomically: nothing there unless the build succeeds)."""
    from ..core.artifacts import atomic_path

    backend = select_backend()
    trt = backend.module
    from polygraphy.backend.trt import NetworkFromOnnxPath

    recorder = _install_logger(trt)
    profiles, widened = _profiles(opts, backend)
    # TensorRT-RTX has no timing cache (it compiles kernels on the device at first run).
    cache = None if backend.is_rtx else opts.timing_cache
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
    # DLA INT8 on TensorRT 10.x is implicit quantization: builder flags + a calibration cache, which a
    # strongly typed network refuses. Everything else takes its precision from the ONNX.
    from .dla_build import dla_is_strongly_typed

    strongly_typed = opts.dla_core is None or dla_is_strongly_typed(backend, opts.target)
    t0 = time.perf_counter()
    try:
        # Polygraphy's loaders make the network and the config; the build is ours, to stream the plan.
        builder, network, parser = NetworkFromOnnxPath(str(onnx_path), strongly_typed=strongly_typed)()
        config = _create_config(backend, opts, profiles)(builder, network)
        with atomic_path(engine_path) as tmp:
            size = _serialize(trt, builder, network, config, tmp)
        if cache is not None:
            _save_timing_cache(config, cache)
        del config, parser, network, builder  # the network's weights and the builder's memory, now
    except PipelineError:
        raise
    except Exception as e:
        # Polygraphy logs the parser's own words (op and node) and raises a bare "Could not parse";
        # the one-line error keeps the parser's words, else the builder's last error lines.
        errors = _parser_errors(trt, onnx_path) or [
            ln for ln in recorder.logger.lines if "error" in ln.lower()][-3:]
        raise PipelineError(f"{onnx_path}: engine build failed ({e}; {' | '.join(errors)})") from e
    seconds = time.perf_counter() - t0
    lines = list(recorder.logger.lines)
    return BuildOutput(size, backend, seconds, memory_from_log(lines), cache, lines, strongly_typed, widened)
