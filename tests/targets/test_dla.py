"""DLA: calibration-cache format, QDQ -> QDQ-free translation keeping every scale, preflight, refusals."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from pipeline.analyze.shapes import infer
from pipeline.errors import PipelineError
from pipeline.platform.dla import run_preflight
from pipeline.platform.dla.calib_cache import read_cache, render, scale_to_hex, version_tag, write_cache
from pipeline.platform.dla.preflight import preflight
from pipeline.platform.dla.translate import translate, translate_file

from .graphs import conv_matmul, qdq_conv, save


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_cache_format_is_tensorrts() -> None:
    assert version_tag("10.3.0.30") == "100300" and version_tag("8.6.1.6") == "8601"
    assert scale_to_hex(1.0) == "3f800000"  # IEEE-754 big-endian, as TensorRT writes it
    text = render({"input": 0.02, "conv_out": 3.0517578125e-05}, "10.3.0.30")
    lines = text.splitlines()
    assert lines[0] == "TRT-100300-EntropyCalibration2"
    assert lines[1] == "input: " + struct.pack(">f", 0.02).hex()
    assert len(lines[2].split(": ")[1]) == 8
    with pytest.raises(PipelineError, match="scale 0.0"):
        render({"t": 0.0}, "10.3.0")


def test_cache_round_trip_and_tensorrt_style_lines(tmp_path: Path) -> None:
    path = write_cache(tmp_path / "c.cache", {"a": 0.5, "b/with space": 1e-3}, "10.3.0")
    header, scales = read_cache(path)
    assert header == "TRT-100300-EntropyCalibration2"
    assert scales == {"a": 0.5, "b/with space": np.float32(1e-3).item()}
    # a cache TensorRT itself wrote (short hex without leading zeros is read too)
    (tmp_path / "trt.cache").write_text("TRT-8401-EntropyCalibration2\ninput: 3caa54fc\n366: 0\n")
    _, trt_scales = read_cache(tmp_path / "trt.cache")
    assert trt_scales["input"] == pytest.approx(0.020792, rel=1e-4) and trt_scales["366"] == 0.0
    (tmp_path / "bad.cache").write_text("TRT-8401-EntropyCalibration2\ninput 3caa54fc\n")
    with pytest.raises(PipelineError, match="bad.cache:2"):
        read_cache(tmp_path / "bad.cache")


def test_translation_keeps_every_qdq_scale() -> None:
    qdq = qdq_conv(x_scale=0.02, y_scale=0.05)
    result = translate(qdq)
    ops = [n.op_type for n in result.model.graph.node]
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
    assert ops == ["Conv", "Relu", "MaxPool"]
    # every cache scale equals the QDQ scale it came from (float32-exact)
    assert result.scales["x"] == np.float32(0.02).item() and result.from_qdq["x"] == "x_q"
    assert result.scales["r"] == np.float32(0.05).item() and result.from_qdq["r"] == "r_q"
    assert result.propagated == {"y": "r"} and result.scales["y"] == result.scales["r"]
    assert result.unscaled == ["c"]  # the conv output had no Q/DQ: it stays FP16 on the DLA
    # the weight is the dequantized INT8 weight: q * per-channel scale
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in result.model.graph.initializer}
    src = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    np.testing.assert_array_equal(inits["wdq"], src["wq"].astype(np.float32) * src["ws"].reshape(4, 1, 1, 1))
    onnx.checker.check_model(result.model)
    # and computes what the QDQ model computes, up to the activation rounding the QDQ model adds
    x = np.random.default_rng(0).uniform(-2, 2, (1, 3, 8, 8)).astype(np.float32)
    ref, got = _run(qdq, x), _run(result.model, x)
    saturated = np.clip(got, -127 * 0.05, 127 * 0.05)  # TensorRT saturates at the cached range too
    # half an output step, plus half an input step (0.01) through 27 taps of |w| <= 127 * 0.04
    assert np.abs(ref - saturated).max() <= 0.5 * 0.05 + 27 * 0.01 * 127 * 0.04


def test_translation_of_an_onnxruntime_quantized_model(tmp_path: Path) -> None:
    fp32 = save(conv_matmul(), tmp_path / "fp32.onnx")
    rng = np.random.default_rng(0)
    qdq_path = tmp_path / "qdq.onnx"
    # A fresh interpreter: ModelOpt, once imported by other tests, patches ONNX Runtime's quantizer.
    script = textwrap.dedent(f"""
        import numpy as np
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        rng = np.random.default_rng(0)
        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter([{{"x": rng.standard_normal((1, 4, 16, 16)).astype(np.float32)}} for _ in range(4)])
            def get_next(self):
                return next(self.items, None)
        quantize_static({str(fp32)!r}, {str(qdq_path)!r}, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        extra_options={{"ActivationSymmetric": True, "WeightSymmetric": True}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    qdq = onnx.load(str(qdq_path))
    act_q = {n.input[0]: onnx.numpy_helper.to_array(next(i for i in qdq.graph.initializer if i.name == n.input[1]))
             for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    result = translate_file(qdq_path, tmp_path / "dla.onnx", tmp_path / "dla.cache", "10.3.0.30")
    _, cached = read_cache(tmp_path / "dla.cache")
    assert act_q and all(cached[t] == np.float32(s).item() for t, s in act_q.items())
    assert set(result.from_qdq) == set(act_q)
    clean = onnx.load(str(tmp_path / "dla.onnx"))
    # ORT also quantizes the graph output: an Identity keeps the output name on the unquantized tensor
    assert {n.op_type for n in clean.graph.node} == {"Conv", "Relu", "Flatten", "MatMul", "Identity"}
    assert [o.name for o in clean.graph.output] == ["y"]
    x = rng.standard_normal((1, 4, 16, 16)).astype(np.float32)
    ref = _run(onnx.load(str(fp32)), x)
    assert np.corrcoef(ref.ravel(), _run(clean, x).ravel())[0, 1] > 0.99


def test_translation_refuses_what_tensorrt_cannot_express() -> None:
    asym = qdq_conv()
    for init in asym.graph.initializer:
        if init.name == "zp":
            init.CopyFrom(onnx.numpy_helper.from_array(np.array(3, np.int8), "zp"))
    with pytest.raises(PipelineError, match="node 'x_q': zero point"):
        translate(asym)


def test_preflight_lists_gpu_nodes_and_transitions() -> None:
    model = conv_matmul()
    p = preflight(model, infer(model, {"x": [1, 4, 16, 16]}))
    assert p.verdicts["conv"] is None and p.verdicts["relu"] is None
    assert p.gpu_nodes == {"fc": "MatMul is not a DLA layer"}
    assert p.transitions == [("flatten", "fc", "DLA->GPU")]


def test_preflight_conv_limits_and_dynamic_shapes() -> None:
    big = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv33", pads=[16, 16, 16, 16])],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 40, 40])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.ones((1, 1, 33, 33), np.float32), "w")])
    model = helper.make_model(big, opset_imports=[helper.make_opsetid("", 17)])
    assert preflight(model, infer(model, {"x": [1, 1, 40, 40]})).gpu_nodes == {"conv33": "kernel [33, 33] outside 1..32"}
    dyn = preflight(model, infer(model, {"x": [1, 1, 40, 40]}), dynamic_inputs=["x"])
    assert "DLA needs min = opt = max" in dyn.gpu_nodes["conv33"]


def test_strict_policy_fails_before_the_build(tmp_path: Path) -> None:
    path = save(conv_matmul(), tmp_path / "m.onnx")
    static = [{"name": "default", "shapes": {"x": {"min": [1, 4, 16, 16], "opt": [1, 4, 16, 16], "max": [1, 4, 16, 16]}}}]
    with pytest.raises(PipelineError, match=r"--dla-policy strict: 1 of 4 nodes .* fc \(MatMul is not a DLA layer\)"):
        run_preflight(path, static, "strict")
    summary = run_preflight(path, static, "fallback")
    assert summary["on_dla"] == 3 and summary["transitions"][0]["direction"] == "DLA->GPU"
    with pytest.raises(PipelineError, match="--dla-policy lenient"):
        run_preflight(path, static, "lenient")


def test_tensorrt_rtx_refuses_dla_clearly() -> None:
    from pipeline.trt.backend import select_backend
    from pipeline.trt.dla_build import configure_dla, dla_blocker

    backend = select_backend()
    if not backend.is_rtx:
        pytest.skip("standard TensorRT present: the refusal under TensorRT-RTX does not apply")
    assert "has no DLA" in dla_blocker(backend)
    with pytest.raises(PipelineError, match="--dla: TensorRT-RTX"):
        configure_dla(backend, 0, True, "int8", None)


@pytest.mark.parametrize("version, blocked, strongly_typed", [
    ("10.3.0.30", False, False),   # JetPack 6: implicit quantization (flags + calibration cache)
    ("10.7.0.23", False, False),
    ("10.8.0.43", True, False),    # 10.8-10.16 (JetPack 7.2 / 7.2.1): no Orin DLA
    ("10.16.1.7", True, False),
    ("11.0.0.1", True, False),     # TensorRT 11 before 11.4.1: no DLA
    ("11.4.0.5", True, False),
    ("11.4.1.2", False, True),     # DLA is back, strongly typed only
    ("11.6.0.1", False, True),
])
def test_dla_by_tensorrt_version(version: str, blocked: bool, strongly_typed: bool) -> None:
    from types import SimpleNamespace

    from pipeline.trt.backend import Backend
    from pipeline.trt.dla_build import configure_dla, dla_blocker, dla_is_strongly_typed

    backend = Backend("tensorrt", version, SimpleNamespace())
    assert (dla_blocker(backend) is not None) == blocked
    assert dla_is_strongly_typed(backend) == strongly_typed
    if blocked:
        with pytest.raises(PipelineError, match=f"--dla: TensorRT {version} is the .* line, which has no DLA"):
            configure_dla(backend, 0, True, "int8", None)
    elif strongly_typed:  # the QDQ network goes to the DLA as it is: no calibration cache needed
        assert callable(configure_dla(backend, 0, True, "int8", None))
    else:
        with pytest.raises(PipelineError, match="needs the calibration cache"):
            configure_dla(backend, 0, True, "int8", None)


@pytest.mark.slow
def test_translation_of_modelopt_int8_yolo(workspace: dict[str, Path], tmp_path: Path) -> None:
    """The real thing: ModelOpt's INT8 QDQ YOLO -> QDQ-free ONNX + cache, every scale kept, same outputs."""
    from pipeline.core.artifacts import Layout
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.calibrate import calibrate
    from pipeline.stages.export import export

    recipe = load_recipe(str(workspace["recipe"]))
    layout = Layout(workspace["root"], recipe.name)
    export(recipe, layout)
    calibrate(recipe, layout, "int8", workspace["calib"])
    qdq = onnx.load(str(layout.calibrated_onnx("int8")))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    act_scales = {n.input[0]: float(inits[n.input[1]]) for n in qdq.graph.node
                  if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    result = translate_file(layout.calibrated_onnx("int8"), tmp_path / "dla.onnx", tmp_path / "c.cache", "10.3.0.30")
    header, cached = read_cache(tmp_path / "c.cache")
    assert header == "TRT-100300-EntropyCalibration2" and len(act_scales) > 50
    assert all(cached[t] == np.float32(s).item() for t, s in act_scales.items())
    clean = onnx.load(str(tmp_path / "dla.onnx"))
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in clean.graph.node}
    # ModelOpt fake-quantizes float weights (Q -> DQ on the initializer); the kept-out DFL conv has none
    weight_q = sum(1 for n in qdq.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[0] in inits)
    assert len(result.weights_dequantized) == weight_q > 50
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    feed = {"images": x}
    ref = ort.InferenceSession(qdq.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    got = ort.InferenceSession(clean.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.999
