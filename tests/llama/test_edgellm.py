"""`llm.backend: edgellm`: the shipped trained Llama (tests/fixtures/llama) through TensorRT Edge-LLM's
real exporter in its own venv (created here when absent, as `make setup-edgellm` does: about 2 minutes on a
cold pip cache), its ONNX checked by onnx.checker, our manifest beside it, the stage cache, one-line errors;
the Jetson-side build and profile up to their subprocess call, and their real run where a Jetson is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from pipeline.cli import main
from pipeline.core import onnx_utils
from pipeline.core.artifacts import Layout, read_json, sha256_onnx
from pipeline.core.manifest import read_manifest
from pipeline.edgellm import commands, env, stages
from pipeline.edgellm.report import report_from_profile
from pipeline.errors import PipelineError
from pipeline.recipe.loader import load_recipe

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "llama"
RECIPE = str(FIXTURE / "llama.yaml")
BACKEND = ["--set", "llm.backend=edgellm"]


def _last_line(capsys: pytest.CaptureFixture) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`orin-trt engine -p fp16` of the fixture on Edge-LLM, once (the venv is made first if it is absent):
    the export runs, the build stops before llm_build here."""
    env.ensure_venv()
    root = tmp_path_factory.mktemp("edgellm") / "engines"
    assert main(["engine", "--model", RECIPE, *BACKEND, "-p", "fp16", "--root", str(root)]) == 0
    recipe = load_recipe(RECIPE, ["llm.backend=edgellm"])
    return {"root": root, "recipe": recipe, "layout": Layout(root, recipe.name)}


@pytest.mark.slow
def test_the_edgellm_onnx_passes_onnx_checker_with_external_data(exported: dict) -> None:
    path = stages.onnx_path(exported["layout"], "fp16")
    onnx.checker.check_model(str(path))  # by path: the weights stay in model.onnx.data
    assert path.with_name("model.onnx.data").stat().st_size > 2_000_000  # the fixture's FP16 weights
    header = onnx.load(str(path), load_external_data=False)
    plugins = [n for n in header.graph.node if (n.domain, n.op_type) == ("trt_edgellm", "AttentionPlugin")]
    assert len(plugins) == 2  # one fused attention per decoder layer of the fixture
    config = read_json(path.with_name("config.json"))
    fixture = read_json(FIXTURE / "model" / "config.json")
    for key in ("num_hidden_layers", "num_key_value_heads", "head_dim", "vocab_size", "hidden_size"):
        assert config[key] == fixture[key], key
    assert (path.parent / "chat_template.jinja").read_text().startswith("{{ bos_token }}")


@pytest.mark.slow
def test_our_manifest_sits_beside_the_edgellm_folder(exported: dict) -> None:
    layout: Layout = exported["layout"]
    manifest = read_manifest(layout.manifest("fp16"))  # the reader C++ mirrors: schema, keys, io
    path = stages.onnx_path(layout, "fp16")
    assert manifest.path.parent == stages.export_dir(layout, "fp16").parent
    assert manifest.onnx_path == path and manifest["onnx"]["sha256"] == sha256_onnx(path)
    assert manifest["io"] == onnx_utils.io_spec(onnx.load(str(path), load_external_data=False))
    assert manifest.output_names[0] == "logits"
    assert manifest["builder"]["version"] == env.installed_version() == "0.11.0"
    kv = manifest["llm"]["kv_cache"]  # 2 (K, V) x 2 layers x 2 KV heads x 64 x FP16, for batch 4 x 256
    assert kv["bytes_per_token"] == 2 * 2 * 2 * 64 * 2 and kv["bytes"] == kv["bytes_per_token"] * 4 * 256
    assert manifest["analysis"]["target"] == "orin-agx-64" and manifest["analysis"]["fits"]["fits"]
    assert manifest["builder"]["command"] == [
        "llm_build", "--onnxDir=edgellm/llm", "--engineDir=edgellm-engine", "--maxBatchSize=4",
        "--maxInputLen=128", "--maxKVCacheCapacity=256"]
    assert manifest["engine"]["built"] is False and manifest["system"] is None  # the Jetson build fills them


@pytest.mark.slow
def test_a_rerun_is_up_to_date(exported: dict, capsys: pytest.CaptureFixture) -> None:
    layout: Layout = exported["layout"]
    before = layout.manifest("fp16").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["engine", "--model", RECIPE, *BACKEND, "-p", "fp16", "--root", str(exported["root"])]) == 0
    out = capsys.readouterr()
    assert "[export[edgellm fp16]] up to date, skipped" in out.err
    assert out.out.strip() == (f"{layout.manifest('fp16')}  (calibrate[edgellm fp16] nothing to quantize, "
                               f"export[edgellm fp16] up to date, build[edgellm fp16] {stages.NEEDS_JETSON})")
    assert layout.manifest("fp16").stat().st_mtime_ns == before


