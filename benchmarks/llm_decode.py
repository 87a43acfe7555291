"""Decode tokens/s on ONNX Runtime CPU at a short and at the maximum context, and the bytes a decode
step moves in and out, for the trained Llama fixture and a bigger random-weight Llama where the cost of
copying the KV cache every step shows.

    .venv/bin/python benchmarks/llm_decode.py --root /tmp/llm-decode --steps 16 --runs 3

A context C is measured as a prefill of C - steps tokens then `steps` timed decode steps (the last one
attends over C - 1 cached tokens); the best of `runs` generations' median step gives tokens/s.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.core.artifacts import Layout
from pipeline.recipe.loader import load_recipe

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "llama" / "llama.yaml"
# Bigger than the fixture (71 MB of FP32 weights) with a cache of 33.5 MB at 2048 tokens in FP32: the
# old contract copied it in and out every step.
BIG = {
    "base": "llama", "name": "llama-decode-bench",
    "source": {"pretrained": None, "tokenizer": None, "seed": 0,
               "config": {"hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 8,
                          "num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 2048,
                          "tie_word_embeddings": True}},
    "llm": {"max_batch": 1, "max_prompt": 512, "max_context": 2048},
}


# One intra-op thread: on a machine shared with other jobs, a thread per core oversubscribes it and the
# timings scatter by several times.
THREADS = 1


def big_recipe(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "llama-decode-bench.yaml"
    path.write_text(yaml.safe_dump(BIG, sort_keys=False))
    return path


def measure(onnx: Path, context: int, steps: int, runs: int) -> dict[str, Any]:
    """The decode session (pipeline/llm/session.py) on ONNX Runtime: the cache at capacity, bound by
    address; its own count of the bytes each decode step copies in and out. ONNX Runtime has no
    profiles, so the prefill may exceed the engine's max_prompt here."""
    from pipeline.llm.generation import generate
    from pipeline.llm.session import onnxrt_session

    prompt = [int(t) for t in np.random.default_rng(0).integers(3, 500, context - steps)]
    with onnxrt_session(onnx, context, len(prompt), threads=THREADS) as session:
        generate(session, prompt, 2)  # warm-up
        step_s, ttft = [], []
        for _ in range(runs):
            g = generate(session, prompt, steps + 1)
            step_s.append(statistics.median(g.decode_s))
            ttft.append(g.ttft_s)
        moved = session.per_token()
    # The best run's median step: other jobs on a shared machine only ever slow a run down.
    return {"context": context, "tokens_per_s": 1 / min(step_s), "ttft_ms": min(ttft) * 1e3,
            "bytes_in_per_token": int(moved["bytes_h2d_per_token"]),
            "bytes_out_per_token": int(moved["bytes_d2h_per_token"])}


def bench(root: Path, steps: int, runs: int) -> dict[str, Any]:
    from pipeline.models.llama import limits
    from pipeline.stages.export import export

    rows = []
    for recipe_path in (FIXTURE, big_recipe(root)):
        recipe = load_recipe(str(recipe_path))
        layout = Layout(root / "engines", recipe.name)
        export(recipe, layout)
        top = limits(recipe)["max_context"]
        for context in (64, top):
            row = measure(layout.exported_onnx, context, steps, runs)
            rows.append({"model": recipe.name, **row})
            print(rows[-1], flush=True)
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": f"python benchmarks/llm_decode.py --root <dir> --steps {steps} --runs {runs}",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
                       f"ONNX Runtime CPU at {THREADS} intra-op thread",
            "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| model | context | decode tok/s | TTFT ms | bytes in / token | bytes out / token |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['context']} | {r['tokens_per_s']:.1f} | {r['ttft_ms']:.1f} | "
                     f"{r['bytes_in_per_token']:,} | {r['bytes_out_per_token']:,} |")
    lines.append(f"\n`{result['command']}`, {result['date']}, {result['machine']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("engines/.bench-llm-decode"))
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    print(markdown(bench(args.root, args.steps, args.runs)))


if __name__ == "__main__":
    main()
