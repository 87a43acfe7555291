"""FP16 AutoCast on a header (pipeline/quantize/fp16.py): the weights stay in their data files, converted ones
go to disk one tensor at a time. It must make exactly what AutoCast makes with the model loaded whole (same
nodes, same initializer bytes, same layout) on the trained fixtures and on a model with external data, and
take less memory doing it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.core import onnx_utils

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
NONE = {"nodes": [], "op_types": []}


def in_memory_autocast(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], options: dict[str, Any],
                       exclude: dict) -> None:
    """The reference: AutoCast as it runs unpatched on its input (every weight loaded into the proto by
    `convert_to_mixed_precision`), judged on the same measured ranges, saved as the pipeline saved it."""
    from pipeline.quantize.fp16 import _reference_ranges, run_autocast
    from pipeline.quantize.tensor_ranges import tensor_ranges

    ranges = tensor_ranges(src, feeds[: int(options.get("calibration_samples", 4))])
    with tempfile.TemporaryDirectory() as tmp, onnx_utils.tool_input(src, Path(tmp)) as work, \
            _reference_ranges(ranges):
        model = run_autocast(work, options, exclude)
    del model.graph.value_info[:]
    onnx_utils.inherit_metadata(model, src)
    onnx_utils.save(model, dst, external_data=onnx_utils.uses_external_data(src) or None)


def _graph(model: Any) -> list[tuple]:
    return [(n.op_type, n.name, n.domain, list(n.input), list(n.output), [a.SerializeToString() for a in n.attribute])
            for n in model.graph.node]


def assert_same_model(a: Path, b: Path) -> None:
    """Same graph (nodes with their attributes, I/O, opsets), same initializers byte for byte, same layout."""
    assert onnx_utils.uses_external_data(a) == onnx_utils.uses_external_data(b)
    ma, mb = onnx_utils.load(a), onnx_utils.load(b)
    assert _graph(ma) == _graph(mb)
    assert [i.SerializeToString() for i in ma.graph.input] == [i.SerializeToString() for i in mb.graph.input]
    assert [o.SerializeToString() for o in ma.graph.output] == [o.SerializeToString() for o in mb.graph.output]
    assert list(ma.opset_import) == list(mb.opset_import) and ma.ir_version == mb.ir_version
    assert onnx_utils.metadata(ma) == onnx_utils.metadata(mb)
    ia, ib = list(ma.graph.initializer), list(mb.graph.initializer)
    assert [(t.name, t.data_type, list(t.dims)) for t in ia] == [(t.name, t.data_type, list(t.dims)) for t in ib]
    for ta, tb in zip(ia, ib, strict=True):
        assert numpy_helper.to_array(ta).tobytes() == numpy_helper.to_array(tb).tobytes(), ta.name
    if onnx_utils.uses_external_data(a):  # the same tensors in the same order: the data files are equal too
        assert Path(str(a) + ".data").read_bytes() == Path(str(b) + ".data").read_bytes()


def _fixture(family: str, work: Path, sets: list[str]) -> tuple[Path, list[dict[str, np.ndarray]], dict[str, Any],
                                                             dict]:
    """The trained fixture's export (FP32 unless `sets` say otherwise), calibration feeds, fp16 options and
    exclusions of its recipe."""
    from pipeline.models import get_adapter
    from pipeline.quantize import resolve_exclusions
    from pipeline.recipe.loader import load_recipe

    recipe = load_recipe(str(FIXTURES / family / f"{family}.yaml"), sets)
    adapter = get_adapter(recipe.family)
    if family == "vit":
        from pipeline.models.image_data import image_feeds
        from pipeline.processing.image import list_images

        from .conftest import fixture_module

        calib = fixture_module("vit", "make_dataset").write_split(work / "data", "calib", 8, seed=0)
        feeds = image_feeds(list_images(calib), adapter.preprocess(recipe), "calibration")
    else:
        feeds = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, work / "calib"))[:8]
    fp32 = work / "export" / "model.onnx"
    fp32.parent.mkdir()
    adapter.export(recipe, fp32, feeds[:1])
    names = [n.name for n in onnx_utils.load_header(fp32).graph.node]
    options = recipe.precision_options("fp16")
    return fp32, feeds, options, resolve_exclusions("fp16", options, {}, names)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "sets"), [("vit", []), ("unet", []), ("llama", []),
                                             ("llama", ["export.dtype=float16"])],
                         ids=["vit", "unet", "llama", "llama-fp16-weights"])
def test_on_disk_autocast_makes_what_in_memory_autocast_makes_on_the_trained_fixtures(tmp_path: Path, family: str,
                                                                                      sets: list[str]) -> None:
    """FP16-weight Llama: AutoCast casts the weights of the nodes it keeps in FP32 up (the other way)."""
    from pipeline.quantize.fp16 import autocast_fp16

    src, feeds, options, exclude = _fixture(family, tmp_path, sets)
    in_memory_autocast(src, tmp_path / "reference" / "model.onnx", feeds, options, exclude)
    summary = autocast_fp16(src, tmp_path / "on-disk" / "model.onnx", feeds, options, exclude)
    assert_same_model(tmp_path / "reference" / "model.onnx", tmp_path / "on-disk" / "model.onnx")
    onnx_utils.check(tmp_path / "on-disk" / "model.onnx")
    converted = [t for t in onnx_utils.load_header(tmp_path / "on-disk" / "model.onnx").graph.initializer
                 if t.data_type == TensorProto.FLOAT16]
    assert converted and summary["cast_nodes"] > 0


def write_matmul_chain(folder: Path, hidden: int, layers: int) -> Path:
    """x -> (MatMul -> Relu) x layers, He-scaled random weights written straight into `model.onnx.data`
    (a layer at a time), one small LayerNorm-free bias in the header; outputs stay O(1)."""
    rng = np.random.default_rng(0)
    path, data = folder / "model.onnx", folder / "model.onnx.data"
    inits, nodes, offset, x = [], [], 0, "x"
    with open(data, "wb") as f:
        for i in range(layers):
            w = (rng.standard_normal((hidden, hidden), dtype=np.float32) * np.float32(np.sqrt(2.0 / hidden)))
            f.write(w.tobytes())
            tensor = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[hidden, hidden])
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(w.nbytes))):
                tensor.external_data.add(key=key, value=value)
            tensor.data_location = TensorProto.EXTERNAL
            inits.append(tensor)
            offset += w.nbytes
            nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
                      helper.make_node("Relu", [f"m{i}"], [f"r{i}"], name=f"relu{i}")]
            x = f"r{i}"
    nodes.append(helper.make_node("Add", [x, "bias"], ["y"], name="bias_add"))
    inits.append(numpy_helper.from_array(np.full(hidden, 0.25, np.float32), "bias"))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, hidden])], initializer=inits)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    return path


def _feeds(hidden: int, n: int = 2) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, 8, hidden)).astype(np.float32)} for _ in range(n)]


def test_on_disk_autocast_of_an_external_data_model_is_the_in_memory_result(tmp_path: Path) -> None:
    from pipeline.quantize.fp16 import autocast_fp16

    (tmp_path / "export").mkdir()
    src = write_matmul_chain(tmp_path / "export", hidden=96, layers=3)
    before = {p.name for p in src.parent.iterdir()}
    in_memory_autocast(src, tmp_path / "reference" / "model.onnx", _feeds(96), {}, NONE)
    autocast_fp16(src, tmp_path / "on-disk" / "model.onnx", _feeds(96), {}, NONE)
    assert_same_model(tmp_path / "reference" / "model.onnx", tmp_path / "on-disk" / "model.onnx")
    assert {p.name for p in src.parent.iterdir()} == before  # no side file or header copy left behind


_CHILD = """
import json, resource, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from tests.test_fp16_on_disk import _feeds, in_memory_autocast, NONE
from pipeline.quantize.fp16 import autocast_fp16
import onnxruntime, modelopt.onnx.autocast, modelopt.onnx.autocast.precisionconverter  # what both paths import
fn = autocast_fp16 if sys.argv[2] == "on-disk" else in_memory_autocast
from tests.memory_probe import peak_kib
base = peak_kib()
fn(Path(sys.argv[3]), Path(sys.argv[4]), _feeds(int(sys.argv[5])), {}, NONE)
print(json.dumps({"base_kib": base, "peak_kib": peak_kib()}))
"""


def _peak_gib(path: str, src: Path, dst: Path, hidden: int) -> tuple[float, float]:
    """(peak RSS, RSS after the imports) in GiB of a child process running the FP16 conversion `path`."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(REPO), path, str(src), str(dst), str(hidden)],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    rss = json.loads(out.strip().splitlines()[-1])
    return rss["peak_kib"] / 2**20, rss["base_kib"] / 2**20


