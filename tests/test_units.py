"""Fast unit tests of the pieces every stage relies on."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.artifacts import atomic_dir, atomic_path, read_json, sha256_file, write_json
from pipeline.core.cache import StageSpec, run_stage
from pipeline.errors import PipelineError
from pipeline.processing.comparison import compare
from pipeline.processing.detection import Detections, decode_yolo, map50_95, nms
from pipeline.processing.image import letterbox, list_images, normalize
from pipeline.recipe.loader import load_recipe
from pipeline.runners import check_in_profile


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.engine"
    target.write_bytes(b"old engine")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half an eng")
            raise RuntimeError("builder crashed")
    assert target.read_bytes() == b"old engine"
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "images"
    with atomic_dir(target) as tmp:
        (tmp / "a.jpg").write_bytes(b"first")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.jpg").write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["a.jpg"]
    with atomic_dir(target) as tmp:
        (tmp / "c.jpg").write_bytes(b"second")
    assert [p.name for p in target.iterdir()] == ["c.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["images"]  # no scratch or old copy left


def test_write_json_keeps_infinity_readable(tmp_path: Path) -> None:
    write_json(tmp_path / "r.json", {"snr_db": math.inf})
    assert read_json(tmp_path / "r.json") == {"snr_db": "inf"}
    assert "Infinity" not in (tmp_path / "r.json").read_text()


def _spec(tmp_path: Path, inp: Path, out: Path, options: dict) -> StageSpec:
    return StageSpec("unit", tmp_path / "stamp.json", inputs={"in": [inp]}, options=options, outputs=[out])


def test_stage_cache_skips_reruns_and_names_what_changed(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.txt", tmp_path / "out.txt"
    inp.write_text("a")
    calls = []

    def work() -> dict:
        calls.append(1)
        out.write_text(inp.read_text().upper())
        return {"n": len(calls)}

    first = run_stage(_spec(tmp_path, inp, out, {"k": 1}), work)
    assert not first.skipped and first.reason == "no previous run"
    second = run_stage(_spec(tmp_path, inp, out, {"k": 1}), work)
    assert second.skipped and second.summary == {"n": 1}
    assert run_stage(_spec(tmp_path, inp, out, {"k": 2}), work).reason == "changed: options"
    inp.write_text("b")
    assert run_stage(_spec(tmp_path, inp, out, {"k": 2}), work).reason == "changed: input:in"
    out.write_text("tampered")
    assert run_stage(_spec(tmp_path, inp, out, {"k": 2}), work).reason == "outputs missing or modified"
    assert run_stage(_spec(tmp_path, inp, out, {"k": 2}), work, force=True).reason == "--force"
    assert len(calls) == 5 and out.read_text() == "B"


def test_stage_cache_writes_no_stamp_when_work_fails(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.txt", tmp_path / "out.txt"
    inp.write_text("a")

    def broken() -> dict:
        raise PipelineError("boom")

    with pytest.raises(PipelineError):
        run_stage(_spec(tmp_path, inp, out, {}), broken)
    assert not (tmp_path / "stamp.json").exists()


def test_compare_metrics_against_hand_computed_values() -> None:
    ref = np.array([3.0, 4.0])
    cand = np.array([3.0, 5.0])
    m = compare(ref, cand)
    assert m["max_abs"] == 1.0
    assert m["max_rel"] == pytest.approx(0.25)
    assert m["cosine"] == pytest.approx((9 + 20) / (5 * math.sqrt(34)))
    assert m["snr_db"] == pytest.approx(10 * math.log10(25 / 1))
    assert compare(ref, ref)["snr_db"] == math.inf


def test_nms_and_map_on_hand_made_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, np.zeros(3, dtype=np.int64), 0.5).tolist() == [0, 2]
    ref = [Detections(boxes[[0, 2]], scores[[0, 2]], np.array([0, 1]))]
    assert map50_95(ref, ref) == pytest.approx(1.0)
    shifted = [Detections(boxes[[1, 2]], scores[[1, 2]], np.array([0, 1]))]
    # Box 1 overlaps box 0 with IoU 81/119 = 0.68: a hit at thresholds 0.50..0.65 (4 of 10) for class 0.
    assert map50_95(ref, shifted) == pytest.approx((0.4 + 1.0) / 2)
    assert map50_95([Detections(boxes[:0], scores[:0], np.array([], dtype=int))], ref) is None


def test_decode_yolo_reads_the_documented_layout() -> None:
    out = np.zeros((1, 4 + 2, 3), dtype=np.float32)
    out[0, :4, 0] = [100, 100, 20, 10]  # cx, cy, w, h
    out[0, 5, 0] = 0.9  # class 1
    out[0, :4, 1] = [101, 100, 20, 10]  # duplicate, lower score: suppressed
    out[0, 5, 1] = 0.8
    out[0, 4, 2] = 0.1  # below threshold
    (d,) = decode_yolo(out, conf_threshold=0.25, iou_threshold=0.7)
    assert d.classes.tolist() == [1]
    np.testing.assert_allclose(d.boxes[0], [90, 95, 110, 105])


def test_letterbox_fits_and_pads_evenly() -> None:
    img = np.full((100, 200, 3), 255, dtype=np.uint8)
    out, box = letterbox(img, (320, 320))
    assert out.shape == (320, 320, 3)
    assert box.ratio == pytest.approx(1.6) and (box.pad_left, box.pad_top) == (0, 80)
    assert (out[:80] == 114).all() and (out[80:240] == 255).all() and (out[240:] == 114).all()
    back = box.to_source(np.array([[0, 80, 320, 240]], dtype=np.float32))
    np.testing.assert_allclose(back, [[0, 0, 200, 100]])
    x = normalize(out, {"scale": 1 / 255, "layout": "NCHW"})
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32 and x.max() == pytest.approx(1.0)


def test_image_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not found"):
        list_images(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PipelineError, match="empty"):
        list_images(empty)
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(PipelineError, match="notes.txt: not an image"):
        list_images(empty)


def test_recipe_errors_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="unknown model 'nosuch'"):
        load_recipe("nosuch")
    recipe = load_recipe("yolo")
    with pytest.raises(PipelineError, match="unknown precision 'int3'"):
        recipe.resolve_precision("int3")
    with pytest.raises(PipelineError, match="'int4-awq' is not offered"):
        recipe.resolve_precision("int4-awq")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfamily: yolo\nsource: {}\nprecisions: {fp32: {}}\n"
                   "inputs: {images: {min: [1], opt: [4], max: [2]}}\n")
    with pytest.raises(PipelineError, match=r"bad.yaml: inputs.images: needs min <= opt <= max"):
        load_recipe(str(bad))
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_recipe(str(tmp_path / "broken.yaml"))


def test_shape_outside_profile_is_refused_with_the_bounds() -> None:
    profile = {"images": {"min": [1, 3, 320, 320], "max": [2, 3, 320, 320]}}
    check_in_profile({"images": np.zeros((2, 3, 320, 320), np.float32)}, profile, "engine")
    with pytest.raises(PipelineError, match=r"shape \[4, 3, 320, 320\] is outside the profile min"):
        check_in_profile({"images": np.zeros((4, 3, 320, 320), np.float32)}, profile, "engine")


def test_sha256_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f").startswith("ba7816bf")
