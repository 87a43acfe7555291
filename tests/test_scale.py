"""Models over 2 GB in bounded memory: a random-weight ONNX whose external data exceeds protobuf's 2 GB
limit goes through SmoothQuant (statistics on ONNX Runtime, weight edits, save) without one >2 GB
protobuf; saved files keep the same mode; small edits stream weights from disk."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.core import onnx_utils

# Three [8192, 24576] FP32 MatMul weights: 2.42 GB of external data, past protobuf's 2 GiB.
HIDDEN, OUT, MATMULS = 8192, 24576, 3
BIG_BYTES = HIDDEN * OUT * 4 * MATMULS


def write_norm_mlp(folder: Path, hidden: int = HIDDEN, out: int = OUT, matmuls: int = MATMULS) -> Path:
    """x -> Mul(gamma) -> `matmuls` MatMuls [hidden, out] (an RMSNorm feeding q/k/v): the shape SmoothQuant
    rewrites. The header references `model.onnx.data`, which is written a chunk at a time from a seeded
    generator."""
    rng = np.random.default_rng(0)
    path, data = folder / "model.onnx", folder / "model.onnx.data"
    inits, offset = [], 0
    with open(data, "wb") as f:
        for i in range(matmuls):
            tensor = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[hidden, out])
            rows = min(512, hidden)
            for _ in range(hidden // rows):
                f.write((rng.random((rows, out), dtype=np.float32) - 0.5).tobytes())
            length = hidden * out * 4
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(length))):
                tensor.external_data.add(key=key, value=value)
            tensor.data_location = TensorProto.EXTERNAL
            inits.append(tensor)
            offset += length
    gamma = numpy_helper.from_array(np.ones(hidden, np.float32), "gamma")
    nodes = [helper.make_node("Mul", ["x", "gamma"], ["normed"], name="norm")]
    nodes += [helper.make_node("MatMul", ["normed", f"w{i}"], [f"y{i}"], name=f"proj{i}") for i in range(matmuls)]
    graph = helper.make_graph(
        nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", hidden])],
        [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, "seq", out]) for i in range(matmuls)],
        initializer=[gamma, *inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.save_model(model, str(path))
    return path


def _free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


@pytest.mark.slow
def test_smoothquant_on_a_model_over_2gb_never_serializes_it_whole(tmp_path: Path) -> None:
    from pipeline.quantize.smoothquant import smooth

    need = 3 * BIG_BYTES + (1 << 30)  # the model, the smoothed weights' side file, the output
    if _free_bytes(tmp_path) < need:
        pytest.skip(f"needs {need / 1e9:.1f} GB free under {tmp_path}, has {_free_bytes(tmp_path) / 1e9:.1f}")
    src = write_norm_mlp(tmp_path)
    assert (tmp_path / "model.onnx.data").stat().st_size == BIG_BYTES > 2**31
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, HIDDEN), dtype=np.float32)
    x[..., [5, 700]] *= 50  # outlier channels, as an LLM's activations have
    feeds = [{"x": x}]
    dst = tmp_path / "out" / "model.onnx"
    info = smooth(src, dst, feeds, alpha=0.5)
    assert (info["sites"], info["matmuls"]) == (1, MATMULS)
    assert info["max_outlier_ratio_before"] > 10
    assert dst.stat().st_size < 1_000_000 and (dst.parent / "model.onnx.data").stat().st_size >= BIG_BYTES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no side files or headers left
    onnx_utils.check(dst)
    # The function is unchanged (up to float rounding): ONNX Runtime, opened from the path.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_prepacking", "1")
    session = ort.InferenceSession(str(dst), options, providers=["CPUExecutionProvider"])
    got = session.run(["y0"], feeds[0])[0]
    w0 = np.fromfile(tmp_path / "model.onnx.data", np.float32, HIDDEN * OUT).reshape(HIDDEN, OUT)
    np.testing.assert_allclose(got, x @ w0, rtol=1e-3, atol=1e-3)
    del session, w0
    header = onnx_utils.load_header(dst)
    smoothed = {i.name: i for i in header.graph.initializer}["w0"]
    w0_new = numpy_helper.to_array(smoothed, base_dir=str(dst.parent))
    assert not np.allclose(w0_new[5], np.fromfile(tmp_path / "model.onnx.data", np.float32, OUT, offset=5 * OUT * 4))
    shutil.rmtree(dst.parent)


def _small_model(folder: Path, external: bool) -> Path:
    w = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "small",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], initializer=[w])
    path = folder / "model.onnx"
    onnx_utils.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path,
                    external_data=external)
    return path


def test_saved_data_file_has_the_onnx_mode(tmp_path: Path) -> None:
    path = _small_model(tmp_path, external=True)
    data = tmp_path / "model.onnx.data"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == stat.S_IMODE(data.stat().st_mode) == onnx_utils.file_mode()
    assert mode & stat.S_IROTH  # readable by others, as the ONNX is (the usual umask)


def test_header_save_streams_external_weights_into_a_new_file(tmp_path: Path) -> None:
    import onnxruntime as ort

    src = _small_model(tmp_path, external=True)
    header = onnx_utils.load_header(src)
    assert all(not t.HasField("raw_data") for t in header.graph.initializer)
    onnx_utils.set_metadata(header, {"k": "v"})
    dst = tmp_path / "copy" / "model.onnx"
    onnx_utils.save(header, dst, base_dir=src.parent)
    assert onnx_utils.uses_external_data(dst) and onnx_utils.metadata(onnx_utils.load(dst)) == {"k": "v"}
    (tmp_path / "model.onnx.data").unlink()  # the copy reads its own data file, not the source's
    x = np.ones((1, 64), np.float32)
    y = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(y, x @ np.arange(4096, dtype=np.float32).reshape(64, 64))
    with pytest.raises(ValueError, match="base_dir"):
        onnx_utils.save(onnx_utils.load_header(dst), tmp_path / "again.onnx")


def test_an_export_moves_its_scratch_data_into_place_without_a_copy(tmp_path: Path) -> None:
    import onnxruntime as ort

    scratch = _small_model(tmp_path, external=True)
    inode = (tmp_path / "model.onnx.data").stat().st_ino
    header = onnx_utils.load_header(scratch)
    onnx_utils.set_metadata(header, {"k": "v"})
    final = tmp_path / "final.onnx"
    onnx_utils.save_moving(header, final, scratch)
    data = tmp_path / "final.onnx.data"
    assert data.stat().st_ino == inode and not (tmp_path / "model.onnx.data").exists()  # renamed, not copied
    assert stat.S_IMODE(data.stat().st_mode) == stat.S_IMODE(final.stat().st_mode) == onnx_utils.file_mode()
    assert onnx_utils.metadata(onnx_utils.load(final)) == {"k": "v"}
    x = np.ones((1, 64), np.float32)
    y = ort.InferenceSession(str(final), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(y, x @ np.arange(4096, dtype=np.float32).reshape(64, 64))
    # A header whose weights lie elsewhere is copied as `save` copies, its source left alone.
    elsewhere = tmp_path / "other" / "model.onnx"
    onnx_utils.save_moving(onnx_utils.load_header(final), elsewhere, final)
    assert data.exists() and (elsewhere.parent / "model.onnx.data").stat().st_ino != inode


def test_ort_model_of_an_external_data_model_is_a_header_beside_it(tmp_path: Path) -> None:
    src = _small_model(tmp_path, external=True)
    header = onnx_utils.ort_model(src, ["y"])
    assert isinstance(header, Path) and header.parent == tmp_path and header.stat().st_size < 10_000
    header.unlink()
    (tmp_path / "inline").mkdir()
    small = _small_model(tmp_path / "inline", external=False)
    assert isinstance(onnx_utils.ort_model(small, ["y"]), bytes)


def _norm_mlp(folder: Path, hidden: int = 256) -> Path:
    """Mul(gamma) -> MatMul -> Relu -> MatMul with its weights in `model.onnx.data`."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.full(hidden, 1.5, np.float32), "gamma")]
    inits += [numpy_helper.from_array(rng.standard_normal((hidden, hidden)).astype(np.float32), f"w{i}")
              for i in range(2)]
    nodes = [helper.make_node("Mul", ["x", "gamma"], ["n"], name="norm"),
             helper.make_node("MatMul", ["n", "w0"], ["h"], name="mm0"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w1"], ["y"], name="mm1")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, hidden])],
                              initializer=inits)
    path = folder / "model.onnx"
    onnx_utils.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path, external_data=True)
    return path


