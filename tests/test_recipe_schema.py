"""Recipes as validated data: every error is one line naming the file, the key path and the nearest valid
key (exit 2); inheritance and --set; derived values; the built-in recipes describe what they always did;
and no code reads a recipe key the schema does not define."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.recipe.loader import RECIPES_DIR, load_recipe
from pipeline.recipe.schema import FAMILY_SCHEMAS, field_of, mapping_value_model, model_in

REPO = Path(__file__).resolve().parents[1]


def cli_error(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    lines = capsys.readouterr().err.strip().splitlines()
    return code, lines[-1] if lines else ""


def write(tmp_path: Path, text: str, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- one-line errors, exit 2 ----------------------------------------------------------------------------
ERRORS = [
    ("calibraton: {images: imgs}", "calibraton: unknown key (did you mean 'calibration'?)"),
    ("precisions: {int8: {methd: max}}", "precisions.int8.methd: unknown key (did you mean 'method'?)"),
    ("precisions: {int8: {method: entrpy}}",
     "precisions.int8.method: 'entrpy' is not one of entropy, max, percentile (did you mean 'entropy'?)"),
    ("precisions: {int4-awq: {block_size: 100}}", "precisions.int4-awq.block_size: 100 is not a power of two"),
    ("precisions: {int9: {}}", "precisions.int9: unknown key (did you mean 'int8'?)"),
    ("precisions: {fp16: {keep_fp32_nodes: [x]}}",
     "precisions.fp16.keep_fp32_nodes: renamed: write keep_out.nodes (one vocabulary for every precision)"),
    ("precisions: {int8: {keep_out: {node: [x]}}}",
     "precisions.int8.keep_out.node: unknown key (did you mean 'nodes'?)"),
    ("precisions: {default: int4-awq}", "precisions: default 'int4-awq' is not among the precisions offered"),
    ("calibration: {max_samples: many}", "calibration.max_samples: Input should be a valid integer"),
    ("eval: {imagse: x}", "eval.imagse: unknown key (did you mean 'images'?)"),
    ("calibration: {images: /x, data: /d.yaml}",
     "calibration: give images (a folder) or data (a dataset yaml), not both"),
    ("imgsz: 320\npreprocess: {size: [640, 640]}",
     "preprocess.size [640, 640] disagrees with imgsz 320; set the image size once (imgsz)"),
    ("imgsz: 320\ninputs: {images: {min: [1, 3, 320, 320], opt: [1, 3, 640, 640], max: [1, 3, 640, 640]}}",
     "inputs.images.opt [1, 3, 640, 640] disagrees with imgsz 320; set the image size once (imgsz)"),
    ("accuracy: {budget: {metric: map5095, max_drop: 0.01}}",
     "accuracy.budget.metric: 'map5095' is not one of map50_95, map50, top1, top5, perplexity, eps_mse "
     "(did you mean 'map50_95'?)"),
    ("accuracy: {budget: {metric: top1, max_increase_pct: 5}}",
     "accuracy.budget: max_increase_pct is for metric perplexity; use max_drop"),
    ("build: {strip_weight: true}", "build.strip_weight: unknown key (did you mean 'strip_weights'?)"),
    ("inputs: {images: {min: [1, 3, 8, 8], opt: [1, 3, 8, 8], maxx: [1, 3, 8, 8]}}",
     "inputs.images.maxx: unknown key (did you mean 'max'?); and 1 more problem(s)"),
    ("llm: {max_batch: 2}", "llm: unknown key for family yolo (a key of llama recipes)"),
    ("family: yollo", "family: 'yollo' is not a model family (yolo, vit, unet, llama) (did you mean 'yolo'?)"),
    ("name: my yolo", "name: 'my yolo' must be letters, digits"),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS, ids=[e[1].split(":")[0] for e in ERRORS])
def test_a_bad_recipe_is_one_line_naming_the_key(tmp_path, capsys, text: str, expected: str) -> None:
    path = write(tmp_path, f"base: yolo\nname: my-yolo\n{text}\n")
    code, line = cli_error(capsys, "export", "--model", str(path), "--root", str(tmp_path / "e"))
    assert code == 2
    assert line.startswith(f"orin-trt: error: recipe {path}: {expected}"), line
    assert not (tmp_path / "e").exists()  # refused before any work


def test_errors_through_the_real_cli_process(tmp_path) -> None:
    path = write(tmp_path, "base: yolo\nname: my-yolo\ncalibraton: {}\n")
    done = subprocess.run([sys.executable, "-m", "pipeline", "calibrate", "--model", str(path)],
                          capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"orin-trt: error: recipe {path}: calibraton: unknown key (did you mean 'calibration'?)"]


@pytest.mark.parametrize(("sets", "expected"), [
    (["calibration.max_sample=8"], "recipe {path}: calibration.max_sample: unknown key (did you mean 'max_samples'?)"),
    (["calibration.max_samples"], "--set 'calibration.max_samples': expected KEY.PATH=VALUE"),
    (["precisions.int8.method=entrpy"], "recipe {path}: precisions.int8.method: 'entrpy' is not one of"),
])
def test_set_errors(tmp_path, capsys, sets: list[str], expected: str) -> None:
    path = write(tmp_path, "base: yolo\nname: my-yolo\n")
    argv = [a for s in sets for a in ("--set", s)]
    code, line = cli_error(capsys, "engine", "--model", str(path), *argv, "--root", str(tmp_path / "e"))
    assert code == 2 and line.startswith("orin-trt: error: " + expected.format(path=path)), line


def test_base_errors(tmp_path, capsys) -> None:
    path = write(tmp_path, "base: yolov8\nname: x\n")
    code, line = cli_error(capsys, "export", "--model", str(path))
    assert code == 2 and line == (f"orin-trt: error: recipe {path}: base: unknown built-in recipe 'yolov8' "
                                  "(built-in: llama, unet, vit, yolo; or a path to a .yaml)")
    write(tmp_path, "base: b.yaml\nname: a\n", "a.yaml")
    write(tmp_path, "base: a.yaml\nname: b\n", "b.yaml")
    code, line = cli_error(capsys, "export", "--model", str(tmp_path / "a.yaml"))
    assert code == 2 and "base: the recipes inherit from each other in a circle" in line
    path = write(tmp_path, "base: ../nowhere/common.yaml\nname: c\n", "c.yaml")
    code, line = cli_error(capsys, "export", "--model", str(path))
    assert code == 2 and line == f"orin-trt: error: recipe {path}: base: {tmp_path.parent / 'nowhere' / 'common.yaml'} not found"


def test_missing_sources_are_named_before_any_fallback(tmp_path, capsys) -> None:
    # A user's checkpoint / folder that is not there is an error naming it, never random weights.
    cases = [
        ("base: yolo\nname: y\nsource: {checkpoint: weights/best.pt}\n",
         "source.checkpoint: {tmp}/weights/best.pt not found"),
        ("base: vit\nname: v\nsource: {pretrained: my-vit}\n", "source.pretrained: folder {tmp}/my-vit not found"),
        ("base: unet\nname: u\nsource: {pretrained: sd15}\n", "source.pretrained: folder {tmp}/sd15 not found"),
        ("base: llama\nname: l\nsource: {pretrained: Llama-3.2-1B}\n",
         "source.pretrained: folder {tmp}/Llama-3.2-1B not found"),
        ("base: yolo\nname: y\nsource: {checkpoint: null}\neval: {data: data/coco.yaml}\n",
         "dataset yaml {tmp}/data/coco.yaml not found"),
    ]
    for text, expected in cases:
        path = write(tmp_path, text)
        code, line = cli_error(capsys, "export", "--model", str(path), "--root", str(tmp_path / "e"))
        assert code == 2 and line == f"orin-trt: error: recipe {path}: {expected.format(tmp=tmp_path)}", line
    assert not (tmp_path / "e").exists()


def test_only_the_builtin_default_source_may_fall_back(tmp_path) -> None:
    from pipeline.models import get_adapter
    from pipeline.models.hf_source import resolve_source

    vit = load_recipe("vit")  # models/vit: the built-in default, absent in a fresh clone
    assert vit.is_builtin_default("source", "pretrained")
    if not Path("models/vit").exists():
        assert resolve_source(vit).random_weights
    inherited = load_recipe(str(write(tmp_path, "base: vit\nname: v2\n")))  # inherits the default
    assert inherited.is_builtin_default("source", "pretrained")
    # The same words in the user's own recipe name a folder beside it: absent, an error, no fallback.
    own = write(tmp_path, "base: vit\nname: v3\nsource: {pretrained: models/vit}\n")
    with pytest.raises(PipelineError, match=rf"source.pretrained: folder {tmp_path}/models/vit not found"):
        load_recipe(str(own))
    own = load_recipe(str(own), ["inputs={pixel_values: {min: [1, 3, 224, 224], opt: [1, 3, 224, 224], "
                                 "max: [1, 3, 224, 224]}}"])  # shapes given: the folder is needed at export
    assert not own.is_builtin_default("source", "pretrained")
    with pytest.raises(PipelineError, match=rf"source.pretrained: folder {tmp_path}/models/vit not found"):
        get_adapter("vit").source(own)


# ---- inheritance, --set, paths --------------------------------------------------------------------------
def test_base_merges_only_what_differs_and_lists_replace(tmp_path) -> None:
    path = write(tmp_path, "base: yolo\nname: mine\nimgsz: 320\ncalibration: {max_samples: 8}\n"
                           "precisions: {int8: {keep_out: {nodes: ['{head}/dfl/.*']}}}\n")
    mine, yolo = load_recipe(str(path)), load_recipe("yolo")
    assert mine.name == "mine" and mine.family == "yolo"
    assert mine.section("calibration")["max_samples"] == 8
    assert mine.section("calibration")["recommended_min"] == yolo.section("calibration")["recommended_min"] == 500
    int8 = mine.precision_options("int8")
    assert int8["keep_out"]["nodes"] == ["{head}/dfl/.*"]  # the list replaced, not appended
    assert int8["keep_out"]["reason"] == yolo.precision_options("int8")["keep_out"]["reason"]  # the rest merged
    assert int8["method"] == "entropy"


def test_base_by_path_and_paths_relative_to_each_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "team").mkdir()
    write(tmp_path / "team", "base: yolo\nname: team\ncalibration: {images: shared/calib}\n", "common.yaml")
    path = write(tmp_path, "base: team/common.yaml\nname: mine\neval: {images: heldout}\n")
    monkeypatch.chdir(REPO)  # the working directory plays no part
    recipe = load_recipe(str(path))
    assert recipe.section("calibration")["images"] == str(tmp_path / "team" / "shared" / "calib")
    assert recipe.section("eval")["images"] == str(tmp_path / "heldout")
    # Bare names ultralytics resolves stay names; built-in recipes' paths stay relative to the clone.
    assert recipe.section("source")["checkpoint"] == "yolo11n.pt"
    assert load_recipe("vit").section("source")["pretrained"] == "models/vit"


def test_set_overrides_with_yaml_values(tmp_path) -> None:
    recipe = load_recipe("yolo", ["imgsz=320", "calibration.max_samples=16", "precisions.int8.method=max",
                                  "accuracy.min_map50_95_vs_fp32=null", "batch={min: 1, opt: 2, max: 8}"])
    assert recipe.inputs["images"] == {"dtype": "float32", "min": [1, 3, 320, 320], "opt": [2, 3, 320, 320],
                                       "max": [8, 3, 320, 320]}
    assert recipe.section("preprocess")["size"] == [320, 320]
    assert recipe.section("calibration")["max_samples"] == 16
    assert recipe.precision_options("int8")["method"] == "max"
    assert "min_map50_95_vs_fp32" not in recipe.section("accuracy")


def test_make_passes_set_root_and_calib_root() -> None:
    # Under `make test` the parent make's MAKEFLAGS would add "Entering/Leaving directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(["make", "-n", "--no-print-directory", "engine", "MODEL=my.yaml",
                          "SET=imgsz=320 calibration.max_samples=8", "ROOT=/data/engines", "CALIB_ROOT=/data/calib",
                          "PRECISION=int8"],
                         capture_output=True, text=True, cwd=REPO, check=True, env=env).stdout.strip().splitlines()[-1]
    assert out.split()[1:] == ["engine", "--model", "my.yaml", "--set", "'imgsz=320'", "--set",
                               "'calibration.max_samples=8'", "--root", "/data/engines", "--calib-root",
                               "/data/calib", "--precision", "int8"]


# ---- derived once ---------------------------------------------------------------------------------------
def test_yolo_image_size_is_set_once(tmp_path) -> None:
    recipe = load_recipe(str(write(tmp_path, "base: yolo\nname: y\nimgsz: [384, 640]\n")))
    assert recipe.inputs["images"]["opt"] == [1, 3, 384, 640] and recipe.section("preprocess")["size"] == [384, 640]
    # Said the other way, over the base's imgsz 640: the new size, in both places.
    for recipe in (load_recipe(str(write(tmp_path, "base: yolo\nname: y\npreprocess: {size: [320, 320]}\n"))),
                   load_recipe("yolo", ["preprocess.size=[320, 320]"])):
        assert recipe.inputs["images"]["max"] == [4, 3, 320, 320] and recipe.section("preprocess")["size"] == [320, 320]
    # An old-style recipe stating inputs and preprocess.size that agree still loads.
    old = yaml.safe_load((REPO / "tests" / "fixtures" / "shapes" / "shapes.yaml").read_text())
    assert old["inputs"] and old["preprocess"]["size"] == [320, 320]


def test_llama_cache_layout_comes_from_the_config(tmp_path) -> None:
    import json

    folder = tmp_path / "Llama-tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 4, "hidden_size": 256,
        "max_position_embeddings": 1024}))
    recipe = load_recipe(str(write(tmp_path, "base: llama\nname: l\nsource: {pretrained: Llama-tiny}\n"
                                             "llm: {max_batch: 2, max_prompt: 100, max_context: null}\n")))
    prefill, decode = recipe.profiles
    past = [n for n in prefill["shapes"] if n.startswith("past_key_values.")]
    assert past == [f"past_key_values.{i}.{k}" for i in range(3) for k in ("key", "value")]
    assert prefill["shapes"]["past_key_values.2.value"]["max"] == [0, 2, 4, 32]  # head_dim 256 / 8
    assert decode["shapes"]["attention_mask"]["max"] == [2, 1024]  # context: max_position_embeddings
    assert decode["shapes"]["past_key_values.0.key"]["opt"] == [511, 1, 4, 32]
    assert prefill["shapes"]["input_ids"] == {"dtype": "int64", "min": [1, 1], "opt": [1, 50], "max": [2, 100]}
    with pytest.raises(PipelineError, match=r"llm.max_context 4096 exceeds the model's max_position_embeddings 1024"):
        load_recipe(str(tmp_path / "my.yaml"), ["llm.max_context=4096"])


def test_vit_input_shape_comes_from_the_folder_config(tmp_path) -> None:
    import json

    from pipeline.models.vit import VitAdapter

    folder = tmp_path / "vit-384"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"image_size": 64, "patch_size": 16, "num_labels": 3}))
    (folder / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 64, "width": 64}}))
    recipe = load_recipe(str(write(tmp_path, "base: vit\nname: v\nsource: {pretrained: vit-384}\n"
                                             "batch: {max: 2}\n")))
    assert recipe.inputs["pixel_values"] == {"dtype": "float32", "min": [1, 3, 64, 64], "opt": [1, 3, 64, 64],
                                             "max": [2, 3, 64, 64]}
    spec = VitAdapter().preprocess(recipe)  # the folder's processor config, checked against the shapes
    assert spec["size"] == [64, 64] and spec["resize"] == "resize"


# ---- the built-in recipes on the schema build what they always did ---------------------------------------
# (The KV-cache profiles as the device-resident contract of issue 15 has them: sequence-major past,
# logit_positions, decode from an empty past.)
OLD_LLAMA_PREFILL = {"dtype": "int64", "min": [1, 1], "opt": [1, 64], "max": [4, 128]}
OLD_LLAMA_PAST = {"dtype": "float32", "min": [0, 1, 2, 32], "opt": [0, 1, 2, 32], "max": [0, 4, 2, 32]}
OLD_LLAMA_DECODE = {
    "input_ids": {"min": [1, 1], "opt": [1, 1], "max": [4, 1]},
    "attention_mask": {"min": [1, 1], "opt": [1, 128], "max": [4, 256]},
    "position_ids": {"min": [1, 1], "opt": [1, 1], "max": [4, 1]},
    "logit_positions": {"min": [1, 1], "opt": [1, 1], "max": [4, 1]},
    **{f"past_key_values.{i}.{k}": {"min": [0, 1, 2, 32], "opt": [127, 1, 2, 32], "max": [255, 4, 2, 32]}
       for i in range(2) for k in ("key", "value")},
}


def test_builtin_recipes_keep_their_shapes_and_options() -> None:
    """The values the hand-written recipes spelled out before the schema (inputs, per-layer KV profiles,
    preprocess, what is kept out) are what the shorter recipes now derive."""
    yolo = load_recipe("yolo")
    assert yolo.profiles == [{"name": "default", "phase": None, "shapes": {
        "images": {"min": [1, 3, 640, 640], "opt": [1, 3, 640, 640], "max": [4, 3, 640, 640]}}}]
    assert yolo.section("preprocess") == {"input": "images", "size": [640, 640], "resize": "letterbox",
                                          "pad_value": 114, "color": "RGB", "layout": "NCHW",
                                          "scale": 0.00392156862745098, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    assert yolo.precision_options("fp16")["keep_out"]["nodes"] == ["{head}/dfl/.*", "{head}/Sigmoid.*",
                                                                   "{head}/Concat_\\d+$"]
    llama = load_recipe("llama")
    assert [p["phase"] for p in llama.profiles] == ["prefill", "decode"]
    prefill = llama.profiles[0]["shapes"]
    assert {n: prefill[n] for n in ("input_ids", "attention_mask", "position_ids", "logit_positions")} == {
        n: OLD_LLAMA_PREFILL for n in ("input_ids", "attention_mask", "position_ids", "logit_positions")}
    assert all(prefill[f"past_key_values.{i}.{k}"] == OLD_LLAMA_PAST for i in range(2) for k in ("key", "value"))
    assert llama.profiles[1]["shapes"] == OLD_LLAMA_DECODE
    assert llama.inputs == prefill
    assert llama.precision_options("fp16")["keep_out"] == {"nodes": [".*_layernorm/.*", "/model/model/norm/.*"],
                                                          "op_types": ["Softmax"]}
    assert llama.precision_options("int8")["smoothquant"] == {"alpha": 0.5}
    # max with the attention blocks in float: within the eps budget on the trained fixture (docs/tuning.md).
    assert load_recipe("unet").precision_options("int8")["method"] == "max"
    assert load_recipe("vit").precision_options("int8")["op_types_to_quantize"] == ["MatMul", "Gemm", "Conv"]
    for name in ("yolo", "vit", "unet", "llama"):
        recipe = load_recipe(name)
        again = RECIPES_DIR.parent / "recipes" / f"{name}.yaml"
        assert recipe.builtin and recipe.path == again
        # The expanded recipe (what a bundle carries) loads back to the same thing.
        assert FAMILY_SCHEMAS[recipe.family].model_validate(recipe.raw).model_dump() == recipe.spec.model_dump()


def test_reading_a_key_the_schema_lacks_is_a_bug_not_a_default() -> None:
    yolo = load_recipe("yolo")
    with pytest.raises(KeyError, match=r"recipe key calibration.imagez is not in the schema"):
        yolo.section("calibration").get("imagez")
    with pytest.raises(KeyError, match=r"recipe key llm.max_batch is not in the schema"):
        yolo.section("llm").get("max_batch")  # a section of another family
    assert yolo.section("inputs") == yolo.inputs  # keyed by input names: part of the export's cache key


# ---- the docs are generated from the schema ------------------------------------------------------------
def test_own_model_doc_is_the_generated_text() -> None:
    from pipeline.recipe.docs import DOC, generate, splice

    current = DOC.read_text(encoding="utf-8")
    assert splice(current, generate()) == current, "docs/own-model.md is stale: run `orin-trt recipe-docs`"


def test_the_ten_line_recipes_of_the_doc_validate(tmp_path) -> None:
    """Every ```yaml block under 'The recipe you write' in docs/own-model.md is a loadable recipe."""
    from pipeline.recipe.loader import validate

    text = (REPO / "docs" / "own-model.md").read_text(encoding="utf-8").split("<!-- BEGIN GENERATED")[0]
    blocks = [b.split("```")[0] for b in text.split("```yaml\n")[1:]]
    assert len(blocks) >= 3
    for block in blocks:
        raw = yaml.safe_load(block)
        assert len(block.strip().splitlines()) <= 10
        base = yaml.safe_load((RECIPES_DIR / f"{raw['base']}.yaml").read_text())
        from pipeline.recipe.loader import deep_merge

        merged = deep_merge(base, {k: v for k, v in raw.items() if k != "base"})
        validate(merged, tmp_path / "doc.yaml")  # schema only: the files it names are the reader's


# ---- no code reads a key the schema does not define ----------------------------------------------------
def _schema_has(path: tuple[str, ...], families: list[str], precisions: list[str] | None = None) -> bool:
    """Whether `path` (section, key, key...) is defined for any of `families`; `*` = any of `precisions`
    (default: every precision of the table)."""
    import typing

    from pipeline.recipe.precisions import PRECISIONS

    def step(state: tuple, key: str) -> list[tuple]:
        kind, model = state
        if kind == "any":  # a free-form mapping (source.config): anything goes below
            return [state]
        if kind == "named":  # dict[str, Model]: `key` is a user's name (an input)
            return [("model", model)]
        f = field_of(model, key)
        if f is None:
            return []
        inner, values = model_in(f.annotation), mapping_value_model(f.annotation)
        if inner is not None:
            return [("model", inner)]
        if values is not None:
            is_dict = any(typing.get_origin(a) is dict for a in (f.annotation, *typing.get_args(f.annotation)))
            return [("named" if is_dict else "model", values)]
        return [("any", None)]

    for family in families:
        states: list[tuple] = [("model", FAMILY_SCHEMAS[family])]
        for i, key in enumerate(path):
            if path[:i] == ("precisions",) and key == "*":
                states = [("model", p.options) for p in PRECISIONS.values() if precisions is None or p.name in precisions]
                continue
            states = [n for s in states for n in step(s, key)]
            if not states:
                break
        if states:
            return True
    return False


class Reads(ast.NodeVisitor):
    """Recipe key reads: `<x>.section("s").get("k")`, `cfg["k"]` on a name bound to a section (also through
    dict(...), `or {}` and nested .get), `options.get("k")` in a quantizer, `<x>.precision_options(p)`."""

    def __init__(self, quantizer: bool, typed_spec: bool) -> None:
        self.quantizer, self.typed_spec, self.found, self.bound, self.typed = quantizer, typed_spec, [], {}, {}

    def path(self, node: ast.AST) -> tuple[str, ...] | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "section" and node.args and isinstance(node.args[0], ast.Constant):
                return (node.args[0].value,)
            if node.func.attr == "precision_options":
                return ("precisions", "*")
            if node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant):
                base = self.path(node.func.value)
                return None if base is None else self.read(node, base, node.args[0].value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and node.args:
            return self.path(node.args[0])
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            base = self.path(node.value)
            return None if base is None else self.read(node, base, node.slice.value)
        if isinstance(node, ast.BoolOp):
            return self.path(node.values[0])
        if isinstance(node, ast.Name):
            if self.quantizer and node.id == "options":
                return ("precisions", "*")
            return self.bound.get(node.id)
        return None

    def read(self, node: ast.AST, base: tuple[str, ...], key: object) -> tuple[str, ...]:
        if isinstance(key, str):
            self.found.append(((*base, key), node.lineno))
        return (*base, str(key))

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if (self.typed_spec and isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
                and value.value.id == "spec"):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.typed[target.id] = (value.attr,)  # llm = spec.llm
        p = self.path(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if p is not None:
                    self.bound[target.id] = p
                else:
                    self.bound.pop(target.id, None)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        """Typed reads: `recipe.spec.<section>.<key>` (in recipe_derive.py: a parameter `spec`), also through
        a name bound to a section (`llm = spec.llm`)."""
        chain, root = [], node
        while isinstance(root, ast.Attribute) and root.attr != "spec":
            chain.insert(0, root.attr)
            root = root.value
        base = None
        if (isinstance(root, ast.Attribute) and isinstance(root.value, ast.Name) and root.value.id == "recipe") or (
                self.typed_spec and isinstance(root, ast.Name) and root.id == "spec"):
            base = ()
        elif isinstance(root, ast.Name) and root.id in self.typed:
            base = self.typed[root.id]
        if base is not None and chain and not getattr(node, "_called", False):
            self.found.append(((*base, *chain), node.lineno))
            return  # the inner attributes are prefixes of this read
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            node.func._called = True  # a method of a model (spec.precisions.offered()), not a key
            self.visit(node.func.value)
            for child in [*node.args, *node.keywords]:
                self.visit(child)
            self.path(node)
            return
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        saved, self.bound, typed, self.typed = self.bound, {}, self.typed, {}
        self.generic_visit(node)
        self.bound, self.typed = saved, typed

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.path(node)
        self.generic_visit(node)


def recipe_reads(source: str, quantizer: bool = False, typed_spec: bool = False) -> list[tuple[tuple[str, ...], int]]:
    reads = Reads(quantizer, typed_spec)
    reads.visit(ast.parse(source))
    return sorted(set(reads.found), key=lambda r: r[1])


def test_the_scanner_sees_reads_and_catches_a_typo() -> None:
    code = ("def f(recipe):\n    cfg = recipe.section('calibration')\n    n = cfg.get('max_samples', 3)\n"
            "    p = dict(recipe.section('export')).get('parity', {}).get('atol')\n"
            "    return (cfg.get('imagez') or {}), recipe.section('eval')['split']\n")
    found = [p for p, _ in recipe_reads(code)]
    assert set(found) == {("calibration", "max_samples"), ("export", "parity"), ("export", "parity", "atol"),
                          ("calibration", "imagez"), ("eval", "split")}
    assert [p for p in found if not _schema_has(p, ["yolo"])] == [("calibration", "imagez")]
    typed = ("def g(spec):\n    llm = spec.llm\n    return spec.source.pretrained, llm.max_batch, llm.max_batches, "
             "spec.precisions.offered()\n")
    found = [p for p, _ in recipe_reads(typed, typed_spec=True)]
    assert set(found) == {("llm",), ("source", "pretrained"), ("llm", "max_batch"), ("llm", "max_batches"),
                          ("precisions",)}
    assert [p for p in found if not _schema_has(p, ["llama"])] == [("llm", "max_batches")]
    assert not _schema_has(("precisions", "*", "percentile"), ["yolo"], ["int4-awq"])


def test_every_recipe_key_read_in_pipeline_is_in_the_schema() -> None:
    from pipeline.recipe.precisions import PRECISIONS

    families = list(FAMILY_SCHEMAS)
    unknown, total = [], 0
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        rel = path.relative_to(REPO)
        scope = [path.stem] if rel.parent == Path("pipeline/models") and path.stem in families else families
        quantizer = rel.parent == Path("pipeline/quantize")
        # A quantizer module reads its own precision's options (quantize/__init__.py: any precision's).
        module = ".".join(rel.with_suffix("").parts)
        own = [p.name for p in PRECISIONS.values() if p.quantizer.split(":")[0] == module] or None
        typed = rel == Path("pipeline/recipe/derive.py")  # its functions take the validated model as `spec`
        for keys, line in recipe_reads(path.read_text(encoding="utf-8"), quantizer, typed):
            total += 1
            if not _schema_has(keys, scope, own):
                unknown.append(f"{rel}:{line}: {'.'.join(keys)}")
    assert not unknown, "recipe keys read but not in pipeline/recipe/schema.py:\n" + "\n".join(unknown)
    assert total > 80  # the scanner really sees the stages', adapters' and quantizers' reads


def test_recipe_command_prints_what_the_stages_see(tmp_path, capsys) -> None:
    path = write(tmp_path, "base: llama\nname: l\nsource: {pretrained: null}\nllm: {max_batch: 2}\n")
    assert main(["recipe", "--model", str(path), "--set", "calibration.max_samples=8"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["profiles"][1]["shapes"]["past_key_values.1.value"]["max"] == [255, 2, 2, 32]
    assert printed["calibration"]["max_samples"] == 8 and "base" not in printed
    again = write(tmp_path, yaml.safe_dump(printed), "expanded.yaml")  # a whole recipe: it loads as is
    assert load_recipe(str(again)).raw == load_recipe(str(path), ["calibration.max_samples=8"]).raw


def test_every_precision_resolves_what_it_keeps_out() -> None:
    from pipeline.quantize import resolve_exclusions

    yolo = load_recipe("yolo")
    nodes = ["/model.23/dfl/conv/Conv", "/model.23/Sigmoid", "/model.23/Concat_5", "/model.23/Concat_3",
             "/model.23/Mul_2", "/model.23/Add_1", "/model.23/Sub", "/model.23/Div_1", "/model.0/conv/Conv"]
    assert resolve_exclusions("fp32", yolo.precision_options("fp32"), {}, nodes) == {
        "nodes": [], "op_types": [], "reason": None}  # fp32 has nothing to keep out (no keep_out key)
    int8 = resolve_exclusions("int8", yolo.precision_options("int8"), {"head": "/model.23"}, nodes)
    assert int8["nodes"][0] == r"/model\.23/dfl/.*" and int8["reason"].startswith("YOLO output head")
    with pytest.raises(PipelineError, match=r"precisions.int8.keep_out.nodes: pattern '/nope.\*' matches no node"):
        resolve_exclusions("int8", load_recipe("yolo", ["precisions.int8.keep_out.nodes=['/nope.*']"])
                           .precision_options("int8"), {}, nodes)
