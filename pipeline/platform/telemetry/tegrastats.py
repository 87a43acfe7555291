"""Parse tegrastats lines of every L4T release, and sample tegrastats for exactly a benchmark window.

The line format drifted between releases, so fields are found by their own patterns, never by
position:
- r32 (Nano / TX2 / Xavier): no timestamp, `GR3D_FREQ 12%@921`, rails without units
  (`POM_5V_IN 2416/2416`, `VDD_IN 14025/14416`), upper-case sensors (`GPU@51C`).
- r35 / r36 (Orin): an optional `MM-DD-YYYY HH:MM:SS` prefix, `GR3D_FREQ 63%@[621]` (one frequency
  per GPC, or none at all: `GR3D_FREQ 0%`), rails in mW (`VDD_IN 4824mW/4824mW`, some builds print a
  third value), lower-case sensors (`cpu@50.031C`), `-256C` for a sensor that is absent.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ...errors import PipelineError

_TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)*(?![\w])")
# The lookahead stops `RAM 2190/3964MB` or `SWAP 0/3810MB` from reading as rails.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?:/\d+(?:mW)?)?(?![\w])")

# tegrastats prints -256C for a sensor it lists but cannot read (e.g. CV0 on an Orin Nano).
_ABSENT_SENSOR_C = -256.0
# Rails that are placeholders, not measurements.
_IGNORED_RAILS = {"NC"}
# The board's input rail, by name, newest first: what energy is integrated over.
_INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
# AGX Orin prints no input rail; its module power is the sum of these three.
_AGX_ORIN_RAILS = ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")


@dataclass(frozen=True)
class TegraSample:
    """One tegrastats line. Power in mW as printed (instantaneous value), RAM in MB."""

    ram_used_mb: int
    ram_total_mb: int
    gpu_load_pct: float | None
    gpu_freq_mhz: tuple[int, ...]
    rails_mw: dict[str, float]
    temps_c: dict[str, float]
    printed_at: datetime | None = None

    @property
    def input_power_mw(self) -> float | None:
        """The whole module's power: its input rail, or AGX Orin's three rails summed."""
        for name in _INPUT_RAILS:
            if name in self.rails_mw:
                return self.rails_mw[name]
        if all(name in self.rails_mw for name in _AGX_ORIN_RAILS):
            return sum(self.rails_mw[name] for name in _AGX_ORIN_RAILS)
        return None


def parse_line(line: str) -> TegraSample | None:
    """A sample, or None for a line that is not tegrastats output (banner, blank, error)."""
    ram = _RAM.search(line)
    if ram is None:
        return None
    printed_at = None
    stamp = _TIMESTAMP.match(line)
    if stamp:
        printed_at = datetime.strptime(stamp.group(1), "%m-%d-%Y %H:%M:%S")
    gpu_load: float | None = None
    freqs: tuple[int, ...] = ()
    gr3d = _GR3D.search(line)
    if gr3d:
        gpu_load = float(gr3d.group(1))
        if gr3d.group(2):
            freqs = tuple(int(f) for f in gr3d.group(2).split(",") if f)
    temps = {
        m.group(1).lower(): float(m.group(2))
        for m in _TEMP.finditer(line)
        if float(m.group(2)) != _ABSENT_SENSOR_C
    }
    rails = {
        m.group(1): float(m.group(2)) for m in _RAIL.finditer(line) if m.group(1) not in _IGNORED_RAILS
    }
    return TegraSample(
        ram_used_mb=int(ram.group(1)),
        ram_total_mb=int(ram.group(2)),
        gpu_load_pct=gpu_load,
        gpu_freq_mhz=freqs,
        rails_mw=rails,
        temps_c=temps,
        printed_at=printed_at,
    )


def parse_lines(lines: Iterable[str]) -> list[TegraSample]:
    return [s for s in (parse_line(line) for line in lines) if s is not None]


@dataclass(frozen=True)
class TimedSample:
    """A sample stamped with the sampler's clock when its line arrived (seconds)."""

    t: float
    sample: TegraSample


@dataclass
class Window:
    """The benchmark window on the sampler's clock; `end` is set when the window closes."""

    start: float
    end: float | None = None
    samples: list[TimedSample] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        if self.end is None:
            raise PipelineError("tegrastats window is still open")
        return self.end - self.start


class TegrastatsSampler:
    """Runs tegrastats in the background; `window()` marks exactly the benchmark's span.

    tegrastats is started before the window so that readings already flow when the benchmark
    begins; the window keeps the samples that arrived inside it plus the one just before and just
    after it, so the energy integral can interpolate the power at both edges.
    """

    def __init__(
        self,
        interval_ms: int = 100,
        command: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        first_sample_timeout_s: float = 5.0,
    ) -> None:
        if command:
            self.command = list(command)
        else:
            # Readings are stamped when their line arrives, so a block-buffered pipe would bunch them
            # up and skew the energy integral: ask for line buffering where coreutils' stdbuf exists.
            line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
            self.command = [*line_buffered, "tegrastats", "--interval", str(interval_ms)]
        self.clock = clock
        self.first_sample_timeout_s = first_sample_timeout_s
        self.samples: list[TimedSample] = []
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> TegrastatsSampler:
        try:
            self._proc = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
            )
        except OSError as e:
            raise PipelineError(f"cannot start tegrastats ({' '.join(self.command)}): {e}") from e
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._first.wait(self.first_sample_timeout_s):
            self.__exit__(None, None, None)
            raise PipelineError(
                f"tegrastats printed no reading within {self.first_sample_timeout_s:.0f} s "
                f"({' '.join(self.command)}); is it run as root on a Jetson?"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_line(line)
            if sample is None:
                continue
            with self._lock:
                self.samples.append(TimedSample(self.clock(), sample))
            self._first.set()

    @contextlib.contextmanager
    def window(self) -> Iterator[Window]:
        """Mark the benchmark window. After the block, waits for the first reading past its end."""
        win = Window(start=self.clock())
        try:
            yield win
        finally:
            win.end = self.clock()
            self._await_sample_after(win.end)
            with self._lock:
                win.samples = _around(self.samples, win.start, win.end)

    def _await_sample_after(self, t: float) -> None:
        deadline = time.monotonic() + self.first_sample_timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.samples and self.samples[-1].t >= t:
                    return
            if self._proc is not None and self._proc.poll() is not None:
                return
            time.sleep(0.01)


def _around(samples: list[TimedSample], start: float, end: float) -> list[TimedSample]:
    """The samples inside [start, end] plus the nearest one on each side."""
    before = [s for s in samples if s.t < start][-1:]
    inside = [s for s in samples if start <= s.t <= end]
    after = [s for s in samples if s.t > end][:1]
    return before + inside + after
