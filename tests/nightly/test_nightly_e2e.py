"""The nightly end to end on this host: a real tiny YOLO built with the TensorRT-RTX builder and
profiled by the ONNX Runtime runners on the CPU, plus a deliberately broken model in the matrix.
TensorRT profiling depth and tegrastats are skipped here (no CUDA device, no Jetson); the run
records why."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.core.locking import exclusive_lock
from pipeline.errors import PipelineError
from pipeline.nightly.history import History
from pipeline.nightly.matrix import load_matrix
from pipeline.nightly.runner import run_nightly

DATA = Path(__file__).parent / "data"


def _matrix(tmp: Path, models: list[dict], min_runs: int = 3) -> Path:
    path = tmp / f"nightly-{len(models)}.yaml"
    path.write_text(yaml.safe_dump({
        "history": f"sqlite:///{tmp / 'history.sqlite'}",
        "root": str(tmp / "engines"),
        "report": str(tmp / "report"),
        "lock": str(tmp / "nightly.lock"),
        "models": models,
        "baseline": {"runs": 5, "min_runs": min_runs},
        # Two runs on a shared 2-core CI box: only a gross change may count here.
        "thresholds": {"default": {"rel": 10.0, "k": 4}},
    }))
    return path


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("nightly")
    broken = yaml.safe_load((DATA / "tiny_yolo.yaml").read_text())
    broken["name"] = "broken-yolo"
    broken["source"]["config"] = "yolo-that-does-not-exist.yaml"
    (tmp / "broken_yolo.yaml").write_text(yaml.safe_dump(broken))
    tiny = {"model": str(DATA / "tiny_yolo.yaml"), "precisions": ["fp32"], "batches": [1, 2]}
    first = _matrix(tmp, [tiny, {"model": str(tmp / "broken_yolo.yaml"), "precision": "fp32"}])
    exit_first = main(["nightly", "--matrix", str(first), "--calib-root", str(tmp / "calib")])
    second = run_nightly(load_matrix(_matrix(tmp, [tiny], min_runs=1)), calib_root=tmp / "calib")
    return {"tmp": tmp, "exit_first": exit_first, "second": second,
            "history": History(f"sqlite:///{tmp / 'history.sqlite'}")}


@pytest.mark.slow
def test_a_failing_model_is_a_result_and_the_others_still_run(nightly):
    assert nightly["exit_first"] == 1
    first = nightly["history"].run_results(1)
    by_engine = {r.engine: r for r in first}
    assert set(by_engine) == {"tiny-yolo/fp32/b1", "tiny-yolo/fp32/b2", "broken-yolo/fp32/b1"}
    broken = by_engine["broken-yolo/fp32/b1"]
    assert broken.status == "failed" and "yolo-that-does-not-exist.yaml" in broken.error
    for batch in (1, 2):
        ok = by_engine[f"tiny-yolo/fp32/b{batch}"]
        assert ok.status == "ok"
        assert ok.metrics["latency.onnxrt-fp32.p50_ms"] > 0
        assert ok.metrics["memory.engine_bytes"] > 1e6
        assert ok.metrics["host.load_1m"] >= 0  # context for a noisy night, never judged
        assert ok.metrics["accuracy.onnxrt-fp32.output0.cosine"] == pytest.approx(1.0)
        assert len(ok.identity["onnx_sha256"]) == 64 and ok.identity["trt_version"]
        assert "TensorRT profiling depth skipped" in ok.details["device"]["skipped"]
        assert ok.details["power_state"]["nvpmodel_mode"] is None  # not a Jetson: recorded as unknown
    run = nightly["history"].run(1)
    assert run["exit_code"] == 1 and len(run["git_commit"] or "x" * 40) == 40


@pytest.mark.slow
def test_second_night_compares_with_the_first_and_passes(nightly):
    second = nightly["second"]
    assert second.exit_code == 0
    judged = [d for d in second.decisions if d.metric == "latency.onnxrt-fp32.p50_ms"]
    assert len(judged) == 2 and all(d.status == "ok" and d.runs == 1 for d in judged)
    # Same ONNX, recipe, engine and TensorRT (the git range and host load may differ: the tree and
    # the machine are shared).
    identity = ("onnx_sha256", "recipe_sha256", "engine_sha256", "trt_version", "l4t", "power_mode")
    assert not [c for d in judged for c in d.changed if c.startswith(identity)]
    html = second.report.read_text()
    assert 'class="verdict OK"' in html and "tiny-yolo/fp32/b2" in html


def _hold_lock(path: str, ready, release) -> None:
    with exclusive_lock(Path(path)):
        ready.set()
        release.wait(30)


def test_two_nightlies_never_overlap(tmp_path):
    lock = tmp_path / "nightly.lock"
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(lock), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        matrix = load_matrix(_matrix(tmp_path, [{"model": "yolo", "precision": "fp32"}]))
        with pytest.raises(PipelineError, match=rf"another nightly is running \(lock .* held by pid {holder.pid}\)"):
            run_nightly(matrix)
    finally:
        release.set()
        holder.join(30)
    with exclusive_lock(lock):  # released when its holder exits; now it names this process
        assert lock.read_text().strip() == str(os.getpid())


def test_an_unknown_precision_in_the_matrix_is_a_usage_error(tmp_path, capsys):
    from pipeline.cli import main

    path = _matrix(tmp_path, [{"model": "yolo", "precisions": ["fp32", "int3"]}])
    assert main(["nightly", "--matrix", str(path)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (f"orin-trt: error: {path}: models[0]: unknown precision 'int3' "
                    "(choose from fp32, fp16, int8, int4-awq)")