@pytest.mark.slow
def test_analyze_plans_the_edgellm_model_from_its_config(exported: dict, capsys: pytest.CaptureFixture) -> None:
    root = exported["root"]
    assert main(["analyze", "--model", RECIPE, *BACKEND, "-p", "fp16", "--root", str(root)]) == 0
    analysis = read_json(exported["layout"].precision_dir("fp16") / "analysis-orin-agx-64.json")
    manifest = read_manifest(exported["layout"].manifest("fp16"))
    assert analysis["totals"]["params"] == 1_312_000  # the fixture's parameter count (its README)
    assert analysis["decode_roofline"]["tokens_per_s_max"] == manifest["analysis"]["decode_tokens_per_s_max"]
    assert analysis["fits"] == manifest["analysis"]["fits"]


@pytest.mark.slow
def test_build_and_profile_stop_at_their_subprocess_off_a_jetson(exported: dict, monkeypatch) -> None:
    layout: Layout = exported["layout"]
    folder = layout.precision_dir("fp16")
    monkeypatch.setenv(commands.BUILD_DIR_ENV, "/opt/TensorRT-Edge-LLM/build")
    built = stages.build(exported["recipe"], layout, "fp16")
    assert built.skipped and built.reason == stages.NEEDS_JETSON
    assert built.summary["command"] == [
        "/opt/TensorRT-Edge-LLM/build/examples/llm/llm_build", f"--onnxDir={folder / 'edgellm/llm'}",
        f"--engineDir={folder / 'edgellm-engine'}", "--maxBatchSize=4", "--maxInputLen=128",
        "--maxKVCacheCapacity=256"]
    profiled = stages.profile(exported["recipe"], layout, "fp16")
    assert profiled.skipped and profiled.reason == stages.NEEDS_JETSON
    assert profiled.summary["command"] == [
        "/opt/TensorRT-Edge-LLM/build/examples/llm/llm_inference", f"--engineDir={folder / 'edgellm-engine'}",
        f"--inputFile={folder / 'edgellm-request.json'}", f"--outputFile={folder / 'edgellm-output.json'}",
        "--warmup=10", "--dumpProfile", f"--profileOutputFile={folder / 'edgellm-profile.json'}"]
    assert commands.cpp_env() == {commands.PLUGIN_ENV: "/opt/TensorRT-Edge-LLM/build/libNvInfer_edgellm_plugin.so"}
    request = stages.request(exported["recipe"])  # the held-out grammar text's first 16 words
    assert len(request["requests"][0]["messages"][0]["content"].split()) == 16


