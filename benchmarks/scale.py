"""Real architectures at real sizes, random weights built from their configs (nothing downloaded), through
every stage as a user runs it (`orin-trt` in a child process), each under a peak-memory probe.

    .venv/bin/python benchmarks/scale.py [--models vit-b16,yolo11m] [--stages export,fp16,int8,build-fp16]
        [--root /tmp/orin-trt-scale] [--cgroup /sys/fs/cgroup/memory/scale] [--results benchmarks/results/scale.md]

Stages: `export`, a calibrate per precision (`fp32`, `fp16`, `int8`, `int4`), a build per precision
(`build-fp16`, ...). A row already measured with status ok in the results file is skipped (resumable;
`--redo` measures it again). Each row records wall time, the child's peak RSS (its largest process, from
wait4's ru_maxrss; with `--cgroup`, the cgroup's peak resident anonymous memory as well), the stage's output
bytes, the builder's weights / activation memory (the manifest), and peak RSS against the goal: at most
2 x the weight bytes at the export precision + 2 GiB.

With `--cgroup` each child joins that memory cgroup first, so an out-of-memory kill hits only it. With
`--fit` as well, each stage after export runs in `<cgroup>/goal`, limited to its goal, its input files
dropped from the page cache first: a stage whose peak RSS counts clean pages of a mapped weights file (the
TensorRT parser maps the ONNX's data) shows whether it runs to its end in that much memory. The row then
records the anonymous peak and the limit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this tree's pipeline, also where it is not installed (the GPU machine)
GIB = 1 << 30
DEFAULT_STAGES = ("export", "fp32", "fp16", "int8", "int4", "build-fp32", "build-fp16", "build-int8", "build-int4")
PRECISION = {"fp32": "fp32", "fp16": "fp16", "int8": "int8", "int4": "int4-awq"}

LLAMA_3_2_1B = {
    "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 131072,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
}
LLAMA_3_8B = {
    "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 8192,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
}
SD15_UNET = {  # runwayml/stable-diffusion-v1-5 unet/config.json (the architecture keys)
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32,
}
LATENT = [2, 4, 64, 64]  # 512x512 images, classifier-free guidance batch 2
TEXT = [2, 77, 768]


def _llama(name: str, config: dict[str, Any], samples: int, dtype: str = "auto") -> dict[str, Any]:
    return {"base": "llama", "name": name, "description": f"{name} architecture, random weights",
            "source": {"pretrained": None, "tokenizer": "builtin", "config": config},
            "export": {"dtype": dtype},
            "llm": {"max_batch": 1, "max_prompt": 128, "max_context": 256},
            "calibration": {"max_samples": samples, "sequence_length": 64},
            "eval": {"samples": 1, "sequence_length": 32}}


# Each model: its recipe over a built-in one, and the calibrate precisions its family has.
MODELS: dict[str, dict[str, Any]] = {
    "vit-b16": {
        "recipe": {"base": "vit", "name": "vit-b16", "description": "ViT-B/16 architecture, random weights",
                   "source": {"pretrained": None, "config": {
                       "image_size": 224, "patch_size": 16, "hidden_size": 768, "num_hidden_layers": 12,
                       "num_attention_heads": 12, "intermediate_size": 3072, "num_labels": 1000}},
                   "calibration": {"max_samples": 16}},
        "precisions": ("fp16", "int8"),
    },
    "yolo11m": {
        "recipe": {"base": "yolo", "name": "yolo11m", "description": "YOLO11m architecture, random weights",
                   "source": {"checkpoint": None, "config": "yolo11m.yaml"}, "calibration": {"max_samples": 16}},
        "precisions": ("fp16", "int8"),
    },
    "sd15-unet": {
        "recipe": {"base": "unet", "name": "sd15-unet", "description": "SD-1.5 UNet architecture, random weights",
                   "source": {"pretrained": None, "config": SD15_UNET},
                   "profiles": [{"name": "default", "phase": None, "shapes": {
                       "sample": {"min": LATENT, "opt": LATENT, "max": LATENT},
                       "timestep": {"min": [2], "opt": [2], "max": [2]},
                       "encoder_hidden_states": {"min": TEXT, "opt": TEXT, "max": TEXT}}}],
                   # A PyTorch FP32 forward takes about a minute on 2 cores: few samples, few held-out points.
                   "calibration": {"runs": 1, "steps": 4, "max_samples": 4},
                   "eval": {"points": 2, "loop_steps": 2},
                   "precisions": {"fp16": {"calibration_samples": 2}},
                   "build": {"workspace_mib": 4096}},
        "precisions": ("fp16", "int8"),
    },
    "llama-3.2-1b": {"recipe": _llama("llama-3.2-1b", LLAMA_3_2_1B, 8), "precisions": ("fp16", "int8", "int4")},
    # 32 GB in FP32: exported from FP16 weights (16 GB), as a workstation would, for INT4 on the GPU machine.
    "llama-3-8b": {"recipe": _llama("llama-3-8b", LLAMA_3_8B, 8, "float16"), "precisions": ("fp16", "int8", "int4")},
    # Llama-3-8B's tensors (4096 hidden, 14,336 MLP, the untied 128,256 x 4096 embedding and head) with 4 of
    # its 32 layers, from FP16 weights (3.98 GB of ONNX): what the 8B's stages hold per byte, measurable on this host.
    # ... and with 8 (5.72 GB): two probes give each stage's peak as a line in the layer count, to 32.
    **{f"llama-3-8b-{n}l": {"recipe": _llama(f"llama-3-8b-{n}l", {**LLAMA_3_8B, "num_hidden_layers": n}, 8, "float16"),
                            "precisions": ("fp16", "int8", "int4")} for n in (4, 8)},
}
# The same architectures exported from FP16 weights (export.dtype: float16), in folders of their own.
for _name in ("sd15-unet", "llama-3.2-1b"):
    _fp16 = {**MODELS[_name]["recipe"], "name": f"{_name}-fp16w"}
    _fp16["export"] = {**_fp16.get("export", {}), "dtype": "float16"}
    MODELS[f"{_name}-fp16w"] = {**MODELS[_name], "recipe": _fp16}
ORDER = ("vit-b16", "yolo11m", "sd15-unet", "llama-3.2-1b", "sd15-unet-fp16w", "llama-3.2-1b-fp16w", "llama-3-8b",
         "llama-3-8b-4l", "llama-3-8b-8l")

COLUMNS = ("model", "stage", "status", "wall s", "peak RSS GiB", "cgroup peak GiB", "weights GB", "peak / weights",
           "goal GiB", "within goal", "outputs GB", "engine weights / activations MB", "host", "when", "note",
           "anon peak GiB", "cgroup limit GiB")


@dataclass
class Row:
    model: str
    stage: str
    status: str = "ok"
    wall_s: float = 0.0
    peak_rss: int = 0
    cgroup_peak: int | None = None
    anon_peak: int | None = None  # the cgroup's resident anonymous memory: what cannot be reclaimed
    limit: int | None = None  # the memory cgroup's limit the child ran under (--fit: the goal)
    weights: int | None = None
    outputs: int | None = None
    engine: tuple[int | None, int | None] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        goal = 2 * self.weights + 2 * GIB if self.weights else None
        ratio = f"{self.peak_rss / self.weights:.2f}" if self.weights else "-"
        eng = "-" if not self.engine else " / ".join(f"{(v or 0) / 1e6:.0f}" for v in self.engine)
        return [self.model, self.stage, self.status, f"{self.wall_s:.0f}", f"{self.peak_rss / GIB:.1f}",
                _gib(self.cgroup_peak), "-" if not self.weights else f"{self.weights / 1e9:.2f}", ratio,
                _gib(goal), self.within_goal(goal),
                "-" if self.outputs is None else f"{self.outputs / 1e9:.2f}", eng,
                f"{platform.node() or 'host'} {os.cpu_count()} cores", dt.datetime.now(dt.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M"), self.note.replace("|", "/").replace("\n", " ")[:300],
                _gib(self.anon_peak), _gib(self.limit)]

    def within_goal(self, goal: int | None) -> str:
        """yes when the stage ran to its end with a peak RSS under the goal (with --fit the cgroup's limit
        holds it there: pages of mapped weight files are reclaimed instead of counted)."""
        if goal is None or self.status != "ok":
            return "-"
        return "yes" if self.peak_rss <= goal else "**no**"


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / GIB:.1f}"


# ---- the results file --------------------------------------------------------------------------------
def measured(results: Path) -> set[tuple[str, str]]:
    """(model, stage) rows already in the results file with status ok."""
    done: set[tuple[str, str]] = set()
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3 and cells[2] == "ok":
                done.add((cells[0], cells[1]))
    return done


def append(results: Path, row: Row) -> None:
    """The row after the table's last row (notes below the table stay below it)."""
    from pipeline.core.artifacts import write_text

    results.parent.mkdir(parents=True, exist_ok=True)
    lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
    line = "| " + " | ".join(row.cells()) + " |"
    if not any(ln.startswith("| model | stage |") for ln in lines):
        lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS), line]
    else:
        last = max(i for i, ln in enumerate(lines) if ln.startswith("|"))
        lines.insert(last + 1, line)
    write_text(results, "\n".join(lines) + "\n")


