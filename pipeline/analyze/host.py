"""Will a stage fit on this host? Its peak memory from the weights it reads, by the ratios measured on
real architectures (benchmarks/results/scale.md), against the memory this process may use (the memory
cgroup's limit where there is one, else the kernel's MemAvailable). A stage that would not fit is refused
before it starts, in one line, instead of being killed by the kernel half way.

`ORIN_TRT_MEMORY_LIMIT` (bytes, or with a K/M/G suffix) caps what is taken as available, to plan for a
smaller host or to test the refusal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.log import log
from ..errors import PipelineError

GIB = 1 << 30
# Peak RSS = RATIO x the weight bytes the stage reads + BASE (the interpreter, torch / ONNX Runtime /
# ModelOpt code). Upper envelope of benchmarks/results/scale.md (ViT-B/16, SD-1.5 UNet, Llama-3.2-1B from
# FP32 and FP16 weights, on the 2-core host): a row that passed gives its ratio, a row killed at the
# 17 GiB cgroup a lower bound. export 2.0: the exports with the PyTorch model dropped before ONNX Runtime's
# check, (peak - BASE) / weights, are 1.86 (Llama-3-8B from FP16 weights, 29.6 GiB), 1.69 (ViT-B/16), 1.66
# (Llama-3.2-1B FP32), 1.64 (SD-1.5 UNet), 1.22 (Llama-3.2-1B FP16); before, 2.2. fp16 4.3 (ViT) / 4.1 (Llama), int8 over 5.3
# (killed: ModelOpt and ONNX Runtime's quantizer each hold the model, the calibration session a third copy,
# FP16 weights upcast for the CPU), int4 awq_clip over 5.3 (killed in its clip search; rtn_dq 3.8), build
# 3.8 (TensorRT-RTX on the FP16 Llama).
# ModelOpt's entropy INT8 (now only `calibrator: modelopt` and models under 32 MB): 7.3 on ViT-B/16 (4.3 GiB
# for 0.35 GB), 12.4 on YOLO11m (2.7 GiB for 0.08 GB: its 640 px activations, not its weights).
# The streaming INT8 quantizer and the streamed awq_clip hold one ONNX Runtime session, then one weight:
# INT8 max 1.6 (SD-1.5 UNet) and 0.7 (Llama-3.2-1B with SmoothQuant), INT8 entropy under BASE (ViT-B/16
# 1.6 GiB, YOLO11m 1.3 GiB), awq_clip 0.64 (Llama-3.2-1B FP32) and 0.81 (FP16); 2 leaves room for FP16
# weights the CPU provider upcasts.
# AutoCast on a header (quantize/fp16.py) holds the ranges session, then one tensor: 1.54 (SD-1.5 UNet),
# 1.13 (Llama-3.2-1B from FP16 weights), 0.58 (from FP32), 0.8 (ViT-B/16).
# build counts anonymous memory: the TensorRT parser maps the ONNX's data file, whose clean pages the kernel
# reclaims under a limit (the SD-1.5 UNet's FP32 build, 10.3 GiB of peak RSS, ran to its end in an 8.4 GiB
# cgroup), and the process holds no torch or ONNX Runtime (BUILD_BASE). Anonymous peaks over the weights
# read, the plan streamed into the file: SD-1.5 UNet (one profile) FP32 1.89, FP16 2.09, INT8 1.77;
# Llama-3.2-1B (prefill + decode: TensorRT-RTX stores an FP16 or FP32 GEMM weight once per profile) FP16
# 2.77, FP32 2.77; with the decode profile sharing the weights (trt/build.weight_copies: one copy) FP16 1.57,
# FP32 1.50. BUILD_FIXED + BUILD_PER_PROFILE x copies covers them.
RATIOS = {"export": 2.0, "calibrate[fp32]": 0.1, "calibrate[fp16]": 1.6, "calibrate[int8]": 8.0,
          "calibrate[int8-streaming]": 2.0, "calibrate[int4-awq]": 6.0, "calibrate[int4-awq-streaming]": 2.0}
BASE = int(1.75 * GIB)
BUILD_FIXED, BUILD_PER_PROFILE, BUILD_BASE = 1.45, 0.7, int(0.25 * GIB)
ENV = "ORIN_TRT_MEMORY_LIMIT"
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": GIB, "T": 1 << 40}


def stage_memory(stage: str, weight_bytes: int, profiles: int = 1) -> int:
    """Bytes of memory `stage` needs at its peak for a model of `weight_bytes` (build[<p>] reads as build,
    with its engine's optimization `profiles`)."""
    if stage.startswith("build"):
        return int((BUILD_FIXED + BUILD_PER_PROFILE * profiles) * weight_bytes) + BUILD_BASE
    return int(RATIOS[stage] * weight_bytes) + BASE


def _parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text.upper())
    if not m:
        raise PipelineError(f"{ENV}={text!r}: expected bytes, e.g. 8G or 8589934592")
    return int(float(m.group(1)) * _SUFFIX[m.group(2)])


