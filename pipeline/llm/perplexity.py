"""Perplexity: exp of the mean negative log-likelihood of each next token under the model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import PipelineError
from .session import DecodeSession


def negative_log_likelihoods(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per position; logits [n, vocab], targets [n]."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z - top).sum(axis=-1)) + top[:, 0]
    return log_norm - z[np.arange(len(targets)), targets]


def perplexity_from_logits(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(math.exp(negative_log_likelihoods(logits, targets).mean()))


def _window_nll(session: DecodeSession, chunk: np.ndarray, max_prefill: int | None) -> np.ndarray:
    """NLL of every token of `chunk` but the first. A window longer than the prefill profile is chunked:
    its first `max_prefill` tokens in one prefill (logits of every position), then one decode step per
    further token, so the window is scored whole, as one long prefill would score it."""
    head = len(chunk) if max_prefill is None else min(len(chunk), max_prefill)
    logits = [session.prefill(chunk[None, :head], np.arange(head, dtype=np.int64)[None])[0]]  # predict 1..head
    for pos in range(head, len(chunk) - 1):  # feeding token `pos` predicts token `pos + 1`
        logits.append(session.decode(chunk[pos : pos + 1])[0])
    return negative_log_likelihoods(np.concatenate(logits)[: len(chunk) - 1], chunk[1:])


def text_perplexity(session: DecodeSession, token_ids: list[int], window: int, max_prefill: int | None = None,
                    max_context: int | None = None, drop_tail: bool = True) -> dict[str, Any]:
    """The standard protocol: non-overlapping windows of `window` tokens cut from one stream of token ids
    (encoded without special tokens), each scored from an empty cache; every token but a window's first
    is predicted from those before it in its window. The tail shorter than a window is dropped (the
    default, so every scored token had the same context budget) or scored as a shorter window.

    A window longer than the prefill profile (`max_prefill`) is chunked into a prefill and decode steps,
    never silently cut; one longer than the decode profile's context (`max_context`) is refused."""
    if window < 2:
        raise PipelineError(f"perplexity window must be >= 2 tokens (got {window})")
    if max_context is not None and window > max_context:
        raise PipelineError(f"perplexity window of {window} tokens is longer than the engine's context of "
                            f"{max_context} tokens (the decode profile's attention_mask max); use a window <= "
                            f"{max_context}")
    if len(token_ids) < 2:
        raise PipelineError("held-out text encodes to fewer than 2 tokens")
    full = len(token_ids) // window
    if drop_tail and full == 0:
        raise PipelineError(f"held-out text has {len(token_ids)} tokens, fewer than one perplexity window of "
                            f"{window}")
    ends = [(i * window, (i + 1) * window) for i in range(full)]
    tail = len(token_ids) - full * window
    if not drop_tail and tail >= 2:
        ends.append((full * window, len(token_ids)))
    ids = np.asarray(token_ids, dtype=np.int64)
    losses = np.concatenate([_window_nll(session, ids[a:b], max_prefill) for a, b in ends])
    return {"perplexity": float(math.exp(losses.mean())), "tokens_scored": int(losses.size),
            "windows": len(ends), "window": window, "tail_dropped": tail if drop_tail else (tail if tail < 2 else 0),
            "chunked": max_prefill is not None and window > max_prefill}
