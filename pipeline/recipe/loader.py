"""Model recipes: what a model is, its inputs and profiles, calibration set, precisions and checks.

A recipe is data, validated by the schema in recipe_schema.py. Built-in ones live in
pipeline/recipes/<name>.yaml; a user passes a path to their own, which may start from another with
`base: <built-in name or path>` and give only what differs (mappings merge key by key, lists and values
replace). `--set key.path=value` changes one key for one run.

Paths: a relative path in a user's recipe file resolves against that file's folder (a base file's
against the base's folder); in a built-in recipe, and in `--set`, against the working directory (the
clone, where `make` runs), as the engines/ and calib/ roots do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..core.artifacts import read_yaml
from ..errors import PipelineError
from . import precisions as precision_table
from .schema import BUILTIN, NAME_OR_PATH_KEYS, PATH_KEYS, RecipeBase, explain, family_schema, keys_of

RECIPES_DIR = Path(__file__).parents[1] / "recipes"
PRECISIONS = precision_table.NAMES


def builtin_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


class Section(dict):
    """A recipe section as a plain mapping (cache keys, manifests). Reading a key the schema does not
    define is a bug in the reader, never a user's typo, so it raises instead of returning a default."""

    def __init__(self, data: dict[str, Any] | None = None, where: str = "",
                 keys: tuple[str, ...] | None = None) -> None:
        super().__init__(data or {})
        self.where, self.keys_defined = where, keys  # None: keys are the user's names (inputs)

    def _check(self, key: Any) -> None:
        if self.keys_defined is not None and key not in self.keys_defined:
            raise KeyError(f"recipe key {self.where}.{key} is not in the schema (pipeline/recipe/schema.py)")

    def __getitem__(self, key: Any) -> Any:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)

    def __reduce__(self) -> Any:
        return (Section, (dict(self), self.where, self.keys_defined))


# Sections end up in YAML written by tests and tools; they dump as the plain mappings they are.
yaml.SafeDumper.add_representer(Section, yaml.representer.SafeRepresenter.represent_dict)


def as_section(model: BaseModel, where: str) -> Section:
    out: dict[str, Any] = {}
    for name, f in type(model).model_fields.items():
        value = getattr(model, name)
        key = f.alias or name
        if value is None:
            continue
        if isinstance(value, BaseModel):
            out[key] = as_section(value, f"{where}.{key}")
        else:
            out[key] = model.model_dump(by_alias=True, exclude_none=True, include={name})[key]
    return Section(out, where, tuple(keys_of(type(model))))


@dataclass(frozen=True)
class Recipe:
    raw: dict[str, Any]  # the validated, expanded recipe (defaults and derived shapes filled in)
    path: Path
    spec: RecipeBase
    builtin: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        return self.raw["inputs"]

    @property
    def profiles(self) -> list[dict[str, Any]]:
        """Optimization profiles: the recipe's `profiles` list, or one built from `inputs`."""
        if "profiles" in self.raw:
            return [{"name": p["name"], "phase": p.get("phase"), "shapes": p["shapes"]} for p in self.raw["profiles"]]
        shapes = {n: {k: s[k] for k in ("min", "opt", "max")} for n, s in self.inputs.items()}
        return [{"name": "default", "phase": None, "shapes": shapes}]

    def section(self, key: str) -> Section:
        value = getattr(self.spec, key, None)
        if isinstance(value, BaseModel):
            return as_section(value, key)
        if isinstance(self.raw.get(key), dict):  # `inputs`: keyed by the user's input names
            return Section(self.raw[key], key)
        return Section({}, key, ())  # a section this family has no keys for

    @property
    def default_precision(self) -> str:
        return self.spec.precisions.default or "fp32"

    @property
    def precisions(self) -> list[str]:
        return self.spec.precisions.offered()

    def resolve_precision(self, precision: str | None) -> str:
        precision = precision or self.default_precision
        precision_table.get(precision)  # unknown names: the table's error
        if precision not in self.precisions:
            raise PipelineError(
                f"recipe {self.path}: precision {precision!r} is not offered for model {self.name!r} "
                f"(offered: {', '.join(self.precisions)})"
            )
        return precision

    def precision_options(self, precision: str) -> Section:
        options = self.spec.precisions.options(precision)
        if options is None:
            return Section({}, f"precisions.{precision}", ())
        return as_section(options, f"precisions.{precision}")

    def resolve_path(self, value: str) -> Path:
        """Recipe paths are already made absolute against their recipe file's folder when loaded (a
        built-in's stay relative to the working directory)."""
        return Path(value).expanduser()

    def is_builtin_default(self, section: str, key: str) -> bool:
        """Whether `section.key` is what the family's built-in recipe ships (only those may fall back to
        random weights when absent: a user's own path never does)."""
        from .derive import is_builtin_default

        return is_builtin_default(self.spec, section, key)


