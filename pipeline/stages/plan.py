"""The build plan: every builder option resolved once, from the recipe's `build:` section, the precision,
the target, DLA, sparsity and the command line's overrides, then handed to build and bundle alike.

`resolve_plan` is the only place the target is turned into builder caps and the only place a build is
refused up front for what this machine's TensorRT cannot do; `BuildPlan.options()` is the one recorded
form (the stage key, a bundle's `build`, the manifest's `builder`), and `plan_from_options` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.log import log
from ..errors import PipelineError
from ..recipe.loader import Recipe

OPT_LEVELS = range(0, 6)  # TensorRT's builder optimization levels (trtexec --builderOptimizationLevel)
OVERRIDES = ("workspace_mib", "builder_optimization_level", "timing_cache", "strip_weights")


@dataclass(frozen=True)
class DlaPlan:
    core: int
    policy: str = "fallback"
    preflight: dict[str, Any] | None = field(default=None, compare=False)

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"core": self.core, "policy": self.policy}
        if self.preflight is not None:
            out["preflight"] = self.preflight
        return out


@dataclass(frozen=True)
class BuildPlan:
    precision: str | None
    target: str | None  # the SKU key (`auto` already resolved); None: this machine's GPU
    workspace_bytes: int
    builder_optimization_level: int
    tactic_dram_bytes: int | None = None  # a target's cap on tactic scratch memory
    timing_cache: str | None = None  # the user's file; None: one per TensorRT build under the root
    strip_weights: bool = False
    sparse_weights: bool = False
    dla: DlaPlan | None = None
    extra_profile_memory: float | None = None  # profiles after the first; None: TensorRT's default (1.0)
    overrides: tuple[tuple[str, Any], ...] = ()  # what the command line set, carried to the Orin

    @property
    def builds_here(self) -> bool:
        """False for an Orin target this machine is not: the last step writes a bundle instead."""
        from .bundle import host_can_build_for

        return host_can_build_for(self.target)

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"workspace_bytes": self.workspace_bytes,
                                "builder_optimization_level": self.builder_optimization_level,
                                "target": self.target}
        if self.overrides:
            opts["overrides"] = dict(self.overrides)
        if self.tactic_dram_bytes is not None:
            opts["tactic_dram_bytes"] = self.tactic_dram_bytes
        if self.timing_cache:
            opts["timing_cache"] = self.timing_cache
        if self.strip_weights:
            opts["strip_weights"] = True
        if self.dla is not None:
            opts["dla"] = self.dla.options()
        if self.sparse_weights:
            opts["sparse_weights"] = True
        if self.extra_profile_memory is not None:
            opts["extra_profile_memory"] = self.extra_profile_memory
        return opts

    def with_dla_preflight(self, onnx_path: Path, profiles: list[dict[str, Any]]) -> BuildPlan:
        """The DLA preflight on the ONNX this plan builds (a strict policy fails here, before any build or
        copy to the Orin); a plan without DLA is returned as it is."""
        if self.dla is None:
            return self
        from ..platform.dla import run_preflight

        summary = run_preflight(onnx_path, profiles, self.dla.policy, dla_core=self.dla.core)
        return replace(self, dla=replace(self.dla, preflight=summary))


def check_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """What the CLI set (None = not given), checked; only the given ones are kept."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None and v is not False}
    unknown = set(given) - set(OVERRIDES)
    if unknown:
        raise PipelineError(f"unknown build override(s) {', '.join(sorted(unknown))}")
    if "workspace_mib" in given and int(given["workspace_mib"]) <= 0:
        raise PipelineError(f"--workspace {given['workspace_mib']}: give the builder workspace in MiB (> 0)")
    if "builder_optimization_level" in given and int(given["builder_optimization_level"]) not in OPT_LEVELS:
        raise PipelineError(f"--opt-level {given['builder_optimization_level']}: choose 0..5 "
                            "(TensorRT's builder optimization levels; 3 is the default)")
    if "timing_cache" in given:
        given["timing_cache"] = str(given["timing_cache"])
    return given


