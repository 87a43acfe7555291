"""CI runs what it claims: .ci/run installs the tools the browser / PostgreSQL / systemd tests need, starts a
throwaway PostgreSQL and fails on any skip that is not an engine execution needing a Jetson."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="2">
<testcase classname="tests.a" name="test_ok" time="0.1"/>
<testcase classname="tests.b" name="test_engine" time="0.0"><skipped message="needs a Jetson: no CUDA device"/></testcase>
{extra}</testsuite></testsuites>"""


def _check(tmp_path: Path, extra: str = "") -> subprocess.CompletedProcess:
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT.format(extra=extra))
    return subprocess.run([sys.executable, str(REPO / ".ci" / "check_skips.py"), str(report)],
                          capture_output=True, text=True, timeout=60)


def test_only_jetson_skips_pass(tmp_path: Path) -> None:
    ok = _check(tmp_path)
    assert ok.returncode == 0
    assert "ci: 2 tests, 0 failed, 1 skipped (1 need a Jetson, 0 for other reasons)" in ok.stdout
    bad = _check(tmp_path, '<testcase classname="tests.c" name="test_browser" time="0"><skipped '
                           'message="no chromium on this host"/></testcase>')
    assert bad.returncode == 1 and "FAIL skipped tests.c::test_browser: no chromium" in bad.stdout


def test_ci_run_installs_starts_and_checks() -> None:
    run = (REPO / ".ci" / "run").read_text()
    assert run.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in run
    order = ["bash .ci/system-packages.sh", "make setup", "make setup-edgellm", "tests/pg_server.py start", "export ORIN_TRT_TEST_POSTGRES_URL",
             "make test", ".ci/check_skips.py", "make cpp"]
    positions = [run.index(step) for step in order]
    assert positions == sorted(positions), order
    assert "trap '.venv/bin/python tests/pg_server.py stop" in run
    packages = (REPO / ".ci" / "system-packages.sh").read_text()
    for pkg in ("chromium", "postgresql", "systemd"):
        assert f"need+=({pkg}" in packages
    for script in (".ci/run", ".ci/system-packages.sh"):
        subprocess.run(["bash", "-n", str(REPO / script)], check=True)
