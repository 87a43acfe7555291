"""SmoothQuant on the ONNX graph, before INT8 QDQ: move activation outliers into the weights.

ModelOpt's ONNX INT8 path has no SmoothQuant (only its PyTorch path does), so this does the same
migration on the exported graph. It applies where a per-channel scale `Mul(x, gamma)` (the weight of an
RMSNorm) feeds only MatMuls with constant weights (q/k/v after input_layernorm, gate/up after
post_attention_layernorm, the LM head after the final norm): per input channel j,
    s_j = max|X_j|^alpha / max|W_j|^(1 - alpha),   gamma_j /= s_j,   W_j,: *= s_j
which leaves the float model's function unchanged and evens out the per-tensor activation range
that W8A8 must cover. Statistics come from the calibration feeds on ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..errors import PipelineError

SHAPE_ONLY = {"Shape"}  # consumers that read the tensor's shape, not its values
MIN_SCALE = 1e-5


@dataclass
class SmoothSite:
    mul: Any            # the Mul node applying gamma
    gamma_index: int    # which of its inputs is gamma
    gamma_source: str   # the initializer holding gamma's values
    activation: str     # the Mul's output, the MatMuls' input
    matmuls: list[Any]


def _through_row_views(tensor: str, consumers: dict[str, list[Any]]) -> list[tuple[Any, str]]:
    """(consumer, the tensor it reads) of `tensor`, looking through Reshapes and row Gathers (axis 0):
    they move rows, never channels, as long as the MatMul at the end contracts over gamma's channels
    (an LLM's Gather of the logit positions before its LM head)."""
    found = []
    for node in consumers.get(tensor, []):
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if node.input and node.input[0] == tensor and (node.op_type == "Reshape" or
                                                       (node.op_type == "Gather" and axis == 0)):
            found += _through_row_views(node.output[0], consumers)
        else:
            found.append((node, tensor))
    return found


def find_sites(model: Any) -> list[SmoothSite]:
    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    uses = {name: len(nodes) for name, nodes in consumers.items()}
    # The exporter deduplicates equal initializers (every RMSNorm gamma of a fresh model is all ones)
    # and reads the copies through Identity nodes.
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits}
    sites = []
    for node in model.graph.node:
        if node.op_type != "Mul":
            continue
        gamma = [i for i, name in enumerate(node.input)
                 if alias.get(name, name) in inits and len(inits[alias.get(name, name)].dims) == 1]
        if len(gamma) != 1:
            continue
        out = node.output[0]
        reads = _through_row_views(out, consumers)
        matmuls = [u for u, t in reads if u.op_type == "MatMul" and u.input[0] == t and u.input[1] in inits
                   and len(inits[u.input[1]].dims) == 2 and uses[u.input[1]] == 1
                   and inits[u.input[1]].dims[0] == inits[alias.get(node.input[gamma[0]], node.input[gamma[0]])].dims[0]]
        others = [u for u, _ in reads if u not in matmuls]
        if matmuls and all(u.op_type in SHAPE_ONLY for u in others):
            source = node.input[gamma[0]]
            sites.append(SmoothSite(node, gamma[0], alias.get(source, source), out, matmuls))
    return sites


def activation_absmax(onnx_path: Path, names: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel max |x| of intermediate tensors over every calibration token (ONNX Runtime, CPU).

    A model with external data is opened from a header on disk beside it (onnx_utils.ort_model), never
    serialized whole: protobuf cannot hold one over 2 GB."""
    import onnxruntime as ort

    from ..core.log import progress

    model = onnx_utils.ort_model(onnx_path, names)
    try:
        from ..runners.onnxrt import session_options

        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), session_options(onnx_path),
                                       providers=["CPUExecutionProvider"])
        amax: dict[str, np.ndarray] = {}
        for feed in progress(feeds, "smoothquant statistics"):
            for name, value in zip(names, session.run(names, feed), strict=True):
                channel = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0).astype(np.float32)
                amax[name] = channel if name not in amax else np.maximum(amax[name], channel)
    finally:
        if isinstance(model, Path):
            model.unlink(missing_ok=True)
    return amax


def smooth(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], alpha: float) -> dict[str, Any]:
    """Smooth the ONNX at `src` into `dst`. Weights stay on disk: each site's MatMul weights are read,
    scaled and written to a side file one site at a time, so memory holds one site, not the model."""
    from onnx import numpy_helper

    from ..core.log import progress

    if not 0 <= alpha <= 1:
        raise PipelineError(f"precisions.int8.smoothquant.alpha: {alpha} is not in [0, 1]")
    src, base = Path(src), Path(src).parent
    model = onnx_utils.load_header(src)
    sites = find_sites(model)
    if not sites:
        raise PipelineError(f"{src}: smoothquant found no norm-scale Mul feeding constant-weight MatMuls")
    amax = activation_absmax(src, [s.activation for s in sites], feeds)
    inits = {i.name: i for i in model.graph.initializer}
    side = onnx_utils.SideData(base, f".{src.stem}.smoothed.tmp.onnx.data") if onnx_utils.uses_external_data(src) else None
    ranges = []
    try:
        for site in progress(sites, "smoothquant"):
            def weight(matmul: Any) -> np.ndarray:
                return onnx_utils.read_array(inits[matmul.input[1]], base)

            # Two passes, one weight in memory at a time: the per-row max over all of them, then the scaling.
            w_amax = np.max([np.abs(weight(m)).max(axis=1) for m in site.matmuls], axis=0)
            scale = np.maximum(amax[site.activation], MIN_SCALE) ** alpha / np.maximum(w_amax, MIN_SCALE) ** (1 - alpha)
            scale = np.maximum(scale, MIN_SCALE).astype(np.float32)
            # gamma may be shared by several norms (the exporter deduplicates equal initializers): give this
            # Mul its own copy.
            gamma = numpy_helper.to_array(inits[site.gamma_source], base_dir=str(base))
            # In the model's own dtype: an FP16 export's Mul takes no FP32 operand.
            own = numpy_helper.from_array((gamma / scale).astype(gamma.dtype), f"{site.mul.name}.smoothed_gamma")
            model.graph.initializer.append(own)
            site.mul.input[site.gamma_index] = own.name
            for matmul in site.matmuls:
                w = weight(matmul)
                w *= scale[:, None].astype(w.dtype)  # in place: one copy of the weight in memory
                scaled = w
                if side is None:
                    inits[matmul.input[1]].CopyFrom(numpy_helper.from_array(scaled, matmul.input[1]))
                else:
                    side.store(inits[matmul.input[1]], scaled)
            x = amax[site.activation]
            ranges.append(float(x.max() / max(np.median(x), MIN_SCALE)))
        _drop_unused_initializers(model)
        onnx_utils.save(model, dst, external_data=onnx_utils.uses_external_data(src) or None, base_dir=base)
    finally:
        if side is not None:
            side.remove()
    return {"alpha": alpha, "sites": len(sites), "matmuls": sum(len(s.matmuls) for s in sites),
            "max_outlier_ratio_before": round(max(ranges), 2)}


def _drop_unused_initializers(model: Any) -> None:
    """Gammas now read by no node (and Identity copies of them read by none) are dropped."""
    while True:
        used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if n.op_type == "Identity" and n.output[0] not in used]
        for node in dead:
            model.graph.node.remove(node)
        if not dead:
            break
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
