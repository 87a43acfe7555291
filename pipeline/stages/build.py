"""build: a strongly typed TensorRT engine from the calibrated ONNX, plus its manifest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from .. import __version__
from ..core import onnx_utils
from ..core.artifacts import Layout, onnx_files, read_json, sha256_file, sha256_onnx
from ..core.cache import StageResult, StageSpec, run_stage
from ..core.integrity import check_onnx_belongs, require
from ..core.log import log
from ..core.manifest import write_manifest
from ..models import get_adapter
from ..recipe.loader import Recipe
from .common import TRT_TOOLS
from .plan import BuildPlan, translate_for_dla


def build(recipe: Recipe, layout: Layout, plan: BuildPlan, force: bool = False,
          timing_cache_dir: Any = None) -> StageResult:
    from .export import export_digest

    precision = plan.precision
    onnx_path = layout.calibrated_onnx(precision)
    require(onnx_path, "calibrate", recipe.name, precision)
    # The manifest is made from it after the build: missing, it would leave an engine without one.
    require(layout.calibrate_report(precision), "calibrate", recipe.name, precision)
    check_onnx_belongs(onnx_path, recipe.name, export_digest(recipe))
    plan = plan.with_dla_preflight(onnx_path, recipe.profiles)  # strict fails here
    spec = StageSpec(
        name=f"build[{precision}]",
        stamp=layout.stamp(f"build-{precision}"),
        inputs={"onnx": onnx_files(onnx_path), "calibrate_report": [layout.calibrate_report(precision)]},
        options={"build": plan.options(), "profiles": recipe.profiles, "preprocess": recipe.section("preprocess"),
                 "postprocess": recipe.section("postprocess")},
        tools=TRT_TOOLS,
        outputs=[layout.engine(precision), layout.manifest(precision)],
    )
    cache_dir = timing_cache_dir or (layout.root / ".cache")
    return run_stage(spec, lambda: _build(recipe, layout, plan, cache_dir), force)


def _profile_shapes(recipe: Recipe) -> list[dict[str, tuple[list[int], list[int], list[int]]]]:
    return [{n: (s["min"], s["opt"], s["max"]) for n, s in p["shapes"].items()} for p in recipe.profiles]


def _build(recipe: Recipe, layout: Layout, plan: BuildPlan, cache_dir: Any) -> dict:
    from ..analyze.host import require_memory
    from ..trt.backend import select_backend
    from ..trt.build import BuildOptions, build_engine, weight_copies
    from ..trt.dla_build import dla_is_strongly_typed, require_dla

    precision = plan.precision
    backend = select_backend()
    log(f"build[{precision}]", f"builder backend: {backend.describe()}")
    onnx_path = layout.calibrated_onnx(precision)
    require_memory(f"build[{precision}]", onnx_utils.model_bytes(onnx_path), str(onnx_path),
                   weight_copies(backend, len(recipe.profiles), plan.extra_profile_memory))
    # One cache per TensorRT build unless the user names one (trtexec --timingCacheFile).
    timing_cache = Path(plan.timing_cache) if plan.timing_cache else \
        cache_dir / f"timing-{backend.name}-{backend.version}.cache"
    calibration_cache = None
    if plan.dla:
        require_dla(backend, plan.target)
        if precision == "int8" and not read_json(layout.calibrate_report(precision)).get("target_dla"):
            log(f"build[{precision}]", "warning: the INT8 ONNX was calibrated without target_dla (GPU Q/DQ "
                "placement); `orin-trt engine --dla N` recalibrates it for the DLA")
        if not dla_is_strongly_typed(backend, plan.target):
            translated = translate_for_dla(plan, onnx_path, layout.precision_dir(precision) / "dla", backend.version)
            if translated:
                onnx_path, calibration_cache = translated
    engine_path = layout.engine(precision)
    out = build_engine(onnx_path, BuildOptions(
        profiles=_profile_shapes(recipe),
        workspace_bytes=plan.workspace_bytes,
        builder_optimization_level=plan.builder_optimization_level,
        timing_cache=timing_cache,
        tactic_dram_bytes=plan.tactic_dram_bytes,
        sparse_weights=plan.sparse_weights,
        dla_core=plan.dla.core if plan.dla else None,
        dla_fallback=plan.dla is None or plan.dla.policy == "fallback",
        dla_precision=precision,
        calibration_cache=calibration_cache,
        strip_weights=plan.strip_weights,
        target=plan.target,
        extra_profile_memory=plan.extra_profile_memory,
    ), engine_path)
    if out.widened:
        dims = sorted({f"{w['input']}[{w['dim']}]" for w in out.widened})
        shown = ", ".join(dims[:3]) + (f" and {len(dims) - 3} more" if len(dims) > 3 else "")
        log(f"build[{precision}]", f"{backend.describe()} ignores the extra memory target: profiles after the "
            f"first take 1..2 at {shown} (1 in every profile; manifest builder.widened), so that the GEMM "
            "weights are stored once")
    manifest = _manifest(recipe, layout, precision, plan.options(), out)
    write_manifest(layout.manifest(precision), manifest)
    log(f"build[{precision}]", f"{engine_path} ({out.plan_bytes / 1e6:.1f} MB) in {out.seconds:.1f} s with "
        f"{backend.describe()}")
    return {"backend": backend.name, "backend_version": backend.version, "seconds": out.seconds,
            "engine_bytes": out.plan_bytes, "memory": out.memory}


def _manifest(recipe: Recipe, layout: Layout, precision: str, opts: dict[str, Any], out: Any) -> dict[str, Any]:
    onnx_path = layout.calibrated_onnx(precision)
    header = onnx_utils.load(onnx_path, with_weights=False)
    meta = onnx_utils.metadata(header)
    cal = read_json(layout.calibrate_report(precision))
    adapter = get_adapter(recipe.family)
    engine_path = layout.engine(precision)
    return {
        "model": recipe.name,
        "family": recipe.family,
        "precision": precision,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pipeline_version": __version__,
        "engine": {"file": engine_path.name, "bytes": out.plan_bytes, "sha256": sha256_file(engine_path)},
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
            # Profile dimensions the builder was given as 1..2 so that it stores the weights once
            # (trt/build.py `_profiles`); the manifest's profiles and limits are what the runtime feeds.
            "widened": out.widened,
        },
        "target": opts["target"],
        # TensorRT-RTX builds for its own default GPU set; a TensorRT build is for the build machine's GPU,
        # and on a Jetson that is SM 8.7 under its L4T release (the drift guard compares these).
        "system": _built_for(out.backend, opts),
        "memory": {"engine_bytes": out.plan_bytes, "weights_bytes": out.memory.get("weights_bytes"),
                   "activation_bytes": out.memory.get("activation_bytes")},
        **adapter.deploy_info(recipe, meta),
    }


def _built_for(backend: Any, opts: dict[str, Any]) -> dict[str, Any]:
    from ..platform.drift import running_system

    dla_core = (opts.get("dla") or {}).get("core")
    if backend.is_rtx:
        return {"trt_version": backend.version, "compute_capability": None, "l4t": None, "dla_core": dla_core}
    return {**running_system(dla_core=dla_core), "trt_version": backend.version}
