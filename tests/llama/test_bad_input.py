"""Bad Llama recipes and data: one-line errors that name the file or option at fault."""

from __future__ import annotations

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.llm.tokenizer import load_tokenizer
from pipeline.models.llama import LlamaAdapter, limits
from pipeline.recipe.loader import load_recipe

from .conftest import TINY_CONFIG, tiny_llama_recipe


def _recipe(tmp_path, **overrides):
    return load_recipe(str(tiny_llama_recipe(tmp_path, **overrides)))


def test_a_missing_phase_profile_is_named(tmp_path) -> None:
    path = tiny_llama_recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["profiles"] = load_recipe(str(path)).profiles[:1]  # profiles written by hand: only the prefill one
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PipelineError, match=r"llama-test.yaml: profiles need one with phase: decode"):
        limits(load_recipe(str(path)))


def test_missing_texts_are_named(tmp_path) -> None:
    recipe = _recipe(tmp_path, calibration={"text": str(tmp_path / "nope.txt")},
                     eval={"text": str(tmp_path / "gone.txt")})
    with pytest.raises(PipelineError, match=r"calibration.text: .*nope.txt is neither a text file nor a folder"):
        LlamaAdapter().calibration_set(recipe, tmp_path / "calib")
    with pytest.raises(PipelineError, match=r"eval.text: held-out text file .*gone.txt not found"):
        LlamaAdapter().eval_feeds(recipe)


def test_calibration_text_shorter_than_one_window(tmp_path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("Too short.")
    recipe = _recipe(tmp_path, calibration={"text": str(short), "sequence_length": 64})
    with pytest.raises(PipelineError, match="fewer than one calibration window of 64"):
        LlamaAdapter().calibration_set(recipe, tmp_path / "calib")


def test_a_tokenizer_folder_without_tokenizer_json(tmp_path) -> None:
    with pytest.raises(PipelineError, match=r"empty: no tokenizer.json"):
        load_tokenizer(tmp_path / "empty")


def test_a_tokenizer_path_that_is_not_a_folder(tmp_path) -> None:
    source = {"pretrained": None, "tokenizer": str(tmp_path / "tok"), "config": TINY_CONFIG}
    with pytest.raises(PipelineError, match=r"llama-test.yaml: source.tokenizer .*tok' is not a folder"):
        LlamaAdapter().source(_recipe(tmp_path, source=source))


def test_a_model_folder_without_tokenizer_json_is_not_given_the_builtin_one(tmp_path, llama_ws: dict) -> None:
    from pipeline.llm.tokenizer import BUILTIN_TOKENIZER
    from pipeline.models.llama import recipe_tokenizer_dir

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    folder = tmp_path / "my-llama"
    model.save_pretrained(folder)  # config.json and weights, no tokenizer
    recipe = _recipe(tmp_path, source={"pretrained": str(folder), "tokenizer": None})
    with pytest.raises(PipelineError, match=rf"source.pretrained {folder}: no tokenizer.json .*'builtin' on purpose"):
        LlamaAdapter().source(recipe)
    chosen = _recipe(tmp_path, name="llama-chosen", source={"pretrained": str(folder), "tokenizer": "builtin"})
    assert recipe_tokenizer_dir(chosen) == BUILTIN_TOKENIZER  # asked for by name: allowed


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_an_export_the_disk_cannot_take_is_refused_before_it_writes(tmp_path, capsys) -> None:
    from ..test_bad_input import run_cli
    from ..test_failures import tmpfs

    recipe = tiny_llama_recipe(tmp_path)
    with tmpfs(tmp_path / "small", "2m") as root:
        code, line = run_cli(capsys, "export", "--model", str(recipe), "--root", str(root))
        left = [p.name for p in root.rglob("*") if p.is_file() and p.suffix in (".onnx", ".data")]
    assert code == 2 and left == []
    assert line.startswith("orin-trt: error: export: needs ") and "of free disk under " in line
    assert line.endswith("free (free some, or pass another --root)")
