"""The accuracy budget: how much of a task metric (measured against ground truth) a precision may lose
against FP32 on the same data, and the judgement of one candidate against it.

A recipe states `accuracy.budget` (or `accuracy.budget_by_precision`); a family that states none gets the
defaults below, the targets of issue 12 (docs/tuning.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..recipe.loader import Recipe

# metric -> True when larger is better
HIGHER_IS_BETTER = {"map50_95": True, "map50": True, "top1": True, "top5": True, "perplexity": False,
                    "eps_mse": False}

DEFAULT_BUDGETS: dict[str, dict[str, Any]] = {
    "yolo": {"metric": "map50_95", "max_drop": 0.005},
    "vit": {"metric": "top1", "max_drop": 0.005},
    "llama": {"metric": "perplexity", "max_increase_pct": 2.0},
    "unet": {"metric": "eps_mse", "max_ratio": 1.05},
}
# Where a family's tolerance differs per precision: INT8 activations lose less than INT4 weights may.
DEFAULT_BY_PRECISION: dict[str, dict[str, dict[str, Any]]] = {
    "llama": {"int8": {"metric": "perplexity", "max_increase_pct": 1.0}},
}


@dataclass(frozen=True)
class Budget:
    metric: str
    max_drop: float | None = None
    max_increase_pct: float | None = None
    max_ratio: float | None = None
    source: str = "recipe"  # recipe | family default

    def describe(self) -> str:
        if self.max_drop is not None:
            return f"{self.metric} drop <= {self.max_drop:g}"
        if self.max_increase_pct is not None:
            return f"{self.metric} increase <= {self.max_increase_pct:g} %"
        return f"{self.metric} <= {self.max_ratio:g}x FP32's"

    def loss(self, fp32: float, candidate: float) -> float:
        """The loss in the budget's own unit: a drop, a percent increase, or a ratio."""
        if self.max_increase_pct is not None:
            return (candidate / fp32 - 1.0) * 100.0
        if self.max_ratio is not None:
            return candidate / fp32 if fp32 else float("inf")
        return fp32 - candidate if HIGHER_IS_BETTER[self.metric] else candidate - fp32

    @property
    def limit(self) -> float:
        return next(getattr(self, k) for k in LIMIT_KEYS if getattr(self, k) is not None)

    def within(self, fp32: float, candidate: float) -> bool:
        # A hair of float slack, so a candidate equal to FP32 never fails a zero budget.
        return self.loss(fp32, candidate) <= self.limit + 1e-12

    def to_dict(self) -> dict[str, Any]:
        out = {"metric": self.metric, "source": self.source}
        for k in LIMIT_KEYS:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out


LIMIT_KEYS = ("max_drop", "max_increase_pct", "max_ratio")
UNITS = {"max_drop": "", "max_increase_pct": " %", "max_ratio": "x"}


def format_loss(loss: float, budget: dict[str, Any]) -> str:
    """A loss in its budget's unit, as reports print it: `+0.0041`, `+0.30 %`, `1.034x`."""
    kind = next(k for k in LIMIT_KEYS if k in budget)
    if kind == "max_ratio":
        return f"{loss:.3f}x"
    return f"{loss:+.2f} %" if kind == "max_increase_pct" else f"{loss:+.4f}"


def resolve_budget(recipe: Recipe, precision: str) -> Budget:
    """The recipe's budget for `precision` (budget_by_precision, then budget), else the family's default."""
    acc = recipe.section("accuracy")
    stated = (acc.get("budget_by_precision") or {}).get(precision) or acc.get("budget")
    if stated:
        return Budget(**{k: v for k, v in dict(stated).items() if v is not None}, source="recipe")
    default = DEFAULT_BY_PRECISION.get(recipe.family, {}).get(precision) or DEFAULT_BUDGETS[recipe.family]
    return Budget(**default, source=f"{recipe.family} default")


def judge(budget: Budget, fp32: dict[str, Any], candidate: dict[str, Any], reference: str) -> dict[str, Any]:
    """The budget gate of one candidate: FP32's and the candidate's ground-truth metric on the same data."""
    f, c = float(fp32["metrics"][budget.metric]), float(candidate["metrics"][budget.metric])
    loss, passed = budget.loss(f, c), budget.within(f, c)
    message = (f"{budget.metric} against {reference}: FP32 {f:.4f}, candidate {c:.4f}, "
               f"loss {format_loss(loss, budget.to_dict())}, "
               f"budget {budget.describe()} ({budget.source})")
    return {"metric": budget.metric, "reference": reference, "fp32": f, "candidate": c, "loss": loss,
            "budget": budget.to_dict(), "budget_text": budget.describe(), "passed": passed, "message": message}
