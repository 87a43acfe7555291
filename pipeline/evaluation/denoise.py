"""A UNet denoiser against its own training target: the epsilon-prediction error on held-out noised
latents. There are no labels for a denoiser, but there is ground truth: the noise that was added.

    x_t = sqrt(a_t) * x0 + sqrt(1 - a_t) * eps      ->     error = mean((unet(x_t, t, text) - eps) ** 2)

reported per timestep (the error grows towards t = 0, where the noise is hardest to see) and overall,
and a candidate (INT8, FP16) as a ratio to FP32's error on the same inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError

HELDOUT_KEYS = ("sample", "timestep", "encoder_hidden_states", "noise")


def noised_latents(x0: np.ndarray, timesteps: np.ndarray, alphas_cumprod: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x_t, eps) for clean latents [N, C, H, W] at `timesteps` [N] under the schedule's cumulative alphas."""
    if len(x0) != len(timesteps):
        raise PipelineError(f"{len(x0)} latents for {len(timesteps)} timesteps")
    if np.any(timesteps < 0) or np.any(timesteps >= len(alphas_cumprod)):
        raise PipelineError(f"timesteps must lie in 0..{len(alphas_cumprod) - 1}")
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    a = np.asarray(alphas_cumprod, dtype=np.float64)[timesteps].reshape(-1, *([1] * (x0.ndim - 1)))
    return (np.sqrt(a) * x0 + np.sqrt(1 - a) * eps).astype(np.float32), eps


def check_heldout(heldout: dict[str, np.ndarray], where: str = "held-out latents") -> int:
    """The number of held-out items, after checking every key is there with the same non-zero count."""
    missing = [k for k in HELDOUT_KEYS if k not in heldout]
    if missing:
        raise PipelineError(f"{where} lack {', '.join(missing)} (need {', '.join(HELDOUT_KEYS)})")
    n = len(heldout["sample"])
    if not n or any(len(heldout[k]) != n for k in HELDOUT_KEYS):
        raise PipelineError(f"{where}: sample, timestep, encoder_hidden_states and noise need the same "
                            "non-zero count")
    return n


def load_heldout(path: Path) -> dict[str, np.ndarray]:
    """An .npz of held-out noised latents (tests/fixtures/unet/make_latents.py writes one), checked."""
    try:
        with np.load(path) as npz:
            heldout = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError) as e:
        raise PipelineError(f"eval.latents {path}: not a readable .npz ({e}); it holds "
                            f"{', '.join(HELDOUT_KEYS)} of held-out noised latents") from e
    check_heldout(heldout, f"eval.latents {path}")
    return heldout


def by_timestep(errors: np.ndarray, steps: np.ndarray) -> dict[int, float]:
    """Mean error per timestep, the noisiest first."""
    return {int(t): float(errors[steps == t].mean()) for t in sorted(set(steps.tolist()), reverse=True)}


def epsilon_error(session: Any, heldout: dict[str, np.ndarray], batch: int = 4) -> dict[str, Any]:
    """Mean squared error of the predicted noise against the true noise, over an ONNX Runtime session
    (`sample`, `timestep`, `encoder_hidden_states` in; the noise prediction out) in batches of `batch`."""
    n = check_heldout(heldout)
    output = session.get_outputs()[0].name
    per_sample = []
    for i in range(0, n, batch):
        feed = {"sample": heldout["sample"][i : i + batch].astype(np.float32),
                "timestep": heldout["timestep"][i : i + batch].astype(np.float32),
                "encoder_hidden_states": heldout["encoder_hidden_states"][i : i + batch].astype(np.float32)}
        pred = np.asarray(session.run([output], feed)[0], dtype=np.float64)
        err = (pred - heldout["noise"][i : i + batch]) ** 2
        per_sample.append(err.reshape(len(err), -1).mean(axis=1))
    errors = np.concatenate(per_sample)
    steps = np.asarray(heldout["timestep"])
    return {"mse": float(errors.mean()), "samples": n, "by_timestep": by_timestep(errors, steps)}


def error_ratio(candidate: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The candidate's error over the reference's (FP32's), overall and per timestep: 1.05 = 5 % worse."""
    if candidate["samples"] != reference["samples"]:
        raise PipelineError("candidate and reference were measured on different held-out sets")
    return {"ratio": candidate["mse"] / reference["mse"],
            "by_timestep": {t: candidate["by_timestep"][t] / v for t, v in reference["by_timestep"].items()}}
