"""Edge-LLM's command lines, as its 0.11 documentation and `--help` give them. Built here, run by stages.py:
the exporter and quantizer are Python tools in the venv; `llm_build` and `llm_inference` are the C++
examples of a TensorRT-Edge-LLM build on the Jetson (`EDGELLM_BUILD_DIR`, else found on PATH).

- `tensorrt-edgellm-quantize llm --model_dir M --output_dir Q --quantization int4_awq|int8_sq`: ModelOpt
  torch PTQ; needs a CUDA GPU and the venv's `tools` extra.
- `tensorrt-edgellm-export M OUT`: ONNX with Edge-LLM's AttentionPlugin; the LLM lands in `OUT/llm/`
  (model.onnx + model.onnx.data, config.json, embedding.safetensors, tokenizer, chat_template.jinja).
- `llm_build --onnxDir OUT/llm --engineDir E --maxBatchSize B --maxInputLen P --maxKVCacheCapacity C`.
- `llm_inference --engineDir E --inputFile in.json --outputFile out.json --warmup N --dumpProfile
  --profileOutputFile profile.json`: how NVIDIA's published Orin tokens/s were collected.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import PipelineError
from .env import tool

# orin-trt precision -> Edge-LLM's quantization name; fp16 is the checkpoint as it is.
QUANTIZATION = {"fp16": None, "int8": "int8_sq", "int4-awq": "int4_awq"}
BUILD_DIR_ENV = "EDGELLM_BUILD_DIR"
PLUGIN_ENV = "EDGELLM_PLUGIN_PATH"


def quantization(precision: str) -> str | None:
    if precision not in QUANTIZATION:
        raise PipelineError(f"precision {precision!r}: Edge-LLM builds {', '.join(QUANTIZATION)} "
                            "(llm.backend: edgellm)")
    return QUANTIZATION[precision]


def export_command(model_dir: Path, out_dir: Path, extra: list[str]) -> list[str]:
    return [str(tool("tensorrt-edgellm-export")), str(model_dir), str(out_dir), *extra]


def quantize_command(model_dir: Path, out_dir: Path, precision: str, samples: int) -> list[str]:
    method = quantization(precision)
    if method is None:
        raise PipelineError(f"precision {precision}: nothing to quantize (the checkpoint is exported as it is)")
    return [str(tool("tensorrt-edgellm-quantize")), "llm", "--model_dir", str(model_dir), "--output_dir",
            str(out_dir), "--quantization", method, "--num_samples", str(samples)]


def build_command(binary: str, onnx_dir: Path, engine_dir: Path, max_batch: int, max_input: int,
                  max_kv: int) -> list[str]:
    return [binary, f"--onnxDir={onnx_dir}", f"--engineDir={engine_dir}", f"--maxBatchSize={max_batch}",
            f"--maxInputLen={max_input}", f"--maxKVCacheCapacity={max_kv}"]


def inference_command(binary: str, engine_dir: Path, input_file: Path, output_file: Path, profile_file: Path,
                      warmup: int) -> list[str]:
    return [binary, f"--engineDir={engine_dir}", f"--inputFile={input_file}", f"--outputFile={output_file}",
            f"--warmup={warmup}", "--dumpProfile", f"--profileOutputFile={profile_file}"]


def cpp_tool(name: str) -> str:
    """Where a C++ example of a TensorRT-Edge-LLM build is: `$EDGELLM_BUILD_DIR/examples/llm/<name>`, else
    `<name>` on PATH. The name alone when neither has it (what the command line shows off the Jetson)."""
    build_dir = os.environ.get(BUILD_DIR_ENV)
    if build_dir:
        return str(Path(build_dir) / "examples" / "llm" / name)
    return shutil.which(name) or name


def cpp_env() -> dict[str, str]:
    """The runtime loads Edge-LLM's TensorRT plugin library from EDGELLM_PLUGIN_PATH."""
    build_dir = os.environ.get(BUILD_DIR_ENV)
    if build_dir and PLUGIN_ENV not in os.environ:
        return {PLUGIN_ENV: str(Path(build_dir) / "libNvInfer_edgellm_plugin.so")}
    return {}
