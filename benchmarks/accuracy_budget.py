"""Accuracy against ground truth per quantization setting, on the trained fixtures: what loss each setting
costs against FP32 on labelled held-out data, beside the peers' tools on the same model and data.

    .venv/bin/python benchmarks/accuracy_budget.py [--family yolo --family vit --family llama]
        [--work /tmp/orin-trt-accuracy] [--out benchmarks/results/accuracy_budget.md]
    .venv/bin/python benchmarks/accuracy_budget.py --tuned [--family vit --family llama --family unet]

`--tuned` runs the search of `orin-trt tune` (pipeline/tune/) on each fixture's recipe as shipped: FP32,
FP16, the recipe default and every candidate, with the estimated latency on orin-agx-64 and orin-nano-8.

The pipeline's own quantizers (pipeline/quantize/) are called directly with each fixture recipe's
exclusions, independent of the CLI and the recipe schema. Each family rewrites its own section of the
results file (between `<!-- family:NAME -->` markers) and leaves the others as they were. Run from the
repo root; everything runs on ONNX Runtime's CPU provider.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core import onnx_utils  # noqa: E402
from pipeline.processing.image import list_images, load_rgb, preprocess_image  # noqa: E402
from pipeline.quantize import resolve_exclusions  # noqa: E402

SHAPES = REPO / "tests" / "fixtures" / "shapes"
FAMILIES = ("yolo", "vit", "llama", "unet")
TARGETS = {"yolo": "INT8 mAP50-95 loss <= 0.005", "vit": "INT8 top-1 loss <= 0.005",
           "llama": "INT4 perplexity <= +2 %, INT8 <= +1 %", "unet": "INT8 eps error <= 1.05x FP32's (+5 %)"}


@dataclass
class Row:
    name: str
    tool: str
    settings: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""


def in_fresh_interpreter(fn: Callable[..., Any], *args: Any) -> Any:
    from pipeline.quantize.int8 import _in_fresh_interpreter

    return _in_fresh_interpreter(fn, *args)


# ---- peers ----------------------------------------------------------------------------------------
def ort_quantize_static(src: str, dst: str, feeds: list[dict[str, np.ndarray]], excluded: list[str],
                        percentile: float | None) -> None:
    """ONNX Runtime's quantize_static with its own defaults (QDQ, per-tensor, MinMax unless `percentile`)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    extra = {"CalibPercentile": percentile} if percentile else {}
    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, nodes_to_exclude=excluded or None,
                    calibrate_method=CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax,
                    extra_options=extra)


def modelopt_defaults(src: str, dst: str, feeds: list[dict[str, np.ndarray]]) -> None:
    """ModelOpt's ONNX INT8 with nothing but the calibration data given (its own method and dtype)."""
    from modelopt.onnx.quantization import quantize

    from pipeline.quantize.feeds import stack

    quantize(onnx_path=src, quantize_mode="int8", calibration_data=stack(feeds), output_path=dst,
             calibration_eps=["cpu"], log_level="WARNING")


