"""The streamed awq_clip's clip search on a GPU (PyTorch) against the numpy search on the CPU, on
Llama-3-8B-sized weights at random values with an outlier channel: how often the chosen alpha agrees,
and the time of each. Run where PyTorch sees a GPU (the lent GPU machine):

    PYTHONPATH=<modelopt wheels>:. python benchmarks/awq_search_device.py > benchmarks/results/awq_search_device.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {"q_proj [4096, 4096]": (4096, 4096), "down_proj [14336, 4096]": (14336, 4096),
          "lm_head slice [4096, 32768]": (4096, 32768)}


def main() -> int:
    import torch

    from pipeline.quantize import awq_streaming

    device = awq_streaming.search_device()
    if device is None:
        raise SystemExit("no GPU seen by PyTorch: this compares the GPU search with the CPU's")
    print(f"Device: {torch.cuda.get_device_name()}; PyTorch {torch.__version__}; "
          f"{len(__import__('os').sched_getaffinity(0))} CPU cores for numpy\n")
    print("| weight | dtype | blocks with the CPU's alpha | GPU s | CPU s |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, (ci, co) in SHAPES.items():
        x = rng.standard_normal((64, ci), dtype=np.float32)
        x[:, 11] *= 30
        for dtype in (np.float16, np.float32):
            w = (rng.standard_normal((ci, co), dtype=np.float32) * 0.02).astype(dtype)
            awq_streaming.clip_alphas(x[:, :256], w[:256, :256], 128, device=device)  # warm-up
            t0 = time.perf_counter()
            gpu = awq_streaming.clip_alphas(x, w, 128, device=device)
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            cpu = awq_streaming.clip_alphas(x, w, 128)
            t2 = time.perf_counter()
            print(f"| {name} | {np.dtype(dtype).name} | {float((gpu == cpu).mean()):.5%} | {t1 - t0:.2f} | {t2 - t1:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
