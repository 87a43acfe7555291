"""orin-trt's stages on TensorRT Edge-LLM (`llm.backend: edgellm`), per precision, in
engines/<model>/<precision>/:

    edgellm-quantized/   tensorrt-edgellm-quantize's checkpoint (int8, int4-awq; on a GPU host)
    edgellm/llm/         tensorrt-edgellm-export's ONNX folder (what llm_build reads)
    model.engine.json    our manifest, beside it: written by the export, completed by the build
    edgellm-engine/      llm_build's engine folder (on the Jetson)
    report.{json,md}     llm_inference's profile as our report (on the Jetson)

Every stage goes through the stage cache (core/cache.py). Off a Jetson the build and the profile stop
right before their subprocess: they log the command line they would run and return skipped,
"needs a Jetson".
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..core import onnx_utils
from ..core.artifacts import Layout, onnx_files, read_json, sha256_files, sha256_onnx, write_json, write_text
from ..core.cache import StageResult, StageSpec, run_stage
from ..core.log import log
from ..core.manifest import read_manifest, write_manifest
from ..errors import PipelineError
from ..recipe.loader import Recipe
from . import commands
from .env import ensure_venv, installed_version, run_tool

NEEDS_JETSON = "needs a Jetson"
# Where a chat template may come from (Edge-LLM's exporter reads these, in this order).
TEMPLATE_FILE = "chat_template.jinja"
TEMPLATE_JSONS = ("chat_template.json", "processor_config.json", "tokenizer_config.json")


# ---- where things are (in engines/<model>/<precision>/) -------------------------------------------------
EXPORT_DIR = Path("edgellm")
ONNX_DIR = EXPORT_DIR / "llm"
ENGINE_DIR = Path("edgellm-engine")


def export_dir(layout: Layout, precision: str) -> Path:
    return layout.precision_dir(precision) / EXPORT_DIR


def onnx_dir(layout: Layout, precision: str) -> Path:
    return layout.precision_dir(precision) / ONNX_DIR


def onnx_path(layout: Layout, precision: str) -> Path:
    return onnx_dir(layout, precision) / "model.onnx"


def quantized_dir(layout: Layout, precision: str) -> Path:
    return layout.precision_dir(precision) / "edgellm-quantized"


def engine_dir(layout: Layout, precision: str) -> Path:
    return layout.precision_dir(precision) / ENGINE_DIR


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


# ---- what the recipe says -------------------------------------------------------------------------------
def model_dir(recipe: Recipe) -> Path:
    value = recipe.section("source").get("pretrained")
    if not value:
        raise PipelineError(f"recipe {recipe.path}: llm.backend edgellm exports a Hugging Face folder; set "
                            "source.pretrained")
    folder = recipe.resolve_path(value)
    if not (folder / "config.json").is_file():
        raise PipelineError(f"recipe {recipe.path}: source.pretrained: {folder} has no config.json")
    return folder


def require_chat_template(folder: Path) -> None:
    """Edge-LLM's exporter stops at the end (after the ONNX) without a chat template: say so first."""
    if (folder / TEMPLATE_FILE).is_file():
        return
    for name in TEMPLATE_JSONS:
        path = folder / name
        if path.is_file():
            try:
                if read_json(path).get("chat_template"):
                    return
            except (ValueError, AttributeError) as e:
                raise PipelineError(f"{path}: not a JSON object ({e})") from None
    raise PipelineError(f"{folder / 'tokenizer_config.json'}: no chat_template (nor {TEMPLATE_FILE}); "
                        "TensorRT Edge-LLM's exporter and runtime need one: add the model's chat template")


def limits(recipe: Recipe, config: dict[str, Any]) -> dict[str, int]:
    llm = recipe.spec.llm
    context = llm.max_context or int(config.get("max_position_embeddings") or 0)
    if not context:
        raise PipelineError(f"recipe {recipe.path}: llm.max_context is null and the model's config.json has no "
                            "max_position_embeddings")
    return {"max_batch": llm.max_batch, "max_prompt": llm.max_prompt, "max_context": context}


