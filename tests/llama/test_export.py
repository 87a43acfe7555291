"""Export with an explicit KV cache: GQA geometry, prefill + decode == one full forward, HF parity."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import onnx_utils
from pipeline.core.artifacts import read_json
from pipeline.errors import PipelineError
from pipeline.llm import kv_cache
from pipeline.llm.session import onnxrt_session
from pipeline.models.llama import LlamaAdapter

from .conftest import TINY_CONFIG, tiny_llama_recipe


def test_io_contract_has_gqa_cache_with_dynamic_axes(llama_ws: dict) -> None:
    io = onnx_utils.io_spec(onnx_utils.load(llama_ws["layout"].exported_onnx, with_weights=False))
    names = [i["name"] for i in io["inputs"]]
    assert names == kv_cache.input_names(2)
    assert [o["name"] for o in io["outputs"]] == kv_cache.output_names(2)
    past = {i["name"]: i["shape"] for i in io["inputs"]}["past_key_values.1.value"]
    # 4 query heads share 2 KV heads; head_dim = 128 / 4; batch and past length dynamic.
    assert past == [-1, TINY_CONFIG["num_key_value_heads"], -1, 32]
    report = read_json(llama_ws["layout"].export_report)
    assert report["random_weights"] is True
    assert any("prefill + 4 decode steps" in n for n in report["notes"])


def test_prefill_then_decode_equals_full_forward(llama_ws: dict) -> None:
    """Teacher-forced: prefill 10 tokens on ONNX Runtime, then 6 decode steps feeding present -> past;
    every step's logits must match one PyTorch forward over all 16 tokens."""
    import torch

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    tokens = np.random.default_rng(1).integers(0, model.config.vocab_size, 16)
    with torch.inference_mode():
        full = model(input_ids=torch.tensor(tokens[None])).logits[0].numpy()
    with onnxrt_session(llama_ws["layout"].exported_onnx) as s:
        out = s.step(kv_cache.prefill_feed(tokens[None, :10], s.cache), "prefill")
        got = [out["logits"][0]]
        for pos in range(10, 16):
            present = {k: v for k, v in out.items() if k.startswith("present.")}
            assert present["present.0.key"].shape == (1, 2, pos, 32)
            out = s.step(kv_cache.decode_feed(tokens[pos : pos + 1], pos, present), "decode")
            got.append(out["logits"][0])
    np.testing.assert_allclose(np.concatenate(got), full, atol=1e-4)


def test_batch_of_two_prompts(llama_ws: dict) -> None:
    import torch

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    tokens = np.random.default_rng(2).integers(0, model.config.vocab_size, (2, 7))
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor(tokens)).logits.numpy()
    with onnxrt_session(llama_ws["layout"].exported_onnx) as s:
        got = s.step(kv_cache.prefill_feed(tokens, s.cache), "prefill")["logits"]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_profiles_that_do_not_match_the_model_are_refused(tmp_path, llama_ws: dict) -> None:
    from pipeline.recipe.loader import load_recipe

    # Profiles written out by hand (derived for 2 KV heads) over a model that has 4: export refuses.
    config = {**TINY_CONFIG, "num_key_value_heads": 4}  # no longer GQA
    source = {"pretrained": None, "tokenizer": None, "config": config}
    derived = llama_ws["recipe"]
    recipe = load_recipe(str(tiny_llama_recipe(tmp_path, source=source, inputs=derived.inputs,
                                               profiles=derived.profiles)))
    with pytest.raises(PipelineError, match=r"llama-test.yaml: profiles give 2 layers x past \[batch, 2, past, 32\] "
                                            r"but the model has 2 layers, 4 KV heads"):
        LlamaAdapter().export(recipe, tmp_path / "m.onnx", [])


def test_local_pretrained_folder_is_loaded_not_random(tmp_path, llama_ws: dict) -> None:
    import torch

    from pipeline.llm.tokenizer import BUILTIN_TOKENIZER, load_tokenizer
    from pipeline.recipe.loader import load_recipe

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    folder = tmp_path / "my-llama"
    model.save_pretrained(folder)
    load_tokenizer(BUILTIN_TOKENIZER).save_pretrained(folder)
    recipe = load_recipe(str(tiny_llama_recipe(tmp_path, name="llama-local",
                                               source={"pretrained": str(folder), "tokenizer": None})))
    loaded, random_weights, source, _ = LlamaAdapter().load(recipe)
    assert (random_weights, source) == (False, str(folder))
    assert LlamaAdapter().source(recipe).description["tokenizer"] == str(folder)
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
