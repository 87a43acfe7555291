"""analyze: costs, memory, roofline and fits against numbers worked out by hand for tiny graphs."""

from __future__ import annotations

import json

import pytest

from pipeline.analyze import parse_shape, write_analysis
from pipeline.analyze.graph import analyze_model, analyze_onnx
from pipeline.analyze.llm import PRESETS, LlmConfig, analyze_llm
from pipeline.analyze.render import markdown
from pipeline.cli import main
from pipeline.errors import PipelineError
from pipeline.platform.targets import get_target

from .graphs import attention_with_kv, conv_matmul, save

AGX = get_target("orin-agx-64")


def _node(analysis: dict, name: str) -> dict:
    return next(n for n in analysis["nodes_all"] if n["name"] == name)


def test_conv_and_matmul_costs_match_the_seed_formulas() -> None:
    a = analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "fp32", AGX)
    conv, fc = _node(a, "conv"), _node(a, "fc")
    assert conv["params"] == 8 * 4 * 3 * 3 + 8             # M*C*K*K + M
    assert conv["flops"] == 2 * 16 * 16 * 8 * 4 * 3 * 3     # 2*H*W*M*C*K*K
    assert conv["macs"] == conv["flops"] // 2
    assert fc["params"] == 2048 * 10 and fc["flops"] == 2 * 2048 * 10
    assert _node(a, "relu")["flops"] == 8 * 16 * 16 and _node(a, "relu")["macs"] == 0
    t = a["totals"]
    assert t["params"] == 296 + 20480
    assert t["flops"] == 147456 + 2048 + 40960
    assert t["macs"] == (147456 + 40960) // 2
    assert a["unknown_shape_nodes"] == []


def test_grouped_conv_and_batch_scale_flops() -> None:
    a = analyze_model(conv_matmul(groups=2), {"x": [3, 4, 16, 16]}, "fp32", AGX)
    conv = _node(a, "conv")
    assert conv["params"] == 8 * 2 * 9 + 8
    assert conv["flops"] == 3 * 2 * 16 * 16 * 8 * 2 * 9


def test_weight_bytes_at_each_precision() -> None:
    t = analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "int8", AGX)["totals"]["weights_bytes"]
    gemm, other = 288 + 20480, 8  # conv + fc weights take the precision; the conv bias stays high precision
    assert t["fp32"] == (gemm + other) * 4
    assert t["fp16"] == (gemm + other) * 2
    assert t["int8"] == gemm * 1 + other * 2
    assert t["int4-awq"] == int(gemm * (0.5 + 2 / 128) + other * 2)


def test_activation_peak_is_the_largest_live_set() -> None:
    a = analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "fp16", AGX)
    # conv output (2048) and relu output (2048) are live together; x (1024) is freed after the conv.
    assert a["totals"]["activation_bytes"] == 4096 * 2


def test_roofline_floor_by_hand() -> None:
    a = analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "fp32", AGX)
    r = a["roofline"]
    min_bytes = (20776 * 4) + (1024 + 10) * 4        # every weight once + input + output
    assert a["totals"]["bytes_min"] == min_bytes
    assert r["peak_ops_per_s"] == pytest.approx(42.6e12 / 2)   # FP32 runs on TF32 tensor cores
    assert r["floor_ms"] == pytest.approx(min_bytes / 204.8e9 * 1e3)
    assert r["bound"] == "memory"
    assert r["arithmetic_intensity"] == pytest.approx(190464 / min_bytes)
    assert r["unfused_ms"] > r["floor_ms"]
    fc = _node(a, "fc")
    assert fc["bytes"] == (2048 + 10) * 4 + 20480 * 4
    assert fc["floor_ms"] == pytest.approx(fc["bytes"] / 204.8e9 * 1e3)


