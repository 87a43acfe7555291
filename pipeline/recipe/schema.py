"""The recipe schema: one pydantic model per section, per family where the families differ (source,
preprocess, postprocess, calibration, eval). Unknown keys are errors everywhere (`extra="forbid"`);
`explain` turns a validation error into one line naming the file, the key path and the nearest valid key.
The CLI, the stages and docs/own-model.md (pipeline/recipe/docs.py) all read these models.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from .precisions import NAMES, PRECISIONS, Fp32Options, Strict

BUILTIN = "builtin"
Shape = list[Annotated[int, Field(ge=0)]]

# Keys whose values are file or folder paths: relative ones resolve against the folder of the recipe file
# that wrote them (recipe.py). `builtin` and null are not paths.
PATH_KEYS = {
    ("base",), ("source", "checkpoint"), ("source", "config"), ("source", "pretrained"), ("source", "tokenizer"),
    ("source", "onnx"),
    ("calibration", "images"), ("calibration", "data"), ("calibration", "text"), ("calibration", "embeddings"),
    ("eval", "images"), ("eval", "data"), ("eval", "coco"), ("eval", "labelled"), ("eval", "text"), ("eval", "embeddings"),
    ("eval", "latents"), ("build", "timing_cache"),
}
# Of those, the ones ultralytics also resolves by bare name (yolo11n.pt, yolo11n.yaml).
NAME_OR_PATH_KEYS = {("source", "checkpoint"), ("source", "config")}


# ---- shared sections ------------------------------------------------------------------------------------
class ProfileShape(Strict):
    dtype: str | None = Field(None, description="numpy dtype name of the input")
    min: Shape = Field(description="smallest shape the engine accepts")
    opt: Shape = Field(description="the shape TensorRT tunes for")
    max: Shape = Field(description="largest shape the engine accepts")

    @model_validator(mode="after")
    def _ordered(self) -> ProfileShape:
        if not (len(self.min) == len(self.opt) == len(self.max)) or any(
            not (a <= b <= c) for a, b, c in zip(self.min, self.opt, self.max, strict=True)
        ):
            raise ValueError("needs min <= opt <= max of equal rank")
        return self


class InputSpec(ProfileShape):
    dtype: str = Field("float32", description="numpy dtype name of the input")


class Profile(Strict):
    name: str = Field(description="the profile's name (reports, manifest)")
    phase: str | None = Field(None, description="what it serves: prefill / decode for LLMs, else null")
    shapes: dict[str, ProfileShape] = Field(description="min / opt / max per input")


class Batch(Strict):
    min: int = Field(1, ge=1, description="smallest batch the engine accepts")
    opt: int = Field(1, ge=1, description="the batch TensorRT tunes for")
    max: int = Field(4, ge=1, description="largest batch the engine accepts")

    @model_validator(mode="after")
    def _ordered(self) -> Batch:
        if not self.min <= self.opt <= self.max:
            raise ValueError("needs min <= opt <= max")
        return self


class Parity(Strict):
    atol: float = Field(1e-3, ge=0, description="max abs difference ONNX Runtime vs PyTorch tolerated ...")
    min_cosine: float = Field(0.9999, description="... unless the cosine is at least this")


class Export(Strict):
    opset: int = Field(17, ge=17, description="ONNX opset (17 or newer)")
    external_data: bool = Field(False, description="force weights into model.onnx.data (>2 GB models get it anyway)")
    parity: Parity = Field(default_factory=Parity)


class TorchExport(Export):
    dtype: Literal["auto", "float32", "float16"] = Field(
        "auto", description="dtype of the exported weights (I/O stays FP32): auto is float32 unless this host's "
        "memory cannot take an FP32 export, then float16 (said in the log and export.json)")


class YoloExport(Export):
    simplify: bool = Field(True, description="onnxslim after the export")


class LlamaExport(TorchExport):
    # ModelOpt cannot convert the opset of a model over 2 GB: its fallback only renames the opset, which is
    # sound from 18 on (ReduceMean's `axes` an input) and leaves an invalid graph below; 20 is the highest
    # the TorchScript exporter writes, and INT4's opset 21 differs from it in types only.
    opset: int = Field(20, ge=18, le=20, description="ONNX opset (18-20): quantizers cannot convert an LLM over "
                       "2 GB, and 20 is the exporter's highest")
    attn_implementation: Literal["sdpa", "eager"] = Field(
        "sdpa", description="attention as exported; eager fuses into one MHA kernel in prefill too, but breaks "
        "INT8 QDQ (docs/llm.md)")
    decode_check_tokens: int = Field(4, ge=1, description="decode steps on ONNX Runtime checked against one "
                                     "PyTorch forward")


class _PrecisionsBase(Strict):
    @model_validator(mode="after")
    def _default_offered(self) -> _PrecisionsBase:
        default = getattr(self, "default", None)
        if default and self.options(default) is None:
            raise ValueError(f"default {default!r} is not among the precisions offered")
        return self

    def options(self, precision: str) -> Strict | None:
        return getattr(self, precision.replace("-", "_"), None)

    def offered(self) -> list[str]:
        return [p for p in PRECISIONS if self.options(p) is not None]


# One optional options section per precision of the table, named as users write it (`int4-awq`).
Precisions = create_model(
    "Precisions",
    __base__=_PrecisionsBase,
    default=(Literal[NAMES] | None, Field(None, description="used when no precision is asked for (null: fp32)")),
    **{p.name.replace("-", "_"): (p.options | None, Field(None, alias=p.name, description=f"{p.words}: "
                                  "offered when present"))
       for p in PRECISIONS.values()},
)


class Build(Strict):
    workspace_mib: int = Field(1024, ge=1, description="builder workspace (capped by a --target's memory)")
    builder_optimization_level: int = Field(3, ge=0, le=5, description="TensorRT builder optimization level")
    timing_cache: str | None = Field(None, description="a timing-cache file reused across builds (null: none)")
    strip_weights: bool = Field(False, description="build a weight-stripped engine (refit the weights at load)")
    extra_profile_memory: float | None = Field(
        None, ge=0, le=1,
        description="weight memory each optimization profile after the first may add, as a fraction of an "
                    "unconstrained build (TensorRT's extra memory target, a hint): 0 asks the builder to reuse the "
                    "first profile's weights, 1 is TensorRT's default; null: the model family's default (0 for "
                    "LLMs, whose prefill and decode profiles otherwise store GEMM weights twice)")


class Budget(Strict):
    metric: Literal["map50_95", "map50", "top1", "top5", "perplexity", "eps_mse"] = Field(
        description="the task metric the budget is spent on, measured against ground truth (labels, held-out "
                    "text, the true noise) for FP32 and the candidate on the same data")
    max_drop: float | None = Field(None, ge=0, description="largest drop of the metric vs FP32 allowed")
    max_increase_pct: float | None = Field(None, ge=0, description="perplexity: largest increase in percent")
    max_ratio: float | None = Field(None, ge=1, description="eps_mse: largest candidate / FP32 error ratio")

    @model_validator(mode="after")
    def _one_limit(self) -> Budget:
        limits = [v for v in (self.max_drop, self.max_increase_pct, self.max_ratio) if v is not None]
        if len(limits) != 1:
            raise ValueError("give exactly one of max_drop, max_increase_pct or max_ratio")
        if self.max_increase_pct is not None and self.metric != "perplexity":
            raise ValueError("max_increase_pct is for metric perplexity; use max_drop")
        if self.max_ratio is not None and self.metric != "eps_mse":
            raise ValueError("max_ratio is for metric eps_mse (an error); use max_drop")
        if self.metric in ("perplexity", "eps_mse") and self.max_drop is not None:
            raise ValueError(f"{self.metric} grows when accuracy is lost; use "
                             f"{'max_increase_pct' if self.metric == 'perplexity' else 'max_ratio'}")
        return self


class Accuracy(Strict):
    min_cosine: float = Field(0.99, description="per output tensor, candidate vs FP32 on the held-out inputs")
    min_map50_95_vs_fp32: float | None = Field(None, description="detectors: mAP50-95 of the candidate's "
                                               "detections against FP32's; gates only when the recipe has no "
                                               "labels (else a diagnostic)")
    min_top1_agreement: float | None = Field(None, description="classifiers: top-1 agreement with FP32; gates "
                                             "only when the recipe has no labels (else a diagnostic)")
    budget: Budget | None = Field(None, description="the accuracy budget a precision may spend (null: the "
                                  "family's default, docs/tuning.md)")
    budget_by_precision: dict[Literal[NAMES], Budget] | None = Field(
        None, description="a budget per precision (e.g. int8 tighter than int4-awq); wins over budget")


class Tune(Strict):
    enabled: bool = Field(False, description="calibrate runs the search (`orin-trt tune`) for int8 / int4-awq and "
                          "calibrates with its choice")
    target: str = Field("orin-agx-64", description="the Orin whose estimated latency (roofline per node) ranks "
                        "the candidates")
    screen_samples: int = Field(16, ge=1, description="held-out items every candidate is screened on")
    finalists: int = Field(3, ge=1, description="candidates measured on the whole held-out set")
    sensitivity_blocks: int = Field(4, ge=0, description="int8: blocks tried out of INT8 (FP16) when no "
                                    "calibration setting meets the budget (0: none)")
    time_limit_s: float | None = Field(None, gt=0, description="stop trying new candidates after this many seconds")
    strict: bool = Field(False, description="nothing within the budget fails (exit 2) instead of falling back to fp16")


class ProfileRun(Strict):
    warmup: int = Field(3, ge=0, description="untimed runs before timing")
    iterations: int = Field(20, ge=1, description="timed runs per runner")


class LlamaProfileRun(ProfileRun):
    generation_runs: int = Field(3, ge=1, description="timed generations per runner")


class Analyze(Strict):
    context: int | None = Field(None, ge=1, description="KV-cache length to plan for (null: the profiles' longest)")


class Empty(Strict):
    """A section this family has no keys for."""


# ---- images (yolo, vit) ---------------------------------------------------------------------------------
class ImagePreprocess(Strict):
    input: str = Field("images", description="the input tensor fed with the image")
    size: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, min_length=2, max_length=2, description="[height, width] fed to the model (YOLO: from imgsz)")
    resize: Literal["letterbox", "resize", "resize_crop"] = Field("letterbox", description="how images are sized")
    pad_value: int | None = Field(None, ge=0, le=255, description="letterbox border value (114 when null)")
    resize_shorter: int | None = Field(None, ge=1, description="resize_crop: shorter side before the crop")
    color: Literal["RGB", "BGR"] = Field("RGB", description="channel order fed to the model")
    layout: Literal["NCHW", "NHWC"] = Field("NCHW", description="tensor layout fed to the model")
    scale: float = Field(1 / 255, description="multiplies the 0..255 pixel values")
    mean: list[float] = Field([0.0, 0.0, 0.0], min_length=3, max_length=3, description="subtracted after scaling")
    std: list[float] = Field([1.0, 1.0, 1.0], min_length=3, max_length=3, description="divides after the mean")


def _one_source(section: Any) -> Any:
    """`data:` (a dataset yaml) replaces `images:`; an images folder given as well is a contradiction."""
    if section.data and section.images not in (None, BUILTIN):
        raise ValueError("give images (a folder) or data (a dataset yaml), not both")
    return section


class ImageCalibration(Strict):
    images: str | None = Field(BUILTIN, description="an image folder (any depth, e.g. <class>/<image>), or "
                               "builtin (a generated offline set)")
    data: str | None = Field(None, description="an ultralytics dataset yaml instead of images (YOLO)")
    split: str | None = Field(None, description="data: the split to calibrate on (null: calib if it has one, "
                              "else train)")
    max_samples: int | None = Field(None, ge=1, description="images used at most (null: all)")
    recommended_min: int = Field(0, ge=0, description="fewer images than this: one warning when calibrating")

    @model_validator(mode="after")
    def _images_or_data(self) -> ImageCalibration:
        return _one_source(self)


class YoloSource(Strict):
    onnx: str | None = Field(None, description="your own ONNX instead (relative to the recipe): export is skipped, the "
                             "file is checked by onnx.checker and ONNX Runtime, its metadata kept")
    checkpoint: str | None = Field(None, description="a trained .pt (relative to the recipe), or a name "
                                   "ultralytics resolves (yolo11n.pt)")
    config: str | None = Field(None, description="model yaml built with RANDOM weights; used only when no "
                               "checkpoint is given, or the built-in default checkpoint cannot be had offline")


class YoloPostprocess(Strict):
    type: Literal["yolo_detect"] = Field("yolo_detect", description="the manifest's decoder name")
    output: str = Field("output0", description="the output tensor holding boxes and scores")
    conf_threshold: float = Field(0.25, ge=0, le=1, description="deployment score threshold")
    iou_threshold: float = Field(0.7, ge=0, le=1, description="NMS IoU threshold")
    max_detections: int = Field(300, ge=1, description="boxes kept after NMS")


class YoloEval(Strict):
    images: str | None = Field(BUILTIN, description="held-out image folder, or builtin (ultralytics' bus / zidane)")
    data: str | None = Field(None, description="an ultralytics dataset yaml: its val split is held out")
    coco: str | None = Field(None, description="a COCO json of the held-out images (`images` is their folder): "
                             "the ground truth for mAP")
    split: str = Field("val", description="data: the held-out split")
    max_samples: int | None = Field(None, ge=1, description="held-out images used at most (null: all)")
    task_conf_threshold: float | None = Field(None, ge=0, le=1, description="score threshold of the detection "
                                              "agreement (null: postprocess.conf_threshold)")

    @model_validator(mode="after")
    def _images_or_data(self) -> YoloEval:
        if self.coco and (self.data or self.images in (None, BUILTIN)):
            raise ValueError("coco needs images (the folder its file_names are in), and no data")
        return _one_source(self)


class HfSource(Strict):
    onnx: str | None = Field(None, description="your own ONNX instead (relative to the recipe): export is skipped, the "
                             "file is checked by onnx.checker and ONNX Runtime, its metadata kept")
    pretrained: str | None = Field(None, description="a local from_pretrained folder (relative to the recipe)")
    config: dict[str, Any] | None = Field(None, description="the model's config, built with RANDOM weights when "
                                          "no pretrained folder is given (or the built-in default is absent)")
    seed: int = Field(0, description="seed of the random weights")


class VitPostprocess(Strict):
    type: Literal["classification"] = Field("classification", description="the manifest's decoder name")
    output: str = Field("logits", description="the output tensor holding the logits")
    top_k: int = Field(5, ge=1, description="classes a consumer reports")


class VitEval(Strict):
    images: str | None = Field(BUILTIN, description="held-out image folder, or builtin (crops of held-out photos)")
    labelled: str | None = Field(None, description="<class>/<image> folder: adds top-1 / top-5 accuracy")
    max_samples: int | None = Field(None, ge=1, description="labelled images used at most (null: all)")


# ---- unet -----------------------------------------------------------------------------------------------
class UnetSource(HfSource):
    scheduler: dict[str, Any] | None = Field(None, description="DDIM scheduler config when the folder has none")


class UnetPreprocess(Strict):
    vae_scale_factor: int = Field(8, ge=1, description="latent H, W = image H, W / this")


class UnetCalibration(Strict):
    runs: int = Field(4, ge=1, description="guided sampling runs recorded in PyTorch")
    steps: int = Field(10, ge=1, description="DDIM steps per run")
    guidance_scale: float = Field(7.5, description="classifier-free guidance of the recorded runs")
    embeddings: str = Field(BUILTIN, description="an .npz with cond [N, seq, dim] (+ uncond), or builtin")
    max_samples: int | None = Field(None, ge=1, description="recorded UNet inputs used at most (null: all)")


class UnetEval(Strict):
    points: int = Field(5, ge=1, description="held-out noised latents over the schedule")
    timesteps: list[int] | None = Field(None, description="explicit timesteps instead of points")
    embeddings: str = Field(BUILTIN, description="held-out text embeddings: an .npz, or builtin")
    latents: str | None = Field(None, description="held-out noised latents of your data, the ground truth: an "
                                ".npz with sample, timestep, encoder_hidden_states and noise (the added eps); null: "
                                "x0 drawn from N(0, 1) at `points` timesteps (a stand-in far from a trained "
                                "model's data)")
    loop_steps: int = Field(10, ge=1, description="steps of the closed-loop denoising check")
    guidance_scale: float = Field(7.5, description="guidance of the closed-loop check")


# ---- llama ----------------------------------------------------------------------------------------------
class LlamaSource(HfSource):
    tokenizer: str | None = Field(None, description="a tokenizer folder, builtin, or null (the pretrained "
                                  "folder's, else the built-in byte-level BPE)")


class LlamaCalibration(Strict):
    text: str = Field(BUILTIN, description="a text file, or a folder of text files (any extension), or builtin")
    sequence_length: int = Field(64, ge=1, description="tokens per calibration sample")
    max_samples: int = Field(32, ge=1, description="calibration windows used at most")


class LlamaEval(Strict):
    text: str = Field(BUILTIN, description="held-out text: a file, a folder of text files, or builtin")
    sequence_length: int = Field(32, ge=1, description="tokens per held-out window (parity, accuracy)")
    samples: int = Field(2, ge=1, description="held-out windows")
    perplexity_window: int = Field(128, ge=1, description="tokens per perplexity window (at most max_prompt)")
    prompt_tokens: int = Field(16, ge=1, description="prompt of the timed generations")
    generate_tokens: int = Field(32, ge=1, description="tokens generated per timed generation")


class EdgeLlm(Strict):
    export_args: list[str] = Field(default_factory=list, description="extra arguments of tensorrt-edgellm-export "
                                   "(e.g. --fp8-embedding)")
    quantize_samples: int = Field(512, ge=1, description="calibration samples of tensorrt-edgellm-quantize (int8, "
                                  "int4-awq; on a GPU host)")
    warmup: int = Field(10, ge=0, description="llm_inference --warmup runs before the profiled ones")


class Llm(Strict):
    """The KV-cache profiles are derived from these and the model's config.json (layers, KV heads, head_dim)."""

    max_batch: int = Field(1, ge=1, description="sequences per step")
    max_prompt: int = Field(128, ge=1, description="longest prompt of one prefill")
    max_context: int | None = Field(None, ge=2, description="prompt + generated tokens (null: the config's "
                                    "max_position_embeddings)")
    opt_prompt: int | None = Field(None, ge=1, description="prompt length TensorRT tunes for (null: max_prompt / 2)")
    opt_context: int | None = Field(None, ge=2, description="context TensorRT tunes decode for (null: max_context / 2)")
    cache_dtype: Literal["auto", "float16", "float32"] = Field(
        "auto", description="dtype of the KV-cache inputs / outputs (auto: float32 for fp32 engines, float16 "
        "for fp16 / int8 / int4)")
    backend: Literal["native", "edgellm"] = Field("native", description="native: orin-trt's own engine (every "
                                                  "JetPack); edgellm: NVIDIA TensorRT Edge-LLM's exporter, "
                                                  "llm_build and runtime (JetPack 7.2, docs/llm.md)")
    edgellm: EdgeLlm = Field(default_factory=EdgeLlm, description="options of the edgellm backend")


