"""The matrix file, the history schema (SQLite through SQLAlchemy), the baseline and the noise-aware
regression decision, fed with metrics extracted from a recorded report.json."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.core.artifacts import read_json
from pipeline.errors import PipelineError
from pipeline.nightly.collect import identity, report_metrics
from pipeline.nightly.history import History, ResultRecord
from pipeline.nightly.matrix import Policy, Threshold, load_matrix, parse_matrix
from pipeline.nightly.regression import compare, direction, judge, robust_sigma

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
POLICY = Policy(baseline_runs=5, min_runs=3, default=Threshold(rel=0.05, k=4.0))


# ---- matrix ---------------------------------------------------------------------------------

def test_shipped_matrix_loads():
    m = load_matrix(REPO / "jetson" / "nightly.yaml")
    assert m.history_url == "sqlite:///engines/history.sqlite"
    assert {(e.model, e.precision) for e in m.entries} >= {("yolo", "int8"), ("yolo", "fp16")}
    assert all(e.batches == (1, 4) for e in m.entries)
    assert m.policy.threshold("latency.tensorrt.p99_ms").rel == 0.10
    assert m.policy.threshold("latency.tensorrt.p50_ms") == m.policy.default


@pytest.mark.parametrize("raw, message", [
    ({"models": []}, "non-empty 'models'"),
    ({"models": [{"precisions": ["fp16"]}]}, r"models\[0\]: expected a mapping with a 'model' key"),
    ({"models": [{"model": "yolo", "precisions": ["fp16"], "batches": [0]}]}, r"models\[0\]\.batches"),
    ({"models": [{"model": "yolo", "precisions": []}]}, "must name at least one precision"),
    ({"models": [{"model": "yolo", "precision": "fp16"}], "baseline": {"runs": 2, "min_runs": 3}}, "min_runs"),
    ({"models": [{"model": "yolo", "precision": "fp16"}], "thresholds": {"p50_ms": {"rel": 1, "x": 2}}},
     "thresholds.p50_ms"),
])
def test_bad_matrix_names_file_and_key(raw, message):
    with pytest.raises(PipelineError, match=message):
        parse_matrix(raw, Path("jetson/bad.yaml"))


def test_missing_and_unparsable_matrix(tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        load_matrix(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(PipelineError, match="bad.yaml: not valid YAML"):
        load_matrix(bad)


# ---- metrics from a recorded report.json ----------------------------------------------------

def test_report_metrics_from_a_recorded_report():
    m = report_metrics(read_json(DATA / "report_fp32.json"))
    assert m["latency.onnxrt-fp32.p50_ms"] == pytest.approx(1.4335, rel=1e-3)
    assert m["memory.engine_bytes"] == 13961644
    assert m["accuracy.onnxrt-fp32.output0.cosine"] == 1.0
    assert "accuracy.onnxrt-fp32.output0.snr_db" not in m  # "inf" is not a baseline value
    assert all(isinstance(v, float) for v in m.values())


# ---- history schema -------------------------------------------------------------------------

def _record(p50: float, cos: float = 0.999, status: str = "ok", onnx: str = "a" * 64, trt: str = "10.3.0.30",
            batch: int = 1) -> ResultRecord:
    return ResultRecord("yolo", "int8", batch, status, None if status == "ok" else "RuntimeError: boom",
                        {"onnx_sha256": onnx, "trt_version": trt, "l4t": "36.4.0", "power_mode": "MAXN/clocks-on"},
                        {"latency.tensorrt.p50_ms": p50, "accuracy.tensorrt.output0.cosine": cos,
                         "memory.engine_bytes": 16.5e6} if status == "ok" else {})


def _history(tmp_path: Path, nights: list[ResultRecord]) -> tuple[History, int]:
    h = History(f"sqlite:///{tmp_path / 'sub' / 'history.sqlite'}")
    for i, rec in enumerate(nights):
        run_id = h.start_run(started_utc=T0 + timedelta(days=i), git_commit=f"{i:040x}", l4t="36.4.0")
        h.add_result(run_id, rec)
        h.finish_run(run_id, 0, T0 + timedelta(days=i, hours=1))
    return h, h.start_run(started_utc=T0 + timedelta(days=len(nights)), git_commit="f" * 40)


def test_history_schema_and_round_trip(tmp_path):
    h, tonight = _history(tmp_path, [_record(5.0)])
    tables = sa.inspect(h.engine)
    assert set(tables.get_table_names()) == {"runs", "results", "metrics"}
    assert {"git_commit", "l4t", "trt_version", "power_mode", "started_utc"} <= {
        c["name"] for c in tables.get_columns("runs")}
    assert {"engine", "status", "onnx_sha256", "recipe_sha256", "trt_version", "l4t"} <= {
        c["name"] for c in tables.get_columns("results")}
    (stored,) = h.all_results()
    assert stored.engine == "yolo/int8/b1" and stored.status == "ok"
    assert stored.metrics["latency.tensorrt.p50_ms"] == 5.0
    assert stored.identity["trt_version"] == "10.3.0.30"
    assert stored.started_utc == T0 and stored.git_commit == f"{0:040x}"
    assert h.run(tonight)["exit_code"] is None


def test_bad_history_url_is_named():
    with pytest.raises(PipelineError, match="not a database URL"):
        History("not a url")


def test_baseline_takes_the_last_k_good_results_of_the_same_engine(tmp_path):
    nights = [_record(9.0)] + [_record(5.0 + i / 10) for i in range(6)] + [_record(0, status="failed"),
                                                                          _record(1.0, batch=4)]
    h, tonight = _history(tmp_path, nights)
    base = h.good_results("yolo/int8/b1", tonight, 5)
    assert [r.metrics["latency.tensorrt.p50_ms"] for r in base] == [5.5, 5.4, 5.3, 5.2, 5.1]  # newest first


# ---- regression decision --------------------------------------------------------------------

def test_directions():
    assert direction("latency.tensorrt.p50_ms") == -1
    assert direction("latency.tensorrt.throughput_per_s") == 0  # moves with the mean: recorded, not judged
    assert direction("accuracy.tensorrt.output0.cosine") == +1
    assert direction("power.energy_per_inference_j") == -1
    assert direction("memory.engine_bytes") == -1
    assert direction("power.gpu_load_pct") == 0
    assert direction("host.load_1m") == 0
    assert direction("accuracy.onnxrt-int8.task.map50_95_vs_fp32") == +1
    assert direction("accuracy.onnxrt-int8.task.class_score_max_abs_error") == -1
    assert direction("accuracy.onnxrt-int8.task.conf_threshold") == 0


def test_quiet_history_flags_a_change_past_the_relative_floor():
    history = [5.00, 5.01, 4.99, 5.00, 5.02]
    assert judge("e", "latency.x.p50_ms", 5.20, history, POLICY).status == "ok"          # +4 % < 5 %
    d = judge("e", "latency.x.p50_ms", 5.40, history, POLICY)
    assert d.status == "regressed" and d.baseline == 5.00 and d.threshold == pytest.approx(0.25)
    assert judge("e", "latency.x.p50_ms", 4.5, history, POLICY).status == "improved"


def test_noisy_history_widens_the_band():
    noisy = [5.0, 5.6, 4.5, 5.3, 4.8]
    sigma = robust_sigma(noisy)
    assert sigma == pytest.approx(1.4826 * 0.3)
    d = judge("e", "latency.x.p50_ms", 6.5, noisy, POLICY)  # +30 % but within 4 sigma (1.78 ms)
    assert d.status == "ok" and d.threshold == pytest.approx(4 * sigma)
    assert judge("e", "latency.x.p50_ms", 7.0, noisy, POLICY).status == "regressed"


def test_one_odd_night_in_the_baseline_does_not_move_the_median():
    history = [5.0, 5.0, 50.0, 5.0, 5.0]
    d = judge("e", "latency.x.p50_ms", 5.1, history, POLICY)
    assert d.baseline == 5.0 and d.status == "ok"


def test_accuracy_drop_regresses_and_higher_is_not_a_regression():
    history = [0.9990, 0.9991, 0.9990]
    assert judge("e", "accuracy.t.out.cosine", 0.90, history, POLICY).status == "regressed"
    assert judge("e", "accuracy.t.out.cosine", 0.9999, history, POLICY).status == "ok"


def test_too_short_a_history_gives_no_verdict():
    assert judge("e", "latency.x.p50_ms", 99.0, [5.0, 5.0], POLICY).status == "no_baseline"


def test_compare_names_engine_metric_and_what_changed(tmp_path):
    h, tonight = _history(tmp_path, [_record(5.0) for _ in range(5)])
    current = _record(6.0, onnx="b" * 64, trt="10.4.0.26")
    decisions = compare(current, h.good_results(current.engine, tonight, 5), POLICY, git_commit="f" * 40)
    flagged = [d for d in decisions if d.is_regression]
    assert [d.metric for d in flagged] == ["latency.tensorrt.p50_ms"]
    msg = flagged[0].message
    assert msg.startswith("REGRESSED yolo/int8/b1: latency.tensorrt.p50_ms 5 -> 6 (+20.0%")
    assert "onnx_sha256 aaaaaaaaaaaa -> bbbbbbbbbbbb" in msg and "trt_version 10.3.0.30 -> 10.4.0.26" in msg
    assert msg.endswith("git 0000000000..ffffffffff")  # the last good night's commit to tonight's


def test_a_busy_host_or_throttling_is_named_among_the_causes(tmp_path):
    quiet = [_record(5.0) for _ in range(3)]
    for rec in quiet:
        rec.metrics["host.load_1m"] = 0.4
    h, tonight = _history(tmp_path, quiet)
    busy = _record(9.0)
    busy.metrics.update({"host.load_1m": 3.7, "power.throttled": 1.0})
    (d,) = [d for d in compare(busy, h.good_results(busy.engine, tonight, 5), POLICY) if d.is_regression]
    assert d.changed == ["throttling during the benchmark window", "host load 3.7 (usually 0.4)"]
    calm = _record(9.0)
    calm.metrics["host.load_1m"] = 0.5
    (d,) = [d for d in compare(calm, h.good_results(calm.engine, tonight, 5), POLICY) if d.is_regression]
    assert d.changed == []


def test_a_failed_result_is_flagged_with_its_error(tmp_path):
    h, tonight = _history(tmp_path, [_record(5.0) for _ in range(3)])
    (d,) = compare(_record(0, status="failed"), h.good_results("yolo/int8/b1", tonight, 5), POLICY)
    assert d.is_regression and d.status == "failed" and "RuntimeError: boom" in d.message


def test_identity_hashes_the_recipe_and_reads_the_manifest():
    manifest = {"onnx": {"sha256": "1" * 64}, "engine": {"sha256": "2" * 64},
                "builder": {"version": "10.3.0.30"}, "system": {"l4t": "36.4.0"}}
    ident = identity({"name": "yolo"}, manifest, None, "MAXN/clocks-on")
    assert ident["onnx_sha256"] == "1" * 64 and ident["l4t"] == "36.4.0" and ident["trt_version"] == "10.3.0.30"
    assert ident["recipe_sha256"] != identity({"name": "yolo", "x": 1}, manifest, None, None)["recipe_sha256"]


@pytest.fixture(scope="module")
def postgres_url():  # noqa: ANN201 - a generator fixture
    """ORIN_TRT_TEST_POSTGRES_URL (what .ci/run exports), else a throwaway server of our own where PostgreSQL's
    binaries are installed (tests/pg_server.py)."""
    if os.environ.get("ORIN_TRT_TEST_POSTGRES_URL"):
        yield os.environ["ORIN_TRT_TEST_POSTGRES_URL"]
        return
    from tests.pg_server import pg_bin, start, stop

    if pg_bin() is None:
        pytest.skip("no PostgreSQL here: apt-get install postgresql (or set ORIN_TRT_TEST_POSTGRES_URL)")
    import tempfile

    # Not under pytest's 0700 tmp root: as root, the server runs as `postgres`, which must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="orin-trt-pg-"))
    url = start(folder)
    try:
        yield url
    finally:
        stop(folder)


def test_postgres_history_round_trip(postgres_url: str):
    h = History(postgres_url)
    with h.engine.begin() as conn:  # a scratch database: start from empty tables
        conn.execute(sa.text("TRUNCATE runs, results, metrics RESTART IDENTITY CASCADE"))
    for night, p50 in enumerate([5.0, 5.1, 5.2]):
        run_id = h.start_run(started_utc=T0 + timedelta(days=night), git_commit="0" * 40)
        h.add_result(run_id, _record(p50))
        h.finish_run(run_id, 0)
    tonight = h.start_run(started_utc=T0 + timedelta(days=3))
    base = h.good_results("yolo/int8/b1", tonight, 5)
    assert [r.metrics["latency.tensorrt.p50_ms"] for r in base] == [5.2, 5.1, 5.0]
    assert base[0].started_utc == T0 + timedelta(days=2)
    assert h.run(tonight)["started_utc"] == T0 + timedelta(days=3)
