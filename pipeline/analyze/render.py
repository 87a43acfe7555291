"""Human-readable text of an analysis: the terminal summary and the report.md section."""

from __future__ import annotations

from typing import Any

from ..recipe.precisions import NAMES

GIB = 1 << 30
MIB = 1 << 20


def _size(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if abs(n) >= GIB else f"{n / MIB:.1f} MiB"


def _count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def fits_lines(fits: dict[str, Any]) -> list[str]:
    verdict = "fits" if fits["fits"] else "does NOT fit"
    return [
        f"Memory on {fits['target']}: {verdict} — {_size(fits['total_bytes'])} needed of "
        f"{_size(fits['usable_bytes'])} usable (headroom {_size(fits['headroom_bytes'])})",
        f"  weights {_size(fits['weights_bytes'])} + activations {_size(fits['activation_bytes'])} + "
        f"KV cache {_size(fits['kv_cache_bytes'])} + runtime {_size(fits['runtime_overhead_bytes'])}",
    ]


def markdown(analysis: dict[str, Any], plot_name: str | None = None, top: int = 10) -> str:
    """The `## Analysis` section of a report (also what `orin-trt analyze` prints)."""
    t = analysis["totals"]
    lines = ["## Analysis", ""]
    if "decode_roofline" in analysis:  # config-only LLM plan
        r = analysis["decode_roofline"]
        lines += [
            f"Source: {analysis['source']} at {analysis['precision']}, batch {analysis['batch']}, "
            f"context {analysis['context']}",
            f"- parameters: {_count(t['params'])}",
            "- weights: " + ", ".join(f"{p} {_size(b)}" for p, b in t["weights_bytes"].items()),
            f"- KV cache: {_size(t['kv_cache_bytes'])}; decode FLOPs per step: {_count(t['decode_flops_per_step'])}",
            f"- decode floor on {r['target']}: {r['floor_ms']:.2f} ms per step ({r['bound']}-bound), "
            f"at most {r['tokens_per_s_max']:.1f} tokens/s",
            *fits_lines(analysis["fits"]),
        ]
        return "\n".join(lines) + "\n"
    r = analysis["roofline"]
    shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in analysis["shapes"].items())
    lines += [
        f"Source: {analysis['source']} at {analysis['precision']} ({shapes})",
        "",
        "| | value |",
        "|---|---|",
        f"| parameters | {_count(t['params'])} |",
        f"| FLOPs (MACs) | {_count(t['flops'])} ({_count(t['macs'])}) |",
        f"| weights {' / '.join(NAMES)} | " + " / ".join(_size(t["weights_bytes"][p]) for p in NAMES) + " |",
        *([f"| engine weights, from what this ONNX holds | {_size(t['engine_weights_bytes'])} |"]
          if "engine_weights_bytes" in t else []),
        f"| activations (peak live, unfused) | {_size(t['activation_bytes'])} |",
        f"| KV cache | {_size(t['kv_cache_bytes'])} |",
        f"| bytes moved: minimum / unfused | {_size(t['bytes_min'])} / {_size(t['bytes_unfused'])} |",
        f"| arithmetic intensity | {r['arithmetic_intensity']:.1f} FLOP/B (ridge {r['ridge_flops_per_byte']:.0f}) |",
        f"| latency floor on {r['target']} | {r['floor_ms']:.3f} ms ({r['bound']}-bound); "
        f"unfused {r['unfused_ms']:.3f} ms |",
        "",
        *fits_lines(analysis["fits"]),
        "",
        "| kind | nodes | params | FLOPs | floor ms |",
        "|---|---|---|---|---|",
    ]
    for kind, k in sorted(analysis["by_kind"].items(), key=lambda kv: -kv[1]["flops"]):
        lines.append(f"| {kind} | {k['nodes']} | {_count(k['params'])} | {_count(k['flops'])} | {k['floor_ms']:.4f} |")
    lines += ["", f"Slowest {top} nodes by roofline floor:", "",
              "| node | op | FLOPs | bytes | FLOP/B | floor ms | bound |", "|---|---|---|---|---|---|---|"]
    for n in analysis["nodes_top"][:top]:
        lines.append(f"| {n['name']} | {n['op']} | {_count(n['flops'])} | {_count(n['bytes'])} | "
                     f"{n['intensity']:.1f} | {n['floor_ms']:.4f} | {n['bound']} |")
    if analysis["unknown_shape_nodes"]:
        lines += ["", f"Shapes unresolved for {len(analysis['unknown_shape_nodes'])} node(s) "
                      f"(counted as 0 FLOPs): {', '.join(analysis['unknown_shape_nodes'][:5])}"]
    if plot_name:
        lines += ["", f"![roofline]({plot_name})"]
    return "\n".join(lines) + "\n"
