"""Host -> Orin bundles: TensorRT cannot cross-compile for a Jetson, so a host that is not the target
Orin runs export and calibrate and writes a bundle; `make engine` on the Orin builds from it.

engines/<model>/<precision>/bundle/
    bundle.json        schema orin-trt/bundle@1: target, files with sha256, the build plan's options
    model.onnx         the calibrated ONNX (+ model.onnx.data for >2 GB models)
    calibrate.json     the calibrate report the manifest is written from
    recipe.yaml        the recipe as the host resolved it
    calibration.cache  DLA INT8 only: the TensorRT calibration cache from the QDQ translation
    model.dla.onnx     DLA INT8 only: the QDQ-free ONNX that cache belongs to (TensorRT 10.x implicit INT8)
    build_commands.sh  the same build as `trtexec` / `polygraphy convert` command lines (pipeline/trt/commandlines.py)

Reading a bundle needs no torch (checked by tests/targets/test_bundle.py in a fresh interpreter).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..core.artifacts import Layout, atomic_dir, onnx_files, read_json, sha256_file, write_json
from ..errors import PipelineError
from ..recipe.loader import Recipe, load_recipe
from ..trt.commandlines import DLA_ONNX, equivalents, render_script
from .plan import BuildPlan, plan_from_options, translate_for_dla

SCHEMA = "orin-trt/bundle@1"
JETPACK6_TRT = "10.3.0.30"  # TensorRT of JetPack 6.1 / 6.2 (L4T 36.4): the header of a host-made DLA cache
MANIFEST_NAME = "bundle.json"
COMMANDS_NAME = "build_commands.sh"


def bundle_dir(layout: Layout, precision: str) -> Path:
    return layout.precision_dir(precision) / "bundle"


def same_module(a: str, b: str) -> bool:
    """Engines depend on the GPU and TensorRT, not on clocks: a MAXN SUPER board builds for its base SKU."""
    return a.removesuffix("-super") == b.removesuffix("-super")


def host_can_build_for(target: str | None, root: Path = Path("/")) -> bool:
    """True when this machine may build the engine itself: no Orin target, or it is that Orin."""
    if target is None:
        return True
    from ..platform.host import detect

    here = detect(root).target
    return here is not None and same_module(here, target)


@dataclass(frozen=True)
class Bundle:
    path: Path
    meta: dict[str, Any]

    @property
    def onnx(self) -> Path:
        return self.path / "model.onnx"

    @property
    def target(self) -> str:
        return self.meta["target"]

    @property
    def precision(self) -> str:
        return self.meta["precision"]

    @property
    def calibration_cache(self) -> Path | None:
        name = self.meta["build"].get("calibration_cache")
        return self.path / name if name else None

    def recipe(self) -> Recipe:
        return load_recipe(str(self.path / "recipe.yaml"))


def write_bundle(recipe: Recipe, layout: Layout, plan: BuildPlan, calibration_cache: Path | None = None,
                 onnx_path: Path | None = None, dla_onnx: Path | None = None) -> Bundle:
    """Copy what the Orin build needs into the bundle folder; the folder appears complete or not at all."""
    precision, target, build = plan.precision, plan.target, plan.options()
    onnx_path = Path(onnx_path or layout.calibrated_onnx(precision))
    report = layout.calibrate_report(precision)
    for needed in (onnx_path, report):
        if not needed.exists():
            raise PipelineError(f"{needed}: missing; run calibrate for {recipe.name} {precision} first")
    dest = bundle_dir(layout, precision)
    with atomic_dir(dest) as tmp:
        for src in onnx_files(onnx_path):
            shutil.copy2(src, tmp / src.name.replace(onnx_path.name, "model.onnx", 1))
        shutil.copy2(report, tmp / "calibrate.json")
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe.raw, sort_keys=False), encoding="utf-8")
        if calibration_cache is not None:
            shutil.copy2(calibration_cache, tmp / "calibration.cache")
        if dla_onnx is not None:
            shutil.copy2(dla_onnx, tmp / DLA_ONNX)
        (tmp / COMMANDS_NAME).write_text(render_script(
            equivalents(recipe.profiles, build, precision),
            f"{recipe.name} {precision} for {target}, orin-trt {__version__}", {"target": target, **build}),
            encoding="utf-8")
        files = sorted(p.name for p in tmp.iterdir())
        meta = {
            "schema": SCHEMA,
            "model": recipe.name,
            "family": recipe.family,
            "precision": precision,
            "target": target,
            "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pipeline_version": __version__,
            "files": {name: {"bytes": (tmp / name).stat().st_size, "sha256": sha256_file(tmp / name)}
                      for name in files},
            "build": {**build, "calibration_cache": "calibration.cache" if calibration_cache else None},
        }
        write_json(tmp / MANIFEST_NAME, meta)
    return Bundle(dest, meta)


def read_bundle(path: Path, running_target: str | None = None) -> Bundle:
    """Check a bundle (schema, every file's sha256, the target it was made for) before building from it."""
    path = Path(path)
    meta_path = path / MANIFEST_NAME
    if not meta_path.exists():
        raise PipelineError(f"{path}: not a bundle (no {MANIFEST_NAME})")
    meta = read_json(meta_path)
    if meta.get("schema") != SCHEMA:
        raise PipelineError(f"{meta_path}: schema {meta.get('schema')!r}, expected {SCHEMA}")
    for name, rec in meta["files"].items():
        f = path / name
        if not f.exists():
            raise PipelineError(f"{f}: listed in {meta_path} but missing (copy the whole bundle folder)")
        if sha256_file(f) != rec["sha256"]:
            raise PipelineError(f"{f}: sha256 differs from {meta_path} (a partial or edited copy?)")
    if running_target is not None and not same_module(meta["target"], running_target):
        raise PipelineError(
            f"{path}: bundle made for {meta['target']}, but this Jetson is {running_target}; "
            f"re-run `make engine TARGET={running_target}` on the host"
        )
    return Bundle(path, meta)


def install_bundle(bundle: Bundle, layout: Layout) -> None:
    """Put the bundle's calibrated ONNX and calibrate report where the build stage reads them."""
    precision = bundle.precision
    onnx_dst = layout.calibrated_onnx(precision)
    for src in onnx_files(bundle.onnx):
        dst = onnx_dst.with_name(src.name.replace("model.onnx", onnx_dst.name, 1))
        if not dst.exists() or sha256_file(dst) != sha256_file(src):
            _copy_atomic(src, dst)
    report = layout.calibrate_report(precision)
    if not report.exists() or sha256_file(report) != sha256_file(bundle.path / "calibrate.json"):
        _copy_atomic(bundle.path / "calibrate.json", report)


def _copy_atomic(src: Path, dst: Path) -> None:
    from ..core.artifacts import atomic_path

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def bundle_stage(recipe: Recipe, layout: Layout, plan: BuildPlan, force: bool = False) -> Any:
    """The host's last step for an Orin it is not: write the bundle (skipped when nothing changed)."""
    from ..core.cache import StageSpec, run_stage
    from ..core.log import log

    precision, target = plan.precision, plan.target
    onnx_path = layout.calibrated_onnx(precision)
    plan = plan.with_dla_preflight(onnx_path, recipe.profiles)  # a strict policy fails on the host, not the Orin
    spec = StageSpec(
        name=f"bundle[{precision}]",
        stamp=layout.stamp(f"bundle-{precision}"),
        inputs={"onnx": onnx_files(onnx_path), "calibrate_report": [layout.calibrate_report(precision)]},
        options={"target": target, "build": plan.options(), "recipe": recipe.raw},
        outputs=[bundle_dir(layout, precision) / MANIFEST_NAME],
    )

    def work() -> dict[str, Any]:
        # For trtexec users on the Orin; `make engine` there rewrites it for its own TensorRT version.
        translated = translate_for_dla(plan, onnx_path, layout.precision_dir(precision) / "dla", JETPACK6_TRT)
        dla_onnx, cache = translated or (None, None)
        out = write_bundle(recipe, layout, plan, cache, dla_onnx=dla_onnx)
        log(f"bundle[{precision}]", f"{out.path}: copy this folder to the same place on the {target} and run "
            f"`make engine MODEL={recipe.name} PRECISION={precision}` there (TensorRT builds Orin engines "
            "only on the Orin)")
        return {"bundle": str(out.path), "target": target, "files": sorted(out.meta["files"])}

    return run_stage(spec, work, force)


def build_from_bundle(layout: Layout, precision: str, force: bool = False, root: Path = Path("/")) -> Any:
    """On the Orin: check the bundle, put its files in place and run the build stage (no torch)."""
    from ..platform.host import detect
    from .build import build

    bundle = read_bundle(bundle_dir(layout, precision), detect(root).target)
    install_bundle(bundle, layout)
    recipe = bundle.recipe()
    return build(recipe, layout, plan_from_options(recipe, precision, bundle.target, bundle.meta["build"]), force)
