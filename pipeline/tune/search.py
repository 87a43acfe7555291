"""The search: quantize each candidate, measure it against ground truth (a screening subset, then the whole
held-out set for the finalists), keep those within the budget, pick the lowest estimated latency on the
target, tie-broken by weight bytes. Every measurement is cached by content (the export, the options, the
calibration and held-out data, the tools), so a re-run is instant and an interrupted search resumes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analyze.weights import engine_weight_bytes
from ..core import onnx_utils
from ..core.artifacts import Layout, read_json, sha256_file, sha256_json, sha256_onnx, sha256_tree, write_json
from ..core.cache import tool_versions
from ..core.log import log, progress, warn
from ..errors import PipelineError
from ..evaluation.budget import Budget, resolve_budget
from ..models import get_adapter
from ..platform.targets import get_target
from ..quantize import quantize_onnx, resolve_exclusions
from ..recipe.loader import Recipe
from ..stages.common import ONNX_TOOLS, QUANT_TOOLS
from .candidates import Candidate, block_of, candidates
from .latency import estimate_ms, node_precisions

STAGE = "tune"


@dataclass
class Settings:
    target: str = "orin-agx-64"
    screen_samples: int = 16
    finalists: int = 3
    sensitivity_blocks: int = 4
    time_limit_s: float | None = None
    strict: bool = False

    @classmethod
    def from_recipe(cls, recipe: Recipe, **overrides: Any) -> Settings:
        cfg = dict(recipe.section("tune"))
        cfg.pop("enabled", None)
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**cfg)


@dataclass
class Search:
    recipe: Recipe
    layout: Layout
    precision: str
    calib_root: Path
    settings: Settings
    force: bool = False
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.adapter = get_adapter(self.recipe.family)
        self.src = self.layout.exported_onnx
        header = onnx_utils.load(self.src, with_weights=False)
        self.node_names = [n.name for n in header.graph.node]
        self.placeholders = self.adapter.placeholders(onnx_utils.metadata(header), self.node_names)
        self.data = self.adapter.calibration_set(self.recipe, self.calib_root)
        self.budget: Budget = resolve_budget(self.recipe, self.precision)
        self.target = get_target(self.settings.target)
        self.cache_dir = self.layout.model_dir / ".tune-cache"
        self.io_dtypes = self.adapter.io_dtypes(self.recipe, self.precision)
        self._feeds: list | None = None
        from ..analyze import recipe_shapes
        from ..analyze.shapes import graph_inputs

        names = {v.name for v in graph_inputs(header)}
        # An LLM's time goes to decode (one token against the cache), where weight-only INT4 pays off;
        # other models have one profile, its opt shapes.
        self.profile = next((p.get("name") for p in self.recipe.profiles if p.get("phase") == "decode"), None)
        self.shapes = {n: s for n, s in recipe_shapes(self.recipe.profiles, None, profile=self.profile).items()
                       if n in names}
        self.base_key = {
            "onnx": sha256_onnx(self.src),
            "calibration": {"data": sha256_tree(self.data.path), "samples": self.data.count,
                            "section": dict(self.recipe.section("calibration"))},
            "eval": {"section": dict(self.recipe.section("eval")), "data": _eval_digest(self.recipe),
                     "preprocess": dict(self.recipe.section("preprocess"))},
            "tools": tool_versions([*ONNX_TOOLS, *QUANT_TOOLS]),
        }

    # ---- time ----------------------------------------------------------------------------------------
    def out_of_time(self) -> bool:
        limit = self.settings.time_limit_s
        return limit is not None and time.perf_counter() - self.started > limit

    # ---- measuring -----------------------------------------------------------------------------------
    def feeds(self) -> list:
        if self._feeds is None:
            self._feeds = self.adapter.calibration_feeds(self.recipe, self.data)
        return self._feeds

    def exclusions(self, cand: Candidate) -> dict[str, Any]:
        exclude = resolve_exclusions(self.precision, cand.options, self.placeholders, self.node_names)
        for pattern in cand.extra_keep_out:
            if not any(re.match(pattern, n) for n in self.node_names):
                raise PipelineError(f"tune: keep-out pattern {pattern!r} matches no node of {self.src}")
        return {**exclude, "nodes": [*exclude["nodes"], *cand.extra_keep_out]}

    def key(self, cand: Candidate) -> str:
        return sha256_json({**self.base_key, "precision": self.precision, "options": cand.options,
                            "exclude": self.exclusions(cand), "io_dtypes": self.io_dtypes})[:20]

    def reference(self, samples: int | None) -> dict[str, Any]:
        """FP32's ground truth on the same items (cached like a candidate)."""
        path = self.cache_dir / f"fp32-{sha256_json(self.base_key)[:20]}-{samples or 'all'}.json"
        if path.is_file() and not self.force:
            return read_json(path)
        truth = self.adapter.ground_truth(self.recipe, self.src, samples)
        if truth is None:
            raise PipelineError(f"tune: recipe {self.recipe.path} has no labelled held-out data to tune against "
                                "(YOLO eval.data, ViT eval.labelled; Llama held-out text, UNet: built in)")
        write_json(path, truth)
        return truth

    def quantized(self, cand: Candidate) -> tuple[Path, dict[str, Any]]:
        folder = self.cache_dir / self.key(cand)
        onnx, summary = folder / "model.onnx", folder / "quantize.json"
        if onnx.is_file() and summary.is_file() and not self.force:
            return onnx, read_json(summary)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        exclude = self.exclusions(cand)
        result = quantize_onnx(self.precision, self.src, onnx, self.feeds(), cand.options, exclude, self.io_dtypes)
        result.update(seconds=round(time.perf_counter() - t0, 3), kept_out={
            "nodes": exclude["nodes"], "op_types": exclude["op_types"], "reason": exclude["reason"]})
        write_json(summary, result)
        return onnx, result

    def measure(self, cand: Candidate, samples: int | None) -> dict[str, Any]:
        """The candidate's ground truth on `samples` items, its loss, estimated latency and weight bytes."""
        folder = self.cache_dir / self.key(cand)
        path = folder / f"measure-{samples or 'all'}.json"
        cached = path.is_file() and not self.force
        if cached:
            result = read_json(path)
        else:
            t0 = time.perf_counter()
            onnx, summary = self.quantized(cand)
            truth = self.adapter.ground_truth(self.recipe, onnx, samples)
            ref = self.reference(samples)
            result = {"name": cand.name, "settings": cand.settings(), "samples": truth["samples"],
                      "metrics": truth["metrics"], "fp32_metrics": ref["metrics"],
                      "seconds": round(time.perf_counter() - t0 + float(summary.get("seconds", 0)), 2),
                      "key": self.key(cand)}
            write_json(path, result)
        return {**self.judged(result), **self.latency(cand), "cached": cached}

    def latency(self, cand: Candidate) -> dict[str, Any]:
        """The estimate on this search's target, cached per target (another target re-measures nothing),
        and the engine's weight bytes as the candidate's graph holds them (its block scales, a kept-out LM
        head, an FP16 embedding table: what the nominal widths cannot see)."""
        path = self.cache_dir / self.key(cand) / f"estimate-{self.target.key}{'-' + self.profile if self.profile else ''}.json"
        if path.is_file() and not self.force:
            return read_json(path)
        onnx, summary = self.quantized(cand)
        hp = summary.get("high_precision_dtype") or ("fp16" if self.precision == "int4-awq" else "fp32")
        est = estimate_ms(self.src, self.shapes, node_precisions(onnx, self.precision, hp), hp, self.target,
                          summary.get("block_size"))
        out = {"estimated_ms": est["estimated_ms"], "weight_bytes": engine_weight_bytes(onnx),
               "nodes_by_precision": est["nodes_by_precision"]}
        write_json(path, out)
        return out

    def judged(self, measured: dict[str, Any]) -> dict[str, Any]:
        """A measurement against today's budget (the cache holds metrics, not verdicts)."""
        metric = self.budget.metric
        fp32, value = measured["fp32_metrics"][metric], measured["metrics"][metric]
        return {**measured, "metric": metric, "fp32": fp32, "value": value, "loss": self.budget.loss(fp32, value),
                "within_budget": self.budget.within(fp32, value)}


