"""Stacking per-sample feeds into the batched arrays quantization tools take."""

from __future__ import annotations

import numpy as np

Feed = dict[str, np.ndarray]


def stack(feeds: list[Feed]) -> dict[str, np.ndarray]:
    """Concatenate samples along the batch axis, input by input."""
    if not feeds:
        raise ValueError("no calibration samples")
    return {name: np.concatenate([f[name] for f in feeds], axis=0) for name in feeds[0]}


def shapes_spec(feed: Feed) -> str:
    """ModelOpt's `calibration_shapes` for one sample: `name:1x3x640x640,other:...`."""
    return ",".join(f"{n}:{'x'.join(str(d) for d in a.shape)}" for n, a in feed.items())
