"""Tensor-level agreement between a candidate output and its reference."""

from __future__ import annotations

import math

import numpy as np


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """max_abs; max_rel = max_abs / max|reference| (robust where reference values cross zero);
    cosine similarity of the flattened tensors; SNR in dB of reference power over error power."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cand = np.asarray(candidate, dtype=np.float64).ravel()
    if ref.shape != cand.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs candidate {candidate.shape}")
    err = cand - ref
    max_abs = float(np.abs(err).max()) if err.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    denom = float(np.linalg.norm(ref) * np.linalg.norm(cand))
    cosine = float(ref @ cand / denom) if denom > 0 else (1.0 if max_abs == 0 else 0.0)
    signal, noise = float(ref @ ref), float(err @ err)
    snr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    return {
        "max_abs": max_abs,
        "max_rel": max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf),
        "cosine": cosine,
        "snr_db": snr,
    }


def compare_batches(
    names: list[str], reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]]
) -> dict[str, dict[str, float]]:
    """Per output, over all feeds concatenated."""
    return {
        name: compare(
            np.concatenate([r[i].ravel() for r in reference]),
            np.concatenate([c[i].ravel() for c in candidate]),
        )
        for i, name in enumerate(names)
    }


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }
