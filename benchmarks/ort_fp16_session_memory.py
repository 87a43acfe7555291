"""Peak RSS of an ONNX Runtime CPU session opened on an FP16-weight ONNX with external data, with the
default graph optimizations and unoptimized (what `runners/onnxrt.session_options` picks for such a
model): constant folding of the Casts the CPU provider inserts keeps an FP32 copy of every FP16 weight.
Each level in a child process of its own, after the imports.

    .venv/bin/python benchmarks/ort_fp16_session_memory.py <export>/model.onnx
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import sys
import onnxruntime as ort
sys.path.insert(0, sys.argv[1])
from tests.memory_probe import peak_kib
options = ort.SessionOptions()
options.add_session_config_entry("session.disable_prepacking", "1")
options.enable_cpu_mem_arena = False
if sys.argv[3] == "unoptimized":
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
base = peak_kib()
ort.InferenceSession(sys.argv[2], options, providers=["CPUExecutionProvider"])
print((peak_kib() - base) / 2**20)
"""


def main() -> None:
    path = sys.argv[1]
    print(f"{path}: peak RSS of opening the session, above the imports")
    for level in ("default", "unoptimized"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), path, level], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        print(f"  {level}: {float(out):.2f} GiB")


if __name__ == "__main__":
    main()
