"""export: PyTorch -> ONNX, checked by onnx.checker and by ONNX Runtime against PyTorch."""

from __future__ import annotations

import time
from typing import Any

from ..core import onnx_utils
from ..core.artifacts import Layout, sha256_json, write_json
from ..core.cache import StageResult, StageSpec, run_stage
from ..core.integrity import DIGEST_KEY, MODEL_KEY
from ..core.log import log
from ..errors import PipelineError
from ..models import get_adapter
from ..processing.comparison import compare_batches
from ..recipe.loader import Recipe
from .common import ONNX_TOOLS

MIN_OPSET = 17


def export_options(recipe: Recipe, adapter: Any | None = None) -> dict[str, Any]:
    """What shapes the exported ONNX: the stage's cache key, and the digest the ONNX records."""
    source = (adapter or get_adapter(recipe.family)).source(recipe)
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
        inputs={"source": adapter.source(recipe).files},
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
        result = adapter.export(recipe, scratch, feeds)
        export_s = time.perf_counter() - t0
        model = onnx_utils.load(scratch)
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
        onnx_utils.save(model, scratch, external_data=True if forced else None)
        onnx_utils.check(scratch)
        names = [o["name"] for o in onnx_utils.io_spec(model)["outputs"]]
        with onnxrt_runner(scratch) as runner:
            ort_outputs = run(runner, feeds, names)
        parity = compare_batches(names, result.torch_outputs, ort_outputs)
        _gate_parity(recipe, parity, scratch)
        onnx_utils.save(model, layout.exported_onnx, external_data=onnx_utils.uses_external_data(scratch))
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
        "parity": {"reference": "pytorch", "candidate": "onnxruntime", "feeds": len(feeds), "outputs": parity},
    }
    write_json(layout.export_report, report)
    worst = min(p["cosine"] for p in parity.values())
    log("export", f"{layout.exported_onnx} ({report['nodes']} nodes, opset {report['opset']}); "
        f"ONNX Runtime vs PyTorch: min cosine {worst:.6f}")
    return {"random_weights": result.random_weights, "source": result.source, "parity": parity}


def _gate_parity(recipe: Recipe, parity: dict[str, dict[str, float]], path: Any) -> None:
    cfg = recipe.section("export").get("parity", {})
    atol, min_cos = float(cfg.get("atol", 1e-3)), float(cfg.get("min_cosine", 0.9999))
    for name, p in parity.items():
        if p["max_abs"] > atol and p["cosine"] < min_cos:
            raise PipelineError(
                f"{path}: output {name!r} differs from PyTorch on ONNX Runtime (max abs {p['max_abs']:.3g} > "
                f"{atol}, cosine {p['cosine']:.6f} < {min_cos}); the export is wrong"
            )
