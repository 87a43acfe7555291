"""`orin-trt analyze`: parameters, FLOPs, bytes, memory, roofline floor and a fits check for a target,
before any long build. Reads the exported ONNX (or any ONNX), or an LLM config alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_model_options


def _weight_copies(profiles: int, extra_profile_memory: float | None) -> int:
    """The copies of the weights a build on this host holds (trt/build.weight_copies); one per profile
    where no TensorRT is installed to ask."""
    from ..errors import PipelineError
    from ..trt.backend import select_backend
    from ..trt.build import weight_copies

    try:
        return weight_copies(select_backend(), profiles, extra_profile_memory)
    except PipelineError:
        return max(1, profiles)


def _analyze(args: argparse.Namespace) -> int:
    from ..analyze import DEFAULT_TARGET, parse_shape, recipe_context, recipe_shapes, write_analysis
    from ..analyze.host import plan_markdown
    from ..analyze.render import markdown
    from ..core.artifacts import Layout
    from ..errors import PipelineError
    from ..platform.targets import get_target
    from ..recipe.loader import PRECISIONS, load_recipe
    from ..stages.plan import resolve_plan

    target = get_target(args.target or DEFAULT_TARGET)
    if args.llm_config:
        from ..analyze.llm import PRESETS, LlmConfig, analyze_llm
        from ..models.llama import LlamaAdapter

        precision = args.precision or "int4-awq"
        target.check_precision(precision)
        if args.llm_config in PRESETS:
            raw = PRESETS[args.llm_config]
        else:
            path = Path(args.llm_config)
            if not path.exists():
                raise PipelineError(f"--llm-config {args.llm_config}: neither a preset "
                                    f"({', '.join(PRESETS)}) nor a config.json path")
            raw = json.loads(path.read_text(encoding="utf-8"))
        analysis = analyze_llm(LlmConfig.from_dict(raw), precision, target, args.batch or 1,
                               args.context or 2048, name=args.llm_config)
        print(markdown(analysis), end="")
        params = int(analysis["totals"]["params"])
        from ..analyze.host import RATIOS

        # An export over 2 GB keeps external data, where `calibrator: auto` runs the streaming quantizer of
        # the Llama recipe's methods (INT8 max, INT4 awq_clip).
        calibrate, what = f"calibrate[{precision}]", f"calibrate[{precision}] of the FP16 export"
        if 2 * params > 2**31 and f"calibrate[{precision}-streaming]" in RATIOS:
            calibrate, what = f"calibrate[{precision}-streaming]", what + " (streaming quantizer)"
        print(plan_markdown([("export, FP32 weights", "export", 4 * params, 1),
                             ("export, FP16 weights", "export", 2 * params, 1),
                             (what, calibrate, 2 * params, 1),
                             ("build (at most the FP16 export's size; prefill + decode profiles)", "build",
                              2 * params, _weight_copies(2, LlamaAdapter.extra_profile_memory))]), end="")
        if args.out:
            print(write_analysis(analysis, target, args.out, f"analysis-{target.key}")["json"])
        return 0 if analysis["fits"]["fits"] or not args.fail_if_not_fit else 3

    recipe = load_recipe(args.model, args.overrides)
    precision = args.precision or recipe.default_precision
    if precision not in PRECISIONS:
        raise PipelineError(f"--precision {precision}: choose from {', '.join(PRECISIONS)}")
    target.check_precision(precision)
    layout = Layout(args.root, recipe.name)
    from ..edgellm import uses_edgellm

    if uses_edgellm(recipe):  # Edge-LLM's ONNX holds its own plugins: plan from the model's config instead
        from ..edgellm.stages import plan

        analysis = plan(recipe, precision, target, args.batch or 1, args.context)
        paths = write_analysis(analysis, target, args.out or layout.precision_dir(precision), f"analysis-{target.key}")
        print(markdown(analysis), end="")
        print(f"\nwritten: {', '.join(str(p) for p in paths.values())}")
        return 0 if analysis["fits"]["fits"] or not args.fail_if_not_fit else 3
    onnx_path = args.onnx or layout.exported_onnx
    if not onnx_path.exists():
        raise PipelineError(f"{onnx_path}: no ONNX to analyze; run `make export MODEL={recipe.name}` "
                            "or pass --onnx")
    from ..analyze.graph import analyze_onnx
    from ..analyze.shapes import graph_inputs
    from ..core.onnx_utils import check_known_ops, load, model_bytes

    header = load(onnx_path, with_weights=False)
    check_known_ops(header, onnx_path)  # an unknown op would count 0 FLOPs and "fit"
    names = {v.name for v in graph_inputs(header)}
    shapes = {n: s for n, s in recipe_shapes(recipe.profiles, args.batch, profile=args.profile).items()
              if n in names}
    shapes.update(dict(parse_shape(s) for s in args.shape))
    context = args.context or recipe_context(recipe.raw, recipe.profiles)
    analysis = analyze_onnx(onnx_path, shapes, precision, target, context)
    # A user's --onnx is analyzed beside itself, never into the default model's folder.
    default_out = onnx_path.parent if args.onnx else layout.precision_dir(precision)
    paths = write_analysis(analysis, target, args.out or default_out,
                           f"analysis-{target.key}")
    print(markdown(analysis, paths.get("png").name if "png" in paths else None), end="")
    size = model_bytes(onnx_path)
    calibrated = layout.calibrated_onnx(precision)
    print(plan_markdown([(f"calibrate[{precision}]", f"calibrate[{precision}]", size, 1),
                         (f"build[{precision}]", "build",
                          model_bytes(calibrated) if calibrated.exists() and not args.onnx else size,
                          _weight_copies(len(recipe.profiles), resolve_plan(recipe, None, precision)
                                         .extra_profile_memory))]), end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths.values())}")
    return 0 if analysis["fits"]["fits"] or not args.fail_if_not_fit else 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="cost model, memory, roofline floor and fits check for a target",
                       description="Per node and in total: parameters, FLOPs / MACs, bytes moved, weight "
                       "memory at each precision, activations, KV cache, roofline latency floor on the "
                       "target and whether it all fits the target's usable memory.")
    add_model_options(p)
    p.add_argument("--onnx", type=Path, default=None, help="analyze this ONNX (default: the exported model)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=AxBxC",
                   help="input shape (repeatable; default: the recipe's opt profile)")
    p.add_argument("--batch", type=int, default=None, help="batch size (replaces dim 0 of every input)")
    p.add_argument("--profile", default=None,
                   help="which optimization profile's opt shapes to analyze, e.g. decode (default: the first)")
    p.add_argument("--context", type=int, default=None, help="KV-cache length for LLMs (default: recipe)")
    p.add_argument("--llm-config", default=None,
                   help="plan an LLM from its config alone: a preset (llama-3-8b, llama-3.2-1b, "
                   "llama-3.2-3b) or a Hugging Face config.json path")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: beside the engine)")
    p.add_argument("--fail-if-not-fit", action="store_true", help="exit 3 when it does not fit the target")
    p.set_defaults(func=_analyze)
