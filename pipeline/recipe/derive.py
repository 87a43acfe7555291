"""Values a recipe states once and the rest derives: a YOLO's image size gives its input shapes and
`preprocess.size`; a Llama's KV-cache inputs and prefill / decode profiles come from `llm:` and the
model's config (layers, KV heads, head_dim, context). A stated value that disagrees is an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from .schema import LlamaRecipe, RecipeBase, VitRecipe, YoloRecipe


def derive(spec: RecipeBase, path: Path) -> dict[str, Any]:
    """Top-level updates for the validated recipe (empty when nothing is derived)."""
    if isinstance(spec, YoloRecipe):
        return _yolo(spec, path)
    if isinstance(spec, LlamaRecipe) and spec.profiles is None:
        return _llama(spec, path)
    if isinstance(spec, VitRecipe) and not spec.inputs:
        return _vit(spec, path)
    return {}


def is_builtin_default(spec: RecipeBase, section: str, key: str) -> bool:
    """Whether `section.key` is what the family's built-in recipe ships (inherited, or written alike)."""
    from .loader import _builtin_layer

    value = getattr(getattr(spec, section), key, None)
    return value is not None and value == _builtin_layer(spec.family).get(section, {}).get(key)


def _vit(spec: VitRecipe, path: Path) -> dict[str, Any]:
    """The input [batch, 3, H, W] and preprocess.size from the model's config `image_size`."""
    config, where = _model_config(spec, path)
    size = config.get("image_size", 224)
    hw = [int(v) for v in size] if isinstance(size, (list, tuple)) else [int(size), int(size)]
    if len(hw) != 2:
        raise PipelineError(f"{where}: image_size {size!r} is neither a size nor [height, width]")
    b = spec.batch
    shape = {"dtype": "float32", "min": [b.min, 3, *hw], "opt": [b.opt, 3, *hw], "max": [b.max, 3, *hw]}
    out: dict[str, Any] = {"inputs": {spec.preprocess.input: shape}}
    if spec.preprocess.size is None:
        out["preprocess"] = {"size": hw}
    return out


def image_size(spec: YoloRecipe, path: Path) -> list[int]:
    """[height, width]: `imgsz`, else `preprocess.size`, else the input's opt shape."""
    if spec.imgsz is not None:
        hw = [spec.imgsz, spec.imgsz] if isinstance(spec.imgsz, int) else list(spec.imgsz)
        if len(hw) != 2 or min(hw) < 1:
            raise PipelineError(f"recipe {path}: imgsz: expected a size or [height, width], got {spec.imgsz}")
        return hw
    if spec.preprocess.size is not None:
        return list(spec.preprocess.size)
    given = spec.inputs.get(spec.preprocess.input)
    if given is None:
        raise PipelineError(f"recipe {path}: imgsz: required key missing (the image size, e.g. imgsz: 640)")
    return list(given.opt[2:])


def _yolo(spec: YoloRecipe, path: Path) -> dict[str, Any]:
    hw = image_size(spec, path)
    said = f"imgsz {spec.imgsz}" if spec.imgsz is not None else f"preprocess.size {hw}"
    if spec.preprocess.size is not None and list(spec.preprocess.size) != hw:
        raise PipelineError(f"recipe {path}: preprocess.size {list(spec.preprocess.size)} disagrees with {said}; "
                            "set the image size once (imgsz)")
    name = spec.preprocess.input
    given = spec.inputs.get(name)
    if given is not None:
        for k in ("min", "opt", "max"):
            shape = getattr(given, k)
            if len(shape) != 4 or list(shape[2:]) != hw:
                raise PipelineError(f"recipe {path}: inputs.{name}.{k} {shape} disagrees with {said}; set the "
                                    "image size once (imgsz) and batches in `batch`, not inputs")
        return {"preprocess": {"size": hw}}
    b = spec.batch
    shape = {"dtype": "float32", "min": [b.min, 3, *hw], "opt": [b.opt, 3, *hw], "max": [b.max, 3, *hw]}
    return {"preprocess": {"size": hw}, "inputs": {name: shape}}


