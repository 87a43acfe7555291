"""Reading, checking and atomically saving ONNX models, external data (>2 GB) included."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import PipelineError

# Above this, protobuf cannot hold the model in one file; a margin under 2 GiB keeps headers safe.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def load(path: Path, with_weights: bool = True) -> Any:
    import onnx

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=with_weights)
    except Exception as e:
        raise PipelineError(f"{path}: not a readable ONNX model ({e.__class__.__name__}: {e})") from e


def check(path: Path) -> None:
    """onnx.checker on the path, so models with external data are checked without loading them whole."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as e:
        raise PipelineError(f"{path}: fails onnx.checker ({e})") from e


# Domains whose ops ONNX's own registry does not list but that a runtime we target implements.
_EXTENDED_DOMAINS = {"com.microsoft", "trt", "trt.plugins", "com.nvidia"}


def check_known_ops(model: Any, path: Path) -> None:
    """Every node is an op ONNX defines at the model's opset (or of a runtime's domain); else name it.

    onnx.checker lets an unregistered op through; shape inference and the cost model then see nothing,
    and a build fails far later.
    """
    import onnx

    opsets = {o.domain or "": o.version for o in model.opset_import}
    for node in model.graph.node:
        domain = node.domain or ""
        if domain in _EXTENDED_DOMAINS or domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.defs.get_schema(node.op_type, opsets.get(domain, opsets.get("", 1)), domain)
        except onnx.defs.SchemaError:
            raise PipelineError(f"{path}: node {node.name or '(unnamed)'!r} uses op {node.op_type!r}, which is not "
                                f"an ONNX op at opset {opsets.get(domain, opsets.get('', 1))}") from None


def metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: Any, values: dict[str, str]) -> None:
    current = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        if key in current:
            current[key].value = str(value)
        else:
            model.metadata_props.add(key=key, value=str(value))


def inherit_metadata(model: Any, src: Path) -> None:
    """Carry the source model's metadata (class names, stride, provenance) over to a converted model;
    conversion tools drop it."""
    existing = metadata(model)
    inherited = {k: v for k, v in metadata(load(src, with_weights=False)).items() if k not in existing}
    set_metadata(model, inherited)


def _dtype_name(elem_type: int) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type else "unknown"


def _shape(value_info: Any) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1) for d in dims]


def io_spec(model: Any) -> dict[str, list[dict[str, Any]]]:
    """Graph inputs and outputs (initializers excluded): name, dtype, shape with symbolic dims as -1."""
    inits = {i.name for i in model.graph.initializer}

    def spec(v: Any) -> dict[str, Any]:
        shape = [d if isinstance(d, int) and d > 0 else -1 for d in _shape(v)]
        return {"name": v.name, "dtype": _dtype_name(v.type.tensor_type.elem_type), "shape": shape}

    return {
        "inputs": [spec(v) for v in model.graph.input if v.name not in inits],
        "outputs": [spec(v) for v in model.graph.output],
    }


def uses_external_data(path: Path) -> bool:
    return Path(str(path) + ".data").exists()


def save(model: Any, path: Path, external_data: bool | None = None) -> None:
    """Write `model` to `path` atomically; with external data in `<name>.data` when large (or forced).

    Both files are written in a scratch folder beside the target and renamed into place, the data
    file first, so a reader never sees an ONNX whose weights are missing.
    """
    import onnx

    path = Path(path)
    if external_data is None:
        external_data = model.ByteSize() > EXTERNAL_DATA_THRESHOLD if _fits_protobuf(model) else True
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    data_name = path.name + ".data"
    try:
        tmp_model = tmpdir / path.name
        if external_data:
            onnx.save_model(model, str(tmp_model), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name, size_threshold=1024)
            # onnx moved the weights out of `model` into the file; read them back so the caller's model
            # is unchanged (a second save of it would otherwise write a header without its weights).
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(model, str(tmpdir))
            os.replace(tmpdir / data_name, path.parent / data_name)
        else:
            onnx.save_model(model, str(tmp_model))
            stale = path.parent / data_name
            if stale.exists():
                stale.unlink()
        os.replace(tmp_model, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _fits_protobuf(model: Any) -> bool:
    try:
        model.ByteSize()
        return True
    except Exception:  # protobuf refuses to size messages over 2 GB
        return False


def copy_to(src: Path, folder: Path) -> Path:
    """Copy an ONNX (and its external data, which it references by file name) into `folder`.

    Tools that quantize get the copy: some of them rewrite the model they are given in place.
    """
    src = Path(src)
    for f in [src] + ([Path(str(src) + ".data")] if uses_external_data(src) else []):
        shutil.copyfile(f, Path(folder) / f.name)
    return Path(folder) / src.name
