"""Where a Hugging Face-style model comes from: a local `from_pretrained` folder when present, else a
config in the recipe with seeded random weights (offline default, announced loudly)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.log import warn
from ..errors import PipelineError
from ..recipe.loader import Recipe
from .base import SourceInfo


@dataclass(frozen=True)
class HfSource:
    folder: Path | None  # the from_pretrained folder, or None for a config-built model
    config: dict[str, Any]  # the model's config (from config.json, or the recipe's source.config)
    seed: int

    @property
    def random_weights(self) -> bool:
        return self.folder is None

    def describe(self) -> str:
        return str(self.folder) if self.folder else f"config in recipe (random weights, seed {self.seed})"

    def load(self, model_class: Any, build: Callable[[dict[str, Any]], Any], dtype: str = "float32") -> Any:
        """`model_class.from_pretrained(folder)`, else `build(config)` with the seed; in eval mode, its
        weights in `dtype` from the start (no FP32 copy on the way). Errors name the folder or the config."""
        import torch

        name = model_class.__name__
        if self.folder:
            try:
                # transformers 5 names it `dtype` and always loads without a first random copy; diffusers
                # still says `torch_dtype` and needs low_cpu_mem_usage for that.
                kwargs = ({"torch_dtype": getattr(torch, dtype), "low_cpu_mem_usage": True}
                          if model_class.__module__.startswith("diffusers") else {"dtype": getattr(torch, dtype)})
                return model_class.from_pretrained(str(self.folder), **kwargs).eval()
            except Exception as e:
                raise PipelineError(f"{self.folder}: cannot load {name} ({e})") from e
        torch.manual_seed(self.seed)
        try:
            with default_dtype(dtype):
                return build(self.config).eval()
        except Exception as e:
            raise PipelineError(f"source.config: not a valid {name} config ({e})") from e


@contextlib.contextmanager
def default_dtype(dtype: str) -> Iterator[None]:
    """Parameters created inside are `dtype` from the start: a random-weight FP16 model never exists in FP32."""
    import torch

    saved = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def read_json_file(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PipelineError(f"{path}: cannot read JSON ({e})") from e


def resolve_source(recipe: Recipe, subfolder: str | None = None) -> HfSource:
    """`source.pretrained` (a folder; `subfolder` inside it when it holds a whole pipeline), else
    `source.config` with random weights. A pretrained folder that is not there is an error naming it,
    except the built-in recipe's default (e.g. models/vit), which falls back to the config, loudly."""
    from ..recipe.derive import pretrained_folder

    src = recipe.section("source")
    seed = int(src.get("seed", 0))
    folder = pretrained_folder(recipe.spec, recipe.path)
    if folder is not None:
        if subfolder and (folder / subfolder / "config.json").exists():
            folder = folder / subfolder
        if (folder / "config.json").exists():
            return HfSource(folder, read_json_file(folder / "config.json"), seed)
        raise PipelineError(f"recipe {recipe.path}: source.pretrained {folder}: no config.json (not a "
                            "from_pretrained folder)")
    config = src.get("config")
    if not isinstance(config, dict):
        raise PipelineError(f"recipe {recipe.path}: source: give pretrained (a from_pretrained folder) or config "
                            "(the model's config as a mapping)")
    return HfSource(None, dict(config), seed)


def source_info(source: HfSource) -> SourceInfo:
    """The cache key sees the folder's files (weights, configs) or the config itself."""
    if source.folder is None:
        return SourceInfo({"config": source.config, "seed": source.seed, "random": True})
    files = sorted(p for p in source.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return SourceInfo({"pretrained": str(source.folder), "random": False}, files)


def announce_random(stage: str, family: str, source: HfSource) -> str:
    msg = (f"!!! no local {family} folder (source.pretrained); building the model from source.config with "
           f"RANDOM WEIGHTS (seed {source.seed}): accuracy numbers will be meaningless !!!")
    warn(stage, msg)
    return msg
