"""The `trtexec` and `polygraphy convert` command lines equivalent to an orin-trt build, so a user can
rebuild by hand on the Orin or file a TensorRT bug with a command NVIDIA recognises.

The bundle writes them as build_commands.sh. Flags are spelled per TensorRT major version (trtexec's
documented flags: pipeline/data/trtexec_flags.yaml): strongly typed (a no-op that 11 still accepts), the
optimization profiles, the workspace cap, the timing cache, the builder optimization level, sparsity,
weight stripping and the DLA. TensorRT 10.x DLA is implicit INT8 (precision flags + calibration cache on
the QDQ-free ONNX); TensorRT 11.4.1+ DLA takes the QDQ ONNX strongly typed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
TIMING_CACHE = "timing.cache"
DLA_ONNX = "model.dla.onnx"   # the QDQ-free ONNX of a TensorRT 10.x DLA INT8 build (pipeline/platform/dla/translate.py)
CALIBRATION_CACHE = "calibration.cache"


@dataclass(frozen=True)
class CommandLine:
    tool: str        # "trtexec" or "polygraphy"
    tensorrt: str    # "10" or "11": the TensorRT major version it is written for
    argv: list[str]
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        return " \\\n    ".join(_groups(self.argv))


def _groups(argv: list[str]) -> list[str]:
    """argv as shell words, a flag and its value on one line."""
    out: list[str] = []
    for word in argv:
        if out and not word.startswith("-") and out[-1].startswith("-") and " " not in out[-1]:
            out[-1] += " " + shlex.quote(word)
        else:
            out.append(shlex.quote(word))
    return out


def _trtexec_name(name: str) -> str:
    # trtexec splits a spec at ',' and ':'; it strips single quotes around a tensor name.
    return f"'{name}'" if any(c in name for c in ",:'") else name


def _dims(shape: list[int], sep: str) -> str:
    return sep.join(str(int(d)) for d in shape)


def _dla(build: dict[str, Any]) -> dict[str, Any]:
    return build.get("dla") or {}


def _implicit_dla(build: dict[str, Any], precision: str, major: str) -> bool:
    return bool(_dla(build)) and major == "10"


def trtexec(profiles: list[dict[str, Any]], build: dict[str, Any], precision: str, major: str,
            onnx: str = "model.onnx", engine: str = "model.engine") -> CommandLine:
    dla = _dla(build)
    implicit = _implicit_dla(build, precision, major)
    notes = []
    argv = ["trtexec", f"--onnx={DLA_ONNX if implicit and precision == 'int8' else onnx}", f"--saveEngine={engine}"]
    if implicit:  # TensorRT 10.x DLA: weakly typed network, precision from flags (+ the calibration cache)
        argv.append("--fp16")
        if precision == "int8":
            argv += ["--int8", f"--calib={CALIBRATION_CACHE}"]
    else:
        argv.append("--stronglyTyped")
    for index, profile in enumerate(profiles):
        if len(profiles) > 1:
            argv.append(f"--profile={index}")
        for key, flag in (("min", "--minShapes"), ("opt", "--optShapes"), ("max", "--maxShapes")):
            spec = ",".join(f"{_trtexec_name(n)}:{_dims(s[key], 'x')}" for n, s in profile["shapes"].items())
            argv.append(f"{flag}={spec}")
    if build.get("workspace_bytes"):
        argv.append(f"--memPoolSize=workspace:{int(build['workspace_bytes']) // MIB}")
    if build.get("tactic_dram_bytes"):
        notes.append(f"trtexec has no tactic DRAM pool: orin-trt caps it at {int(build['tactic_dram_bytes']) // MIB} "
                     "MiB (polygraphy --pool-limit tactic_dram)")
    argv += [f"--builderOptimizationLevel={int(build.get('builder_optimization_level', 3))}",
             f"--timingCacheFile={TIMING_CACHE}", "--profilingVerbosity=detailed"]
    if build.get("sparse_weights"):
        argv.append("--sparsity=enable")
    if build.get("strip_weights"):
        argv.append("--stripWeights")  # trtexec's default is refit with identical weights, as orin-trt builds
    if dla:
        argv.append(f"--useDLACore={int(dla['core'])}")
        if dla.get("policy", "fallback") == "fallback":
            argv.append("--allowGPUFallback")
    notes += _memory_target_notes(build, "trtexec")
    argv.append("--skipInference")
    return CommandLine("trtexec", major, argv, tuple(notes))


def _memory_target_notes(build: dict[str, Any], tool: str) -> list[str]:
    if build.get("extra_profile_memory") is None:
        return []
    return [f"{tool} has no extra memory target: orin-trt sets extra_memory_target = "
            f"{float(build['extra_profile_memory']):g} on every profile after the first (IOptimizationProfile)"]


def polygraphy(profiles: list[dict[str, Any]], build: dict[str, Any], precision: str, major: str,
               onnx: str = "model.onnx", engine: str = "model.engine") -> CommandLine:
    dla = _dla(build)
    implicit = _implicit_dla(build, precision, major)
    notes = []
    argv = ["polygraphy", "convert", DLA_ONNX if implicit and precision == "int8" else onnx,
            "--convert-to", "trt", "-o", engine]
    if implicit:
        argv.append("--fp16")
        if precision == "int8":
            argv += ["--int8", "--calibration-cache", CALIBRATION_CACHE]
    else:
        argv.append("--strongly-typed")
    for profile in profiles:  # Polygraphy starts a new profile at each repeated min / opt / max group
        for key in ("min", "opt", "max"):
            argv.append(f"--trt-{key}-shapes")
            argv += [f"{n}:[{_dims(s[key], ',')}]" for n, s in profile["shapes"].items()]
    pools = [f"{pool}:{int(build[key])}" for pool, key in (("workspace", "workspace_bytes"),
                                                            ("tactic_dram", "tactic_dram_bytes")) if build.get(key)]
    if pools:
        argv += ["--pool-limit", *pools]
    argv += ["--builder-optimization-level", str(int(build.get("builder_optimization_level", 3))),
             "--load-timing-cache", TIMING_CACHE, "--save-timing-cache", TIMING_CACHE,
             "--profiling-verbosity", "detailed"]
    if build.get("sparse_weights"):
        argv.append("--sparse-weights")
    if build.get("strip_weights"):
        argv.append("--strip-plan")
        notes.append("Polygraphy sets STRIP_PLAN alone; orin-trt adds REFIT_IDENTICAL (trtexec --stripWeights does too)")
    if dla:
        argv.append("--use-dla")
        if dla.get("policy", "fallback") == "fallback":
            argv.append("--allow-gpu-fallback")
        if int(dla["core"]) != 0:
            notes.append(f"Polygraphy builds for DLA core 0 only; orin-trt builds for core {int(dla['core'])}")
    notes += _memory_target_notes(build, "polygraphy")
    return CommandLine("polygraphy", major, argv, tuple(notes))


def equivalents(profiles: list[dict[str, Any]], build: dict[str, Any], precision: str) -> list[CommandLine]:
    """The trtexec and Polygraphy lines for TensorRT 10.x and, where they differ, for TensorRT 11."""
    out = []
    for major in ("10", "11"):
        lines = [trtexec(profiles, build, precision, major), polygraphy(profiles, build, precision, major)]
        if out and [x.argv for x in lines] == [x.argv for x in out[:2]]:
            break  # the same commands serve both
        out += lines
    return out


def _jetpacks(major: str, build: dict[str, Any]) -> str:
    """The JetPack lines (pipeline/data/jetson_lines.yaml) a command for this TensorRT major serves; for a DLA
    build only those whose TensorRT has a DLA on the target's module."""
    from ..platform.lines import lines, module_family

    target = build.get("target")
    names = [f"JetPack {x.jetpack}" for x in lines() if x.jetpack != "none" and x.first[:1] == (int(major),)
             and (not build.get("dla") or not target or x.dla_mode(module_family(target)) != "none")]
    return ", ".join(names) or "no JetPack line"


