"""An export made in one checkout stays valid in a moved copy: its digest names the built-in tokenizer
relative to the package, not by this checkout's absolute path."""

from __future__ import annotations

from pathlib import Path

from pipeline.recipe.loader import load_recipe
from pipeline.stages.export import export_digest, export_options

REPO = Path(__file__).resolve().parents[2]


def test_builtin_tokenizer_is_named_relative_to_the_package() -> None:
    recipe = load_recipe("llama")
    source = export_options(recipe)["source"]
    assert source["tokenizer"].startswith("pipeline/"), source
    assert str(REPO) not in repr(source)
    assert export_digest(recipe) == export_digest(load_recipe("llama"))