def test_a_tokenizer_without_chat_template_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "model"
    shutil.copytree(FIXTURE / "model", model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    root = tmp_path / "engines"
    code = main(["export", "--model", RECIPE, *BACKEND, "--set", f"source.pretrained={model}", "--root", str(root)])
    assert code == 2
    assert _last_line(capsys) == (f"orin-trt: error: {model / 'tokenizer_config.json'}: no chat_template (nor "
                                  "chat_template.jinja); TensorRT Edge-LLM's exporter and runtime need one: add "
                                  "the model's chat template")
    assert not list(root.rglob("*.onnx"))


@pytest.mark.slow
def test_an_exporter_failure_is_its_last_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    env.ensure_venv()
    model = tmp_path / "model"
    shutil.copytree(FIXTURE / "model", model)
    (model / "model.safetensors").write_bytes(b"\0" * 64)  # a truncated checkpoint
    root = tmp_path / "engines"
    code = main(["export", "--model", RECIPE, *BACKEND, "--set", f"source.pretrained={model}", "--root", str(root)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    head, _, tail = lines[-1].partition("tensorrt-edgellm-export failed (exit 1): ")
    assert head == f"orin-trt: error: Edge-LLM export of {model}: "
    assert tail and tail == next(line.strip() for line in reversed(lines[:-1]) if line.strip())
    assert not (root / "llama-fixture" / "fp16" / "model.engine.json").exists()


def test_a_venv_that_cannot_be_created_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORIN_TRT_EDGELLM_VENV", str(tmp_path / "venv"))
    monkeypatch.setenv("PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(PipelineError) as e:
        env.ensure_venv()
    assert str(e.value) == (f"creating {tmp_path / 'venv'} (scripts/setup-edgellm.sh): bash failed (exit 1): "
                            f"setup-edgellm: no Python at {tmp_path / 'no-python'} (set PYTHON=)")
    with pytest.raises(PipelineError, match=r"venv: no TensorRT Edge-LLM environment; create it with `make "
                                            r"setup-edgellm`"):
        env.ensure_venv(create=False)


def test_quantization_needs_a_gpu_host_and_says_the_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(stages, "_has_cuda_gpu", lambda: False)
    recipe = load_recipe(RECIPE, ["llm.backend=edgellm"])
    layout = Layout(tmp_path, recipe.name)
    with pytest.raises(PipelineError) as e:
        stages.quantize(recipe, layout, "int4-awq")
    out = stages.quantized_dir(layout, "int4-awq")
    assert str(e.value).endswith(
        f"make setup-edgellm && {env.tool('tensorrt-edgellm-quantize')} llm --model_dir {FIXTURE / 'model'} "
        f"--output_dir {out} --quantization int4_awq --num_samples 512")
    with pytest.raises(PipelineError, match=r"int4-awq checkpoint; quantize on a GPU host first"):
        stages.export(recipe, layout, "int4-awq")
    with pytest.raises(PipelineError, match=r"precision 'fp32': Edge-LLM builds fp16, int8, int4-awq"):
        stages.export(recipe, layout, "fp32")


def test_the_backend_is_a_checked_recipe_key() -> None:
    assert load_recipe(RECIPE).spec.llm.backend == "native"
    with pytest.raises(PipelineError, match=r"llm\.backend"):
        load_recipe(RECIPE, ["llm.backend=tensorrt-llm"])


def test_the_profile_report_reads_llm_inference_json(tmp_path: Path) -> None:
    """llm_inference's --profileOutputFile as Edge-LLM 0.11's examples write it (addJsonPrefillSummary,
    addJsonGenerationSummary, addJsonMemorySummary), on the numbers of Qwen3-8B INT4 on AGX Orin."""
    from pipeline.nightly.collect import report_metrics

    profile = {"prefill": {"total_runs": 10, "reused_tokens": 0, "computed_tokens": 3700,
                           "average_tokens_per_run": 370.0, "average_time_per_run_ms": 610.0,
                           "tokens_per_second": 606.6, "average_time_per_token_ms": 1.65},
               "generation": {"total_runs": 10, "generated_tokens": 2560, "average_tokens_per_run": 256.0,
                              "tokens_per_second": 30.6, "average_time_per_token_ms": 32.68},
               "stages": [{"stage_id": "llm_prefill", "total_runs": 10, "total_gpu_time_ms": 6100.0,
                           "average_time_per_run_ms": 610.0,
                           "gpu_time_stats": {"count": 10, "min_ms": 600.0, "max_ms": 640.0, "mean_ms": 610.0,
                                              "median_ms": 608.0, "p95_ms": 635.0, "p99_ms": 639.0,
                                              "stddev_ms": 9.0}},
                          {"stage_id": "llm_generation", "total_runs": 2550, "total_gpu_time_ms": 83_660.0,
                           "average_time_per_run_ms": 32.8,
                           "gpu_time_stats": {"count": 2550, "min_ms": 32.1, "max_ms": 36.0, "mean_ms": 32.8,
                                              "median_ms": 32.6, "p95_ms": 33.9, "p99_ms": 34.7,
                                              "stddev_ms": 0.4}}],
               "peak_unified_memory_bytes": 6_000_000_000, "peak_unified_memory_mb": 5722.0}
    manifest = {"model": "qwen3-8b", "family": "llama", "precision": "int4-awq", "builder": {"version": "0.11.0"},
                "weights": {"random": False}, "memory": {"engine_bytes": 5_100_000_000, "weights_bytes": None},
                "analysis": {"decode_tokens_per_s_max": 37.6}}
    report = report_from_profile(profile, manifest, "edgellm-engine")
    metrics = report["family_metrics"]["edgellm"]
    assert metrics["ttft_ms"] == 610.0 and metrics["decode_tokens_per_s"] == 30.6
    assert metrics["ratio_to_floor"] == round(30.6 / 37.6, 4)
    flat = report_metrics(report)  # what the nightly history stores and judges
    assert flat["latency.edgellm.throughput_per_s"] == 30.6 and flat["latency.edgellm.mean_ms"] == 32.68
    # what the regression rules judge: per-token and time-to-first-token percentiles
    assert flat["latency.edgellm.p50_ms"] == 32.6 and flat["latency.edgellm.p99_ms"] == 34.7
    assert flat["latency.edgellm-prefill.p50_ms"] == 608.0
    from pipeline.nightly.regression import direction

    assert direction("latency.edgellm.p50_ms") == -1 and direction("latency.edgellm-prefill.p99_ms") == -1
    assert flat["memory.engine_bytes"] == 5_100_000_000 and flat["memory.peak_rss_bytes"] == 6_000_000_000
    with pytest.raises(PipelineError, match=r"edgellm-engine: llm_inference profile: no 'generation' section"):
        report_from_profile({"prefill": profile["prefill"]}, manifest, "edgellm-engine")


@pytest.mark.slow
def test_the_engine_builds_and_profiles_on_a_jetson(exported: dict) -> None:
    if not stages._is_jetson() or not Path(commands.cpp_tool("llm_build")).is_file():
        pytest.skip("needs a Jetson with TensorRT Edge-LLM built (EDGELLM_BUILD_DIR)")
    layout: Layout = exported["layout"]
    assert not stages.build(exported["recipe"], layout, "fp16").skipped
    manifest = read_manifest(layout.manifest("fp16"))
    assert manifest["engine"]["built"] and manifest["system"]["l4t"]
    assert not stages.profile(exported["recipe"], layout, "fp16").skipped
    report = read_json(layout.report_json("fp16"))
    assert report["family_metrics"]["edgellm"]["decode_tokens_per_s"] > 0
