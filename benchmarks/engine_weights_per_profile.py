"""Engine weight bytes against ONNX weight bytes with one and with two optimization profiles (an LLM's
prefill + decode), for an FP16 MatMul, an FP16 Gather table and an INT4 (block DequantizeLinear) MatMul,
built by this host's TensorRT-family builder (TensorRT-RTX here). It explains the Llama-3.2-1B FP16 engine
of benchmarks/results/scale.md holding 4.94 GB for 3.0 GB of ONNX weights.

Then what makes the builder store an FP16 / FP32 GEMM weight once across the two profiles: the MatMul in
other graph forms, other profile shapes and other builder settings, each with the layout the builder gives
the weight in each profile (from its `Layers:` report); larger graphs with the build's anonymous peak
(each build in a child process, benchmarks/llm_build_profiles.py's). With `--llama <precision folder>`
(model.onnx + model.engine.json, e.g. benchmarks/scale.py's Llama-3.2-1B FP16), the real engine in the
forms that store the weights once, built through the pipeline's own build (run it in a memory cgroup).

    .venv/bin/python benchmarks/engine_weights_per_profile.py > benchmarks/results/engine_weights_per_profile.md
    .venv/bin/python benchmarks/engine_weights_per_profile.py --llama <root>/engines/llama-3.2-1b-fp16w/fp16
"""

from __future__ import annotations

import copy
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

HIDDEN, FFN, VOCAB, BLOCK = 2048, 8192, 32000, 128
MIB = 1 << 20
Profiles = list[tuple[int, int, int]]  # (min, opt, max) of every dynamic (token) dimension
ONE: Profiles = [(1, 128, 128)]
TWO: Profiles = [(2, 128, 128), (1, 1, 1)]  # prefill, decode: the recipes' form (decode static at one token)
Setup = Callable[[Any, Any], None]  # (trt module, builder config) -> None


