"""profile's latency measurement: one feed repeated to the batch, warm-up, timed calls, percentiles."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..processing.comparison import percentiles_ms
from ..runners import time_runner


def latency_feed(feed: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    return {n: np.repeat(a[:1], batch, axis=0) for n, a in feed.items()}


def measure_latency(runner: Any, feed: dict[str, np.ndarray], batch: int, warmup: int,
                    iterations: int) -> dict[str, Any]:
    """Host-to-host wall time per call of an open runner, as report.json's `latency.<runner>` holds it."""
    stats = percentiles_ms(time_runner(runner, feed, warmup, iterations))
    return {**stats, "throughput_per_s": batch * 1e3 / stats["mean_ms"], "batch": batch,
            "iterations": iterations, "warmup": warmup}
