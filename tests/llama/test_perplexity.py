"""Perplexity against values computed by hand, and against transformers' own loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.llm.perplexity import negative_log_likelihoods, perplexity_from_logits, text_perplexity
from pipeline.llm.session import onnxrt_session
from pipeline.models.llama import LlamaAdapter


def test_uniform_logits_give_the_vocabulary_size() -> None:
    assert perplexity_from_logits(np.full((7, 512), 3.25), np.arange(7)) == pytest.approx(512)


def test_a_two_token_case_by_hand() -> None:
    # Position 1: logits (0, ln 3) -> p(token 1) = 3/4.  Position 2: logits (0, 0) -> p(token 0) = 1/2.
    # NLL = (-ln 3/4 - ln 1/2) / 2, so perplexity = (4/3 * 2) ** (1/2) = sqrt(8/3) = 1.63299...
    logits = np.array([[0.0, math.log(3)], [0.0, 0.0]])
    np.testing.assert_allclose(negative_log_likelihoods(logits, np.array([1, 0])), [math.log(4 / 3), math.log(2)])
    assert perplexity_from_logits(logits, np.array([1, 0])) == pytest.approx(math.sqrt(8 / 3))


def test_large_logits_do_not_overflow() -> None:
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    assert perplexity_from_logits(logits, np.array([0, 1])) == pytest.approx(1.0)


def test_text_perplexity_equals_transformers_loss(llama_ws: dict) -> None:
    import torch

    recipe = llama_ws["recipe"]
    model, *_ = LlamaAdapter().load(recipe)
    ids = LlamaAdapter().heldout_ids(recipe)[:40]
    with torch.inference_mode():
        loss = float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    with onnxrt_session(llama_ws["layout"].exported_onnx) as s:
        one = text_perplexity(s, ids, 40)
        two = text_perplexity(s, ids, 20)  # 2 windows: 19 + 19 tokens scored
        with pytest.raises(PipelineError, match="window must be >= 2"):
            text_perplexity(s, ids, 1)
    assert one["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
    assert (one["tokens_scored"], two["tokens_scored"], two["windows"]) == (39, 38, 2)