def _models() -> dict[str, tuple[list, list, list, list]]:
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, "s", HIDDEN])
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "s"])
    w = numpy_helper.from_array((rng.standard_normal((HIDDEN, FFN)) * 0.02).astype(np.float16), "w")
    table = numpy_helper.from_array((rng.standard_normal((VOCAB, HIDDEN)) * 0.02).astype(np.float16), "table")
    q = rng.integers(-8, 8, (HIDDEN, FFN), dtype=np.int8)
    q4 = helper.make_tensor("q", TensorProto.INT4, [HIDDEN, FFN], q.flatten().tolist())
    scale = numpy_helper.from_array(np.full((HIDDEN // BLOCK, FFN), 0.01, np.float16), "scale")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, "s", FFN])
    return {
        "fp16 MatMul [2048, 8192]": ([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], [x], [y]),
        "fp16 Gather table [32000, 2048]": (
            [helper.make_node("Gather", ["table", "ids"], ["e"])], [table], [ids],
            [helper.make_tensor_value_info("e", TensorProto.FLOAT16, [1, "s", HIDDEN])]),
        "int4 MatMul [2048, 8192], block 128": (
            [helper.make_node("DequantizeLinear", ["q", "scale"], ["wd"], axis=0, block_size=BLOCK),
             helper.make_node("MatMul", ["x", "wd"], ["y"])], [q4, scale], [x], [y]),
    }


def _model(nodes: list, inits: list, inputs: list, outputs: list) -> Any:
    return helper.make_model(helper.make_graph(nodes, "m", inputs, outputs, initializer=inits),
                             opset_imports=[helper.make_opsetid("", 21)])


def weights_transposed(model: Any, base_dir: Path | None = None, side: Any = None) -> int:
    """Every MatMul weight (a 2-D initializer [K, N] read by MatMuls only) stored as its transpose [N, K]
    behind a Transpose node: the layout TensorRT-RTX gives a weight in a one-token profile, so the prefill
    profile keeps it too and both read one copy. A model over 2 GB: `base_dir` holds its data and `side`
    (onnx_utils.SideData) takes the new tensors, one at a time. Returns how many weights it turned."""
    from pipeline.core.onnx_utils import read_array

    inits = {t.name: t for t in model.graph.initializer}
    readers: dict[str, list[tuple[str, int]]] = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            readers.setdefault(name, []).append((node.op_type, k))
    turned = [t for name, t in inits.items() if len(t.dims) == 2 and readers.get(name)
              and all(r == ("MatMul", 1) for r in readers[name])]
    for tensor in turned:
        name = tensor.name
        array = np.ascontiguousarray(read_array(tensor, base_dir or Path(".")).T)
        tensor.name = f"{name}.T"
        if side is not None:
            side.store(tensor, array)
        else:
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
        model.graph.node.insert(0, helper.make_node("Transpose", [tensor.name], [name], perm=[1, 0],
                                                    name=f"{name}/Transpose"))
    return len(turned)


def _forms() -> dict[str, Any]:
    """The fp16 MatMul [2048, 8192] of _models() in other graph forms of the same math."""
    w = (np.random.default_rng(0).standard_normal((HIDDEN, FFN)) * 0.02).astype(np.float16)
    t = numpy_helper.from_array
    x3, y3 = (helper.make_tensor_value_info(n, TensorProto.FLOAT16, [1, "s", d]) for n, d in (("x", HIDDEN), ("y", FFN)))
    x2, y2 = (helper.make_tensor_value_info(n, TensorProto.FLOAT16, ["s", d]) for n, d in (("x", HIDDEN), ("y", FFN)))
    matmul = helper.make_node("MatMul", ["x", "w"], ["y"])
    plain = _model([matmul], [t(w, "w")], [x3], [y3])
    transposed = copy.deepcopy(plain)
    weights_transposed(transposed)
    scale = np.full((FFN,), 0.01, np.float16)
    q8 = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return {
        "MatMul, weight an initializer (as above)": plain,
        "MatMul, weight a Constant node": _model([helper.make_node("Constant", [], ["w"], value=t(w, "wv")), matmul],
                                                 [], [x3], [y3]),
        "MatMul, fp32 initializer + Cast to fp16": _model(
            [helper.make_node("Cast", ["w32"], ["w"], to=TensorProto.FLOAT16), matmul], [t(w.astype(np.float32), "w32")],
            [x3], [y3]),
        "MatMul, 2-D x [s, 2048]": _model([matmul], [t(w, "w")], [x2], [y2]),
        "MatMul, 3-D x reshaped to 2-D and back": _model(
            [helper.make_node("Reshape", ["x", "s2"], ["x2"]), helper.make_node("MatMul", ["x2", "w"], ["y2"]),
             helper.make_node("Reshape", ["y2", "s3"], ["y"])],
            [t(w, "w"), t(np.array([-1, HIDDEN], np.int64), "s2"), t(np.array([1, -1, FFN], np.int64), "s3")], [x3], [y3]),
        "Gemm, 2-D x": _model([helper.make_node("Gemm", ["x", "w"], ["y"])], [t(w, "w")], [x2], [y2]),
        "Gemm transB=1, weight [8192, 2048], 2-D x": _model(
            [helper.make_node("Gemm", ["x", "wt"], ["y"], transB=1)], [t(np.ascontiguousarray(w.T), "wt")], [x2], [y2]),
        "MatMul of Transpose(weight [8192, 2048]) (weights_transposed)": transposed,
        "int8 DequantizeLinear weight, per channel (another precision; for information)": _model(
            [helper.make_node("DequantizeLinear", ["q", "sc"], ["w"], axis=1), matmul], [t(q8, "q"), t(scale, "sc")],
            [x3], [y3]),
    }


def _chain(dtype: int, form: str) -> Any:
    """Four chained MatMuls [2048, 8192], [8192, 2048], ... ('chain') or a gated MLP down(silu(gate x) * up x)
    ('mlp'), 2048 / 8192 wide; 'transposed' applies weights_transposed; 'unfused' gives the MLP's up
    projection a 2-D input (a Reshape there and back), so the builder does not fuse gate and up into one GEMM
    (whose concatenated weight it builds anew in each profile's layout)."""
    kind, *variant = form.split(" ")
    rng = np.random.default_rng(0)
    shapes = [(HIDDEN, FFN), (FFN, HIDDEN)] * 2 if kind == "chain" else [(HIDDEN, FFN), (HIDDEN, FFN), (FFN, HIDDEN)]
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.02).astype(np_type), f"w{i}") for i, s in enumerate(shapes)]
    if kind == "chain":
        names = ["x", "h0", "h1", "h2", "y"]
        nodes = [helper.make_node("MatMul", [names[i], f"w{i}"], [names[i + 1]]) for i in range(4)]
    else:
        nodes = [helper.make_node("MatMul", ["x", "w0"], ["g"]), helper.make_node("MatMul", ["x", "w1"], ["u"]),
                 helper.make_node("Sigmoid", ["g"], ["sg"]), helper.make_node("Mul", ["g", "sg"], ["a"]),
                 helper.make_node("Mul", ["a", "u"], ["m"]), helper.make_node("MatMul", ["m", "w2"], ["y"])]
    if "unfused" in variant:
        nodes[1:2] = [helper.make_node("Reshape", ["x", "s2"], ["x2"]), helper.make_node("MatMul", ["x2", "w1"], ["u2"]),
                      helper.make_node("Reshape", ["u2", "s3"], ["u"])]
        inits += [numpy_helper.from_array(np.array(s, np.int64), n) for n, s in (("s2", [-1, HIDDEN]), ("s3", [1, -1, FFN]))]
    io = [helper.make_tensor_value_info(n, dtype, [1, "s", HIDDEN]) for n in ("x", "y")]
    model = _model(nodes, inits, io[:1], io[1:])
    if "transposed" in variant:
        weights_transposed(model)
    return model


