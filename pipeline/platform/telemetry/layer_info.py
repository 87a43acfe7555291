"""Pure summaries of what TensorRT reports: latency percentiles, the engine inspector's layer JSON,
and the per-layer profile. Kept apart from `trt_profiling` so they are tested without a GPU."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import PipelineError


def latency_stats(ms: Sequence[float], batch: int) -> dict[str, float]:
    """Percentiles of per-iteration latencies (the profile stage's definition) and items per second."""
    from ...processing.comparison import percentiles_ms

    if not ms:
        raise PipelineError("no timed iterations to summarize")
    stats = percentiles_ms([t / 1e3 for t in ms])
    mean = stats["mean_ms"]
    return {
        **stats,
        "throughput_per_s": batch * 1000.0 / mean if mean > 0 else 0.0,
        "batch": batch,
        "iterations": len(ms),
    }


def _precision(format_datatype: str) -> str:
    """`Thirty-two wide channel vectorized row major Int8 format.` -> `int8` (TensorRT 8.5-10.x wording)."""
    text = format_datatype.lower()
    for needle, name in (("int8", "int8"), ("fp8", "fp8"), ("int4", "int4"), ("bf16", "bf16"),
                         ("half", "fp16"), ("fp16", "fp16"), ("float", "fp32"), ("fp32", "fp32"),
                         ("int32", "int32"), ("int64", "int64"), ("bool", "bool")):
        if needle in text:
            return name
    return "unknown"


def _is_reformat(layer: Mapping[str, Any]) -> bool:
    return layer.get("LayerType") == "Reformat" or "Reformatting CopyNode" in str(layer.get("Name", ""))


def _device(layer: Mapping[str, Any]) -> str:
    # DLA subgraphs are ForeignNodes whose type or name carries "DLA"; everything else runs on the GPU.
    text = f"{layer.get('LayerType', '')} {layer.get('Name', '')}".lower()
    return "DLA" if "dla" in text else "GPU"


def summarize_inspector(info: Mapping[str, Any] | str) -> dict[str, Any]:
    """The engine inspector's JSON (`get_engine_information(JSON)`): precision and device per layer,
    reformat layers (each one is a copy TensorRT inserted between mismatched formats: a cost the
    ONNX never showed), and counts. At `ProfilingVerbosity.LAYER_NAMES_ONLY` layers are bare names."""
    if isinstance(info, str):
        import json

        info = json.loads(info)
    layers_raw = info.get("Layers")
    if not isinstance(layers_raw, list):
        raise PipelineError("engine inspector JSON has no 'Layers' list (was the engine built with DETAILED verbosity?)")
    layers = []
    for layer in layers_raw:
        if isinstance(layer, str):
            layers.append({"name": layer, "type": None, "precision": "unknown", "device": "GPU", "reformat": False})
            continue
        outputs = layer.get("Outputs") or layer.get("Inputs") or []
        precision = _precision(str(outputs[0].get("Format/Datatype", ""))) if outputs else "unknown"
        layers.append({
            "name": layer.get("Name", ""),
            "type": layer.get("LayerType"),
            "precision": precision,
            "device": _device(layer),
            "reformat": _is_reformat(layer),
            "tactic": layer.get("TacticName"),
        })
    return {
        "layers": layers,
        "count": len(layers),
        "precisions": dict(Counter(entry["precision"] for entry in layers)),
        "devices": dict(Counter(entry["device"] for entry in layers)),
        "reformat_layers": [entry["name"] for entry in layers if entry["reformat"]],
    }


def top_layers(per_layer_ms: Mapping[str, Sequence[float]], n: int = 10) -> list[dict[str, Any]]:
    """The n layers with the most median time per inference, with their share of the total."""
    medians = {}
    for name, times in per_layer_ms.items():
        if times:
            ordered = sorted(times)
            medians[name] = ordered[len(ordered) // 2]
    total = sum(medians.values())
    ranked = sorted(medians.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [
        {"layer": name, "median_ms": ms, "share": ms / total if total > 0 else 0.0} for name, ms in ranked
    ]
