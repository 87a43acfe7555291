"""INT4 AWQ-clip in the memory of one weight: what ModelOpt's `awq_clip` produces, for models of any size.

ModelOpt's `_quantize_awq_clip` loads the model, deep-copies it, re-runs every calibration sample once per
weight and, in `_clip_search`, re-quantizes the whole weight per alpha per 1024-column batch with
[columns, tokens, blocks, block] temporaries: Llama-3.2-1B is killed at 17 GiB. The search only ever uses
`x[0 :: max(1, n_tokens // 64)]` of a MatMul's concatenated calibration tokens, so here:

1. the graph is a header (weights stay on disk) put through ModelOpt's own preprocessing for INT4 (shape
   inference, its toposort, stale value_info cleared, opset 21, node names, shared constants duplicated),
   and the weights are ModelOpt's own choice (`_find_int4_quantizable_weights`, `get_layer_info`);
2. one ONNX Runtime session (opened on the path, optimizations off as ModelOpt's, no prepacked weight
   copies) runs the samples one at a time and keeps only those rows of each MatMul input;
3. each weight is read alone and searched a column slice at a time: block quantization is independent per
   column, so quantizing the slice (ModelOpt's `quant_tensor` / `dq_tensor`) is the same math, and the
   block products are one BLAS matmul per alpha; the best alphas (same grid, same strict-first-minimum
   rule) go to `quant_tensor`, and the packed INT4 weight and its scales are written out at once;
4. the DequantizeLinear nodes are ModelOpt's (names, axis 0, block_size, dtypes, consumers rewired, the
   activation's value_info retyped), then ModelOpt's graphsurgeon cleanup / toposort, ir_version 10 and
   redundant-Cast removal, on the header.

Losses are summed in float32 in another order than ModelOpt's, so a block whose two best alphas tie to
float rounding may pick the other one (tests/test_awq_streaming.py measures how often: none on the
trained Llama fixture, whose output equals ModelOpt's byte for byte). ModelOpt also sums an FP16 weight's
products in FP16, where rounding outweighs the gaps between alphas; here they are FP32 (docs/memory.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import onnx_utils
from ..core.log import log, progress

MAX_TOKENS = 64  # _clip_search's default
COLUMNS = 2048  # most output columns searched at once: [blocks, tokens, columns] float32 per alpha
MIN_COLUMNS = 128  # fewest: narrower slices make BLAS products too small to be worth a thread
DEVICE_COLUMNS = 16384  # a slice on a GPU: [32 blocks, 64 tokens, 16384] float32 is 134 MB per temporary
INT4_MIN_OPSET = 21


def alphas() -> list[float]:
    """AWQClipHelper's grid (0.5, 0.55, ..., 0.95, 1.0), in its order."""
    from modelopt.onnx.quantization.int4 import AWQClipHelper

    grid = np.arange(AWQClipHelper.min_alpha, 1.0, AWQClipHelper.alpha_step)
    return [round(float(k), 2) for k in grid] + [1.0]