def _stage(kind: str, precision: str) -> str:
    return f"{kind}[edgellm {precision}]"


def _has_cuda_gpu() -> bool:
    return bool(shutil.which("nvidia-smi")) or Path("/dev/nvidia0").exists()


def _is_jetson() -> bool:
    from ..platform.host import detect

    return detect().is_jetson


# ---- quantize (calibrate): ModelOpt torch PTQ on a GPU host ---------------------------------------------
def quantize(recipe: Recipe, layout: Layout, precision: str, force: bool = False) -> StageResult:
    if commands.quantization(precision) is None:
        log(_stage("calibrate", precision), "nothing to do: Edge-LLM exports the checkpoint as it is")
        return StageResult(_stage("calibrate", precision), True, 0.0, {}, "nothing to quantize")
    out = quantized_dir(layout, precision)
    source = model_dir(recipe)
    cmd = commands.quantize_command(source, out, precision, recipe.spec.llm.edgellm.quantize_samples)
    if not _has_cuda_gpu():
        raise PipelineError(
            f"{precision} on Edge-LLM: tensorrt-edgellm-quantize (ModelOpt torch PTQ) needs a CUDA GPU host "
            f"(not verified by orin-trt's CI); there run: EDGELLM_EXTRAS=export,tools make setup-edgellm && "
            f"{shlex.join(cmd)}")
    ensure_venv()
    spec = StageSpec(
        name=_stage("calibrate", precision), stamp=layout.stamp(f"edgellm-quantize-{precision}"),
        inputs={"model": _folder_files(source)},
        options={"command": cmd[1:], "tensorrt-edgellm": installed_version()},
        outputs=[out / "config.json"],
    )

    def work() -> dict[str, Any]:
        shutil.rmtree(out, ignore_errors=True)
        log(spec.name, shlex.join(cmd))
        # Its calibration text is a Hugging Face dataset (cnn_dailymail by default) it fetches: not offline.
        run_tool(cmd, what=f"Edge-LLM quantization of {source}", offline=False)
        return {"checkpoint": str(out)}

    return run_stage(spec, work, force)


# ---- export ---------------------------------------------------------------------------------------------
def export(recipe: Recipe, layout: Layout, precision: str = "fp16", force: bool = False,
           target: str | None = None) -> StageResult:
    """tensorrt-edgellm-export of the model folder (fp16) or of its quantized checkpoint, checked by
    onnx.checker, then our manifest beside the output folder."""
    source = model_dir(recipe)
    checkpoint = quantized_dir(layout, precision) if commands.quantization(precision) else source
    if not (checkpoint / "config.json").is_file():
        raise PipelineError(f"{checkpoint}: no {precision} checkpoint; quantize on a GPU host first "
                            f"(`orin-trt calibrate --model {recipe.name} --precision {precision}` there)")
    require_chat_template(source)
    ensure_venv()
    extra = list(recipe.spec.llm.edgellm.export_args)
    onnx = onnx_path(layout, precision)
    spec = StageSpec(
        name=_stage("export", precision), stamp=layout.stamp(f"edgellm-export-{precision}"),
        inputs={"model": _folder_files(checkpoint), "tokenizer": _folder_files(source)},
        options={"precision": precision, "export_args": extra, "tensorrt-edgellm": installed_version(),
                 "llm": recipe.section("llm"), "target": target},
        outputs=[onnx, onnx.with_name(onnx.name + ".data"), onnx.with_name("config.json"),
                 layout.manifest(precision)],
    )
    return run_stage(spec, lambda: _export(recipe, layout, precision, checkpoint, extra, target), force)