def test_attention_matmuls_and_kv_cache() -> None:
    shapes = {"q": [1, 2, 4, 8], "k": [1, 2, 4, 8], "v": [1, 2, 4, 8],
              "past_key": [1, 2, 6, 8], "past_value": [1, 2, 6, 8]}
    a = analyze_model(attention_with_kv(), shapes, "fp16", AGX, context=100)
    assert _node(a, "qk")["kind"] == "attention" and _node(a, "qk")["flops"] == 2 * (2 * 4 * 10) * 8
    assert _node(a, "pv")["flops"] == 2 * (2 * 4 * 8) * 10
    assert a["by_kind"]["attention"]["nodes"] == 2
    assert a["totals"]["params"] == 0
    # two cache inputs [batch 1, 2 heads, 100 tokens, 8] at FP16
    assert a["totals"]["kv_cache_bytes"] == 2 * 1 * 2 * 100 * 8 * 2
    assert a["fits"]["kv_cache_bytes"] == a["totals"]["kv_cache_bytes"]


def test_fits_adds_up_and_refuses_what_is_too_big(monkeypatch: pytest.MonkeyPatch) -> None:
    a = analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "fp32", get_target("orin-nano-4"))
    f = a["fits"]
    assert f["total_bytes"] == f["weights_bytes"] + f["activation_bytes"] + f["kv_cache_bytes"] + \
        f["runtime_overhead_bytes"]
    assert f["fits"] and f["usable_bytes"] == 3 << 30
    monkeypatch.setenv("ORIN_TRT_USABLE_GIB", "0.5")  # a board with the OS eating almost everything
    assert not analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "fp32", get_target("orin-nano-4"))["fits"]["fits"]


def test_llama3_8b_fits_nano_at_int4_not_at_fp16() -> None:
    cfg = LlmConfig.from_dict(PRESETS["llama-3-8b"])
    assert cfg.params() == 8_030_261_248  # the published Llama-3-8B parameter count
    nano = get_target("orin-nano-8")
    int4 = analyze_llm(cfg, "int4-awq", nano, batch=1, context=2048)
    fp16 = analyze_llm(cfg, "fp16", nano, batch=1, context=2048)
    assert int4["fits"]["fits"] and not fp16["fits"]["fits"]
    assert fp16["totals"]["weights_bytes"]["fp16"] == pytest.approx(cfg.params() * 2, rel=1e-9)
    # KV: 2 (k, v) x 32 layers x 8 kv heads x 128 head dim x 2048 tokens x 2 bytes
    assert int4["totals"]["kv_cache_bytes"] == 2 * 32 * 8 * 128 * 2048 * 2
    # decode reads every weight once per token: memory-bound on a 68 GB/s board
    r = int4["decode_roofline"]
    assert r["bound"] == "memory"
    assert r["floor_ms"] == pytest.approx((int4["fits"]["weights_bytes"] + int4["fits"]["kv_cache_bytes"]) / 68e9 * 1e3)


def test_analyze_onnx_file_writes_json_markdown_and_png(tmp_path) -> None:
    path = save(conv_matmul(), tmp_path / "m.onnx")
    a = analyze_onnx(path, {"x": [1, 4, 16, 16]}, "fp16", AGX)
    paths = write_analysis(a, AGX, tmp_path / "out", "analysis-orin-agx-64")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads(paths["json"].read_text())
    assert written["totals"]["flops"] == 190464 and written["target"]["key"] == "orin-agx-64"
    md = paths["md"].read_text()
    assert "latency floor on orin-agx-64" in md and paths["png"].name in md