def _eval_digest(recipe: Recipe) -> dict[str, str]:
    """Content digests of the held-out data files the recipe names (a changed label re-measures)."""
    out = {}
    for key, value in dict(recipe.section("eval")).items():
        if isinstance(value, str) and value != "builtin":
            p = recipe.resolve_path(value)
            if p.is_dir():
                out[key] = sha256_tree(p)
            elif p.is_file():
                out[key] = sha256_file(p)
                if p.suffix in (".yaml", ".yml"):  # a dataset yaml: its images and labels beside it
                    out[key + ":folder"] = sha256_tree(p.parent)
    return out


def _rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["estimated_ms"], r["weight_bytes"], r["loss"]))


def run_search(search: Search) -> dict[str, Any]:
    """Screen every candidate, measure the fastest promising ones on the whole set, then (INT8) try keeping
    the most sensitive blocks out; returns the tune result (rows, choice or fallback)."""
    s = search.settings
    base = dict(search.recipe.precision_options(search.precision))
    todo = candidates(search.precision, base, search.node_names)
    rows: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    log(STAGE, f"{search.precision}: {len(todo)} candidates, budget {search.budget.describe()} "
        f"({search.budget.source}), screening on {s.screen_samples} held-out items, target {s.target}")
    by_name = {c.name: c for c in todo}
    failed: dict[str, str] = {}
    for cand in progress(todo, f"tune[{search.precision}] screening", len(todo)):
        if (rows or failed) and search.out_of_time():  # the first (the recipe's own setting) always runs
            skipped.append(cand.name)
            continue
        try:
            rows[cand.name] = {"screen": search.measure(cand, s.screen_samples)}
        except PipelineError:
            raise
        except Exception as e:  # a tool's failure on one setting is that candidate's result, not the search's
            failed[cand.name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
            warn(STAGE, f"{cand.name}: failed, left out of the search: {failed[cand.name]}")
    if not rows:
        raise PipelineError(f"tune: every {search.precision} candidate of {search.recipe.path} failed: "
                            + "; ".join(f"{n}: {e}" for n, e in failed.items()))
    # Finalists: the fastest whose screening loss is within twice the budget (a small subset is noisy).
    promising = _rank([r["screen"] for r in rows.values() if r["screen"]["loss"] <= 2 * search.budget.limit
                       or search.budget.within(r["screen"]["fp32"], r["screen"]["value"])])
    finals: list[dict[str, Any]] = []
    for row in promising:
        confirmed = len([f for f in finals if f["within_budget"]])
        # Past the time limit, still confirm one on the whole set: a choice rests on all the held-out data.
        if confirmed >= s.finalists or (search.out_of_time() and (confirmed or finals)):
            break
        full = search.measure(by_name[row["name"]], None)
        rows[row["name"]]["full"] = full
        finals.append(full)
    within = _rank([f for f in finals if f["within_budget"]])
    sensitivity: dict[str, Any] = {}
    if not within and search.precision == "int8" and s.sensitivity_blocks and not search.out_of_time():
        found, sensitivity = _fallback_blocks(search, rows, by_name)
        if found is not None:
            within = [found]
    choice = within[0] if within else None
    closest = sorted((r.get("full") or r["screen"] for r in rows.values()), key=lambda r: r["loss"])[:3]
    return {"precision": search.precision, "budget": search.budget.to_dict(), "budget_text": search.budget.describe(),
            "target": s.target, "latency_profile": search.profile, "screen_samples": s.screen_samples, "rows": rows, "skipped_time_limit": skipped,
            "failed": failed,
            "choice": choice, "closest": closest, "sensitivity": sensitivity,
            "candidates": {n: c for n, c in by_name.items()},
            "seconds": round(time.perf_counter() - search.started, 1)}


def _fallback_blocks(search: Search, rows: dict[str, dict[str, Any]],
                     by_name: dict[str, Candidate]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Sensitivity-guided layer fallback from the lowest-loss setting: measure what keeping each quantized
    block out of INT8 (in FP16) gains, then keep out the fewest, most helpful ones until the loss fits."""
    s = search.settings
    best_name = min(rows, key=lambda n: (rows[n].get("full") or rows[n]["screen"])["loss"])
    best = by_name[best_name]
    onnx, _ = search.quantized(best)
    quantized = [n for n, p in node_precisions(onnx, "int8", "fp32").items() if p == "int8"]
    blocks: dict[str, int] = {}
    for n in quantized:
        b = block_of(n)
        if b:
            blocks[b] = blocks.get(b, 0) + 1
    # Bounded: the blocks nearest the output first (where errors have no later layers to wash out in).
    order = [b for b in dict.fromkeys(block_of(n) for n in reversed(search.node_names)) if b in blocks]
    tried = order[: s.sensitivity_blocks]
    base_loss = (rows[best_name].get("full") or rows[best_name]["screen"])["loss"]
    gains: dict[str, float] = {}
    for block in progress(tried, "tune[int8] block sensitivity", len(tried)):
        if search.out_of_time():
            break
        cand = _kept_out(best, [block])
        r = search.measure(cand, s.screen_samples)
        gains[block] = base_loss - r["loss"]
        rows[cand.name] = {"screen": r}
        by_name[cand.name] = cand
    kept: list[str] = []
    for block in sorted(gains, key=gains.get, reverse=True):
        if gains[block] <= 0 or search.out_of_time():
            break
        kept.append(block)
        cand = _kept_out(best, kept, {b: gains[b] for b in kept})
        full = search.measure(cand, None)
        rows.setdefault(cand.name, {"screen": full})["full"] = full
        by_name[cand.name] = cand
        if full["within_budget"]:
            return full, {"from": best_name, "gains": gains, "kept_out": kept}
    return None, {"from": best_name, "gains": gains, "kept_out": []}


def _kept_out(base: Candidate, blocks: list[str], sensitivity: dict[str, float] | None = None) -> Candidate:
    # Kept-out blocks take the base setting's high-precision dtype: FP16 where that setting measured best
    # with it; ModelOpt has one dtype for all unquantized ops, and FP16 everywhere cost some models accuracy.
    return Candidate(f"{base.name}; kept out: {', '.join(blocks)}", dict(base.options),
                     [*base.extra_keep_out, *[re.escape(b) + ".*" for b in blocks]], dict(sensitivity or {}))


def copy_onnx(src: Path, dst: Path) -> None:
    """The chosen candidate's ONNX (and its external data, if any) as the precision's calibrated ONNX."""
    onnx_utils.save(onnx_utils.load(src), dst, external_data=onnx_utils.uses_external_data(src) or None)
