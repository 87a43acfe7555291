"""build: a strongly typed TensorRT engine from the calibrated ONNX, plus its manifest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from .. import __version__, onnx_utils
from ..artifacts import Layout, onnx_files, read_json, sha256_file, sha256_onnx, write_bytes, write_json
from ..bundle import host_can_build_for
from ..cache import StageResult, StageSpec, run_stage
from ..errors import PipelineError
from ..integrity import check_onnx_belongs, require
from ..log import log
from ..models import get_adapter
from ..recipe import Recipe
from .common import TRT_TOOLS

MANIFEST_SCHEMA = "orin-trt/manifest@1"


OPT_LEVELS = range(0, 6)  # TensorRT's builder optimization levels (trtexec --builderOptimizationLevel)
OVERRIDES = ("workspace_mib", "builder_optimization_level", "timing_cache", "strip_weights")


def check_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """What the CLI set (None = not given), checked; only the given ones are kept."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None and v is not False}
    unknown = set(given) - set(OVERRIDES)
    if unknown:
        raise PipelineError(f"unknown build override(s) {', '.join(sorted(unknown))}")
    if "workspace_mib" in given and int(given["workspace_mib"]) <= 0:
        raise PipelineError(f"--workspace {given['workspace_mib']}: give the builder workspace in MiB (> 0)")
    if "builder_optimization_level" in given and int(given["builder_optimization_level"]) not in OPT_LEVELS:
        raise PipelineError(f"--opt-level {given['builder_optimization_level']}: choose 0..5 "
                            "(TensorRT's builder optimization levels; 3 is the default)")
    if "timing_cache" in given:
        given["timing_cache"] = str(given["timing_cache"])
    return given


