"""The nightly matrix file: which models, precisions and batch sizes, and the regression policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from ..recipe.loader import PRECISIONS

DEFAULT_HISTORY_URL = "sqlite:///engines/history.sqlite"


@dataclass(frozen=True)
class Threshold:
    """A change counts as a regression only past max(rel x baseline, k x robust sigma, abs)."""

    rel: float = 0.05
    k: float = 4.0
    abs: float = 0.0


@dataclass(frozen=True)
class Policy:
    baseline_runs: int = 7   # the median of the last K good results is the baseline
    min_runs: int = 3        # fewer good results than this: no verdict yet, only a record
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    default: Threshold = Threshold()

    def threshold(self, metric: str) -> Threshold:
        """The most specific entry wins: the full metric name, then its last dotted part."""
        return self.thresholds.get(metric) or self.thresholds.get(metric.rsplit(".", 1)[-1]) or self.default


@dataclass(frozen=True)
class Entry:
    model: str          # a built-in recipe name or a path to a recipe YAML
    precision: str
    batches: tuple[int, ...]


@dataclass(frozen=True)
class Matrix:
    path: Path
    entries: list[Entry]
    history_url: str = DEFAULT_HISTORY_URL
    root: Path = Path("engines")
    report_dir: Path = Path("engines/nightly")
    lock_path: Path = Path("engines/nightly.lock")
    target: str | None = None
    tegrastats_interval_ms: int = 100
    policy: Policy = Policy()


def _positive_ints(value: Any, where: str) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and v > 0 for v in values):
        raise PipelineError(f"{where}: expected a positive integer or a list of them, got {value!r}")
    return tuple(values)


def _threshold(raw: Any, where: str) -> Threshold:
    if not isinstance(raw, dict) or set(raw) - {"rel", "k", "abs"}:
        raise PipelineError(f"{where}: expected a mapping with keys rel, k, abs; got {raw!r}")
    try:
        return Threshold(**{k: float(v) for k, v in raw.items()})
    except (TypeError, ValueError) as e:
        raise PipelineError(f"{where}: {e}") from e


def parse_matrix(raw: Any, path: Path) -> Matrix:
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not raw["models"]:
        raise PipelineError(f"{path}: expected a mapping with a non-empty 'models' list")
    default_batches = _positive_ints(raw.get("batches", [1]), f"{path}: batches")
    entries = []
    for i, item in enumerate(raw["models"]):
        where = f"{path}: models[{i}]"
        if not isinstance(item, dict) or "model" not in item:
            raise PipelineError(f"{where}: expected a mapping with a 'model' key")
        precisions = item.get("precisions", item.get("precision"))
        precisions = precisions if isinstance(precisions, list) else [precisions]
        if not precisions or not all(isinstance(p, str) for p in precisions):
            raise PipelineError(f"{where}: 'precisions' must name at least one precision")
        unknown = [p for p in precisions if p not in PRECISIONS]
        if unknown:  # a usage error, said before the night starts, not a failed model at 3 a.m.
            raise PipelineError(f"{where}: unknown precision {unknown[0]!r} (choose from {', '.join(PRECISIONS)})")
        batches = _positive_ints(item["batches"], f"{where}.batches") if "batches" in item else default_batches
        entries.extend(Entry(str(item["model"]), p, batches) for p in precisions)
    base = raw.get("baseline") or {}
    if not isinstance(base, dict):
        raise PipelineError(f"{path}: 'baseline' must be a mapping")
    thresholds_raw = raw.get("thresholds") or {}
    thresholds = {
        name: _threshold(spec, f"{path}: thresholds.{name}") for name, spec in thresholds_raw.items() if name != "default"
    }
    default = _threshold(thresholds_raw["default"], f"{path}: thresholds.default") if "default" in thresholds_raw else Threshold()
    runs, min_runs = int(base.get("runs", 7)), int(base.get("min_runs", 3))
    if not 1 <= min_runs <= runs:
        raise PipelineError(f"{path}: baseline needs 1 <= min_runs ({min_runs}) <= runs ({runs})")
    root = Path(raw.get("root", "engines"))
    return Matrix(
        path=path,
        entries=entries,
        history_url=str(raw.get("history", DEFAULT_HISTORY_URL)),
        root=root,
        report_dir=Path(raw.get("report", root / "nightly")),
        lock_path=Path(raw.get("lock", root / "nightly.lock")),
        target=raw.get("target"),
        tegrastats_interval_ms=int(raw.get("tegrastats_interval_ms", 100)),
        policy=Policy(baseline_runs=runs, min_runs=min_runs, thresholds=thresholds, default=default),
    )


def load_matrix(path: Path) -> Matrix:
    from ..core.artifacts import read_yaml

    return parse_matrix(read_yaml(path, "nightly matrix"), Path(path))
