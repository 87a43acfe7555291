"""Model recipes: what a model is, its inputs and profiles, calibration set, precisions and checks.

A recipe is data. Built-in ones live in pipeline/recipes/<name>.yaml; a user passes a path to their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import read_yaml
from .errors import PipelineError

RECIPES_DIR = Path(__file__).parent / "recipes"
PRECISIONS = ("fp32", "fp16", "int8", "int4-awq")
REQUIRED = ("name", "family", "source", "inputs", "precisions")


def builtin_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Recipe:
    raw: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def family(self) -> str:
        return self.raw["family"]

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        return self.raw["inputs"]

    @property
    def profiles(self) -> list[dict[str, Any]]:
        """Optimization profiles: the recipe's `profiles` list, or one built from `inputs`."""
        if "profiles" in self.raw:
            return self.raw["profiles"]
        shapes = {n: {k: s[k] for k in ("min", "opt", "max")} for n, s in self.inputs.items()}
        return [{"name": "default", "phase": None, "shapes": shapes}]

    def section(self, key: str) -> dict[str, Any]:
        return self.raw.get(key) or {}

    @property
    def default_precision(self) -> str:
        return self.raw["precisions"].get("default", "fp32")

    @property
    def precisions(self) -> list[str]:
        return [p for p in self.raw["precisions"] if p != "default"]

    def resolve_precision(self, precision: str | None) -> str:
        precision = precision or self.default_precision
        if precision not in PRECISIONS:
            raise PipelineError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
        if precision not in self.precisions:
            raise PipelineError(
                f"recipe {self.path}: precision {precision!r} is not offered for model {self.name!r} "
                f"(offered: {', '.join(self.precisions)})"
            )
        return precision

    def precision_options(self, precision: str) -> dict[str, Any]:
        return self.raw["precisions"].get(precision) or {}

    def resolve_path(self, value: str) -> Path:
        """A path in a recipe is relative to the working directory, like the engines/ and calib/ roots."""
        return Path(value).expanduser()


def _validate(raw: Any, path: Path) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PipelineError(f"recipe {path}: expected a mapping at the top level")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise PipelineError(f"recipe {path}: missing key(s) {', '.join(missing)}")
    for name, spec in raw["inputs"].items():
        for k in ("min", "opt", "max"):
            if k not in (spec or {}):
                raise PipelineError(f"recipe {path}: inputs.{name} lacks '{k}' (min/opt/max shape profile)")
        mn, opt, mx = spec["min"], spec["opt"], spec["max"]
        if not (len(mn) == len(opt) == len(mx)) or any(
            not (a <= b <= c) for a, b, c in zip(mn, opt, mx, strict=True)
        ):
            raise PipelineError(f"recipe {path}: inputs.{name} needs min <= opt <= max of equal rank")
    for p in raw["precisions"]:
        if p != "default" and p not in PRECISIONS:
            raise PipelineError(f"recipe {path}: precisions.{p} is not one of {', '.join(PRECISIONS)}")
    return raw


def load_recipe(name_or_path: str) -> Recipe:
    """A built-in recipe by model name, or a user's YAML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        path = candidate
    else:
        path = RECIPES_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise PipelineError(
                f"unknown model {name_or_path!r} (built-in: {', '.join(builtin_recipes())}; "
                "or pass a recipe .yaml path)"
            )
    return Recipe(_validate(read_yaml(path, "recipe"), path), path)
