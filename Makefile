# orin-trt: every target is a thin call of the `orin-trt` CLI inside .venv/.
SHELL := /bin/bash
PY := .venv/bin/python
ORIN := .venv/bin/orin-trt
MODEL ?= yolo
PRECISION ?=
TARGET ?=
FORCE ?=
ARGS = --model $(MODEL) $(if $(PRECISION),--precision $(PRECISION)) $(if $(TARGET),--target $(TARGET)) $(if $(FORCE),--force)

.PHONY: help setup engine export calibrate build profile test lint clean
.DEFAULT_GOAL := help

help:
	@echo "make engine MODEL=yolo [PRECISION=int8|fp16|fp32] [TARGET=orin-agx-64]   export -> calibrate -> build"
	@echo "make profile MODEL=yolo [PRECISION=...]    accuracy / latency / memory report beside the engine"
	@echo "make export|calibrate|build MODEL=...      one stage (each skips work that is up to date; FORCE=1 redoes it)"
	@echo "make test                                  the test suite (installs .venv first)"
	@echo "make targets-help                          Orin targets, analyze, DLA, sparsity, host -> Orin bundles"
	@echo "make nightly                               build + profile jetson/nightly.yaml, history, regressions, HTML"
	@echo "make cpp                                   the C++ consumer library, samples and CTest"

setup: .venv/.installed

.venv/.installed: pyproject.toml scripts/setup-venv.sh
	bash scripts/setup-venv.sh
	@touch $@

engine: setup
	$(ORIN) engine $(ARGS)

export: setup
	$(ORIN) export --model $(MODEL) $(if $(TARGET),--target $(TARGET)) $(if $(FORCE),--force)

calibrate build profile: setup
	$(ORIN) $@ $(ARGS)

test: setup
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check pipeline tests

clean:
	rm -rf engines/*/ calib/*/

-include mk/*.mk
