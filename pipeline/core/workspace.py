"""The guard around every command that writes a model's artifacts.

- The output root is checked before any work: a root that is a file, or one that cannot be written,
  is a one-line error naming it (not a traceback half way through an export).
- One run per model at a time (a per-model lock); a second run says whom it waits for.
- Under the lock nobody else writes the model's folders, so temporaries left by a killed run
  (`.model.engine.*.tmp`, `.images.*`) are stale and removed.
- Scratch space (quantizer and exporter temporaries, including those of spawned interpreters, which
  inherit TMPDIR) lives under the output root, not the system temporary folder, and goes with the run;
  scratch of runs that died is removed by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import PipelineError
from .artifacts import Layout
from .locking import exclusive_lock
from .log import log

SCRATCH = ".scratch"
# What atomic_path / atomic_dir leave behind when a run is killed between create and rename.
_STALE = re.compile(r"^\..+\.(tmp|old)$|^\..+\.[A-Za-z0-9_]{8}$|^\.orin-trt-|^\..+\.tmp\.onnx(\.data)?$")


def check_root(root: Path, what: str = "output root") -> Path:
    """`root` exists (or can be made) as a writable folder, or a one-line error says what is wrong."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise PipelineError(f"{what} {root} is a file, not a folder (pass another --root)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PipelineError(f"{what} {root} cannot be created: {e.strerror}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise PipelineError(f"{what} {root} is not writable (read-only? pass another --root)")
    return root


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove what interrupted atomic writes left under `folder` (call only while holding its lock)."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.rglob(".*"), key=lambda q: len(q.parts), reverse=True):
        if p.name in (".stamps", ".lock", ".cache", SCRATCH) or not _STALE.match(p.name):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink(missing_ok=True)
        removed.append(p)
    if removed:
        log("cleanup", f"removed {len(removed)} temporary file(s) left by an interrupted run under {folder}")
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def scratch_dir(root: Path) -> Iterator[Path]:
    """A per-process scratch folder under `root`/.scratch, made the temporary folder for this run."""
    base = Path(root) / SCRATCH
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old.name.isdigit() and int(old.name) != os.getpid() and not _pid_alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    mine = base / str(os.getpid())
    mine.mkdir(exist_ok=True)
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(mine.resolve())
    tempfile.tempdir = str(mine.resolve())
    try:
        yield mine
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(mine, ignore_errors=True)


@contextlib.contextmanager
def model_workspace(root: Path, model: str, calib_root: Path | None = None) -> Iterator[Path]:
    """Check the roots, take the model's lock, clean what a killed run left, and give the run scratch.

    A run that fails before writing anything leaves no folders behind either (a typo in a source path
    does not create an empty engines/ tree)."""
    Layout(Path(root), model)  # refuses a model name that would write outside the root, before any mkdir
    created = [d for d in (Path(root), Path(root) / model) if not d.exists()]
    root = check_root(root)
    if calib_root is not None:
        check_root(calib_root, "calibration root")
    model_dir = root / model
    try:
        with exclusive_lock(model_dir / ".lock", what=f"model {model!r}", wait=True):
            remove_stale_temporaries(model_dir)
            if calib_root is not None:
                remove_stale_temporaries(Path(calib_root) / model)
            with scratch_dir(root):
                yield model_dir
    except BaseException:
        _remove_if_only_ours(created)
        raise


def _remove_if_only_ours(created: list[Path]) -> None:
    """Remove folders this run created if they hold nothing but the lock and scratch."""
    for folder in reversed(created):  # the model's folder first, then the root
        if not folder.is_dir():
            continue
        with contextlib.suppress(OSError):
            (folder / SCRATCH).rmdir()  # only when empty
        if [p.name for p in folder.iterdir()] == [".lock"]:
            (folder / ".lock").unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 10_000_000 else f"{n / 1e6:.1f} MB"


def require_free_disk(stage: str, needs: dict[Path, int]) -> None:
    """Refuse a stage before it starts when the disk cannot take what it will write: `needs` maps each
    folder to the bytes written under it; folders on one file system add up. One line names the stage,
    the need and what is free, instead of `No space left on device` half way through a multi-GB write."""
    by_device: dict[int, tuple[Path, Path, int]] = {}
    for folder, need in needs.items():
        existing = Path(folder)
        while not existing.exists():  # a folder the stage will create: its file system is its parent's
            existing = existing.parent
        dev = existing.stat().st_dev
        named, probe, total = by_device.get(dev, (Path(folder), existing, 0))
        by_device[dev] = (named, probe, total + need)
    for folder, probe, need in by_device.values():
        free = shutil.disk_usage(probe).free
        if free < need:
            raise PipelineError(f"{stage}: needs {_gb(need)} of free disk under {folder}, only {_gb(free)} free "
                                "(free some, or pass another --root)")
