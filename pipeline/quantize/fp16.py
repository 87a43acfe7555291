"""FP16 with ModelOpt AutoCast: ops whose measured values would overflow FP16 stay FP32."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..core.log import log
from . import announce
from .tensor_ranges import Range, tensor_ranges

# AutoCast's defaults: values or initializers beyond these magnitudes keep their node in FP32.
DATA_MAX = 512.0
INIT_MAX = 65504.0


def autocast_fp16(
    src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], options: dict[str, Any], exclude: dict
) -> dict[str, Any]:
    samples = feeds[: int(options.get("calibration_samples", 4))]
    announce("fp16", "ModelOpt AutoCast", src, len(samples))
    # The ranges AutoCast judges nodes by, measured one sample at a time (tensor_ranges.py) instead of
    # AutoCast's reference run, which holds every intermediate tensor of every sample at once.
    ranges = tensor_ranges(src, samples)
    log("calibrate[fp16]", f"ranges of {len(ranges)} tensors measured; converting")
    with tempfile.TemporaryDirectory(prefix="orin-trt-fp16-") as tmp, _header_input(src, Path(tmp)) as work, \
            _reference_ranges(ranges), _weights_on_disk(work.parent) as folder:
        model = run_autocast(work, options, exclude)
        # AutoCast leaves value_info from before the conversion; ONNX Runtime then rejects buffer reuse.
        del model.graph.value_info[:]
        onnx_utils.inherit_metadata(model, src)
        # The source's layout: external data if it had it, or if the result is too large for one file.
        external = onnx_utils.uses_external_data(src) or onnx_utils.loaded_bytes(model) > onnx_utils.EXTERNAL_DATA_THRESHOLD
        onnx_utils.save(model, dst, external_data=external, base_dir=folder)
        del model
    header = onnx_utils.load_header(dst)
    casts = sum(1 for n in header.graph.node if n.op_type == "Cast")
    fp32_nodes = _fp32_compute_nodes(header)
    return {
        "precision": "fp16",
        "method": "modelopt.autocast",
        "calibration_samples": len(samples),
        "data_max": float(options.get("data_max", DATA_MAX)),
        "cast_nodes": casts,
        "kept_fp32_nodes": fp32_nodes,
    }


def run_autocast(work: Path, options: dict[str, Any], exclude: dict) -> Any:
    """ModelOpt AutoCast on the ONNX at `work` with the recipe's options (what it holds in memory is up to
    the patches around it)."""
    from modelopt.onnx.autocast import convert_to_mixed_precision

    from ..runners import ort_providers

    return convert_to_mixed_precision(
        onnx_path=str(work),
        low_precision_type="fp16",
        nodes_to_exclude=exclude["nodes"] or None,
        op_types_to_exclude=exclude["op_types"] or None,
        data_max=float(options.get("data_max", DATA_MAX)),
        init_max=float(options.get("init_max", INIT_MAX)),
        # FP32 I/O by default, so consumers feed what they always fed; `keep_io_types: false` makes
        # an LLM's KV cache FP16 too, halving its memory.
        keep_io_types=bool(options.get("keep_io_types", True)),
        providers=[p.replace("cuda", "cuda:0") for p in ort_providers()],
    )


@contextlib.contextmanager
def _header_input(src: Path, folder: Path) -> Iterator[Path]:
    """AutoCast's input as a header whose weights stay in a data file: `src`'s own (a header copy beside
    it), or, for a model held in one file, a copy of it with external data in `folder` (it is small: the
    weights are in memory once, while it is written)."""
    if onnx_utils.uses_external_data(src):
        with onnx_utils.tool_input(src, folder) as work:
            yield work
        return
    work = Path(folder) / Path(src).name
    onnx_utils.save(onnx_utils.load(src), work, external_data=True)
    yield work


@contextlib.contextmanager
def _reference_ranges(ranges: dict[str, Range]) -> Iterator[None]:
    """AutoCast's reference runner answers with the measured ranges (its TensorStats, which its range
    rule reads as it reads its own multi-sample statistics) instead of running the model itself."""
    from unittest import mock

    import onnx
    from modelopt.onnx.autocast import convert
    from modelopt.onnx.autocast.referencerunner import TensorStats

    stats = {name: TensorStats(absmax=r.absmax, min_val=r.min_val, max_val=r.max_val, shape=r.shape)
             for name, r in ranges.items()}

    class Measured:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self, inputs: Any = None) -> dict[str, Any]:
            return stats

    from modelopt.onnx.autocast import precisionconverter

    real_deepcopy = precisionconverter.deepcopy

    def no_model_copy(value: Any, memo: Any = None) -> Any:
        # PrecisionConverter deep-copies the whole model, weights included (6 GB more for Llama-3.2-1B),
        # to spare a caller's model that convert_to_mixed_precision never uses again; I/O snapshots are
        # still copied.
        return value if isinstance(value, onnx.ModelProto) else real_deepcopy(value, memo)

    with mock.patch.object(convert, "ReferenceRunner", Measured), \
            mock.patch.object(precisionconverter, "deepcopy", no_model_copy):
        yield


class _ModuleView:
    """A module as one ModelOpt module sees it, with some of its attributes replaced; the rest are the
    module's own."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        self._module = module
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@contextlib.contextmanager
def _weights_on_disk(folder: Path) -> Iterator[Path]:
    """AutoCast on a header whose weights stay in their data files under `folder` (what it is given by
    `_header_input`): the weights it converts go, one tensor at a time, to a side file there, the others
    stay references to the source's data file, so what it holds is its graph and the one tensor it is
    converting; `onnx_utils.save(model, dst, base_dir=folder)` then streams both into dst's data file.
    Yields `folder`.

    ModelOpt 0.47 reads the weights in by design: `convert_to_mixed_precision` calls
    `load_external_data_for_model` (every weight into the proto), onnx's `numpy_helper.to_array` loads an
    external tensor's data into the proto it reads, and protobuf never gives that memory back while the
    model lives; a converted weight is then held twice (FP32 and FP16), and `infer_shapes` and
    `check_model` serialize the whole model each time they run. Each patch below replaces one of those
    reads, in the ModelOpt modules that make it and only while this block runs:
    - convert.py's `onnx.external_data_helper.load_external_data_for_model`: reads in only tensors under
      1 KiB (shape constants that shape inference must see; a save would put them inline anyway);
    - `numpy_helper.to_array` as precisionconverter, graphsanitizer and nodeclassifier call it (the init_max
      check, the conversion of an initializer, the FP64 and LayerNorm checks): an external tensor is read
      from its file (`onnx_utils.read_array`) and its proto left as it was;
    - `PrecisionConverter._convert_initializer_data`: ModelOpt's own conversion (clamping included), then
      the converted bytes moved to the side file;
    - `modelopt.onnx.utils.check_model`: onnx.checker resolves a header's data files against the current
      folder, so a header is checked from a file beside its data (what ModelOpt itself does for a model
      over 2 GB, through a full copy in a temporary folder).
    Graph surgeon keeps an untouched initializer as its TensorProto (`LazyValues`), so its import and
    export carry references as references; shape inference reads types and dims, not data.
    """
    from unittest import mock

    import onnx
    import onnx.checker
    from modelopt.onnx import utils as modelopt_utils
    from modelopt.onnx.autocast import convert, graphsanitizer, nodeclassifier, precisionconverter
    from onnx import numpy_helper
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    folder = Path(folder)
    fd, name = tempfile.mkstemp(prefix=".fp16.", suffix=".tmp.onnx.data", dir=folder)
    os.close(fd)
    side = onnx_utils.SideData(folder, Path(name).name)

    def load_small(model: Any, base_dir: str) -> None:
        for tensor in onnx_utils._external_tensors(model):
            if onnx_utils.tensor_bytes(tensor) < onnx_utils._INLINE_BYTES:
                load_external_data_for_tensor(tensor, base_dir)
                tensor.data_location = onnx.TensorProto.DEFAULT
                del tensor.external_data[:]

    def to_array(tensor: Any, base_dir: str = "") -> Any:
        if uses_external_data(tensor):
            return onnx_utils.read_array(tensor, folder)
        return numpy_helper.to_array(tensor, base_dir)

    real_convert = precisionconverter.PrecisionConverter._convert_initializer_data

    def convert_to_side(self: Any, init: Any, from_type: Any, to_type: Any) -> Any:
        converted = real_convert(self, init, from_type, to_type)
        if converted.HasField("raw_data"):
            raw = converted.raw_data
            if len(raw) >= onnx_utils._INLINE_BYTES:
                side.store_bytes(converted, raw)
        return converted

    real_check = modelopt_utils.check_model

    def check_model(model: Any) -> None:
        if not onnx_utils._external_tensors(model):
            return real_check(model)
        fd, header = tempfile.mkstemp(prefix=".fp16.", suffix=onnx_utils.HEADER_SUFFIX, dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(model.SerializeToString())
            onnx.checker.check_model(header)
        finally:
            os.unlink(header)
        return None

    helper = _ModuleView(numpy_helper, to_array=to_array)
    loader = _ModuleView(onnx.external_data_helper, load_external_data_for_model=load_small)
    try:
        with mock.patch.object(convert, "onnx", _ModuleView(onnx, external_data_helper=loader)), \
                mock.patch.object(nodeclassifier, "onnx", _ModuleView(onnx, numpy_helper=helper)), \
                mock.patch.object(precisionconverter, "numpy_helper", helper), \
                mock.patch.object(graphsanitizer, "numpy_helper", helper), \
                mock.patch.object(precisionconverter.PrecisionConverter, "_convert_initializer_data",
                                  convert_to_side), \
                mock.patch.object(modelopt_utils, "check_model", check_model):
            yield folder
    finally:
        side.remove()


def _fp32_compute_nodes(model: Any) -> list[str]:
    """Compute nodes whose float outputs are still FP32 after the conversion (what AutoCast kept out)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    fp32 = {v.name for v in inferred.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    fp32 |= {o.name for o in model.graph.output}
    skip = {"Cast", "Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Slice", "Identity"}
    return [n.name for n in model.graph.node if n.op_type not in skip and any(o in fp32 for o in n.output)]
