"""Per-node cost of an ONNX graph: parameters, FLOPs / MACs and bytes moved.

Formulas (seed 001, sections 8-9): a convolution with M output channels, C input channels (per
group), a K x K kernel and an H x W output has M*C*K*K + M parameters and 2*H*W*M*C*K*K FLOPs
(one multiply and one add per MAC; the bias add is not counted). A matmul [.., m, k] x [.., k, n]
costs 2*m*k*n per batch element. Attention is the matmuls between two activations (Q.K^T, P.V);
the fused ONNX `Attention` op costs the same two products. Other ops count one FLOP per output
element, and shape-only ops none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .shapes import TensorInfo

# Folded away by TensorRT when all their inputs are constant; free of FLOPs always.
SHAPE_OPS = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
    "Shape", "Identity", "Expand", "Constant", "ConstantOfShape", "Cast", "Range", "Tile", "Pad",
    "QuantizeLinear", "DequantizeLinear", "GatherElements", "GatherND", "ScatterND", "Where", "Size",
})
FLOAT_TYPES = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
QUANT_TYPES = frozenset({2, 3, 21, 22})   # UINT8, INT8, UINT4, INT4: quantized weights
PASS_THROUGH = frozenset({"DequantizeLinear", "Transpose", "Reshape", "Cast", "Identity", "Unsqueeze"})


@dataclass
class NodeCost:
    name: str
    op: str
    kind: str                  # conv | matmul | attention | embedding | other | shape
    params: int                # elements of the constant (weight) inputs
    weight_names: tuple[str, ...]
    flops: int
    act_elems: int             # activation elements read + written
    weight_elems_gemm: int     # weights a GEMM-like op reads (these take the quantized dtype)
    weight_elems_other: int    # biases, norms, embeddings (these stay in the high-precision dtype)
    shape_known: bool

    @property
    def macs(self) -> int:
        return self.flops // 2 if self.kind in ("conv", "matmul", "attention") else 0


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def constant_tensors(model: Any) -> set[str]:
    """Tensors TensorRT sees as constants: initializers, Constant outputs, and anything computed
    only from constants (a DequantizeLinear of an INT8 / INT4 weight, a transposed weight, ...)."""
    const = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" or (node.input and all(not i or i in const for i in node.input)):
            const.update(o for o in node.output if o)
    return const


def _source_initializer(model: Any, tensor: str, producers: dict[str, Any], inits: set[str]) -> str:
    """Walk back through DQ / Transpose / Reshape to the stored initializer a weight comes from."""
    seen = 0
    while tensor not in inits and tensor in producers and seen < 8:
        node = producers[tensor]
        if node.op_type not in PASS_THROUGH or not node.input:
            break
        tensor = node.input[0]
        seen += 1
    return tensor


def _conv_flops(node: Any, info: dict[str, TensorInfo]) -> int | None:
    w = info.get(node.input[1])
    out = info.get(node.output[0])
    if not w or not out or w.shape is None or out.shape is None:
        return None
    kernel = 1
    for k in w.shape[2:]:
        kernel *= k
    if node.op_type == "ConvTranspose":
        x = info.get(node.input[0])
        if not x or x.shape is None:
            return None
        # Each input pixel scatters a C_in x (M/g) x K x K product.
        n, c_in, spatial = x.shape[0], x.shape[1], x.shape[2:]
        positions = 1
        for s in spatial:
            positions *= s
        return 2 * n * positions * c_in * w.shape[1] * kernel
    n, m, spatial = out.shape[0], out.shape[1], out.shape[2:]
    positions = 1
    for s in spatial:
        positions *= s
    c_per_group = w.shape[1]
    return 2 * n * positions * m * c_per_group * kernel


def _matmul_flops(node: Any, info: dict[str, TensorInfo]) -> int | None:
    a = info.get(node.input[0])
    out = info.get(node.output[0])
    if not a or not out or a.shape is None or out.shape is None or out.numel is None:
        return None
    if node.op_type == "Gemm":
        k = a.shape[0] if _attr(node, "transA", 0) else a.shape[-1]
    else:
        k = a.shape[-1]
    return 2 * out.numel * k


def _attention_flops(node: Any, info: dict[str, TensorInfo]) -> int | None:
    """ONNX Attention (opset 23) with 4-D Q [B, H, Sq, D] and K [B, Hkv, Skv, D]: Q.K^T and P.V."""
    q, k = info.get(node.input[0]), info.get(node.input[1])
    if not q or not k or q.shape is None or k.shape is None or len(q.shape) != 4 or len(k.shape) != 4:
        return None
    b, h, sq, d = q.shape
    skv = k.shape[2]
    return 2 * 2 * b * h * sq * skv * d


def node_costs(model: Any, info: dict[str, TensorInfo]) -> list[NodeCost]:
    const = constant_tensors(model)
    inits = {i.name for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    costs = []
    for index, node in enumerate(model.graph.node):
        if node.output and all(o in const for o in node.output if o):
            continue  # folded at build time
        name = node.name or f"{node.op_type}_{index}"
        const_in = [i for i in node.input if i and i in const]
        act_in = [i for i in node.input if i and i not in const]
        op = node.op_type
        # Weights are stored float / quantized tensors; scalar constants (an epsilon, a Pow exponent) are not.
        weights = [t for t in const_in
                   if info.get(t) and (info[t].numel or 0) > 1 and info[t].elem_type in FLOAT_TYPES | QUANT_TYPES]
        params = sum(info[t].numel or 0 for t in weights) if op not in SHAPE_OPS or op == "Gather" else 0
        flops: int | None
        gemm_w, other_w = 0, params
        if op in ("Conv", "ConvTranspose"):
            kind, flops = "conv", _conv_flops(node, info)
            gemm_w = info[node.input[1]].numel or 0 if node.input[1] in const else 0
            other_w = params - gemm_w
        elif op in ("MatMul", "Gemm"):
            kind = "matmul" if const_in and node.input[1] in const else "attention"
            flops = _matmul_flops(node, info)
            if kind == "matmul":
                gemm_w = info[node.input[1]].numel or 0
                other_w = params - gemm_w
        elif op == "Attention":
            kind, flops = "attention", _attention_flops(node, info)
        elif op == "Gather" and node.input[0] in const:
            kind, flops = "embedding", 0
        elif op in SHAPE_OPS:
            kind, flops = "shape", 0
            params, other_w = 0, 0
        else:
            out = info.get(node.output[0]) if node.output else None
            kind, flops = "other", (out.numel if out and out.numel is not None else None)
        tensors = [info.get(t) for t in [*act_in, *[o for o in node.output if o]]]
        known = flops is not None and all(t is not None and t.numel is not None for t in tensors)
        act_elems = sum(t.numel for t in tensors if t is not None and t.numel is not None)
        weight_names = tuple(_source_initializer(model, t, producers, inits) for t in weights) \
            if kind != "shape" else ()
        costs.append(NodeCost(name, op, kind, params, weight_names, flops or 0, act_elems, gemm_w,
                              other_w, known))
    return costs