# ---- the memory probe --------------------------------------------------------------------------------
class CgroupPeak:
    """Samples the cgroup's resident anonymous + mapped-file memory (memory.stat), not its page cache,
    which memory.max_usage_in_bytes counts and the writes of a multi-GB ONNX fill; and the anonymous part
    alone (mapped weight files are clean pages the kernel reclaims before it kills anything)."""

    def __init__(self, cgroup: Path | None) -> None:
        self.stat = cgroup / "memory.stat" if cgroup else None
        self.peak: int | None = None
        self.anon: int | None = None
        self._stop = threading.Event()

    def _read(self) -> tuple[int, int]:
        values = dict(line.split() for line in self.stat.read_text().splitlines())  # type: ignore[union-attr]
        anon = int(values.get("total_rss", values.get("rss", 0)))
        return anon + int(values.get("total_mapped_file", 0)), anon

    def __enter__(self) -> CgroupPeak:
        if self.stat and self.stat.exists():
            self.base = self._read()
            self.peak = self.anon = 0
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            both, anon = self._read()
            self.peak = max(self.peak or 0, both - self.base[0])
            self.anon = max(self.anon or 0, anon - self.base[1])

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()


def goal_cgroup(parent: Path, limit: int, inputs: list[Path]) -> Path:
    """`parent`/goal, a memory cgroup (v1) limited to `limit` bytes, with `inputs` dropped from the page
    cache first: pages cached by an earlier stage are charged to whichever cgroup read them, so a stage
    reading them again would not be held to the limit."""
    child = parent / "goal"
    child.mkdir(exist_ok=True)
    (child / "memory.limit_in_bytes").write_text(str(limit))
    for path in inputs:
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return child


