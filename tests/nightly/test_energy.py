"""Energy integration over a benchmark window, power and throttling from tegrastats samples."""

from __future__ import annotations

import pytest

from pipeline.errors import PipelineError
from pipeline.platform.telemetry.energy import integrate, summarize_window
from pipeline.platform.telemetry.tegrastats import TegraSample, TimedSample, Window


def _sample(vdd_in_mw: float, load: float = 90.0, freq: int = 612, tj: float = 55.0, ram: int = 3000) -> TegraSample:
    return TegraSample(ram, 7620, load, (freq,), {"VDD_IN": vdd_in_mw, "VDD_CPU_GPU_CV": vdd_in_mw / 2},
                       {"tj": tj, "pmic": 100.0})


def test_constant_power_integrates_to_power_times_time():
    assert integrate([0.0, 1.0, 2.0], [5.0, 5.0, 5.0], 0.0, 2.0) == pytest.approx(10.0)


def test_linear_ramp_integrates_exactly_and_the_window_cuts_between_samples():
    # P(t) = 10 t on [0, 4]; the integral over [1, 3] is 5 (9 - 1) = 40.
    assert integrate([0, 2, 4], [0, 20, 40], 1.0, 3.0) == pytest.approx(40.0)


def test_window_beyond_the_samples_holds_the_edge_values():
    # 2 W held before t=1, ramp 2->4 W over [1, 2], 4 W held after: 2 + 3 + 4 = 9 J over [0, 3].
    assert integrate([1.0, 2.0], [2.0, 4.0], 0.0, 3.0) == pytest.approx(9.0)


def test_unsorted_samples_are_ordered_by_time():
    assert integrate([2.0, 0.0, 1.0], [2.0, 0.0, 1.0], 0.0, 2.0) == pytest.approx(2.0)


def test_bad_integration_input_is_refused():
    with pytest.raises(PipelineError, match="as many power readings"):
        integrate([0.0, 1.0], [1.0], 0.0, 1.0)
    with pytest.raises(PipelineError, match="before it starts"):
        integrate([0.0], [1.0], 2.0, 1.0)


def test_window_summary_energy_per_inference_rails_ram_and_load():
    # 5 W then 7 W: a ramp between t=1 and t=2. Window [0.5, 2.5] of 2 s; 100 inferences.
    samples = [TimedSample(0.0, _sample(5000, ram=2000)), TimedSample(1.0, _sample(5000, ram=3100)),
               TimedSample(2.0, _sample(7000, ram=3300)), TimedSample(3.0, _sample(7000, ram=3200))]
    window = Window(start=0.5, end=2.5, samples=samples)
    s = summarize_window(window, inferences=100)
    energy = 0.5 * 5 + 1.0 * 6 + 0.5 * 7  # J
    assert s.energy_j == pytest.approx(energy)
    assert s.avg_power_w == pytest.approx(energy / 2)
    assert s.energy_per_inference_j == pytest.approx(energy / 100)
    assert s.rails_avg_w["VDD_CPU_GPU_CV"] == pytest.approx(energy / 2 / 2)
    assert s.ram_used_mb_max == 3300 and s.ram_used_mb_before == 2000
    assert s.samples == 2 and s.gpu_load_pct_avg == 90.0
    assert not s.throttled and s.throttle_reasons == []


def test_hot_junction_is_throttling_but_the_pmic_placeholder_is_not():
    samples = [TimedSample(t, _sample(9000, tj=tj)) for t, tj in ((0.0, 80.0), (1.0, 96.5), (2.0, 90.0))]
    s = summarize_window(Window(0.0, 2.0, samples), inferences=10)
    assert s.throttled
    assert len(s.throttle_reasons) == 1 and "tj reached 96.5 C" in s.throttle_reasons[0]


def test_gpu_clock_falling_while_busy_is_throttling():
    freqs = [612, 612, 420, 612]
    samples = [TimedSample(float(i), _sample(9000, freq=f)) for i, f in enumerate(freqs)]
    s = summarize_window(Window(0.0, 3.0, samples), inferences=10)
    assert s.throttled and "420 MHz" in s.throttle_reasons[0]
    # Against the power mode's cap: a steady 612 MHz under a 918 MHz cap is also a drop.
    steady = [TimedSample(float(i), _sample(9000, freq=612)) for i in range(3)]
    assert summarize_window(Window(0.0, 2.0, steady), 10, gpu_max_freq_mhz=918).throttled
    assert not summarize_window(Window(0.0, 2.0, steady), 10, gpu_max_freq_mhz=612).throttled


def test_idle_gpu_clock_changes_are_not_throttling():
    samples = [TimedSample(float(i), _sample(4000, load=3.0, freq=f)) for i, f in enumerate([612, 306, 612])]
    assert not summarize_window(Window(0.0, 2.0, samples), 10).throttled


def test_empty_or_open_window_is_an_error():
    with pytest.raises(PipelineError, match="no reading"):
        summarize_window(Window(0.0, 1.0, []), 1)
    with pytest.raises(PipelineError, match="still open"):
        summarize_window(Window(0.0, None, [TimedSample(0.0, _sample(1000))]), 1)
