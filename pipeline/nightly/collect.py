"""Turn a profile's report.json (schema orin-trt/report@1), the device profile and the manifest into
the flat metrics and the identity the history stores."""

from __future__ import annotations

import math
from typing import Any

from ..core.artifacts import sha256_json
from ..runners.tensorrt import NAME as TENSORRT

_LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_per_s")
_MEMORY_KEYS = ("engine_bytes", "weights_bytes", "activation_bytes", "onnx_bytes", "peak_rss_bytes")
_ACCURACY_KEYS = ("cosine", "snr_db", "max_abs", "max_rel")
# An LLM's run loop per runner (llm/evaluate.py): decode speed, first token, the share of the target's
# roofline floor reached, and the bytes a decode step moves between host and device.
_LLM_KEYS = ("decode_tokens_per_s", "ttft_ms", "fraction_of_floor", "bytes_h2d_per_token", "bytes_d2h_per_token",
             "perplexity")


def _put(out: dict[str, float], name: str, value: Any) -> None:
    # Infinite SNR (a bit-exact output) or a missing value cannot be a baseline; they stay in details.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if math.isfinite(value):
        out[name] = float(value)


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """`latency.<runner>.p50_ms`, `memory.engine_bytes`, `accuracy.<runner>.<output>.cosine`, ..."""
    out: dict[str, float] = {}
    for runner, lat in (report.get("latency") or {}).items():
        for key in _LATENCY_KEYS:
            _put(out, f"latency.{runner}.{key}", lat.get(key))
    for key in _MEMORY_KEYS:
        _put(out, f"memory.{key}", (report.get("memory") or {}).get(key))
    accuracy = report.get("accuracy") or {}
    by_runner = accuracy.get("by_runner") or {accuracy.get("candidate", "candidate"): accuracy}
    for runner, acc in by_runner.items():
        for output, values in (acc.get("outputs") or {}).items():
            for key in _ACCURACY_KEYS:
                _put(out, f"accuracy.{runner}.{output}.{key}", values.get(key))
        for key, value in (acc.get("task") or {}).items():
            _put(out, f"accuracy.{runner}.task.{key}", value)
    for runner, row in ((report.get("family_metrics") or {}).get("by_runner") or {}).items():
        for key in _LLM_KEYS:
            _put(out, f"llm.{runner}.{key}", row.get(key))
    return out


def device_metrics(profile: dict[str, Any], batch: int) -> dict[str, float]:
    """From `platform.telemetry.trt_profiling.profile_engine`: TensorRT latency with and without CUDA graphs,
    the transfer split, and tegrastats power/energy/RAM for this batch size."""
    out: dict[str, float] = {}
    for point in profile.get("batch_sweep", []):
        if point.get("batch") != batch:
            continue
        for key in _LATENCY_KEYS:
            _put(out, f"trt.latency.{key}", point["latency"].get(key))
            _put(out, f"trt.cuda_graph.{key}", point["cuda_graph"].get(key))
        for part, ms in (point.get("split_ms") or {}).items():
            _put(out, f"trt.split.{part}_ms", ms)
        power = point.get("power") or {}
        _put(out, "power.avg_w", power.get("avg_power_w"))
        _put(out, "power.energy_per_inference_j", power.get("energy_per_inference_j"))
        _put(out, "power.ram_used_mb", power.get("ram_used_mb_max"))
        _put(out, "power.gpu_load_pct", power.get("gpu_load_pct_avg"))
        _put(out, "power.throttled", 1.0 if power.get("throttled") else 0.0 if power else None)
        for rail, watts in (power.get("rails_avg_w") or {}).items():
            _put(out, f"power.rail.{rail}_w", watts)
    layer_info = profile.get("layer_info") or {}
    _put(out, "trt.reformat_layers", len(layer_info.get("reformat_layers", [])) if layer_info else None)
    return out


def identity(recipe_raw: dict[str, Any], manifest: dict[str, Any], l4t: str | None,
             power_mode: str | None) -> dict[str, str | None]:
    """What a result was measured on; a change here is the first suspect of a regression."""
    system = manifest.get("system") or {}
    return {
        "onnx_sha256": (manifest.get("onnx") or {}).get("sha256"),
        "recipe_sha256": sha256_json(recipe_raw),
        "engine_sha256": (manifest.get("engine") or {}).get("sha256"),
        "trt_version": (manifest.get("builder") or {}).get("version") or system.get("trt_version"),
        "l4t": l4t or system.get("l4t"),
        "power_mode": power_mode,
    }


def primary_latency(metrics: dict[str, float]) -> str | None:
    """The latency the trend plots follow: TensorRT's where it ran, else the candidate ONNX runner."""
    names = sorted(k for k in metrics if k.endswith(".p50_ms") and k.startswith("latency."))
    for preferred in ("trt.latency.p50_ms", f"latency.{TENSORRT}.p50_ms"):
        if preferred in metrics:
            return preferred
    candidates = [n for n in names if "fp32" not in n] or names
    return candidates[0] if candidates else None


def runner_of(latency_metric: str) -> str:
    """`latency.onnxrt-int8.p50_ms` -> `onnxrt-int8`; the depth profile's `trt.latency.p50_ms` -> `tensorrt`."""
    return TENSORRT if latency_metric.startswith("trt.") else latency_metric.split(".")[1]


def min_cosine(metrics: dict[str, float]) -> float | None:
    """The worst output's cosine of the primary candidate runner: the accuracy the plots follow."""
    cos = {k: v for k, v in metrics.items() if k.startswith("accuracy.") and k.endswith(".cosine")}
    preferred = [v for k, v in cos.items() if k.startswith(f"accuracy.{TENSORRT}.")]
    values = preferred or list(cos.values())
    return min(values) if values else None
