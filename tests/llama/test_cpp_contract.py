"""The manifest `llm` section the Python side writes is the one the C++ LlmSession's tests read.

CTest runs `orin_trt::LlmSession`'s manifest parser and `llm_generate --plan` on a hand-written fixture
(jetson/cpp/tests/fixtures/llm/model.engine.json). If the Python writer drifted from it, C++ would pass its
tests and refuse every real engine; this pins the two to each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.llm import kv_cache
from pipeline.models.llama import llm_section

CPP_FIXTURE = Path(__file__).resolve().parents[2] / "jetson/cpp/tests/fixtures/llm/model.engine.json"


def _paths(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _paths(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_python_llm_section_has_every_key_the_cpp_fixture_has() -> None:
    cpp = json.loads(CPP_FIXTURE.read_text())["llm"]
    kv = cpp["kv_cache"]
    cache = kv_cache.CacheShape(kv["layers"], kv["kv_heads"], kv["head_dim"], kv["dtype"])
    lim = {"max_context": kv["max_context"], "max_batch": kv["max_batch"], "max_prompt": cpp["max_prompt"]}
    written = llm_section(cache, lim, cpp["phases"], cpp["logits"]["vocab"], cpp["bos_id"], cpp["eos_id"])
    ours, theirs = _paths(written), _paths(cpp)
    missing = sorted(set(theirs) - set(ours))
    assert not missing, f"the C++ fixture reads keys the Python writer does not write: {missing}"
    differing = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert not differing, f"Python writes other values than the C++ fixture holds: {differing}"


def test_cpp_fixture_io_names_follow_the_python_contract() -> None:
    manifest = json.loads(CPP_FIXTURE.read_text())
    layers = manifest["llm"]["kv_cache"]["layers"]
    assert [i["name"] for i in manifest["io"]["inputs"]] == kv_cache.input_names(layers)
    assert [o["name"] for o in manifest["io"]["outputs"]] == kv_cache.output_names(layers)
