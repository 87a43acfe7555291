"""export: PyTorch -> ONNX, checked by onnx.checker and by ONNX Runtime against PyTorch."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from ..core import onnx_utils
from ..core.artifacts import Layout, onnx_files, sha256_json, write_json
from ..core.cache import StageResult, StageSpec, run_stage
from ..core.integrity import DIGEST_KEY, MODEL_KEY
from ..core.log import log
from ..errors import PipelineError
from ..models import get_adapter
from ..models.base import ExportResult, SourceInfo
from ..processing.comparison import compare_batches
from ..recipe.loader import Recipe
from .common import ONNX_TOOLS

MIN_OPSET = 17


def user_onnx(recipe: Recipe) -> Path | None:
    """The user's own ONNX (`source.onnx`), which replaces the family's PyTorch export."""
    value = recipe.section("source").get("onnx")
    if not value:
        return None
    path = recipe.resolve_path(value)
    if not path.is_file():
        raise PipelineError(f"recipe {recipe.path}: source.onnx: {path} not found")
    return path


def _source(recipe: Recipe, adapter: Any) -> SourceInfo:
    onnx_path = user_onnx(recipe)
    if onnx_path is None:
        return adapter.source(recipe)
    return SourceInfo({"onnx": str(onnx_path)}, onnx_files(onnx_path))


def export_options(recipe: Recipe, adapter: Any | None = None) -> dict[str, Any]:
    """What shapes the exported ONNX: the stage's cache key, and the digest the ONNX records."""
    source = _source(recipe, adapter or get_adapter(recipe.family))
    return {"source": source.description, **{k: recipe.section(k) for k in ("export", "inputs", "preprocess", "eval")}}


def export_digest(recipe: Recipe) -> str:
    """What the graph itself depends on (the held-out images and preprocessing only shape the parity check)."""
    options = export_options(recipe)
    return sha256_json({k: options[k] for k in ("source", "export", "inputs")})


def export(recipe: Recipe, layout: Layout, force: bool = False) -> StageResult:
    adapter = get_adapter(recipe.family)
    spec = StageSpec(
        name="export",
        stamp=layout.stamp("export"),
        inputs={"source": _source(recipe, adapter).files},
        options=export_options(recipe, adapter),
        tools=[*adapter.tools, *ONNX_TOOLS],
        outputs=[layout.exported_onnx, layout.export_report],
    )
    return run_stage(spec, lambda: _export(recipe, layout, adapter), force)


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _export(recipe: Recipe, layout: Layout, adapter: Any) -> dict[str, Any]:
    from ..runners import run
    from ..runners.onnxrt import onnxrt_runner

    feeds = adapter.eval_feeds(recipe)
    layout.model_dir.mkdir(parents=True, exist_ok=True)
    scratch = layout.model_dir / ".export.tmp.onnx"
    t0 = time.perf_counter()
    try:
        onnx_path = user_onnx(recipe)
        result = adapter.export(recipe, scratch, feeds) if onnx_path is None else _import(recipe, onnx_path, scratch)
        export_s = time.perf_counter() - t0
        # The PyTorch model is garbage once exported, but reference cycles (a wrapped forward, the tracer's
        # graph) keep it until the collector runs: without this, ONNX Runtime's copy of the weights for the
        # parity check joins it (an SD-1.5 UNet: 3.4 GB more at the stage's peak).
        gc.collect()
        model = onnx_utils.load_header(scratch)  # weights stay on disk: the saves below stream them
        if _opset(model) < MIN_OPSET:
            raise PipelineError(f"{scratch}: exported at opset {_opset(model)}; orin-trt needs >= {MIN_OPSET}")
        onnx_utils.set_metadata(model, {
            MODEL_KEY: recipe.name,
            DIGEST_KEY: export_digest(recipe),
            "orin_trt.family": recipe.family,
            "orin_trt.source": result.source,
            "orin_trt.random_weights": str(result.random_weights).lower(),
        })
        # `export.external_data: true` forces the >2 GB layout (weights in `<name>.data`) on any model, so
        # small models exercise the path a real SD UNet takes through every stage.
        forced = bool(recipe.section("export").get("external_data"))
        onnx_utils.check(scratch)
        names = [o["name"] for o in onnx_utils.io_spec(model)["outputs"]]
        with onnxrt_runner(scratch) as runner:
            ort_outputs = run(runner, feeds, names)
        if onnx_path is None:
            parity = compare_batches(names, result.torch_outputs, ort_outputs)
            _gate_parity(recipe, parity, scratch)
        else:  # no PyTorch to compare with: ONNX Runtime running it on the held-out inputs is the check
            parity = {}
        # Metadata and layout go in with the header; the scratch's data file is renamed into place, not
        # copied (for an 8B model a copy was 16 GB more written and on disk at once).
        onnx_utils.save_moving(model, layout.exported_onnx, scratch, external_data=True if forced else None)
        onnx_utils.check(layout.exported_onnx)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".data")):
            if leftover.exists():
                leftover.unlink()
    report = {
        "stage": "export",
        "model": recipe.name,
        "onnx": str(layout.exported_onnx),
        "opset": _opset(model),
        "nodes": len(model.graph.node),
        "bytes": layout.exported_onnx.stat().st_size,
        "source": result.source,
        "random_weights": result.random_weights,
        "notes": result.notes,
        "export_seconds": round(export_s, 3),
        "parity": {"reference": "pytorch" if onnx_path is None else None, "candidate": "onnxruntime",
                   "feeds": len(feeds), "outputs": parity},
    }
    write_json(layout.export_report, report)
    check = (f"ONNX Runtime vs PyTorch: min cosine {min(p['cosine'] for p in parity.values()):.6f}" if parity
             else f"your ONNX ({onnx_path}) runs on ONNX Runtime")
    log("export", f"{layout.exported_onnx} ({report['nodes']} nodes, opset {report['opset']}); {check}")
    return {"random_weights": result.random_weights, "source": result.source, "parity": parity}


def _import(recipe: Recipe, onnx_path: Path, scratch: Path) -> ExportResult:
    """A user's ONNX in place of an export: readable, standard ops, onnx.checker, the recipe's inputs."""
    model = onnx_utils.load(onnx_path)  # a truncated file fails here, named
    onnx_utils.check_known_ops(model, onnx_path)
    onnx_utils.check(onnx_path)
    names = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    missing = [n for n in recipe.section("inputs") if n not in names]
    if missing:
        raise PipelineError(f"{onnx_path}: has no input {missing[0]!r} of the recipe's inputs (it has: "
                            f"{', '.join(sorted(names))})")
    onnx_utils.save(model, scratch, external_data=onnx_utils.uses_external_data(onnx_path) or None)
    return ExportResult(torch_outputs=[], random_weights=False, source=f"onnx:{onnx_path}",
                        notes=[f"your ONNX {onnx_path}: export skipped, no PyTorch parity"])


def _gate_parity(recipe: Recipe, parity: dict[str, dict[str, float]], path: Any) -> None:
    cfg = recipe.section("export").get("parity", {})
    atol, min_cos = float(cfg.get("atol", 1e-3)), float(cfg.get("min_cosine", 0.9999))
    for name, p in parity.items():
        if p["max_abs"] > atol and p["cosine"] < min_cos:
            raise PipelineError(
                f"{path}: output {name!r} differs from PyTorch on ONNX Runtime (max abs {p['max_abs']:.3g} > "
                f"{atol}, cosine {p['cosine']:.6f} < {min_cos}); the export is wrong"
            )
