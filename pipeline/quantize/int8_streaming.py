"""W8A8 INT8 QDQ with max or entropy calibration in the memory of one ONNX Runtime session, for models of
any size.

ModelOpt's INT8 holds the model eight to nine times over (its preprocessing's copy, one per exclusion rule
and inference run, int8.quantize's, quantize_static's, the calibrator's and its shape inference, the
calibration session: docs/memory.md): ViT-B/16's 0.35 GB peak at 4.3 GiB, SD-1.5's UNet and Llama-3.2-1B
are killed at 17 GiB. Here the graph is a header (`onnx_utils.load_header`, weights left on disk; a model
in one file gets its weights put beside it first, int8.py), and:

1. **Placement** on the header, with ModelOpt's own functions: the recipe's exclusions, its GEMV / small-GEMM
   MatMul rule (`_exclude_matmuls_by_shape_inference`, on the calibration shapes as ModelOpt runs it), its
   small-channel Conv rule (`find_nodes_from_convs_to_exclude`), its INT8 MHA rule (BMMs of an attention
   whose sequence exceeds 512 stay float; the length from ONNX shape inference), its partitioning
   (`int8._find_nodes_to_quantize` after `configure_ort`: the nodes to quantize and the inputs it later
   strips of their Q/DQ; with `op_types_to_quantize`, every node of those types instead, as ModelOpt then
   picks them) and its Concat groups (`get_concat_eliminated_tensors`: one shared range). Which
   inputs of a quantized node get a Q/DQ follows ONNX Runtime's QDQ registry as ModelOpt configures it:
   Conv / ConvTranspose / Gemm / MatMul their input and weight (or both activations of an activation x
   activation MatMul), ops of the base class every float input, the rest their first input. One Q/DQ per
   tensor, read by every consumer (ModelOpt's DedicatedQDQPair false), except the inputs ModelOpt strips:
   those its `remove_partial_input_qdq` really finds (`_stripped_by_modelopt`: it misses a Split's second
   output, whose Q/DQ then stays read).
2. **Calibration**, one sample at a time. max: the amax of each of those tensors measured by reductions
   inside the graph (`tensor_ranges.py`, restricted to them). entropy: those tensors made graph outputs of
   a session with ModelOpt's settings (graph optimizations off), each sample's values put through ONNX
   Runtime's HistogramCollector as ModelOpt patches and configures it (`entropy_ranges`), its thresholds
   the range. The scale is ONNX Runtime's symmetric one (`compute_scale_zp`: max(|lo|, |hi|), 0 included,
   / 127), a Softmax output [0, 1] as ModelOpt's patched ranges have it; INT8 zero points of 0.
3. **Weights**: per output channel (Conv axis 0, ConvTranspose 1, Gemm 0 with transB else 1, MatMul the
   last), symmetric, written as INT8 initializers with a DequantizeLinear, one tensor at a time into the
   new data file (`onnx_utils.save_header` / `SideData`); nothing is loaded whole and the export's data is
   not copied. Scales keep the dtype of the tensor they scale, so an FP16 graph stays FP16.

Not reproduced: ModelOpt's Q -> DQ pair on the float weight (here INT8 weight + DQ, what ModelOpt writes
with `dq_only=True`: the same values, a quarter of the bytes), its opset upgrade (the source's opset is
kept: opset 13 has per-axis Q/DQ; FP16 scales need 19, refused below), its preprocessing's duplication of
shared constants, per-tensor Q/DQ on float initializers read by non-GEMM ops (none in these models), the
per-channel Q/DQ on the scale of a LayerNormalization fed by a Conv (its input is quantized), the MHA rule's
inference run (an attention whose length shape inference cannot tell is quantized), `high_precision_dtype:
fp16` and DLA placement (ModelOpt's path does those). On the trained UNet and Llama fixtures the output
is ModelOpt max's Q/DQ exactly: the same tensors and readers, scales within 1e-6, the same INT8 weights,
the same engine weights; on the trained ViT and shapes (YOLO11) fixtures ModelOpt entropy's, scales equal
to the bit, and the same accuracy against labels (tests/test_int8_streaming.py).
"""