# ---- llama ----------------------------------------------------------------------------------------------
def pretrained_folder(spec: Any, path: Path) -> Path | None:
    """The `source.pretrained` folder when it is there; None for a config-built model.

    A folder that is not there is an error naming it, except the built-in recipe's default
    (e.g. models/llama), which falls back to `source.config` with random weights (announced at export)."""
    value = spec.source.pretrained
    if not value:
        return None
    folder = Path(value).expanduser()
    if folder.is_dir():
        return folder
    builtin_default = is_builtin_default(spec, "source", "pretrained")
    if builtin_default and spec.source.config is not None:
        return None
    raise PipelineError(f"recipe {path}: source.pretrained: folder {folder} not found"
                        + (" (and no source.config to build instead)" if builtin_default else ""))


def _model_config(spec: LlamaRecipe | VitRecipe, path: Path) -> tuple[dict[str, Any], str]:
    """The model's config: the pretrained folder's config.json, else `source.config`."""
    folder = pretrained_folder(spec, path)
    if folder is not None:
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise PipelineError(f"recipe {path}: source.pretrained {folder}: no config.json (not a "
                                "from_pretrained folder)")
        try:
            return json.loads(config_file.read_text(encoding="utf-8")), str(config_file)
        except (OSError, ValueError) as e:
            raise PipelineError(f"{config_file}: cannot read JSON ({e})") from e
    if spec.source.config is None:
        raise PipelineError(f"recipe {path}: source: give pretrained (a Hugging Face folder) or config")
    return dict(spec.source.config), "source.config"


def cache_geometry(config: dict[str, Any], where: str) -> tuple[int, int, int, int]:
    """(layers, kv_heads, head_dim, max_position_embeddings) of a Llama config."""
    try:
        layers, heads = int(config["num_hidden_layers"]), int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError) as e:
        raise PipelineError(f"{where}: not a Llama config ({e.__class__.__name__}: {e}); it needs "
                            "num_hidden_layers, num_attention_heads and hidden_size") from e
    return layers, kv_heads, head_dim, int(config.get("max_position_embeddings") or 2048)


def _llama(spec: LlamaRecipe, path: Path) -> dict[str, Any]:
    from ..llm.kv_cache import KINDS, LOGIT_POSITIONS, TOKEN_INPUTS, past_name

    if spec.inputs:
        raise PipelineError(f"recipe {path}: inputs: a Llama's inputs come from llm: and the model's config; "
                            "remove inputs (or give profiles too)")
    config, where = _model_config(spec, path)
    layers, kv_heads, head_dim, positions = cache_geometry(config, where)
    llm = spec.llm
    context = llm.max_context or positions
    if context > positions:
        raise PipelineError(f"recipe {path}: llm.max_context {context} exceeds the model's "
                            f"max_position_embeddings {positions} ({where})")
    batch, prompt = llm.max_batch, llm.max_prompt
    if prompt >= context:
        raise PipelineError(f"recipe {path}: llm.max_prompt {prompt} must be below llm.max_context {context}")
    opt_prompt, opt_context = llm.opt_prompt or max(1, prompt // 2), llm.opt_context or max(2, context // 2)

    def tokens(lo: int, opt: int, hi: int, dtype: bool) -> dict[str, Any]:
        return {**({"dtype": "int64"} if dtype else {}), "min": [1, lo], "opt": [1, opt], "max": [batch, hi]}

    def past(lo: int, opt: int, hi: int, dtype: bool) -> dict[str, Any]:
        # Sequence-major [past, batch, kv_heads, head_dim] (llm/kv_cache.py); float32 as exported, the
        # calibrated ONNX of each precision retypes it (quantize/io_dtype.py).
        return {**({"dtype": "float32"} if dtype else {}), "min": [lo, 1, kv_heads, head_dim],
                "opt": [opt, 1, kv_heads, head_dim], "max": [hi, batch, kv_heads, head_dim]}

    names = [past_name(i, k) for i in range(layers) for k in KINDS]
    prefill = {**{n: tokens(1, opt_prompt, prompt, True) for n in TOKEN_INPUTS},
               **{n: past(0, 0, 0, True) for n in names}}
    decode = {"input_ids": tokens(1, 1, 1, False), "attention_mask": tokens(1, opt_context, context, False),
              "position_ids": tokens(1, 1, 1, False), LOGIT_POSITIONS: tokens(1, 1, 1, False),
              **{n: past(0, opt_context - 1, context - 1, False) for n in names}}
    return {"inputs": prefill, "profiles": [{"name": "prefill", "phase": "prefill", "shapes": prefill},
                                            {"name": "decode", "phase": "decode", "shapes": decode}]}
