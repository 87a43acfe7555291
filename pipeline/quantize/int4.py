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


def int4_awq(
    src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], options: dict[str, Any], exclude: dict
) -> dict[str, Any]:
    from modelopt.onnx.quantization import quantize

    from ..runners import ort_providers

    method = options.get("method", "awq_clip")  # method and block size are validated by the schema
    block = int(options.get("block_size", DEFAULT_BLOCK))
    if not feeds:
        raise PipelineError("precisions.int4-awq: AWQ needs calibration samples, got none")
    excluded = excluded_node_names(src, exclude)
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
    int4_weights = [i for i in model.graph.initializer if i.data_type in (22, 21)]  # INT4, UINT4
    return {
        "precision": "int4-awq",
        "method": method,
        "tool": "modelopt.onnx.quantization (int4)",
        "block_size": block,
        "high_precision_dtype": "fp32",
        "calibration_samples": len(feeds),
        "int4_weights": len(int4_weights),
        "int4_weight_bytes": sum(onnx_utils.tensor_bytes(i) for i in int4_weights),
        "dequantize_linear": sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear"),
        "excluded_nodes": sorted(set(excluded)),
        "embedding": embedding,
    }


def _escape(name: str) -> str:
    import re

    return re.escape(name)