# ---- YOLO -----------------------------------------------------------------------------------------
def _image_feeds(paths: list[Path], spec: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    return [{spec.get("input", "images"): preprocess_image(load_rgb(p), spec)[0]} for p in paths]


def bench_yolo(work: Path, heldout: int, calib: int, seed: int) -> dict[str, Any]:
    from ultralytics import YOLO

    from pipeline.evaluation.detection_map import ValSettings, coco_map, detect, onnx_infer, ultralytics_map
    from pipeline.evaluation.yolo_labels import read_yolo_folder
    from pipeline.models.yolo import YoloAdapter
    from pipeline.quantize import excluded_node_names
    from pipeline.quantize.fp16 import autocast_fp16

    sys.path.insert(0, str(SHAPES))
    from make_dataset import write_dataset

    recipe = yaml.safe_load((SHAPES / "shapes.yaml").read_text())
    spec = {"input": "images", **recipe["preprocess"]}
    data = work / "shapes-data"
    write_dataset(data, {"heldout": heldout, "calib": calib}, seed=seed)
    labelled = read_yolo_folder(data / "images" / "heldout")
    feeds = _image_feeds(list_images(data / "images" / "calib"), spec)

    model = YOLO(str(SHAPES / "shapes-yolo.pt"))
    model.model.pt_path = str(work / "shapes.pt")  # ultralytics writes the ONNX beside it
    fp32 = work / "shapes-fp32.onnx"
    shutil.move(model.export(format="onnx", dynamic=True, simplify=True, opset=17, imgsz=[320, 320],
                             verbose=False), fp32)
    names = [n.name for n in onnx_utils.load(fp32, with_weights=False).graph.node]
    placeholders = YoloAdapter().placeholders({}, names)
    int8_opts = recipe["precisions"]["int8"]
    exclude = resolve_exclusions("int8", int8_opts, placeholders, names)
    head = excluded_node_names(fp32, exclude)
    fp16_exclude = resolve_exclusions("fp16", recipe["precisions"]["fp16"], placeholders, names)

    def score(path: Path) -> dict[str, float]:
        dets = detect(onnx_infer(path), labelled, spec, ValSettings())
        coco, ultra = coco_map(labelled, dets), ultralytics_map(labelled, dets)
        return {"map50_95": coco["map50_95"], "map50": coco["map50"], "u_map50_95": ultra["map50_95"],
                "u_map50": ultra["map50"]}

    candidates: list[tuple[Row, Callable[[Path], None]]] = [
        (Row("FP32", "export", "ultralytics ONNX export, opset 17"), lambda dst: shutil.copyfile(fp32, dst)),
        (Row("FP16", "pipeline fp16", "ModelOpt AutoCast, recipe keep_out nodes (head decode)"),
         lambda dst: autocast_fp16(fp32, dst, feeds[:8], recipe["precisions"]["fp16"], fp16_exclude)),
    ]
    candidates += _int8_rows(fp32, feeds, int8_opts, exclude, "recipe head exclusions")
    peers = _peer_rows(fp32, feeds)
    candidates += [
        peers[0],
        (Row("peer: ORT quantize_static percentile, head in float", "onnxruntime.quantization",
             "percentile 99.999 (its default), per-tensor, head nodes excluded"),
         lambda dst: in_fresh_interpreter(ort_quantize_static, str(fp32), str(dst), feeds, head, 99.999)),
        peers[1],
    ]
    rows = run_candidates(candidates, score, work / "yolo")
    return {"rows": rows, "data": f"{len(labelled)} held-out images ({labelled.boxes} labelled boxes, generator "
            f"split `heldout`), {len(feeds)} calibration images (split `calib`), 320x320",
            "metric": "map50_95", "columns": [("mAP50-95", "map50_95"), ("mAP50", "map50"),
                                              ("mAP50-95 (ultralytics)", "u_map50_95")], "higher_is_better": True}


def _int8_rows(src: Path, feeds: list[dict[str, np.ndarray]], opts: dict[str, Any], exclude: dict[str, list[str]],
               what: str) -> list[tuple[Row, Callable[[Path], None]]]:
    """The pipeline's INT8 settings: ModelOpt entropy / max x high-precision dtype, ORT percentiles."""
    from pipeline.quantize.int8 import ptq_int8

    rows: list[tuple[Row, Callable[[Path], None]]] = []
    for method in ("entropy", "max"):
        for hp in ("fp32", "fp16"):
            o = {**opts, "method": method, "high_precision_dtype": hp}
            default = " (recipe default)" if method == opts.get("method") and hp == opts.get("high_precision_dtype") else ""
            rows.append((Row(f"INT8 {method}, high precision {hp}{default}", "pipeline int8 (ModelOpt)",
                             f"calibration {method}, high_precision_dtype {hp}, {what}"),
                         lambda dst, o=o: ptq_int8(src, dst, feeds, o, exclude)))
    for pct in (99.9, 99.99, 99.999):
        o = {**opts, "method": "percentile", "percentile": pct}
        default = (" (recipe default)" if opts.get("method") == "percentile" and float(opts.get("percentile", 99.99)) == pct
                   else "")
        rows.append((Row(f"INT8 percentile {pct}{default}", "pipeline int8 (ONNX Runtime, symmetric per-channel)",
                         f"percentile {pct}, {what}, non-quantized ops fp32"),
                     lambda dst, o=o: ptq_int8(src, dst, feeds, o, exclude)))
    return rows


def _peer_rows(src: Path, feeds: list[dict[str, np.ndarray]]) -> list[tuple[Row, Callable[[Path], None]]]:
    return [
        (Row("peer: ORT quantize_static defaults", "onnxruntime.quantization", "MinMax, per-tensor, every op type"),
         lambda dst: in_fresh_interpreter(ort_quantize_static, str(src), str(dst), feeds, [], None)),
        (Row("peer: ModelOpt ONNX defaults", "modelopt.onnx.quantization", "int8 with its defaults, nothing excluded"),
         lambda dst: in_fresh_interpreter(modelopt_defaults, str(src), str(dst), feeds)),
    ]


# ---- ViT ------------------------------------------------------------------------------------------
def _export_fp32(adapter: Any, fp32: Path, recipe: Any, feeds: list[dict[str, np.ndarray]]) -> list[str]:
    """The fixture's FP32 ONNX through the pipeline's own export; returns its node names (for keep-outs)."""
    adapter.export(recipe, fp32, feeds)
    return [n.name for n in onnx_utils.load(fp32, with_weights=False).graph.node]


def bench_vit(work: Path, heldout: int, calib: int, seed: int) -> dict[str, Any]:
    import onnxruntime as ort

    from pipeline.models.classification_data import accuracy, labelled_images
    from pipeline.models.image_data import image_feeds
    from pipeline.models.vit import VitAdapter, class_names
    from pipeline.quantize.fp16 import autocast_fp16
    from pipeline.recipe.loader import load_recipe

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "vit"))
    from make_dataset import write_split

    recipe = load_recipe(str(REPO / "tests" / "fixtures" / "vit" / "vit.yaml"))
    adapter = VitAdapter()
    spec = adapter.preprocess(recipe)
    held_dir = write_split(work / "data", "heldout", 1000, seed=seed)
    calib_dir = write_split(work / "data", "calib", calib, seed=seed)
    pairs = labelled_images(held_dir, class_names(adapter._source(recipe).config))
    held = np.concatenate([f["pixel_values"] for f in image_feeds([p for p, _ in pairs], spec, "held-out")])
    labels = np.asarray([c for _, c in pairs])
    feeds = image_feeds(list_images(calib_dir), spec, "calibration")
    fp32 = work / "vit-fp32.onnx"
    names = _export_fp32(adapter, fp32, recipe, feeds[:1])
    int8 = recipe.precision_options("int8")
    exclude = resolve_exclusions("int8", int8, {}, names)
    fp16_opts = recipe.precision_options("fp16")

    def score(path: Path) -> dict[str, float]:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run(None, {"pixel_values": held[i : i + 100]})[0]
                                 for i in range(0, len(held), 100)])
        return {"top1": accuracy(logits, labels, k=5)["top1"]}

    candidates: list[tuple[Row, Callable[[Path], None]]] = [
        (Row("FP32", "export", "pipeline ViT export, opset 17"), lambda dst: shutil.copyfile(fp32, dst)),
        (Row("FP16", "pipeline fp16", "ModelOpt AutoCast, data_max 512"),
         lambda dst: autocast_fp16(fp32, dst, feeds[:8], fp16_opts, resolve_exclusions("fp16", fp16_opts, {}, names))),
        *_int8_rows(fp32, feeds, int8, exclude, "recipe exclusions (attention MatMuls, classifier)"),
        *_peer_rows(fp32, feeds),
    ]
    rows = run_candidates(candidates, score, work / "vit")
    return {"rows": rows, "data": f"{len(labels)} labelled held-out images (8 classes, split `heldout`), "
            f"{len(feeds)} calibration images (split `calib`), 64x64",
            "metric": "top1", "columns": [("top-1", "top1")], "higher_is_better": True}


