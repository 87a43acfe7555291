"""From the tegrastats samples of a benchmark window: power, energy per inference, RAM, throttling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...errors import PipelineError
from .tegrastats import TimedSample, Window

# Sensors that are not die temperatures (PMIC prints a constant 100C on r32 boards).
_NOT_DIE_SENSORS = {"pmic", "tboard", "tdiode", "thermal"}
# Below NVIDIA's software throttle trip points (Orin: 99 C on CPU/GPU/SOC zones) with a margin,
# since tegrastats samples are coarser than the throttle controller.
DEFAULT_THROTTLE_TEMP_C = 95.0
# A GPU clock this far below the highest one seen (or the power mode's cap) while the GPU is busy
# means the governor or a thermal/electrical limit pulled it down during the benchmark.
CLOCK_DROP_FRACTION = 0.10
BUSY_GPU_LOAD_PCT = 50.0


def integrate(times_s: Sequence[float], values: Sequence[float], start: float, end: float) -> float:
    """Integral of the piecewise-linear signal through (times, values) over [start, end].

    Outside the sampled span the nearest value is held, so a window that begins before the first
    reading or ends after the last still gets a finite, sensible integral.
    """
    if len(times_s) != len(values) or not times_s:
        raise PipelineError("energy integration needs as many power readings as timestamps (>= 1)")
    if end < start:
        raise PipelineError(f"energy integration window ends ({end}) before it starts ({start})")
    points = sorted(zip(times_s, values, strict=True))

    def value_at(t: float) -> float:
        if t <= points[0][0]:
            return points[0][1]
        if t >= points[-1][0]:
            return points[-1][1]
        for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
            if t0 <= t <= t1:
                return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        raise AssertionError("unreachable")

    knots = [start] + [t for t, _ in points if start < t < end] + [end]
    return sum((b - a) * (value_at(a) + value_at(b)) / 2 for a, b in zip(knots, knots[1:], strict=False))


@dataclass
class PowerSummary:
    """What the report says about one benchmark window."""

    window_s: float
    samples: int
    inferences: int
    avg_power_w: float | None
    energy_j: float | None
    energy_per_inference_j: float | None
    rails_avg_w: dict[str, float]
    ram_used_mb_max: int
    ram_used_mb_before: int | None
    gpu_load_pct_avg: float | None
    temps_c_max: dict[str, float]
    throttled: bool
    throttle_reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_window(
    window: Window,
    inferences: int,
    gpu_max_freq_mhz: float | None = None,
    throttle_temp_c: float = DEFAULT_THROTTLE_TEMP_C,
) -> PowerSummary:
    """Average power, energy (J) and energy per inference over the window, peak RAM and throttling.

    `inferences` counts items (batch x iterations), so energy per inference compares across batch
    sizes. `gpu_max_freq_mhz` is the power mode's GPU cap (from the power state) when known.
    """
    if window.end is None:
        raise PipelineError("tegrastats window is still open")
    if not window.samples:
        raise PipelineError("tegrastats produced no reading during the benchmark window")
    inside = [s for s in window.samples if window.start <= s.t <= window.end] or window.samples

    def rail_energy(pick: Any) -> float | None:
        pairs = [(s.t, pick(s.sample)) for s in window.samples]
        pairs = [(t, v) for t, v in pairs if v is not None]
        if not pairs:
            return None
        joules_mw = integrate([t for t, _ in pairs], [v for _, v in pairs], window.start, window.end)
        return joules_mw / 1000.0

    seconds = window.end - window.start
    energy = rail_energy(lambda s: s.input_power_mw)
    rail_names = sorted({name for s in window.samples for name in s.sample.rails_mw})
    rails_avg = {}
    for name in rail_names:
        e = rail_energy(lambda s, n=name: s.rails_mw.get(n))
        if e is not None and seconds > 0:
            rails_avg[name] = e / seconds
    loads = [s.sample.gpu_load_pct for s in inside if s.sample.gpu_load_pct is not None]
    temps_max: dict[str, float] = {}
    for s in inside:
        for name, c in s.sample.temps_c.items():
            temps_max[name] = max(c, temps_max.get(name, c))
    before = [s for s in window.samples if s.t < window.start]
    reasons = _throttle_reasons(inside, temps_max, gpu_max_freq_mhz, throttle_temp_c)
    avg_power = energy / seconds if energy is not None and seconds > 0 else None
    return PowerSummary(
        window_s=seconds,
        samples=len(inside),
        inferences=inferences,
        avg_power_w=avg_power,
        energy_j=energy,
        energy_per_inference_j=energy / inferences if energy is not None and inferences > 0 else None,
        rails_avg_w=rails_avg,
        ram_used_mb_max=max(s.sample.ram_used_mb for s in inside),
        ram_used_mb_before=before[-1].sample.ram_used_mb if before else None,
        gpu_load_pct_avg=sum(loads) / len(loads) if loads else None,
        temps_c_max=temps_max,
        throttled=bool(reasons),
        throttle_reasons=reasons,
    )


def _throttle_reasons(
    samples: list[TimedSample],
    temps_max: dict[str, float],
    gpu_max_freq_mhz: float | None,
    throttle_temp_c: float,
) -> list[str]:
    reasons = [
        f"{name} reached {c:.1f} C (throttle threshold {throttle_temp_c:.0f} C)"
        for name, c in sorted(temps_max.items())
        if name not in _NOT_DIE_SENSORS and c >= throttle_temp_c
    ]
    busy_freqs = [
        max(s.sample.gpu_freq_mhz)
        for s in samples
        if s.sample.gpu_freq_mhz and (s.sample.gpu_load_pct or 0) >= BUSY_GPU_LOAD_PCT
    ]
    if busy_freqs:
        reference = gpu_max_freq_mhz or max(busy_freqs)
        lowest = min(busy_freqs)
        if lowest < reference * (1 - CLOCK_DROP_FRACTION):
            reasons.append(
                f"GPU clock fell to {lowest} MHz while busy (cap {reference:.0f} MHz): "
                "thermal, power or governor throttling"
            )
    return reasons
