"""Roofline latency floors on a target, and the fits check against its usable memory.

A layer can go no faster than its FLOPs at the tensor cores' dense peak, nor than its bytes at the
memory bandwidth: time >= max(FLOPs / peak, bytes / bandwidth). Two totals are reported:
- `floor_ms`: the whole model's FLOPs at peak vs the bytes it cannot avoid (every weight read once,
  inputs read, outputs and the KV cache touched once). No engine on this board can beat it.
- `unfused_ms`: the sum of per-node floors with every activation going through memory. Fusion puts a
  real engine somewhere between the two.
"""

from __future__ import annotations

from typing import Any

from ..platform.targets import Target


def node_floor_s(flops: float, bytes_moved: float, peak: float, bandwidth: float) -> tuple[float, str]:
    compute, memory = flops / peak, bytes_moved / bandwidth
    return (compute, "compute") if compute >= memory else (memory, "memory")


def roofline(flops: float, min_bytes: float, unfused_node_s: float, target: Target,
             compute_dtype: str) -> dict[str, Any]:
    peak = target.peak_ops_per_s(compute_dtype)
    bandwidth = target.bandwidth_bytes_per_s
    floor_s, bound = node_floor_s(flops, min_bytes, peak, bandwidth)
    return {
        "target": target.key,
        "compute_dtype": compute_dtype,
        "peak_ops_per_s": peak,
        "bandwidth_bytes_per_s": bandwidth,
        "ridge_flops_per_byte": peak / bandwidth,
        "arithmetic_intensity": flops / min_bytes if min_bytes else None,
        "floor_ms": floor_s * 1e3,
        "bound": bound,
        "unfused_ms": unfused_node_s * 1e3,
        "max_per_s": 1.0 / floor_s if floor_s > 0 else None,
    }


def fits(weights: int, activations: int, kv_cache: int, target: Target) -> dict[str, Any]:
    overhead = target.runtime_overhead_bytes
    total = weights + activations + kv_cache + overhead
    usable = target.usable_bytes
    return {
        "target": target.key,
        "usable_bytes": usable,
        "weights_bytes": weights,
        "activation_bytes": activations,
        "kv_cache_bytes": kv_cache,
        "runtime_overhead_bytes": overhead,
        "total_bytes": total,
        "headroom_bytes": usable - total,
        "fits": total <= usable,
    }
