"""The streaming INT8 quantizer (pipeline/quantize/int8_streaming.py) against ModelOpt: the same Q/DQ as
ModelOpt's max calibration on the trained UNet and Llama fixtures and as its entropy calibration on the
trained ViT and shapes (YOLO11) fixtures (tensors, readers, scales, INT8 weights), the same accuracy
against ground truth, and a model with external data (and one without) quantized in a child process whose
peak memory stays under what ModelOpt needs for it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.core import onnx_utils
from pipeline.errors import PipelineError
from pipeline.quantize.int8 import STREAMING_FROM, choose_calibrator

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def _mlp(folder: Path, hidden: int, layers: int, dtype: Any = np.float32, external: bool = True) -> Path:
    """x -> (MatMul -> Relu) x layers, random weights; FP16 graphs at opset 20 (FP16 Q/DQ scales)."""
    rng = np.random.default_rng(0)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = [numpy_helper.from_array((rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(dtype), f"w{i}")
             for i in range(layers)]
    nodes, x = [], "x"
    for i in range(layers):
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"mm{i}"),
                  helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", elem, [1, 32, hidden])],
                              [helper.make_tensor_value_info(x, elem, [1, 32, hidden])], initializer=inits)
    path = folder / "model.onnx"
    folder.mkdir(parents=True, exist_ok=True)
    onnx_utils.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path,
                    external_data=external)
    return path


def _feeds(hidden: int, n: int = 4, dtype: Any = np.float32) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, 32, hidden)).astype(dtype)} for _ in range(n)]


def test_auto_picks_streaming_for_large_models_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    big, small = _mlp(tmp_path / "big", 64, 1), _mlp(tmp_path / "small", 64, 1, external=False)
    # 3000 x 3000 FP32 in one file: 36 MB, past STREAMING_FROM without external data.
    large = _mlp(tmp_path / "large", 3000, 1, external=False)
    assert not onnx_utils.uses_external_data(large) and onnx_utils.model_bytes(large) > STREAMING_FROM
    for method in ("max", "entropy"):
        assert choose_calibrator(big, {"method": method}) == "streaming"
        assert choose_calibrator(large, {"method": method}) == "streaming"
        assert choose_calibrator(small, {"method": method}) == "modelopt"
        assert choose_calibrator(large, {"method": method, "op_types_to_quantize": ["MatMul"]}) == "streaming"
        assert choose_calibrator(big, {"method": method, "target_dla": True}) == "modelopt"
        assert choose_calibrator(big, {"method": method, "high_precision_dtype": "fp16"}) == "modelopt"
        assert choose_calibrator(big, {"method": method, "calibrator": "modelopt"}) == "modelopt"
        assert choose_calibrator(small, {"method": method, "calibrator": "streaming"}) == "streaming"
    assert choose_calibrator(big, {"method": "percentile"}) == "onnxruntime"
    for options, word in [({"method": "percentile"}, "method max or entropy"),
                          ({"method": "max", "high_precision_dtype": "fp16"}, "high_precision_dtype"),
                          ({"method": "max", "target_dla": True}, "target_dla")]:
        with pytest.raises(PipelineError, match=rf"precisions\.int8\.calibrator: .*{word}"):
            choose_calibrator(big, {**options, "calibrator": "streaming"})


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
def test_streaming_writes_int8_weights_and_keeps_the_graphs_float_type(tmp_path: Path, dtype: Any) -> None:
    from pipeline.quantize import get_quantizer

    src = _mlp(tmp_path / "export", 256, 2, dtype)
    feeds = _feeds(256, dtype=dtype)
    dst = tmp_path / "out" / "model.onnx"
    summary = get_quantizer("int8")(src, dst, feeds, {"method": "max"}, {"nodes": [], "op_types": []})
    assert summary["calibrator"] == "streaming" and "int8_streaming" in summary["tool"]
    onnx_utils.check(dst)
    model = onnx_utils.load(dst)
    inits = {i.name: i for i in model.graph.initializer}
    assert {inits[f"w{i}_quantized"].data_type for i in range(2)} == {TensorProto.INT8}
    assert not {"w0", "w1"} & set(inits)  # the float weights are gone: a quarter of the bytes
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    scales = [inits[n.input[1]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert {s.data_type for s in scales} == {elem}
    assert (dst.parent / "model.onnx.data").stat().st_size < 256 * 256 * 2 + 4096
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feeds[0])[0]
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feeds[0])[0]
    assert got.dtype == dtype
    cosine = float((got.astype(np.float64) * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref))
    assert cosine > 0.999


def _qdq(path: Path) -> dict[str, Any]:
    """What a QDQ ONNX quantizes: activation tensor -> scale, weight -> (its INT8 values, scale, axis),
    and for each original node, which input indices read a dequantized tensor."""
    model = onnx_utils.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    made = {o: n for n in model.graph.node for o in n.output}
    acts, weights, reads = {}, {}, defaultdict(set)
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            axis = next((a.i for a in node.attribute if a.name == "axis"), None)
            source = made.get(node.input[0])
            if node.input[0] in inits:  # INT8 weight + DQ (the streaming form)
                weights[node.input[0].removesuffix("_quantized")] = (inits[node.input[0]], inits[node.input[1]], axis)
            elif source is not None and source.input[0] in inits:  # float weight -> Q -> DQ (ModelOpt)
                w, scale = inits[source.input[0]], inits[node.input[1]]
                q = _ort_quantize(w, scale, axis)
                weights[source.input[0]] = (q, scale, axis)
            else:
                acts[source.input[0]] = inits[node.input[1]]
        elif node.op_type != "QuantizeLinear":
            for i, name in enumerate(node.input):
                if name.endswith("_DequantizeLinear_Output"):
                    reads[node.name].add(i)
    return {"acts": acts, "weights": weights, "reads": dict(reads)}


def _ort_quantize(w: np.ndarray, scale: np.ndarray, axis: int | None) -> np.ndarray:
    """ONNX Runtime's QuantizeLinear of a weight: what ModelOpt's Q/DQ pair computes at run time."""
    node = helper.make_node("QuantizeLinear", ["w", "s", "z"], ["q"], axis=axis if axis is not None else 1)
    elem = helper.np_dtype_to_tensor_dtype(w.dtype)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("w", elem, list(w.shape))],
                              [helper.make_tensor_value_info("q", TensorProto.INT8, list(w.shape))],
                              [numpy_helper.from_array(scale, "s"),
                               numpy_helper.from_array(np.zeros(scale.shape, np.int8), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"w": w})[0]


def _compare(modelopt: Path, streaming: Path) -> None:
    a, b = _qdq(modelopt), _qdq(streaming)
    assert sorted(a["acts"]) == sorted(b["acts"]) and a["acts"]
    assert a["reads"] == b["reads"]  # every node reads the same inputs dequantized
    for name, scale in a["acts"].items():
        assert b["acts"][name].dtype == scale.dtype
        np.testing.assert_allclose(b["acts"][name], scale, rtol=2e-6, err_msg=name)
    assert sorted(a["weights"]) == sorted(b["weights"]) and a["weights"]
    for name, (q, scale, axis) in a["weights"].items():
        q2, scale2, axis2 = b["weights"][name]
        assert axis2 == axis, name
        np.testing.assert_array_equal(scale2, scale, err_msg=name)
        np.testing.assert_array_equal(q2, q, err_msg=name)


def _both(recipe_path: Path, tmp: Path, overrides: list[str]) -> tuple[Any, Path, Path]:
    """The fixture exported once and calibrated to INT8 by ModelOpt and by the streaming quantizer."""
    import shutil

    from pipeline.core.artifacts import Layout
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.calibrate import calibrate
    from pipeline.stages.export import export

    out = {}
    recipe = None
    for calibrator in ("modelopt", "streaming"):
        recipe = load_recipe(str(recipe_path), [*overrides, f"precisions.int8.calibrator={calibrator}"])
        layout = Layout(tmp / "engines", recipe.name)
        if calibrator == "modelopt":
            export(recipe, layout)
        calibrate(recipe, layout, "int8", tmp / "calib")
        report = json.loads(layout.calibrate_report("int8").read_text())
        assert json.dumps(report).count(calibrator) >= 1
        out[calibrator] = tmp / f"{calibrator}.onnx"
        shutil.copyfile(layout.calibrated_onnx("int8"), out[calibrator])
    return recipe, layout.exported_onnx, out


def _accuracy(recipe: Any, fp32: Path, onnx_paths: dict[str, Path]) -> dict[str, Any]:
    from pipeline.evaluation.budget import judge, resolve_budget
    from pipeline.models import get_adapter

    adapter, budget = get_adapter(recipe.family), resolve_budget(recipe, "int8")
    truth = adapter.ground_truth(recipe, fp32)
    return {k: judge(budget, truth, adapter.ground_truth(recipe, p), truth["reference"]) for k, p in onnx_paths.items()}


@pytest.mark.slow
def test_unet_fixture_streaming_equals_modelopt_max(tmp_path: Path) -> None:
    sys.path.insert(0, str(FIXTURES / "unet"))
    from make_latents import heldout_set

    np.savez(tmp_path / "held.npz", **heldout_set(per_timestep=8))
    recipe, fp32, out = _both(FIXTURES / "unet" / "unet.yaml", tmp_path, [f"eval.latents={tmp_path / 'held.npz'}"])
    _compare(out["modelopt"], out["streaming"])
    acc = _accuracy(recipe, fp32, out)
    assert acc["streaming"]["passed"], acc["streaming"]["message"]
    # The same Q/DQ up to float rounding of the scales: the same epsilon error within a hair.
    assert acc["streaming"]["candidate"] == pytest.approx(acc["modelopt"]["candidate"], rel=0.01)


@pytest.mark.slow
def test_llama_fixture_streaming_equals_modelopt_max_after_smoothquant(tmp_path: Path) -> None:
    recipe, fp32, out = _both(FIXTURES / "llama" / "llama.yaml", tmp_path, [])
    _compare(out["modelopt"], out["streaming"])
    acc = _accuracy(recipe, fp32, out)
    assert acc["streaming"]["passed"], acc["streaming"]["message"]
    assert acc["streaming"]["candidate"] == pytest.approx(acc["modelopt"]["candidate"], rel=0.002)


def _vit_data(folder: Path, heldout: int) -> list[str]:
    from .conftest import fixture_module

    make = fixture_module("vit", "make_dataset")
    return [f"calibration.images={make.write_split(folder, 'calib', 64)}",
            f"eval.labelled={make.write_split(folder, 'heldout', heldout)}"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vit", "yolo"])
def test_streaming_entropy_equals_modelopt_entropy_on_the_trained_fixtures(tmp_path: Path, family: str) -> None:
    """The recipes' default INT8 (entropy; the ViT's op_types_to_quantize and keep_out, the YOLO head's
    keep_out): ModelOpt's Q/DQ, scales and INT8 weights exactly, and the same accuracy against labels."""
    if family == "vit":
        recipe_path, sets = FIXTURES / "vit" / "vit.yaml", _vit_data(tmp_path / "data", 300)
    else:
        from .conftest import labelled_shapes_recipe

        recipe_path, sets = labelled_shapes_recipe(tmp_path, calib=16, heldout=12), []
    recipe, fp32, out = _both(recipe_path, tmp_path, sets)
    assert recipe.precision_options("int8")["method"] == "entropy"
    _compare(out["modelopt"], out["streaming"])
    source = onnx_utils.metadata(onnx_utils.load_header(fp32))
    assert source and onnx_utils.metadata(onnx_utils.load_header(out["streaming"])).items() >= source.items()
    acc = _accuracy(recipe, fp32, out)
    assert acc["modelopt"]["passed"] and acc["streaming"]["passed"], acc
    assert acc["streaming"]["candidate"] == pytest.approx(acc["modelopt"]["candidate"], abs=1e-9)