def _export(recipe: Recipe, layout: Layout, precision: str, checkpoint: Path, extra: list[str],
            target: str | None) -> dict[str, Any]:
    out = export_dir(layout, precision)
    scratch = out.with_name(out.name + ".tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = commands.export_command(checkpoint, scratch, extra)
    stage = _stage("export", precision)
    log(stage, shlex.join(cmd))
    t0 = time.perf_counter()
    try:
        run_tool(cmd, what=f"Edge-LLM export of {checkpoint}")
        written = scratch / "llm" / "model.onnx"
        if not written.is_file():
            raise PipelineError(f"{scratch}: tensorrt-edgellm-export wrote no llm/model.onnx")
        onnx_utils.check(written)  # with its external data, never loaded whole
        shutil.rmtree(out, ignore_errors=True)
        scratch.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - t0
    manifest = export_manifest(recipe, layout, precision, checkpoint, seconds, target)
    write_manifest(layout.manifest(precision), manifest)
    fits = manifest["analysis"]["fits"]
    log(stage, f"{onnx_path(layout, precision)} ({len(manifest['io']['inputs'])} inputs) in {seconds:.1f} s; "
        f"manifest {layout.manifest(precision)}; {manifest['analysis']['target']}: "
        f"{'fits' if fits['fits'] else 'DOES NOT FIT'} ({fits['total_bytes'] / 2**30:.2f} of "
        f"{fits['usable_bytes'] / 2**30:.2f} GiB), decode at most "
        f"{manifest['analysis']['decode_tokens_per_s_max']:.1f} tok/s (roofline)")
    return {"onnx": str(onnx_path(layout, precision)), "seconds": round(seconds, 3)}


def export_manifest(recipe: Recipe, layout: Layout, precision: str, checkpoint: Path, seconds: float,
                    target: str | None) -> dict[str, Any]:
    """The manifest before any engine exists: what the consumers of a manifest read (io, weights, llm,
    the build command for the Orin, the fits check and decode-roofline ceiling for the target)."""
    onnx = onnx_path(layout, precision)
    header = onnx_utils.load(onnx, with_weights=False)
    exported = read_json(onnx.with_name("config.json"))
    config = read_json(model_dir(recipe) / "config.json")
    lim = limits(recipe, config)
    kv_per_token = 2 * exported["num_hidden_layers"] * exported["num_key_value_heads"] * exported["head_dim"] * 2
    return {
        "model": recipe.name,
        "family": recipe.family,
        "precision": precision,
        "backend": "edgellm",
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pipeline_version": __version__,
        "engine": {"file": str(ENGINE_DIR), "format": "edgellm", "built": False,
                   "bytes": None, "sha256": None},
        "onnx": {"file": str(onnx.relative_to(layout.precision_dir(precision))), "sha256": sha256_onnx(onnx),
                 "external_data": onnx_utils.uses_external_data(onnx)},
        "calibration": None,
        "weights": {"source": str(checkpoint), "random": False},
        "precision_detail": {"precision": precision, "method": commands.quantization(precision) or "fp16",
                             "kv_cache_dtype": exported.get("kv_cache_dtype")},
        "io": onnx_utils.io_spec(header),
        "profiles": [],
        # Run in the manifest's folder (its paths are relative, so a copied engines root still builds).
        "builder": {"backend": "edgellm", "version": installed_version(), "export_seconds": round(seconds, 3),
                    "command": build_command(Path("."), lim, "llm_build"), "seconds": None},
        "target": target,
        "system": None,  # the build on the Jetson records it (the drift guard reads it)
        "memory": {"engine_bytes": None, "weights_bytes": sum(p.stat().st_size for p in onnx_files(onnx)),
                   "activation_bytes": None},
        "llm": {**lim, "kv_cache": {"layers": exported["num_hidden_layers"],
                                    "kv_heads": exported["num_key_value_heads"], "head_dim": exported["head_dim"],
                                    "dtype": "float16", "bytes_per_token": kv_per_token,
                                    "bytes": kv_per_token * lim["max_batch"] * lim["max_context"],
                                    "for": {"batch": lim["max_batch"], "context": lim["max_context"]}}},
        "edgellm": {"version": installed_version(), "onnx_dir": str(ONNX_DIR),
                    "config": exported},
        "analysis": plan_analysis(recipe, precision, target),
        "preprocess": {"type": "edgellm", "chat_template": True},
        "postprocess": {"type": "causal_lm", "eos_token_id": exported.get("eos_token_id"),
                        "vocab_size": exported.get("vocab_size")},
    }


def plan(recipe: Recipe, precision: str, target: Any, batch: int = 1, context: int | None = None) -> dict[str, Any]:
    """`orin-trt analyze --llm-config` on the model folder's config.json: Edge-LLM's ONNX holds its own
    plugins, which the graph analysis cannot cost, so the config is what is planned from."""
    from ..analyze.llm import LlmConfig, analyze_llm

    config = read_json(model_dir(recipe) / "config.json")
    lim = limits(recipe, config)
    return analyze_llm(LlmConfig.from_dict(config), precision, target, batch, context or lim["max_context"],
                       lim["max_prompt"], name=recipe.name)


def plan_analysis(recipe: Recipe, precision: str, target: str | None) -> dict[str, Any]:
    """The manifest's summary of `plan` for the target: the fits check and the decode ceiling."""
    from ..analyze import DEFAULT_TARGET
    from ..platform.targets import get_target

    result = plan(recipe, precision, get_target(target or DEFAULT_TARGET))
    return {"target": result["fits"]["target"], "fits": result["fits"], "context": result["context"],
            "decode_tokens_per_s_max": result["decode_roofline"]["tokens_per_s_max"]}


# ---- build (on the Jetson) ------------------------------------------------------------------------------
def build_command(folder: Path, lim: dict[str, int], binary: str | None = None) -> list[str]:
    """llm_build of the ONNX folder beside a manifest in `folder`."""
    return commands.build_command(binary or commands.cpp_tool("llm_build"), folder / ONNX_DIR, folder / ENGINE_DIR,
                                  lim["max_batch"], lim["max_prompt"], lim["max_context"])


def build(recipe: Recipe, layout: Layout, precision: str, force: bool = False) -> StageResult:
    manifest = read_manifest(layout.manifest(precision))
    cmd = build_command(layout.precision_dir(precision), manifest["llm"])
    name = _stage("build", precision)
    if not _is_jetson():
        log(name, f"skipped: {NEEDS_JETSON} (JetPack 7.2 with TensorRT Edge-LLM built); there run: "
            f"{shlex.join(cmd)}")
        return StageResult(name, True, 0.0, {"command": cmd}, NEEDS_JETSON)
    onnx = onnx_path(layout, precision)
    spec = StageSpec(name=name, stamp=layout.stamp(f"edgellm-build-{precision}"),
                     inputs={"onnx": [*onnx_files(onnx), onnx.with_name("config.json")]},
                     options={"command": cmd[1:]}, outputs=[layout.manifest(precision)])
    return run_stage(spec, lambda: _build(layout, precision, cmd), force)


def _build(layout: Layout, precision: str, cmd: list[str]) -> dict[str, Any]:
    from ..platform.drift import running_system

    out = engine_dir(layout, precision)
    shutil.rmtree(out, ignore_errors=True)
    log(_stage("build", precision), shlex.join(cmd))
    t0 = time.perf_counter()
    run_tool(cmd, what=f"Edge-LLM build of {onnx_dir(layout, precision)}", env=commands.cpp_env())
    seconds = time.perf_counter() - t0
    files = _folder_files(out)
    if not files:
        raise PipelineError(f"{out}: llm_build wrote nothing")
    manifest = dict(read_manifest(layout.manifest(precision)))
    size = sum(p.stat().st_size for p in files)
    manifest["engine"] = {**manifest["engine"], "built": True, "bytes": size, "sha256": sha256_files(files),
                          "files": [str(p.relative_to(out)) for p in files]}
    manifest["builder"] = {**manifest["builder"], "seconds": round(seconds, 3)}
    manifest["system"] = running_system()
    manifest["memory"] = {**manifest["memory"], "engine_bytes": size}
    write_manifest(layout.manifest(precision), manifest)
    return {"engine_bytes": size, "seconds": round(seconds, 3)}


# ---- profile (on the Jetson) ----------------------------------------------------------------------------
def inference_files(layout: Layout, precision: str) -> dict[str, Path]:
    folder = layout.precision_dir(precision)
    return {"input": folder / "edgellm-request.json", "output": folder / "edgellm-output.json",
            "profile": folder / "edgellm-profile.json"}


def profile_command(recipe: Recipe, layout: Layout, precision: str) -> list[str]:
    files = inference_files(layout, precision)
    return commands.inference_command(commands.cpp_tool("llm_inference"), engine_dir(layout, precision),
                                      files["input"], files["output"], files["profile"],
                                      recipe.spec.llm.edgellm.warmup)


def request(recipe: Recipe) -> dict[str, Any]:
    """One greedy request: the held-out text's first eval.prompt_tokens words, eval.generate_tokens new."""
    from ..llm.text_data import heldout_text

    cfg = recipe.section("eval")
    words = heldout_text(str(cfg.get("text", "builtin"))).split()[: int(cfg.get("prompt_tokens", 16))]
    return {"batch_size": 1, "temperature": 1.0, "top_p": 1.0, "top_k": 1,
            "max_generate_length": int(cfg.get("generate_tokens", 32)),
            "requests": [{"messages": [{"role": "user", "content": " ".join(words)}]}]}


def profile(recipe: Recipe, layout: Layout, precision: str, force: bool = False) -> StageResult:
    manifest = read_manifest(layout.manifest(precision))
    cmd = profile_command(recipe, layout, precision)
    name = _stage("profile", precision)
    if not _is_jetson():
        log(name, f"skipped: {NEEDS_JETSON} (TensorRT Edge-LLM's llm_inference); there run: {shlex.join(cmd)}")
        return StageResult(name, True, 0.0, {"command": cmd}, NEEDS_JETSON)
    if not manifest["engine"].get("built"):
        raise PipelineError(f"{layout.manifest(precision)}: no Edge-LLM engine yet; run `orin-trt build --model "
                            f"{recipe.name} --precision {precision}` on this Jetson")
    from ..platform.drift import guard_on_jetson

    guard_on_jetson(manifest, engine_dir(layout, precision), "profile")
    spec = StageSpec(name=name, stamp=layout.stamp(f"edgellm-profile-{precision}"),
                     inputs={"engine": _folder_files(engine_dir(layout, precision)),
                             "manifest": [layout.manifest(precision)]},
                     options={"command": cmd[1:], "request": request(recipe)},
                     outputs=[layout.report_json(precision), layout.report_md(precision)])
    return run_stage(spec, lambda: _profile(recipe, layout, precision, cmd), force)


def _profile(recipe: Recipe, layout: Layout, precision: str, cmd: list[str]) -> dict[str, Any]:
    from .report import render_markdown, report_from_profile

    files = inference_files(layout, precision)
    write_json(files["input"], request(recipe))
    files["profile"].unlink(missing_ok=True)
    log(_stage("profile", precision), shlex.join(cmd))
    run_tool(cmd, what=f"Edge-LLM profile of {engine_dir(layout, precision)}", env=commands.cpp_env())
    if not files["profile"].is_file():
        raise PipelineError(f"{files['profile']}: llm_inference wrote no profile")
    manifest = read_manifest(layout.manifest(precision))
    report = report_from_profile(read_json(files["profile"]), manifest, str(engine_dir(layout, precision)))
    write_json(layout.report_json(precision), report)
    write_text(layout.report_md(precision), render_markdown(report))
    log(_stage("profile", precision), f"report: {layout.report_md(precision)}")
    return {"latency": report["latency"]}


# ---- the chains ------------------------------------------------------------------------------------------
def run_engine(recipe: Recipe, precision: str, root: Path, target: str | None = None,
               force: bool = False) -> list[StageResult]:
    """[quantize ->] export -> build: what `orin-trt engine` runs for `llm.backend: edgellm`."""
    layout = Layout(root, recipe.name)
    return [quantize(recipe, layout, precision, force), export(recipe, layout, precision, force, target),
            build(recipe, layout, precision, force)]
