"""An LLM engine's size and its build's memory with the recipe's prefill + decode profiles against one
profile spanning both, on a built engine's ONNX (e.g. benchmarks/scale.py's Llama-3.2-1B), through the
pipeline's own build (`trt.build.build_engine`: the plan streamed into the file; once more with the plan
returned in one buffer, as TensorRT 10.3 does). Each build runs in a child
process of its own, so each peak is that build's alone.

    .venv/bin/python benchmarks/llm_build_profiles.py <precision folder with model.onnx + model.engine.json>

Prints a markdown table (benchmarks/results/llm_build_profiles.md). Peak RSS counts the pages of the
mapped data file, which the kernel reclaims under a limit; the anonymous peak is what a build cannot give
back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GIB = 1 << 30


def merged(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """One profile covering every profile's shapes, tuned (opt) at the last one's: decode for an LLM."""
    names = profiles[0]["shapes"]
    return {"name": "shared", "phase": None, "shapes": {n: {
        "min": [min(d) for d in zip(*(p["shapes"][n]["min"] for p in profiles), strict=True)],
        "opt": profiles[-1]["shapes"][n]["opt"],
        "max": [max(d) for d in zip(*(p["shapes"][n]["max"] for p in profiles), strict=True)]} for n in names}}


def _peaks(stop: threading.Event, peak: dict[str, int]) -> None:
    while not stop.wait(0.02):  # engine_weights_per_profile.py's small builds last under a second
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key = line.split(":")[0]
                if key in ("VmRSS", "RssAnon"):
                    peak[key] = max(peak.get(key, 0), int(line.split()[1]) * 1024)


class _BufferedBuilder:
    """The builder as TensorRT 10.3 has it (no stream API): the plan comes back in one buffer."""

    def __init__(self, builder: Any) -> None:
        self.builder = builder

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        return self.builder.build_serialized_network(network, config)


def child(onnx_path: str, profiles_json: str, engine_path: str, buffered: str, extra: str = "") -> None:
    import pipeline.trt.build as trt_build
    from pipeline.trt.build import BuildOptions, build_engine

    if buffered == "1":
        stream = trt_build._serialize
        trt_build._serialize = lambda trt, builder, *rest: stream(trt, _BufferedBuilder(builder), *rest)

    profiles = [{n: (s["min"], s["opt"], s["max"]) for n, s in p["shapes"].items()} for p in json.loads(profiles_json)]
    stop, peak = threading.Event(), {}
    threading.Thread(target=_peaks, args=(stop, peak), daemon=True).start()
    out = build_engine(Path(onnx_path), BuildOptions(profiles=profiles, workspace_bytes=1 << 30,
                                                     extra_profile_memory=float(extra) if extra else None),
                       Path(engine_path))
    time.sleep(0.3)
    stop.set()
    print(json.dumps({"plan": out.plan_bytes, "weights": out.memory.get("weights_bytes"), "seconds": out.seconds,
                      "rss": peak.get("VmRSS"), "anon": peak.get("RssAnon"), "backend": out.backend.describe()}))


def measure(onnx_path: Path, profiles: list[dict[str, Any]], buffered: bool = False,
            extra_profile_memory: float | None = None) -> dict[str, Any]:
    """The build by trt/build.py in a child process: plan and weight bytes, seconds, peak RSS / anonymous;
    `extra_profile_memory` as the recipe's `build.extra_profile_memory` (None: TensorRT's default)."""
    extra = "" if extra_profile_memory is None else str(extra_profile_memory)
    with tempfile.TemporaryDirectory(prefix="llm-profiles-") as tmp:
        run = subprocess.run([sys.executable, __file__, "--child", str(onnx_path), json.dumps(profiles),
                              str(Path(tmp) / "model.engine"), "1" if buffered else "0", extra],
                             capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def print_builds(results: dict[str, dict[str, Any]], folder: Path, first: str) -> None:
    """`measure`'s results as a markdown table, one row per build."""
    backend = next(iter(results.values()))["backend"]
    print(f"Builder: {backend}; ONNX: {folder.parent.name}/{folder.name}\n")
    print(f"| {first} | engine GB | builder's weights GB | build s | peak RSS GiB | anonymous peak GiB |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['plan'] / 1e9:.2f} | {(r['weights'] or 0) / 1e9:.2f} | {r['seconds']:.0f} | "
              f"{r['rss'] / GIB:.1f} | {r['anon'] / GIB:.1f} |")


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:7])
        return 0
    folder = Path(sys.argv[1])
    profiles = json.loads((folder / "model.engine.json").read_text())["profiles"]
    label = f"{len(profiles)} profiles ({', '.join(p['name'] for p in profiles)})"
    results = {label: measure(folder / "model.onnx", profiles),
               label + ", the plan in one buffer (TensorRT 10.3's API)": measure(folder / "model.onnx", profiles, True),
               "1 profile spanning both (opt at decode)": measure(folder / "model.onnx", [merged(profiles)])}
    print_builds(results, folder, "profiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
