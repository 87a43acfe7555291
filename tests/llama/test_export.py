"""Export with an explicit KV cache: GQA geometry, prefill + decode == one full forward, HF parity."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import onnx_utils
from pipeline.core.artifacts import read_json
from pipeline.errors import PipelineError
from pipeline.llm import kv_cache
from pipeline.models.llama import LlamaAdapter

from .conftest import TINY_CONFIG, ort_session, tiny_llama_recipe


def test_io_contract_has_gqa_cache_with_dynamic_axes(llama_ws: dict) -> None:
    io = onnx_utils.io_spec(onnx_utils.load(llama_ws["layout"].exported_onnx, with_weights=False))
    names = [i["name"] for i in io["inputs"]]
    assert names == kv_cache.input_names(2)
    assert [o["name"] for o in io["outputs"]] == kv_cache.output_names(2)
    past = {i["name"]: i["shape"] for i in io["inputs"]}["past_key_values.1.value"]
    # Sequence-major: [past, batch, kv_heads, head_dim]; 4 query heads share 2 KV heads; head_dim = 128 / 4.
    assert past == [-1, -1, TINY_CONFIG["num_key_value_heads"], 32]
    new = {o["name"]: o for o in io["outputs"]}
    assert new["new_key_values.1.value"]["shape"] == [-1, -1, 2, 32] and new["logits"]["shape"][-1] == 512
    assert {i["name"]: i["dtype"] for i in io["inputs"]}["past_key_values.0.key"] == "float32"  # fp32 export
    report = read_json(llama_ws["layout"].export_report)
    assert report["random_weights"] is True
    assert any("prefill + 4 decode steps" in n for n in report["notes"])


def _raw(path, feed: dict) -> dict:
    """One plain ONNX Runtime run (no session): the graph's outputs by name."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))


def test_prefill_then_decode_equals_full_forward(llama_ws: dict) -> None:
    """Teacher-forced: prefill 10 tokens on ONNX Runtime, then 6 decode steps in the session (the cache
    in place at capacity); every step's logits must match one PyTorch forward over all 16 tokens, and the
    cache rows must be the graph's own new_key_values, one chunk per step."""
    import torch

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    tokens = np.random.default_rng(1).integers(0, model.config.vocab_size, 16)
    with torch.inference_mode():
        full = model(input_ids=torch.tensor(tokens[None])).logits[0].numpy()
    path = llama_ws["layout"].exported_onnx
    with ort_session(path) as s:
        got = [s.prefill(tokens[None, :10], np.arange(10)[None])[0]]
        for pos in range(10, 16):
            got.append(s.decode(tokens[pos : pos + 1])[0])
        cached = s.cache_rows("past_key_values.1.key")
    np.testing.assert_allclose(np.concatenate(got), full, atol=1e-4)
    whole = _raw(path, kv_cache.prefill_feed(tokens[None], s.cache))
    assert cached.shape == (16, 1, 2, 32)
    np.testing.assert_allclose(cached, whole["new_key_values.1.key"], atol=1e-5)


def test_logit_positions_gather_before_the_head(llama_ws: dict) -> None:
    """Logits of the requested positions only, equal to the same rows of all positions; one Gather of
    the hidden states feeds the LM head's MatMul."""
    from pipeline.core import onnx_utils as ou

    path = llama_ws["layout"].exported_onnx
    tokens = np.random.default_rng(3).integers(0, 512, (2, 9))
    feed = kv_cache.prefill_feed(tokens, kv_cache.CacheShape(2, 2, 32))
    every = _raw(path, feed)["logits"]
    feed[kv_cache.LOGIT_POSITIONS] = np.array([[8], [3]])
    picked = _raw(path, feed)
    assert picked["logits"].shape == (2, 1, 512) and picked["new_key_values.0.key"].shape == (9, 2, 2, 32)
    np.testing.assert_allclose(picked["logits"][:, 0], every[[0, 1], [8, 3]], atol=1e-5)
    graph = ou.load(path, with_weights=False).graph
    head = next(n for n in graph.node if n.op_type == "MatMul" and "lm_head" in n.name)
    producers = {o: n for n in graph.node for o in n.output}
    seen, todo = set(), [head.input[0]]
    while todo:  # walk back from the head through reshapes to the Gather
        node = producers[todo.pop()]
        seen.add(node.op_type)
        if node.op_type == "Gather":
            break
        todo += [i for i in node.input[:1] if i in producers]
    assert "Gather" in seen


def test_batch_of_two_prompts(llama_ws: dict) -> None:
    import torch

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    tokens = np.random.default_rng(2).integers(0, model.config.vocab_size, (2, 7))
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor(tokens)).logits.numpy()
    got = _raw(llama_ws["layout"].exported_onnx, kv_cache.prefill_feed(tokens, kv_cache.CacheShape(2, 2, 32)))
    np.testing.assert_allclose(got["logits"], ref, atol=1e-4)


def test_profiles_that_do_not_match_the_model_are_refused(tmp_path, llama_ws: dict) -> None:
    from pipeline.recipe.loader import load_recipe

    # Profiles written out by hand (derived for 2 KV heads) over a model that has 4: export refuses.
    config = {**TINY_CONFIG, "num_key_value_heads": 4}  # no longer GQA
    source = {"pretrained": None, "tokenizer": None, "config": config}
    derived = llama_ws["recipe"]
    recipe = load_recipe(str(tiny_llama_recipe(tmp_path, source=source, inputs=derived.inputs,
                                               profiles=derived.profiles)))
    with pytest.raises(PipelineError, match=r"llama-test.yaml: profiles give 2 layers x past \[past, batch, 2, 32\] "
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
