"""The KV-cache I/O contract of an exported decoder (docs/llm.md, "The native path"), and what the cache
costs in memory.

Inputs: `input_ids` [batch, sequence], `attention_mask` [batch, past + sequence], `position_ids`
[batch, sequence], `logit_positions` [batch, n_logits] (which positions of this chunk get logits), then per
layer `past_key_values.<i>.key` / `.value` [past, batch, kv_heads, head_dim]: sequence-major, so the first
`past` rows of a cache buffer of capacity [max_context, batch, kv_heads, head_dim] are one contiguous
prefix. Outputs: `logits` [batch, n_logits, vocab] float32, then `new_key_values.<i>.key` / `.value`
[sequence, batch, kv_heads, head_dim]: this chunk's keys and values only, which the runtime writes at
rows [past, past + sequence) of its cache. The cache dtype is float16 for fp16 / int8 / int4 engines and
float32 for fp32 (set on the calibrated ONNX by quantize/io_dtype.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PipelineError

TOKEN_INPUTS = ("input_ids", "attention_mask", "position_ids", "logit_positions")
LOGITS = "logits"
LOGIT_POSITIONS = "logit_positions"
KINDS = ("key", "value")
LAYOUT = "position,batch,kv_heads,head_dim"
PAST_PATTERN = "past_key_values.{layer}.{kind}"
NEW_PATTERN = "new_key_values.{layer}.{kind}"
BYTES_PER_ELEMENT = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def past_name(layer: int, kind: str) -> str:
    return PAST_PATTERN.format(layer=layer, kind=kind)


def new_name(layer: int, kind: str) -> str:
    return NEW_PATTERN.format(layer=layer, kind=kind)


def cache_names(layers: int) -> list[tuple[str, str]]:
    """(past input, new output) per layer and kind, in I/O order."""
    return [(past_name(i, k), new_name(i, k)) for i in range(layers) for k in KINDS]


def input_names(layers: int) -> list[str]:
    return [*TOKEN_INPUTS, *(p for p, _ in cache_names(layers))]


def output_names(layers: int) -> list[str]:
    return [LOGITS, *(n for _, n in cache_names(layers))]


def is_cache_io(name: str) -> bool:
    return name.startswith(("past_key_values.", "new_key_values."))


@dataclass(frozen=True)
class CacheShape:
    layers: int
    kv_heads: int
    head_dim: int
    dtype: str = "float32"  # the cache's dtype at the model's inputs and outputs

    @classmethod
    def from_io(cls, io: dict[str, list[dict[str, Any]]]) -> CacheShape:
        """From a manifest's / io_spec's `io`: the past inputs name the layers and carry the dims."""
        past = [i for i in io["inputs"] if i["name"].startswith("past_key_values.")]
        if not past:
            raise PipelineError("model has no past_key_values.<i>.key/value inputs: not a KV-cache decoder")
        first = past[0]
        if len(first["shape"]) != 4 or first["shape"][2] <= 0 or first["shape"][3] <= 0:
            raise PipelineError(f"input {first['name']!r}: expected [past, batch, kv_heads, head_dim] with fixed "
                                f"kv_heads and head_dim, got {first['shape']}")
        return cls(len(past) // 2, first["shape"][2], first["shape"][3], first["dtype"])

    @property
    def itemsize(self) -> int:
        per = BYTES_PER_ELEMENT.get(self.dtype)
        if per is None:
            raise PipelineError(f"KV cache dtype {self.dtype!r} has no known element size")
        return per

    def row_shape(self, batch: int) -> tuple[int, int, int]:
        """One position of one layer's keys (or values): [batch, kv_heads, head_dim]."""
        return (batch, self.kv_heads, self.head_dim)

    def row_bytes(self, batch: int) -> int:
        return batch * self.kv_heads * self.head_dim * self.itemsize

    def empty_past(self, batch: int) -> dict[str, np.ndarray]:
        shape = (0, *self.row_shape(batch))
        return {p: np.zeros(shape, self.dtype) for p, _ in cache_names(self.layers)}

    def bytes(self, batch: int, context: int) -> int:
        """Keys and values of every layer for `batch` sequences of `context` tokens."""
        return 2 * self.layers * context * self.row_bytes(batch)


def prefill_feed(token_ids: np.ndarray, cache: CacheShape, all_logits: bool = True) -> dict[str, np.ndarray]:
    """Feed for a whole prompt [batch, sequence] with an empty cache; logits for every position (what the
    calibration and accuracy feeds use) or, `all_logits=False`, for the last one (generation)."""
    ids = np.asarray(token_ids, dtype=np.int64)
    batch, seq = ids.shape
    positions = np.arange(seq, dtype=np.int64) if all_logits else np.array([seq - 1], np.int64)
    return {
        "input_ids": ids,
        "attention_mask": np.ones((batch, seq), np.int64),
        "position_ids": np.broadcast_to(np.arange(seq, dtype=np.int64), (batch, seq)).copy(),
        LOGIT_POSITIONS: np.broadcast_to(positions, (batch, len(positions))).copy(),
        **cache.empty_past(batch),
    }
