"""The one table of precisions: per precision its quantizer, its recipe options (a pydantic model, so a
misspelled option key or value is an error), what a target must support, its byte widths and the words
users see. recipe.py, quantize/, targets.py, analyze/ and deploy/ read it; nothing else lists precisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    """Every recipe model: unknown keys are errors, values are validated when assigned too."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class KeepOut(Strict):
    """What stays out of the low precision, the same words for every precision."""

    nodes: list[str] = Field(default_factory=list, description="node-name regexes (`{head}`-style placeholders "
                             "from the adapter); each must match a node, so a typo is an error")
    op_types: list[str] = Field(default_factory=list, description="ONNX op types kept in float, e.g. [Softmax]")
    reason: str | None = Field(None, description="why, in words: recorded in the manifest beside what was kept out")


class Fp32Options(Strict):
    """FP32: the exported model as it is (no options)."""


class Fp16Options(Strict):
    keep_out: KeepOut = Field(default_factory=KeepOut, description="kept in FP32 whatever AutoCast measures")
    data_max: float = Field(512.0, gt=0, description="AutoCast keeps a node FP32 when its measured values exceed this")
    init_max: float = Field(65504.0, gt=0, description="... or its initializers exceed this")
    calibration_samples: int = Field(4, ge=1, description="calibration inputs AutoCast measures on")
    keep_io_types: bool = Field(True, description="FP32 inputs/outputs (false: an LLM's KV cache in FP16 too)")


class SmoothQuant(Strict):
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="migration strength (0: none, 1: all into the weights)")


class Int8Options(Strict):
    keep_out: KeepOut = Field(default_factory=KeepOut, description="kept out of INT8 (stays in float)")
    method: Literal["entropy", "max", "percentile"] = Field(
        "entropy", description="calibration: entropy / max (ModelOpt) or percentile (ONNX Runtime)")
    percentile: float = Field(99.99, gt=0.0, le=100.0, description="method percentile: the clipping percentile")
    high_precision_dtype: Literal["fp32", "fp16"] = Field(
        "fp32", description="dtype of the ops left unquantized (ModelOpt methods)")
    op_types_to_quantize: list[str] | None = Field(
        None, description="only these op types get QDQ (null: ModelOpt's default set)")
    smoothquant: SmoothQuant | None = Field(None, description="smooth activation outliers into the weights "
                                            "first (LLMs); null: plain W8A8")
    target_dla: bool = Field(False, description="Q/DQ placed for the DLA (ModelOpt target_dla: every tensor "
                             "gets a scale); set by itself for a --dla build")
    calibrator: Literal["auto", "modelopt", "streaming"] = Field(
        "auto", description="method max / entropy: ModelOpt, or orin-trt's streaming quantizer (ModelOpt's "
        "placement and scales, one ONNX Runtime session, one weight at a time); auto: streaming for an ONNX "
        "with external data or over 32 MB of weights")


class Int4AwqOptions(Strict):
    keep_out: KeepOut = Field(default_factory=KeepOut, description="MatMuls kept out of INT4")
    method: Literal["awq_clip", "awq_lite", "rtn_dq"] = Field("awq_clip", description="ModelOpt INT4 algorithm")
    block_size: int = Field(128, description="weights per FP scale (a power of two)")
    calibrator: Literal["auto", "modelopt", "streaming"] = Field(
        "auto", description="who runs awq_clip: ModelOpt itself (loads the model whole), or "
        "quantize/awq_streaming.py (the same math one weight at a time); auto = streaming for a model with "
        "external data")

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v <= 0 or v & (v - 1):
            raise ValueError(f"{v} is not a power of two")
        return v


@dataclass(frozen=True)
class Precision:
    name: str
    words: str  # what users read in help, errors and docs
    quantizer: str  # "module:function", signature (src, dst, feeds, options, exclude) -> summary
    options: type[Strict]
    needs: str  # the capability a target must list (pipeline/data/targets.yaml `precisions`)
    needs_data: bool  # calibrates on the adapter's feeds
    gemm_weight_bytes: float  # bytes per GEMM-like weight (conv, matmul), scales included
    other_weight_bytes: float  # biases, norms, embeddings
    activation_bytes: int
    compute_dtype: str  # the dtype the math runs in
    kv_bytes: int  # KV-cache element (the cache stays in float)
    nvinfer_network_mode: int | None  # DeepStream nvinfer's network-mode, None where it has none


INT4_BLOCK = 128
PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", "FP32 (the exported model as is)", "pipeline.quantize.passthrough:passthrough",
              Fp32Options, "fp32", False, 4.0, 4.0, 4, "fp32", 4, 0),
    Precision("fp16", "FP16 mixed precision (ModelOpt AutoCast)", "pipeline.quantize.fp16:autocast_fp16",
              Fp16Options, "fp16", True, 2.0, 2.0, 2, "fp16", 2, 2),
    Precision("int8", "INT8 QDQ (post-training quantization)", "pipeline.quantize.int8:ptq_int8",
              Int8Options, "int8", True, 1.0, 2.0, 1, "int8", 2, 1),
    Precision("int4-awq", "INT4 weight-only (AWQ)", "pipeline.quantize.int4:int4_awq",
              Int4AwqOptions, "int4-weight-only", True, 0.5 + 2.0 / INT4_BLOCK, 2.0, 2, "fp16", 2, None),
)}
NAMES = tuple(PRECISIONS)
# Precisions users ask boards for that orin-trt does not build: a target answers "the board cannot" for them.
BOARD_ONLY = {"bf16": "bf16", "fp8": "fp8", "nvfp4": "fp4", "fp4": "fp4"}


def get(name: str) -> Precision:
    from ..errors import PipelineError

    if name not in PRECISIONS:
        raise PipelineError(f"unknown precision {name!r} (choose from {', '.join(NAMES)})")
    return PRECISIONS[name]


def needs(name: str) -> str:
    """The target capability a precision needs (also for the board-only names)."""
    return PRECISIONS[name].needs if name in PRECISIONS else BOARD_ONLY.get(name, name)