_LAYER = re.compile(r"Name: ([^\n]*?)_myl(\d+)_\d+, LayerType: (\w+)([^\n]*)")
_CONSTANT = re.compile(r"\{ Name: [^,]+, Dimensions: \[([^\]]*)\], Strides: \[[^\]]*\], StrideOrder: \[([^\]]*)\]")


def _per_profile(lines: list[str]) -> dict[int, Counter]:
    """TensorRT-RTX's `Layers:` report, per profile (its compiled graphs in build order, prefill first): how
    many layers of each type ('fused MHA': a decode attention kernel), and which dimension of each GEMM weight
    (a constant of 2 or more dims) is contiguous: 'N' as in ONNX's [K, N], 'K' the transposed layout."""
    graphs: dict[int, Counter] = {}
    for line in lines:
        for name, graph, kind, rest in _LAYER.findall(line):
            count = graphs.setdefault(int(graph), Counter())
            count["fused MHA" if "mha" in name.lower() else kind] += 1
            if kind not in ("gemm", "runtime_fusion"):
                continue
            constants = rest.partition("Constants:")[2].partition("Outputs:")[0]
            for dims, order in _CONSTANT.findall(constants):
                rank = [int(v) for v in order.split(",")]
                if len(rank) >= 2 and sum(int(d) > 1 for d in dims.split(",")) >= 2:
                    count["N" if rank.index(0) == len(rank) - 1 else "K"] += 1
    return {i: graphs[g] for i, g in enumerate(sorted(graphs))}


def layouts(per: dict[int, Counter]) -> str:
    return "; ".join(f"p{g}: " + (" ".join(f"{k}x{c[k]}" for k in "NK" if c[k]) or "no constant weight")
                     for g, c in sorted(per.items())) or "-"


def layer_types(per: dict[int, Counter]) -> str:
    return "; ".join(f"p{g}: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if k not in ("N", "K"))
                     for g, c in sorted(per.items()))


@dataclass
class Built:
    nbytes: int | None  # None: the build failed
    seconds: float
    per_profile: dict[int, Counter]
    error: str = ""

    @property
    def layouts(self) -> str:
        return layouts(self.per_profile)


def build(model: Any, profiles: Profiles | list[dict[str, Any]], setup: Setup | None = None,
          flags: tuple[str, ...] = (), strongly_typed: bool = True) -> Built:
    """Engine bytes of `model` (an ONNX ModelProto, or the Path of one over 2 GB) built with `profiles`: token
    ranges for every dynamic dimension, or a manifest's profiles."""
    from pipeline.trt.backend import select_backend

    trt = select_backend().module

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            self.lines.append(msg)

    logger = Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0)
    parser = trt.OnnxParser(network, logger)
    if not (parser.parse_from_file(str(model)) if isinstance(model, Path) else parser.parse(model.SerializeToString())):
        raise SystemExit(f"{[str(parser.get_error(i)) for i in range(parser.num_errors)]}")
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the Layers: report names each weight's layout
    for shapes in profiles:
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            name, dims = network.get_input(i).name, list(network.get_input(i).shape)
            if isinstance(shapes, dict):
                profile.set_shape(name, *(shapes["shapes"][name][k] for k in ("min", "opt", "max")))
            else:
                profile.set_shape(name, *([v if d == -1 else d for d in dims] for v in shapes))
        config.add_optimization_profile(profile)
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if setup is not None:
        setup(trt, config)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        errors = [line for line in logger.lines if "Error Code" in line]
        return Built(None, seconds, {}, (errors[-1] if errors else "no plan").split("]")[-1].strip()[:90])
    return Built(memoryview(plan).nbytes, seconds, _per_profile(logger.lines))


