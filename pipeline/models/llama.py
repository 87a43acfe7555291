"""Llama (transformers LlamaForCausalLM) adapter: export with an explicit KV cache, text calibration,
held-out text for parity / perplexity, and the LLM run-loop metrics (perplexity, TTFT, tokens/s).

The recipe's two optimization profiles (phase `prefill`: past 0; phase `decode`: one token, past
1..context-1) also fix the cache geometry (layers, KV heads, head dim); export checks it against the model.
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.log import log, warn
from ..core.workspace import require_free_disk
from ..errors import PipelineError
from ..llm import kv_cache, text_data
from ..llm.kv_cache import CacheShape
from ..llm.tokenizer import BUILTIN_TOKENIZER, load_tokenizer, tokenizer_dir
from ..recipe.loader import Recipe
from .base import DataSet, ExportResult, Feed, ModelAdapter, SourceInfo

# Files of a Hugging Face folder that define the model (weights, configs, tokenizer): the export's cache key.
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")
# An FP16 export's ONNX Runtime logits vs PyTorch's FP16 forward: each rounds every op to FP16 its own way.
FP16_PARITY_RTOL = 1e-2


def pretrained_dir(recipe: Recipe) -> Path | None:
    """The from_pretrained folder, or None for a config-built model (a missing user folder is an error)."""
    from ..recipe.derive import pretrained_folder

    folder = pretrained_folder(recipe.spec, recipe.path)
    if folder is not None and not (folder / "config.json").exists():
        raise PipelineError(f"recipe {recipe.path}: source.pretrained {folder}: no config.json (not a "
                            "from_pretrained folder)")
    return folder


def recipe_tokenizer_dir(recipe: Recipe) -> Path:
    return tokenizer_dir(recipe.section("source").get("tokenizer"), pretrained_dir(recipe))


def _tokenizer_key(tok: Path) -> str:
    """The tokenizer as the export's cache key and digest name it: the built-in one relative to the package,
    so an export stays valid when the checkout moves (its files are hashed as inputs either way)."""
    package = Path(__file__).resolve().parents[1]
    try:
        return f"pipeline/{tok.resolve().relative_to(package).as_posix()}"
    except ValueError:
        return str(tok)


def phase_profile(recipe: Recipe, phase: str) -> dict[str, Any]:
    for p in recipe.profiles:
        if p.get("phase") == phase:
            return p
    raise PipelineError(f"recipe {recipe.path}: profiles need one with phase: {phase}")


def recipe_cache(recipe: Recipe, precision: str | None = None) -> CacheShape:
    """Cache geometry from the prefill profile's past inputs (their min shape [0, batch, kv_heads, head_dim]);
    the dtype of `precision`'s engine (None: the export's float32)."""
    shapes = phase_profile(recipe, "prefill")["shapes"]
    past = [n for n in shapes if n.startswith("past_key_values.")]
    if not past or len(past) % 2:
        raise PipelineError(f"recipe {recipe.path}: the prefill profile lists no past_key_values.<i>.key/value pairs")
    dims = shapes[past[0]]["min"]
    return CacheShape(len(past) // 2, int(dims[2]), int(dims[3]), "float32" if precision is None else
                      kv_dtype(recipe, precision))


def kv_dtype(recipe: Recipe, precision: str) -> str:
    """float16 for fp16 / int8 / int4 engines, float32 for fp32 (the precision table's KV element size),
    unless the recipe's llm.cache_dtype names one."""
    from ..recipe import precisions

    chosen = recipe.section("llm").get("cache_dtype", "auto")
    if chosen != "auto":
        return str(chosen)
    return "float32" if precisions.get(precision).kv_bytes == 4 else "float16"


def limits(recipe: Recipe) -> dict[str, int]:
    """Batch, prompt and context limits, read from the profiles (the engine cannot exceed them)."""
    prefill = phase_profile(recipe, "prefill")["shapes"]
    decode = phase_profile(recipe, "decode")["shapes"]
    return {
        "max_batch": int(prefill["input_ids"]["max"][0]),
        "max_prompt": int(prefill["input_ids"]["max"][1]),
        "max_context": int(decode["attention_mask"]["max"][1]),
    }


def kv_wrapper(model: Any) -> Any:
    """A torch module with the ONNX contract (llm/kv_cache.py): sequence-major past tensors in, logits of
    the `logit_positions` and this chunk's keys / values out. The past fills a transformers DynamicCache;
    the chunk's keys and values are the ones each attention layer hands the cache (after RoPE), so no
    slice of the concatenated cache is exported. The LM head runs on the gathered positions only."""
    import torch
    from transformers.cache_utils import DynamicCache

    layers = model.config.num_hidden_layers

    class ChunkCache(DynamicCache):
        """Remembers what each layer adds: this chunk's keys and values."""

        def update(self, key_states, value_states, layer_idx, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.chunk[layer_idx] = (key_states, value_states)
            return super().update(key_states, value_states, layer_idx, *args, **kwargs)

    class CausalLM(torch.nn.Module):
        """The model's decoder and head under the names of LlamaForCausalLM (node names stay
        /model/model/... and /model/lm_head/..., which recipes' keep-out patterns name)."""

        def __init__(self) -> None:
            super().__init__()
            self.model, self.lm_head = model.model, model.lm_head

        def forward(self, input_ids, attention_mask, position_ids, logit_positions, *past):  # type: ignore[no-untyped-def]
            cache = ChunkCache(config=model.config)
            cache.chunk = {}
            for i in range(layers):  # [past, batch, heads, dim] -> transformers' [batch, heads, past, dim]
                cache.update(past[2 * i].permute(1, 2, 0, 3), past[2 * i + 1].permute(1, 2, 0, 3), i)
            cache.chunk = {}
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            hidden = out.last_hidden_state  # [batch, sequence, hidden]
            batch, seq = hidden.shape[0], hidden.shape[1]
            # One Gather over the flattened positions: row b * sequence + p for each requested p of batch b.
            rows = logit_positions + torch.arange(batch, dtype=torch.int64).unsqueeze(1) * seq
            picked = hidden.reshape(-1, hidden.shape[-1])[rows.reshape(-1)]
            # The head's MatMul on [batch, n, hidden], so the vocabulary dimension stays fixed in the graph.
            logits = self.lm_head(picked.reshape(batch, logit_positions.shape[1], hidden.shape[-1]))
            new = []
            for i in range(layers):
                keys, values = cache.chunk[i]
                new += [keys.permute(2, 0, 1, 3), values.permute(2, 0, 1, 3)]
            return (logits.float(), *new)

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = CausalLM()

        def forward(self, *args):  # type: ignore[no-untyped-def]
            return self.model(*args)

    return Wrapper().eval()


def llm_section(cache: CacheShape, lim: dict[str, int], phases: dict[str, int], vocab: int, bos_id: int | None,
                eos_id: int | None) -> dict[str, Any]:
    """The manifest's `llm` section: the device-resident KV-cache contract the C++ LlmSession reads."""
    return {
        "kv_cache": {"layout": kv_cache.LAYOUT, "dtype": cache.dtype, "layers": cache.layers,
                     "kv_heads": cache.kv_heads, "head_dim": cache.head_dim, "max_context": lim["max_context"],
                     "max_batch": lim["max_batch"], "past_input": kv_cache.PAST_PATTERN,
                     "new_output": kv_cache.NEW_PATTERN, "kinds": list(kv_cache.KINDS),
                     "bytes_per_token": cache.bytes(1, 1),
                     "bytes": cache.bytes(lim["max_batch"], lim["max_context"]),
                     "for": {"batch": lim["max_batch"], "context": lim["max_context"]}},
        "logits": {"output": kv_cache.LOGITS, "positions_input": kv_cache.LOGIT_POSITIONS, "dtype": "float32",
                   "vocab": vocab},
        "phases": phases,  # optimization profile index serving each phase
        "max_prompt": lim["max_prompt"],
        "max_batch": lim["max_batch"],
        "max_context": lim["max_context"],
        "bos_id": bos_id, "eos_id": eos_id,
    }


class LlamaAdapter(ModelAdapter):
    family = "llama"
    tools = ("torch", "transformers")
    # Prefill and decode profiles would each store the GEMM weights (benchmarks/results/
    # engine_weights_per_profile.md): an engine of twice the weights in an Orin's shared memory.
    extra_profile_memory = 0.0

    # ---- source and export -------------------------------------------------------------------------
    def source(self, recipe: Recipe) -> SourceInfo:
        src = recipe.section("source")
        tok = recipe_tokenizer_dir(recipe)
        if not tok.is_dir():
            raise PipelineError(f"recipe {recipe.path}: source.tokenizer {str(tok)!r} is not a folder")
        tok_files = sorted(p for p in tok.iterdir() if p.is_file())
        folder = pretrained_dir(recipe)
        if folder is not None:
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES)
            return SourceInfo({"pretrained": str(folder), "tokenizer": _tokenizer_key(tok)}, files + tok_files)
        return SourceInfo({"pretrained": src.get("pretrained"), "local": False, "config": src.get("config"),
                           "seed": src.get("seed", 0), "tokenizer": _tokenizer_key(tok)}, tok_files)

    def _config(self, recipe: Recipe) -> tuple[Any, Path | None]:
        """The LlamaConfig (the folder's, else the recipe's source.config) and the folder, if any."""
        from transformers import LlamaConfig

        src = recipe.section("source")
        attn = recipe.section("export").get("attn_implementation", "sdpa")
        folder = pretrained_dir(recipe)
        if folder is not None:
            try:
                return LlamaConfig.from_pretrained(str(folder), attn_implementation=attn), folder
            except Exception as e:
                raise PipelineError(f"{folder}: cannot read the Llama config ({e.__class__.__name__}: {e})") from e
        config = dict(src.get("config") or {})
        if not config:
            raise PipelineError(f"recipe {recipe.path}: source.pretrained {src.get('pretrained')!r} has no "
                                "config.json and there is no source.config to fall back to")
        tokenizer = load_tokenizer(recipe_tokenizer_dir(recipe))
        config.setdefault("vocab_size", len(tokenizer))
        config.setdefault("bos_token_id", tokenizer.bos_token_id)
        config.setdefault("eos_token_id", tokenizer.eos_token_id)
        try:
            return LlamaConfig(**config, attn_implementation=attn), None
        except Exception as e:
            raise PipelineError(f"recipe {recipe.path}: source.config is not a valid LlamaConfig ({e})") from e

    def load(self, recipe: Recipe, dtype: str = "float32") -> tuple[Any, bool, str, list[str]]:
        """The torch model with its weights in `dtype` from the start (never an FP32 copy of an FP16
        export): the local folder, or the recipe's config with RANDOM weights."""
        import torch
        from transformers import LlamaForCausalLM

        from .hf_source import default_dtype

        src = recipe.section("source")
        cfg, folder = self._config(recipe)
        if folder is not None:
            try:
                model = LlamaForCausalLM.from_pretrained(str(folder), config=cfg, dtype=getattr(torch, dtype))
            except Exception as e:
                raise PipelineError(f"{folder}: cannot load LlamaForCausalLM ({e.__class__.__name__}: {e})") from e
            return model.eval(), False, str(folder), []
        torch.manual_seed(int(src.get("seed", 0)))
        with default_dtype(dtype):
            model = LlamaForCausalLM(cfg).eval()
        why = f"{src.get('pretrained')!r} is absent" if src.get("pretrained") else "no source.pretrained given"
        msg = (f"!!! {why}; building Llama from source.config with "
               "RANDOM WEIGHTS: perplexity and generations will be meaningless !!!")
        warn("export", msg)
        return model, True, "source.config", [msg]

    def export(self, recipe: Recipe, onnx_out: Path, feeds: list[Feed]) -> ExportResult:
        import torch
        from transformers import LlamaForCausalLM

        from ..core import onnx_utils
        from .torch_export import choose_dtype, float_io

        cfg, _ = self._config(recipe)
        dtype, why = choose_dtype(recipe, lambda: LlamaForCausalLM(cfg), "Llama")
        model, random_weights, source, notes = self.load(recipe, dtype)
        notes.append(f"weights exported in {why}")
        self._check_geometry(recipe, model.config)
        cache = recipe_cache(recipe)
        # The ONNX keeps its FP32 logits and the recipe's cache dtype whatever the weights' dtype.
        wrapper = float_io(kv_wrapper(model), dtype,
                           [torch.float32] + [getattr(torch, cache.dtype)] * (2 * cache.layers))
        names_in, names_out = kv_cache.input_names(cache.layers), kv_cache.output_names(cache.layers)
        dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "position_ids": {0: "batch", 1: "sequence"},
                   "attention_mask": {0: "batch", 1: "total_sequence"}, "logit_positions": {0: "batch", 1: "logits"},
                   "logits": {0: "batch", 1: "logits"}}
        dynamic |= {n: {0: "past_sequence", 1: "batch"} for n in names_in[len(kv_cache.TOKEN_INPUTS):]}
        dynamic |= {n: {0: "sequence", 1: "batch"} for n in names_out[1:]}
        sample = kv_cache.prefill_feed(np.zeros((1, 4), np.int64), cache)
        args = tuple(torch.from_numpy(sample[n]) for n in names_in)
        with tempfile.TemporaryDirectory(prefix="orin-trt-llama-") as tmp:
            # The legacy exporter writes one file per tensor past 2 GB; re-save as one `<name>.data`.
            path = Path(tmp) / "model.onnx"
            opset = int(recipe.section("export").get("opset", 20))
            params = sum(p.numel() for p in model.parameters())
            weights = sum(p.numel() * p.element_size() for p in model.parameters())
            if model.config.tie_word_embeddings:  # the exporter stores the LM head's transposed copy too
                weights += model.get_input_embeddings().weight.nbytes
            # The exporter's files in scratch, then model.onnx + data beside the output.
            require_free_disk("export", {Path(tmp): weights, onnx_out.parent: weights})
            log("export", f"torch.onnx.export of {params / 1e6:.1f}M parameters ({dtype}) at opset {opset} "
                          "(minutes for 1B)...")
            with torch.inference_mode():
                torch.onnx.export(wrapper, args, str(path), input_names=names_in, output_names=names_out,
                                  dynamic_axes=dynamic, opset_version=opset,
                                  dynamo=False)
            log("export", "exported; gathering the weights into one file")
            onnx_utils.save(onnx_utils.load_header(path), onnx_out, base_dir=Path(tmp))  # streamed, not loaded
        outputs = []
        with torch.inference_mode():
            for feed in feeds:
                out = wrapper(*(torch.from_numpy(feed[n]) for n in names_in))
                outputs.append([o.numpy() for o in out])
        tokens = [int(t) for t in feeds[0]["input_ids"][0]]
        steps = int(recipe.section("export").get("decode_check_tokens", 4))
        reference = self._decode_reference(model, tokens, steps)
        fp16_weights = model.dtype != torch.float32
        # Every PyTorch result is in hand: the model goes before ONNX Runtime maps the same weights for the
        # decode check (together they were the stage's peak: 44.6 GiB for Llama-3-8B, 2.8 x its weights).
        del model, wrapper, args
        gc.collect()
        notes.append(self._check_prefill_decode(recipe, onnx_out, tokens, steps, reference, fp16_weights))
        return ExportResult(outputs, random_weights, source, notes)

    @staticmethod
    def _check_geometry(recipe: Recipe, config: Any) -> None:
        cache = recipe_cache(recipe)
        heads = config.num_attention_heads
        model_geometry = (config.num_hidden_layers, config.num_key_value_heads,
                          getattr(config, "head_dim", None) or config.hidden_size // heads)
        if (cache.layers, cache.kv_heads, cache.head_dim) != model_geometry:
            raise PipelineError(
                f"recipe {recipe.path}: profiles give {cache.layers} layers x past [past, batch, {cache.kv_heads}, "
                f"{cache.head_dim}] but the model has {model_geometry[0]} layers, {model_geometry[1]} KV heads, "
                f"head_dim {model_geometry[2]}; edit the profiles' past_key_values shapes for this model")

    @staticmethod
    def _decode_reference(model: Any, tokens: list[int], steps: int) -> np.ndarray:
        """Logits of one full-sequence PyTorch forward at the positions the decode check compares."""
        import torch

        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([tokens])).logits
        return logits[0, len(tokens) - steps - 1 :].float().numpy()

    @staticmethod
    def _check_prefill_decode(recipe: Recipe, onnx_path: Path, tokens: list[int], steps: int,
                              reference: np.ndarray, fp16_weights: bool) -> str:
        """Prefill of a prompt then one decode step per remaining token, in the decode session on ONNX
        Runtime, must give the logits of one full-sequence PyTorch forward (`reference`)."""
        from ..llm.session import onnxrt_session

        cfg = recipe.section("export")
        prompt, forced = tokens[: len(tokens) - steps], tokens[len(tokens) - steps :]
        with onnxrt_session(onnx_path, len(tokens), len(prompt)) as session:
            got = [session.prefill(np.array([prompt]))[0, -1]]
            for token in forced:  # teacher forcing: feed the known next token
                got.append(session.decode(np.array([token]))[0, -1])
        err = float(np.abs(np.stack(got) - reference).max())
        atol = float(cfg.get("parity", {}).get("atol", 1e-3))
        if fp16_weights:  # ONNX Runtime and PyTorch round FP16 differently, op by op
            atol += FP16_PARITY_RTOL * float(np.abs(reference).max())
        if err > atol:
            raise PipelineError(f"{onnx_path}: prefill + {steps} decode steps on ONNX Runtime differ from one "
                                f"PyTorch forward by {err:.3g} > export.parity.atol {atol}; the KV-cache export is wrong")
        log("export", f"prefill + {steps} decode steps on ONNX Runtime match one PyTorch forward (max abs {err:.2g})")
        return f"prefill + {steps} decode steps on ONNX Runtime vs one PyTorch forward: max abs {err:.3g}"

    # ---- data ---------------------------------------------------------------------------------------
    def _tokenizer(self, recipe: Recipe) -> Any:
        return load_tokenizer(recipe_tokenizer_dir(recipe))

    def calibration_set(self, recipe: Recipe, calib_root: Path) -> DataSet:
        cfg = recipe.section("calibration")
        value = str(cfg.get("text", text_data.BUILTIN))
        folder = text_data.materialize_calibration_text(value, calib_root / recipe.name / "text")
        files = text_data.text_files(folder)
        tokens = sum(len(text_data.encode(self._tokenizer(recipe), text_data.read_text(f))) for f in files)
        length = int(cfg.get("sequence_length", 64))
        count = min(tokens // length, int(cfg.get("max_samples", 32)))
        if count < 1:
            raise PipelineError(f"{folder}: {tokens} tokens of text, fewer than one calibration window of {length}")
        what = "built-in text" if value == text_data.BUILTIN else value
        return DataSet(folder, count, f"{what}: {count} windows of {length} tokens ({folder})")

    def calibration_feeds(self, recipe: Recipe, data: DataSet) -> list[Feed]:
        tokenizer = self._tokenizer(recipe)
        ids = [t for f in text_data.text_files(data.path) for t in text_data.encode(tokenizer, text_data.read_text(f))]
        length = int(recipe.section("calibration").get("sequence_length", 64))
        return text_data.prefill_feeds(text_data.windows(ids, length, data.count), recipe_cache(recipe))

    def heldout_ids(self, recipe: Recipe) -> list[int]:
        text = text_data.heldout_text(str(recipe.section("eval").get("text", text_data.BUILTIN)))
        return text_data.encode(self._tokenizer(recipe), text)

    def eval_feeds(self, recipe: Recipe) -> list[Feed]:
        cfg = recipe.section("eval")
        length, count = int(cfg.get("sequence_length", 32)), int(cfg.get("samples", 2))
        return text_data.prefill_feeds(text_data.windows(self.heldout_ids(recipe), length, count),
                                       recipe_cache(recipe))

    # ---- manifest and accuracy ----------------------------------------------------------------------
    def io_dtypes(self, recipe: Recipe, precision: str) -> dict[str, str]:
        dtype = kv_dtype(recipe, precision)
        return {n: dtype for pair in kv_cache.cache_names(recipe_cache(recipe).layers) for n in pair}

    def deploy_info(self, recipe: Recipe, onnx_metadata: dict[str, str]) -> dict[str, Any]:
        import dataclasses
        import json

        from ..quantize.io_dtype import METADATA_KEY

        tokenizer = self._tokenizer(recipe)
        io_dtypes = json.loads(onnx_metadata.get(METADATA_KEY) or "{}")
        cache, lim = recipe_cache(recipe), limits(recipe)
        cache = dataclasses.replace(cache, dtype=io_dtypes.get(kv_cache.past_name(0, "key"), cache.dtype))
        phases = {p["phase"]: i for i, p in enumerate(recipe.profiles) if p.get("phase")}
        tok_dir = recipe_tokenizer_dir(recipe)
        return {
            "preprocess": {"type": "tokenizer", "input": "input_ids",
                           "tokenizer": "builtin" if tok_dir == BUILTIN_TOKENIZER else str(tok_dir),
                           "bos_token_id": tokenizer.bos_token_id, "add_special_tokens": False},
            "postprocess": {
                "type": "causal_lm", "output": kv_cache.LOGITS,
                "layout": "[batch, n_logits, vocab] logits of the logit_positions; new_key_values.<i>.key/value "
                          "[sequence, batch, kv_heads, head_dim] go to rows [past, past + sequence) of the cache "
                          "that past_key_values.<i>.key/value [past, batch, kv_heads, head_dim] is a prefix of",
                "eos_token_id": tokenizer.eos_token_id, "vocab_size": len(tokenizer),
            },
            "llm": llm_section(cache, lim, phases, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id),
        }

    def task_accuracy(self, recipe, output_names, reference, candidate) -> dict[str, Any]:
        i = output_names.index("logits")
        ref = np.concatenate([r[i].reshape(-1, r[i].shape[-1]) for r in reference])
        cand = np.concatenate([c[i].reshape(-1, c[i].shape[-1]) for c in candidate])
        agree = float((ref.argmax(-1) == cand.argmax(-1)).mean())
        return {"metric": "next-token top-1 agreement with FP32 on held-out text windows (prefill)",
                "top1_agreement": agree, "positions": int(ref.shape[0])}

    def ground_truth(self, recipe: Recipe, model: Path, samples: int | None = None) -> dict[str, Any] | None:
        """Perplexity on the held-out text by the standard protocol (llm/perplexity.py); `samples` windows."""
        from ..llm.perplexity import text_perplexity
        from ..llm.session import onnxrt_session

        lim = limits(recipe)
        window = int(recipe.section("eval").get("perplexity_window", lim["max_prompt"]))
        ids = self.heldout_ids(recipe)
        ids = ids[: samples * window] if samples else ids
        with onnxrt_session(model, lim["max_context"], lim["max_prompt"]) as session:
            ppl = text_perplexity(session, ids, window, lim["max_prompt"], lim["max_context"])
        return {"reference": f"held-out text ({ppl['tokens_scored']} tokens scored, {ppl['windows']} windows of "
                             f"{window})", "samples": ppl["windows"], "metrics": {"perplexity": ppl["perplexity"]}}

    def runtime_metrics(self, recipe: Recipe, models: dict[str, Path], manifest: dict[str, Any]) -> dict[str, Any]:
        from ..llm.evaluate import evaluate_runners

        return evaluate_runners(recipe, models, manifest, self.heldout_ids(recipe), self._tokenizer(recipe))
