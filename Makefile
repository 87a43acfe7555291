# orin-trt: every target is a thin call of the `orin-trt` CLI inside .venv/.
SHELL := /bin/bash
PY := .venv/bin/python
ORIN := .venv/bin/orin-trt
MODEL ?= yolo
PRECISION ?=
TARGET ?=
FORCE ?=
# SET="calibration.max_samples=32 imgsz=320": one-off recipe changes (each becomes --set KEY=VALUE);
# ROOT= / CALIB_ROOT=: write engines and calibration data elsewhere (--root / --calib-root).
SET ?=
ROOT ?=
CALIB_ROOT ?=
MODEL_ARGS = --model $(MODEL) $(if $(TARGET),--target $(TARGET)) $(foreach s,$(SET),--set '$(s)') \
	$(if $(ROOT),--root $(ROOT)) $(if $(CALIB_ROOT),--calib-root $(CALIB_ROOT))
ARGS = $(MODEL_ARGS) $(if $(PRECISION),--precision $(PRECISION)) $(if $(FORCE),--force)

.PHONY: help setup setup-edgellm engine export calibrate build profile recipe recipe-docs test lint clean
.DEFAULT_GOAL := help

help:
	@echo "make engine MODEL=yolo [PRECISION=int8|fp16|fp32] [TARGET=orin-agx-64]   export -> calibrate -> build"
	@echo "make profile MODEL=yolo [PRECISION=...]    accuracy / latency / memory report beside the engine"
	@echo "make export|calibrate|build MODEL=...      one stage (each skips work that is up to date; FORCE=1 redoes it)"
	@echo "     MODEL=my.yaml SET=\"imgsz=320 calibration.max_samples=32\" ROOT=/data/engines CALIB_ROOT=/data/calib"
	@echo "make tune MODEL=my.yaml [PRECISION=int8]   search calibration settings within accuracy.budget (docs/tuning.md)"
	@echo "make demo                                  the trained shapes detector: engine + tune + profile against labels"
	@echo "make recipe MODEL=my.yaml [SET=...]         validate a recipe and print it as the stages see it (docs/own-model.md)"
	@echo "make test                                  the test suite (installs .venv first)"
	@echo "make targets-help                          Orin targets, analyze, DLA, sparsity, host -> Orin bundles"
	@echo "make nightly                               build + profile jetson/nightly.yaml, history, regressions, HTML"
	@echo "make cpp                                   the C++ consumer library, samples and CTest"
	@echo "make setup-edgellm                         .venv-edgellm/: TensorRT Edge-LLM's exporter (llm.backend: edgellm)"

setup: .venv/.installed

.venv/.installed: pyproject.toml scripts/setup-venv.sh
	bash scripts/setup-venv.sh
	@touch $@

# TensorRT Edge-LLM's exporter pins its own torch / transformers / onnx: its own venv (docs/llm.md).
# EDGELLM_EXTRAS=export,tools adds its quantizer (ModelOpt; on a GPU host).
setup-edgellm: .venv-edgellm/.installed

.venv-edgellm/.installed: scripts/setup-edgellm.sh
	bash scripts/setup-edgellm.sh

engine: setup
	$(ORIN) engine $(ARGS)

export: setup
	$(ORIN) export $(MODEL_ARGS) $(if $(FORCE),--force)

calibrate build profile: setup
	$(ORIN) $@ $(ARGS)

recipe: setup
	$(ORIN) recipe --model $(MODEL) $(foreach s,$(SET),--set '$(s)')

recipe-docs: setup
	$(ORIN) recipe-docs

test: setup
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check pipeline tests

clean:
	rm -rf engines/*/ calib/*/

-include mk/*.mk
