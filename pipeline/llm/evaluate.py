"""The LLM part of `profile`: per runner, perplexity on held-out text, time to first token, decode
tokens/s, the bytes a decode step moves between host and device, the ratio of tokens/s to the target's
roofline floor, and agreement of greedy generations with the FP32 reference."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ..core.log import log
from ..errors import PipelineError
from ..recipe.loader import Recipe
from ..runners import runner_for
from ..runners.onnxrt import NAME as ONNXRT
from ..runners.tensorrt import NAME as TENSORRT
from .generation import Generation, generate
from .perplexity import text_perplexity
from .session import DecodeSession, onnxrt_session, tensorrt_session

# A KV-cache decode session per runner of pipeline/runners (by its name); `logit_rows` per step at most
# (0: every prompt position, what perplexity needs; generation asks for 1).
DECODERS: dict[str, Callable[[Path, str, dict[str, Any], int], AbstractContextManager[DecodeSession]]] = {
    ONNXRT: lambda path, name, manifest, rows: onnxrt_session(path, manifest["llm"]["max_context"],
                                                              manifest["llm"]["max_prompt"], name, logit_rows=rows),
    TENSORRT: lambda path, name, manifest, rows: tensorrt_session(path, manifest, logit_rows=rows),
}


@contextmanager
def open_session(name: str, path: Path, manifest: dict[str, Any], logit_rows: int = 0) -> Iterator[DecodeSession]:
    runner = runner_for(path)
    if runner.name not in DECODERS:
        raise PipelineError(f"{path}: runner {runner.name} has no KV-cache decoder session (pipeline/llm/evaluate.py)")
    with DECODERS[runner.name](path, name, manifest, logit_rows) as s:
        yield s


def greedy_agreement(reference: list[int], candidate: list[int]) -> dict[str, Any]:
    """Token-by-token match rate over the reference's length, and the length of the identical prefix
    (after the first divergence the two continue from different contexts)."""
    n = len(reference)
    same = sum(1 for a, b in zip(reference, candidate, strict=False) if a == b)
    prefix = next((i for i, (a, b) in enumerate(zip(reference, candidate, strict=False)) if a != b),
                  min(n, len(candidate)))
    return {"match_rate": same / n if n else 1.0, "identical_prefix": prefix, "tokens": n}


def decode_floor(manifest: dict[str, Any], context: int) -> dict[str, Any]:
    """The target's roofline floor of one decode step at `context` cached tokens: every engine weight
    and the cache read once at the memory bandwidth (analyze/roofline.py), as tokens/s."""
    from ..analyze import DEFAULT_TARGET
    from ..analyze.roofline import roofline
    from ..platform.targets import get_target

    target = get_target(manifest.get("target") or DEFAULT_TARGET)
    kv = manifest["llm"]["kv_cache"]
    weights = int(manifest["memory"].get("weights_bytes") or 0)
    step_bytes = weights + kv["bytes_per_token"] * context
    roof = roofline(0.0, step_bytes, 0.0, target, "fp16")
    return {"target": target.key, "bytes_per_step": step_bytes, "tokens_per_s": roof["max_per_s"]}


def timed_generations(session: DecodeSession, prompt: list[int], new_tokens: int, runs: int,
                      max_context: int) -> tuple[Generation, dict[str, Any]]:
    """One untimed warm-up generation, then `runs` timed ones (greedy, so all produce the same tokens)."""
    generate(session, prompt, new_tokens, max_context=max_context)
    gens = [generate(session, prompt, new_tokens, max_context=max_context) for _ in range(runs)]
    decode = [s for g in gens for s in g.decode_s]
    timing = {
        "ttft_ms": statistics.median(g.ttft_s for g in gens) * 1e3,
        "decode_tokens_per_s": len(decode) / sum(decode) if decode else None,
        "decode_step_p50_ms": statistics.median(decode) * 1e3 if decode else None,
        "prompt_tokens": len(prompt),
        "new_tokens": len(gens[0].new_ids),
        "runs": runs,
        **session.per_token(),
    }
    return gens[0], timing


def evaluate_runners(recipe: Recipe, models: dict[str, Path], manifest: dict[str, Any], heldout_ids: list[int],
                     tokenizer: Any) -> dict[str, Any]:
    cfg = recipe.section("eval")
    llm = manifest["llm"]
    # Not capped by the prefill profile: a longer window is chunked into prefill + decode steps.
    window = int(cfg.get("perplexity_window", llm["max_prompt"]))
    prompt = heldout_ids[: min(int(cfg.get("prompt_tokens", 16)), llm["max_prompt"])]
    new_tokens = int(cfg.get("generate_tokens", 32))
    runs = int(recipe.section("profile").get("generation_runs", 3))
    by_runner: dict[str, dict[str, Any]] = {}
    reference_tokens: list[int] | None = None
    for name, path in models.items():
        with open_session(name, path, manifest) as session:
            ppl = text_perplexity(session, heldout_ids, window, llm["max_prompt"], llm["max_context"])
            gen, timing = timed_generations(session, prompt, new_tokens, runs, llm["max_context"])
        reference_tokens = gen.new_ids if reference_tokens is None else reference_tokens
        floor = decode_floor(manifest, len(prompt) + new_tokens // 2)
        rate = timing["decode_tokens_per_s"]
        timing |= {"floor_tokens_per_s": floor["tokens_per_s"], "floor_target": floor["target"],
                   "fraction_of_floor": rate / floor["tokens_per_s"] if rate and floor["tokens_per_s"] else None}
        by_runner[name] = {**ppl, **timing, **greedy_agreement(reference_tokens, gen.new_ids),
                           "sample": _one_line(tokenizer.decode(gen.new_ids[:24]))}
        log("profile", f"{name}: perplexity {ppl['perplexity']:.3f}, TTFT {timing['ttft_ms']:.1f} ms, "
            f"{timing['decode_tokens_per_s'] or 0:.1f} tok/s")
    return {
        "metric": f"perplexity on held-out text ({window}-token windows); greedy generation of {new_tokens} tokens "
                  f"from a {len(prompt)}-token prompt: TTFT, decode tokens/s, token agreement with "
                  f"{next(iter(models))}",
        "by_runner": by_runner,
        "kv_cache": llm["kv_cache"],
    }


def _one_line(text: str) -> str:
    """Generated text as it may appear in a markdown table cell."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("|", "\\|")
