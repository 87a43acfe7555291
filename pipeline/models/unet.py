"""Diffusion UNet (diffusers UNet2DConditionModel): inputs `sample`, `timestep`, `encoder_hidden_states`.

Calibration samples are recorded from short classifier-free-guided sampling runs with a diffusers
scheduler (so they cover the whole denoising schedule); accuracy is the noise prediction per timestep
and the final latent of a short denoising loop run on each runner, against FP32's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifacts import atomic_dir, read_json, sha256_json, write_json
from ..core.log import log, progress, warn
from ..errors import PipelineError
from ..processing.comparison import compare
from ..recipe.loader import Recipe
from .base import DataSet, ExportResult, Feed, ModelAdapter, SourceInfo
from .hf_source import HfSource, announce_random, read_json_file, resolve_source, source_info
from .torch_export import choose_dtype, export_module, float_io, torch_outputs

INPUTS = ("sample", "timestep", "encoder_hidden_states")
OUTPUT = "out_sample"
BUILTIN = "builtin"
EVAL_SEED = 10_000  # held-out noise and embeddings come from seeds calibration never uses

Infer = Callable[[Feed], np.ndarray]


class UnetAdapter(ModelAdapter):
    family = "unet"
    tools = ("torch", "diffusers")

    # ---- source -------------------------------------------------------------------------------------
    def _source(self, recipe: Recipe) -> HfSource:
        return resolve_source(recipe, subfolder="unet")

    def source(self, recipe: Recipe) -> SourceInfo:
        info = source_info(self._source(recipe))
        info.description["scheduler"] = self.scheduler_config(recipe)
        return info

    def scheduler_config(self, recipe: Recipe) -> dict[str, Any]:
        """A pipeline folder's scheduler/scheduler_config.json, else the recipe's source.scheduler."""
        source = self._source(recipe)
        if source.folder is not None:
            path = source.folder.parent / "scheduler" / "scheduler_config.json"
            if path.exists():
                return {k: v for k, v in read_json_file(path).items() if not k.startswith("_")}
        return dict(recipe.section("source").get("scheduler") or {})

    def _scheduler(self, recipe: Recipe, steps: int) -> Any:
        # DDIM with eta 0: deterministic, so FP32 and candidate loops differ only by the model's error.
        from diffusers import DDIMScheduler

        sched = DDIMScheduler.from_config(self.scheduler_config(recipe))
        sched.set_timesteps(steps)
        return sched

    def _load(self, source: HfSource, dtype: str = "float32") -> Any:
        from diffusers import UNet2DConditionModel

        return source.load(UNet2DConditionModel, lambda c: UNet2DConditionModel(**c), dtype)

    # ---- shapes -------------------------------------------------------------------------------------
    def _shapes(self, recipe: Recipe) -> tuple[list[int], list[int]]:
        """The first profile's opt shapes of `sample` and `encoder_hidden_states`, checked against the model."""
        shapes = recipe.profiles[0]["shapes"]
        missing = [n for n in INPUTS if n not in shapes]
        if missing:
            raise PipelineError(f"recipe {recipe.path}: the UNet needs inputs {', '.join(INPUTS)} "
                                f"(missing {', '.join(missing)})")
        sample, text = list(shapes["sample"]["opt"]), list(shapes["encoder_hidden_states"]["opt"])
        config = self._source(recipe).config
        if sample[1] != int(config.get("in_channels", 4)) or text[2] != int(config.get("cross_attention_dim", 1280)):
            raise PipelineError(
                f"recipe {recipe.path}: inputs sample {sample} / encoder_hidden_states {text} do not match the "
                f"model (in_channels {config.get('in_channels', 4)}, cross_attention_dim "
                f"{config.get('cross_attention_dim', 1280)})")
        return sample, text

    def _embeddings(self, recipe: Recipe, section: str, count: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
        """`count` conditional text embeddings and the unconditional one, [seq, dim] each.

        `<section>.embeddings`: an .npz with `cond` [N, seq, dim] (and optionally `uncond` [seq, dim]) saved
        from the real text encoder; `builtin`: seeded Gaussian stand-ins (no text encoder offline)."""
        _, text = self._shapes(recipe)
        spec = recipe.section(section).get("embeddings", BUILTIN)
        rng = np.random.default_rng(seed)
        if spec == BUILTIN:
            uncond = rng.standard_normal(text[1:]).astype(np.float32)
            return [rng.standard_normal(text[1:]).astype(np.float32) for _ in range(count)], uncond
        path = recipe.resolve_path(spec)
        try:
            with np.load(path) as npz:
                cond = np.asarray(npz["cond"], dtype=np.float32)
                uncond = np.asarray(npz["uncond"], dtype=np.float32) if "uncond" in npz else np.zeros_like(cond[0])
        except (OSError, KeyError, ValueError) as e:
            raise PipelineError(f"{section}.embeddings {path}: need an .npz with 'cond' [N, seq, dim] ({e})") from e
        if cond.ndim != 3 or list(cond.shape[1:]) != text[1:]:
            raise PipelineError(f"{section}.embeddings {path}: 'cond' has shape {list(cond.shape)}; the profile "
                                f"wants [N, {text[1]}, {text[2]}]")
        return [cond[i % len(cond)] for i in range(count)], uncond

    @staticmethod
    def _feed(latent: np.ndarray, t: float, uncond: np.ndarray, cond: np.ndarray) -> Feed:
        """One classifier-free-guidance step: batch 2 = [unconditional; conditional]."""
        return {
            "sample": np.concatenate([latent, latent]).astype(np.float32),
            "timestep": np.full((2,), t, dtype=np.float32),
            "encoder_hidden_states": np.stack([uncond, cond]).astype(np.float32),
        }

    # ---- export -------------------------------------------------------------------------------------
    def export(self, recipe: Recipe, onnx_out: Path, feeds: list[Feed]) -> ExportResult:
        import torch

        source = self._source(recipe)
        notes = [] if source.folder else [announce_random("export", "UNet", source)]
        from diffusers import UNet2DConditionModel

        dtype, why = choose_dtype(recipe, lambda: UNet2DConditionModel(**source.config), "UNet")
        notes.append(f"weights exported in {why}")
        unet = self._load(source, dtype)

        class NoisePrediction(torch.nn.Module):
            def __init__(self, unet: Any) -> None:
                super().__init__()
                self.unet = unet  # node names read /unet/down_blocks.<i>/...

            def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any) -> Any:
                return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]

        wrapper = float_io(NoisePrediction(unet).eval(), dtype)
        dynamic = {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                   "encoder_hidden_states": {0: "batch", 1: "sequence"}, OUTPUT: {0: "batch", 2: "height", 3: "width"}}
        opset = int(recipe.section("export").get("opset", 17))
        export_module(wrapper, feeds[0], onnx_out, [OUTPUT], dynamic, opset, metadata={
            "orin_trt.scheduler": json.dumps(self.scheduler_config(recipe)),
            "orin_trt.unet": json.dumps({k: source.config.get(k) for k in
                                         ("in_channels", "out_channels", "cross_attention_dim", "sample_size")}),
        })
        return ExportResult(torch_outputs(wrapper, feeds), source.random_weights, source.describe(), notes)

    # ---- calibration: recorded from sampling runs ---------------------------------------------------
    def _calibration_key(self, recipe: Recipe) -> dict[str, Any]:
        info = self.source(recipe)
        files = [{"file": str(p), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in info.files]
        return {"source": info.description, "files": files, "calibration": recipe.section("calibration"),
                "shapes": self._shapes(recipe)}

    def calibration_set(self, recipe: Recipe, calib_root: Path) -> DataSet:
        cfg = recipe.section("calibration")
        folder = calib_root / recipe.name / "denoise"
        key = sha256_json(self._calibration_key(recipe))
        meta = folder / "meta.json"
        if not (meta.exists() and read_json(meta).get("key") == key):
            self._record(recipe, folder, key)
        count = len(sorted(folder.glob("sample_*.npz")))
        max_samples = int(cfg.get("max_samples", count))
        return DataSet(folder, min(count, max_samples), read_json(meta)["description"])

    def _record(self, recipe: Recipe, folder: Path, key: str) -> None:
        """Run `runs` guided sampling loops of `steps` steps in PyTorch and save every step's UNet input."""
        import torch

        cfg = recipe.section("calibration")
        runs, steps = int(cfg.get("runs", 4)), int(cfg.get("steps", 10))
        guidance = float(cfg.get("guidance_scale", 7.5))
        source = self._source(recipe)
        if source.folder is None:
            announce_random("calibrate", "UNet", source)
        unet = self._load(source)
        sample, _ = self._shapes(recipe)
        conds, uncond = self._embeddings(recipe, "calibration", runs, seed=1)
        if cfg.get("embeddings", BUILTIN) == BUILTIN:
            warn("calibrate", "calibration.embeddings is builtin: Gaussian stand-ins for text embeddings (no text "
                 "encoder offline); pass an .npz of real prompt embeddings for production scales")
        t0 = time.perf_counter()
        with atomic_dir(folder) as tmp:
            rng = np.random.default_rng(2)
            for run in progress(range(runs), "calibration sampling runs", runs):
                latents = rng.standard_normal([1, *sample[1:]]).astype(np.float32)

                def infer(feed: Feed) -> np.ndarray:
                    with torch.no_grad():
                        return unet(*(torch.from_numpy(a) for a in feed.values()), return_dict=False)[0].numpy()

                def record(step: int, feed: Feed, run: int = run) -> None:
                    np.savez(tmp / f"sample_{run:03d}_{step:03d}.npz", **feed)

                self.denoise(recipe, infer, latents, uncond, conds[run], steps, guidance, on_step=record)
            description = (f"{runs} sampling runs x {steps} DDIM steps (guidance {guidance}) recorded in PyTorch from "
                           f"{source.describe()}; embeddings {cfg.get('embeddings', BUILTIN)}")
            write_json(tmp / "meta.json", {"key": key, "description": description, "runs": runs, "steps": steps})
        log("calibrate", f"recorded {runs * steps} UNet inputs into {folder} in {time.perf_counter() - t0:.1f} s")

    def calibration_feeds(self, recipe: Recipe, data: DataSet) -> list[Feed]:
        files = sorted(data.path.glob("sample_*.npz"))
        # Evenly over the recorded runs and steps, so a cap keeps the spread over the schedule.
        picks = np.linspace(0, len(files) - 1, data.count).round().astype(int) if data.count else []
        feeds = []
        for i in picks:
            with np.load(files[i]) as npz:
                feeds.append({n: npz[n] for n in INPUTS})
        return feeds

    # ---- the denoising loop -------------------------------------------------------------------------
    def denoise(self, recipe: Recipe, infer: Infer, latents: np.ndarray, uncond: np.ndarray, cond: np.ndarray,
                steps: int, guidance: float, on_step: Callable[[int, Feed], None] | None = None) -> np.ndarray:
        """Classifier-free-guided DDIM sampling from `latents` ([1, C, H, W]); returns the final latents."""
        import torch

        sched = self._scheduler(recipe, steps)
        x = torch.from_numpy(latents) * sched.init_noise_sigma
        for step, t in enumerate(sched.timesteps):
            model_in = sched.scale_model_input(x, t).numpy()
            feed = self._feed(model_in, float(t), uncond, cond)
            if on_step:
                on_step(step, feed)
            eps = infer(feed)
            guided = eps[:1] + guidance * (eps[1:] - eps[:1])
            x = sched.step(torch.from_numpy(np.ascontiguousarray(guided)), t, x).prev_sample
        return x.numpy()

    # ---- held-out inputs and accuracy ---------------------------------------------------------------
    def eval_timesteps(self, recipe: Recipe) -> list[int]:
        """One held-out input per timestep: eval.timesteps, else a DDIM schedule of eval.points steps."""
        explicit = recipe.section("eval").get("timesteps")
        if explicit:
            return [int(t) for t in explicit]
        return [int(t) for t in self._scheduler(recipe, int(recipe.section("eval").get("points", 5))).timesteps]

    def eval_feeds(self, recipe: Recipe) -> list[Feed]:
        """Noised held-out latents at each evaluation timestep (x_t = sqrt(a) x0 + sqrt(1 - a) noise)."""
        return self._eval_set(recipe)[0]

    def _eval_set(self, recipe: Recipe) -> tuple[list[Feed], list[np.ndarray]]:
        """The held-out feeds and, for each, the noise that was added: the epsilon target."""
        sample, _ = self._shapes(recipe)
        timesteps = self.eval_timesteps(recipe)
        conds, uncond = self._embeddings(recipe, "eval", len(timesteps), seed=EVAL_SEED)
        alphas = np.asarray(self._scheduler(recipe, 1).alphas_cumprod, dtype=np.float64)
        rng = np.random.default_rng(EVAL_SEED + 1)
        feeds, noises = [], []
        for t, cond in zip(timesteps, conds, strict=True):
            x0, noise = rng.standard_normal([2, 1, *sample[1:]])
            xt = math.sqrt(alphas[t]) * x0 + math.sqrt(1 - alphas[t]) * noise
            feeds.append(self._feed(xt.astype(np.float32), float(t), uncond, cond))
            noises.append(noise.astype(np.float32))
        return feeds, noises

    def ground_truth(self, recipe: Recipe, model: Path, samples: int | None = None) -> dict[str, Any] | None:
        """The training objective as ground truth: mean squared error of the predicted noise against the
        noise added, over `eval.latents` (held-out latents of the data) or, without them, over latents
        drawn from N(0, 1) (both halves of each guidance batch)."""
        from ..runners import run
        from ..runners.onnxrt import onnxrt_runner
        from .image_data import spread

        if recipe.section("eval").get("latents"):
            return self._latents_truth(recipe, model, samples)
        feeds, noises = self._eval_set(recipe)
        chosen = spread(list(range(len(feeds))), samples) if samples else list(range(len(feeds)))  # across the schedule
        with onnxrt_runner(model) as runner:
            preds = [o[0] for o in run(runner, [feeds[i] for i in chosen], [OUTPUT])]
        errors = [float(np.mean((np.asarray(p, np.float64) - noises[i]) ** 2)) for p, i in zip(preds, chosen, strict=True)]
        timesteps = self.eval_timesteps(recipe)
        steps = [timesteps[i] for i in chosen]
        return {"reference": f"the added noise ({len(errors)} held-out noised latents, timesteps "
                             f"{', '.join(map(str, steps))})", "samples": len(errors),
                "metrics": {"eps_mse": float(np.mean(errors)),
                            **{f"eps_mse_t{t}": e for t, e in zip(steps, errors, strict=True)}}}

    def _latents_truth(self, recipe: Recipe, model: Path, samples: int | None) -> dict[str, Any]:
        """Epsilon error over the recipe's held-out latents, `samples` of them spread over the set (its
        timesteps), in guidance-sized batches of two."""
        from ..evaluation.denoise import by_timestep, load_heldout
        from ..runners import run
        from ..runners.onnxrt import onnxrt_runner
        from .image_data import spread

        path = recipe.resolve_path(recipe.section("eval")["latents"])
        held = load_heldout(path)
        sample, text = self._shapes(recipe)
        if list(held["sample"].shape[1:]) != sample[1:] or list(held["encoder_hidden_states"].shape[1:]) != text[1:]:
            raise PipelineError(f"eval.latents {path}: sample {list(held['sample'].shape)} / encoder_hidden_states "
                                f"{list(held['encoder_hidden_states'].shape)} do not fit the profile's "
                                f"{sample[1:]} / {text[1:]}")
        everything = list(range(len(held["sample"])))
        chosen = np.asarray(spread(everything, samples) if samples else everything)
        batches = [chosen[i : i + 2] for i in range(0, len(chosen), 2)]
        feeds = [{"sample": held["sample"][b].astype(np.float32), "timestep": held["timestep"][b].astype(np.float32),
                  "encoder_hidden_states": held["encoder_hidden_states"][b].astype(np.float32)} for b in batches]
        with onnxrt_runner(model) as runner:
            preds = np.concatenate([np.asarray(o[0], np.float64) for o in run(runner, feeds, [OUTPUT])])
        errors = ((preds - held["noise"][chosen]) ** 2).reshape(len(chosen), -1).mean(axis=1)
        per_t = by_timestep(errors, np.asarray(held["timestep"])[chosen])
        return {"reference": f"the added noise ({len(chosen)} held-out noised latents of {path.name}, timesteps "
                             f"{', '.join(map(str, per_t))})", "samples": len(chosen),
                "metrics": {"eps_mse": float(errors.mean()), **{f"eps_mse_t{t}": e for t, e in per_t.items()}}}

    def task_accuracy(self, recipe, output_names, reference, candidate) -> dict[str, Any]:
        out = output_names.index(OUTPUT)
        result: dict[str, Any] = {"metric": "noise prediction against FP32 per timestep (cosine, SNR dB)"}
        per_t = [(t, compare(r[out], c[out])) for t, r, c in
                 zip(self.eval_timesteps(recipe), reference, candidate, strict=True)]
        for t, m in per_t:
            result[f"t={t} cosine"] = m["cosine"]
            result[f"t={t} snr_db"] = m["snr_db"]
        result["worst_cosine"] = min(m["cosine"] for _, m in per_t)
        result["worst_snr_db"] = min(m["snr_db"] for _, m in per_t)
        return result

    def runtime_metrics(self, recipe: Recipe, models: dict[str, Path], manifest: dict[str, Any]) -> dict[str, Any]:
        """A short guided DDIM loop on every runner from the same noise; PSNR of the final latents vs FP32."""
        from ..runners import runner_for

        cfg = recipe.section("eval")
        steps, guidance = int(cfg.get("loop_steps", 10)), float(cfg.get("guidance_scale", 7.5))
        sample, _ = self._shapes(recipe)
        conds, uncond = self._embeddings(recipe, "eval", 1, seed=EVAL_SEED)
        start = np.random.default_rng(EVAL_SEED + 2).standard_normal([1, *sample[1:]]).astype(np.float32)
        finals: dict[str, np.ndarray] = {}
        by_runner: dict[str, dict[str, Any]] = {}
        for name, path in models.items():
            t0 = time.perf_counter()
            with runner_for(path).open(path) as runner:
                finals[name] = self.denoise(
                    recipe, lambda f, r=runner: np.asarray(r.infer(feed_dict=f)[OUTPUT]),
                    start, uncond, conds[0], steps, guidance)
            by_runner[name] = {"loop_seconds": round(time.perf_counter() - t0, 3)}
        reference = finals[next(iter(models))]
        for name, final in finals.items():
            by_runner[name].update(latent_psnr_db=psnr_db(reference, final),
                                   latent_cosine=compare(reference, final)["cosine"])
        return {"metric": f"final latent after a {steps}-step DDIM loop (guidance {guidance}) vs the FP32 loop",
                "by_runner": by_runner}

    # ---- the manifest -------------------------------------------------------------------------------
    def deploy_info(self, recipe: Recipe, onnx_metadata: dict[str, str]) -> dict[str, Any]:
        scheduler = json.loads(onnx_metadata.get("orin_trt.scheduler", "{}"))
        unet = json.loads(onnx_metadata.get("orin_trt.unet", "{}"))
        pre = {
            "type": "latent_denoising_step",
            "inputs": {
                "sample": "[batch, C, H, W] latents after scheduler.scale_model_input; batch = 2 x images for "
                          "classifier-free guidance ([unconditional; conditional])",
                "timestep": "[batch] float32, the scheduler's current timestep repeated per batch row",
                "encoder_hidden_states": "[batch, sequence, dim] text-encoder hidden states, same row order",
            },
            "latent_channels": unet.get("in_channels"),
            **recipe.section("preprocess"),
        }
        post = {
            "type": "noise_prediction",
            "output": OUTPUT,
            "layout": "[batch, C, H, W]; the scheduler's model output (prediction_type)",
            "prediction_type": scheduler.get("prediction_type", "epsilon"),
            "scheduler": scheduler,
            **recipe.section("postprocess"),
        }
        return {"preprocess": pre, "postprocess": post}


def psnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Peak signal-to-noise ratio with the reference's value range as the peak."""
    ref, cand = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    mse = float(np.mean((ref - cand) ** 2))
    peak = float(ref.max() - ref.min())
    if mse == 0:
        return math.inf
    return 10 * math.log10(peak * peak / mse) if peak > 0 else -math.inf