# ---- loading --------------------------------------------------------------------------------------------
@cache
def _builtin_layer(name: str) -> dict[str, Any]:
    path = RECIPES_DIR / f"{name}.yaml"
    return read_yaml(path, "recipe") if path.exists() else {}


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: mappings merge key by key; lists, values and null replace."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# Ways of stating an image size: a layer (or --set) stating one of them replaces all that it inherits,
# so `preprocess.size: [320, 320]` over `base: yolo` (imgsz 640) is a new size, not a disagreement.
SIZE_KEYS = (("imgsz",), ("preprocess", "size"), ("inputs",))


def _has(raw: dict[str, Any], keys: tuple[str, ...]) -> bool:
    node: Any = raw
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return False
        node = node[k]
    return True


def merge_layer(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    if any(_has(top, keys) for keys in SIZE_KEYS):
        base = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        for keys in SIZE_KEYS:
            if not _has(top, keys) and _has(base, keys):
                holder = base if len(keys) == 1 else base[keys[0]]
                holder.pop(keys[-1])
    return deep_merge(base, top)


def _is_path_like(value: str) -> bool:
    return "/" in value or value.endswith((".yaml", ".yml"))


def _absolute_paths(layer: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative paths of one user recipe file, made absolute against its folder."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in layer.items()}
    for keys in PATH_KEYS:
        holder: Any = out if len(keys) == 1 else out.get(keys[0])
        key = keys[-1]
        if not isinstance(holder, dict) or not isinstance(holder.get(key), str):
            continue
        value = holder[key]
        if value == BUILTIN or Path(value).expanduser().is_absolute():
            continue
        if keys == ("base",) and not _is_path_like(value):
            continue  # a built-in recipe's name
        candidate = (folder / value).resolve()
        # A bare name ultralytics resolves (yolo11n.pt) stays a name unless the file is beside the recipe.
        if keys in NAME_OR_PATH_KEYS and "/" not in value and not candidate.exists():
            continue
        holder[key] = str(candidate)
    return out


def _locate(name_or_path: str) -> tuple[Path, bool]:
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise PipelineError(f"recipe {candidate}: file not found")
        return candidate, False
    path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise PipelineError(
            f"unknown model {name_or_path!r} (built-in: {', '.join(builtin_recipes())}; or pass a recipe .yaml path)"
        )
    return path, True


def _layers(path: Path, builtin: bool, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe file merged over its `base` chain, with each file's relative paths resolved."""
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise PipelineError(f"recipe {seen[0]}: base: the recipes inherit from each other in a circle ({chain})")
    raw = read_yaml(path, "recipe")
    if not isinstance(raw, dict):
        raise PipelineError(f"recipe {path}: expected a mapping at the top level")
    if not builtin:
        raw = _absolute_paths(raw, path.parent.resolve())
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise PipelineError(f"recipe {path}: base: expected a built-in recipe name or a path, got {base!r}")
    if _is_path_like(base):
        base_path, base_builtin = Path(base), False
        if not base_path.is_file():
            raise PipelineError(f"recipe {path}: base: {base_path} not found")
    else:
        if base not in builtin_recipes():
            raise PipelineError(f"recipe {path}: base: unknown built-in recipe {base!r} "
                                f"(built-in: {', '.join(builtin_recipes())}; or a path to a .yaml)")
        base_path, base_builtin = RECIPES_DIR / f"{base}.yaml", True
    return merge_layer(_layers(base_path, base_builtin, (*seen, path.resolve())), raw)


def parse_set(item: str) -> tuple[list[str], Any]:
    """`calibration.max_samples=32` -> (['calibration', 'max_samples'], 32): the value is YAML."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip() or any(not k for k in key.strip().split(".")):
        raise PipelineError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. calibration.max_samples=32")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        raise PipelineError(f"--set {item!r}: the value is not YAML ({e.__class__.__name__})") from e
    return key.strip().split("."), value


def apply_sets(raw: dict[str, Any], items: list[str]) -> dict[str, Any]:
    for item in items:
        keys, value = parse_set(item)
        patch: Any = value
        for k in reversed(keys):
            patch = {k: patch}
        raw = merge_layer(raw, patch)
    return raw


def validate(raw: dict[str, Any], path: Path) -> RecipeBase:
    if "family" not in raw:
        raise PipelineError(f"recipe {path}: family: required key missing (yolo, vit, unet or llama)")
    try:
        schema = family_schema(raw["family"])
    except ValueError as e:
        raise PipelineError(f"recipe {path}: {e}") from e
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        raise PipelineError(f"recipe {path}: {explain(e, raw, schema)}") from e


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """A built-in recipe by model name, or a user's YAML file by path, with `--set` overrides."""
    from .derive import derive

    path, builtin = _locate(name_or_path)
    raw = apply_sets(_layers(path, builtin), list(overrides or []))
    spec = validate(raw, path)
    derived = derive(spec, path)
    if derived:
        spec = validate(deep_merge(spec.model_dump(by_alias=True, exclude_none=True), derived), path)
    expanded = spec.model_dump(by_alias=True, exclude_none=True)
    return Recipe(expanded, path, spec, builtin and not overrides)
