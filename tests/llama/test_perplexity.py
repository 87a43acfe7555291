"""Perplexity against values computed by hand, and against transformers' own loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.llm.perplexity import negative_log_likelihoods, perplexity_from_logits, text_perplexity
from pipeline.models.llama import LlamaAdapter

from .conftest import ort_session


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
    with ort_session(llama_ws["layout"].exported_onnx) as s:
        one = text_perplexity(s, ids, 40)
        two = text_perplexity(s, ids, 20)  # 2 windows: 19 + 19 tokens scored
        with pytest.raises(PipelineError, match="window must be >= 2"):
            text_perplexity(s, ids, 1)
    assert one["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
    assert (one["tokens_scored"], two["tokens_scored"], two["windows"]) == (39, 38, 2)


class BigramSession:
    """A decoder whose next-token distribution depends only on the current token: p(1 | 0) = 3/4,
    p(0 | 1) = 1/2, so every perplexity below has a value by hand. It keeps no cache."""

    TABLE = np.log(np.array([[1 / 4, 3 / 4], [1 / 2, 1 / 2]]))

    def __init__(self) -> None:
        self.phases: list[str] = []

    def prefill(self, ids: np.ndarray, logit_positions: np.ndarray) -> np.ndarray:
        self.phases.append("prefill")
        return self.TABLE[np.take_along_axis(ids, logit_positions, axis=1)]

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        self.phases.append("decode")
        return self.TABLE[np.asarray(tokens).reshape(-1, 1)]


def test_protocol_windows_and_tail_by_hand() -> None:
    ids = [0, 1, 0, 1, 0]  # windows of 2: [0 1] [0 1], tail [0] dropped; each scores -ln 3/4
    two = text_perplexity(BigramSession(), ids, 2)
    assert two["perplexity"] == pytest.approx(4 / 3)
    assert (two["windows"], two["tokens_scored"], two["tail_dropped"]) == (2, 2, 1)
    # Window 4: [0 1 0 1] scores p(1|0), p(0|1), p(1|0): ppl = (4/3 * 2 * 4/3) ** (1/3).
    four = text_perplexity(BigramSession(), ids, 4)
    assert four["perplexity"] == pytest.approx((4 / 3 * 2 * 4 / 3) ** (1 / 3))
    # Keeping the tail: [0 1 0 1] + [0] (one token, nothing to score) -> the same.
    assert text_perplexity(BigramSession(), ids, 4, drop_tail=False)["tokens_scored"] == 3
    kept = text_perplexity(BigramSession(), [0, 1, 0, 1, 0, 1], 4, drop_tail=False)
    assert (kept["windows"], kept["tokens_scored"]) == (2, 4)


def test_window_past_the_prefill_profile_is_chunked_not_capped() -> None:
    session = BigramSession()
    chunked = text_perplexity(session, [0, 1, 0, 1, 0], 4, max_prefill=2, max_context=8)
    assert chunked["chunked"] is True and chunked["window"] == 4 and chunked["tokens_scored"] == 3
    assert chunked["perplexity"] == pytest.approx((4 / 3 * 2 * 4 / 3) ** (1 / 3))
    # Prefill of 2 tokens, then 1 decode step (token 2 predicts token 3).
    assert session.phases == ["prefill", "decode"]


def test_window_beyond_the_context_or_the_text_is_refused() -> None:
    with pytest.raises(PipelineError, match="longer than the engine's context of 8 tokens"):
        text_perplexity(BigramSession(), [0, 1] * 10, 16, max_prefill=4, max_context=8)
    with pytest.raises(PipelineError, match="fewer than one perplexity window of 8"):
        text_perplexity(BigramSession(), [0, 1, 0], 8)


def test_chunked_window_equals_one_prefill_on_onnx(llama_ws: dict) -> None:
    ids = LlamaAdapter().heldout_ids(llama_ws["recipe"])[:45]
    with ort_session(llama_ws["layout"].exported_onnx) as s:
        whole = text_perplexity(s, ids, 20)
        chunked = text_perplexity(s, ids, 20, max_prefill=8, max_context=64)
    assert (whole["windows"], whole["tokens_scored"], whole["tail_dropped"]) == (2, 38, 5)
    assert chunked["chunked"] and chunked["perplexity"] == pytest.approx(whole["perplexity"], rel=1e-5)
