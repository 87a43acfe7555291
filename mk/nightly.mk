# The nightly profiler (docs/nightly.md). On the devkit inside the JetPack container: `make docker-nightly`.
MATRIX ?= jetson/nightly.yaml
HISTORY ?=

.PHONY: nightly
nightly: setup
	$(ORIN) nightly --matrix $(MATRIX) $(if $(HISTORY),--history $(HISTORY)) $(if $(TARGET),--target $(TARGET)) $(if $(FORCE),--force)
