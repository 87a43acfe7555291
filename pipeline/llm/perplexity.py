"""Perplexity: exp of the mean negative log-likelihood of each next token under the model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import PipelineError
from .kv_cache import prefill_feed
from .session import DecoderSession


def negative_log_likelihoods(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per position; logits [n, vocab], targets [n]."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z - top).sum(axis=-1)) + top[:, 0]
    return log_norm - z[np.arange(len(targets)), targets]


def perplexity_from_logits(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(math.exp(negative_log_likelihoods(logits, targets).mean()))


def text_perplexity(session: DecoderSession, token_ids: list[int], window: int) -> dict[str, Any]:
    """Non-overlapping windows of `window` tokens, each one prefill from an empty cache (the prefill
    profile's shapes); every token but a window's first is predicted from those before it."""
    if window < 2:
        raise PipelineError(f"perplexity window must be >= 2 tokens (got {window})")
    if len(token_ids) < 2:
        raise PipelineError("held-out text encodes to fewer than 2 tokens")
    nll: list[np.ndarray] = []
    for start in range(0, len(token_ids) - 1, window):
        chunk = np.array(token_ids[start : start + window])
        if len(chunk) < 2:
            break
        logits = session.step(prefill_feed(chunk[None], session.cache), "prefill")["logits"][0]
        nll.append(negative_log_likelihoods(logits[:-1], chunk[1:]))
    losses = np.concatenate(nll)
    return {"perplexity": float(math.exp(losses.mean())), "tokens_scored": int(losses.size),
            "windows": len(nll), "window": window}
