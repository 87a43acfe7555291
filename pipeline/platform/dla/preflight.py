"""DLA preflight on the ONNX: which nodes cannot run on the DLA, and where GPU <-> DLA transitions fall.

The rules follow TensorRT 10.x "DLA Supported Layers and Restrictions" (Jetson / DriveOS): fixed
shapes only (profile min = opt = max), non-batch dims <= 8192, 4-D tensors for conv / pool /
activation, convolution kernel 1..32, padding 0..31, stride 1..8, dilation 1..32; pooling window
1..8, padding 0..7, stride 1..16; concatenation along channels only. It is a static reading of the
graph; on the Orin, `pipeline.trt.dla_build.layers_not_on_dla` asks TensorRT's `can_run_on_DLA` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...analyze.cost import constant_tensors
from ...analyze.shapes import TensorInfo

ACTIVATIONS = frozenset({"Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "PRelu", "Selu", "Softplus"})
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Equal", "Greater", "Less"})
OTHER_OK = frozenset({"BatchNormalization", "LRN", "Resize", "Upsample", "Softmax", "Identity",
                      "Reshape", "Transpose", "Flatten", "Slice", "Unsqueeze", "Squeeze"})
MAX_DIM = 8192


@dataclass
class Preflight:
    verdicts: dict[str, str | None] = field(default_factory=dict)   # node -> None (DLA) or why GPU
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, "GPU->DLA")

    @property
    def gpu_nodes(self) -> dict[str, str]:
        return {n: r for n, r in self.verdicts.items() if r is not None}

    def summary(self) -> dict[str, Any]:
        return {
            "nodes": len(self.verdicts),
            "on_dla": sum(1 for r in self.verdicts.values() if r is None),
            "on_gpu": self.gpu_nodes,
            "transitions": [{"from": a, "to": b, "direction": d} for a, b, d in self.transitions],
        }


def _ints(node: Any, name: str, default: list[int]) -> list[int]:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return list(onnx.helper.get_attribute_value(a))
    return default


def _within(values: list[int], lo: int, hi: int) -> bool:
    return all(lo <= v <= hi for v in values)


def _node_reason(node: Any, info: dict[str, TensorInfo]) -> str | None:
    op = node.op_type
    shapes = [info[t].shape for t in [*node.input[:1], *node.output[:1]] if t in info]
    if any(s is None for s in shapes):
        return "shape not static"
    if any(d > MAX_DIM for s in shapes for d in (s or ())[1:]):
        return f"a dimension over {MAX_DIM}"
    rank4 = all(len(s) == 4 for s in shapes if s is not None)
    if op in ("Conv", "ConvTranspose"):
        w = info.get(node.input[1])
        kernel = list(w.shape[2:]) if w and w.shape else []
        if not rank4 or len(kernel) != 2:
            return "only 2-D convolution runs on the DLA"
        if not _within(kernel, 1, 32):
            return f"kernel {kernel} outside 1..32"
        if not _within(_ints(node, "pads", [0, 0, 0, 0]), 0, 31):
            return "padding outside 0..31"
        if not _within(_ints(node, "strides", [1, 1]), 1, 8):
            return "stride outside 1..8"
        if not _within(_ints(node, "dilations", [1, 1]), 1, 32):
            return "dilation outside 1..32"
        if op == "ConvTranspose" and any(_ints(node, "pads", [0, 0, 0, 0])):
            return "padded deconvolution"
        return None
    if op in ("MaxPool", "AveragePool"):
        if not rank4:
            return "only 2-D pooling runs on the DLA"
        if not _within(_ints(node, "kernel_shape", [1, 1]), 1, 8):
            return "pooling window outside 1..8"
        if not _within(_ints(node, "pads", [0, 0, 0, 0]), 0, 7):
            return "pooling padding outside 0..7"
        if not _within(_ints(node, "strides", [1, 1]), 1, 16):
            return "pooling stride outside 1..16"
        return None
    if op == "GlobalAveragePool":
        s = shapes[0] if shapes else None
        return None if s and len(s) == 4 and s[2] <= 8 and s[3] <= 8 else "global pooling over more than 8x8"
    if op in ACTIVATIONS:
        return None if rank4 else "activation on a non 4-D tensor"
    if op in ELEMENTWISE:
        return None if rank4 else "elementwise on a non 4-D tensor"
    if op == "Concat":
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        return None if rank4 and axis in (1, -3) else "concatenation not along channels"
    if op in OTHER_OK:
        return None
    return f"{op} is not a DLA layer"


def preflight(model: Any, info: dict[str, TensorInfo], dynamic_inputs: list[str] | None = None) -> Preflight:
    """Per-node verdicts and transitions; `dynamic_inputs` (min != max in the profile) send all to GPU."""
    const = constant_tensors(model)
    result = Preflight()
    owner: dict[str, str] = {}
    for index, node in enumerate(model.graph.node):
        if node.output and all(o in const for o in node.output if o):
            continue  # folded into weights at build time
        name = node.name or f"{node.op_type}_{index}"
        if dynamic_inputs:
            reason: str | None = f"dynamic input shape ({', '.join(dynamic_inputs)}): DLA needs min = opt = max"
        else:
            reason = _node_reason(node, info)
        result.verdicts[name] = reason
        for o in node.output:
            owner[o] = name
        for t in node.input:
            if t in owner:
                a, b = result.verdicts[owner[t]] is None, reason is None
                if a != b:
                    result.transitions.append((owner[t], name, "DLA->GPU" if a else "GPU->DLA"))
    return result


def dynamic_inputs(profiles: list[dict[str, Any]]) -> list[str]:
    """Inputs whose optimization-profile min, opt and max differ."""
    out = []
    for profile in profiles:
        for name, s in profile["shapes"].items():
            if not (list(s["min"]) == list(s["opt"]) == list(s["max"])) and name not in out:
                out.append(name)
    return out
