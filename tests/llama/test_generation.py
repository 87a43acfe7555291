"""Sampling, the generation loop (against a hand-rolled PyTorch greedy loop), phase -> profile switching,
KV-cache math, and the `generate` command."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.llm.generation import generate
from pipeline.llm.kv_cache import CacheShape
from pipeline.llm.sampling import SamplingConfig, filtered_probabilities, next_tokens
from pipeline.llm.session import phase_profiles
from pipeline.models.llama import LlamaAdapter
from pipeline.stages.plan import resolve_plan

from .conftest import ort_session

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05]))


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probs = filtered_probabilities(LOGITS, SamplingConfig(greedy=False, top_p=0.7))
    np.testing.assert_allclose(probs, [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    probs = filtered_probabilities(LOGITS, SamplingConfig(greedy=False, top_p=0.85))
    np.testing.assert_allclose(probs, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0])


def test_top_k_and_temperature() -> None:
    np.testing.assert_allclose(filtered_probabilities(LOGITS, SamplingConfig(greedy=False, top_k=2)),
                               [0.5 / 0.8, 0.3 / 0.8, 0, 0])
    hot = filtered_probabilities(LOGITS, SamplingConfig(greedy=False, temperature=2.0))
    np.testing.assert_allclose(hot, np.sqrt([0.5, 0.3, 0.15, 0.05]) / np.sqrt([0.5, 0.3, 0.15, 0.05]).sum())


def test_sampling_follows_the_filtered_distribution() -> None:
    cfg = SamplingConfig(greedy=False, top_k=3)
    rng = np.random.default_rng(0)
    draws = np.concatenate([next_tokens(np.tile(LOGITS, (100, 1)), cfg, rng) for _ in range(40)])
    freq = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(freq, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], atol=0.03)
    assert next_tokens(LOGITS[None], SamplingConfig(greedy=False, top_k=1), rng)[0] == 0


@pytest.mark.parametrize("bad", [{"temperature": 0}, {"top_p": 1.5}, {"top_k": -1}])
def test_bad_sampling_options(bad: dict) -> None:
    with pytest.raises(PipelineError, match="--t"):
        SamplingConfig(greedy=False, **bad)


def test_greedy_generation_matches_a_pytorch_loop(llama_ws: dict) -> None:
    import torch

    model, *_ = LlamaAdapter().load(llama_ws["recipe"])
    prompt = LlamaAdapter().heldout_ids(llama_ws["recipe"])[:12]
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(8):  # no cache: every step recomputes the whole sequence
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    streamed: list[int] = []
    with ort_session(llama_ws["layout"].exported_onnx) as s:
        gen = generate(s, prompt, 8, on_token=streamed.append)
    assert gen.new_ids == ids[12:] == streamed
    assert gen.stop_reason == "max_new_tokens" and len(gen.decode_s) == 7
    assert gen.ttft_s > 0 and gen.decode_tokens_per_s > 0


def test_generation_stops_at_eos_and_at_the_context_limit(llama_ws: dict) -> None:
    prompt = LlamaAdapter().heldout_ids(llama_ws["recipe"])[:12]
    with ort_session(llama_ws["layout"].exported_onnx) as s:
        first = generate(s, prompt, 4).new_ids
        at_eos = generate(s, prompt, 4, eos_id=first[0])
        full = generate(s, prompt, 50, max_context=15)
        with pytest.raises(PipelineError, match="does not fit the context of 12"):
            generate(s, prompt, 4, max_context=12)
        with pytest.raises(PipelineError, match="prompt of 12 tokens is longer than the prefill profile's 8"):
            generate(s, prompt, 4, max_prompt=8)
    assert (at_eos.new_ids, at_eos.stop_reason) == (first[:1], "eos")
    # 12 cached after the prompt; decode steps over 12, 13, 14 cached tokens fit a context of 15
    assert (len(full.new_ids), full.stop_reason) == (4, "context_full")


def test_phase_profiles_from_the_manifest() -> None:
    manifest_profiles = [{"name": "prefill", "phase": "prefill"}, {"name": "decode", "phase": "decode"}]
    assert phase_profiles(manifest_profiles, "m.engine") == {"prefill": 0, "decode": 1}
    assert phase_profiles([{"name": "default", "phase": None}], "m") == {"prefill": 0, "decode": 0}
    with pytest.raises(PipelineError, match="m.engine: profiles name phases"):
        phase_profiles([{"phase": "prefill"}, {"phase": "other"}], "m.engine")


def test_tensorrt_generation_runs_where_engines_execute(llama_ws: dict, calibrated) -> None:
    from pipeline.core.artifacts import read_json
    from pipeline.llm.session import tensorrt_session
    from pipeline.stages.build import build
    from pipeline.trt.backend import execution_blocker, select_backend

    blocker = execution_blocker(select_backend())
    if blocker:
        pytest.skip(f"needs a Jetson: TensorRT engines cannot execute here ({blocker})")
    recipe, layout = llama_ws["recipe"], llama_ws["layout"]
    calibrated("fp32")
    build(recipe, layout, resolve_plan(recipe, None, "fp32"))
    prompt = LlamaAdapter().heldout_ids(recipe)[:12]
    with ort_session(layout.exported_onnx) as s:
        ref = generate(s, prompt, 8).new_ids
    manifest = read_json(layout.manifest("fp32"))
    for graphs in (False, True):
        with tensorrt_session(layout.engine("fp32"), manifest, cuda_graphs=graphs) as s:
            assert generate(s, prompt, 8).new_ids == ref
            assert s.per_token()["bytes_d2h_per_token"] == manifest["llm"]["logits"]["vocab"] * 4


def test_kv_cache_bytes_by_hand() -> None:
    # Llama-3-8B: 32 layers, 8 KV heads, head_dim 128, FP16: 128 KiB per token; 8192 tokens = 1 GiB.
    llama3 = CacheShape(32, 8, 128, "float16")
    assert llama3.bytes(1, 1) == 2 * 32 * 8 * 128 * 2 == 131_072
    assert llama3.bytes(1, 8192) == 1 << 30
    io = {"inputs": [{"name": "input_ids", "shape": [-1, -1], "dtype": "int64"},
                     *({"name": f"past_key_values.{i}.{k}", "shape": [-1, -1, 8, 128], "dtype": "float16"}
                       for i in range(32) for k in ("key", "value"))]}
    assert CacheShape.from_io(io) == llama3
    with pytest.raises(PipelineError, match="no past_key_values"):
        CacheShape.from_io({"inputs": io["inputs"][:1]})


def test_generate_command(llama_ws: dict, calibrated, capsys) -> None:
    from pipeline.cli import main

    calibrated("int4-awq")
    capsys.readouterr()
    args = ["generate", "--model", str(llama_ws["recipe"].path), "--precision", "int4-awq",
            "--root", str(llama_ws["layout"].root), "--prompt", "The lighthouse", "--max-new-tokens", "6"]
    assert main(args + ["--no-greedy", "--top-k", "20", "--top-p", "0.9", "--seed", "3"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("The lighthouse") and len(out) > len("The lighthouse\n")
    assert "int4-awq: 6 tokens (max_new_tokens)" in err and "TTFT" in err
    # Token ids for the C++ llm_generate sample: the prompt's ids, one line, no engine needed.
    assert main([*args[:-2], "--print-ids"]) == 0
    tokenizer = LlamaAdapter()._tokenizer(llama_ws["recipe"])
    assert capsys.readouterr().out.split() == [str(i) for i in tokenizer("The lighthouse", add_special_tokens=False)
                                               ["input_ids"]]
    assert main(args + ["--no-greedy", "--top-p", "1.5"]) == 2
    assert "--top-p must be in (0, 1]" in capsys.readouterr().err
    assert main(["generate", "--model", "yolo", "--prompt", "x", "--root", str(llama_ws["base"])]) == 2
    assert "family llama" in capsys.readouterr().err
    from pipeline.trt.backend import execution_blocker, select_backend

    if execution_blocker(select_backend()):
        assert main(args + ["--runner", "tensorrt"]) == 2
        assert "--runner tensorrt: " in capsys.readouterr().err
