"""Edge-LLM's own Python environment and the one way its tools are run.

The venv is `.venv-edgellm/` in the checkout (`ORIN_TRT_EDGELLM_VENV` moves it). It is created by
`make setup-edgellm` (scripts/setup-edgellm.sh), or on first use. Tools run as subprocesses, offline,
with their output passed through as it comes; a failure is one line: the tool, its exit status and its
last line of output.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

from ..core.log import log
from ..errors import PipelineError

STAGE = "edgellm"
DIST = "tensorrt-edgellm"
SETUP_SCRIPT = Path("scripts") / "setup-edgellm.sh"
# A venv is complete only when the setup script got to its end.
MARKER = ".installed"


def checkout() -> Path:
    return Path(__file__).resolve().parents[2]


def venv_dir() -> Path:
    return Path(os.environ.get("ORIN_TRT_EDGELLM_VENV") or checkout() / ".venv-edgellm")


def tool(name: str) -> Path:
    return venv_dir() / "bin" / name


def installed_version() -> str | None:
    """The tensorrt-edgellm version in the venv, read from its metadata (it is not importable here)."""
    for info in sorted((venv_dir() / "lib").glob("python*/site-packages/tensorrt_edgellm-*.dist-info")):
        return info.name.removeprefix("tensorrt_edgellm-").removesuffix(".dist-info")
    return None


def ensure_venv(create: bool = True) -> Path:
    """The venv, created through scripts/setup-edgellm.sh when absent (about 2 minutes on a cold pip cache)."""
    venv = venv_dir()
    if (venv / MARKER).exists() and tool("tensorrt-edgellm-export").exists():
        return venv
    script = checkout() / SETUP_SCRIPT
    if not create or not script.exists():
        raise PipelineError(f"{venv}: no TensorRT Edge-LLM environment; create it with `make setup-edgellm`")
    log(STAGE, f"{venv} is absent: creating it ({SETUP_SCRIPT}, as `make setup-edgellm` does)")
    run_tool(["bash", str(script)], what=f"creating {venv} ({SETUP_SCRIPT})",
             env={"EDGELLM_VENV": str(venv)}, cwd=checkout())
    if not (venv / MARKER).exists():
        raise PipelineError(f"{venv}: {SETUP_SCRIPT} ended without completing the environment")
    return venv


def tool_env(extra: dict[str, str] | None = None, offline: bool = True) -> dict[str, str]:
    """Without our PYTHONPATH (the venv has its own packages), and offline: no hub look-ups."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    if offline:
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update(extra or {})
    return env


def run_tool(cmd: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None,
             offline: bool = True) -> None:
    """Run `cmd`, passing its output to stderr line by line; a non-zero exit is one PipelineError line."""
    last: collections.deque[str] = collections.deque(maxlen=1)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                env=tool_env(env, offline), cwd=cwd)
    except OSError as e:
        raise PipelineError(f"{what}: cannot start {cmd[0]} ({e.strerror})") from None
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            if line.strip():
                last.append(line.strip())
    if proc.returncode != 0:
        tail = last[0] if last else "no output"
        raise PipelineError(f"{what}: {Path(cmd[0]).name} failed (exit {proc.returncode}): {tail}")
