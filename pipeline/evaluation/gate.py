"""The profile's accuracy gate: ground truth against the budget where the recipe has it, agreement with FP32
(tensor cosine, a family's own floor) where it has not. Every check is one line saying pass yes / no and
whether it gates; the failure names the check that failed, never another one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.log import log
from ..models.base import ModelAdapter
from ..recipe.loader import Recipe
from .budget import judge, resolve_budget


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def measure_ground_truth(adapter: ModelAdapter, recipe: Recipe, reference: Path, candidate: Path | None,
                         stage: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """FP32's and the candidate's ground-truth metrics on the same data (ONNX Runtime), or None without truth.
    `candidate` None: FP32 is the candidate (an fp32 profile)."""
    ref = adapter.ground_truth(recipe, reference)
    if ref is None:
        return None
    cand = adapter.ground_truth(recipe, candidate) if candidate is not None else ref
    log(stage, f"ground truth: {ref['reference']}: FP32 {ref['metrics']}, candidate {cand['metrics']}")
    return ref, cand


def accuracy_gate(recipe: Recipe, precision: str, per_output: dict[str, dict[str, float]], task: dict[str, Any],
                  truth: tuple[dict[str, Any], dict[str, Any]] | None, random_weights: bool = False) -> dict[str, Any]:
    """The gate of one runner: `lines` (name, gates, passed yes/no, detail), `passed`, `failed` (first line).
    On random weights the task metric means nothing: it is reported, and agreement with FP32 gates."""
    min_cos = float(recipe.section("accuracy").get("min_cosine", 0.99))
    worst = min((p["cosine"] for p in per_output.values()), default=1.0)
    lines: list[dict[str, Any]] = []
    budget = None
    truth_gates = truth is not None and not random_weights
    if truth is not None:
        budget = judge(resolve_budget(recipe, precision), truth[0], truth[1], truth[0]["reference"])
        lines.append({"name": "accuracy budget (ground truth)", "gates": yes_no(truth_gates),
                      "passed": yes_no(budget["passed"]),
                      "detail": budget["message"] + ("; random weights: not gated" if random_weights else "")})
    # With ground truth, agreement with FP32 is a diagnostic: a good detector's INT8 boxes of anchors nobody
    # keeps drift (cosine ~0.985) and the low-confidence agreement counts noise (issue 12).
    agreement_gates = yes_no(not truth_gates)
    lines.append({"name": f"output cosine vs FP32 >= {min_cos:g}", "gates": agreement_gates,
                  "passed": yes_no(worst >= min_cos), "detail": f"worst output cosine {worst:.4f}"})
    if "floor_met" in task:
        floor = next(k for k in ("min_map50_95_vs_fp32", "min_top1_agreement") if k in task)
        value = task.get("map50_95_vs_fp32", task.get("top1_agreement"))
        lines.append({"name": f"{floor} (agreement with FP32)", "gates": agreement_gates,
                      "passed": yes_no(bool(task["floor_met"])),
                      "detail": task.get("gate_reason") or f"{value:.3f} against floor {task[floor]}"})
    failed = next((ln for ln in lines if ln["gates"] == "yes" and ln["passed"] == "no"), None)
    return {"min_cosine": min_cos, "reference": "ground truth" if truth_gates else "FP32 agreement",
            "budget": budget, "lines": lines, "passed": failed is None, "failed": failed}


def gate_markdown(gate: dict[str, Any]) -> list[str]:
    verdict = "PASSED" if gate["passed"] else "FAILED"
    out = [f"Gate against {gate.get('reference', 'FP32 agreement')}: **{verdict}**", "",
           "| check | gates | pass | detail |", "|---|---|---|---|"]
    out += [f"| {ln['name']} | {ln['gates']} | {ln['passed']} | {ln['detail']} |" for ln in gate.get("lines", [])]
    return out + [""]
