"""llm_inference's `--profileOutputFile` JSON as our profile report (schema orin-trt/report@1), so the
nightly history and its regression rules read an Edge-LLM engine like any other.

The profile JSON, as Edge-LLM 0.11's examples write it: `prefill` {total_runs, computed_tokens,
average_time_per_run_ms, tokens_per_second, ...}, `generation` {total_runs, generated_tokens,
tokens_per_second, average_time_per_token_ms}, `stages` [{stage_id, gpu_time_stats {median_ms, p95_ms,
p99_ms, ...}}], and `peak_unified_memory_bytes` on an integrated GPU (the Orin) or `peak_gpu_memory_bytes`.

The nightly judges `*_ms` percentiles (never means or throughputs): 0.11's runtime times every decode step
as stage `llm_generation` and every prefill as `llm_prefill`, so their medians and p99 are the `edgellm`
(per token) and `edgellm-prefill` (time to first token) latencies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import PipelineError

REPORT_SCHEMA = "orin-trt/report@1"
RUNNER = "edgellm"
STAGES = {"llm_generation": RUNNER, "llm_prefill": f"{RUNNER}-prefill"}


def _stage_latency(profile: dict[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for stage in profile.get("stages") or []:
        label = STAGES.get(stage.get("stage_id"))
        stats = stage.get("gpu_time_stats") or {}
        if label and isinstance(stats.get("median_ms"), int | float):
            out[label] = {"p50_ms": float(stats["median_ms"]), "p99_ms": float(stats.get("p99_ms", stats["median_ms"]))}
    return out


def _number(section: dict[str, Any], key: str, where: str) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PipelineError(f"{where}: {key} is not a number ({value!r})")
    return float(value)


def _merge(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {k: {**a.get(k, {}), **b.get(k, {})} for k in {**a, **b}}


def report_from_profile(profile: dict[str, Any], manifest: Any, engine: str) -> dict[str, Any]:
    where = f"{engine}: llm_inference profile"
    for key in ("prefill", "generation"):
        if not isinstance(profile.get(key), dict):
            raise PipelineError(f"{where}: no '{key}' section (was it run with --profileOutputFile and a request?)")
    prefill, generation = profile["prefill"], profile["generation"]
    decode_tps = _number(generation, "tokens_per_second", f"{where} generation")
    step_ms = _number(generation, "average_time_per_token_ms", f"{where} generation")
    floor = (manifest.get("analysis") or {}).get("decode_tokens_per_s_max")
    peak = profile.get("peak_unified_memory_bytes", profile.get("peak_gpu_memory_bytes"))
    metrics = {
        "ttft_ms": _number(prefill, "average_time_per_run_ms", f"{where} prefill"),
        "prefill_tokens_per_s": _number(prefill, "tokens_per_second", f"{where} prefill"),
        "decode_tokens_per_s": decode_tps,
        "decode_step_ms": step_ms,
        "generated_tokens": generation.get("generated_tokens"),
        "roofline_floor_tokens_per_s": floor,
        "ratio_to_floor": round(decode_tps / floor, 4) if floor else None,
    }
    return {
        "schema": REPORT_SCHEMA,
        "model": manifest["model"],
        "family": manifest.get("family"),
        "precision": manifest["precision"],
        "backend": "edgellm",
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "engine": engine,
        "builder": manifest["builder"],
        "weights": manifest["weights"],
        # Edge-LLM's runtime reports no tensors to compare; accuracy is its own tools' job.
        "accuracy": {"reference": None, "candidate": RUNNER, "by_runner": {}},
        "latency": _merge({RUNNER: {"mean_ms": step_ms, "throughput_per_s": decode_tps},
                           f"{RUNNER}-prefill": {"mean_ms": metrics["ttft_ms"]}}, _stage_latency(profile)),
        "runners": [{"name": RUNNER, "status": "ran", "reason": None}],
        "memory": {"engine_bytes": manifest["memory"].get("engine_bytes"),
                   "weights_bytes": manifest["memory"].get("weights_bytes"), "peak_rss_bytes": peak},
        "family_metrics": {RUNNER: metrics},
        "edgellm_profile": profile,
    }


def render_markdown(report: dict[str, Any]) -> str:
    m = report["family_metrics"][RUNNER]

    def show(value: Any, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    rows = [("time to first token (ms)", show(m["ttft_ms"], ".2f")),
            ("prefill tokens/s", show(m["prefill_tokens_per_s"], ".1f")),
            ("decode tokens/s", show(m["decode_tokens_per_s"], ".2f")),
            ("decode step (ms)", show(m["decode_step_ms"], ".3f")),
            ("roofline floor tokens/s (orin-trt analyze)", show(m["roofline_floor_tokens_per_s"], ".1f")),
            ("ratio to the floor", show(m["ratio_to_floor"], ".3f")),
            ("engine bytes", show(report["memory"]["engine_bytes"], ",")),
            ("peak memory bytes", show(report["memory"]["peak_rss_bytes"], ","))]
    lines = [f"# {report['model']} {report['precision']} on TensorRT Edge-LLM {report['builder'].get('version')}",
             "", f"Engine: `{report['engine']}` (llm_inference --dumpProfile)", "", "| metric | value |",
             "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    return "\n".join(lines)
