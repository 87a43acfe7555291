"""INT8 post-training quantization into QDQ: ModelOpt for entropy / max on small models, ONNX Runtime's
quantizer (symmetric, per-channel, the same QDQ form) for percentile, which ModelOpt's ONNX path lacks, and
for entropy / max on a model with external data or over STREAMING_FROM the streaming quantizer
(int8_streaming.py: ModelOpt's placement and scales in the memory of one ONNX Runtime session), which
`precisions.int8.calibrator` picks."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..errors import PipelineError
from . import announce, excluded_node_names, priority_order, progress_level
from .embedding import fp16_embedding
from .feeds import shapes_spec, streaming_reader

# The compute ops TensorRT runs in INT8; everything else stays in float around them.
COMPUTE_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm"]
STRIDE = 4  # calibration samples whose activations ONNX Runtime holds at once (percentile)
# ModelOpt's INT8 peaked at 4.3 GiB for ViT-B/16's 0.35 GB and 2.7 GiB for YOLO11m's 0.08 GB (goals 2.6 and
# 2.1 GiB: 2 x the weights + 2 GiB), the streaming quantizer at 1.6 and 1.3 with the same Q/DQ and scales
# (docs/memory.md); below this size NVIDIA's tool runs (the trained fixtures, a few MB, peak near the base).
STREAMING_FROM = 32 << 20


def ptq_int8(
    src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], options: dict[str, Any], exclude: dict
) -> dict[str, Any]:
    method = options.get("method", "entropy")  # one of the schema's methods (pipeline/recipe/precisions.py)
    if options.get("target_dla") and method == "percentile":
        raise PipelineError("precisions.int8.method: percentile (ONNX Runtime) has no DLA Q/DQ placement; "
                            "use entropy or max for a --dla build")
    excluded = excluded_node_names(src, exclude)
    hp = options.get("high_precision_dtype", "fp32")
    calibrator = choose_calibrator(src, options)
    with tempfile.TemporaryDirectory(prefix="orin-trt-int8-") as tmp, onnx_utils.tool_input(src, Path(tmp)) as work:
        smoothing = None
        if options.get("smoothquant"):  # LLMs: migrate activation outliers into the weights first
            from .smoothquant import smooth

            smoothed = Path(tmp) / "model.smoothed.onnx"
            smoothing = smooth(work, smoothed, feeds, float(options["smoothquant"].get("alpha", 0.5)))
            work = smoothed
        out = Path(tmp) / "model.int8.onnx"
        announce("int8", TOOLS[calibrator], work, len(feeds))
        inline = None  # the output's layout: the source's
        if calibrator == "streaming":
            from .int8_streaming import quantize_streaming, quantize_weights

            if not onnx_utils.uses_external_data(work):
                # A small model's weights put beside it first: the placement, the calibration session
                # (opened on the path, no prepacked copies) and the INT8 weights then read them from disk
                # one at a time, as for a large model; the output is one file again, as the export was.
                onnx_utils.save(onnx_utils.load(work), work, external_data=True)
                inline = False

            model, plan = quantize_streaming(work, feeds, excluded, method, options.get("op_types_to_quantize"))
            out = work  # the header's weights lie beside `work`; they are quantized while saving

            def finish(m: Any, base: Path, side: onnx_utils.SideData | None) -> dict[str, Any]:
                quantize_weights(m, plan.weights, base, side)
                return fp16_embedding(m, base, side)
        else:
            if calibrator == "onnxruntime":
                _in_fresh_interpreter(_ort_percentile, work, out, feeds, excluded, float(options.get("percentile", 99.99)))
            else:
                _modelopt(work, out, feeds, method, excluded, hp, options)
            model = onnx_utils.load_header(out)  # weights stay on disk until streamed into `dst`
            finish = fp16_embedding
            # The tools drop the metadata; the streamed header is the source's own graph and keeps it (and
            # reading it back from a one-file source would load every weight once more).
            onnx_utils.inherit_metadata(model, src)
        embedding = onnx_utils.save_header(model, dst, out, finish, external_data=inline)
    ops = [n.op_type for n in model.graph.node]
    return {
        "precision": "int8",
        "method": method,
        "calibrator": calibrator,
        "tool": TOOLS[calibrator],
        "high_precision_dtype": hp if method != "percentile" else "fp32",
        "calibration_samples": len(feeds),
        "quantize_linear": ops.count("QuantizeLinear"),
        "dequantize_linear": ops.count("DequantizeLinear"),
        "excluded_nodes": sorted(set(excluded)),
        "target_dla": bool(options.get("target_dla")) and method != "percentile",
        "smoothquant": smoothing,
        "embedding": embedding,
    }


TOOLS = {"modelopt": "modelopt.onnx.quantization", "onnxruntime": "onnxruntime.quantize_static",
         "streaming": "orin-trt int8_streaming (ModelOpt placement and max / entropy ranges, one ONNX Runtime session)"}


def choose_calibrator(src: Path, options: dict[str, Any]) -> str:
    """`precisions.int8.calibrator`: which tool runs (a key of TOOLS). auto: streaming for method max or
    entropy on an ONNX with external data or with more than STREAMING_FROM bytes of weights (ModelOpt holds
    the model eight to nine times over, docs/memory.md) unless an option only ModelOpt has is set; modelopt
    otherwise (ONNX Runtime for percentile)."""
    method, asked = options.get("method", "entropy"), options.get("calibrator", "auto")
    if method == "percentile":
        if asked == "streaming":
            raise PipelineError("precisions.int8.calibrator: streaming calibrates with method max or entropy, not "
                                "'percentile'")
        return "onnxruntime"
    if asked == "streaming":
        from .int8_streaming import check_supported

        check_supported(options)
        return "streaming"
    if asked == "auto" and not options.get("target_dla") and options.get("high_precision_dtype", "fp32") == "fp32" \
            and (onnx_utils.uses_external_data(src) or onnx_utils.model_bytes(src) > STREAMING_FROM):
        return "streaming"
    return "modelopt"


def _modelopt(src: Path, out: Path, feeds: list, method: str, excluded: list[str], hp: str,
              options: dict[str, Any]) -> None:
    from modelopt.onnx.quantization import quantize

    from ..runners import ort_providers

    eps = ["cuda:0", "cpu"] if "cuda" in ort_providers() else ["cpu"]
    with priority_order():
        _quantize(quantize, src, out, feeds, method, excluded, hp, options, eps)


def _quantize(quantize: Any, src: Path, out: Path, feeds: list, method: str, excluded: list[str], hp: str,
              options: dict[str, Any], eps: list[str]) -> None:
    quantize(
        onnx_path=str(src),
        quantize_mode="int8",
        calibration_data_reader=streaming_reader(feeds),  # one sample in memory at a time
        calibration_method=method,
        calibration_shapes=shapes_spec(feeds[0]),
        calibration_eps=eps,
        op_types_to_quantize=options.get("op_types_to_quantize") or None,
        # Exact names: ModelOpt reads these as regexes, and node names are full of regex characters.
        nodes_to_exclude=[f"^{_escape(n)}$" for n in excluded] or None,
        high_precision_dtype=hp,
        target_dla=bool(options.get("target_dla")),  # DLA builds: Q/DQ on every tensor (stages/calibrate.py)
        use_external_data_format=onnx_utils.uses_external_data(src),
        output_path=str(out),
        log_level=progress_level(src),
    )


def _escape(name: str) -> str:
    import re

    return re.escape(name)


def _in_fresh_interpreter(fn: Any, *args: Any) -> Any:
    """Importing ModelOpt patches ONNX Runtime's calibrators process-wide, after which ORT's own percentile
    calibration collects nothing ("Histogram has not been collected"); a spawned interpreter has the
    unpatched ONNX Runtime whatever this process ran before (another model's entropy INT8, a test)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _ort_percentile(src: Path, out: Path, feeds: list, excluded: list[str], percentile: float) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    # The stride must divide the sample count; the largest divisor up to STRIDE keeps memory bounded.
    stride = max(d for d in range(1, min(STRIDE, len(feeds)) + 1) if len(feeds) % d == 0)

    quantize_static(
        str(src), str(out), streaming_reader(feeds),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=COMPUTE_OPS,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
        calibrate_method=CalibrationMethod.Percentile,
        use_external_data_format=onnx_utils.uses_external_data(src),
        # Biases stay float: TensorRT's DequantizeLinear takes INT8 (not ORT's INT32 bias) inputs.
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "CalibPercentile": percentile,
                       "CalibStridedMinMax": stride, "QuantizeBias": False},
    )