# ---- the families ---------------------------------------------------------------------------------------
class RecipeBase(Strict):
    name: str = Field(description="the model's name: engines/<name>/, reports, history")
    family: str = Field(description="the adapter: yolo, vit, unet or llama")
    description: str = Field("", description="one line for people")
    export: Export = Field(default_factory=Export)
    inputs: dict[str, InputSpec] = Field(default_factory=dict, description="min / opt / max shape per input")
    profiles: list[Profile] | None = Field(None, description="several optimization profiles (null: one, from "
                                           "inputs)")
    precisions: Precisions = Field(default_factory=lambda: Precisions(fp32=Fp32Options()))  # type: ignore[valid-type]
    build: Build = Field(default_factory=Build)
    accuracy: Accuracy = Field(default_factory=Accuracy)
    tune: Tune = Field(default_factory=Tune)
    profile: ProfileRun = Field(default_factory=ProfileRun)
    analyze: Analyze = Field(default_factory=Analyze)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError(f"{v!r} must be letters, digits, '.', '_' or '-' (it names folders)")
        return v


class YoloRecipe(RecipeBase):
    family: Literal["yolo"] = Field(description="an ultralytics YOLO detector")
    imgsz: int | list[int] | None = Field(None, description="image size, once: sets the input shapes and "
                                          "preprocess.size (an int or [height, width])")
    batch: Batch = Field(default_factory=Batch, description="batch range of the derived input shapes")
    source: YoloSource = Field(default_factory=YoloSource)
    export: YoloExport = Field(default_factory=YoloExport)
    preprocess: ImagePreprocess = Field(default_factory=ImagePreprocess)
    postprocess: YoloPostprocess = Field(default_factory=YoloPostprocess)
    calibration: ImageCalibration = Field(default_factory=ImageCalibration)
    eval: YoloEval = Field(default_factory=YoloEval)