def _folder_state(folder: Path) -> dict[str, tuple[str, int]]:
    import hashlib

    return {f.name: (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in sorted(folder.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize(("quantizer", "options"), [
    ("int8", {"method": "max", "calibrator": "modelopt"}),
    ("int8", {"method": "max"}),
    ("int8", {"method": "max", "smoothquant": {"alpha": 0.5}}),
    ("int8", {"method": "percentile"}),
    ("int4-awq", {"method": "awq_clip", "block_size": 128, "calibrator": "modelopt"}),
    ("int4-awq", {"method": "awq_clip", "block_size": 128}),  # external data: the streamed awq_clip
    ("fp16", {}),
], ids=["modelopt-int8", "streaming-int8", "smoothquant-streaming-int8", "ort-quantize_static",
        "modelopt-int4", "streamed-int4", "autocast-fp16"])
def test_quantizers_read_the_weights_in_place_and_never_write_them(tmp_path: Path, quantizer: str,
                                                                 options: dict) -> None:
    """Each tool gets a header copy beside the export's data file (no multi-GB copy): the export's files are
    byte for byte and mtime for mtime what they were, and nothing is left beside them."""
    from pipeline.quantize import get_quantizer

    (tmp_path / "export").mkdir()
    src = _norm_mlp(tmp_path / "export")
    before = _folder_state(src.parent)
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((1, 16, 256)).astype(np.float32)} for _ in range(4)]
    dst = tmp_path / "out" / "model.onnx"
    get_quantizer(quantizer)(src, dst, feeds, options, {"nodes": [], "op_types": []})
    assert _folder_state(src.parent) == before
    assert onnx_utils.uses_external_data(dst)  # the export's layout kept, as a model over 2 GB needs
    onnx_utils.check(dst)
    import onnxruntime as ort

    y = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, feeds[0])[0]
    assert y.shape == (1, 16, 256) and np.isfinite(y).all()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_stage_that_would_fill_the_disk_is_refused_before_it_starts(tmp_path: Path) -> None:
    from pipeline.core.workspace import require_free_disk
    from pipeline.errors import PipelineError

    from .test_failures import tmpfs

    with tmpfs(tmp_path / "small", "2m") as small:
        require_free_disk("calibrate[int8]", {small / "engines" / "m": 1_000_000})  # fits
        with pytest.raises(PipelineError) as e:
            # two folders of one file system add up: 1.5 + 1.5 MB > 2 MB
            require_free_disk("calibrate[int8]", {small / "scratch": 1_500_000, small / "engines": 1_500_000})
        assert str(e.value) == (f"calibrate[int8]: needs 3.0 MB of free disk under {small / 'scratch'}, only "
                                f"2.1 MB free (free some, or pass another --root)")


