"""Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PipelineError


@dataclass(frozen=True)
class SamplingConfig:
    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0      # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise PipelineError(f"--temperature must be > 0 (got {self.temperature}); use --greedy instead")
        if self.top_k < 0:
            raise PipelineError(f"--top-k must be >= 0 (got {self.top_k})")
        if not 0 < self.top_p <= 1:
            raise PipelineError(f"--top-p must be in (0, 1] (got {self.top_p})")


def filtered_probabilities(logits: np.ndarray, cfg: SamplingConfig) -> np.ndarray:
    """Softmax of logits / temperature over one vocabulary row, with the top-k and top-p cuts applied
    (tokens outside get probability 0; the rest are renormalized)."""
    z = np.asarray(logits, dtype=np.float64) / cfg.temperature
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    keep = np.zeros(probs.shape, bool)
    k = cfg.top_k or probs.size
    # Nucleus: the smallest prefix whose mass reaches top_p (the token that crosses it is kept).
    cumulative = np.cumsum(probs[order])
    nucleus = int(np.searchsorted(cumulative, cfg.top_p - 1e-12) + 1)
    keep[order[: min(k, nucleus)]] = True
    probs = np.where(keep, probs, 0.0)
    return probs / probs.sum()


def next_tokens(logits: np.ndarray, cfg: SamplingConfig, rng: np.random.Generator) -> np.ndarray:
    """One token per row of `logits` [batch, vocab]."""
    if cfg.greedy:
        return np.argmax(logits, axis=-1).astype(np.int64)
    return np.array([rng.choice(row.size, p=filtered_probabilities(row, cfg)) for row in logits], np.int64)
