"""FP16 with ModelOpt AutoCast: ops whose measured values would overflow FP16 stay FP32."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..core.log import log
from . import announce
from .tensor_ranges import Range, tensor_ranges

# AutoCast's defaults: values or initializers beyond these magnitudes keep their node in FP32.
DATA_MAX = 512.0
INIT_MAX = 65504.0


def autocast_fp16(
    src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], options: dict[str, Any], exclude: dict
) -> dict[str, Any]:
    from modelopt.onnx.autocast import convert_to_mixed_precision

    from ..runners import ort_providers

    samples = feeds[: int(options.get("calibration_samples", 4))]
    announce("fp16", "ModelOpt AutoCast", src, len(samples))
    # The ranges AutoCast judges nodes by, measured one sample at a time (tensor_ranges.py) instead of
    # AutoCast's reference run, which holds every intermediate tensor of every sample at once.
    ranges = tensor_ranges(src, samples)
    log("calibrate[fp16]", f"ranges of {len(ranges)} tensors measured; converting")
    with tempfile.TemporaryDirectory(prefix="orin-trt-fp16-") as tmp, onnx_utils.tool_input(src, Path(tmp)) as work, \
            _reference_ranges(ranges):
        model = convert_to_mixed_precision(
            onnx_path=str(work),
            low_precision_type="fp16",
            nodes_to_exclude=exclude["nodes"] or None,
            op_types_to_exclude=exclude["op_types"] or None,
            data_max=float(options.get("data_max", DATA_MAX)),
            init_max=float(options.get("init_max", INIT_MAX)),
            # FP32 I/O by default, so consumers feed what they always fed; `keep_io_types: false` makes
            # an LLM's KV cache FP16 too, halving its memory.
            keep_io_types=bool(options.get("keep_io_types", True)),
            providers=[p.replace("cuda", "cuda:0") for p in ort_providers()],
        )
    # AutoCast leaves value_info from before the conversion; ONNX Runtime then rejects buffer reuse.
    del model.graph.value_info[:]
    onnx_utils.inherit_metadata(model, src)
    onnx_utils.save(model, dst, external_data=onnx_utils.uses_external_data(src) or None)
    del model  # the weights; the summary reads the saved graph (shape inference cannot take a >2 GB proto)
    header = onnx_utils.load_header(dst)
    casts = sum(1 for n in header.graph.node if n.op_type == "Cast")
    fp32_nodes = _fp32_compute_nodes(header)
    return {
        "precision": "fp16",
        "method": "modelopt.autocast",
        "calibration_samples": len(samples),
        "data_max": float(options.get("data_max", DATA_MAX)),
        "cast_nodes": casts,
        "kept_fp32_nodes": fp32_nodes,
    }


@contextlib.contextmanager
def _reference_ranges(ranges: dict[str, Range]) -> Iterator[None]:
    """AutoCast's reference runner answers with the measured ranges (its TensorStats, which its range
    rule reads as it reads its own multi-sample statistics) instead of running the model itself."""
    from unittest import mock

    import onnx
    from modelopt.onnx.autocast import convert
    from modelopt.onnx.autocast.referencerunner import TensorStats

    stats = {name: TensorStats(absmax=r.absmax, min_val=r.min_val, max_val=r.max_val, shape=r.shape)
             for name, r in ranges.items()}

    class Measured:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self, inputs: Any = None) -> dict[str, Any]:
            return stats

    from modelopt.onnx.autocast import precisionconverter

    real_deepcopy = precisionconverter.deepcopy

    def no_model_copy(value: Any, memo: Any = None) -> Any:
        # PrecisionConverter deep-copies the whole model, weights included (6 GB more for Llama-3.2-1B),
        # to spare a caller's model that convert_to_mixed_precision never uses again; I/O snapshots are
        # still copied.
        return value if isinstance(value, onnx.ModelProto) else real_deepcopy(value, memo)

    with mock.patch.object(convert, "ReferenceRunner", Measured), \
            mock.patch.object(precisionconverter, "deepcopy", no_model_copy):
        yield


def _fp32_compute_nodes(model: Any) -> list[str]:
    """Compute nodes whose float outputs are still FP32 after the conversion (what AutoCast kept out)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    fp32 = {v.name for v in inferred.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    fp32 |= {o.name for o in model.graph.output}
    skip = {"Cast", "Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Slice", "Identity"}
    return [n.name for n in model.graph.node if n.op_type not in skip and any(o in fp32 for o in n.output)]