def test_saving_a_header_over_its_own_data_file_keeps_it_readable(tmp_path: Path) -> None:
    """Re-saving a header model to the path it was read from replaces the data file it references: the
    model must then reference the new file (a second save of it still has its weights)."""
    src = _small_model(tmp_path, external=True)
    header = onnx_utils.load_header(src)
    # A new tensor written first moves `w` to another offset of the rewritten file.
    extra = numpy_helper.from_array(np.full(1000, 7, np.float32), "extra")
    kept = list(header.graph.initializer)
    del header.graph.initializer[:]
    header.graph.initializer.extend([extra, *kept])
    onnx_utils.save(header, src, base_dir=src.parent)
    onnx_utils.save(header, tmp_path / "second" / "model.onnx", base_dir=src.parent)
    for path in (src, tmp_path / "second" / "model.onnx"):
        w = {i.name: i for i in onnx_utils.load(path).graph.initializer}["w"]
        np.testing.assert_array_equal(numpy_helper.to_array(w), np.arange(4096, dtype=np.float32).reshape(64, 64))


def test_fp16_ranges_measured_one_sample_at_a_time_keep_what_autocast_keeps(tmp_path: Path) -> None:
    """AutoCast judged on ranges measured per sample (reductions inside the graph, nothing held) keeps the
    same nodes in FP32 as AutoCast's own reference run over the stacked samples, which holds every tensor;
    the range of each tensor is its true extreme over all samples."""
    from modelopt.onnx.autocast import convert_to_mixed_precision

    from pipeline.quantize.fp16 import autocast_fp16
    from pipeline.quantize.tensor_ranges import tensor_ranges

    (tmp_path / "export").mkdir()
    src = _norm_mlp(tmp_path / "export", hidden=64)
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.standard_normal((1, 16, 64)).astype(np.float32) * s} for s in (1, 1, 40)]
    ranges = tensor_ranges(src, feeds)
    import onnxruntime as ort

    truth = ort.InferenceSession(onnx_utils.ort_model(src, ["h"]), providers=["CPUExecutionProvider"])
    hs = [truth.run(["h"], f)[0] for f in feeds]
    assert ranges["h"].absmax == pytest.approx(max(float(np.abs(h).max()) for h in hs), rel=1e-6)
    assert ranges["h"].min_val == pytest.approx(min(float(h.min()) for h in hs), rel=1e-6)
    assert ranges["h"].shape == (1, 16, 64) and "x" in ranges
    # Only the third sample overflows data_max in `h`: a tool that looked at one sample would miss it.
    assert max(float(np.abs(h).max()) for h in hs[:2]) < 512 < ranges["h"].absmax

    dst = tmp_path / "out" / "model.onnx"
    summary = autocast_fp16(src, dst, feeds, {"calibration_samples": 3}, {"nodes": [], "op_types": []})
    npz = tmp_path / "calibration.npz"
    np.savez(npz, x=np.concatenate([f["x"] for f in feeds]))
    header = tmp_path / "reference" / "model.onnx"
    onnx_utils.save(onnx_utils.load(src), header)
    reference = convert_to_mixed_precision(onnx_path=str(header), low_precision_type="fp16", data_max=512.0,
                                           keep_io_types=True, calibration_data=str(npz), providers=["cpu"])
    del reference.graph.value_info[:]
    from pipeline.quantize.fp16 import _fp32_compute_nodes

    assert summary["kept_fp32_nodes"] == _fp32_compute_nodes(reference)
    assert "mm0" in summary["kept_fp32_nodes"] and "norm" not in summary["kept_fp32_nodes"]


