"""The known INT8 traps (shared/notes/quantization-traps.md), shown on the trained shapes fixture.

A random-weight YOLO detects nothing, so these need the trained detector in tests/fixtures/shapes/. Every
number is measured on ONNX Runtime's CPU provider against the FP32 export, on a small held-out set that
the test generates (never trained or calibrated on).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pipeline.core import onnx_utils
from pipeline.core.artifacts import Layout, write_json
from pipeline.errors import PipelineError
from pipeline.models import get_adapter
from pipeline.processing.comparison import compare_batches
from pipeline.quantize import resolve_exclusions
from pipeline.recipe.loader import load_recipe
from pipeline.runners import run
from pipeline.runners.onnxrt import onnxrt_runner
from pipeline.stages.plan import resolve_plan

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "shapes"
sys.path.insert(0, str(FIXTURE))

from make_dataset import write_dataset  # noqa: E402

OUTPUTS = ["output0"]
# Floors for this fixture on 12 held-out images; measured values are in tests/fixtures/shapes/README.md.
CRUSHED_MAX = 0.05
KEPT_MIN = 0.7


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fixture recipe pointed at freshly generated calibration / held-out images, exported once."""
    from pipeline.stages.export import export

    base = tmp_path_factory.mktemp("shapes")
    write_dataset(base / "data", {"calib": 16, "heldout": 12})
    raw = yaml.safe_load((FIXTURE / "shapes.yaml").read_text())
    raw["source"] = {k: str(FIXTURE / v) for k, v in raw["source"].items()}  # relative to the fixture's folder
    raw["calibration"]["images"] = str(base / "data" / "images" / "calib")
    raw["eval"]["images"] = str(base / "data" / "images" / "heldout")
    raw["profile"] = {"warmup": 1, "iterations": 3}
    (base / "shapes.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    recipe = load_recipe(str(base / "shapes.yaml"))
    layout = Layout(base / "engines", recipe.name)
    export(recipe, layout)
    adapter = get_adapter(recipe.family)
    data = adapter.calibration_set(recipe, base / "calib")
    eval_feeds = adapter.eval_feeds(recipe)
    with onnxrt_runner(layout.exported_onnx) as runner:
        reference = run(runner, eval_feeds, OUTPUTS)
    return {"base": base, "recipe": recipe, "layout": layout, "adapter": adapter, "eval_feeds": eval_feeds,
            "calib_feeds": adapter.calibration_feeds(recipe, data), "reference": reference}


def judge(shapes: dict[str, Any], onnx_path: Path) -> tuple[dict[str, Any], float]:
    """The adapter's task-level result (mAP vs FP32, with the recipe's floor) and the tensor cosine."""
    with onnxrt_runner(onnx_path) as runner:
        outputs = run(runner, shapes["eval_feeds"], OUTPUTS)
    task = shapes["adapter"].task_accuracy(shapes["recipe"], OUTPUTS, shapes["reference"], outputs)
    return task, compare_batches(OUTPUTS, shapes["reference"], outputs)["output0"]["cosine"]


def recipe_int8(shapes: dict[str, Any], dst: Path, **overrides: Any) -> Path:
    """The recipe's INT8 (its method, dtype and head exclusions) through the pipeline's quantizer."""
    from pipeline.quantize.int8 import ptq_int8

    src, recipe = shapes["layout"].exported_onnx, shapes["recipe"]
    header = onnx_utils.load(src, with_weights=False)
    names = [n.name for n in header.graph.node]
    options = {**recipe.precision_options("int8"), **overrides}
    exclude = resolve_exclusions("int8", options, shapes["adapter"].placeholders(onnx_utils.metadata(header), names),
                                 names)
    ptq_int8(src, dst, shapes["calib_feeds"], options, exclude)
    return dst


def quantize_static_defaults(src: str, dst: str, feeds: list[dict[str, np.ndarray]]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ)


@pytest.fixture(scope="module")
def crushed(shapes: dict[str, Any]) -> Path:
    """ONNX Runtime's quantize_static with its defaults: every op type, head included, one scale per tensor.
    In a fresh interpreter: once ModelOpt is imported (earlier tests), ONNX Runtime's calibrators are patched."""
    from pipeline.quantize.int8 import _in_fresh_interpreter

    dst = shapes["base"] / "crushed.onnx"
    _in_fresh_interpreter(quantize_static_defaults, str(shapes["layout"].exported_onnx), str(dst),
                          shapes["calib_feeds"])
    return dst


@pytest.fixture(scope="module")
def head_qdq(shapes: dict[str, Any]) -> Path:
    return write_head_qdq(shapes["layout"].exported_onnx, shapes["calib_feeds"], shapes["base"] / "head-qdq.onnx")


def write_head_qdq(src: Path, calib_feeds: Any, dst: Path) -> Path:
    """The head trap alone: FP32 everywhere except one symmetric INT8 Q/DQ on the output Concat, its scale
    from the calibration maximum (pixel coordinates), the QDQ form TensorRT builds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    with onnxrt_runner(src) as runner:
        calib_max = max(float(np.abs(o[0]).max()) for o in run(runner, calib_feeds, OUTPUTS))
    model = onnx_utils.load(src)
    producer = next(n for n in model.graph.node if "output0" in n.output)
    assert producer.op_type == "Concat", producer.name
    producer.output[list(producer.output).index("output0")] = "output0_float"
    model.graph.initializer.extend([
        numpy_helper.from_array(np.array(calib_max / 127, dtype=np.float32), "output0_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "output0_zero_point"),
    ])
    model.graph.node.extend([
        helper.make_node("QuantizeLinear", ["output0_float", "output0_scale", "output0_zero_point"],
                         ["output0_int8"], name="/head_trap/QuantizeLinear"),
        helper.make_node("DequantizeLinear", ["output0_int8", "output0_scale", "output0_zero_point"],
                         ["output0"], name="/head_trap/DequantizeLinear"),
    ])
    onnx.checker.check_model(model)
    assert TensorProto.INT8 == model.graph.initializer[-1].data_type
    onnx_utils.save(model, dst, external_data=None)
    return dst


@pytest.fixture(scope="module")
def recipe_default(shapes: dict[str, Any]) -> Path:
    return recipe_int8(shapes, shapes["base"] / "int8-recipe.onnx")


def test_fp32_reference_detects_the_shapes(shapes: dict[str, Any]) -> None:
    # Without detections in FP32, every mAP below would be undefined: this is why the fixture is trained.
    task, cosine = judge(shapes, shapes["layout"].exported_onnx)
    assert task["reference_detections"] >= 12 and task["class_score_max"] > 0.8
    assert task["map50_95_vs_fp32"] == pytest.approx(1.0) and cosine == pytest.approx(1.0)


@pytest.mark.slow
def test_shared_scale_on_output_head_crushes_scores_while_recipe_exclusions_keep_them(
    shapes: dict[str, Any], crushed: Path, recipe_default: Path
) -> None:
    crushed_task, _ = judge(shapes, crushed)
    assert crushed_task["map50_95_vs_fp32"] <= CRUSHED_MAX
    # The scores are what dies: FP32's best score is lost almost entirely.
    assert crushed_task["class_score_max_abs_error"] > 0.5 * crushed_task["class_score_max"]

    kept_task, _ = judge(shapes, recipe_default)
    assert kept_task["map50_95_vs_fp32"] >= KEPT_MIN and kept_task["passed"] is True
    assert kept_task["candidate_detections"] >= 0.5 * kept_task["reference_detections"]


@pytest.mark.slow
def test_modelopt_high_precision_fp32_default_is_at_least_as_good_as_fp16(
    shapes: dict[str, Any], recipe_default: Path, record_property: Any
) -> None:
    assert shapes["recipe"].precision_options("int8")["high_precision_dtype"] == "fp32"
    fp32_map = judge(shapes, recipe_default)[0]["map50_95_vs_fp32"]
    fp16 = recipe_int8(shapes, shapes["base"] / "int8-fp16.onnx", high_precision_dtype="fp16")
    fp16_map = judge(shapes, fp16)[0]["map50_95_vs_fp32"]
    record_property("map50_95_vs_fp32", {"high_precision_fp32": fp32_map, "high_precision_fp16": fp16_map})
    print(f"ModelOpt INT8 mAP50-95 vs FP32: high_precision_dtype fp32 {fp32_map:.3f}, fp16 {fp16_map:.3f}")
    # The shared notes saw fp16 lose ~0.4 on YOLO11n; on this fixture the two stay close. The default must
    # not be the worse one beyond the noise of 12 images.
    assert fp32_map >= fp16_map - 0.05
    assert fp16_map >= KEPT_MIN - 0.2


@pytest.mark.slow
def test_cosine_near_one_hides_the_collapse_but_the_task_gate_flags_it(
    shapes: dict[str, Any], head_qdq: Path
) -> None:
    task, cosine = judge(shapes, head_qdq)
    print(f"Q/DQ on the output Concat only: cosine {cosine:.6f}, mAP50-95 vs FP32 {task['map50_95_vs_fp32']:.3f}")
    assert task["map50_95_vs_fp32"] <= CRUSHED_MAX and task["candidate_detections"] == 0
    builtin_min_cosine = load_recipe("yolo").section("accuracy")["min_cosine"]
    # A cosine-only gate passes it, at the built-in recipe's floor and far above it.
    assert cosine >= max(builtin_min_cosine, 0.999)
    assert task["passed"] is False
    assert "mAP50-95 vs FP32" in task["gate_reason"]


@pytest.mark.slow
def test_profile_stage_fails_on_crushed_head_through_the_task_gate(
    shapes: dict[str, Any], head_qdq: Path
) -> None:
    """End to end: the head-trap model stands in as the INT8 calibration, gets built, and profile refuses it."""
    from pipeline.core.artifacts import read_json
    from pipeline.stages.build import build
    from pipeline.stages.profile import profile

    recipe, layout = shapes["recipe"], shapes["layout"]
    onnx_utils.save(onnx_utils.load(head_qdq), layout.calibrated_onnx("int8"), external_data=None)
    write_json(layout.calibrate_report("int8"), {
        "stage": "calibrate", "model": recipe.name, "precision": "int8",
        "method": "one INT8 Q/DQ on the output Concat (test trap)", "high_precision_dtype": "fp32",
        "kept_out": {"nodes": [], "op_types": [], "reason": None}, "calibration": None,
    })
    build(recipe, layout, resolve_plan(recipe, None, "int8"))
    with pytest.raises(PipelineError, match=r"mAP50-95 vs FP32 0\.0+ < 0\.7"):
        profile(recipe, layout, "int8")
    report = read_json(layout.report_json("int8"))
    assert report["accuracy"]["task"]["passed"] is False
    assert all(o["cosine"] >= recipe.section("accuracy")["min_cosine"]
               for o in report["accuracy"]["outputs"].values())


def test_task_gate_only_where_the_recipe_sets_a_floor() -> None:
    """Synthetic outputs: one confident box; the candidate either keeps it or has its scores zeroed."""
    reference = np.zeros((1, 7, 10), dtype=np.float32)
    reference[0, :4, 0] = [100, 100, 40, 40]
    reference[0, 4, 0] = 0.9
    crushed_scores = reference.copy()
    crushed_scores[0, 4:] = 0.0
    adapter = get_adapter("yolo")
    with_floor = load_recipe(str(FIXTURE / "shapes.yaml"))
    kept = adapter.task_accuracy(with_floor, OUTPUTS, [[reference]], [[reference.copy()]])
    lost = adapter.task_accuracy(with_floor, OUTPUTS, [[reference]], [[crushed_scores]])
    assert (kept["map50_95_vs_fp32"], kept["passed"]) == (1.0, True)
    assert (lost["map50_95_vs_fp32"], lost["passed"]) == (0.0, False)
    assert lost["gate_reason"] == "mAP50-95 vs FP32 0.000 < 0.7"
    # A recipe without a floor reports the mAP but does not gate on it.
    no_floor = load_recipe(str(FIXTURE / "shapes.yaml"), ["accuracy.min_map50_95_vs_fp32=null"])
    assert "passed" not in adapter.task_accuracy(no_floor, OUTPUTS, [[reference]], [[crushed_scores]])