def render_script(commands: list[CommandLine], title: str, build: dict[str, Any]) -> str:
    """build_commands.sh: `sh build_commands.sh [trtexec|polygraphy]` in the bundle folder on the Orin."""
    by_major: dict[str, dict[str, CommandLine]] = {}
    for c in commands:
        by_major.setdefault(c.tensorrt, {})[c.tool] = c
    lines = ["#!/bin/sh", f"# {title}",
             "# The builds `make engine` runs from this bundle, as trtexec / polygraphy convert command lines: run",
             "# `sh build_commands.sh [trtexec|polygraphy]` in this folder on the Orin (JetPack's TensorRT).",
             "set -eu", 'cd "$(dirname "$0")"', 'TOOL="${1:-trtexec}"']
    if len(by_major) > 1:
        lines += ['MAJOR="$(python3 -c \'import tensorrt; print(tensorrt.__version__.split(".")[0])\')"']
    else:
        lines += ["MAJOR=any"]
    for major, tools in by_major.items():
        cond = "" if len(by_major) == 1 else f'[ "$MAJOR" = "{major}" ] && '
        label = f"TensorRT {major}.x ({_jetpacks(major, build)})"
        if len(by_major) == 1:
            label = f"TensorRT 10.x and 11.x alike ({_jetpacks('10', build)}; {_jetpacks('11', build)})"
        lines.append(f"# {label}")
        for tool, c in tools.items():
            lines += [f"# note: {n}" for n in c.notes]
            lines.append(f'if {cond}[ "$TOOL" = "{tool}" ]; then')
            lines.append("  exec " + c.render().replace("\n", "\n  "))
            lines.append("fi")
    lines += ['echo "build_commands.sh: no command for $TOOL on TensorRT $MAJOR" >&2', "exit 2", ""]
    return "\n".join(lines)
