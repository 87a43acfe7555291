"""`orin-trt sparsify`: 2:4 structured pruning of the exported ONNX's conv / matmul weights, with the
sparsity ratio and how far the outputs moved; build the result with the sparse-weights flag."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_model_options


def _sparsify(args: argparse.Namespace) -> int:
    from ..core.artifacts import Layout, read_json, write_json
    from ..recipe.loader import load_recipe
    from ..stages.sparsify import sparse_layout, sparsify_file, sparsify_stage

    recipe = load_recipe(args.model, args.overrides)
    if args.onnx or args.output:  # an ad-hoc file: no stage cache
        from ..analyze import recipe_shapes
        from ..analyze.shapes import graph_inputs
        from ..core.onnx_utils import load
        from ..errors import PipelineError

        src = args.onnx or Layout(args.root, recipe.name).exported_onnx
        if not src.exists():
            raise PipelineError(f"{src}: nothing to sparsify; run `make export MODEL={recipe.name}` or pass --onnx")
        dst = args.output or src.with_name("model.sparse24.onnx")
        names = {v.name for v in graph_inputs(load(src, with_weights=False))}
        shapes = {n: s for n, s in recipe_shapes(recipe.profiles, None).items() if n in names}
        report = sparsify_file(src, dst, shapes if set(shapes) == names else None)
        write_json(dst.with_name("sparsify.json"), report)
    else:
        layout = Layout(args.root, recipe.name)
        sparsify_stage(recipe, layout, args.force)
        dst = sparse_layout(layout).exported_onnx
        report = read_json(dst.with_name("sparsify.json"))
    print(f"{dst}: {report['layers_sparsified']} layers 2:4-sparse, sparsity {report['sparsity_ratio']:.1%} "
          f"of their weights; {report['layers_skipped']} skipped")
    for name, change in (report.get("accuracy_change") or {}).items():
        print(f"  output {name}: cosine {change['cosine']:.5f}, max abs change {change['max_abs']:.4g}"
              + (" (random weights: plumbing only)" if report["random_weights"] else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sparsify", help="2:4 structured pruning of conv / matmul weights (for --sparse builds)",
                       description="Prune the exported FP32 ONNX to the 2:4 pattern of Ampere's sparse tensor "
                       "cores and report the sparsity ratio and the change of the outputs.")
    add_model_options(p, precision=False)
    p.add_argument("--onnx", type=Path, default=None, help="input ONNX (default: the exported model)")
    p.add_argument("--output", type=Path, default=None,
                   help="output ONNX (default: engines/<model>-sparse24/model.onnx, which `make engine SPARSE=1` builds)")
    p.set_defaults(func=_sparsify)