def build_options(recipe: Recipe, target: str | None, precision: str | None = None, dla_core: int | None = None,
                  dla_policy: str = "fallback", sparse: bool = False,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Builder options: the CLI's overrides win over the recipe's `build:` section, which wins over the
    defaults; a target caps workspace and tactic memory so small boards are not OOM-killed."""
    from ..targets import resolve_target

    given = check_overrides(overrides)
    cfg = {**recipe.section("build"), **given}
    opts: dict[str, Any] = {
        "workspace_bytes": int(cfg.get("workspace_mib", 1024)) << 20,
        "builder_optimization_level": int(cfg.get("builder_optimization_level", 3)),
        "target": target,
    }
    if given:
        opts["overrides"] = given  # in the stage key and the bundle, so the Orin builds what was asked
    board = resolve_target(target, precision, dla_core)  # refuses what the board lacks, before any work
    if board is not None:
        opts["target"] = board.key
        caps = board.builder_caps()
        if "workspace_mib" in given and opts["workspace_bytes"] > caps["workspace_bytes"]:
            log("build", f"--workspace {given['workspace_mib']} MiB is over {board.key}'s cap of "
                f"{caps['workspace_bytes'] >> 20} MiB (docs/targets.md, builder caps): using it as asked")
        else:
            opts["workspace_bytes"] = min(opts["workspace_bytes"], caps["workspace_bytes"])
        opts["tactic_dram_bytes"] = caps["tactic_dram_bytes"]
    if cfg.get("timing_cache"):
        opts["timing_cache"] = str(cfg["timing_cache"])
    if cfg.get("strip_weights"):
        opts["strip_weights"] = True
    if dla_core is not None:
        from ..dla import check_policy

        opts["dla"] = {"core": dla_core, "policy": check_policy(dla_policy)}
    if sparse:
        opts["sparse_weights"] = True
    _refuse_what_this_builder_cannot(opts)
    return opts


def _refuse_what_this_builder_cannot(opts: dict[str, Any]) -> None:
    """Where this machine will build, its TensorRT must have a DLA for the board (JetPack 7.2's 10.16 has
    none on Orin) and be able to strip weights: refuse now, before export and calibration, naming why. A
    host writing a bundle for another Orin cannot know that Orin's TensorRT; the Orin checks when it builds."""
    if not (opts.get("dla") or opts.get("strip_weights")) or not host_can_build_for(opts["target"]):
        return
    from ..trt.backend import select_backend

    backend = select_backend()
    if opts.get("dla"):
        from ..trt.dla import require_dla

        require_dla(backend, opts["target"])
    if opts.get("strip_weights"):
        from ..trt.refit import strip_flags

        strip_flags(backend)


def build(recipe: Recipe, layout: Layout, precision: str, force: bool = False, target: str | None = None,
          timing_cache_dir: Any = None, dla_core: int | None = None, dla_policy: str = "fallback",
          sparse: bool = False, overrides: dict[str, Any] | None = None) -> StageResult:
    from .export import export_digest

    opts = build_options(recipe, target, precision, dla_core, dla_policy, sparse, overrides)
    onnx_path = layout.calibrated_onnx(precision)
    require(onnx_path, "calibrate", recipe.name, precision)
    check_onnx_belongs(onnx_path, recipe.name, export_digest(recipe))
    if "dla" in opts:
        from ..dla import run_preflight

        opts["dla"]["preflight"] = run_preflight(onnx_path, recipe.profiles, dla_policy,
                                                 dla_core=dla_core)  # strict fails here
    spec = StageSpec(
        name=f"build[{precision}]",
        stamp=layout.stamp(f"build-{precision}"),
        inputs={"onnx": onnx_files(onnx_path), "calibrate_report": [layout.calibrate_report(precision)]},
        options={"build": opts, "profiles": recipe.profiles, "preprocess": recipe.section("preprocess"),
                 "postprocess": recipe.section("postprocess")},
        tools=TRT_TOOLS,
        outputs=[layout.engine(precision), layout.manifest(precision)],
    )
    cache_dir = timing_cache_dir or (layout.root / ".cache")
    return run_stage(spec, lambda: _build(recipe, layout, precision, opts, cache_dir), force)


def _profile_shapes(recipe: Recipe) -> list[dict[str, tuple[list[int], list[int], list[int]]]]:
    return [{n: (s["min"], s["opt"], s["max"]) for n, s in p["shapes"].items()} for p in recipe.profiles]


def _build(recipe: Recipe, layout: Layout, precision: str, opts: dict[str, Any], cache_dir: Any) -> dict:
    from ..trt.backend import select_backend
    from ..trt.build import BuildOptions, build_engine
    from ..trt.dla import dla_is_strongly_typed, require_dla

    backend = select_backend()
    log(f"build[{precision}]", f"builder backend: {backend.describe()}")
    onnx_path = layout.calibrated_onnx(precision)
    # One cache per TensorRT build unless the user names one (trtexec --timingCacheFile).
    timing_cache = Path(opts["timing_cache"]) if opts.get("timing_cache") else \
        cache_dir / f"timing-{backend.name}-{backend.version}.cache"
    dla = opts.get("dla") or {}
    calibration_cache = None
    if dla:
        require_dla(backend, opts["target"])
        if precision == "int8" and not read_json(layout.calibrate_report(precision)).get("target_dla"):
            log(f"build[{precision}]", "warning: the INT8 ONNX was calibrated without target_dla (GPU Q/DQ "
                "placement); `orin-trt engine --dla N` recalibrates it for the DLA")
    if dla and precision == "int8" and not dla_is_strongly_typed(backend, opts["target"]):
        # TensorRT 10.x DLA INT8 wants implicit quantization: a QDQ-free ONNX + a calibration cache.
        from ..dla.translate import translate_file

        dla_dir = layout.precision_dir(precision) / "dla"
        calibration_cache = dla_dir / "calibration.cache"
        translate_file(onnx_path, dla_dir / "model.onnx", calibration_cache, backend.version)
        onnx_path = dla_dir / "model.onnx"
    out = build_engine(onnx_path, BuildOptions(
        profiles=_profile_shapes(recipe),
        workspace_bytes=opts["workspace_bytes"],
        builder_optimization_level=opts["builder_optimization_level"],
        timing_cache=timing_cache,
        tactic_dram_bytes=opts.get("tactic_dram_bytes"),
        sparse_weights=bool(opts.get("sparse_weights")),
        dla_core=dla.get("core"),
        dla_fallback=dla.get("policy", "fallback") == "fallback",
        dla_precision=precision,
        calibration_cache=calibration_cache,
        strip_weights=bool(opts.get("strip_weights")),
        target=opts["target"],
    ))
    engine_path = layout.engine(precision)
    write_bytes(engine_path, out.plan)
    manifest = _manifest(recipe, layout, precision, opts, out)
    write_json(layout.manifest(precision), manifest)
    log(f"build[{precision}]", f"{engine_path} ({len(out.plan) / 1e6:.1f} MB) in {out.seconds:.1f} s with "
        f"{backend.describe()}")
    return {"backend": backend.name, "backend_version": backend.version, "seconds": out.seconds,
            "engine_bytes": len(out.plan), "memory": out.memory}


def _manifest(recipe: Recipe, layout: Layout, precision: str, opts: dict[str, Any], out: Any) -> dict[str, Any]:
    onnx_path = layout.calibrated_onnx(precision)
    header = onnx_utils.load(onnx_path, with_weights=False)
    meta = onnx_utils.metadata(header)
    cal = read_json(layout.calibrate_report(precision))
    adapter = get_adapter(recipe.family)
    engine_path = layout.engine(precision)
    return {
        "schema": MANIFEST_SCHEMA,
        "model": recipe.name,
        "family": recipe.family,
        "precision": precision,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pipeline_version": __version__,
        "engine": {"file": engine_path.name, "bytes": len(out.plan), "sha256": sha256_file(engine_path)},
        "onnx": {"file": onnx_path.name, "sha256": sha256_onnx(onnx_path),
                 "external_data": onnx_utils.uses_external_data(onnx_path)},
        "calibration": None if not cal.get("calibration") else {
            "sha256": cal["calibration"]["sha256"], "samples": cal["calibration"]["samples"],
            "method": cal.get("method"),
        },
        "weights": {"source": meta.get("orin_trt.source"), "random": meta.get("orin_trt.random_weights") == "true"},
        "precision_detail": {
            "precision": precision,
            "method": cal.get("method"),
            "high_precision_dtype": cal.get("high_precision_dtype"),
            "kept_out": cal.get("kept_out"),
            # What `orin-trt tune` chose: settings, the blocks kept out with their measured sensitivity.
            "tune": cal.get("tune"),
        },
        "io": onnx_utils.io_spec(header),
        "profiles": recipe.profiles,
        "builder": {
            "backend": out.backend.name,
            "version": out.backend.version,
            "strongly_typed": out.strongly_typed,
            "workspace_bytes": opts["workspace_bytes"],
            "builder_optimization_level": opts["builder_optimization_level"],
            "timing_cache": str(out.timing_cache) if out.timing_cache else None,
            "seconds": round(out.seconds, 3),
            "tactic_dram_bytes": opts.get("tactic_dram_bytes"),
            "sparse_weights": bool(opts.get("sparse_weights")),
            # A stripped plan runs only after refitting it from the ONNX beside it (pipeline/trt/refit.py).
            "strip_weights": bool(opts.get("strip_weights")),
            "overrides": opts.get("overrides") or {},
            "dla": opts.get("dla"),
        },
        "target": opts["target"],
        # TensorRT-RTX builds for its own default GPU set; a TensorRT build is for the build machine's GPU,
        # and on a Jetson that is SM 8.7 under its L4T release (the drift guard compares these).
        "system": _built_for(out.backend, opts),
        "memory": {"engine_bytes": len(out.plan), "weights_bytes": out.memory.get("weights_bytes"),
                   "activation_bytes": out.memory.get("activation_bytes")},
        **adapter.deploy_info(recipe, meta),
    }


def _built_for(backend: Any, opts: dict[str, Any]) -> dict[str, Any]:
    from ..drift import running_system

    dla_core = (opts.get("dla") or {}).get("core")
    if backend.is_rtx:
        return {"trt_version": backend.version, "compute_capability": None, "l4t": None, "dla_core": dla_core}
    return {**running_system(dla_core=dla_core), "trt_version": backend.version}
