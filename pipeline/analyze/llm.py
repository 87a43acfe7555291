"""Plan a decoder-only LLM from its config alone (no ONNX, no weights): will it fit, how fast can
decode possibly be. This is how a user checks Llama-3-8B against an Orin Nano before any export.

Per layer: attention q/o = h*heads*head_dim each (h*h unless the config sets a wider head_dim), k/v = h*kv_heads*head_dim each, MLP (gate, up, down) = 3*h*inter,
two RMSNorms = 2*h. Plus the embedding (vocab*h), a final norm (h) and the LM head (vocab*h unless
tied). Decode costs 2 FLOPs per weight of the matmuls per token plus 4*layers*context*h for
attention over the cache, and reads every weight and the whole KV cache once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..platform.targets import Target
from . import memory, roofline

SCHEMA = "orin-trt/analysis-llm@1"

# Published model configs (the `config.json` of each Hugging Face repository).
PRESETS: dict[str, dict[str, Any]] = {
    "llama-3-8b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                   "tie_word_embeddings": False},
    "llama-3.2-1b": {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
                     "tie_word_embeddings": True},
    "llama-3.2-3b": {"hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 24,
                     "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
                     "tie_word_embeddings": True},
    # The models of the published Orin figures (docs/llm.md): Qwen3 sets head_dim 128 on every size.
    "qwen3-8b": {"hidden_size": 4096, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
                 "head_dim": 128, "intermediate_size": 12288, "vocab_size": 151936, "tie_word_embeddings": False},
    "qwen3-4b": {"hidden_size": 2560, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
                 "head_dim": 128, "intermediate_size": 9728, "vocab_size": 151936, "tie_word_embeddings": True},
    "qwen3-1.7b": {"hidden_size": 2048, "num_hidden_layers": 28, "num_attention_heads": 16,
                   "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 6144, "vocab_size": 151936,
                   "tie_word_embeddings": True},
    "llama-2-7b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                   "num_key_value_heads": 32, "intermediate_size": 11008, "vocab_size": 32000,
                   "tie_word_embeddings": False},
}


@dataclass(frozen=True)
class LlmConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    head_dim_override: int | None = None  # the config's `head_dim` where it is not hidden / heads

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LlmConfig:
        fields = cls.__dataclass_fields__
        return cls(**{k: raw[k] for k in fields if k in raw}, head_dim_override=raw.get("head_dim"))

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.hidden_size // self.num_attention_heads

    def linear_params_per_layer(self) -> int:
        h, q, kv = self.hidden_size, self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        return 2 * h * q + 2 * h * kv + 3 * h * self.intermediate_size

    def gemm_params(self) -> int:
        """Weights of the matmuls (these take the quantized dtype; INT4 AWQ quantizes the LM head too)."""
        head = 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size
        return self.num_hidden_layers * self.linear_params_per_layer() + head

    def other_params(self) -> int:
        """Embedding and norms: kept in FP16 by weight-only quantization."""
        return self.vocab_size * self.hidden_size + (2 * self.num_hidden_layers + 1) * self.hidden_size

    def params(self) -> int:
        return self.gemm_params() + self.other_params()

    def kv_cache_bytes(self, batch: int, context: int, precision: str) -> int:
        per_token = 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dim
        return batch * context * per_token * memory.KV_BYTES[precision]

    def decode_flops_per_token(self, context: int) -> int:
        matmul_weights = self.gemm_params() + (self.vocab_size * self.hidden_size if self.tie_word_embeddings else 0)
        return 2 * matmul_weights + 4 * self.num_hidden_layers * context * self.hidden_size

    def activation_bytes(self, batch: int, tokens: int, precision: str) -> int:
        """Prefill working set: hidden states, the MLP's two intermediate tensors and the logits."""
        width = 2 * self.hidden_size + 2 * self.intermediate_size + self.vocab_size
        return batch * tokens * width * memory.ACTIVATION_BYTES[precision]


def analyze_llm(config: LlmConfig, precision: str, target: Target, batch: int = 1, context: int = 2048,
                prompt: int = 512, name: str = "") -> dict[str, Any]:
    weights_at = {p: memory.weight_bytes(config.gemm_params(), config.other_params(), p)
                  for p in memory.PRECISIONS}
    weights = weights_at[precision]
    kv = config.kv_cache_bytes(batch, context, precision)
    activations = config.activation_bytes(batch, prompt, precision)
    flops = batch * config.decode_flops_per_token(context)
    step_bytes = weights + kv  # every weight and the whole cache, once per decode step
    decode = roofline.roofline(flops, step_bytes, 0.0, target, memory.COMPUTE_DTYPE[precision])
    decode.pop("unfused_ms")
    decode["tokens_per_s_max"] = batch * decode.pop("max_per_s")
    return {
        "schema": SCHEMA,
        "source": name or "config",
        "precision": precision,
        "batch": batch,
        "context": context,
        "prompt": prompt,
        "totals": {
            "params": config.params(),
            "decode_flops_per_step": flops,
            "weights_bytes": weights_at,
            "activation_bytes": activations,
            "kv_cache_bytes": kv,
        },
        "decode_roofline": decode,
        "fits": roofline.fits(weights, activations, kv, target),
    }