@pytest.mark.slow
def test_on_disk_autocast_holds_about_the_weights_once_where_in_memory_autocast_holds_them_many_times(
        tmp_path: Path) -> None:
    """A 302 MB FP32 model (18 MatMuls of 2048 x 2048 in external data), each path in a child process
    (its peak RSS above what it holds after importing ONNX Runtime and ModelOpt).
    On disk the peak is ONNX Runtime's session for the ranges (the weights once, read from the path);
    in memory AutoCast holds the FP32 weights, their FP16 conversion and shape inference's serialized
    copies on top."""
    import onnxruntime as ort

    hidden, layers = 2048, 18
    (tmp_path / "export").mkdir()
    src = write_matmul_chain(tmp_path / "export", hidden, layers)
    weights_gib = hidden * hidden * 4 * layers / 2**30
    on_disk, base = _peak_gib("on-disk", src, tmp_path / "on-disk" / "model.onnx", hidden)
    in_memory, base_in_memory = _peak_gib("in-memory", src, tmp_path / "in-memory" / "model.onnx", hidden)
    print(f"weights {weights_gib:.2f} GiB; on disk {base:.2f} after the imports, {on_disk:.2f} at the peak; "
          f"in memory {base_in_memory:.2f}, {in_memory:.2f}")
    # Measured: 1.03x the weights above the imports on disk, 4.6x in memory.
    assert on_disk - base < 2 * weights_gib < in_memory - base_in_memory
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20 >= in_memory  # the children's own peak

    dst = tmp_path / "on-disk" / "model.onnx"
    assert onnx_utils.uses_external_data(dst)
    header = onnx_utils.load_header(dst)
    assert {t.name: t.data_type for t in header.graph.initializer if t.name.startswith("w")} == \
        {f"w{i}": TensorProto.FLOAT16 for i in range(layers)}
    assert Path(str(dst) + ".data").stat().st_size == pytest.approx(hidden * hidden * 2 * layers, rel=0.01)
    x = _feeds(hidden)[0]
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, x)[0]
           for p in (src, dst)}
    y32, y16 = run[src], run[dst]
    assert np.abs(y32).max() > 0.1
    assert np.abs(y16 - y32).max() < 0.02 * np.abs(y32).max()
    assert_same_model(tmp_path / "in-memory" / "model.onnx", dst)