class VitRecipe(RecipeBase):
    family: Literal["vit"] = Field(description="a transformers ViTForImageClassification")
    export: TorchExport = Field(default_factory=TorchExport)
    batch: Batch = Field(default_factory=lambda: Batch(max=8), description="batch range of the input shape "
                         "derived from the model's image_size (when inputs is not given)")
    source: HfSource = Field(default_factory=HfSource)
    preprocess: ImagePreprocess = Field(default_factory=lambda: ImagePreprocess(input="pixel_values"))
    postprocess: VitPostprocess = Field(default_factory=VitPostprocess)
    calibration: ImageCalibration = Field(default_factory=ImageCalibration)
    eval: VitEval = Field(default_factory=VitEval)


class UnetRecipe(RecipeBase):
    family: Literal["unet"] = Field(description="a diffusers UNet2DConditionModel")
    export: TorchExport = Field(default_factory=TorchExport)
    source: UnetSource = Field(default_factory=UnetSource)
    preprocess: UnetPreprocess = Field(default_factory=UnetPreprocess)
    postprocess: Empty = Field(default_factory=Empty)
    calibration: UnetCalibration = Field(default_factory=UnetCalibration)
    eval: UnetEval = Field(default_factory=UnetEval)


class LlamaRecipe(RecipeBase):
    family: Literal["llama"] = Field(description="a transformers LlamaForCausalLM with a KV cache")
    source: LlamaSource = Field(default_factory=LlamaSource)
    export: LlamaExport = Field(default_factory=LlamaExport)
    profile: LlamaProfileRun = Field(default_factory=LlamaProfileRun)
    llm: Llm = Field(default_factory=Llm)
    preprocess: Empty = Field(default_factory=Empty)
    postprocess: Empty = Field(default_factory=Empty)
    calibration: LlamaCalibration = Field(default_factory=LlamaCalibration)
    eval: LlamaEval = Field(default_factory=LlamaEval)


