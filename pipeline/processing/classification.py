"""Classification post-processing: top-k classes of logits with softmax probabilities.

The C++ library's `orin_trt::topk` implements the same rule (checked with the shared golden vectors):
highest logits first, equal logits keep the lower class index first, probabilities are the softmax over
all classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopK:
    indices: np.ndarray  # [k] int64, best first
    probabilities: np.ndarray  # [k] float32, softmax over all classes
    logits: np.ndarray  # [k] float32

    def labeled(self, class_names: list[str] | None) -> list[dict[str, object]]:
        names = class_names or []
        return [
            {"class_id": int(i), "label": names[i] if i < len(names) else str(int(i)),
             "probability": float(p), "logit": float(v)}
            for i, p, v in zip(self.indices, self.probabilities, self.logits, strict=True)
        ]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 with the maximum subtracted (no overflow)."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def topk_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest logits along the last axis, best first; ties keep the lower index."""
    return np.argsort(-np.asarray(logits), axis=-1, kind="stable")[..., : max(k, 0)]


def topk(logits: np.ndarray, k: int = 5) -> TopK:
    """The `k` best classes of one image's logits (shape [classes] or [1, classes])."""
    x = np.asarray(logits, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise ValueError("topk: empty logits")
    order = topk_indices(x, k)
    probs = softmax(x)
    return TopK(order.astype(np.int64), probs[order].astype(np.float32), x[order])
