"""INT4 weight-only (AWQ) with ModelOpt's ONNX path: MatMul weights become INT4 blocks with FP scales
(DequantizeLinear, opset 21); activations stay in float. Calibrated on the adapter's feeds (text)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..errors import PipelineError
from . import announce, excluded_node_names, priority_order, progress_level
from .embedding import fp16_embedding
from .feeds import shapes_spec, stack

DEFAULT_BLOCK = 128


def choose_calibrator(src: Path, options: dict[str, Any]) -> str:
    """`precisions.int4-awq.calibrator` resolved: ModelOpt's awq_clip holds the model several times over
    (killed at 17 GiB on Llama-3.2-1B), so a model with external data gets the streamed one."""
    method, choice = options.get("method", "awq_clip"), options.get("calibrator", "auto")
    if choice == "streaming" and method != "awq_clip":
        raise PipelineError(f"precisions.int4-awq.calibrator: streaming runs method awq_clip only, not {method!r} "
                            "(set calibrator: modelopt or auto)")
    if choice == "auto":
        return "streaming" if method == "awq_clip" and onnx_utils.uses_external_data(src) else "modelopt"
    return choice


def int4_awq(
    src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], options: dict[str, Any], exclude: dict
) -> dict[str, Any]:
    method = options.get("method", "awq_clip")  # method and block size are validated by the schema
    block = int(options.get("block_size", DEFAULT_BLOCK))
    if not feeds:
        raise PipelineError("precisions.int4-awq: AWQ needs calibration samples, got none")
    who = choose_calibrator(src, options)
    excluded = excluded_node_names(src, exclude)
    if who == "streaming":
        from .awq_streaming import awq_clip

        announce("int4-awq", "streaming INT4 AWQ-clip (ModelOpt's math, one weight at a time)", src, len(feeds))
        model, quantize_weights = awq_clip(src, feeds, block, excluded)

        def edit(header: Any, base_dir: Path, side: Any) -> Any:
            quantize_weights(header, base_dir, side)
            onnx_utils.inherit_metadata(header, src)
            return fp16_embedding(header, base_dir, side)

        embedding = onnx_utils.save_header(model, dst, src, edit)
        tool = "orin-trt streaming awq_clip (quantize/awq_streaming.py, ModelOpt's int4 functions)"
    else:
        model, embedding = _modelopt(src, dst, feeds, method, block, excluded)
        tool = "modelopt.onnx.quantization (int4)"
    return _summary(model, method, tool, block, len(feeds), excluded, embedding) | {"calibrator": who}


def _modelopt(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], method: str, block: int,
              excluded: list[str]) -> tuple[Any, Any]:
    from modelopt.onnx.quantization import quantize

    from ..runners import ort_providers

    # modelopt 0.47's awq_lite calls cupy's `.get()` on its numpy (CPU) fallback when fusing nodes.
    extra = {"awqlite_fuse_nodes": False} if method == "awq_lite" else {}
    with tempfile.TemporaryDirectory(prefix="orin-trt-int4-") as tmp, onnx_utils.tool_input(src, Path(tmp)) as work:
        out = Path(tmp) / "model.int4.onnx"
        announce("int4-awq", f"ModelOpt INT4 ({method})", work, len(feeds))
        with priority_order():
            quantize(
                onnx_path=str(work),
                quantize_mode="int4",
                calibration_data=stack(feeds),
                calibration_method=method,
                calibration_shapes=shapes_spec({k: v[:1] for k, v in feeds[0].items()}),
                calibration_eps=["cuda:0", "cpu"] if "cuda" in ort_providers() else ["cpu"],
                block_size=block,
                nodes_to_exclude=[f"^{_escape(n)}$" for n in excluded] or None,
                use_external_data_format=onnx_utils.uses_external_data(src),
                output_path=str(out),
                log_level=progress_level(src),
                **extra,
            )
        model = onnx_utils.load_header(out)  # weights stay on disk until streamed into `dst`
        onnx_utils.inherit_metadata(model, src)
        embedding = onnx_utils.save_header(model, dst, out, fp16_embedding)
    return model, embedding


def _summary(model: Any, method: str, tool: str, block: int, samples: int, excluded: list[str],
             embedding: Any) -> dict[str, Any]:
    int4_weights = [i for i in model.graph.initializer if i.data_type in (22, 21)]  # INT4, UINT4
    return {
        "precision": "int4-awq",
        "method": method,
        "tool": tool,
        "block_size": block,
        "high_precision_dtype": "fp32",
        "calibration_samples": samples,
        "int4_weights": len(int4_weights),
        "int4_weight_bytes": sum(onnx_utils.tensor_bytes(i) for i in int4_weights),
        "dequantize_linear": sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear"),
        "excluded_nodes": sorted(set(excluded)),
        "embedding": embedding,
    }


def _escape(name: str) -> str:
    import re

    return re.escape(name)