FAMILY_SCHEMAS: dict[str, type[RecipeBase]] = {
    "yolo": YoloRecipe, "vit": VitRecipe, "unet": UnetRecipe, "llama": LlamaRecipe,
}
# The order keys are documented in (and `orin-trt recipe` prints in).
KEY_ORDER = ("base", "name", "family", "description", "imgsz", "batch", "source", "export", "inputs", "profiles",
             "llm", "preprocess", "postprocess", "calibration", "eval", "precisions", "build", "accuracy",
             "tune", "profile", "analyze")


# ---- walking the models (error hints, docs, the coverage test) ------------------------------------------
def model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional / Union / Annotated), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = model_in(arg)
            if found is not None:
                return found
    return None


def mapping_value_model(annotation: Any) -> type[BaseModel] | None:
    """`dict[str, Model]` -> Model; `list[Model]` -> Model."""
    for arg in [annotation, *typing.get_args(annotation)]:
        if typing.get_origin(arg) in (dict, list):
            return model_in(typing.get_args(arg)[-1])
    return None


def keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def field_of(model: type[BaseModel], key: str) -> Any:
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f
    return None


class _DictOf:
    """Marker: the next path element is a user key of a dict[str, Model]."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model


def _walk_model(model: Any, path: tuple[Any, ...]) -> type[BaseModel] | None:
    for key in path:
        if isinstance(model, _DictOf):
            model = model.model
            continue
        if model is None or isinstance(key, int):
            continue
        f = field_of(model, key)
        if f is None:
            return None
        inner = model_in(f.annotation)
        if inner is not None:
            model = inner
            continue
        value = mapping_value_model(f.annotation)
        origin = [typing.get_origin(a) for a in [f.annotation, *typing.get_args(f.annotation)]]
        model = _DictOf(value) if value is not None and dict in origin else value
    return model if isinstance(model, type) else None


# ---- one-line errors ------------------------------------------------------------------------------------
def _key_path(loc: tuple[Any, ...], data: Any, keep_last: bool) -> list[Any]:
    """The error's location as keys of the user's data (pydantic adds union / validator tags)."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif keep_last and i == len(loc) - 1 and isinstance(part, str):
            out.append(part)
    return out


