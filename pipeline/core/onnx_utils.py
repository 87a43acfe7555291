"""Reading, checking and atomically saving ONNX models, external data (>2 GB) included."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
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


# Headers this module writes beside another model's data file (tool_input, ort_model): they reference
# `<model>.onnx.data`, not `<their name>.data`.
HEADER_SUFFIX = ".tmp.onnx"


def uses_external_data(path: Path) -> bool:
    path = Path(path)
    if Path(str(path) + ".data").exists():
        return True
    return path.name.endswith(HEADER_SUFFIX) and path.exists() and bool(_external_tensors(load_header(path)))


def load_header(path: Path) -> Any:
    """The graph with its large weights left on disk (they stay references to `<name>.data`), so a model of
    any size loads in the memory of its graph; `save(..., base_dir=path.parent)` streams them to a new file."""
    return load(path, with_weights=False)


def file_mode() -> int:
    """The mode a plain new file gets under this process's umask (0644 under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save(model: Any, path: Path, external_data: bool | None = None, base_dir: Path | None = None) -> None:
    """Write `model` to `path` atomically; with external data in `<name>.data` when large (or forced).

    Tensors of `model` may still reference external data (a `load_header` model, a tool's output loaded
    without weights): they are copied, tensor by tensor, from the files under `base_dir`, so no step holds
    more than one tensor of a model over 2 GB in memory, and no >2 GB protobuf is ever serialized.
    Both files are written in a scratch folder beside the target and renamed into place, the data
    file first, so a reader never sees an ONNX whose weights are missing; both get the same mode.
    """
    import onnx

    path = Path(path)
    referenced = _external_tensors(model)
    if referenced and base_dir is None:
        raise ValueError("save: the model references external data; pass base_dir (the folder holding it)")
    if referenced and external_data is False:  # asked for one file: the (small) weights come in
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, str(base_dir))
        referenced = []
    if external_data is None:
        external_data = bool(referenced) or not _fits_protobuf(model) or model.ByteSize() > EXTERNAL_DATA_THRESHOLD
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    data_name = path.name + ".data"
    try:
        tmp_model = tmpdir / path.name
        if external_data:
            restore = _write_external_data(model, tmpdir / data_name, data_name, base_dir, path.parent / data_name)
            try:
                onnx.save_model(model, str(tmp_model))
            finally:
                restore()
            os.chmod(tmpdir / data_name, file_mode())
            os.replace(tmpdir / data_name, path.parent / data_name)
        else:
            onnx.save_model(model, str(tmp_model))
            stale = path.parent / data_name
            if stale.exists():
                stale.unlink()
        os.chmod(tmp_model, file_mode())
        os.replace(tmp_model, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def save_moving(model: Any, path: Path, scratch: Path, external_data: bool | None = None) -> None:
    """`save(model, path, ...)` for a header whose large tensors all lie in `scratch`'s data file, a file
    the caller is done with: that file is renamed into place as `<path>.data` instead of copied (an 8B
    LLM's export: 16 GB less written, and never twice on disk), and the header saved over it. Anything
    else (tensors inline or in other files) takes `save`'s streamed copy."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo

    path, scratch = Path(path), Path(scratch)
    source = scratch.parent / (scratch.name + ".data")
    referenced = _external_tensors(model)
    inline = [t for t in model.graph.initializer if t.HasField("raw_data") and len(t.raw_data) >= _INLINE_BYTES]
    if external_data is False or not referenced or inline or source.parent.resolve() != path.parent.resolve() or \
            any((scratch.parent / ExternalDataInfo(t).location).resolve() != source.resolve() for t in referenced):
        save(model, path, external_data=external_data, base_dir=scratch.parent)
        return
    data_name = path.name + ".data"
    for tensor in referenced:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = data_name
    tmp_model = path.parent / f".{path.name}.{os.getpid()}.header"
    try:
        onnx.save_model(model, str(tmp_model))
        os.chmod(tmp_model, file_mode())
        os.chmod(source, file_mode())
        os.replace(source, path.parent / data_name)
        os.replace(tmp_model, path)
    finally:
        tmp_model.unlink(missing_ok=True)


# Tensors under this many bytes stay inside the ONNX (onnx's own default threshold).
_INLINE_BYTES = 1024
_ALIGN = 64  # offsets of the data file: cache-line aligned, as ONNX Runtime's mmap likes
_CHUNK = 64 << 20


def _external_tensors(model: Any) -> list[Any]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(model) if uses_external_data(t)]


def _write_external_data(model: Any, data_path: Path, location: str, base_dir: Path | None, final: Path) -> Any:
    """Move every large tensor of `model` into `data_path` (one file, renamed to `final` afterwards); returns
    a function that puts the model back as it was (in-memory tensors refilled, references to the old files
    restored), except references into `final` itself, which the rename replaces: those keep the new ones."""
    from onnx import TensorProto
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    undo: list[tuple[Any, bytes | None, list[tuple[str, str]], int]] = []
    with open(data_path, "wb") as out:
        for tensor in _get_all_tensors(model):
            external = uses_external_data(tensor)
            if not external and not (tensor.HasField("raw_data") and len(tensor.raw_data) >= _INLINE_BYTES):
                continue
            old_entries = [(e.key, e.value) for e in tensor.external_data]
            offset = -(-out.tell() // _ALIGN) * _ALIGN
            out.seek(offset)
            if external:
                info = ExternalDataInfo(tensor)
                source = Path(base_dir) / info.location
                length = _copy_range(source, info.offset or 0, info.length, out)
                if source.resolve() != Path(final).resolve():
                    undo.append((tensor, None, old_entries, tensor.data_location))
            else:
                raw = tensor.raw_data
                out.write(raw)
                length = len(raw)
                undo.append((tensor, raw, old_entries, tensor.data_location))
                tensor.ClearField("raw_data")
            del tensor.external_data[:]
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
                tensor.external_data.add(key=key, value=value)
            tensor.data_location = TensorProto.EXTERNAL

    def restore() -> None:
        for tensor, raw, entries, data_location in undo:
            del tensor.external_data[:]
            for key, value in entries:
                tensor.external_data.add(key=key, value=value)
            tensor.data_location = data_location
            if raw is not None:
                tensor.raw_data = raw

    return restore


def _copy_range(src: Path, offset: int, length: int | None, out: Any) -> int:
    """Copy `length` bytes (to the end when None) of `src` from `offset` into `out`, a chunk at a time."""
    copied = 0
    with open(src, "rb") as f:
        f.seek(offset)
        while length is None or copied < length:
            chunk = f.read(_CHUNK if length is None else min(_CHUNK, length - copied))
            if not chunk:
                break
            out.write(chunk)
            copied += len(chunk)
    if length is not None and copied != length:
        raise PipelineError(f"{src}: external data ends after {offset + copied} bytes; the ONNX needs "
                            f"{offset + length}")
    return copied


def _fits_protobuf(model: Any) -> bool:
    try:
        model.ByteSize()
        return True
    except Exception:  # protobuf refuses to size messages over 2 GB
        return False


def tensor_bytes(tensor: Any) -> int:
    """Bytes of a tensor's data, whether held in the ONNX or referenced in its external data file."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    if uses_external_data(tensor):
        return int(ExternalDataInfo(tensor).length or 0)
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    import numpy as np
    from onnx import helper

    count = int(np.prod(tensor.dims)) if len(tensor.dims) else 1
    return count * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def read_array(tensor: Any, base_dir: Path) -> Any:
    """A tensor's values as a writable array, read straight from its data file when external (one copy in
    memory, which a caller may scale in place)."""
    import numpy as np
    from onnx import helper, numpy_helper
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    if uses_external_data(tensor) and tensor.data_type not in (21, 22) and dtype.kind in "fiu":
        info = ExternalDataInfo(tensor)
        count = 1
        for d in tensor.dims:
            count *= int(d)
        return np.fromfile(Path(base_dir) / info.location, dtype=dtype, count=count,
                           offset=int(info.offset or 0)).reshape(tuple(tensor.dims))
    if uses_external_data(tensor):
        # numpy_helper loads the data into the tensor it is given: a copy of the reference takes it instead.
        copy = type(tensor)()
        copy.CopyFrom(tensor)
        tensor = copy
    return numpy_helper.to_array(tensor, base_dir=str(base_dir)).copy()


def loaded_bytes(model: Any) -> int:
    """Bytes of `model` as one protobuf once its referenced weights are read in (what decides whether it
    can be saved as one file), without reading them."""
    return model.ByteSize() + sum(tensor_bytes(t) for t in _external_tensors(model))


class SideData:
    """A data file in `folder` that replaced weights are appended to, one tensor at a time, so an edit of
    a model over 2 GB keeps only the tensor it is changing in memory; `save(..., base_dir=folder)` then
    streams them into the model's own data file. Remove it after the save."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = Path(folder), name
        self.path = self.folder / name
        self.path.write_bytes(b"")

    def store(self, tensor: Any, array: Any) -> None:
        from onnx import helper

        self.store_raw(tensor, array, array.shape, helper.np_dtype_to_tensor_dtype(array.dtype))

    def store_raw(self, tensor: Any, raw: Any, dims: Any, data_type: int) -> None:
        """`raw` (an array) written as the bytes of a tensor of `dims` and `data_type`: a packed INT4 weight
        is half a byte per element, which no numpy dtype says."""
        import numpy as np

        raw = np.ascontiguousarray(raw)
        del tensor.dims[:]
        tensor.dims.extend(dims)
        tensor.data_type = data_type
        self.store_bytes(tensor, memoryview(raw).cast("B"))  # no bytes copy of a multi-GB tensor

    def store_bytes(self, tensor: Any, data: Any) -> None:
        """Move `data`, the bytes of `tensor` at its dims and type, to the file; `tensor` references them."""
        from onnx import TensorProto

        with open(self.path, "ab") as f:
            offset = f.tell()
            f.write(data)
            length = f.tell() - offset
        tensor.ClearField("raw_data")
        del tensor.external_data[:]
        for key, value in (("location", self.name), ("offset", str(offset)), ("length", str(length))):
            tensor.external_data.add(key=key, value=value)
        tensor.data_location = TensorProto.EXTERNAL

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def save_header(model: Any, dst: Path, src: Path, edit: Any = None, external_data: bool | None = None) -> Any:
    """Save the header `model` of the ONNX at `src` (its weights still on disk beside `src`) to `dst`, the
    layout following `src`'s unless `external_data` says (False: one file, the weights read in);
    `edit(model, base_dir, side)` may first rewrite weights, one at a time, into a side file (None for a
    model without external data: it holds its weights). Returns edit's result."""
    src = Path(src)
    external = uses_external_data(src)
    side = SideData(src.parent, f".{src.stem}.edit.tmp.onnx.data") if external else None
    try:
        result = edit(model, src.parent, side) if edit is not None else None
        save(model, dst, external_data=(external or None) if external_data is None else external_data,
             base_dir=src.parent)
    finally:
        if side is not None:
            side.remove()
    return result


def ort_model(path: Path, extra_outputs: list[str] = (), edit: Any = None) -> Any:
    """What to give `onnxruntime.InferenceSession` for the ONNX at `path` with `extra_outputs` added as
    graph outputs (intermediate tensors to read): the serialized bytes of a small model, or, for one with
    external data, the path of a header written beside `path` (ONNX Runtime resolves the data file relative
    to it), so a model over 2 GB is never serialized into one protobuf. Remove a returned path when done.
    `edit(model)` may first add nodes to the graph (its weights still on disk)."""
    import onnx

    path = Path(path)
    model = load_header(path)
    if edit is not None:
        edit(model)
    existing = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra_outputs if n not in existing)
    if not _external_tensors(model):
        return model.SerializeToString()
    fd, header = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=HEADER_SUFFIX, dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(model.SerializeToString())
    return Path(header)


