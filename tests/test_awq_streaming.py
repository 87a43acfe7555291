"""The streamed INT4 AWQ-clip (pipeline/quantize/awq_streaming.py) against ModelOpt's own awq_clip: the
clip search on the same numbers, the whole step on the trained Llama fixture (same weights, same graph,
same held-out perplexity, ONNX Runtime runs it), and its memory on an external-data model next to
ModelOpt's, each in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pipeline.errors import PipelineError
from pipeline.quantize import awq_streaming
from tests.conftest import REPO

FIXTURE_RECIPE = str(REPO / "tests" / "fixtures" / "llama" / "llama.yaml")
GIB = 1 << 30


@pytest.mark.parametrize("ci, co, tokens", [(320, 300, 1000), (512, 2500, 4096)])
def test_clip_search_picks_modelopts_alphas(ci: int, co: int, tokens: int) -> None:
    from modelopt.onnx.quantization.int4 import AWQClipHelper, _clip_search
    from modelopt.onnx.quantization.quant_utils import quant_tensor

    rng = np.random.default_rng(ci)
    w = rng.standard_normal((ci, co), dtype=np.float32) * 0.05
    x = rng.standard_normal((tokens, ci), dtype=np.float32)
    x[:, 3] *= 20  # an outlier channel, as an LLM's activations have
    helper = AWQClipHelper(w, 128)
    _clip_search(x, w, helper)  # ModelOpt's search over every token it keeps, the whole weight per alpha
    ours = awq_streaming.clip_alphas(x[:: awq_streaming.token_stride(tokens)], w, 128, columns=256)
    assert ours.shape == (co, -(-ci // 128))
    agree = float((ours.reshape(-1) == helper.best_alpha).mean())
    print(f"[{ci}x{co}] blocks with ModelOpt's alpha: {agree:.4%}")
    assert agree >= 0.99
    assert len(set(ours.reshape(-1).tolist())) > 3  # the search chose, not the default 1.0 everywhere
    # The column-sliced quantization is quant_tensor's, value for value.
    qw, scale, _ = quant_tensor(w, 128, alpha=helper.best_alpha)
    q2, s2 = awq_streaming.quantize(w, 128, helper.best_alpha.reshape(co, -1), columns=256)
    assert np.array_equal(qw, q2) and np.array_equal(scale, s2) and s2.dtype == scale.dtype


def test_clip_search_is_the_same_for_any_column_slicing() -> None:
    """Slices are sized to the host's cores (`slice_columns`): the alphas must not depend on the split."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((256, 1000), dtype=np.float32) * 0.05
    x = rng.standard_normal((64, 256), dtype=np.float32)
    x[:, 7] *= 30
    whole = awq_streaming.clip_alphas(x, w, 128, columns=1000)
    for columns in (128, 333, None):
        assert np.array_equal(awq_streaming.clip_alphas(x, w, 128, columns=columns), whole), columns
    assert awq_streaming.slice_columns(4096, 16) == 256  # Llama-3-8B's down projection: a slice per core
    assert awq_streaming.slice_columns(128256, 16) == awq_streaming.COLUMNS
    assert awq_streaming.slice_columns(300, 16) == awq_streaming.MIN_COLUMNS


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_torch_search_picks_the_numpy_searchs_alphas(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU machine searches with PyTorch (`search_device`); here the same code runs on PyTorch's CPU
    and must choose the numpy search's alphas, FP16 rounding included, but for float ties."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((384, 700), dtype=np.float32) * 0.05).astype(dtype)
    x = rng.standard_normal((64, 384), dtype=np.float32)
    x[:, 9] *= 25
    monkeypatch.setattr(awq_streaming, "DEVICE_COLUMNS", 256)  # several device slices, one ragged
    ours = awq_streaming.clip_alphas(x, w, 128, device="cpu")
    ref = awq_streaming.clip_alphas(x, w, 128)
    assert ours.shape == ref.shape == (700, 3)
    assert float((ours == ref).mean()) >= 0.999
    assert len(set(ours.reshape(-1).tolist())) > 3
    monkeypatch.setenv("ORIN_TRT_AWQ_DEVICE", "cpu")
    assert awq_streaming.search_device() is None


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_slice_quantization_is_quant_tensor_then_dq_tensor(dtype: type) -> None:
    """The search's quantize-dequantize of a slice, value for value ModelOpt's, in the weight's dtype
    (FP16 through FP32 with a rounding after each operation, as numpy's FP16 does)."""
    from modelopt.onnx.quantization.int4 import CLIP_MIN
    from modelopt.onnx.quantization.quant_utils import dq_tensor, quant_tensor

    w = (np.random.default_rng(3).standard_normal((384, 300), dtype=np.float32) * 0.03).astype(dtype)
    w[:, 5] = 0  # an all-zero block: the scale clips at CLIP_MIN
    w[7, 9] = 60000 if dtype == np.float16 else 1e6
    w3 = w.reshape(3, 128, 300)
    for alpha in awq_streaming.alphas():
        q, scale, _ = quant_tensor(w, 128, alpha=alpha)
        ref = dq_tensor(q, scale, 128)
        ours = awq_streaming._qdq(w3, np.abs(w3).max(axis=1), alpha, 4, CLIP_MIN).reshape(w.shape)
        assert ref.dtype == dtype and np.array_equal(ref.astype(np.float32), ours), alpha


def test_one_pass_keeps_the_rows_the_search_uses(tmp_path: Path) -> None:
    """`x[0 :: n // 64]` of the concatenated MatMul inputs, from one run per sample, with samples of
    different lengths (the stride needs the total before the first sample's rows are picked)."""
    from onnx import TensorProto, helper

    gamma = np.linspace(0.5, 2.0, 16, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "gamma"], ["normed"]), helper.make_node("MatMul", ["normed", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", 8])],
        initializer=[numpy_helper.from_array(gamma, "gamma"),
                     numpy_helper.from_array(np.ones((16, 8), np.float32), "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, n, 16), dtype=np.float32)} for n in (50, 9, 50, 200, 7)]
    rows = awq_streaming.collect_rows(path, feeds, ["normed", "x"])
    everything = np.concatenate([f["x"].reshape(-1, 16) for f in feeds])  # 316 rows: stride 4
    np.testing.assert_allclose(rows["normed"], (everything * gamma)[:: 316 // 64], rtol=1e-6)
    np.testing.assert_array_equal(rows["x"], everything[:: 316 // 64])  # a graph input comes from the feeds
    assert rows["x"].shape == (79, 16) and list(tmp_path.iterdir()) == [path]


def test_streaming_with_another_method_is_a_one_line_error(tmp_path: Path) -> None:
    from pipeline.quantize.int4 import choose_calibrator

    with pytest.raises(PipelineError, match=r"precisions\.int4-awq\.calibrator: streaming runs method awq_clip"):
        choose_calibrator(tmp_path / "model.onnx", {"method": "rtn_dq", "calibrator": "streaming"})
    assert choose_calibrator(tmp_path / "model.onnx", {"method": "awq_clip"}) == "modelopt"  # no external data
    assert choose_calibrator(tmp_path / "model.onnx", {"method": "awq_lite"}) == "modelopt"


# ---- the trained Llama fixture: ModelOpt's awq_clip and the streamed one ---------------------------------
@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture exported once, calibrated int4-awq by each calibrator (the second with force)."""
    from pipeline.core.artifacts import Layout
    from pipeline.recipe.loader import load_recipe
    from pipeline.stages.calibrate import calibrate
    from pipeline.stages.export import export

    base = tmp_path_factory.mktemp("awq")
    out = {}
    for who in ("modelopt", "streaming"):
        recipe = load_recipe(FIXTURE_RECIPE, [f"precisions.int4-awq.calibrator={who}"])
        layout = Layout(base / "engines", recipe.name)
        if not layout.exported_onnx.exists():
            export(recipe, layout)
        calibrate(recipe, layout, "int4-awq", base / "calib", force=True)
        out[who] = base / f"{who}.onnx"
        layout.calibrated_onnx("int4-awq").rename(out[who])  # the fixture has no external data
        out[f"{who}.summary"] = json.loads(layout.calibrate_report("int4-awq").read_text())
    return out


def _blocks(model: onnx.ModelProto) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """INT4 weight [n_block, 128, co] and scale [n_block, co] of each quantized weight."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n[: -len("_i4")]: (inits[n].astype(np.int8).reshape(-1, 128, inits[n].shape[1]), inits[n[:-3] + "_scale"])
            for n in inits if n.endswith("_i4")}


def test_streaming_quantizes_the_fixture_as_modelopt_does(both: dict) -> None:
    ref, ours = onnx.load(str(both["modelopt"])), onnx.load(str(both["streaming"]))
    onnx.checker.check_model(ours)
    a, b = _blocks(ref), _blocks(ours)
    assert set(a) == set(b) and len(a) == 15  # 2 layers x 7 projections + the LM head
    same_alpha = total = 0
    for name, (qa, sa) in a.items():
        qb, sb = b[name]
        assert qa.shape == qb.shape and sa.shape == sb.shape and sa.dtype == sb.dtype
        equal = sa == sb  # per block: the same alpha (the block's amax is the same) gives the same scale
        same_alpha += int(equal.sum())
        total += equal.size
        assert np.array_equal(qa.transpose(0, 2, 1)[equal], qb.transpose(0, 2, 1)[equal]), name
    print(f"blocks with ModelOpt's alpha: {same_alpha} of {total} ({same_alpha / total:.4%})")
    assert same_alpha / total >= 0.99
    # The graph is ModelOpt's, proto for proto (node order, names, DequantizeLinear attributes, value_info,
    # initializer names / dtypes / dims, opset 21, ir_version 10): only initializer values may differ.
    def skeleton(m: onnx.ModelProto) -> bytes:
        m = onnx.ModelProto.FromString(m.SerializeToString())
        for i in m.graph.initializer:
            i.ClearField("raw_data")
        return m.SerializeToString()

    assert skeleton(ref) == skeleton(ours)
    assert (ours.ir_version, ours.opset_import[0].version) == (10, 21)
    if same_alpha == total:
        assert ref.SerializeToString() == ours.SerializeToString()  # byte for byte
    dq = [n for n in ours.graph.node if n.op_type == "DequantizeLinear"]
    assert {(x.name, x.i) for n in dq for x in n.attribute} == {("axis", 0), ("block_size", 128)}
    summary, ref_summary = both["streaming.summary"], both["modelopt.summary"]
    assert (summary["calibrator"], ref_summary["calibrator"]) == ("streaming", "modelopt")
    for key in ("int4_weights", "int4_weight_bytes", "dequantize_linear", "embedding", "io_dtypes"):
        assert summary[key] == ref_summary[key], key


def test_streamed_fixture_keeps_modelopts_perplexity(both: dict) -> None:
    from pipeline.llm.perplexity import text_perplexity
    from pipeline.models.llama import LlamaAdapter
    from pipeline.recipe.loader import load_recipe
    from tests.llama.conftest import ort_session

    ids = LlamaAdapter().heldout_ids(load_recipe(FIXTURE_RECIPE))[: 64 * 128]
    ppl = {}
    for who in ("modelopt", "streaming"):
        with ort_session(both[who]) as s:  # ONNX Runtime runs each
            ppl[who] = text_perplexity(s, ids, 128)["perplexity"]
    print(f"held-out perplexity: ModelOpt {ppl['modelopt']:.5f}, streamed {ppl['streaming']:.5f}")
    assert ppl["streaming"] == pytest.approx(ppl["modelopt"], rel=1e-3)
    assert 2.0 < ppl["streaming"] < 2.6  # the fixture's FP32 is 2.155: INT4 costs a little, not everything


# ---- memory: an external-data model in a child process ---------------------------------------------------
CHILD = """
import json, sys
import numpy as np
from pathlib import Path
from pipeline.quantize.int4 import int4_awq
src, dst, who, hidden = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(1)
feeds = [{"x": rng.standard_normal((1, 64, hidden), dtype=np.float32)} for _ in range(8)]
s = int4_awq(src, dst, feeds, {"calibrator": who}, {"nodes": [], "op_types": []})
from tests.memory_probe import peak_kib
print(json.dumps({"peak_kib": peak_kib(), **{k: s[k] for k in ("calibrator", "int4_weights", "dequantize_linear")}}))
"""


def _quantize_in_child(src: Path, dst: Path, who: str, hidden: int) -> tuple[dict, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(src), str(dst), who, str(hidden)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = child.stdout.read()
    assert child.wait() == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    return summary, summary.pop("peak_kib") * 1024


@pytest.mark.slow
def test_streaming_stays_in_bounded_memory_where_modelopt_does_not(tmp_path: Path) -> None:
    import onnxruntime as ort

    from tests.test_scale import write_norm_mlp

    hidden, out, matmuls = 1024, 8192, 3  # 100 MB of FP32 weights in model.onnx.data
    src = write_norm_mlp(tmp_path, hidden, out, matmuls)
    weights = hidden * out * 4 * matmuls
    bound = 2 * weights + GIB  # the goal's 2 x weights, and 1 GiB for the interpreter, onnx, ORT, ModelOpt
    summary, ours = _quantize_in_child(src, tmp_path / "streamed" / "model.onnx", "auto", hidden)
    ref_summary, theirs = _quantize_in_child(src, tmp_path / "modelopt" / "model.onnx", "modelopt", hidden)
    print(f"peak RSS: streamed {ours / GIB:.2f} GiB, ModelOpt {theirs / GIB:.2f} GiB, bound {bound / GIB:.2f} GiB")
    assert summary == {**ref_summary, "calibrator": "streaming"} and summary["int4_weights"] == matmuls
    assert ours < bound < theirs
    streamed = tmp_path / "streamed" / "model.onnx"
    assert (tmp_path / "streamed" / "model.onnx.data").exists()  # external data kept
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no side files left
    onnx.checker.check_model(str(streamed))
    # ONNX Runtime runs it, as close to the float model as ModelOpt's own output is.
    x = np.random.default_rng(2).standard_normal((1, 5, hidden), dtype=np.float32)
    data = np.fromfile(tmp_path / "model.onnx.data", np.float32).reshape(matmuls, hidden, out)
    for i, (a, b) in enumerate(zip(*[ort.InferenceSession(str(p)).run(None, {"x": x}) for p in
                                     (streamed, tmp_path / "modelopt" / "model.onnx")], strict=True)):
        exact = x @ data[i]
        err_a, err_b = (float(np.abs(y - exact).mean() / np.abs(exact).mean()) for y in (a, b))
        assert 0.0 < err_a <= err_b * 1.01 + 1e-6 and err_a < 0.2, (i, err_a, err_b)