def _dotted(path: list[Any]) -> str:
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "(top level)"


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


# Keys of earlier versions, and where their values live now.
RENAMED = {"keep_fp32_nodes": "keep_out.nodes", "keep_fp32_op_types": "keep_out.op_types",
           "exclude_nodes": "keep_out.nodes", "exclude_op_types": "keep_out.op_types",
           "kept_out_reason": "keep_out.reason"}


def one_error(err: dict[str, Any], data: dict[str, Any], schema: type[BaseModel]) -> str:
    kind = err["type"]
    path = _key_path(tuple(err["loc"]), data, keep_last=kind in ("extra_forbidden", "missing"))
    where = _dotted(path)
    if kind == "extra_forbidden" and path and path[-1] in RENAMED:
        return f"{where}: renamed: write {RENAMED[path[-1]]} (one vocabulary for every precision)"
    if kind == "extra_forbidden":
        parent = _walk_model(schema, tuple(path[:-1]))
        valid = keys_of(parent) if parent is not None else []
        hint = _hint(str(path[-1]), valid)
        owners = [f for f, m in FAMILY_SCHEMAS.items() if len(path) == 1 and path[0] in m.model_fields]
        if owners and not hint:
            return f"{where}: unknown key for family {data.get('family')} (a key of {', '.join(owners)} recipes)"
        return f"{where}: unknown key{hint}"
    if kind == "missing":
        return f"{where}: required key missing"
    got = err.get("input")
    message = err["msg"]
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        return f"{where}: {got!r} is not one of {', '.join(choices)}{_hint(str(got), choices)}"
    message = message.removeprefix("Value error, ")
    shown = repr(got)
    return f"{where}: {message} (got {shown if len(shown) < 60 else shown[:57] + '...'})"


def explain(error: ValidationError, data: dict[str, Any], schema: type[BaseModel]) -> str:
    # A misspelled key also makes the key it meant missing: the misspelling is the cause, so it comes first.
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = one_error(errors[0], data, schema)
    return first if len(errors) == 1 else f"{first}; and {len(errors) - 1} more problem(s)"


def family_schema(family: Any) -> type[RecipeBase]:
    if family not in FAMILY_SCHEMAS:
        raise ValueError(f"family: {family!r} is not a model family ({', '.join(FAMILY_SCHEMAS)})"
                         f"{_hint(str(family), list(FAMILY_SCHEMAS))}")
    return FAMILY_SCHEMAS[family]

