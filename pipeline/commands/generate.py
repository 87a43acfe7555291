"""`orin-trt generate`: stream a completion from a built LLM (ONNX Runtime here, TensorRT on a Jetson)."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import add_model_options, non_empty_text, positive_int, resolve


def _runner_names() -> list[str]:
    from ..runners import registered

    return ["auto", *(r.name for r in registered())]


def _generate(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from ..core.artifacts import Layout
    from ..core.manifest import read_manifest
    from ..errors import PipelineError
    from ..llm.evaluate import open_session
    from ..llm.generation import generate
    from ..llm.sampling import SamplingConfig
    from ..llm.tokenizer import load_tokenizer
    from ..models.llama import limits, recipe_tokenizer_dir
    from ..runners import get_runner, registered

    recipe, precision = resolve(args)
    if recipe.family != "llama":
        raise PipelineError(f"--model {args.model}: generate needs a causal LM recipe (family llama), "
                            f"not {recipe.family!r}")
    sampling = SamplingConfig(greedy=args.greedy, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed)
    tokenizer = load_tokenizer(recipe_tokenizer_dir(recipe))
    prompt_ids = list(tokenizer(args.prompt, add_special_tokens=False)["input_ids"])
    if args.bos and tokenizer.bos_token_id is not None:
        prompt_ids.insert(0, tokenizer.bos_token_id)
    if not prompt_ids:
        raise PipelineError(f"--prompt {args.prompt!r} tokenizes to no tokens; give some text to continue")
    if args.print_ids:  # the C++ llm_generate sample's input: one line of token ids (no engine needed)
        print(" ".join(map(str, prompt_ids)))
        return 0
    layout = Layout(args.root, recipe.name)
    if args.runner == "auto":  # an engine runner where one can execute here, else the precision's ONNX
        chosen = min(registered(), key=lambda r: (r.artifact != "engine" or r.blocker(None) is not None, r.order))
    else:
        chosen = get_runner(args.runner)
    runner = chosen.name
    if blocker := chosen.blocker(None):
        fallback = next(r.name for r in registered() if r.artifact == "onnx")
        raise PipelineError(f"--runner {runner}: {blocker}; use --runner {fallback} here")
    path = chosen.path(layout, precision)
    manifest_path = layout.manifest(precision)
    for needed in (path, manifest_path) if chosen.artifact == "engine" else (path,):
        if not needed.exists():
            raise PipelineError(f"{needed} not found: run `orin-trt engine --model {args.model} "
                                f"--precision {precision}` first")
    manifest = read_manifest(manifest_path) if manifest_path.exists() else {"llm": limits(recipe)}
    bounds = manifest["llm"]

    streamed: list[int] = []
    shown = ""

    def stream(token: int) -> None:
        # Decode everything so far and print the new tail: byte-level BPE pieces only form text together.
        nonlocal shown
        streamed.append(token)
        text = tokenizer.decode(streamed, skip_special_tokens=True)
        sys.stdout.write(text[len(shown):])
        sys.stdout.flush()
        shown = text

    from polygraphy.logger import G_LOGGER

    # stdout carries the generated text only: keep Polygraphy's info lines off it.
    with G_LOGGER.verbosity(G_LOGGER.WARNING), open_session(f"{runner}-{precision}", path, manifest,
                                                                  logit_rows=1) as session:
        # The first call in a process pays one-time costs (lazy imports, kernel set-up; on TensorRT the
        # runner's allocations): run it untimed so TTFT measures the model, and report it apart.
        t0 = time.perf_counter()
        session.prefill(np.array([prompt_ids[:1]]))
        warmup_ms = (time.perf_counter() - t0) * 1e3
        sys.stdout.write(args.prompt)
        gen = generate(session, prompt_ids, args.max_new_tokens, sampling, eos_id=tokenizer.eos_token_id,
                       max_context=bounds["max_context"], on_token=stream,
                       max_prompt=bounds["max_prompt"])
    sys.stdout.write("\n")
    rate = gen.decode_tokens_per_s
    per_token = session.per_token()
    moved = ("" if per_token["bytes_h2d_per_token"] is None else
             f"; per token {per_token['bytes_h2d_per_token']:.0f} B in, {per_token['bytes_d2h_per_token']:.0f} B out")
    print(f"[generate] {runner} {precision}: {len(gen.new_ids)} tokens ({gen.stop_reason}); prompt "
          f"{len(prompt_ids)} tokens, TTFT {gen.ttft_s * 1e3:.1f} ms, decode "
          f"{'n/a' if rate is None else f'{rate:.1f} tok/s'}{moved} (first call, untimed: {warmup_ms:.0f} ms)",
          file=sys.stderr)
    if args.ids:
        print(" ".join(map(str, gen.new_ids)), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    help_text = "generate text from a built LLM (greedy or top-k / top-p sampling), streaming tokens"
    p = sub.add_parser("generate", help=help_text, description=help_text)
    add_model_options(p)
    p.set_defaults(model=os.environ.get("MODEL", "llama"))
    p.add_argument("--prompt", required=True, type=non_empty_text, help="the text to continue")
    p.add_argument("--max-new-tokens", type=positive_int, default=64)
    p.add_argument("--runner", choices=_runner_names(), default="auto",
                   help="onnxrt: the precision's ONNX on ONNX Runtime; tensorrt: the engine (needs a GPU that "
                        "can run it); auto: tensorrt where it can execute, else onnxrt")
    p.add_argument("--greedy", action=argparse.BooleanOptionalAction, default=True,
                   help="argmax decoding (default); --no-greedy samples with the options below")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="keep the smallest set with this much mass")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--bos", action=argparse.BooleanOptionalAction, default=False,
                   help="prepend the tokenizer's BOS token (checkpoints trained with one want it)")
    p.add_argument("--print-ids", action="store_true",
                   help="print the prompt's token ids (one line, the input of the C++ llm_generate sample) and exit")
    p.add_argument("--ids", action="store_true", help="also print the generated token ids (stderr)")
    p.set_defaults(func=_generate)
