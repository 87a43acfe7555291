"""Feeding calibration samples to the quantization tools: streamed one by one where a tool takes a reader
(ModelOpt, ONNX Runtime), stacked into batched arrays only where a tool needs them (a few samples)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Feed = dict[str, np.ndarray]


def streaming_reader(feeds: Sequence[Feed]) -> Any:
    """An ONNX Runtime CalibrationDataReader over `feeds` (ModelOpt takes the same interface): one sample
    is made and held at a time, so calibration memory does not grow with the number of samples."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.set_range(0, len(feeds))

        def __len__(self) -> int:
            return len(feeds)

        def set_range(self, start_index: int, end_index: int) -> None:  # ONNX Runtime's strided calibration
            self.it = iter(feeds[start_index:end_index])

        def get_next(self) -> Feed | None:
            return next(self.it, None)

        def get_first(self) -> Feed:  # ModelOpt's test run
            return feeds[0]

        def rewind(self) -> None:  # ModelOpt reads the data more than once
            self.set_range(0, len(feeds))

    return Reader()


def stack(feeds: Sequence[Feed]) -> dict[str, np.ndarray]:
    """Concatenate samples along the batch axis, input by input."""
    if not len(feeds):
        raise ValueError("no calibration samples")
    samples = list(feeds)
    return {name: np.concatenate([f[name] for f in samples], axis=0) for name in samples[0]}


def shapes_spec(feed: Feed) -> str:
    """ModelOpt's `calibration_shapes` for one sample: `name:1x3x640x640,other:...`."""
    return ",".join(f"{n}:{'x'.join(str(d) for d in a.shape)}" for n, a in feed.items())