def _set(attr: str, enum: str | None, value: Any) -> Setup:
    def setup(trt: Any, config: Any) -> None:
        setattr(config, attr, getattr(getattr(trt, enum), value) if enum else value)
    return setup


def _compute_capability(name: str) -> Setup:
    def setup(trt: Any, config: Any) -> None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(getattr(trt.ComputeCapability, name), 0)
    return setup


# (label, profiles of the two-profile build, builder setting, flags) on the plain fp16 MatMul
_PROFILE_VARIANTS: list[tuple[str, Profiles]] = [
    ("decode 1..2 tokens (opt 1) instead of exactly 1", [(2, 128, 128), (1, 1, 2)]),
    ("decode 1..8 tokens (opt 8)", [(2, 128, 128), (1, 8, 8)]),
    ("prefill 1..128, overlapping the decode profile", [(1, 128, 128), (1, 1, 1)]),
    ("prefill opt 2 (min)", [(2, 2, 128), (1, 1, 1)]),
    ("decode first, prefill second", [(1, 1, 1), (2, 128, 128)]),
    ("two identical profiles 1..128", [(1, 128, 128), (1, 128, 128)]),
]
_SETTINGS: list[tuple[str, Setup | None, tuple[str, ...]]] = [
    ("builder_optimization_level = 0", _set("builder_optimization_level", None, 0), ()),
    ("builder_optimization_level = 5", _set("builder_optimization_level", None, 5), ()),
    ("tiling_optimization_level = FULL", _set("tiling_optimization_level", "TilingOptimizationLevel", "FULL"), ()),
    ("compute capability SM86 only", _compute_capability("SM86"), ()),
    ("hardware_compatibility_level = AMPERE_PLUS",
     _set("hardware_compatibility_level", "HardwareCompatibilityLevel", "AMPERE_PLUS"), ()),
    ("preview feature RUNTIME_ACTIVATION_RESIZE_10_10", lambda trt, c: c.set_preview_feature(
        trt.PreviewFeature.RUNTIME_ACTIVATION_RESIZE_10_10, True), ()),
    ("BuilderFlag.WEIGHT_STREAMING", None, ("WEIGHT_STREAMING",)),
    ("BuilderFlag.REFIT_INDIVIDUAL", None, ("REFIT_INDIVIDUAL",)),
    ("BuilderFlag.REFIT", None, ("REFIT",)),
    ("BuilderFlag.REFIT_IDENTICAL", None, ("REFIT_IDENTICAL",)),
    ("BuilderFlag.STRIP_PLAN + REFIT_IDENTICAL", None, ("STRIP_PLAN", "REFIT_IDENTICAL")),
]


def _row(label: str, one: Built, two: Built) -> str:
    if two.nbytes is None:
        return f"| {label} | fails: {one.error or two.error} | | |"
    return f"| {label} | {(one.nbytes or 0) / 1e6:.1f} | {two.nbytes / 1e6:.1f} | {two.layouts} |"


