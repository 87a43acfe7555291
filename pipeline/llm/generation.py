"""The generation loop: prefill the prompt once, then one decode step per new token; the session keeps
the cache (see session.py). Runner-agnostic."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import PipelineError
from .sampling import SamplingConfig, next_tokens
from .session import DecodeSession

GREEDY = SamplingConfig()


@dataclass
class Generation:
    prompt_ids: list[int]
    new_ids: list[int] = field(default_factory=list)
    ttft_s: float = 0.0                                    # prompt in -> first new token chosen
    decode_s: list[float] = field(default_factory=list)    # one per decode step
    stop_reason: str = "max_new_tokens"

    @property
    def decode_tokens_per_s(self) -> float | None:
        total = sum(self.decode_s)
        return len(self.decode_s) / total if total > 0 else None


def generate(
    session: DecodeSession,
    prompt_ids: list[int],
    max_new_tokens: int,
    sampling: SamplingConfig = GREEDY,
    eos_id: int | None = None,
    max_context: int | None = None,
    on_token: Callable[[int], None] | None = None,
    max_prompt: int | None = None,
) -> Generation:
    """Batch of one. Stops at `eos_id`, after `max_new_tokens`, or when the context is full (a decode
    step over `length` cached tokens needs an attention mask of `length + 1` <= `max_context`)."""
    if not prompt_ids:
        raise PipelineError("the prompt encodes to no tokens")
    if max_prompt is not None and len(prompt_ids) > max_prompt:
        raise PipelineError(f"prompt of {len(prompt_ids)} tokens is longer than the prefill profile's "
                            f"{max_prompt} tokens")
    if max_context is not None and len(prompt_ids) >= max_context:
        raise PipelineError(f"prompt of {len(prompt_ids)} tokens does not fit the context of {max_context}")
    rng = np.random.default_rng(sampling.seed)
    result = Generation(list(prompt_ids))
    t0 = time.perf_counter()
    logits = session.prefill(np.array([prompt_ids]))
    token = int(next_tokens(logits[:, -1], sampling, rng)[0])
    result.ttft_s = time.perf_counter() - t0
    length = len(prompt_ids)
    while True:
        result.new_ids.append(token)
        if on_token is not None:
            on_token(token)
        if eos_id is not None and token == eos_id:
            result.stop_reason = "eos"
            break
        if len(result.new_ids) >= max_new_tokens:
            break
        if max_context is not None and length + 1 > max_context:
            result.stop_reason = "context_full"
            break
        t0 = time.perf_counter()
        logits = session.decode(np.array([token]))
        token = int(next_tokens(logits[:, -1], sampling, rng)[0])
        result.decode_s.append(time.perf_counter() - t0)
        length += 1
    return result
