"""Compare tonight's result with its baseline and decide, allowing for noise, whether it regressed.

The baseline of a metric is the median of the last K good results of the same engine and batch
size (the median ignores one odd night). Its noise is the robust standard deviation of those
results (1.4826 x the median absolute deviation). A change is a regression only when it goes the
bad way by more than max(rel x baseline, k x noise, abs): the relative floor keeps a perfectly
quiet history from flagging a 0.1 % wobble, and the noise term widens the band for metrics that
are jittery by nature.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from .history import IDENTITY_FIELDS, ResultRecord, StoredResult
from .matrix import Policy

# Metric name suffixes and which way is better: -1 lower is better, +1 higher is better, 0 recorded
# but never judged. Mean, p90 and throughput move with p50 and p99, so judging them too would turn
# one slowdown into five lines of the morning report.
_DIRECTIONS: tuple[tuple[str, int], ...] = (
    ("throughput_per_s", 0), ("mean_ms", 0), ("p90_ms", 0), ("tokens_per_s", +1), ("fraction_of_floor", +1),
    ("_per_token", -1), ("perplexity", -1), ("_vs_fp32", +1), ("_error", -1), ("cosine", +1), ("snr_db", +1), ("map50", +1), ("map50_95", +1), ("top1", +1),
    ("_ms", -1), ("_bytes", -1), ("_mb", -1), ("_j", -1), ("_w", -1), ("max_abs", -1), ("max_rel", -1),
)
MAD_TO_SIGMA = 1.4826


def direction(metric: str) -> int:
    """-1 lower is better, +1 higher is better, 0 informational (recorded, never judged)."""
    for suffix, sign in _DIRECTIONS:
        if metric.endswith(suffix):
            return sign
    return 0


def robust_sigma(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    median = statistics.median(values)
    return MAD_TO_SIGMA * statistics.median(abs(v - median) for v in values)


@dataclass
class Decision:
    engine: str
    metric: str
    status: str                      # regressed | improved | ok | no_baseline | failed
    current: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    noise: float | None = None
    runs: int = 0
    changed: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def change_pct(self) -> float | None:
        if self.current is None or not self.baseline:
            return None
        return (self.current - self.baseline) / abs(self.baseline) * 100

    @property
    def is_regression(self) -> bool:
        return self.status in ("regressed", "failed")


def judge(engine: str, metric: str, current: float, history: Sequence[float], policy: Policy) -> Decision:
    """One metric against the values of its last good runs (newest first)."""
    sign = direction(metric)
    recent = list(history)[: policy.baseline_runs]
    if len(recent) < policy.min_runs or sign == 0:
        return Decision(engine, metric, "no_baseline" if sign else "ok", current, runs=len(recent))
    baseline = statistics.median(recent)
    noise = robust_sigma(recent)
    spec = policy.threshold(metric)
    threshold = max(spec.rel * abs(baseline), spec.k * noise, spec.abs)
    worse_by = (current - baseline) * -sign  # positive when the change goes the bad way
    if worse_by > threshold:
        status = "regressed"
    elif -worse_by > threshold:
        status = "improved"
    else:
        status = "ok"
    return Decision(engine, metric, status, current, baseline, threshold, noise, len(recent))


def identity_changes(current: ResultRecord, reference: StoredResult | None,
                     git_commit: str | None = None) -> list[str]:
    """What differs between tonight and the last good run: the likely why of a change. The git
    range comes last: the commits to bisect when nothing else changed."""
    if reference is None:
        return []
    changes = []
    for name in IDENTITY_FIELDS:
        before, after = reference.identity.get(name), current.identity.get(name)
        if before != after:
            changes.append(f"{name} {_short(before)} -> {_short(after)}")
    if git_commit and reference.git_commit and git_commit != reference.git_commit:
        changes.append(f"git {reference.git_commit[:10]}..{git_commit[:10]}")
    return changes


def _short(value: str | None) -> str:
    if value is None:
        return "none"
    return value[:12] if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else value


# A host this much busier than on the baseline nights explains a CPU-runner slowdown by itself.
BUSY_HOST_FACTOR = 2.0


def conditions(current: ResultRecord, baseline: Sequence[StoredResult]) -> list[str]:
    """Tonight's measuring conditions that differ from the baseline nights: a throttled GPU or a
    busy host makes a slower number without any change to the engine."""
    notes = []
    if current.metrics.get("power.throttled"):
        notes.append("throttling during the benchmark window")
    load = current.metrics.get("host.load_1m")
    usual = [r.metrics["host.load_1m"] for r in baseline if "host.load_1m" in r.metrics]
    if load is not None and usual:
        typical = statistics.median(usual)
        if load >= 1.0 and load > BUSY_HOST_FACTOR * max(typical, 0.1):
            notes.append(f"host load {load:.1f} (usually {typical:.1f})")
    return notes


def compare(current: ResultRecord, baseline: Sequence[StoredResult], policy: Policy,
            git_commit: str | None = None) -> list[Decision]:
    """Every metric of one result against its baseline results (newest first)."""
    changed = identity_changes(current, baseline[0] if baseline else None, git_commit)
    changed += conditions(current, baseline)
    if current.status != "ok":
        return [Decision(current.engine, "status", "failed", changed=changed,
                         message=f"{current.engine}: failed: {current.error or 'unknown error'}")]
    decisions = []
    for metric, value in sorted(current.metrics.items()):
        history = [r.metrics[metric] for r in baseline if metric in r.metrics]
        decision = judge(current.engine, metric, value, history, policy)
        decision.changed = changed
        decision.message = describe(decision)
        decisions.append(decision)
    return decisions


def describe(d: Decision) -> str:
    if d.status in ("no_baseline",):
        return f"{d.engine}: {d.metric} = {d.current:.4g} (no verdict: {d.runs} good run(s) in the history)"
    if d.baseline is None or d.current is None:
        return f"{d.engine}: {d.metric} {d.status}"
    pct = (d.current - d.baseline) / abs(d.baseline) * 100 if d.baseline else float("inf")
    text = (
        f"{d.engine}: {d.metric} {d.baseline:.4g} -> {d.current:.4g} ({pct:+.1f}%, "
        f"allowed +/-{d.threshold:.3g} over the median of {d.runs} runs, noise {d.noise:.3g})"
    )
    if d.status in ("regressed", "improved"):
        text = f"{d.status.upper()} " + text
        text += "; changed since the last good run: " + (", ".join(d.changed) if d.changed else "nothing recorded")
    return text