def token_stride(total: int, max_tokens: int = MAX_TOKENS) -> int:
    """The stride of `_clip_search`'s `x[0 :: max(1, n // max_tokens)]`."""
    return max(1, total // max_tokens)


def _qdq(w3: np.ndarray, amax: np.ndarray, alpha: Any, num_bits: int, clip_min: float) -> np.ndarray:
    """`dq_tensor(*quant_tensor(w, block, alpha=alpha)[:2], block)` for `w3` [n_block, block, cols] and its
    per-block `amax` [n_block, cols], operation for operation in `w`'s dtype (find_scales: amax * alpha / 7,
    clipped at CLIP_MIN; rtn: rint, clipped to [-8, 7]; dq: times the scale), without its transposes;
    float32 for an FP16 weight (`_qdq_fp16`: the same values)."""
    if w3.dtype == np.float16:
        return _qdq_fp16(w3, amax, alpha, num_bits, clip_min)
    maxq, minq = 2 ** (num_bits - 1) - 1, -(2 ** (num_bits - 1))
    scale = np.clip((amax * alpha) / maxq, clip_min, None)[:, None, :]
    q = np.rint(w3 / scale)
    np.clip(q, minq, maxq, out=q)
    q *= scale
    return q


def _qdq_fp16(w3: np.ndarray, amax: np.ndarray, alpha: float, num_bits: int, clip_min: float) -> np.ndarray:
    """`_qdq` of an FP16 weight, as float32. numpy's FP16 arithmetic is FP32 arithmetic rounded to FP16
    after each operation (exact: FP32 holds 2 x 11 + 2 bits), done here with vectorized casts, 2x faster."""
    f16, f32 = np.float16, np.float32
    maxq, minq = 2 ** (num_bits - 1) - 1, -(2 ** (num_bits - 1))
    scaled = (amax.astype(f32) * f32(f16(alpha))).astype(f16)
    scale = np.clip((scaled.astype(f32) / maxq).astype(f16), clip_min, None)[:, None, :].astype(f32)
    q = np.rint((w3.astype(f32) / scale).astype(f16).astype(f32))
    np.clip(q, minq, maxq, out=q)
    q *= scale
    return q.astype(f16).astype(f32)


def slice_columns(co: int, threads: int) -> int:
    """Columns per slice so that every thread gets one: a [14336, 4096] down projection in 2048-column
    slices kept 2 of a 16-core host's cores busy (7 s a weight for Llama-3-8B)."""
    return min(COLUMNS, max(MIN_COLUMNS, -(-co // threads)))


def search_device() -> str | None:
    """"cuda" where PyTorch sees a GPU (the lent GPU machine: Llama-3-8B's 225 weights in 42 s, where its 16
    cores had done 224 in 18 minutes), else None: the numpy search on the CPU's cores.
    ORIN_TRT_AWQ_DEVICE=cpu forces the CPU."""
    if os.environ.get("ORIN_TRT_AWQ_DEVICE", "").lower() == "cpu":
        return None
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


def clip_alphas(x: np.ndarray, w: np.ndarray, block: int, num_bits: int = 4, columns: int | None = None,
                device: str | None = None) -> np.ndarray:
    """Best clip alpha per (output column, block) of `w` [ci, co] for activation rows `x` [tokens, ci]
    (already strided): `_clip_search`'s loss, the mean over tokens of (x_b . (w_b - qdq(w_b, alpha)))^2,
    first minimum over AWQClipHelper's grid; [co, n_block] float32 (AWQClipHelper.best_alpha reshaped).
    Column slices are independent (any split gives the same values): they run on a thread each, one per
    core (numpy and BLAS release the GIL), or on `device` with PyTorch (`_clip_alphas_torch`)."""
    from concurrent.futures import ThreadPoolExecutor

    from modelopt.onnx.quantization.int4 import CLIP_MIN
    from modelopt.onnx.quantization.quant_utils import _pad

    ci, co = w.shape
    threads = len(os.sched_getaffinity(0))
    columns = columns or slice_columns(co, threads)
    if ci % block:
        w, x = _pad(w, block), _pad(x.T, block).T
    n_block = w.shape[0] // block
    xb = np.ascontiguousarray(x.reshape(x.shape[0], n_block, block).transpose(1, 0, 2), dtype=np.float32)
    if device is not None:
        return _clip_alphas_torch(xb, w, block, num_bits, CLIP_MIN, device)
    best_alpha = np.ones((co, n_block), dtype=np.float32)
    grid = alphas()

    def search(s: int) -> None:
        w3 = np.ascontiguousarray(w[:, s:s + columns]).reshape(n_block, block, -1)
        amax = np.abs(w3).max(axis=1)
        w32 = w3.astype(np.float32)
        lo = np.full((w3.shape[2], n_block), np.inf, dtype=np.float32)
        la = best_alpha[s:s + columns]  # a view: each slice writes its own rows
        for alpha in grid:
            diff = _qdq(w3, amax, alpha, num_bits, CLIP_MIN).astype(np.float32, copy=False)
            np.subtract(w32, diff, out=diff)
            err = np.matmul(xb, diff)  # [n_block, tokens, cols]: each block's share of the output error
            loss = np.mean(np.square(err, out=err), axis=1).T  # [cols, n_block]
            better = loss < lo
            lo[better], la[better] = loss[better], alpha

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(search, range(0, co, columns)))
    return best_alpha


def _clip_alphas_torch(xb: np.ndarray, w: np.ndarray, block: int, num_bits: int, clip_min: float,
                       device: str) -> np.ndarray:
    """`clip_alphas`' search with PyTorch on `device`, operation for operation `_qdq` / `_qdq_fp16` (FP16
    rounding as explicit casts; torch.round is rint's half-to-even), the same grid and first-minimum rule.
    Only the matmul's summation order differs. TF32 is off: it would round the products, not only reorder."""
    import torch

    f16, f32 = torch.float16, torch.float32
    maxq, minq = 2 ** (num_bits - 1) - 1, -(2 ** (num_bits - 1))
    n_block, co = w.shape[0] // block, w.shape[1]
    is_fp16 = w.dtype == np.float16
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        x_t = torch.from_numpy(xb).to(device)
        best = torch.ones((co, n_block), dtype=f32, device=device)
        for s in range(0, co, DEVICE_COLUMNS):
            w3 = torch.from_numpy(np.ascontiguousarray(w[:, s:s + DEVICE_COLUMNS])).to(device)
            w3 = w3.reshape(n_block, block, -1).to(f32)  # FP16 to FP32 is exact
            amax = w3.abs().amax(dim=1)
            lo = torch.full((w3.shape[2], n_block), float("inf"), dtype=f32, device=device)
            la = best[s:s + DEVICE_COLUMNS]
            for alpha in alphas():
                if is_fp16:
                    scaled = (amax * float(np.float16(alpha))).to(f16).to(f32)
                    scale = (scaled / maxq).to(f16).clamp(min=clip_min).to(f32)[:, None, :]
                    q = torch.round((w3 / scale).to(f16).to(f32)).clamp_(minq, maxq).mul_(scale).to(f16).to(f32)
                else:
                    scale = ((amax * alpha) / maxq).clamp(min=clip_min)[:, None, :]
                    q = torch.round(w3 / scale).clamp_(minq, maxq).mul_(scale)
                err = torch.matmul(x_t, w3 - q)  # [n_block, tokens, cols]
                loss = err.square_().mean(dim=1).T
                better = loss < lo
                lo[better] = loss[better]
                la[better] = alpha
            del w3, amax, lo, q, err, loss
        return best.cpu().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def quantize(w: np.ndarray, block: int, alpha: np.ndarray, num_bits: int = 4,
             columns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ModelOpt's `quant_tensor(w, block, alpha=alpha.reshape(-1))` a column slice at a time (the same
    values: each column's blocks are their own), so its temporaries are a slice's, not the weight's, and
    the slices run on a thread per core: INT4 values as int8 [ci, co] and scales [n_block, co] in `w`'s
    dtype."""
    from concurrent.futures import ThreadPoolExecutor

    from modelopt.onnx.quantization.quant_utils import quant_tensor

    ci, co = w.shape
    threads = len(os.sched_getaffinity(0))
    columns = columns or slice_columns(co, threads)
    qw = np.empty((ci, co), dtype=np.int8)
    scales: list[np.ndarray] = []

    def one(s: int) -> np.ndarray:
        q, scale, _ = quant_tensor(w[:, s:s + columns], block, alpha=alpha[s:s + columns].reshape(-1),
                                   num_bits=num_bits)
        qw[:, s:s + columns] = q
        return scale

    with ThreadPoolExecutor(max_workers=threads) as pool:
        scales = list(pool.map(one, range(0, co, columns)))
    return qw, np.concatenate(scales, axis=1)


# ---- the graph: ModelOpt's preprocessing and DQ form, on a header --------------------------------------
def preprocess(model: Any) -> Any:
    """What `modelopt.onnx.quantization.quantize(quantize_mode="int4")` does to the graph before its INT4
    step (`_preprocess_onnx`), with only proto edits: weights are references and stay on disk."""
    import onnx
    import onnx_graphsurgeon as gs
    from modelopt.onnx.trt_utils import MAX_IR_VERSION
    from modelopt.onnx.utils import clear_stale_value_info, duplicate_shared_constants, name_onnx_nodes

    model = onnx.shape_inference.infer_shapes(model)
    graph = gs.import_onnx(model)  # load_onnx_model's toposort: the node order ModelOpt works on
    graph.toposort()
    model = gs.export_onnx(graph)
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    clear_stale_value_info(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    if opset < INT4_MIN_OPSET:
        model = onnx.version_converter.convert_version(model, INT4_MIN_OPSET)
    name_onnx_nodes(model.graph)
    model, _ = duplicate_shared_constants(model)
    return model


def _int4_bytes(q: np.ndarray) -> np.ndarray:
    """ONNX INT4 layout: two values a byte, the first in the low nibble."""
    flat = q.reshape(-1).view(np.uint8) & 0x0F
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return flat[0::2] | (flat[1::2] << 4)


def _tensor(name: str, array: np.ndarray, data_type: int, side: onnx_utils.SideData | None) -> Any:
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=data_type, dims=array.shape)
    raw = _int4_bytes(array) if data_type in (21, 22) else np.ascontiguousarray(array)
    if side is None or raw.nbytes < 1024:
        tensor.raw_data = raw.tobytes()
    else:
        side.store_raw(tensor, raw, array.shape, data_type)
    return tensor


class DQ:
    """One weight's `qdq.insert_dq_nodes` inputs, its data already written: the packed `<w>_i4` and
    `<w>_scale` tensors (references into the side file for a large model) and the node's attributes."""

    def __init__(self, name: str, qw: np.ndarray, scale: np.ndarray, block: int, num_bits: int,
                 side: onnx_utils.SideData | None) -> None:
        from modelopt.onnx.quantization import qdq_utils as qdq
        from onnx import helper

        self.name, self.shape, self.dtype = name, qw.shape, scale.dtype
        self.attrs = qdq.update_attributes_for_per_channel_nodes({"axis": 0, "block_size": block}, num_bits)
        qdq.validate_scale_shape_for_per_channel_nodes(scale, self.attrs, num_bits)
        self.wq = _tensor(qdq._wq_name(name), qw, qdq.get_tensor_dtype(num_bits), side)
        self.scale = _tensor(qdq._scale_name(name), scale, helper.np_dtype_to_tensor_dtype(scale.dtype), side)


def finish(model: Any, dqs: list[DQ]) -> Any:
    """ModelOpt's end of the INT4 step and of `quantize`, on the header: graphsurgeon import, the DQ nodes
    made and wired by ModelOpt's own helpers (`make_gs_dequantize_*`, `_postprocess_qdq`: consumers
    rewired, cleanup drops the float weights, toposort), export, ir_version 10, redundant Casts removed.
    The new tensors enter as graphsurgeon LazyValues, which export as the protos they are: data that
    lies in the side file stays there."""
    import onnx_graphsurgeon as gs
    from modelopt.onnx.quantization import qdq_utils as qdq
    from modelopt.onnx.quantization.graph_utils import remove_redundant_cast_nodes
    from modelopt.onnx.quantization.gs_patching import patch_gs_modules
    from onnx_graphsurgeon.ir.tensor import LazyValues

    patch_gs_modules()
    graph = gs.import_onnx(model)
    nodes = {}
    for dq in dqs:
        inputs = [gs.Constant(t.name, LazyValues(t)) for t in (dq.wq, dq.scale)]
        out = qdq.make_gs_dequantize_output(dq.name, shape=dq.shape, dtype=dq.dtype)
        nodes[dq.name] = qdq.make_gs_dequantize_node(dq.name, inputs=inputs, outputs=[out], attributes=dq.attrs)
    qdq._postprocess_qdq(graph, orig_weight_names=set(nodes), dq_nodes=nodes)
    out = gs.export_onnx(graph)
    out.ir_version = 10
    remove_redundant_cast_nodes(out.graph)
    return out


# ---- activations: one session, the kept rows only ------------------------------------------------------
def _signature(feed: dict[str, np.ndarray]) -> tuple:
    return tuple(sorted((k, v.shape) for k, v in feed.items()))


def _session(path: Path, names: list[str]) -> tuple[Any, Any]:
    import onnxruntime as ort

    from ..runners import ort_providers

    model = onnx_utils.ort_model(path, names)
    from ..runners.onnxrt import session_options

    options = session_options(path, priority=True)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # ModelOpt's: same activations
    options.add_session_config_entry("session.disable_prepacking", "1")  # no second copy of the weights
    options.enable_cpu_mem_arena = False
    providers = [{"cuda": "CUDAExecutionProvider"}.get(p, "CPUExecutionProvider") for p in ort_providers()]
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=providers)
    return session, model


def collect_rows(path: Path, feeds: Sequence[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    """For each tensor in `names`, the rows `_clip_search` keeps of its activations over all `feeds`
    concatenated (`reshape(-1, last dim)`), from one ONNX Runtime session run once per sample. The total
    row count fixes the stride; it comes from the first run of each distinct feed shape."""
    outputs = [n for n in names if n not in feeds[0]]
    session, model = _session(path, outputs)
    try:
        def run(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            got = dict(zip(outputs, session.run(outputs, feed), strict=True))
            return {n: got[n] if n in got else feed[n] for n in names}

        first = run(feeds[0])
        rows_by_shape = {_signature(feeds[0]): {n: v.size // v.shape[-1] for n, v in first.items()}}
        for feed in feeds[1:]:
            if _signature(feed) not in rows_by_shape:
                rows_by_shape[_signature(feed)] = {n: v.size // v.shape[-1] for n, v in run(feed).items()}
        total = {n: sum(rows_by_shape[_signature(f)][n] for f in feeds) for n in names}
        stride = {n: token_stride(total[n]) for n in names}
        kept: dict[str, list[np.ndarray]] = {n: [] for n in names}
        offset = dict.fromkeys(names, 0)
        for i, feed in enumerate(progress(feeds, "AWQ-clip activations (one sample at a time)", len(feeds))):
            values = first if i == 0 else run(feed)
            for n, v in values.items():
                flat = v.reshape(-1, v.shape[-1])
                start = (-offset[n]) % stride[n]  # first global index of this sample on the stride
                kept[n].append(np.array(flat[start::stride[n]], dtype=np.float32))
                offset[n] += flat.shape[0]
            del values
        first = None
    finally:
        session = None  # closes it: its weights leave memory before the search reads them again
        if isinstance(model, Path):
            model.unlink(missing_ok=True)
    return {n: np.concatenate(v) for n, v in kept.items()}


# ---- the whole step ----------------------------------------------------------------------------------
def awq_clip(src: Path, feeds: Sequence[dict[str, np.ndarray]], block: int, excluded: list[str]) -> tuple[Any, Any]:
    """ModelOpt's awq_clip INT4 of the ONNX at `src`, streamed. Returns (header, edit): the quantized
    graph, and `edit(model, base_dir, side)` for onnx_utils.save_header, which writes each packed weight
    and scale as it is made (the header is only complete after it ran)."""
    import re

    from modelopt.onnx.quantization.graph_utils import (
        _find_int4_quantizable_weights,
        expand_node_names_from_patterns,
        get_layer_info,
    )
    from modelopt.onnx.quantization.int4 import _change_input_type
    from modelopt.onnx.quantization.quant_utils import (
        get_num_bits,
        reshape_scales_for_per_channel_nodes,
        update_block_size,
    )
    from onnx import helper

    model = preprocess(onnx_utils.load_header(src))
    excluded = expand_node_names_from_patterns(model.graph, [f"^{re.escape(n)}$" for n in excluded])
    wa_pack = _find_int4_quantizable_weights(model.graph, excluded)
    layer_info = get_layer_info(model, excluded, block)
    acts = list(dict.fromkeys(act.name for act, *_ in wa_pack))
    log("calibrate[int4-awq]", f"streaming AWQ-clip: {len(wa_pack)} weights, activations of {len(acts)} "
        f"MatMul inputs over {len(feeds)} sample(s)")
    rows = collect_rows(src, feeds, acts)
    device = search_device()
    log("calibrate[int4-awq]", f"clip search on {device or f'{len(os.sched_getaffinity(0))} CPU core(s)'}")

    def edit(header: Any, base_dir: Path, side: onnx_utils.SideData | None) -> None:
        dqs: list[DQ] = []
        for act, weight, transpose, io_type, _ in progress(wa_pack, "AWQ-clip search (one weight at a time)",
                                                            len(wa_pack)):
            w = onnx_utils.read_array(weight, base_dir)
            if transpose:
                w = w.T
            num_bits = get_num_bits(layer_info, weight.name)
            size = update_block_size(block, layer_info, weight.name, w=w)
            best = clip_alphas(rows[act.name], w, size, num_bits, device=device)
            qw, scale = quantize(w, size, best, num_bits)
            del w, best
            if transpose:
                qw, scale = qw.T, scale.T
            scale = scale.astype(helper.tensor_dtype_to_np_dtype(io_type))
            scale = reshape_scales_for_per_channel_nodes({weight.name: scale}, block, layer_info)[weight.name]
            dqs.append(DQ(weight.name, np.asarray(qw).astype(np.int8), scale, block, num_bits, side))
            _change_input_type(header.graph, act.name, io_type)
            del qw
        header.CopyFrom(finish(header, dqs))

    return model, edit