# ---- Llama ----------------------------------------------------------------------------------------
def bench_llama(work: Path, heldout: int, calib: int, seed: int) -> dict[str, Any]:
    from pipeline.llm.perplexity import text_perplexity
    from pipeline.llm.session import onnxrt_session
    from pipeline.models.llama import LlamaAdapter, limits
    from pipeline.quantize.fp16 import autocast_fp16
    from pipeline.quantize.int4 import int4_awq
    from pipeline.quantize.int8 import ptq_int8
    from pipeline.recipe.loader import load_recipe

    recipe = load_recipe(str(REPO / "tests" / "fixtures" / "llama" / "llama.yaml"))
    adapter = LlamaAdapter()
    data = adapter.calibration_set(recipe, work / "calib")
    feeds = adapter.calibration_feeds(recipe, data)[:calib]
    ids = adapter.heldout_ids(recipe)
    fp32 = work / "llama-fp32.onnx"
    names = _export_fp32(adapter, fp32, recipe, adapter.eval_feeds(recipe))
    lm_head = [n for n in names if "lm_head" in n and n.endswith("MatMul")]
    window, lim = int(recipe.section("eval").get("perplexity_window", 128)), limits(recipe)

    def score(path: Path) -> dict[str, float]:
        with onnxrt_session(path, lim["max_context"], lim["max_prompt"]) as s:
            ppl = text_perplexity(s, ids, window, lim["max_prompt"], lim["max_context"])
        return {"perplexity": ppl["perplexity"], "tokens": ppl["tokens_scored"]}

    none = {"nodes": [], "op_types": []}
    head_out = {"nodes": [re.escape(n) + "$" for n in lm_head], "op_types": []}
    int8 = recipe.precision_options("int8")
    fp16_opts = recipe.precision_options("fp16")
    candidates: list[tuple[Row, Callable[[Path], None]]] = [
        (Row("FP32", "export", "pipeline Llama export (KV cache), opset 17"), lambda dst: shutil.copyfile(fp32, dst)),
        (Row("FP16", "pipeline fp16", "ModelOpt AutoCast, norms and Softmax kept FP32"),
         lambda dst: autocast_fp16(fp32, dst, feeds[:8], fp16_opts, resolve_exclusions("fp16", fp16_opts, {}, names))),
        (Row("INT8 max + SmoothQuant 0.5 (recipe default)", "pipeline int8 (ModelOpt)", "W8A8, high precision fp32"),
         lambda dst: ptq_int8(fp32, dst, feeds, int8, none)),
        (Row("INT8 max, no SmoothQuant", "pipeline int8 (ModelOpt)", "W8A8, high precision fp32"),
         lambda dst: ptq_int8(fp32, dst, feeds, {k: v for k, v in int8.items() if k != "smoothquant"}, none)),
        (Row("INT8 entropy + SmoothQuant 0.5", "pipeline int8 (ModelOpt)", "W8A8, high precision fp32"),
         lambda dst: ptq_int8(fp32, dst, feeds, {**int8, "method": "entropy"}, none)),
    ]
    for method, block, exclude, label in (("awq_clip", 128, none, " (recipe default)"), ("awq_clip", 64, none, ""),
                                          ("awq_clip", 32, none, ""), ("awq_lite", 128, none, ""),
                                          ("rtn_dq", 128, none, ""), ("awq_clip", 128, head_out, ", LM head FP32"),
                                          ("awq_clip", 32, head_out, ", LM head FP32")):
        candidates.append((Row(f"INT4 {method} block {block}{label}", "pipeline int4-awq (ModelOpt)",
                               f"weight-only INT4, block {block}" + (f", kept out: {', '.join(lm_head)}" if exclude is head_out else "")),
                           lambda dst, m=method, b=block, e=exclude: int4_awq(fp32, dst, feeds, {"method": m, "block_size": b}, e)))
    rows = run_candidates(candidates, score, work / "llama")
    return {"rows": rows, "data": f"held-out text tests/fixtures/llama/heldout.txt ({len(ids)} tokens, {window}-token "
            f"windows, tail dropped), {len(feeds)} calibration windows of 64 tokens",
            "metric": "perplexity", "columns": [("perplexity", "perplexity")], "higher_is_better": False}