from __future__ import annotations

import contextlib
import copy
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..core.log import log, progress
from ..errors import PipelineError
from .tensor_ranges import FLOATS, tensor_ranges

GEMM_LIKE = ("Conv", "ConvTranspose", "Gemm", "MatMul")
MHA_MAX_SEQ = 512  # ModelOpt's INT8 rule: an attention over a longer sequence keeps its BMMs in float
FLOAT16_SCALES_OPSET = 19  # QuantizeLinear / DequantizeLinear take FP16 scales from opset 19
METHODS = ("max", "entropy")
# ONNX Runtime's EntropyCalibrater as ModelOpt creates it (ort_patching._create_calibrator_with_extra_options
# with the options ModelOpt's int8 path passes): 128 bins, 128 quantized bins, not symmetric.
ENTROPY = {"method": "entropy", "symmetric": False, "num_bins": 128, "num_quantized_bins": 128,
           "percentile": 99.999, "scenario": "same"}


@dataclass
class Placement:
    """Where the Q/DQ go: activation tensors (one shared pair each), weights (initializer -> channel axis),
    inputs that read the float tensor anyway ((consumer node, tensor)), Concat groups sharing one range."""

    nodes: list[str]
    activations: list[str]
    weights: dict[str, int]
    keep_float: set[tuple[str, str]] = field(default_factory=set)
    groups: dict[str, set[str]] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)  # tensor -> ONNX element type (shape inference)


