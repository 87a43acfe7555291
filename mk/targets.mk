# Orin targets, analysis, sparsity and DLA (docs/targets.md). Thin calls of the CLI.
# DLA=0|1, DLA_POLICY=strict|fallback and SPARSE=1 reach `make engine` / `make build` through the
# environment (command-line variables are exported to recipes), where the CLI reads them as defaults.
LLM ?= llama-3-8b
ANALYZE_ARGS = $(MODEL_ARGS) $(if $(PRECISION),--precision $(PRECISION))

.PHONY: targets analyze analyze-llm sparsify targets-help

targets-help:
	@echo "make targets                                  the Orin target table (TARGET= values, with sources)"
	@echo "make analyze MODEL=yolo [PRECISION=] [TARGET=orin-nano-8]   FLOPs, memory, roofline floor, fits check"
	@echo "make analyze-llm LLM=llama-3-8b PRECISION=int4-awq TARGET=orin-nano-8   plan an LLM from its config"
	@echo "make sparsify MODEL=yolo                      2:4-prune the exported ONNX (then SPARSE=1 make engine)"
	@echo "make engine MODEL=yolo PRECISION=int8 TARGET=orin-agx-64 [DLA=0 DLA_POLICY=strict|fallback]"
	@echo "     on a host that is not that Orin: export + calibrate + bundle; on the Orin: build from the bundle"

targets: setup
	$(ORIN) targets

analyze: setup
	$(ORIN) analyze $(ANALYZE_ARGS)

analyze-llm: setup
	$(ORIN) analyze --llm-config $(LLM) $(if $(PRECISION),--precision $(PRECISION)) $(if $(TARGET),--target $(TARGET))

sparsify: setup
	$(ORIN) sparsify $(MODEL_ARGS)