# ---- UNet -----------------------------------------------------------------------------------------
def bench_unet(work: Path, heldout: int, calib: int, seed: int) -> dict[str, Any]:
    import onnxruntime as ort

    from pipeline.evaluation.denoise import epsilon_error
    from pipeline.models.unet import UnetAdapter
    from pipeline.quantize.fp16 import autocast_fp16
    from pipeline.quantize.int8 import ptq_int8
    from pipeline.recipe.loader import load_recipe

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "unet"))
    from make_latents import heldout_set

    recipe = load_recipe(str(REPO / "tests" / "fixtures" / "unet" / "unet.yaml"))
    adapter = UnetAdapter()
    feeds = adapter.calibration_feeds(recipe, adapter.calibration_set(recipe, work / "calib"))[:calib]
    held = heldout_set(per_timestep=16, seed=seed)
    fp32 = work / "unet-fp32.onnx"
    names = _export_fp32(adapter, fp32, recipe, feeds[:1])
    int8 = recipe.precision_options("int8")
    exclude = resolve_exclusions("int8", int8, {}, names)
    fp16_opts = recipe.precision_options("fp16")

    def score(path: Path) -> dict[str, float]:
        err = epsilon_error(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), held)
        return {"eps_mse": err["mse"], **{f"t{t}": v for t, v in err["by_timestep"].items()}}

    candidates: list[tuple[Row, Callable[[Path], None]]] = [
        (Row("FP32", "export", "pipeline UNet export, opset 17"), lambda dst: shutil.copyfile(fp32, dst)),
        (Row("FP16", "pipeline fp16", "ModelOpt AutoCast, data_max 512"),
         lambda dst: autocast_fp16(fp32, dst, feeds[:8], fp16_opts, resolve_exclusions("fp16", fp16_opts, {}, names))),
        *_int8_rows(fp32, feeds, int8, exclude, "recipe exclusions (attention blocks, conv_in/out, time embedding)"),
    ]
    # Hand-picked fallbacks beyond the recipe's exclusions (what a sensitivity search would try first).
    best = {**int8, "method": "max", "high_precision_dtype": "fp32"}
    for label, patterns in (("the resnets' time_emb_proj", [r".*/time_emb_proj/.*"]),
                            ("the full-resolution blocks (down_blocks.0, up_blocks.1)",
                             [r"/unet/down_blocks\.0/.*", r"/unet/up_blocks\.1/.*"]),
                            ("every attention block (only resnets, samplers in INT8)", [r".*/attentions\.\d+/.*"])):
        keep_out = dict(int8["keep_out"])
        more = resolve_exclusions("int8", {**best, "keep_out": {**keep_out, "nodes": [*keep_out["nodes"], *patterns]}},
                                  {}, names)
        candidates.append((Row(f"INT8 max, high precision fp32, + {label} in float", "pipeline int8 (ModelOpt)",
                               f"recipe exclusions + {', '.join(patterns)}"),
                           lambda dst, e=more: ptq_int8(fp32, dst, feeds, best, e)))
    candidates += _peer_rows(fp32, feeds)
    rows = run_candidates(candidates, score, work / "unet")
    return {"rows": rows, "data": f"{len(held['sample'])} held-out noised latents (16 at each of t = 999, 800, 600, "
            f"400, 200, 50; make_latents.heldout_set), {len(feeds)} calibration inputs recorded from guided DDIM runs",
            "metric": "eps_mse", "columns": [("eps MSE", "eps_mse"), ("t=999", "t999"), ("t=200", "t200"),
                                             ("t=50", "t50")], "higher_is_better": False}