def _inferred(model: Any, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """name -> ValueInfo of every tensor, shape inference run on a copy of the header with the calibration
    shapes filled in (symbolic dims elsewhere set to 1, as ModelOpt does)."""
    import onnx

    model = copy.deepcopy(model)
    for graph_input in model.graph.input:
        dims = graph_input.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if graph_input.name in shapes:
                dim.Clear()
                dim.dim_value = int(shapes[graph_input.name][i])
            elif dim.HasField("dim_param"):
                dim.Clear()
                dim.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    g = inferred.graph
    return {v.name: v for v in [*g.input, *g.value_info, *g.output]}


def _mha_to_exclude(graph: Any, infos: dict[str, Any]) -> list[str]:
    from modelopt.onnx.quantization.graph_utils import find_mha_partitions

    names = []
    for partition in find_mha_partitions(graph):
        bmm1, bmm2 = partition[0], partition[2]
        info = infos.get(bmm1.inputs[1].name)
        dims = info.type.tensor_type.shape.dim if info is not None else []
        if dims and dims[-1].HasField("dim_value") and dims[-1].dim_value > MHA_MAX_SEQ:
            names += [bmm1.name, bmm2.name]
    return names


def _weight_axis(node: Any, rank: int) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        return 0 if next((a.i for a in node.attribute if a.name == "transB"), 0) else 1
    return rank - 1  # MatMul [..., K, N]: N, the output channel


def _inputs_to_quantize(node: Any) -> list[int]:
    """Input indices ONNX Runtime's QDQ quantizer (as ModelOpt registers it) quantizes for `node`."""
    from onnxruntime.quantization.operators.qdq_base_operator import QDQOperatorBase
    from onnxruntime.quantization.registry import QDQRegistry

    if node.op_type in GEMM_LIKE:
        return [0, 1]
    # An op without its own class (Add, Mul, ...) is quantized by the base class: every input.
    cls = QDQRegistry.get(node.op_type, QDQOperatorBase)
    return list(range(len(node.input))) if cls is QDQOperatorBase else [0]


@contextlib.contextmanager
def _weights_unread() -> Iterator[None]:
    """graphsurgeon constants whose data lies on disk read as zero-stride zeros of their shape and dtype:
    ModelOpt's placement reads a weight's values only for its shape (the K of a MatMul), and loading them
    would put the model in memory (graphsurgeon keeps what it loaded)."""
    from onnx.external_data_helper import uses_external_data
    from onnx_graphsurgeon.importers.onnx_importer import get_numpy_type
    from onnx_graphsurgeon.ir import tensor as gs_tensor

    original = gs_tensor.LazyValues.load

    def load(self: Any) -> np.ndarray:
        if uses_external_data(self.tensor):
            return np.broadcast_to(np.zeros((), get_numpy_type(self.dtype)), tuple(self.shape))
        return original(self)

    gs_tensor.LazyValues.load = load
    try:
        yield
    finally:
        gs_tensor.LazyValues.load = original


def placement(model: Any, excluded: list[str], shapes: dict[str, tuple[int, ...]],
              op_types: list[str] | None = None) -> Placement:
    """ModelOpt's INT8 placement on the header `model` (see the module docstring); with `op_types`
    (`op_types_to_quantize`) every node of those types not excluded, as ModelOpt's int8.quantize picks them
    then, instead of its partitioning."""
    import onnx_graphsurgeon as gs
    from modelopt.onnx.quantization import int8 as mo_int8
    from modelopt.onnx.quantization.graph_utils import (
        _exclude_matmuls_by_shape_inference,
        find_nodes_from_convs_to_exclude,
        get_concat_eliminated_tensors,
    )
    from modelopt.onnx.quantization.ort_utils import configure_ort

    with _weights_unread():
        graph = gs.import_onnx(model)
        graph.toposort()
        infos = _inferred(model, shapes)
        spec = ",".join(f"{k}:{'x'.join(str(d) for d in v)}" for k, v in shapes.items())
        matmuls = [n for n in graph.nodes if n.op in ("MatMul", "Gemm")]
        exclude = list(dict.fromkeys([*excluded, *_mha_to_exclude(graph, infos)]))
        exclude += _exclude_matmuls_by_shape_inference(copy.deepcopy(model), matmuls, spec) if matmuls else []
        exclude += find_nodes_from_convs_to_exclude(graph, quantize_mode="int8")
        exclude = list(dict.fromkeys(exclude))
        _, quantizable = configure_ort(list({n.op for n in graph.nodes}), list(op_types or []), None, ["cpu"])
        if op_types:
            chosen, no_quantize = [n for n in graph.nodes if n.op in op_types], []
        else:
            chosen, no_quantize = mo_int8._find_nodes_to_quantize(graph, quantizable, exclude)
    skip = set(exclude)
    names = list(dict.fromkeys(n.name for n in chosen if n.name not in skip))

    inits = {i.name: i for i in model.graph.initializer}
    by_name = {n.name: n for n in model.graph.node}

    def is_float(tensor: str) -> bool:
        if tensor in inits:
            return inits[tensor].data_type in FLOATS
        info = infos.get(tensor)
        return info is not None and info.type.tensor_type.elem_type in FLOATS

    activations: list[str] = []
    weights: dict[str, int] = {}
    for name in names:
        node = by_name[name]
        for index in _inputs_to_quantize(node):
            if index >= len(node.input) or not node.input[index] or not is_float(node.input[index]):
                continue
            tensor = node.input[index]
            if tensor in inits:
                if node.op_type in GEMM_LIKE and index == 1:
                    weights[tensor] = _weight_axis(node, len(inits[tensor].dims))
                continue  # float initializers of other ops stay float (module docstring)
            activations.append(tensor)
    activations = list(dict.fromkeys(activations))
    keep = _stripped_by_modelopt(model, no_quantize)
    # A tensor whose every reader keeps the float one gets no Q/DQ (ModelOpt strips the pair it left unread).
    readers: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        for tensor in node.input:
            readers[tensor].append(node.name)
    activations = [t for t in activations if any((r, t) not in keep for r in readers[t])]
    groups = get_concat_eliminated_tensors(model, names) if names else {}
    types = {k: v.type.tensor_type.elem_type for k, v in infos.items()}
    return Placement(names, activations, weights, keep, groups or {}, exclude, types)


def _stripped_by_modelopt(model: Any, no_quantize: list[tuple[Any, Any, str]]) -> set[tuple[str, str]]:
    """The (node, tensor) inputs ModelOpt's `remove_partial_input_qdq` returns to the float tensor. It finds
    the pair through the source node's first output (`source.o().o()`), so an input whose tensor is
    another output of its source (a Split's second, in YOLO11's C3k2 blocks) keeps its Q/DQ."""
    first_output = {n.name: n.output[0] for n in model.graph.node if n.output}
    return {(target.name, tensor) for source, target, tensor in no_quantize
            if first_output.get(source.name) == tensor}


def _scale(lo: Any, hi: Any, dtype: np.dtype) -> np.ndarray:
    """ONNX Runtime's symmetric INT8 scale for the range [lo, hi] (what ModelOpt's calibration gives it)."""
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

    qmin, qmax = get_qmin_qmax_for_qType(TensorProto.INT8, symmetric=True)
    def exact(v: Any) -> np.ndarray:  # a Python float (a reduction's float32) as float32; numpy as it is
        return np.asarray(v) if isinstance(v, np.ndarray | np.generic) else np.array(v, np.float32)

    _, scale = compute_scale_zp(exact(lo), exact(hi), qmin, qmax, symmetric=True)
    return np.asarray(scale, np.float32).astype(dtype)


def channel_scales(weight: np.ndarray, axis: int) -> np.ndarray:
    """Per-channel symmetric scales of `weight` along `axis`: ONNX Runtime's formula, vectorized."""
    other = tuple(i for i in range(weight.ndim) if i != axis)
    amax = np.abs(weight).max(axis=other).astype(weight.dtype)
    # compute_scale_zp: (rmax - rmin) in the weight's dtype, / 254 in float64, back to the weight's dtype.
    scale = ((amax + amax).astype(np.float64) / 254.0).astype(weight.dtype)
    return np.where(scale < np.finfo(weight.dtype).tiny, np.ones_like(scale), scale)


def quantize_weight(weight: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.rint(weight.astype(np.float32) / scale.astype(np.float32).reshape(shape))
    return np.clip(q, -127, 127).astype(np.int8)


def insert_activation_qdq(model: Any, plan: Placement, scales: dict[str, np.ndarray]) -> None:
    """One QuantizeLinear -> DequantizeLinear per activation, right after the node that makes it, read by
    every consumer except those `plan.keep_float` names."""
    from onnx import helper, numpy_helper

    producers = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    after: dict[int, list[Any]] = defaultdict(list)  # -1: graph inputs, before the first node
    for tensor in plan.activations:
        scale = scales[tensor]
        q_out, dq_out = f"{tensor}_QuantizeLinear_Output", f"{tensor}_DequantizeLinear_Output"
        model.graph.initializer.extend([numpy_helper.from_array(scale, f"{tensor}_scale"),
                                        numpy_helper.from_array(np.array(0, np.int8), f"{tensor}_zero_point")])
        for node in model.graph.node:
            if (node.name, tensor) in plan.keep_float:
                continue
            node.input[:] = [dq_out if i == tensor else i for i in node.input]
        after[producers.get(tensor, -1)] += [
            helper.make_node("QuantizeLinear", [tensor, f"{tensor}_scale", f"{tensor}_zero_point"], [q_out],
                             name=f"{tensor}_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [q_out, f"{tensor}_scale", f"{tensor}_zero_point"], [dq_out],
                             name=f"{tensor}_DequantizeLinear")]
    nodes = list(after.get(-1, []))
    for i, node in enumerate(model.graph.node):
        nodes += [node, *after.get(i, [])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def quantize_weights(model: Any, weights: dict[str, int], base_dir: Path, side: onnx_utils.SideData | None) -> int:
    """Each weight in `weights` replaced by its INT8 values and a per-channel DequantizeLinear, one tensor in
    memory at a time (written to `side` when the model keeps its weights on disk). Returns the INT8 bytes."""
    from onnx import TensorProto, helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    readers = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            readers[name].append(node)
    total, dq_nodes = 0, []
    for name, axis in progress(list(weights.items()), "int8 weights (one at a time)", len(weights)):
        tensor = inits[name]
        w = onnx_utils.read_array(tensor, base_dir)
        scale = channel_scales(w, axis)
        q = quantize_weight(w, scale, axis)
        del w
        quantized = TensorProto(name=f"{name}_quantized")
        if side is None:
            quantized.CopyFrom(numpy_helper.from_array(q, quantized.name))
        else:
            side.store(quantized, q)
        total += q.nbytes
        del q
        model.graph.initializer.extend([quantized, numpy_helper.from_array(scale, f"{name}_scale"),
                                        numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero_point")])
        out = f"{name}_DequantizeLinear_Output"
        dq_nodes.append(helper.make_node("DequantizeLinear", [quantized.name, f"{name}_scale", f"{name}_zero_point"],
                                         [out], name=f"{name}_DequantizeLinear", axis=axis))
        for node in readers[name]:
            node.input[:] = [out if i == name else i for i in node.input]
        model.graph.initializer.remove(tensor)
    nodes = [*dq_nodes, *model.graph.node]  # they read only initializers: first in topological order
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return total


def _shapes(feed: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(int(d) for d in v.shape) for k, v in feed.items()}


def check_supported(options: dict[str, Any]) -> None:
    """The options the streaming quantizer does not do are errors naming the option."""
    where = "precisions.int8"
    if options.get("method", "entropy") not in METHODS:
        raise PipelineError(f"{where}.calibrator: streaming calibrates with method max or entropy, not "
                            f"{options.get('method', 'entropy')!r} (use calibrator: modelopt)")
    if options.get("high_precision_dtype", "fp32") != "fp32":
        raise PipelineError(f"{where}.calibrator: streaming keeps the unquantized ops as exported; "
                            "high_precision_dtype fp16 needs calibrator: modelopt")
    if options.get("target_dla"):
        raise PipelineError(f"{where}.calibrator: streaming has no DLA Q/DQ placement (target_dla); "
                            "use calibrator: modelopt for a --dla build")


def quantize_streaming(src: Path, feeds: list[dict[str, np.ndarray]], excluded: list[str],
                       method: str = "max", op_types: list[str] | None = None) -> tuple[Any, Placement]:
    """The header of the ONNX at `src` (weights still on disk beside it) with its activation Q/DQ in place,
    and the placement, whose `weights` `quantize_weights` then writes while the header is saved."""
    src = Path(src)
    model = onnx_utils.load_header(src)
    shapes = _shapes(feeds[0])
    plan = placement(model, excluded, shapes, op_types)
    types = plan.types
    inits = {i.name: i.data_type for i in model.graph.initializer}
    fp16 = any(types.get(t) == 10 for t in plan.activations) or any(inits[w] == 10 for w in plan.weights)
    if fp16 and _opset(model) < FLOAT16_SCALES_OPSET:
        raise PipelineError(f"{src}: an FP16 graph at opset {_opset(model)} cannot take FP16 Q/DQ scales "
                            f"(opset {FLOAT16_SCALES_OPSET}+); export at a higher opset or use calibrator: modelopt")
    log("calibrate[int8]", f"streaming INT8 ({method}): {len(plan.nodes)} nodes, {len(plan.activations)} activations "
                           f"and {len(plan.weights)} weights to quantize; ranges over {len(feeds)} sample(s)")
    bounds = (entropy_ranges(src, model, feeds, plan.activations, plan.groups) if method == "entropy"
              else _max_ranges(src, feeds, plan))
    softmax_out = {n.output[0] for n in model.graph.node if n.op_type == "Softmax"}
    scales = {}
    for tensor in plan.activations:
        if tensor not in bounds:
            raise PipelineError(f"{src}: tensor {tensor!r} got no range in calibration (empty or not computed)")
        lo, hi = (0.0, 1.0) if tensor in softmax_out else bounds[tensor]  # ModelOpt's _adjust_tensor_ranges
        if np.isnan([lo, hi]).any():  # ModelOpt's patch for a NaN range
            lo, hi = 0.0, 448.0
        dtype = np.float16 if types.get(tensor) == 10 else np.float32
        scales[tensor] = _scale(lo, hi, dtype)
    insert_activation_qdq(model, plan, scales)
    return model, plan


def _max_ranges(src: Path, feeds: list[dict[str, np.ndarray]], plan: Placement) -> dict[str, tuple[Any, Any]]:
    """Each activation's [min, max] over the samples (a Concat group's over its members), measured by
    reductions inside the graph."""
    measured = list(dict.fromkeys([*plan.activations, *(m for t in plan.activations for m in plan.groups.get(t, ()))]))
    ranges = tensor_ranges(src, feeds, names=measured)
    bounds: dict[str, tuple[Any, Any]] = {}
    for tensor in plan.activations:
        members = [m for m in plan.groups.get(tensor, {tensor}) if m in ranges] or [tensor]
        if tensor in ranges:
            bounds[tensor] = (min(ranges[m].min_val for m in members), max(ranges[m].max_val for m in members))
    return bounds


def entropy_ranges(src: Path, model: Any, feeds: list[dict[str, np.ndarray]], tensors: list[str],
                   groups: dict[str, set[str]]) -> dict[str, tuple[Any, Any]]:
    """ModelOpt's entropy calibration of `tensors`: ONNX Runtime's HistogramCollector with ModelOpt's
    patches and settings (ENTROPY), fed what ModelOpt's calibration session computes (graph optimizations
    off, as there) one sample at a time, a Concat group's members added to each member's data as ModelOpt's
    `_collect_data_histogram_calibrator` does. Only the tensors that get a Q/DQ are graph outputs, so one
    sample holds those tensors and the session its weights, not ModelOpt's and ONNX Runtime's copies of
    the model (docs/memory.md). Returns each tensor's (lowest, highest) entropy threshold."""
    import onnxruntime as ort
    from modelopt.onnx.quantization.ort_patching import patch_ort_modules
    from onnxruntime.quantization.calibrate import CalibrationMethod, HistogramCollector, TensorsData

    patch_ort_modules()  # ModelOpt's histogram collection (what its quantize() runs), not ONNX Runtime's
    made = {o for n in model.graph.node for o in n.output}
    wanted = list(dict.fromkeys([*tensors, *(m for t in tensors for m in groups.get(t, ()))]))
    outputs = [n for n in wanted if n in made]  # graph inputs come from the feeds themselves
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # ModelOpt's session's
    options.enable_cpu_mem_arena = False
    # Prepacked weights stay (a second copy of the MatMul weights): without them ONNX Runtime's GEMM sums in
    # another order and ViT-B/16's scales moved by up to 4e-7 from ModelOpt's; with them they are equal.
    augmented = onnx_utils.ort_model(src, outputs)
    header = augmented if isinstance(augmented, Path) else None  # written beside `src`: removed at the end
    try:
        session = ort.InferenceSession(augmented if isinstance(augmented, bytes) else str(augmented), options,
                                       providers=["CPUExecutionProvider"])
        del augmented  # the serialized copy of a small model
        collector = HistogramCollector(**ENTROPY)
        for feed in progress(feeds, "entropy histograms (one sample at a time)", len(feeds)):
            values = dict(zip(outputs, session.run(outputs, feed), strict=True)) if outputs else {}
            values |= {k: v for k, v in feed.items() if k in wanted}
            collector.collect({t: [values[t], *(values[m] for m in groups.get(t, ()) if m != t and m in values)]
                               for t in tensors if t in values})
            del values
        del session
    finally:
        if header is not None:
            header.unlink(missing_ok=True)
    result = TensorsData(CalibrationMethod.Entropy, collector.compute_collection_result())
    return {t: result[t].range_value for t in tensors if t in result}  # in the dtype ONNX Runtime's quantizer gets


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