def test_cli_analyze_onnx_and_llm(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save(conv_matmul(), tmp_path / "m.onnx")
    rc = main(["analyze", "--onnx", str(path), "--shape", "x=2x4x16x16", "--precision", "int8",
               "--target", "orin-nx-16", "--out", str(tmp_path / "a")])
    assert rc == 0
    data = json.loads((tmp_path / "a" / "analysis-orin-nx-16.json").read_text())
    assert data["totals"]["flops"] == 2 * 190464
    assert main(["analyze", "--llm-config", "llama-3-8b", "--precision", "fp16", "--target", "orin-nano-8",
                 "--fail-if-not-fit"]) == 3
    assert "does NOT fit" in capsys.readouterr().out


def test_bad_shapes_name_the_input(tmp_path) -> None:
    with pytest.raises(PipelineError, match="x"):
        analyze_model(conv_matmul(), {}, "fp32", AGX)
    with pytest.raises(PipelineError, match="rank"):
        analyze_model(conv_matmul(), {"x": [1, 4, 16]}, "fp32", AGX)
    with pytest.raises(PipelineError, match="NAME=AxBxC"):
        parse_shape("x:1x2")
    assert parse_shape("images=1x3x640x640") == ("images", [1, 3, 640, 640])


def test_markdown_lists_kinds_and_slowest_nodes() -> None:
    md = markdown(analyze_model(conv_matmul(), {"x": [1, 4, 16, 16]}, "fp32", AGX))
    assert "| conv | 1 |" in md and "| fc | MatMul |" in md


def test_context_and_profile_choice_from_a_recipe() -> None:
    from pipeline.analyze import recipe_context, recipe_shapes
    from pipeline.recipe.loader import load_recipe

    llama = load_recipe("llama")
    assert recipe_context(llama.raw, llama.profiles) == 256   # decode: 255 cached + 1 new token
    assert recipe_context({"analyze": {"context": 4096}}, llama.profiles) == 4096
    assert recipe_shapes(llama.profiles, None, profile="decode")["past_key_values.0.key"] == [127, 1, 2, 32]
    assert recipe_shapes(llama.profiles, 2)["input_ids"] == [2, 64]
    with pytest.raises(PipelineError, match="--profile warmup"):
        recipe_shapes(llama.profiles, None, profile="warmup")
    yolo = load_recipe("yolo")
    assert recipe_context(yolo.raw, yolo.profiles) is None


@pytest.mark.slow
def test_runtime_computed_shapes_resolve_through_the_symbolic_pass(tmp_path) -> None:
    """diffusers' UNet expands its timestep by a shape computed at run time: ONNX data propagation
    leaves most of the graph open; the symbolic fallback resolves every node."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    unet = diffusers.UNet2DConditionModel(
        sample_size=16, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, ehs):  # noqa: ANN001, ANN202 - traced
            return self.unet(sample, timestep, ehs, return_dict=False)[0]

    path = tmp_path / "unet.onnx"
    torch.onnx.export(Wrapped(), (torch.randn(1, 4, 16, 16), torch.tensor([10.0]), torch.randn(1, 8, 32)), str(path),
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["noise"],
                      dynamic_axes={"sample": {0: "batch"}, "encoder_hidden_states": {0: "batch"}},
                      opset_version=17, dynamo=False)
    a = analyze_onnx(path, {"sample": [2, 4, 16, 16], "timestep": [1], "encoder_hidden_states": [2, 8, 32]},
                     "fp16", AGX)
    assert a["unknown_shape_nodes"] == []
    conv_in = next(n for n in a["nodes_all"] if n["name"].endswith("conv_in/Conv"))
    assert conv_in["flops"] == 2 * 2 * 16 * 16 * 32 * 4 * 3 * 3
    assert a["by_kind"]["attention"]["flops"] > 0
    # torch's parameters, plus the few constants the export adds (sinusoid frequencies, GroupNorm's
    # InstanceNormalization ones / zeros): within 0.2 %
    torch_params = sum(p.numel() for p in unet.parameters() if p.numel() > 1)
    assert torch_params <= a["totals"]["params"] <= torch_params * 1.002


def test_fits_note_before_a_build(tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.analyze import fits_note

    from .test_bundle import calibrated_layout

    layout, recipe_path = calibrated_layout(tmp_path)
    from pipeline.recipe.loader import load_recipe

    recipe = load_recipe(str(recipe_path))
    path = layout.calibrated_onnx("fp32")
    assert fits_note(recipe, path, "fp32", "orin-nano-4")["fits"]
    assert "tiny fp32 on orin-nano-4: needs" in capsys.readouterr().err
    monkeypatch.setenv("ORIN_TRT_USABLE_GIB", "0.1")
    assert not fits_note(recipe, path, "fp32", "orin-nano-4")["fits"]
    assert "DOES NOT FIT" in capsys.readouterr().err