# ---- tuned: `orin-trt tune` on the fixture recipe -----------------------------------------------------
TUNED = {"vit": ("int8",), "llama": ("int8", "int4-awq"), "unet": ("int8",)}
TARGET_PAIR = ("orin-agx-64", "orin-nano-8")


@dataclass
class TunedRow:
    name: str
    precision: str
    measured_on: str
    value: float | None
    loss: str
    within: str
    ms: tuple[float, float]
    weight_bytes: int
    seconds: str = ""
    note: str = ""


def _fixture_recipe(family: str) -> Any:
    from pipeline.recipe.loader import load_recipe

    if family == "vit" and not (REPO / "calib" / "vit-data" / "heldout").is_dir():  # the recipe's own paths
        sys.path.insert(0, str(REPO / "tests" / "fixtures" / "vit"))
        from make_dataset import main as make_vit_data

        make_vit_data([str(REPO / "calib" / "vit-data")])
    if family == "unet" and not (REPO / "calib" / "unet-heldout.npz").is_file():
        sys.path.insert(0, str(REPO / "tests" / "fixtures" / "unet"))
        from make_latents import main as make_unet_latents

        make_unet_latents([str(REPO / "calib" / "unet-heldout.npz")])
    return load_recipe(str(REPO / "tests" / "fixtures" / family / f"{family}.yaml"))


