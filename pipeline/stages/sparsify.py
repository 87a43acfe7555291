"""2:4 structured sparsity on the exported FP32 ONNX: in every group of 4 weights along the reduction
dimension (conv input channels, matmul K), the 2 smallest magnitudes become zero.

That is the pattern Ampere's sparse tensor cores and TensorRT's SPARSE_WEIGHTS flag accept ("for
each output channel and each spatial position, every 4 consecutive input channels hold at least two
zeros"). Pruning on the ONNX keeps the step torch-free and family-agnostic; it is one-shot magnitude
pruning (ModelOpt's `sparse_magnitude` mode does the same on a torch model), so accuracy should be
recovered by fine-tuning with the mask for real deployments. The report states the ratio and how
far the outputs moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError

GROUP = 4
KEEP = 2
SCHEMA = "orin-trt/sparsify@1"


@dataclass
class SparsifyReport:
    layers: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        pruned = sum(layer["elements"] for layer in self.layers)
        zeros = sum(layer["zeros"] for layer in self.layers)
        return {
            "schema": SCHEMA,
            "pattern": "2:4",
            "layers_sparsified": len(self.layers),
            "layers_skipped": len(self.skipped),
            "elements_in_sparsified_layers": pruned,
            "zeros_in_sparsified_layers": zeros,
            "sparsity_ratio": zeros / pruned if pruned else 0.0,
            "layers": self.layers,
            "skipped": self.skipped,
        }


def prune_2_4(weight: np.ndarray, axis: int) -> np.ndarray:
    """Zero the 2 smallest |w| of every 4 consecutive elements along `axis` (its size % 4 == 0)."""
    moved = np.moveaxis(weight, axis, -1)
    groups = moved.reshape(*moved.shape[:-1], moved.shape[-1] // GROUP, GROUP)
    order = np.argsort(np.abs(groups), axis=-1, kind="stable")
    mask = np.ones_like(groups, dtype=bool)
    np.put_along_axis(mask, order[..., : GROUP - KEEP], False, axis=-1)
    pruned = np.where(mask, groups, 0).reshape(moved.shape)
    return np.moveaxis(pruned, -1, axis).astype(weight.dtype)


def is_2_4_sparse(weight: np.ndarray, axis: int) -> bool:
    moved = np.moveaxis(weight, axis, -1)
    groups = moved.reshape(*moved.shape[:-1], moved.shape[-1] // GROUP, GROUP)
    return bool(np.all(np.count_nonzero(groups, axis=-1) <= KEEP))


def _reduction_axis(node: Any, weight: np.ndarray) -> int | None:
    if node.op_type == "Conv" and weight.ndim >= 3:
        return 1  # [M, C/groups, kh, kw]: input channels
    if node.op_type == "MatMul" and weight.ndim == 2:
        return 0  # x[.., K] @ W[K, N]
    if node.op_type == "Gemm" and weight.ndim == 2:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 1 if trans_b else 0
    return None


def sparsify_model(model: Any) -> tuple[Any, SparsifyReport]:
    """A copy of `model` with its conv / matmul weights pruned 2:4 where the shapes allow it."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {i.name: i for i in out.graph.initializer}
    users: dict[str, int] = {}
    for node in out.graph.node:
        for t in node.input:
            users[t] = users.get(t, 0) + 1
    report = SparsifyReport()
    done: set[str] = set()
    for node in out.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or len(node.input) < 2:
            continue
        name = node.input[1]
        if name in done:
            continue
        if name not in inits:
            if node.op_type != "MatMul":  # activation x activation matmuls have no weights to prune
                report.skipped.append({"node": node.name, "reason": "weight is not a float initializer "
                                       "(sparsify the exported FP32 model, before calibrate)"})
            continue
        weight = numpy_helper.to_array(inits[name])
        if weight.dtype not in (np.float32, np.float16):
            raise PipelineError(f"node {node.name!r}: weight {name!r} is {weight.dtype}; sparsify the exported "
                                "FP32 ONNX before calibration")
        axis = _reduction_axis(node, weight)
        if axis is None or weight.shape[axis] % GROUP:
            size = weight.shape[axis] if axis is not None else weight.shape
            report.skipped.append({"node": node.name, "reason": f"reduction dim {size} not a multiple of 4"})
            continue
        pruned = prune_2_4(weight, axis)
        inits[name].CopyFrom(numpy_helper.from_array(pruned, name))
        done.add(name)
        report.layers.append({"node": node.name, "weight": name, "op": node.op_type,
                              "elements": int(pruned.size), "zeros": int(pruned.size - np.count_nonzero(pruned)),
                              "shared_by": users.get(name, 1)})
    return out, report


