"""LLMs are exported at the opset the quantizers need: no conversion of a model (which fails over 2 GB and
leaves an invalid graph) happens in INT8 or INT4, and INT4's opset 21 is a rename that ModelOpt's fallback
makes correctly."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest

from pipeline.core import onnx_utils


def _opset(model) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _reduce_axes_attributes(model) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type.startswith("Reduce")
            and any(a.name == "axes" for a in n.attribute)]


def test_llm_export_opset_is_what_the_quantizers_need(llama_ws: dict) -> None:
    model = onnx_utils.load_header(llama_ws["layout"].exported_onnx)
    assert _opset(model) == 20
    assert any(n.op_type == "ReduceMean" for n in model.graph.node) and _reduce_axes_attributes(model) == []


def test_opset_20_to_21_changes_no_op_of_the_llm_but_types(llama_ws: dict) -> None:
    """ModelOpt's fallback for a model over 2 GB only renames the opset to 21; that is sound iff no op
    the exported model uses changed inputs, outputs or attributes between 20 and 21."""
    ops = {n.op_type for n in onnx_utils.load_header(llama_ws["layout"].exported_onnx).graph.node}
    assert {"MatMul", "ReduceMean", "Softmax", "Gather"} <= ops
    for op in sorted(ops):
        a, b = onnx.defs.get_schema(op, 20), onnx.defs.get_schema(op, 21)
        assert ([i.name for i in a.inputs], [o.name for o in a.outputs], sorted(a.attributes)) == \
               ([i.name for i in b.inputs], [o.name for o in b.outputs], sorted(b.attributes)), op


@pytest.mark.parametrize(("precision", "opset"), [("int8", 20), ("int4-awq", 21)])
def test_quantized_llm_needs_no_conversion_and_loads(llama_ws: dict, calibrated, precision: str, opset: int) -> None:
    path = calibrated(precision)
    model = onnx_utils.load_header(path)
    assert _opset(model) == opset and _reduce_axes_attributes(model) == []
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
