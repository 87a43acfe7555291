"""The KV-cache I/O contract of an exported decoder, and what the cache costs in memory.

Inputs: `input_ids`, `attention_mask` [batch, past + sequence], `position_ids`, then per layer
`past_key_values.<i>.key` / `.value` [batch, kv_heads, past, head_dim]. Outputs: `logits`
[batch, sequence, vocab], then `present.<i>.key` / `.value` [batch, kv_heads, past + sequence, head_dim].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PipelineError

TOKEN_INPUTS = ("input_ids", "attention_mask", "position_ids")
KINDS = ("key", "value")
BYTES_PER_ELEMENT = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def past_name(layer: int, kind: str) -> str:
    return f"past_key_values.{layer}.{kind}"


def present_name(layer: int, kind: str) -> str:
    return f"present.{layer}.{kind}"


def input_names(layers: int) -> list[str]:
    return [*TOKEN_INPUTS, *(past_name(i, k) for i in range(layers) for k in KINDS)]


def output_names(layers: int) -> list[str]:
    return ["logits", *(present_name(i, k) for i in range(layers) for k in KINDS)]


@dataclass(frozen=True)
class CacheShape:
    layers: int
    kv_heads: int
    head_dim: int
    dtype: str = "float32"  # the cache's dtype at the model's inputs

    @classmethod
    def from_io(cls, io: dict[str, list[dict[str, Any]]]) -> CacheShape:
        """From a manifest's / io_spec's `io`: the past inputs name the layers and carry the dims."""
        past = [i for i in io["inputs"] if i["name"].startswith("past_key_values.")]
        if not past:
            raise PipelineError("model has no past_key_values.<i>.key/value inputs: not a KV-cache decoder")
        first = past[0]
        if len(first["shape"]) != 4 or first["shape"][1] <= 0 or first["shape"][3] <= 0:
            raise PipelineError(f"input {first['name']!r}: expected [batch, kv_heads, past, head_dim] with fixed "
                                f"kv_heads and head_dim, got {first['shape']}")
        return cls(len(past) // 2, first["shape"][1], first["shape"][3], first["dtype"])

    def empty_past(self, batch: int) -> dict[str, np.ndarray]:
        shape = (batch, self.kv_heads, 0, self.head_dim)
        return {past_name(i, k): np.zeros(shape, self.dtype) for i in range(self.layers) for k in KINDS}

    def bytes(self, batch: int, context: int) -> int:
        """Keys and values of every layer for `batch` sequences of `context` tokens."""
        per = BYTES_PER_ELEMENT.get(self.dtype)
        if per is None:
            raise PipelineError(f"KV cache dtype {self.dtype!r} has no known element size")
        return 2 * self.layers * batch * self.kv_heads * context * self.head_dim * per


def prefill_feed(token_ids: np.ndarray, cache: CacheShape) -> dict[str, np.ndarray]:
    """Feed for a whole prompt [batch, sequence] with an empty cache."""
    ids = np.asarray(token_ids, dtype=np.int64)
    batch, seq = ids.shape
    return {
        "input_ids": ids,
        "attention_mask": np.ones((batch, seq), np.int64),
        "position_ids": np.broadcast_to(np.arange(seq, dtype=np.int64), (batch, seq)).copy(),
        **cache.empty_past(batch),
    }


def decode_feed(token_ids: np.ndarray, past_length: int, present: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feed for one new token per sequence after `past_length` cached ones; `present` holds the previous
    step's `present.*` outputs, which become this step's `past_key_values.*`."""
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1, 1)
    batch = ids.shape[0]
    feed = {
        "input_ids": ids,
        "attention_mask": np.ones((batch, past_length + 1), np.int64),
        "position_ids": np.full((batch, 1), past_length, np.int64),
    }
    for name, value in present.items():
        feed[name.replace("present.", "past_key_values.", 1)] = value
    return feed
