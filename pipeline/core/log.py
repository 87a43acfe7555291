"""Plain progress lines on stderr, one per event, prefixed with the stage; and tqdm for long loops."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def log(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


def warn(stage: str, message: str) -> None:
    print(f"[{stage}] WARNING: {message}", file=sys.stderr, flush=True)


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)
