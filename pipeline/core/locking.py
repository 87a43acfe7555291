"""One writer at a time: two runs on one model would do all the work twice and race for the result.

An advisory `flock` on a file: the kernel drops it when the holder exits, even on a crash or kill,
so a stale lock can never block the next run. The file keeps the holder's pid for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import PipelineError


def _holder(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str = "nightly", wait: bool = False) -> Iterator[None]:
    """Hold `path` exclusively. Held by another process: refuse naming it, or (`wait`) say so and wait."""
    from .log import log

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise PipelineError(f"another {what} is running (lock {path} held by pid {_holder(fd)})") from None
            log("lock", f"another run on {what} is in progress (pid {_holder(fd)}, lock {path}); waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
