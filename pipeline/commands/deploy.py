"""`orin-trt deploy`: consumer configs from an engine's manifest (a Triton model repository, or a
DeepStream nvinfer config), so the serving side never restates what the build already recorded."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_model_options

FORMATS = ("triton", "deepstream")


def _deploy(args: argparse.Namespace) -> int:
    from ..core.log import warn
    from ..deploy.source import load_engine, load_manifest_file
    from ..recipe.loader import load_recipe

    if args.manifest:
        art = load_manifest_file(args.manifest)
    else:
        recipe = load_recipe(args.model, args.overrides)
        art = load_engine(args.root, recipe.name, recipe.resolve_precision(args.precision))
    from ..platform.drift import guard_on_jetson

    guard_on_jetson(art.manifest, art.engine_path, "deploy")
    # Beside the engine by default: generated artifacts stay under the (ignored) engines root.
    out = args.out or art.engine_path.parent / args.format
    if args.format == "triton":
        from ..deploy.triton import write_repository

        folder = write_repository(art, out, args.name)
        print(f"{folder}: Triton model '{folder.name}' (config.pbtxt, 1/model.plan"
              + (", labels.txt)" if art.class_names else ")")
              + f"; serve with: tritonserver --model-repository {folder.parent}")
    else:
        from ..deploy.deepstream import write_config

        path, notes = write_config(art, out, args.batch_size, args.custom_lib)
        for note in notes:
            warn("deploy", note)
        print(f"{path}: nvinfer config (with model.engine and labels.txt beside it); "
              f"use it as the config-file-path of an nvinfer element")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..deploy.deepstream import DEFAULT_CUSTOM_LIB

    p = sub.add_parser("deploy", help="Triton model repository or DeepStream nvinfer config from an engine",
                       description="Write the files a Triton server or a DeepStream nvinfer element needs, "
                       "generated from engines/<model>/<precision>/model.engine.json.")
    add_model_options(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="triton | deepstream")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: <root>/<model>/<precision>/<format>, beside the engine); "
                   "for triton it is the model repository and the model folder goes inside")
    p.add_argument("--manifest", type=Path, default=None,
                   help="an engine manifest to deploy instead of --model/--precision under --root")
    p.add_argument("--name", default=None, help="Triton model name (default: the model's)")
    p.add_argument("--batch-size", type=int, default=1, help="DeepStream batch-size (default 1)")
    p.add_argument("--custom-lib", default=DEFAULT_CUSTOM_LIB,
                   help="DeepStream: path of libnvdsinfer_orin_yolo.so on the device "
                   f"(default: {DEFAULT_CUSTOM_LIB}, where `make cpp` builds it in the JetPack container)")
    p.set_defaults(func=_deploy)
