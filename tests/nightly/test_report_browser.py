"""The HTML report over a history of recorded results, rendered by a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.artifacts import read_json
from pipeline.nightly.collect import device_metrics, report_metrics
from pipeline.nightly.history import History, ResultRecord
from pipeline.nightly.html import render_report, trend_figure
from pipeline.nightly.matrix import Policy
from pipeline.nightly.regression import compare
from pipeline.platform.telemetry.energy import summarize_window
from pipeline.platform.telemetry.layer_info import latency_stats, summarize_inspector, top_layers
from pipeline.platform.telemetry.tegrastats import TimedSample, Window, parse_line

DATA = Path(__file__).parent / "data"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
T0 = datetime(2026, 11, 10, 2, 0, tzinfo=timezone.utc)


# Orin Nano under load (henrygd/beszel agent/gpu_test.go, as in test_tegrastats.py).
BUSY_ORIN = (
    "11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) "
    "CPU [15%@729,11%@729,14%@729,13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] "
    "NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@53.968C soc2@52.437C soc0@50.75C "
    "gpu@53.343C tj@53.968C soc1@51.656C VDD_IN 12479mW/12479mW VDD_CPU_GPU_CV 4667mW/4667mW "
    "VDD_SOC 2817mW/2817mW"
)


def _device_profile(batch: int) -> dict:
    """The shape `profile_engine` returns, assembled from the pure parts it uses (the TensorRT calls
    themselves cannot run here): a tegrastats window, latency stats, inspector and layer summaries."""
    window = Window(0.0, 1.0, [TimedSample(t / 10, parse_line(BUSY_ORIN)) for t in range(-1, 12)])
    info = summarize_inspector({"Layers": [
        {"Name": "conv0", "LayerType": "CaskConvolution", "Outputs": [{"Format/Datatype": "Row major linear Int8"}]},
        {"Name": "Reformatting CopyNode for Output Tensor 0", "LayerType": "Reformat",
         "Outputs": [{"Format/Datatype": "Row major linear FP32"}]}]})
    return {
        "batch_sweep": [{
            "batch": batch,
            "latency": latency_stats([2.1, 2.2, 2.0, 2.3], batch),
            "cuda_graph": latency_stats([1.8, 1.9, 1.8, 1.9], batch),
            "split_ms": {"h2d": 0.12, "compute": 1.9, "d2h": 0.05},
            "power": summarize_window(window, inferences=400 * batch).to_dict(),
        }],
        "top_layers": top_layers({"conv0": [1.5, 1.6], "Reformatting CopyNode for Output Tensor 0": [0.2, 0.2]}),
        "layer_info": {k: v for k, v in info.items() if k != "layers"},
    }


def _night_records(night: int, slow: bool) -> list[ResultRecord]:
    """Two engines from the recorded reports; night-to-night jitter; the int8 one slows down on `slow`."""
    rng = np.random.default_rng(night)
    out = []
    for precision, factor in (("fp32", 1.0), ("int8", 1.6 if slow else 1.0)):
        metrics = report_metrics(read_json(DATA / f"report_{precision}.json"))
        for key in list(metrics):
            if key.startswith("latency."):
                metrics[key] *= factor * (1 + rng.normal(0, 0.01))
        ident = {"onnx_sha256": ("b" if slow else "a") * 64, "trt_version": "1.7.1.116"}
        state = {"power_state": {"nvpmodel_mode": "MAXN", "jetson_clocks": True}}
        out.append(ResultRecord("tiny-yolo", precision, 1, "ok", None, ident, metrics, state))
        if precision == "int8":  # a batch-4 point for the sweep, with a device profile attached
            batched = {k: v * (2.5 if k.endswith("_ms") else 1.6 if k.endswith("throughput_per_s") else 1)
                       for k, v in metrics.items()}
            device = _device_profile(4)
            out.append(ResultRecord("tiny-yolo", precision, 4, "ok", None, ident,
                                    {**batched, **device_metrics(device, 4)}, {**state, "device": device}))
    out.append(ResultRecord("broken", "fp16", 1, "failed", "PipelineError: unknown model 'broken'"))
    return out


def _render(tmp_path: Path) -> tuple[Path, list]:
    history = History(f"sqlite:///{tmp_path / 'history.sqlite'}")
    policy = Policy(baseline_runs=5, min_runs=3)
    nights = 8
    for night in range(nights):
        run_id = history.start_run(started_utc=T0 + timedelta(days=night), git_commit=f"{night:040x}",
                                   host="orin-devkit-1", power_mode="MAXN/clocks-on", trt_version="10.3.0.30",
                                   l4t="36.4.0")
        decisions = []
        for rec in _night_records(night, slow=night == nights - 1):
            decisions += compare(rec, history.good_results(rec.engine, run_id, policy.baseline_runs), policy)
            history.add_result(run_id, rec)
        history.finish_run(run_id, int(any(d.is_regression for d in decisions)))
    return render_report(history, run_id, decisions, tmp_path / "report"), decisions


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, Path]:
    tmp = tmp_path_factory.mktemp("report")
    page, decisions = _render(tmp)
    return page, decisions, tmp


def test_report_page_lists_regressions_failures_and_embeds_plots(rendered):
    page, decisions, tmp_path = rendered
    html = page.read_text()
    assert (tmp_path / "report" / "index.html").read_text() == html
    regressed = {d.metric for d in decisions if d.status == "regressed"}
    assert "latency.onnxrt-int8.p50_ms" in regressed
    assert 'class="verdict REGRESSION"' in html
    assert "broken/fp16/b1" in html and "unknown model &#39;broken&#39;" in html  # escaped
    assert "onnx_sha256 aaaaaaaaaaaa -&gt; bbbbbbbbbbbb" in html
    assert len(re.findall(r"<img class=\"trend\"", html)) == 3
    assert len(re.findall(r'<img class="tradeoff"', html)) == 1
    assert len(re.findall(r'<img class="sweep"', html)) == 1  # int8 ran at batch 1 and 4
    depth = html[html.index('<table id="depth">'):]
    assert "tiny-yolo/int8/b4" in depth and "0.12 / 1.9 / 0.05" in depth
    assert "<td>12.5</td>" in depth and "0.007799" in depth  # VDD_IN 12.479 W; 12.479 J / 1600 items
    assert "fp32 1, int8 1" in depth and "conv0 (89%)" in depth


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this host (apt-get install chromium)")
def test_report_renders_in_headless_chromium(rendered):
    page, _, tmp_path = rendered
    shot = tmp_path / "report.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1400,1800", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    # The browser parsed the page: the tables exist in its DOM with their rows.
    assert '<table id="regressions">' in dom and "latency.onnxrt-int8.p50_ms" in dom
    assert dom.count("<img class=\"trend\"") == 3

    import matplotlib.image

    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[:2] == (1800, 1400)
    # The red verdict badge (#d1242f) is painted near the top of the page.
    red = (np.abs(img[:200] - np.array([0xD1, 0x24, 0x2F]) / 255).max(axis=-1) < 0.05).sum()
    assert red > 500
    # The plots are painted: the trend line's blue (#1f6feb) shows up below the tables.
    blue = (np.abs(img[200:] - np.array([0x1F, 0x6F, 0xEB]) / 255).max(axis=-1) < 0.08).sum()
    assert blue > 200


def test_an_older_run_re_rendered_shows_its_own_morning(rendered):
    _, _, tmp = rendered
    history = History(f"sqlite:///{tmp / 'history.sqlite'}")
    page = render_report(history, 3, [], tmp / "rerender")  # no decisions passed: read from the history
    html = page.read_text()
    assert "orin-trt nightly #3" in html and 'class="verdict REGRESSION"' in html  # broken failed that night too
    assert "broken/fp16/b1: failed: PipelineError" in html
    # Its trends stop at that night: the embedded plot is the one drawn from runs 1-3 alone.
    fp32 = [r for r in history.all_results() if r.engine == "tiny-yolo/fp32/b1"]
    assert trend_figure("tiny-yolo/fp32/b1", [r for r in fp32 if r.run_id <= 3]) in html
    assert trend_figure("tiny-yolo/fp32/b1", fp32) not in html
