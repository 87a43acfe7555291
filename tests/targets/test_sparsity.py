"""2:4 sparsity: the pattern, the ratio, the output change, and the eligibility rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.stages.sparsify import is_2_4_sparse, prune_2_4, sparsify_file, sparsify_model

from .graphs import conv_matmul, qdq_conv, save


def test_prune_keeps_the_two_largest_of_every_four() -> None:
    w = np.array([[0.1, -3.0, 2.0, 0.5, 1.0, 1.5, -0.2, 0.3]], np.float32).T  # K=8 along axis 0, N=1
    pruned = prune_2_4(w, axis=0)
    np.testing.assert_array_equal(pruned.ravel(), [0, -3.0, 2.0, 0, 1.0, 1.5, 0, 0])
    assert is_2_4_sparse(pruned, 0) and not is_2_4_sparse(w, 0)


def test_conv_groups_run_along_input_channels() -> None:
    w = np.random.default_rng(0).standard_normal((8, 4, 3, 3)).astype(np.float32)
    pruned = prune_2_4(w, axis=1)
    # for every output channel and kernel position, 2 of the 4 input channels are zero
    assert np.all(np.count_nonzero(pruned, axis=1) == 2)
    kept = np.abs(w) * (pruned != 0)
    assert np.all(kept.max(axis=1) == np.abs(w).max(axis=1))  # the largest magnitude always survives


def test_model_ratio_and_output_change(tmp_path: Path) -> None:
    src = save(conv_matmul(), tmp_path / "dense.onnx")
    report = sparsify_file(src, tmp_path / "sparse.onnx", {"x": [2, 4, 16, 16]})
    assert report["layers_sparsified"] == 2 and report["layers_skipped"] == 0
    assert report["elements_in_sparsified_layers"] == 8 * 4 * 9 + 2048 * 10
    assert report["sparsity_ratio"] == 0.5
    change = report["accuracy_change"]["y"]
    assert 0.5 < change["cosine"] < 1.0 and change["max_abs"] > 0
    sparse = onnx.load(str(tmp_path / "sparse.onnx"))
    fc = next(onnx.numpy_helper.to_array(i) for i in sparse.graph.initializer if i.name == "fc")
    assert is_2_4_sparse(fc, 0)


def test_ineligible_layers_are_skipped_with_a_reason() -> None:
    model = conv_matmul()
    for init in model.graph.initializer:  # 3 input channels: no group of 4 along C
        if init.name == "w":
            init.CopyFrom(onnx.numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w"))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
    _, report = sparsify_model(model)
    assert report.skipped == [{"node": "conv", "reason": "reduction dim 3 not a multiple of 4"}]
    with pytest.raises(PipelineError, match="before calibrat"):
        sparsify_model(_int8_weight_model())


def _int8_weight_model() -> onnx.ModelProto:
    model = qdq_conv()
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.input[1] = "wq"  # an INT8 initializer fed straight to the conv
    return model


def test_cli_writes_the_report(tmp_path: Path) -> None:
    src = save(conv_matmul(), tmp_path / "dense.onnx")
    raw = tmp_path / "r.yaml"
    import yaml

    from pipeline.recipe.loader import RECIPES_DIR

    recipe = yaml.safe_load((RECIPES_DIR / "yolo.yaml").read_text())
    recipe["inputs"] = {"x": {"dtype": "float32", "min": [1, 4, 16, 16], "opt": [1, 4, 16, 16], "max": [1, 4, 16, 16]}}
    recipe.update(imgsz=16, preprocess={**recipe["preprocess"], "input": "x"})
    raw.write_text(yaml.safe_dump(recipe))
    assert main(["sparsify", "--model", str(raw), "--onnx", str(src), "--output", str(tmp_path / "s" / "m.onnx")]) == 0
    report = json.loads((tmp_path / "s" / "sparsify.json").read_text())
    assert report["sparsity_ratio"] == 0.5 and "y" in report["accuracy_change"]