def _meminfo_available(root: Path) -> int | None:
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_available(root: Path) -> int | None:
    """What this process's memory cgroup still allows: limit minus resident memory (page cache is
    reclaimed before the kernel kills anything, so it does not count)."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if "memory" in controllers.split(","):  # v1
            folder = root / "sys/fs/cgroup/memory" / rel
            limit_file, usage_key = folder / "memory.limit_in_bytes", "total_rss"
        elif controllers == "":  # v2
            folder = root / "sys/fs/cgroup" / rel
            limit_file, usage_key = folder / "memory.max", "anon"
        else:
            continue
        try:
            limit_text = limit_file.read_text().strip()
            stats = dict(s.split() for s in (folder / "memory.stat").read_text().splitlines())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 1 << 60:
            continue
        return int(limit_text) - int(stats.get(usage_key, 0))
    return None


def memory_available(root: Path = Path("/")) -> int:
    """The memory a stage may use on this host: the smallest of MemAvailable, the cgroup's room and
    ORIN_TRT_MEMORY_LIMIT."""
    found = [v for v in (_meminfo_available(root), _cgroup_available(root)) if v is not None]
    if os.environ.get(ENV):
        found.append(_parse_bytes(os.environ[ENV]))
    return min(found) if found else 1 << 62


def require_memory(stage: str, weight_bytes: int, what: str, profiles: int = 1) -> int:
    """Say what `stage` needs on this host, and refuse it (PipelineError, exit 2) when that exceeds what
    is available. `what` names the weights (e.g. the ONNX read); for a build, `profiles` is the copies of
    the weights it holds (trt/build.weight_copies: one per optimization profile unless they share)."""
    need, free = stage_memory(stage, weight_bytes, profiles), memory_available()
    log(stage, f"needs about {need / GIB:.1f} GiB of memory at its peak for {weight_bytes / 1e9:.2f} GB of "
               f"weights ({what}); {free / GIB:.1f} GiB available")
    if need > free:
        # A builder that keeps a GEMM weight per profile: one profile is the largest saving a build has.
        fewer = (f", one optimization profile instead of {profiles} (the recipe's profiles:, docs/memory.md)"
                 if stage.startswith("build") and profiles > 1 else "")
        raise PipelineError(f"{stage}: needs about {need / GIB:.1f} GiB of memory for {weight_bytes / 1e9:.2f} GB "
                            f"of weights ({what}), only {free / GIB:.1f} GiB available on this host "
                            f"(a bigger host, a lower-precision export: export.dtype float16{fewer}, or {ENV} to plan)")
    return need


def plan_markdown(rows: list[tuple[str, str, int, int]]) -> str:
    """A table of what stages need on this host; each row is (label, stage, weight bytes the stage reads:
    export the parameters at the export dtype, calibrate / build the ONNX they read, optimization profiles
    of the build)."""
    free = memory_available()
    out = [f"\n## This host\n\nMemory a stage may use here: {free / GIB:.1f} GiB (the memory cgroup's room or "
           f"MemAvailable, capped by {ENV}); needs from the ratios benchmarks/scale.py measured.\n",
           "| stage | weights read | needs | fits |", "|---|---|---|---|"]
    for label, stage, size, profiles in rows:
        need = stage_memory(stage, size, profiles)
        out.append(f"| {label} | {size / 1e9:.2f} GB | {need / GIB:.1f} GiB | {'yes' if need <= free else '**no**'} |")
    return "\n".join(out) + "\n"