def resolve_plan(recipe: Recipe, target: str | None, precision: str | None = None, dla_core: int | None = None,
                 dla_policy: str = "fallback", sparse: bool = False,
                 overrides: dict[str, Any] | None = None) -> BuildPlan:
    """The CLI's overrides win over the recipe's `build:` section, which wins over the defaults; a target
    caps workspace and tactic memory so small boards are not OOM-killed."""
    from ..platform.targets import resolve_target

    given = check_overrides(overrides)
    cfg = {**recipe.section("build"), **given}
    workspace = int(cfg.get("workspace_mib", 1024)) << 20
    tactic_dram = None
    board = resolve_target(target, precision, dla_core)  # refuses what the board lacks, before any work
    if board is not None:
        target = board.key
        caps = board.builder_caps()
        if "workspace_mib" in given and workspace > caps["workspace_bytes"]:
            log("build", f"--workspace {given['workspace_mib']} MiB is over {board.key}'s cap of "
                f"{caps['workspace_bytes'] >> 20} MiB (docs/targets.md, builder caps): using it as asked")
        else:
            workspace = min(workspace, caps["workspace_bytes"])
        tactic_dram = caps["tactic_dram_bytes"]
    dla = None
    if dla_core is not None:
        from ..platform.dla import check_policy

        dla = DlaPlan(dla_core, check_policy(dla_policy))
    plan = BuildPlan(
        precision=precision, target=target, workspace_bytes=workspace,
        builder_optimization_level=int(cfg.get("builder_optimization_level", 3)),
        tactic_dram_bytes=tactic_dram,
        timing_cache=str(cfg["timing_cache"]) if cfg.get("timing_cache") else None,
        strip_weights=bool(cfg.get("strip_weights")), sparse_weights=sparse, dla=dla,
        extra_profile_memory=_extra_profile_memory(recipe, cfg),
        overrides=tuple(given.items()),
    )
    _refuse_what_this_builder_cannot(plan)
    return plan


def _extra_profile_memory(recipe: Recipe, cfg: dict[str, Any]) -> float | None:
    """The recipe's, else the family's; only where there is a second profile to constrain."""
    if len(recipe.profiles) < 2:
        return None
    if cfg.get("extra_profile_memory") is not None:
        return float(cfg["extra_profile_memory"])
    from ..models import get_adapter

    return get_adapter(recipe.family).extra_profile_memory


def plan_from_options(recipe: Recipe, precision: str, target: str, opts: dict[str, Any]) -> BuildPlan:
    """A recorded plan (a bundle's `build`) resolved again where it builds, so that Orin's TensorRT is asked."""
    dla = opts.get("dla") or {}
    return resolve_plan(recipe, target, precision, dla.get("core"), dla.get("policy", "fallback"),
                        bool(opts.get("sparse_weights")), opts.get("overrides"))


def _refuse_what_this_builder_cannot(plan: BuildPlan) -> None:
    """Where this machine will build, its TensorRT must have a DLA for the board (JetPack 7.2's 10.16 has
    none on Orin) and be able to strip weights: refuse now, before export and calibration, naming why. A
    host writing a bundle for another Orin cannot know that Orin's TensorRT; the Orin checks when it builds."""
    if not (plan.dla or plan.strip_weights) or not plan.builds_here:
        return
    from ..trt.backend import select_backend

    backend = select_backend()
    if plan.dla:
        from ..trt.dla_build import require_dla

        require_dla(backend, plan.target)
    if plan.strip_weights:
        from ..trt.refit import strip_flags

        strip_flags(backend)


def translate_for_dla(plan: BuildPlan, onnx_path: Path, dla_dir: Path, trt_version: str) -> tuple[Path, Path] | None:
    """TensorRT 10.x DLA INT8 is implicit quantization: the QDQ ONNX becomes a QDQ-free ONNX plus a
    calibration cache with the same scales. Returns (onnx, cache), or None where the plan needs neither."""
    if plan.dla is None or plan.precision != "int8":
        return None
    from ..platform.dla.translate import translate_file

    onnx, cache = dla_dir / "model.onnx", dla_dir / "calibration.cache"
    translate_file(onnx_path, onnx, cache, trt_version)
    return onnx, cache