def run_child(cmd: list[str], log_path: Path, cgroup: Path | None) -> tuple[int, float, int, CgroupPeak]:
    """The command in a child (joining `cgroup` first); returns exit code, wall seconds, ru_maxrss bytes and
    the cgroup's peaks."""
    procs = cgroup / "cgroup.procs" if cgroup else None

    def join() -> None:
        if procs is not None:
            procs.write_text(str(os.getpid()))

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log, CgroupPeak(cgroup) as probe:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env, preexec_fn=join)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, time.perf_counter() - t0, usage.ru_maxrss * 1024, probe


# ---- what a stage left -------------------------------------------------------------------------------
def onnx_files_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return (path.stat().st_size if path.exists() else 0) + (data.stat().st_size if data.exists() else 0)


def weight_bytes(onnx_path: Path) -> int | None:
    """Initializer bytes of the exported ONNX (its weights at the export precision), weights left on disk."""
    if not onnx_path.exists():
        return None
    from pipeline.core import onnx_utils

    return sum(onnx_utils.tensor_bytes(t) for t in onnx_utils.load_header(onnx_path).graph.initializer)


def tail(path: Path, lines: int = 3) -> str:
    text = [t for t in path.read_text(encoding="utf-8", errors="replace").splitlines() if t.strip()]
    errors = [t for t in text if "error" in t.lower() or "Killed" in t or "MemoryError" in t]
    return " / ".join((errors or text)[-lines:])