def _manifest_profiles(model: Any, profiles: Profiles) -> list[dict[str, Any]]:
    """`profiles` in a manifest's form (what llm_build_profiles.measure takes)."""
    def shape(v: Any, n: int) -> list[int]:
        return [n if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
    return [{"shapes": {v.name: {"min": shape(v, lo), "opt": shape(v, opt), "max": shape(v, hi)}
                        for v in model.graph.input}} for lo, opt, hi in profiles]


def _peak(model: Any, profiles: Profiles) -> dict[str, Any]:
    from llm_build_profiles import measure

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save_model(model, str(path))
        return measure(path, _manifest_profiles(model, profiles))


def main() -> None:
    from pipeline.analyze.weights import engine_weight_bytes
    from pipeline.trt.backend import select_backend

    print(f"Builder: {select_backend().describe()}\n")
    print("| weights | analyze's prediction MB | engine MB, 1 profile (1..128 tokens) | engine MB, 2 profiles (2..128, 1) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (nodes, inits, inputs, outputs) in _models().items():
            path = Path(tmp) / "m.onnx"
            model = _model(nodes, inits, inputs, outputs)
            onnx.save_model(model, str(path))
            one, two = build(model, ONE), build(model, TWO)
            print(f"| {name} | {engine_weight_bytes(path) / 1e6:.1f} | {one.nbytes / 1e6:.1f} | {two.nbytes / 1e6:.1f} |")

    print("\nThe fp16 MatMul [2048, 8192] (33.6 MB of weights) in other forms, profiles and builder settings. "
          "Layout: the contiguous dimension of the GEMM's weight in each profile's graph (p0 prefill, p1 decode), "
          "N as in ONNX's [K, N] or K (transposed).\n")
    print("| variant | engine MB, 1 profile | engine MB, 2 profiles | weight layout, 2 profiles |")
    print("|---|---|---|---|")
    forms = _forms()
    for label, model in forms.items():
        print(_row(f"form: {label}", build(model, ONE), build(model, TWO)))
    plain = forms["MatMul, weight an initializer (as above)"]
    print(_row("form: as above, network not strongly typed", build(plain, ONE, strongly_typed=False),
               build(plain, TWO, strongly_typed=False)))
    for label, profiles in _PROFILE_VARIANTS:
        print(_row(f"profiles: {label}", build(plain, ONE), build(plain, profiles)))
    batched = copy.deepcopy(plain)  # x [b, s, 2048]: the decode graph's GEMM rows (b x 1) are no longer static
    for value in (*batched.graph.input, *batched.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "b"

    def batch(profiles: Profiles) -> list[dict[str, Any]]:
        return [{"shapes": {"x": {"min": [1, lo, HIDDEN], "opt": [1, opt, HIDDEN], "max": [4, hi, HIDDEN]}}}
                for lo, opt, hi in profiles]
    print(_row("profiles: x [b, s, 2048], batch 1..4 in both profiles (decode 1 token)", build(batched, batch(ONE)),
               build(batched, batch(TWO))))
    for label, setup, flags in _SETTINGS:
        print(_row(f"builder: {label}", build(plain, ONE, setup, flags), build(plain, TWO, setup, flags)))

    print("\nLarger graphs, 2048 / 8192 wide: four chained MatMuls (134 MB fp16) and a gated MLP (gate, up, down; "
          "101 MB fp16); anonymous peak of the pipeline's build (trt/build.py) in a child process.\n")
    print("| graph | engine MB, 1 profile | engine MB, 2 profiles | weight layout, 2 profiles | build s, 2 profiles | "
          "anonymous peak MiB, 1 / 2 profiles | layers, 2 profiles |")
    print("|---|---|---|---|---|---|---|")
    widened: Profiles = [(2, 128, 128), (1, 1, 2)]
    for dtype, precision in ((TensorProto.FLOAT16, "fp16"), (TensorProto.FLOAT, "fp32")):
        for form, profiles in (("chain", TWO), ("chain transposed", TWO), ("chain", widened),
                               ("mlp", TWO), ("mlp transposed", TWO), ("mlp transposed unfused", TWO), ("mlp", widened)):
            model = _chain(dtype, form)
            one, two = build(model, ONE), build(model, profiles)
            peaks = [_peak(model, p)["anon"] / MIB for p in (ONE, profiles)]
            label = f"{precision} {form.replace('transposed', '(weights_transposed)').replace('unfused', 'up via 2-D')}" + (
                ", decode 1..2 tokens" if profiles is widened else "")
            print(f"| {label} | {one.nbytes / 1e6:.1f} | {two.nbytes / 1e6:.1f} | {two.layouts} | {two.seconds:.1f} | "
                  f"{peaks[0]:.0f} / {peaks[1]:.0f} | {layer_types(two.per_profile)} |")


def decode_range(profiles: list[dict[str, Any]], tokens: int = 2) -> list[dict[str, Any]]:
    """The manifest's profiles with the decode profile's one-token dimensions (min = max = 1 where the
    prefill profile's range is wider) widened to 1..`tokens`, opt still 1."""
    out = copy.deepcopy(profiles)
    prefill, decode = out[0]["shapes"], out[-1]["shapes"]
    for name, shape in decode.items():
        for d, (lo, hi) in enumerate(zip(shape["min"], shape["max"], strict=True)):
            if lo == hi == 1 and prefill[name]["max"][d] > 1 and prefill[name]["min"][d] != prefill[name]["max"][d]:
                shape["max"][d] = tokens
    return out


def max_batch(profiles: list[dict[str, Any]], batch: int) -> list[dict[str, Any]]:
    """The manifest's profiles with the batch dimension (1 in every profile's min and max) up to `batch`."""
    out = copy.deepcopy(profiles)
    for name in out[0]["shapes"]:
        shapes = [p["shapes"][name] for p in out]
        for d in range(len(shapes[0]["max"])):
            if all(s["min"][d] == s["max"][d] == 1 for s in shapes):
                for s in shapes:
                    s["max"][d] = batch
    return out


def widened(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifest's profiles as trt/build.py gives them to TensorRT-RTX with the extra memory target at 0
    (`_shared_weight_dims`: a dimension 1 in every profile goes to 1..2 after the first profile)."""
    from pipeline.trt.build import _shared_weight_dims

    dims = _shared_weight_dims([{n: (s["min"], s["opt"], s["max"]) for n, s in p["shapes"].items()} for p in profiles])
    out = copy.deepcopy(profiles)
    for p in out[1:]:
        for name, d in dims:
            p["shapes"][name]["max"][d] = 2
    return out


def llama(folder: Path) -> None:
    """The real model: its recipe's prefill + decode profiles (batch 1), the weights transposed, the decode
    profile widened to 1..2 tokens, a batch of up to 4; each built in a child process
    (llm_build_profiles.measure)."""
    from llm_build_profiles import measure, print_builds

    from pipeline.core import onnx_utils

    profiles = json.loads((folder / "model.engine.json").read_text())["profiles"]
    with tempfile.TemporaryDirectory(prefix="weights-per-profile-") as tmp:
        work = Path(tmp)
        source = folder / "model.onnx"
        (work / "model.onnx.data").symlink_to((folder / "model.onnx.data").resolve())
        model = onnx_utils.load_header(source)
        side = onnx_utils.SideData(work, "transposed.data")
        start = time.perf_counter()
        turned = weights_transposed(model, work, side)
        (work / "t").mkdir()
        onnx_utils.save(model, work / "t" / "model.onnx", base_dir=work)
        rewrite = time.perf_counter() - start
        side.remove()
        print(f"weights_transposed: {turned} MatMul weights turned, {rewrite:.0f} s to rewrite and save the ONNX\n")
        rows = {"recipe's profiles (prefill 1..128, decode 1)": (source, profiles),
                "weights_transposed": (work / "t" / "model.onnx", profiles),
                "decode profile 1..2 tokens (opt 1)": (source, decode_range(profiles)),
                "weights_transposed + decode 1..2 tokens": (work / "t" / "model.onnx", decode_range(profiles)),
                "batch 1..4 in both profiles (decode 1 token)": (source, max_batch(profiles, 4)),
                "weights_transposed + batch 1..4": (work / "t" / "model.onnx", max_batch(profiles, 4))}
        results = {label: measure(path, p) for label, (path, p) in rows.items()}
        shared = "the build's LLM default: extra memory target 0 (here: decode batch 1..2)"
        results[shared] = measure(source, profiles, extra_profile_memory=0.0)
        rows[shared] = (source, widened(profiles))
        layers = {label: build(path, p).per_profile for label, (path, p) in rows.items()}
    print_builds(results, folder, "form")
    print("\nThe same builds' `Layers:` report (built again, directly): GEMM weight layouts and layers per profile.\n")
    print("| form | weight layout | layers |")
    print("|---|---|---|")
    for label, per in layers.items():
        print(f"| {label} | {layouts(per)} | {layer_types(per)} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--llama"]:
        llama(Path(sys.argv[2]))
    else:
        main()
