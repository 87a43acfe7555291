"""What can be checked here of the containers and the nightly units (no Docker daemon, no Jetson):
the Dockerfiles parse, copy only what exists, install with the documented command; the systemd
units pass `systemd-analyze verify`; the make targets expand to the CLI calls."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*[!e]"))  # not the .dockerignore files
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
INSTALL = re.compile(r"pip3? install -e \"\.\[[a-z,]+\]\"")


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(instruction, arguments) per logical line: comments dropped, `\\` continuations joined."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued RUN
            continue
        pending += (" " if pending else "") + line.rstrip("\\").strip()
        if line.endswith("\\"):
            continue
        keyword, _, args = pending.partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the file ends inside a continued line"
    return out


def test_every_image_exists():
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.jetson", "Dockerfile.jetson7", "Dockerfile.x86"]


def _arg_default(dockerfile: str, name: str) -> str:
    steps = parse_dockerfile((REPO / "docker" / dockerfile).read_text())
    (value,) = [a.split("=", 1)[1] for k, a in steps if k == "ARG" and a.split("=")[0] == name]
    return value


def test_jetson_images_are_the_lines_of_the_table():
    """Each Jetson image is one line of pipeline/data/jetson_lines.yaml: L4T tag, CUDA, Ubuntu, TensorRT."""
    from pipeline.platform.lines import get_line

    jp6, jp7 = get_line("jetpack-6.2"), get_line("jetpack-7.2")
    l4t = re.fullmatch(r"nvcr\.io/nvidia/l4t-jetpack:r(\d+\.\d+)\.\d+", _arg_default("Dockerfile.jetson", "L4T_IMAGE"))
    assert l4t and l4t.group(1) in jp6.l4t
    cuda = re.fullmatch(r"nvcr\.io/nvidia/cuda:(\d+\.\d+)\.\d+-cudnn-runtime-ubuntu(\d+\.\d+)",
                        _arg_default("Dockerfile.jetson7", "JP7_IMAGE"))
    assert cuda and (cuda.group(1), cuda.group(2)) == (jp7.cuda, jp7.ubuntu)
    trt = re.fullmatch(r"tensorrt-cu13==(\d+\.\d+)\.[\d.*]+", _arg_default("Dockerfile.jetson7", "TENSORRT_PIP"))
    assert trt and trt.group(1) == jp7.tensorrt
    # The image refuses to build when its TensorRT is not that line.
    assert "line.key == 'jetpack-7.2'" in (REPO / "docker" / "Dockerfile.jetson7").read_text()
    make = (REPO / "mk" / "docker.mk").read_text()
    assert f"JP7_IMAGE ?= {_arg_default('Dockerfile.jetson7', 'JP7_IMAGE')}" in make
    assert f"L4T_IMAGE ?= {_arg_default('Dockerfile.jetson', 'L4T_IMAGE')}" in make


def test_python_3_10_pins_a_modelopt_that_supports_it():
    """JetPack 6's Python 3.10: setup-venv.sh and the JetPack 6 image install under the same pin, whose
    version admits 3.10 in its published metadata (checked against the installed wheel when it is that one)."""
    from importlib.metadata import metadata, version

    from packaging.specifiers import SpecifierSet

    constraints = REPO / "scripts" / "constraints-py310.txt"
    (pin,) = [ln for ln in constraints.read_text().splitlines() if ln and not ln.startswith("#")]
    name, _, pinned = pin.partition("==")
    assert name == "nvidia-modelopt" and pinned
    quantize = re.search(r'"nvidia-modelopt\[onnx\](>=[\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert quantize and pinned in SpecifierSet(quantize.group(1))
    if version("nvidia-modelopt") == pinned:
        assert "3.10" in SpecifierSet(metadata("nvidia-modelopt")["Requires-Python"])
    setup = (REPO / "scripts" / "setup-venv.sh").read_text()
    assert "sys.version_info[:2] != (3, 10)" in setup and "PINS=(-c scripts/constraints-py310.txt)" in setup
    assert setup.count('"${PINS[@]}"') == 2  # the Jetson branch and the host branch
    assert "has announced dropping Python 3.10" in setup
    jetson = (REPO / "docker" / "Dockerfile.jetson").read_text()
    assert "ENV PIP_CONSTRAINT=/opt/orin-trt/scripts/constraints-py310.txt" in jetson
    assert "!scripts/constraints-py310.txt" in (REPO / "docker" / "Dockerfile.jetson.dockerignore").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_parses_and_is_self_consistent(dockerfile):
    steps = parse_dockerfile(dockerfile.read_text())
    assert all(keyword in INSTRUCTIONS for keyword, _ in steps), steps
    first = next(i for i, (k, _) in enumerate(steps) if k != "ARG")
    assert steps[first][0] == "FROM"
    declared = {a.split("=")[0] for k, a in steps[:first] if k == "ARG"}
    used = set(re.findall(r"\$\{(\w+)\}", steps[first][1]))
    assert used <= declared, f"FROM uses undeclared ARG(s) {used - declared}"
    base = steps[first][1]
    for _keyword, a in steps[:first]:
        if a.split("=")[0] in used:
            base = a.split("=", 1)[1]
    assert base.startswith("nvcr.io/nvidia/"), base
    for keyword, args in steps:
        if keyword == "COPY":
            *sources, _dest = args.split()
            for src in sources:
                assert (REPO / src).exists(), f"{dockerfile.name}: COPY source {src} is not in the build context"
        if keyword == "ENV" and "PIP_CONSTRAINT=" in args:  # the file it names was copied in before
            copied = [a for k, a in steps if k == "COPY"]
            assert any("constraints-py310.txt" in a for a in copied), args
        if keyword in ("ENTRYPOINT", "CMD"):
            assert isinstance(json.loads(args), list)  # exec form: signals reach orin-trt
        if keyword == "RUN":
            assert args


def test_dockerignore_keeps_what_the_images_copy():
    for dockerfile in DOCKERFILES:
        ignore = (dockerfile.parent / f"{dockerfile.name}.dockerignore").read_text().splitlines()
        assert "*" in ignore and {"!pyproject.toml", "!README.md", "!pipeline/"} <= set(ignore)


def test_install_command_is_the_documented_one():
    commands = {m.group(0) for p in DOCKERFILES for m in INSTALL.finditer(p.read_text())}
    assert len(commands) == 1, commands  # both images install the same way
    (command,) = commands
    assert command in (REPO / "docs" / "docker.md").read_text()
    documented = INSTALL.findall((REPO / "README.md").read_text())
    assert command in documented, f"README.md documents {documented}, the Dockerfiles run `{command}`"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    # Verified as installed on a devkit: jetson_clocks and docker.service exist there, so stand-ins
    # take their place here; everything else (keys, sections, timer, ExecStart) is checked as shipped.
    units = tmp_path / "units"
    units.mkdir()
    stub = tmp_path / "jetson_clocks"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    (units / "docker.service").write_text("[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n")
    for unit in (REPO / "jetson" / "systemd").iterdir():
        (units / unit.name).write_text(unit.read_text().replace("/usr/bin/jetson_clocks", str(stub)))
    names = [str(units / n) for n in ("orin-trt-nightly.service", "orin-trt-nightly.timer")]
    proc = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True,
                          env={"SYSTEMD_UNIT_PATH": f"{units}:", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Unknown" not in proc.stderr and "ignoring" not in proc.stderr, proc.stderr
    service = (units / "orin-trt-nightly.service").read_text()
    assert "ExecStart=/usr/bin/make docker-nightly" in service
    assert "OnCalendar=" in (units / "orin-trt-nightly.timer").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_targets_call_the_cli():
    out = subprocess.run(["make", "-n", "-W", ".venv/.installed", "nightly", "docker-nightly", "docker-build-jetson",
                          "docker-build-jetson7", "MATRIX=m.yaml", "HISTORY=sqlite:///h.sqlite"],
                         cwd=REPO, capture_output=True, text=True, check=True, timeout=60).stdout
    assert ".venv/bin/orin-trt nightly --matrix m.yaml --history sqlite:///h.sqlite" in out
    assert "--runtime nvidia" in out and "orin-trt:jetson nightly --matrix m.yaml" in out
    assert "docker build -f docker/Dockerfile.jetson " in out
    assert "docker build -f docker/Dockerfile.jetson7 --build-arg JP7_IMAGE=nvcr.io/nvidia/cuda:13.2.0" in out