def sample_feeds(model: Any, shapes: dict[str, list[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs at the given shapes (normal floats, small non-negative ids for ints)."""
    from onnx import helper

    from ..analyze.shapes import graph_inputs

    rng = np.random.default_rng(seed)
    feeds = {}
    for v in graph_inputs(model):
        dtype = helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
        shape = shapes[v.name]
        if np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[v.name] = rng.integers(0, 100, size=shape).astype(dtype)
    return feeds


def output_change(dense: Any, sparse: Any, feeds: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: how far the sparse model's outputs moved from the dense model's (ONNX Runtime CPU)."""
    import onnxruntime as ort

    def run(model: Any) -> list[np.ndarray]:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)

    names = [o.name for o in dense.graph.output]
    out = {}
    for name, a, b in zip(names, run(dense), run(sparse), strict=True):
        a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        denom = np.linalg.norm(a64) * np.linalg.norm(b64)
        out[name] = {"max_abs": float(np.abs(a64 - b64).max()) if a64.size else 0.0,
                     "cosine": float(a64 @ b64 / denom) if denom else 1.0}
    return out


def sparsify_file(src: Path, dst: Path, shapes: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """Prune `src` into `dst` (atomically) and return the report, with the output change when shapes are given."""
    from ..core import onnx_utils
    from ..core.onnx_utils import metadata

    dense = onnx_utils.load(Path(src))
    sparse, report = sparsify_model(dense)
    onnx_utils.save(sparse, Path(dst))
    result = report.as_dict()
    result["source"] = str(src)
    result["random_weights"] = metadata(dense).get("orin_trt.random_weights") == "true"
    if shapes is not None:
        result["accuracy_change"] = output_change(dense, sparse, sample_feeds(dense, shapes))
    return result


def sparse_layout(layout: Any) -> Any:
    """The sparse variant lives beside the dense one: engines/<model>-sparse24/ (its model.onnx is the pruned
    export, so calibrate, build and profile run on it unchanged)."""
    from ..core.artifacts import Layout

    return Layout(layout.root, f"{layout.model}-sparse24")


def sparsify_stage(recipe: Any, layout: Any, force: bool = False) -> Any:
    """exported ONNX -> 2:4-pruned ONNX + sparsify.json in the sparse layout (skipped when up to date)."""
    from ..analyze import recipe_shapes
    from ..analyze.shapes import graph_inputs
    from ..core.artifacts import onnx_files, write_json
    from ..core.cache import StageSpec, run_stage
    from ..core.log import log
    from ..core.onnx_utils import load

    src = layout.exported_onnx
    if not src.exists():
        raise PipelineError(f"{src}: nothing to sparsify; run `make export MODEL={recipe.name}` first")
    target = sparse_layout(layout)
    report_path = target.model_dir / "sparsify.json"
    spec = StageSpec(
        name="sparsify",
        stamp=target.stamp("sparsify"),
        inputs={"onnx": onnx_files(src)},
        options={"pattern": "2:4", "profiles": recipe.profiles},
        tools=["onnx", "onnxruntime", "onnxruntime-gpu"],
        outputs=[target.exported_onnx, report_path],
    )

    def work() -> dict[str, Any]:
        names = {v.name for v in graph_inputs(load(src, with_weights=False))}
        shapes = {n: s for n, s in recipe_shapes(recipe.profiles, None).items() if n in names}
        report = sparsify_file(src, target.exported_onnx, shapes if set(shapes) == names else None)
        write_json(report_path, report)
        log("sparsify", f"{target.exported_onnx}: {report['layers_sparsified']} layers 2:4-sparse "
            f"({report['sparsity_ratio']:.1%} of their weights), {report['layers_skipped']} skipped")
        return {k: report[k] for k in ("layers_sparsified", "layers_skipped", "sparsity_ratio")}

    return run_stage(spec, work, force)


def report_section(model_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """For a profile report of a sparse engine: the sparsity ratio and how far pruning moved the outputs
    (dense vs 2:4 ONNX on ONNX Runtime). Nothing for dense engines."""
    from ..core.artifacts import read_json

    path = Path(model_dir) / "sparsify.json"
    if not path.exists():
        return None, ""
    report = read_json(path)
    section = {k: report.get(k) for k in ("pattern", "sparsity_ratio", "layers_sparsified", "layers_skipped",
                                          "accuracy_change", "random_weights")}
    lines = ["", "## Sparsity", "",
             f"2:4 structured pruning: {report['sparsity_ratio']:.1%} of the weights of "
             f"{report['layers_sparsified']} conv / matmul layers are zero ({report['layers_skipped']} layers skipped).",
             "The accuracy above compares against the pruned FP32 model; pruning itself moved the outputs by:", ""]
    for name, change in (report.get("accuracy_change") or {}).items():
        lines.append(f"- {name}: cosine {change['cosine']:.5f} to the dense model, max abs change {change['max_abs']:.4g}")
    if report.get("random_weights"):
        lines.append("- random weights: this shows the plumbing, not the accuracy cost of pruning a trained model")
    return section, "\n".join(lines) + "\n"
