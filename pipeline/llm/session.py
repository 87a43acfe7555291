"""Decode sessions: the KV cache allocated once at capacity, bound by address, written in place.

One planner (`plan_step`) decides for every step what is bound where and what is copied; two executors
run the plan: ONNX Runtime with I/O binding over numpy buffers (here) and TensorRT over device memory
(pipeline/trt/llm_session.py, on a Jetson). Per step the host sends the token ids, positions and
`logit_positions` plus the attention mask's new columns, and reads back the logits: the bytes do not grow
with the context. Each layer's keys and values live in a buffer [capacity, batch, kv_heads, head_dim]
(sequence-major, the contract of llm/kv_cache.py): the past input is its first `past` rows, the
`new_key_values` output is bound at row `past` when that address meets TensorRT's 256-byte alignment, or
written into a staging buffer and copied there in one piece.

Bucketed decode (`bucket` > 0, for a CUDA graph per past length bucket): the past is bound padded to a
multiple of `bucket` rows, the padding masked out by zeros in the attention mask; the new keys / values
go to the staging buffer (one fixed address per bucket) and are copied to their row after the step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PipelineError
from .kv_cache import LOGIT_POSITIONS, LOGITS, CacheShape, cache_names

PHASES = ("prefill", "decode")
# TensorRT's IExecutionContext::setTensorAddress: "The pointer must have at least 256-byte alignment."
ALIGNMENT = 256
INT64 = 8
FLOAT32 = 4


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


@dataclass(frozen=True)
class Geometry:
    """What a session allocates: the cache's shape, the engine's limits, and how decode binds the past."""

    cache: CacheShape
    vocab: int
    capacity: int      # max_context: rows of every cache buffer
    max_prompt: int    # the longest prefill chunk (staging rows, token and logits buffers)
    batch: int = 1
    bucket: int = 0    # decode binds the past padded to a multiple of this (0: exactly `past` rows)
    logit_rows: int = 0  # logits per sequence a step may ask for (0: max_prompt, what perplexity needs;
                         # generation needs 1, which keeps a large vocabulary's buffer small)

    @property
    def row_bytes(self) -> int:
        return self.cache.row_bytes(self.batch)

    @property
    def buffer_bytes(self) -> int:
        """One cache buffer (one layer's keys or values) at capacity, padded so the next one stays aligned."""
        return aligned(self.capacity * self.row_bytes)

    @property
    def staging_bytes(self) -> int:
        return aligned(self.max_prompt * self.row_bytes)

    @property
    def max_logits(self) -> int:
        return self.logit_rows or self.max_prompt


@dataclass(frozen=True)
class CacheWrite:
    past: str         # the past input, and the cache buffer it names
    new: str          # the output holding this chunk's rows
    offset: int       # byte offset of row `past` in the cache buffer
    nbytes: int
    in_place: bool    # the output is bound at buffer + offset; else staging, then one copy to there


@dataclass(frozen=True)
class StepPlan:
    phase: str
    past: int                                   # tokens already cached
    past_bound: int                             # cache rows bound as the past input (past, or its bucket)
    seq: int
    n_logits: int
    shapes: dict[str, tuple[int, ...]]          # every input's shape
    writes: tuple[CacheWrite, ...]
    mask_ranges: tuple[tuple[int, int], ...]    # (byte offset, bytes) of the mask buffer set to ones
    token_bytes: int                            # input_ids + position_ids + logit_positions in
    logits_bytes: int                           # logits out

    @property
    def bytes_h2d(self) -> int:
        return self.token_bytes + sum(n for _, n in self.mask_ranges)

    @property
    def bytes_d2d(self) -> int:
        return sum(w.nbytes for w in self.writes if not w.in_place)

    @property
    def mask_length(self) -> int:
        return self.past_bound + self.seq


def plan_step(geometry: Geometry, phase: str, past: int, seq: int, n_logits: int,
              force_staging: bool = False) -> StepPlan:
    """What one step binds and copies; buffers start 256-byte aligned (cudaMalloc's, or ours)."""
    g, batch = geometry, geometry.batch
    if phase not in PHASES:
        raise PipelineError(f"unknown phase {phase!r} (choose from {', '.join(PHASES)})")
    if seq < 1 or not 1 <= n_logits <= min(seq, g.max_logits):
        raise PipelineError(f"a step needs 1 <= n_logits ({n_logits}) <= sequence ({seq}) and <= the session's "
                            f"{g.max_logits} logit rows")
    if phase == "prefill" and (past != 0 or seq > g.max_prompt):
        raise PipelineError(f"prefill of {seq} tokens after {past}: the prefill profile takes an empty cache and "
                            f"at most {g.max_prompt} tokens")
    if phase == "decode" and seq != 1:
        raise PipelineError(f"decode takes one token per sequence, got {seq}")
    if past + seq > g.capacity:
        raise PipelineError(f"context full: {past} cached + {seq} new tokens exceed the capacity of {g.capacity}")
    bucketed = phase == "decode" and g.bucket > 0
    if bucketed and batch > 1:  # padding rows need zeros in a mask that batch > 1 copies whole
        raise PipelineError("a bucketed (CUDA graph) decode takes batch 1")
    past_bound = min(-(-past // g.bucket) * g.bucket, g.capacity - seq) if bucketed else past
    offset = past * g.row_bytes
    in_place = not (bucketed or force_staging) and offset % ALIGNMENT == 0
    nbytes = seq * g.row_bytes
    writes = tuple(CacheWrite(p, n, offset, nbytes, in_place) for p, n in cache_names(g.cache.layers))
    row = (batch, g.cache.kv_heads, g.cache.head_dim)
    shapes = {"input_ids": (batch, seq), "position_ids": (batch, seq), LOGIT_POSITIONS: (batch, n_logits),
              "attention_mask": (batch, past_bound + seq), **{w.past: (past_bound, *row) for w in writes}}
    if batch > 1:  # a [batch, length] mask is no prefix of a wider buffer: the whole mask, every step
        mask = ((0, batch * (past_bound + seq) * INT64),)
    elif bucketed:  # the token cached by the last step, and this token's column after the padded past
        mask = ((max(past - 1, 0) * INT64, INT64), (past_bound * INT64, INT64))
    else:
        mask = ((past * INT64, seq * INT64),)
    return StepPlan(phase, past, past_bound, seq, n_logits, shapes, writes, mask,
                    token_bytes=batch * (2 * seq + n_logits) * INT64,
                    logits_bytes=batch * n_logits * g.vocab * FLOAT32)


@dataclass
class Traffic:
    steps: int = 0
    tokens: int = 0
    h2d: int = 0
    d2h: int = 0
    d2d: int = 0

    def add(self, plan: StepPlan) -> None:
        self.steps += 1
        self.tokens += plan.seq * (plan.shapes["input_ids"][0])
        self.h2d += plan.bytes_h2d
        self.d2h += plan.logits_bytes
        self.d2d += plan.bytes_d2d


@dataclass
class DecodeSession:
    """prefill(), then decode() per token; `length` tokens are cached. Backends implement the four
    `_` methods; this class plans and counts."""

    name: str
    geometry: Geometry
    force_staging: bool = False
    length: int = 0
    traffic: dict[str, Traffic] = field(default_factory=lambda: {p: Traffic() for p in PHASES})

    @property
    def cache(self) -> CacheShape:
        return self.geometry.cache

    def reset(self) -> None:
        """A new sequence: the cache is reused as it is (rows past `length` are never read unmasked)."""
        self.length = 0
        self._reset_mask()

    def prefill(self, token_ids: np.ndarray, logit_positions: np.ndarray | None = None) -> np.ndarray:
        """Token ids [batch, sequence] from an empty cache; logits [batch, n, vocab] of `logit_positions`
        [batch, n] (default: the last position)."""
        ids = np.asarray(token_ids, np.int64)
        self.reset()
        seq = ids.shape[1]
        picks = np.full((ids.shape[0], 1), seq - 1, np.int64) if logit_positions is None else logit_positions
        return self._step("prefill", ids, np.asarray(picks, np.int64))

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """One new token per sequence [batch]; its logits [batch, 1, vocab]."""
        ids = np.asarray(tokens, np.int64).reshape(-1, 1)
        return self._step("decode", ids, np.zeros((ids.shape[0], 1), np.int64))

    def per_token(self) -> dict[str, float | None]:
        """Bytes between host and device per decoded token (the goal: token inputs in, logits out)."""
        t = self.traffic["decode"]
        return {"bytes_h2d_per_token": t.h2d / t.tokens if t.tokens else None,
                "bytes_d2h_per_token": t.d2h / t.tokens if t.tokens else None,
                "bytes_d2d_per_token": t.d2d / t.tokens if t.tokens else None}

    def _step(self, phase: str, ids: np.ndarray, picks: np.ndarray) -> np.ndarray:
        if ids.shape[0] != self.geometry.batch:
            raise PipelineError(f"{self.name}: batch of {ids.shape[0]}, the session was opened for "
                                f"{self.geometry.batch}")
        plan = plan_step(self.geometry, phase, self.length, ids.shape[1], picks.shape[1], self.force_staging)
        positions = np.broadcast_to(np.arange(self.length, self.length + ids.shape[1], dtype=np.int64),
                                    ids.shape)
        self._send(plan, ids, positions, picks)
        self._execute(plan)
        logits = self._receive(plan)
        self.length += plan.seq
        self.traffic[phase].add(plan)
        return logits

    def _reset_mask(self) -> None:
        raise NotImplementedError

    def _send(self, plan: StepPlan, ids: np.ndarray, positions: np.ndarray, picks: np.ndarray) -> None:
        raise NotImplementedError

    def _execute(self, plan: StepPlan) -> None:
        """Bind by address, run, and copy staged rows into the cache."""
        raise NotImplementedError

    def _receive(self, plan: StepPlan) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class DeviceLayout:
    """Every buffer of a session in one allocation (cache at capacity, staging, mask, token inputs,
    logits), each starting 256-byte aligned; and the host buffers the copies read and write."""

    offsets: dict[str, int]
    total: int
    host_offsets: dict[str, int]
    host_total: int


def device_layout(g: Geometry) -> DeviceLayout:
    tokens = aligned(g.batch * g.max_prompt * INT64)
    mask = aligned(g.batch * (g.capacity + 1) * INT64)
    logits = aligned(g.batch * g.max_logits * g.vocab * FLOAT32)
    sizes: dict[str, int] = {}
    for past, new in cache_names(g.cache.layers):
        sizes[past], sizes[new] = g.buffer_bytes, g.staging_bytes
    sizes |= {"attention_mask": mask, "input_ids": tokens, "position_ids": tokens, LOGIT_POSITIONS: tokens,
              LOGITS: logits}
    host = {"input_ids": tokens, "position_ids": tokens, LOGIT_POSITIONS: tokens, "ones": mask, LOGITS: logits}

    def place(table: dict[str, int]) -> tuple[dict[str, int], int]:
        at, offsets = 0, {}
        for name, size in table.items():
            offsets[name] = at
            at += size
        return offsets, at

    (offsets, total), (host_offsets, host_total) = place(sizes), place(host)
    return DeviceLayout(offsets, total, host_offsets, host_total)


@dataclass(frozen=True)
class Copy:
    kind: str     # h2d, d2d or d2h
    dst: int
    src: int
    nbytes: int


@dataclass(frozen=True)
class StepIO:
    """Addresses bound per tensor (with the input shapes), and the copies before and after the run."""

    addresses: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    before: tuple[Copy, ...]
    after: tuple[Copy, ...]

    def bytes(self, kind: str) -> int:
        return sum(c.nbytes for c in (*self.before, *self.after) if c.kind == kind)


def step_io(plan: StepPlan, layout: DeviceLayout, device: int, host: int, vocab: int) -> StepIO:
    """The step's addresses and copies for an allocation at `device` and host buffers at `host`."""
    d = {n: device + o for n, o in layout.offsets.items()}
    h = {n: host + o for n, o in layout.host_offsets.items()}
    batch = plan.shapes["input_ids"][0]
    addresses = {n: d[n] for n in ("input_ids", "position_ids", LOGIT_POSITIONS, "attention_mask", LOGITS)}
    before = [Copy("h2d", d[n], h[n], batch * plan.shapes[n][1] * INT64)
              for n in ("input_ids", "position_ids", LOGIT_POSITIONS)]
    before += [Copy("h2d", d["attention_mask"] + offset, h["ones"] + offset, nbytes)
               for offset, nbytes in plan.mask_ranges]
    after = []
    for w in plan.writes:
        addresses[w.past] = d[w.past]
        if w.in_place:
            addresses[w.new] = d[w.past] + w.offset
        else:
            addresses[w.new] = d[w.new]
            after.append(Copy("d2d", d[w.past] + w.offset, d[w.new], w.nbytes))
    after.append(Copy("d2h", h[LOGITS], d[LOGITS], plan.logits_bytes))
    return StepIO(addresses, plan.shapes, tuple(before), tuple(after))


class OnnxrtDecodeSession(DecodeSession):
    """ONNX Runtime (CPU) with I/O binding over one numpy block laid out as the device allocation
    (device_layout), so the address plan and the copies are the TensorRT session's, executed here: every
    input and output bound by address, the cache never copied, the new rows written in place."""

    def __init__(self, name: str, onnx_path: Path, geometry: Geometry, force_staging: bool = False,
                 providers: list[str] | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        super().__init__(name, geometry, force_staging)
        from ..runners.onnxrt import session_options

        options = session_options(onnx_path)
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
        self.ort = ort.InferenceSession(str(onnx_path), options, providers=providers or ["CPUExecutionProvider"])
        self.binding = self.ort.io_binding()
        self.dtype = np.dtype(geometry.cache.dtype)
        self.layout = device_layout(geometry)
        self._device = _aligned_block(self.layout.total)
        self._host = _aligned_block(self.layout.host_total)
        self.device, self.host = int(self._device.ctypes.data), int(self._host.ctypes.data)
        ones = self._host_view("ones", np.int64)
        ones[:] = 1

    def _host_view(self, name: str, dtype: Any) -> np.ndarray:
        return self._host[self.layout.host_offsets[name] :].view(dtype)

    def _reset_mask(self) -> None:
        start = self.layout.offsets["attention_mask"]
        self._device[start : start + self.geometry.batch * (self.geometry.capacity + 1) * INT64] = 0

    def _send(self, plan: StepPlan, ids: np.ndarray, positions: np.ndarray, picks: np.ndarray) -> None:
        for name, values in (("input_ids", ids), ("position_ids", positions), (LOGIT_POSITIONS, picks)):
            self._host_view(name, np.int64)[: values.size] = values.reshape(-1)
        self.io = step_io(plan, self.layout, self.device, self.host, self.geometry.vocab)
        _memcpy(self.io.before)

    def _execute(self, plan: StepPlan) -> None:
        bind, io = self.binding, self.io
        for name in ("input_ids", "position_ids", LOGIT_POSITIONS, "attention_mask"):
            bind.bind_input(name, "cpu", 0, np.int64, io.shapes[name], io.addresses[name])
        row = plan.shapes[plan.writes[0].past][1:] if plan.writes else ()
        for w in plan.writes:
            bind.bind_input(w.past, "cpu", 0, self.dtype, io.shapes[w.past], io.addresses[w.past])
            bind.bind_output(w.new, "cpu", 0, self.dtype, (plan.seq, *row), io.addresses[w.new])
        batch = plan.shapes["input_ids"][0]
        bind.bind_output(LOGITS, "cpu", 0, np.float32, (batch, plan.n_logits, self.geometry.vocab),
                         io.addresses[LOGITS])
        self.ort.run_with_iobinding(bind)
        _memcpy(io.after)

    def _receive(self, plan: StepPlan) -> np.ndarray:
        batch = plan.shapes["input_ids"][0]
        n = batch * plan.n_logits * self.geometry.vocab
        return self._host_view(LOGITS, np.float32)[:n].reshape(batch, plan.n_logits, self.geometry.vocab).copy()

    def cache_rows(self, past_name: str) -> np.ndarray:
        """The cached keys or values of one layer [length, batch, kv_heads, head_dim] (for tests)."""
        start = self.layout.offsets[past_name]
        rows = self._device[start : start + self.length * self.geometry.row_bytes].view(self.dtype)
        return rows.reshape(self.length, *self.cache.row_shape(self.geometry.batch))


def _aligned_block(nbytes: int) -> np.ndarray:
    raw = np.zeros(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes]


def _memcpy(copies: tuple[Copy, ...]) -> None:
    import ctypes

    for c in copies:
        ctypes.memmove(c.dst, c.src, c.nbytes)


def phase_profiles(manifest_profiles: list[dict[str, Any]], where: str) -> dict[str, int]:
    """Which optimization profile index serves each phase; one profile without phases serves both."""
    found = {p.get("phase"): i for i, p in enumerate(manifest_profiles)}
    if all(ph in found for ph in PHASES):
        return {ph: found[ph] for ph in PHASES}
    if len(manifest_profiles) == 1:
        return dict.fromkeys(PHASES, 0)
    raise PipelineError(f"{where}: profiles name phases {sorted(map(str, found))}; need 'prefill' and 'decode'")


def onnx_geometry(onnx_path: Path, max_context: int, max_prompt: int, batch: int = 1, bucket: int = 0,
                  logit_rows: int = 0) -> Geometry:
    from ..core import onnx_utils

    io = onnx_utils.io_spec(onnx_utils.load(onnx_path, with_weights=False))
    vocab = next(o["shape"][-1] for o in io["outputs"] if o["name"] == LOGITS)
    if not isinstance(vocab, int) or vocab <= 0:
        raise PipelineError(f"{onnx_path}: output {LOGITS!r} has no fixed vocabulary dimension")
    return Geometry(CacheShape.from_io(io), vocab, max_context, max_prompt, batch, bucket, logit_rows)


def manifest_geometry(manifest: dict[str, Any], batch: int = 1, bucket: int = 0, logit_rows: int = 0) -> Geometry:
    """From the manifest's `llm` section (docs/manifest.md), as the C++ LlmSession reads it."""
    llm = manifest["llm"]
    kv = llm["kv_cache"]
    cache = CacheShape(int(kv["layers"]), int(kv["kv_heads"]), int(kv["head_dim"]), str(kv["dtype"]))
    return Geometry(cache, int(llm["logits"]["vocab"]), int(kv["max_context"]), int(llm["max_prompt"]), batch,
                    bucket, logit_rows)


@contextmanager
def onnxrt_session(onnx_path: Path, max_context: int, max_prompt: int, name: str = "onnxrt",
                   force_staging: bool = False, bucket: int = 0, threads: int = 0,
                   logit_rows: int = 0) -> Iterator[OnnxrtDecodeSession]:
    geometry = onnx_geometry(onnx_path, max_context, max_prompt, bucket=bucket, logit_rows=logit_rows)
    yield OnnxrtDecodeSession(name, onnx_path, geometry, force_staging, threads=threads)


@contextmanager
def tensorrt_session(engine_path: Path, manifest: dict[str, Any], cuda_graphs: bool = False,
                     bucket: int = 64, logit_rows: int = 0) -> Iterator[DecodeSession]:
    """Needs a GPU that can execute the engine (a Jetson); see trt.backend.execution_blocker."""
    from ..trt.llm_session import TrtDecodeSession

    geometry = manifest_geometry(manifest, bucket=bucket if cuda_graphs else 0, logit_rows=logit_rows)
    session = TrtDecodeSession("tensorrt", Path(engine_path), geometry,
                               phase_profiles(manifest["profiles"], str(engine_path)), cuda_graphs=cuda_graphs)
    try:
        yield session
    finally:
        session.close()