def bench_tuned(family: str, work: Path) -> dict[str, Any]:
    """FP32, FP16 and, per tunable precision, every candidate `orin-trt tune` measured (the recipe default
    re-measured on the whole held-out set beside the choice), with the estimate on both Orins."""
    from pipeline.analyze.weights import engine_weight_bytes
    from pipeline.core.artifacts import Layout
    from pipeline.evaluation.budget import format_loss
    from pipeline.models import get_adapter
    from pipeline.stages.calibrate import calibrate
    from pipeline.stages.export import export
    from pipeline.tune.latency import estimate_ms
    from pipeline.tune.report import write_report
    from pipeline.tune.search import Search, Settings, run_search

    recipe = _fixture_recipe(family)
    layout, calib_root = Layout(work / "engines", recipe.name), work / "calib"
    export(recipe, layout)
    adapter, src = get_adapter(family), layout.exported_onnx
    rows: list[TunedRow] = []
    notes: list[str] = []
    for precision in TUNED[family]:
        search = {t: Search(recipe, layout, precision, calib_root, Settings.from_recipe(recipe, target=t))
                  for t in TARGET_PAIR}
        first = search[TARGET_PAIR[0]]
        budget = first.budget
        if not rows:  # the references, once per family: FP32 as is, FP16 through the pipeline's AutoCast
            fp32 = first.reference(None)
            calibrate(recipe, layout, "fp16", calib_root)
            fp16 = adapter.ground_truth(recipe, layout.calibrated_onnx("fp16"), None)
            for name, onnx, truth in (("FP32", src, fp32), ("FP16 (AutoCast)", layout.calibrated_onnx("fp16"), fp16)):
                p = "fp32" if name == "FP32" else "fp16"
                value = truth["metrics"][budget.metric]
                rows.append(TunedRow(name, p, f"{truth['samples']} (all)", value,
                                     format_loss(budget.loss(fp32["metrics"][budget.metric], value), budget.to_dict()),
                                     "-", tuple(estimate_ms(src, first.shapes, {}, p, s.target)["estimated_ms"]
                                                for s in search.values()), engine_weight_bytes(onnx)))
        t0 = first.started = time.perf_counter()  # the search's own time, not the references' above
        result = run_search(first)
        write_report(layout.precision_dir(precision), recipe.name, result, None)
        by_name = result["candidates"]
        own = next(iter(by_name.values()))  # the recipe's setting is the first candidate
        default_full = first.measure(own, None)  # default and choice on the same (whole) set
        tune_s = time.perf_counter() - t0
        chosen = result["choice"]["name"] if result["choice"] else None
        for name, r in result["rows"].items():
            m = default_full if name == own.name else r.get("full") or r["screen"]
            marks = [w for w, yes in (("recipe default", name == own.name), ("chosen", name == chosen)) if yes]
            rows.append(TunedRow(f"{precision} {name}" + (f" **({', '.join(marks)})**" if marks else ""), precision,
                                 f"{m['samples']}" + (" (all)" if m is default_full or "full" in r else " (screen)"),
                                 m["value"], format_loss(m["loss"], budget.to_dict()),
                                 "yes" if m["within_budget"] else "no",
                                 tuple(s.latency(by_name[name])["estimated_ms"] for s in search.values()),
                                 m["weight_bytes"], f"{m['seconds']}"))
        for name, err in result.get("failed", {}).items():
            rows.append(TunedRow(f"{precision} {name}", precision, "-", None, "failed", "-", (float("nan"),) * 2, 0,
                                 note=err[:110] + ("..." if len(err) > 110 else "")))
        notes.append(f"{precision}: budget {result['budget_text']} ({budget.source}); {len(result['rows'])} candidates "
                     f"measured{', ' + str(len(result['failed'])) + ' failed' if result.get('failed') else ''}; "
                     f"tune time {result['seconds']:.0f} s (search) / {tune_s:.0f} s (with the default on the whole "
                     f"set); chosen: {chosen or 'nothing within the budget'}")
    return {"rows": rows, "notes": notes, "metric": budget.metric, "recipe": f"tests/fixtures/{family}/{family}.yaml",
            "profile": first.profile}


