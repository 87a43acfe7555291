"""Nothing used without being checked: the artifacts a stage starts from belong to this model and build.

- An exported ONNX records the model it was exported for and the digest of what shaped the export;
  calibrate and build refuse another model's ONNX (its class names would end up in our manifest).
- An engine is used (profiled, deployed, published) only when its bytes and the ONNX beside it are the
  ones its manifest records: a failed or skipped build leaves the previous engine, which no longer
  matches the ONNX, and a truncated or swapped engine no longer matches its own SHA-256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PipelineError
from . import onnx_utils
from .artifacts import sha256_file, sha256_onnx

MODEL_KEY = "orin_trt.model"
DIGEST_KEY = "orin_trt.export_digest"


def require(path: Path, stage: str, model: str, precision: str | None = None) -> None:
    """A stage's input must exist; name the stage that makes it when it does not."""
    if not Path(path).exists():
        p = f" --precision {precision}" if precision else ""
        raise PipelineError(f"{path} not found: run `orin-trt {stage} --model {model}{p}` first")


def check_onnx_belongs(onnx_path: Path, model: str, export_digest: str) -> None:
    """`onnx_path` was exported by orin-trt for `model` with the export settings digested in `export_digest`."""
    meta = onnx_utils.metadata(onnx_utils.load(onnx_path, with_weights=False))
    recorded = meta.get(MODEL_KEY)
    if recorded is None:
        return  # not written by our export (a hand-made ONNX placed here): nothing recorded to compare
    if recorded != model:
        raise PipelineError(f"{onnx_path} was exported for model {recorded!r}, not {model!r}: "
                            f"run `orin-trt export --model {model} --force`")
    if meta.get(DIGEST_KEY) not in (None, export_digest):
        raise PipelineError(f"{onnx_path} was exported with other settings than the recipe of {model!r} now has "
                            f"(export digest {meta[DIGEST_KEY][:12]} != {export_digest[:12]}): "
                            f"run `orin-trt export --model {model}`")


def verify_engine_build(manifest_path: Path, manifest: dict[str, Any], onnx_path: Path | None = None) -> Path:
    """The engine beside `manifest_path` is the one the manifest describes, built from the ONNX beside it."""
    manifest_path = Path(manifest_path)
    rec = manifest.get("engine") or {}
    engine = manifest_path.parent / str(rec.get("file", "model.engine"))
    if not engine.is_file():
        raise PipelineError(f"{engine}: engine file named by {manifest_path} is missing")
    size = engine.stat().st_size
    if rec.get("bytes") is not None and size != rec["bytes"]:
        raise PipelineError(f"{engine}: {size} bytes but {manifest_path} records {rec['bytes']}; engine and "
                            "manifest are from different builds (rebuild: orin-trt build ... --force)")
    if rec.get("sha256") and sha256_file(engine) != rec["sha256"]:
        raise PipelineError(f"{engine}: SHA-256 differs from {manifest_path}; engine and manifest are from "
                            "different builds (rebuild: orin-trt build ... --force)")
    onnx_rec = manifest.get("onnx") or {}
    onnx_path = Path(onnx_path) if onnx_path else manifest_path.parent / str(onnx_rec.get("file", "model.onnx"))
    if onnx_rec.get("sha256") and onnx_path.exists() and sha256_onnx(onnx_path) != onnx_rec["sha256"]:
        raise PipelineError(f"{engine} was built from another {onnx_path} than the one there now (the last "
                            f"build failed or was skipped): run `orin-trt build --model {manifest.get('model')} "
                            f"--precision {manifest.get('precision')}`")
    return engine
