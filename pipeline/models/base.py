"""The one small interface every model family implements; stages never branch on the family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..recipe.loader import Recipe

Feed = dict[str, np.ndarray]


class LazyFeeds(Sequence[Feed]):
    """Samples made one at a time from their files, never all in memory: a calibration folder of any size
    costs the memory of one sample (the quantizers stream them; see quantize/feeds.py)."""

    def __init__(self, items: Sequence[Any], make: Callable[[Any], Feed]) -> None:
        self._items, self._make = list(items), make

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Feed: ...
    @overload
    def __getitem__(self, index: slice) -> LazyFeeds: ...

    def __getitem__(self, index: int | slice) -> Feed | LazyFeeds:
        if isinstance(index, slice):
            return LazyFeeds(self._items[index], self._make)
        return self._make(self._items[index])

    def __iter__(self) -> Iterator[Feed]:
        return (self._make(item) for item in self._items)


@dataclass
class SourceInfo:
    """What an export depends on, found without importing torch (so an up-to-date run stays fast)."""

    description: dict[str, Any]  # recorded in the stamp and the manifest's `weights`
    files: list[Path] = field(default_factory=list)  # their content is part of the cache key


@dataclass
class ExportResult:
    """What the family's exporter reports back: PyTorch outputs on the parity feeds, and provenance."""

    torch_outputs: list[list[np.ndarray]]  # per feed, in the ONNX graph's output order
    random_weights: bool
    source: str
    notes: list[str] = field(default_factory=list)


@dataclass
class DataSet:
    """A materialized set of samples on disk: its identity is the content of `path`."""

    path: Path
    count: int
    description: str
    recommended_min: int = 0  # fewer samples than this: calibrate warns (once, when it calibrates)


class ModelAdapter(ABC):
    """One per family: load, export, make calibration and held-out inputs, describe pre/post-processing
    for the manifest, and judge accuracy at the task level."""

    family: str
    tools: tuple[str, ...] = ()  # distributions whose version changes the export (cache key)
    # The build's `extra_profile_memory` where the recipe gives none (pipeline/stages/plan.py); None: TensorRT's.
    extra_profile_memory: float | None = None

    @abstractmethod
    def source(self, recipe: Recipe) -> SourceInfo: ...

    @abstractmethod
    def export(self, recipe: Recipe, onnx_out: Path, feeds: list[Feed]) -> ExportResult:
        """Load the PyTorch model, write the ONNX to `onnx_out`, return PyTorch outputs on `feeds`."""

    @abstractmethod
    def calibration_set(self, recipe: Recipe, calib_root: Path) -> DataSet:
        """Materialize (if built in) and validate the calibration set; cheap when it already exists."""

    @abstractmethod
    def calibration_feeds(self, recipe: Recipe, data: DataSet) -> list[Feed]: ...

    @abstractmethod
    def eval_feeds(self, recipe: Recipe) -> list[Feed]:
        """Held-out inputs (never used for calibration) for parity and accuracy checks."""

    @abstractmethod
    def deploy_info(self, recipe: Recipe, onnx_metadata: dict[str, str]) -> dict[str, Any]:
        """The manifest's `preprocess` and `postprocess` sections."""

    def io_dtypes(self, recipe: Recipe, precision: str) -> dict[str, str]:
        """Graph inputs / outputs whose dtype the calibrated ONNX of `precision` must have (numpy names),
        whatever the graph computes in: e.g. an LLM's KV cache in float16 (quantize/io_dtype.py)."""
        return {}

    def placeholders(self, onnx_metadata: dict[str, str], node_names: list[str]) -> dict[str, str]:
        """Values for `{name}` placeholders in the recipe's node patterns (regex-escaped by the caller)."""
        return {}

    def task_accuracy(
        self,
        recipe: Recipe,
        output_names: list[str],
        reference: list[list[np.ndarray]],
        candidate: list[list[np.ndarray]],
    ) -> dict[str, Any]:
        """Task-level agreement of a candidate with the FP32 reference (e.g. mAP for detection). A family with
        its own accuracy floor sets `passed` (False fails the profile's gate) and `gate_reason` (why)."""
        return {}

    def ground_truth(self, recipe: Recipe, model: Path, samples: int | None = None) -> dict[str, Any] | None:
        """The task metrics of the ONNX `model` against the recipe's ground truth (labels, held-out text, the
        true noise), on the first `samples` held-out items (None: all), or None when the recipe has none.

        Returns `{"reference": what the truth is, in words, "samples": n, "metrics": {name: value}}`; the
        metric names are the budget's (`map50_95`, `top1`, `perplexity`, `eps_mse`, ...). The same data for
        every model of one recipe, so FP32's and a candidate's numbers compare (evaluation/budget.py)."""
        return None

    def runtime_metrics(self, recipe: Recipe, models: dict[str, Path], manifest: dict[str, Any]) -> dict[str, Any]:
        """Metrics that need the family's own run loop (an LLM's perplexity, time to first token, tokens/s).

        `models` maps each runner that can run here (e.g. `onnxrt-fp32`, `onnxrt-int4-awq`, `tensorrt`) to
        its ONNX or engine file, the FP32 reference first. Return `{"metric": str, "by_runner": {runner:
        {key: value}}, ...}` for the report, or {} (the default) when the family has none.
        """
        return {}