CHILD = """
import json, resource, sys
import numpy as np
sys.path.insert(0, {repo!r})
from pipeline.quantize import get_quantizer
from tests.test_int8_streaming import _feeds
from tests.memory_probe import peak_kib
get_quantizer("int8")({src!r}, {dst!r}, _feeds({hidden}, 2), {options!r}, {{"nodes": [], "op_types": []}})
print(json.dumps({{"maxrss_kib": peak_kib()}}))
"""


def _peak_gib(src: Path, dst: Path, hidden: int, options: dict) -> float:
    code = CHILD.format(repo=str(REPO), src=str(src), dst=str(dst), hidden=hidden, options=options)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kib"] / (1 << 20)


@pytest.mark.slow
def test_external_data_model_quantizes_in_bounded_memory_where_modelopt_does_not(tmp_path: Path) -> None:
    """A 201 MB external-data model (8 MatMuls of 2508 x 2508 FP32): the streaming quantizer's child peaks
    under a bound of the interpreter and libraries plus 1.5 x the weights; ModelOpt's exceeds it."""
    hidden, layers = 2508, 8
    src = _mlp(tmp_path / "export", hidden, layers)
    weights = (tmp_path / "export" / "model.onnx.data").stat().st_size / (1 << 30)
    assert weights > 0.18
    # The libraries alone: a 2-layer model of 64 channels through the same path.
    base = _peak_gib(_mlp(tmp_path / "tiny", 64, 1), tmp_path / "tiny-out" / "model.onnx", 64,
                     {"method": "max", "calibrator": "streaming"})
    bound = base + 1.5 * weights
    streaming = _peak_gib(src, tmp_path / "s" / "model.onnx", hidden, {"method": "max"})
    modelopt = _peak_gib(src, tmp_path / "m" / "model.onnx", hidden, {"method": "max", "calibrator": "modelopt"})
    # The same weights in one file, entropy (the ViT / YOLO default): streamed from a copy with external data.
    inline = _peak_gib(_mlp(tmp_path / "inline", hidden, layers, external=False), tmp_path / "e" / "model.onnx",
                       hidden, {"method": "entropy"})
    print(f"libraries {base:.2f} GiB, weights {weights:.2f} GiB: streaming {streaming:.2f} (entropy, one file "
          f"{inline:.2f}), modelopt {modelopt:.2f} GiB")
    assert streaming < bound < modelopt, (base, weights, streaming, modelopt)
    assert inline < bound and not onnx_utils.uses_external_data(tmp_path / "e" / "model.onnx"), (inline, bound)
    assert (tmp_path / "s" / "model.onnx.data").stat().st_size < 0.3 * weights * (1 << 30)
