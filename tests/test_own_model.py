"""Your own model, the way users have it: a trained checkpoint in a six-line recipe builds and profiles the
same engine as the full copy of its recipe; ultralytics dataset yamls, <class>/<image> folders and text
files of any extension are read as they are; small calibration sets warn once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.core.artifacts import Layout, read_json
from pipeline.errors import PipelineError
from pipeline.models.yolo_dataset import label_files, label_path, read_dataset
from pipeline.recipe.loader import load_recipe

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "shapes"
TINY_JPG = REPO / "tests" / "data" / "tiny.jpg"


def images(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(TINY_JPG, folder / n)


# ---- dataset yaml ---------------------------------------------------------------------------------------
def test_ultralytics_dataset_yaml(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    images(root / "images" / "train", "a.jpg", "b.jpg")
    images(root / "images" / "val", "c.jpg")
    images(root / "extra", "d.jpg")
    (root / "calib.txt").write_text("./images/train/a.jpg\n./extra/d.jpg\n")
    (tmp_path / "data.yaml").write_text("path: ds\ntrain: images/train\nval: [images/val, extra]\n"
                                        "calib: calib.txt\nnames: {0: circle, 1: square}\n")
    ds = read_dataset(tmp_path / "data.yaml")
    assert ds.root == root and ds.names == ["circle", "square"]
    assert [p.name for p in ds.images("train")] == ["a.jpg", "b.jpg"]
    assert [p.name for p in ds.images("val")] == ["c.jpg", "d.jpg"]
    assert [p.name for p in ds.images("calib")] == ["a.jpg", "d.jpg"]
    assert ds.folder("train") == root / "images" / "train"
    assert label_files(ds, "train")[root / "images" / "train" / "a.jpg"] == root / "labels" / "train" / "a.txt"
    assert label_path(Path("/d/images/x/images/val/1.png")) == Path("/d/images/x/labels/val/1.txt")
    with pytest.raises(PipelineError, match=r"data.yaml: no split 'test' \(it has train, val, calib\)"):
        ds.images("test")
    with pytest.raises(PipelineError, match=r"data.yaml: split 'val' must be one image folder to use here"):
        ds.folder("val")
    (tmp_path / "bad.yaml").write_text("train: images/train\nnames: {0: a, 2: b}\n")
    with pytest.raises(PipelineError, match=r"bad.yaml: names: class indices must run 0..1 without gaps"):
        read_dataset(tmp_path / "bad.yaml")
    (tmp_path / "gone.yaml").write_text("path: ds\ntrain: images/nope\nnames: [a]\n")
    with pytest.raises(PipelineError, match=r"gone.yaml: split 'train': .*images/nope not found"):
        read_dataset(tmp_path / "gone.yaml").images("train")


def test_detector_calibrates_on_a_dataset_split(tmp_path: Path) -> None:
    from pipeline.models.image_data import eval_images, image_calibration_set

    images(tmp_path / "images" / "train", "a.jpg", "b.jpg", "c.jpg")
    images(tmp_path / "images" / "val", "v.jpg")
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [thing]\n")
    recipe = load_recipe(str(_write(tmp_path, "base: yolo\nname: d\ncalibration: {data: data.yaml}\n"
                                              "eval: {data: data.yaml}\n")))
    data = image_calibration_set(recipe, tmp_path / "calib")
    assert (data.path, data.count) == (tmp_path / "images" / "train", 3)  # no calib split: train
    assert data.recommended_min == 500 and "split 'train' of" in data.description
    assert eval_images(recipe) == [tmp_path / "images" / "val" / "v.jpg"]
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\ncalib: images/val\nnames: [x]\n")
    assert image_calibration_set(recipe, tmp_path / "calib").path == tmp_path / "images" / "val"


def test_classifier_class_folders_calibrate_as_they_are(tmp_path: Path) -> None:
    from pipeline.models.image_data import image_calibration_set

    images(tmp_path / "train" / "goldfish", "1.jpg", "2.jpg")
    images(tmp_path / "train" / "tench", "3.jpg")
    recipe = load_recipe(str(_write(tmp_path, "base: vit\nname: c\ncalibration: {images: train}\n")))
    assert image_calibration_set(recipe, tmp_path / "calib").count == 3


def test_llm_text_of_any_extension_or_one_file(tmp_path: Path) -> None:
    from pipeline.models.llama import LlamaAdapter

    corpus = tmp_path / "corpus"
    (corpus / "chapters").mkdir(parents=True)
    text = (REPO / "pipeline" / "data" / "llm" / "calibration.txt").read_text()
    (corpus / "chapters" / "one.md").write_text(text[: len(text) // 2])
    (corpus / "two.rst").write_text(text[len(text) // 2 :])
    (corpus / ".hidden").write_text("\x00\x01 not text")
    (tmp_path / "heldout.md").write_text((REPO / "pipeline" / "data" / "llm" / "heldout.txt").read_text())
    recipe = load_recipe(str(_write(tmp_path, "base: llama\nname: l\nsource: {pretrained: null}\n"
                                              "calibration: {text: corpus, max_samples: 1000}\n"
                                              "eval: {text: heldout.md}\n")))
    adapter = LlamaAdapter()
    folder_set = adapter.calibration_set(recipe, tmp_path / "calib")
    assert folder_set.path == corpus and folder_set.count > 1
    one_file = load_recipe(str(tmp_path / "my.yaml"), [f"calibration.text={corpus / 'two.rst'}"])
    assert 0 < adapter.calibration_set(one_file, tmp_path / "calib").count < folder_set.count
    assert len(adapter.heldout_ids(recipe)) > 100
    (corpus / "bad.bin").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(PipelineError, match=r"bad.bin: not UTF-8 text"):
        adapter.calibration_set(recipe, tmp_path / "calib")


def _write(folder: Path, text: str, name: str = "my.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ---- the trained checkpoint in six lines ----------------------------------------------------------------
SHORT = """\
base: yolo
name: shapes
source: {checkpoint: weights/best.pt}
imgsz: 320
calibration: {data: data/data.yaml}
eval: {data: data/data.yaml}
accuracy: {budget: {metric: map50_95, max_drop: 0.05}}
"""


@pytest.fixture(scope="module")
def two_recipes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture's full recipe and the six-line one over the same checkpoint and images."""
    from tests.conftest import fixture_module

    generator = fixture_module("shapes", "make_dataset")
    CLASSES, write_dataset = generator.CLASSES, generator.write_dataset  # noqa: N806 - the generator's names

    base = tmp_path_factory.mktemp("own")
    write_dataset(base / "data", {"calib": 16, "heldout": 8})
    names = "".join(f"\n  {i}: {n}" for i, n in enumerate(CLASSES))
    (base / "data" / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/heldout\n"
                                             f"calib: images/calib\nnames:{names}\n")
    (base / "weights").mkdir()
    shutil.copy(FIXTURE / "shapes-yolo.pt", base / "weights" / "best.pt")
    full = yaml.safe_load((FIXTURE / "shapes.yaml").read_text())
    full["source"] = {"checkpoint": str(base / "weights" / "best.pt"), "config": str(FIXTURE / "shapes-yolo11.yaml")}
    full["calibration"]["images"] = str(base / "data" / "images" / "calib")
    full["eval"]["images"] = str(base / "data" / "images" / "heldout")
    (base / "full.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    (base / "short.yaml").write_text(SHORT)
    return {"base": base, "full": base / "full.yaml", "short": base / "short.yaml"}


def _graph_digest(path: Path) -> str:
    import hashlib

    import onnx

    model = onnx.load(str(path))
    return hashlib.sha256(model.graph.SerializeToString()).hexdigest()


@pytest.mark.slow
def test_six_line_recipe_builds_and_profiles_the_same_engine(two_recipes, capsys) -> None:
    assert len(SHORT.strip().splitlines()) <= 10
    base, manifests, reports = two_recipes["base"], {}, {}
    for which in ("full", "short"):
        root, calib = base / which / "engines", base / which / "calib"
        args = ["--model", str(two_recipes[which]), "--precision", "int8", "--root", str(root)]
        assert main(["engine", *args, "--calib-root", str(calib)]) == 0
        err = capsys.readouterr().err
        # The short recipe inherits yolo's recommended_min: 500; it warns once, from calibrate only.
        assert err.count("or more are recommended") == (1 if which == "short" else 0), err
        assert main(["profile", *args]) == 0
        layout = Layout(root, "shapes")
        manifests[which], reports[which] = read_json(layout.manifest("int8")), read_json(layout.report_json("int8"))
        manifests[which]["graphs"] = [_graph_digest(layout.exported_onnx), _graph_digest(layout.calibrated_onnx("int8"))]
    # A second run: everything up to date, no warning repeated.
    assert main(["engine", "--model", str(two_recipes["short"]), "--precision", "int8", "--root",
                 str(base / "short" / "engines"), "--calib-root", str(base / "short" / "calib")]) == 0
    assert "recommended" not in capsys.readouterr().err
    full, short = manifests["full"], manifests["short"]
    volatile = ("created_utc", "engine", "onnx", "builder", "memory")
    assert {k: v for k, v in full.items() if k not in volatile} == {k: v for k, v in short.items() if k not in volatile}
    assert full["builder"]["workspace_bytes"] == short["builder"]["workspace_bytes"]
    assert short["postprocess"]["class_names"] == ["circle", "square", "triangle"]  # from data.yaml's names
    assert short["calibration"]["samples"] == 16 and short["precision_detail"]["kept_out"]["nodes"]
    # The same numbers on every runner that ran: per-output cosine / errors and the detection mAP vs FP32.
    def agreement(report: dict) -> dict:  # the numbers, not whether they gate (that depends on labels)
        return {r: {"outputs": x["outputs"], "task": {k: v for k, v in x["task"].items() if k not in ("passed", "gate_reason")}}
                for r, x in report["accuracy"]["by_runner"].items()}

    assert agreement(reports["full"]) == agreement(reports["short"])
    # Labels (eval.data; 8 images, hence a wider budget than the default 0.005) make the short recipe's
    # gate ground truth; the full recipe has only images, so agreement with FP32 gates it.
    assert reports["short"]["accuracy"]["gate"]["reference"] == "ground truth"
    assert reports["short"]["accuracy"]["gate"]["budget"]["passed"]
    assert reports["full"]["accuracy"]["gate"]["reference"] == "FP32 agreement"
    assert reports["short"]["accuracy"]["task"]["map50_95_vs_fp32"] > 0.7
