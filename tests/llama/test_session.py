"""The decode session: one address plan for ONNX Runtime (run here) and TensorRT (planned here, executed on
a Jetson); greedy equal to FP32 whatever the placement; bytes per token independent of the context."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.llm.generation import generate
from pipeline.llm.kv_cache import CacheShape
from pipeline.llm.session import ALIGNMENT, Geometry, device_layout, plan_step, step_io
from pipeline.models.llama import LlamaAdapter

from .conftest import ort_session

# The tiny recipe's cache: 2 layers, 2 KV heads, head_dim 32; vocabulary 512.
FP16 = Geometry(CacheShape(2, 2, 32, "float16"), vocab=512, capacity=256, max_prompt=128)
FP32 = Geometry(CacheShape(2, 2, 32, "float32"), vocab=512, capacity=256, max_prompt=128)


def test_placement_in_place_when_aligned_else_staged() -> None:
    # FP32 rows are 2 * 32 * 4 = 256 bytes: every row starts aligned, the output is bound in place.
    assert all(w.in_place for p in range(1, 20) for w in plan_step(FP32, "decode", p, 1, 1).writes)
    # FP16 rows are 128 bytes: odd positions are not 256-byte aligned, so those steps stage and copy.
    odd, even = plan_step(FP16, "decode", 11, 1, 1), plan_step(FP16, "decode", 12, 1, 1)
    assert not any(w.in_place for w in odd.writes) and all(w.in_place for w in even.writes)
    assert odd.bytes_d2d == 4 * 128 and even.bytes_d2d == 0
    assert odd.writes[0].offset == 11 * 128
    bucket = plan_step(Geometry(FP16.cache, 512, 256, 128, bucket=64), "decode", 70, 1, 1)
    assert bucket.past_bound == 128 and bucket.shapes["attention_mask"] == (1, 129)
    assert not any(w.in_place for w in bucket.writes)  # fixed staging address: one CUDA graph per bucket
    with pytest.raises(PipelineError, match="context full"):
        plan_step(FP16, "decode", 256, 1, 1)
    with pytest.raises(PipelineError, match="prefill profile takes an empty cache and at most 128"):
        plan_step(FP16, "prefill", 0, 129, 1)


def test_device_addresses_and_copies_of_a_step() -> None:
    """What the TensorRT session binds and copies (it only issues this plan): checked without a GPU."""
    layout = device_layout(FP16)
    assert all(o % ALIGNMENT == 0 for o in [*layout.offsets.values(), *layout.host_offsets.values()])
    base, host = 0x7F0000000000, 0x10000000  # cudaMalloc / cudaMallocHost pointers are 256-byte aligned
    io = step_io(plan_step(FP16, "decode", 11, 1, 1), layout, base, host, 512)
    past = base + layout.offsets["past_key_values.0.key"]
    assert io.addresses["past_key_values.0.key"] == past and io.shapes["past_key_values.0.key"] == (11, 1, 2, 32)
    assert io.addresses["new_key_values.0.key"] == base + layout.offsets["new_key_values.0.key"]  # staged
    assert [(c.kind, c.dst, c.nbytes) for c in io.after[:1]] == [("d2d", past + 11 * 128, 128)]
    inplace = step_io(plan_step(FP16, "decode", 12, 1, 1), layout, base, host, 512)
    assert inplace.addresses["new_key_values.0.key"] == past + 12 * 128
    # In: input_ids, position_ids, logit_positions (8 bytes each) and the mask's new column; out: the logits.
    assert (io.bytes("h2d"), io.bytes("d2h"), inplace.bytes("d2d")) == (32, 512 * 4, 0)
    mask = io.before[3:]  # after the three token inputs
    assert [(c.dst - base - layout.offsets["attention_mask"], c.nbytes) for c in mask] == [(11 * 8, 8)]


def test_cuda_calls_fail_as_one_line() -> None:
    """cuda-python is what the TensorRT session calls (here without a driver: only its error path runs)."""
    from pipeline.trt.llm_session import Cuda

    cuda = Cuda()
    with pytest.raises(PipelineError, match="^CUDA cudaMemcpyAsync failed: invalid argument$"):
        cuda.check((cuda.rt.cudaError_t.cudaErrorInvalidValue,), "cudaMemcpyAsync")
    assert cuda.check((cuda.rt.cudaError_t.cudaSuccess, 7), "cudaMalloc") == 7


def test_session_greedy_equals_fp32_in_place_staged_and_bucketed(llama_ws: dict) -> None:
    """The same tokens as the previous full-cache loop's reference (a PyTorch greedy loop in
    test_generation), whether new rows are bound in place, staged, or decoded over a padded past."""
    prompt = LlamaAdapter().heldout_ids(llama_ws["recipe"])[:13]
    path = llama_ws["layout"].exported_onnx
    with ort_session(path) as s:
        ref = generate(s, prompt, 12).new_ids
        assert s.traffic["decode"].d2d == 0  # FP32 rows are 256 bytes: always in place
    for options in ({"force_staging": True}, {"bucket": 8}):
        with ort_session(path, **options) as s:
            assert generate(s, prompt, 12).new_ids == ref
            assert s.traffic["decode"].d2d == 11 * 4 * 256


def test_bytes_per_token_do_not_grow_with_the_context(llama_ws: dict) -> None:
    ids = LlamaAdapter().heldout_ids(llama_ws["recipe"])
    per_token = []
    with ort_session(llama_ws["layout"].exported_onnx) as s:
        for context in (8, 120):
            generate(s, ids[:context], 5)
            per_token.append((s.traffic["decode"].h2d, s.traffic["decode"].d2h, s.traffic["decode"].tokens))
            s.traffic["decode"].__init__()
    for h2d, d2h, tokens in per_token:
        assert (h2d / tokens, d2h / tokens) == (4 * 8, 512 * 4)  # token inputs in, the logits out


def test_kv_cache_is_float16_in_fp16_and_int4_onnx(llama_ws: dict, calibrated) -> None:
    import onnx

    from pipeline.core import onnx_utils

    for precision in ("fp16", "int4-awq"):
        path = calibrated(precision)
        onnx.checker.check_model(str(path))
        io = onnx_utils.io_spec(onnx_utils.load(path, with_weights=False))
        dtypes = {t["name"]: t["dtype"] for t in io["inputs"] + io["outputs"]}
        assert {dtypes[f"{io_}.{i}.{k}"] for io_ in ("past_key_values", "new_key_values") for i in range(2)
                for k in ("key", "value")} == {"float16"}
        assert dtypes["logits"] == "float32" and dtypes["input_ids"] == "int64"
        with ort_session(path) as s:
            assert s.cache.dtype == "float16"
            gen = generate(s, LlamaAdapter().heldout_ids(llama_ws["recipe"])[:10], 4)
            assert len(gen.new_ids) == 4 and s.cache_rows("past_key_values.1.value").dtype == np.float16
            # FP16 rows of 128 bytes: decode over 10 and 12 cached tokens in place, over 11 staged + copied.
            assert (s.traffic["decode"].steps, s.traffic["decode"].d2d) == (3, 4 * 128)
    fp32 = onnx_utils.io_spec(onnx_utils.load(calibrated("fp32"), with_weights=False))
    assert {t["dtype"] for t in fp32["inputs"] if t["name"].startswith("past")} == {"float32"}