def measure(model: str, stage: str, root: Path, cgroup: Path | None, extra_args: list[str],
            fit: bool = False) -> Row:
    from pipeline.core.artifacts import Layout, read_json

    recipe_path = root / "recipes" / f"{model}.recipe.yaml"
    layout = Layout(root / "engines", model)
    if stage == "export":
        cmd, precision = ["export"], None
    elif stage.startswith("build-"):
        precision = PRECISION[stage.removeprefix("build-")]
        cmd = ["build", "-p", precision]
    else:
        precision = PRECISION[stage]
        cmd = ["calibrate", "-p", precision]
    argv = [sys.executable, "-m", "pipeline", *cmd, "--model", str(recipe_path), "--root", str(root / "engines"),
            "--calib-root", str(root / "calib"), "--force", *extra_args]
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{model}.{stage}.log"
    print(f"[scale] {model} {stage}: {' '.join(argv[1:])} (log {log_path})", file=sys.stderr, flush=True)
    weights = weight_bytes(layout.exported_onnx)
    limit = None
    if fit and cgroup is not None and stage != "export" and weights:
        limit = 2 * weights + 2 * GIB
        read = layout.exported_onnx if not stage.startswith("build-") else layout.calibrated_onnx(precision)
        cgroup = goal_cgroup(cgroup, limit, [read, read.with_name(read.name + ".data")])
    elif cgroup is not None:
        text = (cgroup / "memory.limit_in_bytes").read_text().strip() if (cgroup / "memory.limit_in_bytes").exists() else ""
        limit = int(text) if text.isdigit() and int(text) < 1 << 60 else None
    rc, wall, rss, probe = run_child(argv, log_path, cgroup)
    row = Row(model, stage, wall_s=wall, peak_rss=rss, cgroup_peak=probe.peak, anon_peak=probe.anon, limit=limit,
              weights=weights or weight_bytes(layout.exported_onnx))  # an export's are known once it ran
    if rc != 0:
        row.status = "killed (out of memory?)" if rc in (-9, 137) else f"failed (exit {rc})"
        row.note = tail(log_path)
    if stage == "export":
        row.outputs = onnx_files_bytes(layout.exported_onnx)
    elif stage.startswith("build-"):
        engine = layout.engine(precision)
        row.outputs = engine.stat().st_size if engine.exists() and rc == 0 else None  # not an earlier run's
        if rc == 0 and layout.manifest(precision).exists():
            mem = read_json(layout.manifest(precision)).get("memory", {})
            row.engine = (mem.get("weights_bytes"), mem.get("activation_bytes"))
    else:
        row.outputs = onnx_files_bytes(layout.calibrated_onnx(precision))
    print(f"[scale] {model} {stage}: {row.status}, {wall:.0f} s, peak RSS {rss / GIB:.2f} GiB", file=sys.stderr,
          flush=True)
    return row


def stages_for(model: str, stages: list[str]) -> list[str]:
    have = set(MODELS[model]["precisions"]) | {"fp32"}
    return [s for s in stages if s == "export" or s.removeprefix("build-") in have]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", "--model", default=",".join(ORDER[:4]),
                    help=f"comma-separated, of {', '.join(ORDER)} (default: the first four)")
    ap.add_argument("--stages", default=",".join(DEFAULT_STAGES), help="comma-separated (default: every stage)")
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("SCALE_ROOT", "/tmp/orin-trt-scale")))
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "scale.md")
    ap.add_argument("--cgroup", type=Path, default=None, help="memory cgroup (v1) folder each child joins")
    ap.add_argument("--redo", action="store_true", help="measure rows already in the results file again")
    ap.add_argument("--fit", action="store_true",
                    help="run each stage after export in a child cgroup of --cgroup limited to its goal")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                    help="passed to every stage (e.g. export.dtype=float16)")
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s != "export" and s.removeprefix("build-") not in PRECISION]
    if unknown or bad:
        print(f"scale.py: unknown {'model' if unknown else 'stage'} {(unknown or bad)[0]!r}", file=sys.stderr)
        return 2
    if args.fit and args.cgroup is None:
        print("scale.py: --fit needs --cgroup (the goal cgroup is made inside it)", file=sys.stderr)
        return 2
    extra = [a for o in args.overrides for a in ("--set", o)]
    done = set() if args.redo else measured(args.results)
    (args.root / "recipes").mkdir(parents=True, exist_ok=True)
    for model in models:
        (args.root / "recipes" / f"{model}.recipe.yaml").write_text(yaml.safe_dump(MODELS[model]["recipe"], sort_keys=False))
        for stage in stages_for(model, stages):
            if (model, stage) in done:
                print(f"[scale] {model} {stage}: measured already ({args.results}); --redo to measure again",
                      file=sys.stderr)
                continue
            row = measure(model, stage, args.root, args.cgroup, extra, args.fit)
            if args.overrides:
                row.note = (" ".join(args.overrides) + "; " + row.note).strip("; ")
            append(args.results, row)
            if stage == "export" and row.status != "ok":
                break  # nothing else of this model can run
    return 0


if __name__ == "__main__":
    sys.exit(main())
