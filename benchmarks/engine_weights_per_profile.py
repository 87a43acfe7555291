"""Engine weight bytes against ONNX weight bytes with one and with two optimization profiles (an LLM's
prefill + decode), for an FP16 MatMul, an FP16 Gather table and an INT4 (block DequantizeLinear) MatMul,
built by this host's TensorRT-family builder (TensorRT-RTX here). It explains the Llama-3.2-1B FP16 engine
of benchmarks/results/scale.md holding 4.94 GB for 3.0 GB of ONNX weights.

    .venv/bin/python benchmarks/engine_weights_per_profile.py > benchmarks/results/engine_weights_per_profile.md
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HIDDEN, FFN, VOCAB, BLOCK = 2048, 8192, 32000, 128


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


def engine_bytes(path: Path, profiles: list[tuple[int, int]]) -> int:
    from pipeline.trt.backend import select_backend

    trt = select_backend().module
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        raise SystemExit(f"{path}: {[str(parser.get_error(i)) for i in range(parser.num_errors)]}")
    config = builder.create_builder_config()
    for lo, hi in profiles:
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            t = network.get_input(i)
            dims = list(t.shape)
            profile.set_shape(t.name, [lo if d == -1 else d for d in dims], [hi if d == -1 else d for d in dims],
                              [hi if d == -1 else d for d in dims])
        config.add_optimization_profile(profile)
    return memoryview(builder.build_serialized_network(network, config)).nbytes


def main() -> None:
    from pipeline.analyze.weights import engine_weight_bytes
    from pipeline.trt.backend import select_backend

    print(f"Builder: {select_backend().describe()}\n")
    print("| weights | analyze's prediction MB | engine MB, 1 profile (1..128 tokens) | engine MB, 2 profiles (2..128, 1) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (nodes, inits, inputs, outputs) in _models().items():
            path = Path(tmp) / "m.onnx"
            model = helper.make_model(helper.make_graph(nodes, "m", inputs, outputs, initializer=inits),
                                      opset_imports=[helper.make_opsetid("", 21)])
            onnx.save_model(model, str(path))
            weights = engine_weight_bytes(path)
            one, two = engine_bytes(path, [(1, 128)]), engine_bytes(path, [(2, 128), (1, 1)])
            print(f"| {name} | {weights / 1e6:.1f} | {one / 1e6:.1f} | {two / 1e6:.1f} |")


if __name__ == "__main__":
    main()
