"""Benchmark of the built LLM precisions on ONNX Runtime here: perplexity, TTFT, decode tokens/s, and
the sizes the builder reported. Numbers go to docs with the command and the machine's load beside them.

    .venv/bin/python benchmarks/llm_bench.py --model llama --root engines --runs 10 --tokens 64
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import Layout, read_json, write_json
from pipeline.recipe.loader import PRECISIONS, load_recipe


def bench(model: str, root: Path, runs: int, tokens: int) -> dict[str, Any]:
    from pipeline.llm.evaluate import greedy_agreement, timed_generations
    from pipeline.llm.perplexity import text_perplexity
    from pipeline.llm.session import onnxrt_session
    from pipeline.models.llama import LlamaAdapter

    recipe = load_recipe(model)
    layout = Layout(root, recipe.name)
    adapter = LlamaAdapter()
    heldout = adapter.heldout_ids(recipe)
    rows: dict[str, dict[str, Any]] = {}
    reference: list[int] | None = None
    load_before = os.getloadavg()
    for precision in [p for p in PRECISIONS if layout.manifest(p).exists()]:
        manifest = read_json(layout.manifest(precision))
        llm = manifest["llm"]
        with onnxrt_session(layout.calibrated_onnx(precision), llm["max_context"], llm["max_prompt"]) as s:
            ppl = text_perplexity(s, heldout, llm["max_prompt"])
            gen, timing = timed_generations(s, heldout[:16], tokens, runs, llm["max_context"])
        reference = gen.new_ids if reference is None else reference
        onnx_bytes = sum(p.stat().st_size for p in layout.precision_dir(precision).glob("model.onnx*"))
        rows[precision] = {
            "perplexity": round(ppl["perplexity"], 3),
            "greedy_match_vs_first": greedy_agreement(reference, gen.new_ids)["match_rate"],
            "ttft_ms": round(timing["ttft_ms"], 3),
            "decode_tokens_per_s": round(timing["decode_tokens_per_s"], 1),
            "onnx_bytes": onnx_bytes,
            "engine_bytes": manifest["engine"]["bytes"],
            "engine_weights_bytes": manifest["memory"]["weights_bytes"],
            "kv_cache_bytes": llm["kv_cache"]["bytes"],
            "random_weights": manifest["weights"]["random"],
        }
    return {
        "command": f"python benchmarks/llm_bench.py --model {model} --root {root} --runs {runs} --tokens {tokens}",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "prompt_tokens": 16, "new_tokens": tokens, "runs": runs, "by_precision": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    keys = ["perplexity", "greedy_match_vs_first", "ttft_ms", "decode_tokens_per_s", "onnx_bytes", "engine_bytes",
            "engine_weights_bytes", "kv_cache_bytes"]
    lines = ["| precision | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for precision, row in result["by_precision"].items():
        lines.append(f"| {precision} | " + " | ".join(str(row[k]) for k in keys) + " |")
    m = result["machine"]
    lines += ["", f"`{result['command']}` on {m['cores']} cores, load average {m['loadavg_before'][0]:.2f} before, "
              f"{m['loadavg_after'][0]:.2f} after; {result['runs']} timed generations of {result['new_tokens']} "
              f"tokens from a {result['prompt_tokens']}-token prompt per precision."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="llama")
    p.add_argument("--root", type=Path, default=Path("engines"))
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args()
    result = bench(args.model, args.root, args.runs, args.tokens)
    if args.json:
        write_json(args.json, result)
    print(markdown(result))


if __name__ == "__main__":
    main()