@contextlib.contextmanager
def tool_input(src: Path, folder: Path) -> Iterator[Path]:
    """The ONNX to hand a quantization tool: a file of its own, since ModelOpt rewrites the ONNX it is given.

    A model with external data gets only a copy of its header, beside `src`, reading `src`'s data file
    where it lies: onnx and ONNX Runtime refuse a data file that is a hard link, a symlink or outside the
    model's folder, and a multi-GB copy per stage fills disks. Every tool that gets one reads the data and
    never writes it (tests/test_scale.py checks ModelOpt INT8 / INT4, ONNX Runtime's quantize_static and
    AutoCast). A small model is copied whole into `folder`. The header copy goes when the block ends.
    """
    src = Path(src)
    if not uses_external_data(src):
        target = Path(folder) / src.name
        shutil.copyfile(src, target)
        yield target
        return
    fd, name = tempfile.mkstemp(prefix=f".{src.stem}.", suffix=HEADER_SUFFIX, dir=src.parent)
    os.close(fd)
    header = Path(name)
    try:
        shutil.copyfile(src, header)
        yield header
    finally:
        header.unlink(missing_ok=True)


def model_bytes(path: Path) -> int:
    """Bytes of an ONNX and its external data (for a header beside another model's data, what it references)."""
    path = Path(path)
    data = Path(str(path) + ".data")
    if data.exists():
        return path.stat().st_size + data.stat().st_size
    if uses_external_data(path):
        return path.stat().st_size + sum(tensor_bytes(t) for t in _external_tensors(load_header(path)))
    return path.stat().st_size