def test_the_host_plan_reads_the_cgroup_and_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Available memory: the smallest of MemAvailable, the memory cgroup's limit minus its resident memory
    (v1 and v2 layouts) and ORIN_TRT_MEMORY_LIMIT."""
    from pipeline.analyze import host

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal: 25165824 kB\nMemAvailable: 20971520 kB\n")
    (tmp_path / "proc/self").mkdir()
    (tmp_path / "proc/self/cgroup").write_text("12:cpu:/\n7:memory:/scale\n")
    v1 = tmp_path / "sys/fs/cgroup/memory/scale"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(str(17 << 30))
    (v1 / "memory.stat").write_text(f"cache 999\nrss 5\ntotal_rss {2 << 30}\n")
    monkeypatch.delenv(host.ENV, raising=False)
    assert host.memory_available(tmp_path) == 15 << 30  # the cgroup's 17 GiB less 2 GiB resident, not 20 GiB
    (tmp_path / "proc/self/cgroup").write_text("0::/jobs/a\n")
    v2 = tmp_path / "sys/fs/cgroup/jobs/a"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.stat").write_text("anon 1\n")
    assert host.memory_available(tmp_path) == 20 << 30  # no limit there: MemAvailable
    monkeypatch.setenv(host.ENV, "6G")
    assert host.memory_available(tmp_path) == 6 << 30


def test_auto_export_dtype_is_fp16_only_where_fp32_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.analyze import host
    from pipeline.models.torch_export import export_dtype
    from pipeline.recipe.loader import load_recipe

    recipe = load_recipe("llama")
    fp32 = 5 * 10**9  # Llama-3.2-1B's weights in FP32
    need = host.stage_memory("export", fp32)
    monkeypatch.setenv(host.ENV, str(need + (1 << 30)))
    assert export_dtype(recipe, fp32, "Llama")[0] == "float32"
    monkeypatch.setenv(host.ENV, str(need - (1 << 30)))
    dtype, why = export_dtype(recipe, fp32, "Llama")
    assert dtype == "float16" and "needs about" in why and "export.dtype: float32" in why
    forced = load_recipe("llama", ["export.dtype=float32"])
    assert export_dtype(forced, fp32, "Llama") == ("float32", "export.dtype: float32")


def test_a_stage_the_host_cannot_take_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Before loading anything: the stage, what it needs, what is available; exit 2, nothing written."""
    from pipeline.analyze import host

    from .test_bad_input import run_cli

    monkeypatch.setenv(host.ENV, "300M")
    root = tmp_path / "engines"
    code, line = run_cli(capsys, "export", "--model", "llama", "--root", str(root), "--set", "export.dtype=float32")
    assert code == 2
    assert line.startswith("orin-trt: error: export: needs about ") and "GiB of memory for" in line
    assert "only 0.3 GiB available" in line
    assert not (root / "llama" / "model.onnx").exists()