def render_tuned(family: str, result: dict[str, Any], command: str) -> str:
    metric = result["metric"]
    profile = f", one {result['profile']} step" if result["profile"] else ""
    lines = [f"<!-- family:{family}-tuned -->", f"## {family}, tuned (`orin-trt tune`)", "",
             f"Recorded {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
             f"({os.cpu_count()} CPU cores shared with other jobs, ONNX Runtime CPU). Recipe `{result['recipe']}` "
             f"as shipped (its data, budget and `tune` defaults). Estimated latency: the analyze roofline summed per "
             f"node, each node at the precision the candidate's graph gives it{profile} (an unfused floor that ranks "
             f"candidates, not a measurement; FP16's AutoCast FP32 islands are not counted). Weights: the engine "
             f"weight bytes the ONNX holds. Target: {TARGETS[family]}.", "", f"    {command}", "",
             f"| candidate | measured on | {metric} | loss vs FP32 | within budget | est. ms {TARGET_PAIR[0]} "
             f"| est. ms {TARGET_PAIR[1]} | weights MB | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        value = f"{r.value:.4f}" if r.value is not None else "n/a"
        ms = " | ".join("n/a" if v != v else f"{v:.4f}" for v in r.ms)
        weights = f"{r.weight_bytes / 1e6:.2f}" if r.weight_bytes else "n/a"
        lines.append(f"| {r.name}{' — ' + r.note if r.note else ''} | {r.measured_on} | {value} | {r.loss} | "
                     f"{r.within} | {ms} | {weights} | {r.seconds} |")
    lines += [""] + [f"- {n}" for n in result["notes"]] + [f"<!-- /family:{family}-tuned -->"]
    return "\n".join(lines) + "\n"


def run_candidates(candidates: list[tuple[Row, Callable[[Path], None]]], score: Callable[[Path], dict[str, float]],
                   folder: Path) -> list[Row]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (row, make) in enumerate(candidates):
        dst = folder / f"candidate-{i}.onnx"
        t0 = time.perf_counter()
        try:
            make(dst)
            row.seconds = time.perf_counter() - t0
            row.metrics = score(dst)
        except Exception as e:  # one candidate's failure is a result, not the end of the benchmark
            row.note = f"failed: {e.__class__.__name__}: {str(e).splitlines()[0][:160]}"
        print(f"{row.name}: {row.metrics} ({row.seconds:.1f} s) {row.note}", flush=True)
        rows.append(row)
    return rows


# ---- rendering ------------------------------------------------------------------------------------
def render_section(family: str, result: dict[str, Any], command: str) -> str:
    rows: list[Row] = result["rows"]
    key, higher = result["metric"], result["higher_is_better"]
    ref = rows[0].metrics.get(key)
    cols = result["columns"]
    lines = [f"<!-- family:{family} -->", f"## {family}", "",
             f"Recorded {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
             f"({os.cpu_count()} CPU cores, ONNX Runtime CPU). Data: {result['data']}. Target: {TARGETS[family.split('-')[0]]}.",
             "", f"    {command}", "",
             "| candidate | tool | settings | " + " | ".join(c for c, _ in cols) + " | loss vs FP32 | seconds |",
             "|" + "---|" * (len(cols) + 5)]
    for r in rows:
        vals = " | ".join(f"{r.metrics[k]:.4f}" if k in r.metrics else "n/a" for _, k in cols)
        if key in r.metrics and ref is not None:
            loss = (ref - r.metrics[key]) if higher else (r.metrics[key] / ref - 1) * 100
            loss_s = f"{loss:+.4f}" if higher else f"{loss:+.2f} %"
        else:
            loss_s = "n/a"
        lines.append(f"| {r.name} | {r.tool} | {r.settings}{' — ' + r.note if r.note else ''} | {vals} | {loss_s} "
                     f"| {r.seconds:.1f} |")
    lines.append(f"<!-- /family:{family} -->")
    return "\n".join(lines) + "\n"


HEADER = """# Accuracy budget: loss against ground truth per quantization setting

Produced by `benchmarks/accuracy_budget.py` on the trained fixtures (tests/fixtures/). Loss is the task
metric of FP32 minus the candidate's (detection, classification), or the relative perplexity increase
(LLM), both measured against labels / held-out text, never against FP32's outputs. Latency is not
measured here (ONNX Runtime on x86 says nothing about an Orin).
"""


def write_results(out: Path, sections: dict[str, str]) -> None:
    text = out.read_text() if out.exists() else HEADER
    for family, section in sections.items():
        pattern = re.compile(rf"<!-- family:{family} -->.*?<!-- /family:{family} -->\n", re.S)
        text = pattern.sub(lambda _m, s=section: s, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


BENCHES: dict[str, Callable[..., dict[str, Any]]] = {"yolo": bench_yolo, "vit": bench_vit, "llama": bench_llama,
                                                     "unet": bench_unet}


def strip_paths(args: list[str]) -> str:
    """The command as recorded: without --work / --out, which name this machine's folders, not settings."""
    return re.sub(r"\s*--(work|out)[= ]\S+", "", " ".join(args)).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", action="append", choices=FAMILIES, help="repeatable (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/orin-trt-accuracy"), help="scratch folder (wiped)")
    parser.add_argument("--heldout", type=int, default=64, help="YOLO held-out images")
    parser.add_argument("--calib", type=int, default=64, help="calibration samples")
    parser.add_argument("--seed", type=int, default=0, help="data generator seed (YOLO, ViT)")
    parser.add_argument("--section", default="", help="suffix of the results section, to keep a variant beside "
                        "the main run (e.g. '-256' for a run with --heldout 256)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "accuracy_budget.md")
    parser.add_argument("--tuned", action="store_true", help="run `orin-trt tune` on each family's fixture recipe "
                        "(vit, llama, unet) instead of the settings sweep: the `<family>-tuned` sections")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(args.work / "ultralytics"))
    command = "python benchmarks/accuracy_budget.py " + strip_paths(argv if argv is not None else sys.argv[1:])
    sections = {}
    for family in args.family or (tuple(TUNED) if args.tuned else FAMILIES):
        folder = args.work / (family + ("-tuned" if args.tuned else ""))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if args.tuned:
            if family not in TUNED:
                parser.error(f"--tuned --family {family}: the tuned sections cover {', '.join(TUNED)} "
                             "(yolo's is `make demo`'s)")
            sections[family + "-tuned"] = render_tuned(family, bench_tuned(family, folder), command.strip())
        else:
            result = BENCHES[family](folder, heldout=args.heldout, calib=args.calib, seed=args.seed)
            sections[family + args.section] = render_section(family + args.section, result, command.strip())
        write_results(args.out, sections)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
