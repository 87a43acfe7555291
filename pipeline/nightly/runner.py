"""Run the nightly: build and profile every engine in the matrix, record, compare, report.

A model that fails (recipe, export, build or profile) is a result too: it is recorded as failed
with its error and the run goes on with the next one. The exit code is 1 when anything regressed
or failed, so a timer unit or CI job turns red; 0 otherwise.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.artifacts import Layout, read_json
from ..core.locking import exclusive_lock
from ..core.log import log, warn
from ..core.manifest import read_manifest
from ..core.workspace import scratch_dir
from ..errors import PipelineError
from ..recipe.loader import load_recipe
from .collect import device_metrics, identity, report_metrics
from .history import History, ResultRecord
from .html import render_report
from .matrix import Entry, Matrix
from .regression import Decision, compare

STAGE = "nightly"


@dataclass
class NightlyOutcome:
    run_id: int
    exit_code: int
    records: list[ResultRecord]
    decisions: list[Decision]
    report: Path


def _git_commit(run: Callable[[list[str]], str]) -> str | None:
    try:
        return run(["git", "rev-parse", "HEAD"]).strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _trt_version() -> str | None:
    try:
        from ..trt.backend import select_backend

        backend = select_backend()
        return f"{backend.name} {backend.version}"
    except PipelineError:
        return None


def _device_profile(engine: Path, batches: tuple[int, ...], matrix: Matrix,
                    gpu_max_mhz: float | None) -> dict[str, Any]:
    """TensorRT depth (the batch sweep) + tegrastats where both exist; else why it was skipped.

    A failure here is recorded beside the profile's numbers rather than failing the result: the
    ONNX Runtime / Polygraphy profile already measured the engine."""
    from ..runners import tensorrt

    try:
        blocker = tensorrt.blocker(None)
        if blocker:
            return {"skipped": f"TensorRT profiling depth skipped: {blocker}"}
        from ..platform.telemetry.trt_profiling import profile_engine

        if shutil.which("tegrastats") is None:
            return {"tegrastats": "not found on PATH",
                    **profile_engine(engine, batches, gpu_max_freq_mhz=gpu_max_mhz)}
        from ..platform.telemetry.tegrastats import TegrastatsSampler

        with TegrastatsSampler(matrix.tegrastats_interval_ms) as sampler:
            return profile_engine(engine, batches, sampler=sampler, gpu_max_freq_mhz=gpu_max_mhz)
    except Exception as e:
        warn(STAGE, f"{engine}: TensorRT profiling depth failed: {e}")
        return {"skipped": f"TensorRT profiling depth failed: {e.__class__.__name__}: {e}"}


def profile_entry(entry: Entry, matrix: Matrix, calib_root: Path, power_state: Any,
                  force_build: bool = False) -> list[ResultRecord]:
    """Every batch size of one (model, precision); never raises: failures become failed records."""
    from ..stages.flow import run_engine, run_profile
    from ..stages.plan import resolve_plan

    # The history keys results by the recipe's name; a recipe that does not even load is keyed by
    # its file's stem, so `models/foo.yaml` and the built-in `foo` land on the same trend.
    name = Path(entry.model).stem if entry.model.endswith((".yaml", ".yml")) else entry.model

    def failed(batch: int, error: BaseException, ident: dict[str, Any] | None = None,
               metrics: dict[str, float] | None = None) -> ResultRecord:
        message = f"{error.__class__.__name__}: {error}".splitlines()[0]
        warn(STAGE, f"{name}/{entry.precision}/b{batch} failed: {message}")
        return ResultRecord(name, entry.precision, batch, "failed", message, ident or {}, metrics or {},
                            {"power_state": power_state.to_dict()})

    log(STAGE, f"{entry.model} {entry.precision}: build")
    try:
        recipe = load_recipe(entry.model)
        name = recipe.name
        precision = recipe.resolve_precision(entry.precision)
        run_engine(recipe, resolve_plan(recipe, matrix.target, precision), matrix.root, calib_root, force_build)
        layout = Layout(matrix.root, recipe.name)
        ident = identity(recipe.raw, read_manifest(layout.manifest(precision)), power_state.l4t,
                         power_state.label if power_state.nvpmodel_mode else None)
    except Exception as e:  # any failure of this model is its result; the next model still runs
        return [failed(b, e) for b in entry.batches]
    records = []
    gpu_max = power_state.clocks_mhz.get("gpu_max")
    for batch in entry.batches:
        log(STAGE, f"{recipe.name} {precision} batch {batch}: profile")
        started = time.time()
        # Other work on the box slows every CPU runner: recorded (not judged) so a slow night can be
        # told apart from a slower engine.
        load = {"host.load_1m": os.getloadavg()[0]}
        try:
            run_profile(recipe, precision, matrix.root, force=True, batch=batch)
            report = read_json(layout.report_json(precision))
        except Exception as e:
            fresh = layout.report_json(precision)
            # A failed accuracy gate still wrote tonight's report: keep its numbers beside the failure.
            metrics = report_metrics(read_json(fresh)) if fresh.exists() and fresh.stat().st_mtime >= started else {}
            records.append(failed(batch, e, ident, metrics))
            continue
        records.append(ResultRecord(recipe.name, precision, batch, "ok", None, ident, {**report_metrics(report), **load}, {
            "power_state": power_state.to_dict(),
            "runners": report.get("runners"),
            "weights": report.get("weights"),
        }))
    ok = [r for r in records if r.status == "ok"]
    if ok:
        # One sweep over every batch size: the engine is deserialized and inspected once.
        device = _device_profile(layout.engine(precision), tuple(r.batch for r in ok), matrix, gpu_max)
        for record in ok:
            record.metrics.update(device_metrics(device, record.batch))
            record.details["device"] = {k: v for k, v in device.items() if k != "layers"}
    return records


def run_nightly(matrix: Matrix, calib_root: Path = Path("calib"), force_build: bool = False,
                history_url: str | None = None, system_root: Path = Path("/"),
                run: Callable[[list[str]], str] | None = None) -> NightlyOutcome:
    from ..platform.telemetry.power_state import record_power_state, run_command

    run = run or run_command
    with exclusive_lock(matrix.lock_path):
        history = History(history_url or matrix.history_url)
        state = record_power_state(system_root, run)
        for note in state.notes:
            log(STAGE, f"power state: {note}")
        commit = _git_commit(run)
        run_id = history.start_run(
            git_commit=commit, l4t=state.l4t, trt_version=_trt_version(),
            power_mode=state.label if state.nvpmodel_mode else None, host=platform.node(),
            matrix=str(matrix.path),
        )
        records: list[ResultRecord] = []
        decisions = []
        for entry in matrix.entries:
            # Scratch under the root (a killed night leaves nothing in /tmp; the next run removes it).
            with scratch_dir(matrix.root):
                entry_records = profile_entry(entry, matrix, calib_root, state, force_build)
            # Stored as each model finishes, so a night cut short still keeps what it measured;
            # baselines come from earlier runs only, so tonight never counts in its own baseline.
            for record in entry_records:
                baseline = history.good_results(record.engine, run_id, matrix.policy.baseline_runs)
                decisions.extend(compare(record, baseline, matrix.policy, commit))
                history.add_result(run_id, record)
                records.append(record)
        exit_code = 1 if any(d.is_regression for d in decisions) else 0
        history.finish_run(run_id, exit_code)
        report = render_report(history, run_id, decisions, matrix.report_dir)
    for d in decisions:
        if d.is_regression:
            warn(STAGE, d.message)
    log(STAGE, f"run {run_id}: {len(records)} result(s), "
               f"{sum(d.is_regression for d in decisions)} regression(s)/failure(s); report {report}")
    return NightlyOutcome(run_id, exit_code, records, decisions, report)
