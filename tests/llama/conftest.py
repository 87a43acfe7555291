"""A tiny Llama recipe (GQA, llama3 RoPE, tied embeddings, random weights) and its exported ONNX, shared
by the llama tests so the export and each calibration run once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.artifacts import Layout
from pipeline.recipe.loader import Recipe, load_recipe

from ..conftest import derived_recipe

TINY_CONFIG = {
    "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2,  # grouped-query attention
    "max_position_embeddings": 512, "tie_word_embeddings": True,
    "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
}


# The built-in llama recipe's limits, which the tiny recipes keep.
MAX_CONTEXT, MAX_PROMPT = 256, 128


def ort_session(path: Path, **options: object):  # noqa: ANN201
    """The ONNX Runtime decode session at the tiny recipe's limits."""
    from pipeline.llm.session import onnxrt_session

    return onnxrt_session(path, MAX_CONTEXT, MAX_PROMPT, **options)


def prefill_logits(path: Path, feeds: list) -> np.ndarray:
    """Logits of every position of each prefill feed (batch 1), through the decode session."""
    with ort_session(path) as s:
        return np.concatenate([s.prefill(f["input_ids"], f["logit_positions"]) for f in feeds])


def tiny_llama_recipe(dest: Path, name: str = "llama-test", **overrides: object) -> Path:
    def shrink(raw: dict) -> None:
        raw["source"] = {"pretrained": None, "tokenizer": None, "seed": 0,
                         "config": TINY_CONFIG}
        raw["calibration"].update(max_samples=4, sequence_length=32)
        raw["eval"].update(samples=2, sequence_length=24, generate_tokens=8, perplexity_window=64)
        raw["profile"] = {"warmup": 1, "iterations": 2, "generation_runs": 1}

    return derived_recipe("llama", dest, name, shrink, overrides)


@pytest.fixture(scope="session")
def llama_ws(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from pipeline.stages.export import export

    base = tmp_path_factory.mktemp("llama")
    recipe = load_recipe(str(tiny_llama_recipe(base)))
    layout = Layout(base / "engines", recipe.name)
    export(recipe, layout)
    return {"base": base, "recipe": recipe, "layout": layout, "calib": base / "calib"}


@pytest.fixture(scope="session")
def calibrated(llama_ws: dict) -> callable:
    """calibrate(precision) -> the calibrated ONNX, run at most once per precision."""
    from pipeline.stages.calibrate import calibrate

    done: dict[str, Path] = {}

    def get(precision: str) -> Path:
        if precision not in done:
            recipe: Recipe = llama_ws["recipe"]
            calibrate(recipe, llama_ws["layout"], precision, llama_ws["calib"])
            done[precision] = llama_ws["layout"].calibrated_onnx(precision)
        return done[precision]

    return get