def test_a_builds_need_grows_with_its_profiles_and_its_refusal_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build's plan counts its anonymous memory per optimization profile (TensorRT-RTX keeps a GEMM
    weight per profile), from the measured builds: within the SD-1.5 UNet's FP32 goal it ran in, refused
    for the FP16 Llama's two profiles whose anonymous peak exceeded its goal, one profile then named."""
    from pipeline.analyze import host
    from pipeline.errors import PipelineError

    unet, llama = 3_437_361_920, 3_000_000_000
    assert host.stage_memory("build[fp32]", unet, 1) <= 2 * unet + 2 * host.GIB  # ran in 8.4 GiB
    assert host.stage_memory("build[fp16]", 1_720_000_000, 1) >= 3.6 * host.GIB  # the UNet's FP16 build
    assert host.stage_memory("build[fp16]", llama, 2) > 8.0 * host.GIB  # measured 7.8-8.0 GiB anonymous
    assert host.stage_memory("build[fp16]", llama, 1) < host.stage_memory("build[fp16]", llama, 2)
    monkeypatch.setenv(host.ENV, "7.8G")
    with pytest.raises(PipelineError) as e:
        host.require_memory("build[fp16]", llama, "model.onnx", profiles=2)
    assert "one optimization profile instead of 2" in str(e.value) and "\n" not in str(e.value)
    host.require_memory("build[fp16]", llama, "model.onnx", profiles=1)  # fits: no error


@pytest.mark.slow
def test_an_fp16_export_keeps_the_fp32_interface_and_matches_pytorch_at_fp16(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """export.dtype float16: the weights are FP16 in the ONNX (never FP32 in memory on the way), the
    inputs, logits and KV cache keep the recipe's FP32 contract, and ONNX Runtime matches PyTorch's FP16
    model (prefill + decode); the export report says which dtype and why. The PyTorch model is gone
    before ONNX Runtime opens the file (model and session together were the 8B export's peak)."""
    import collections
    import gc

    from transformers import LlamaForCausalLM

    import pipeline.llm.session as llm_session
    import pipeline.runners.onnxrt as onnxrt
    from pipeline.cli import main
    from pipeline.core.artifacts import Layout, read_json

    alive_at_open: list[int] = []

    def recording(opener):  # noqa: ANN001, ANN202 - wraps the two ONNX Runtime openers of the export
        def open_session(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            gc.collect()
            alive_at_open.append(sum(type(o) is LlamaForCausalLM for o in gc.get_objects()))
            return opener(*args, **kwargs)
        return open_session

    monkeypatch.setattr(llm_session, "onnxrt_session", recording(llm_session.onnxrt_session))
    monkeypatch.setattr(onnxrt, "onnxrt_runner", recording(onnxrt.onnxrt_runner))
    root = tmp_path / "engines"
    assert main(["export", "--model", "llama", "--root", str(root), "--set", "export.dtype=float16"]) == 0
    assert alive_at_open == [0, 0]  # the decode check, then the stage's parity run
    layout = Layout(root, "llama")
    model = onnx_utils.load(layout.exported_onnx)
    by_dtype: collections.Counter[int] = collections.Counter()
    for init in model.graph.initializer:
        by_dtype[init.data_type] += onnx_utils.tensor_bytes(init)
    # The exporter's attention symbolic computes the attention output in FP32, and folds o_proj's weight
    # to FP32 with it: the rest is FP16.
    assert by_dtype[TensorProto.FLOAT16] > 0.85 * sum(by_dtype.values())
    floats = [v for v in [*model.graph.input, *model.graph.output] if v.type.tensor_type.elem_type != TensorProto.INT64]
    assert floats and all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in floats)
    report = read_json(layout.export_report)
    assert "weights exported in export.dtype: float16" in report["notes"]
    assert any("prefill + 4 decode steps" in n for n in report["notes"])
    assert min(p["cosine"] for p in report["parity"]["outputs"].values()) > 0.9999


def test_smoothquant_keeps_an_fp16_export_in_fp16(tmp_path: Path) -> None:
    """An FP16 export's norm Mul takes no FP32 gamma: the smoothed model keeps the model's dtype and runs."""
    from pipeline.quantize.smoothquant import smooth

    rng = np.random.default_rng(0)
    hidden = 64
    inits = [numpy_helper.from_array(np.full(hidden, 1.5, np.float16), "gamma"),
             numpy_helper.from_array(rng.standard_normal((hidden, hidden)).astype(np.float16), "w0")]
    nodes = [helper.make_node("Mul", ["x", "gamma"], ["n"], name="norm"),
             helper.make_node("MatMul", ["n", "w0"], ["y"], name="mm0")]
    graph = helper.make_graph(nodes, "fp16", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 8, hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 8, hidden])],
                              initializer=inits)
    src = tmp_path / "model.onnx"
    onnx_utils.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), src)
    x = rng.standard_normal((1, 8, hidden)).astype(np.float16)
    x[..., 3] *= 30
    dst = tmp_path / "out" / "model.onnx"
    smooth(src, dst, [{"x": x}], alpha=0.5)
    model = onnx_utils.load(dst)
    assert {i.data_type for i in model.graph.initializer} == {TensorProto.FLOAT16}
    import onnxruntime as ort

    y = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ref = (x.astype(np.float32) * 1.5) @ numpy_helper.to_array(inits[1]).astype(np.float32)
    np.testing.assert_allclose(y.astype(np.float32), ref, rtol=0.02, atol=0.5)
