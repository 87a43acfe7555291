# Accuracy budgets and the search (docs/tuning.md).
# make tune MODEL=my.yaml [PRECISION=int8] [SET=...]: try calibration settings against the labelled held-out
#   data, calibrate with the fastest (estimated on the target) within the recipe's accuracy.budget.
# make demo: the shipped trained detector (tests/fixtures/shapes) through engine (with tune) and profile,
#   offline, on data its seeded generator writes into calib/shapes-data: real accuracy numbers.
DEMO_RECIPE := tests/fixtures/shapes/demo.yaml
TUNE_ARGS ?=

.PHONY: tune demo

tune: setup
	$(ORIN) tune $(ARGS) $(TUNE_ARGS)

demo: setup
	$(PY) tests/fixtures/shapes/make_dataset.py calib/shapes-data --split calib=64 --split val=64
	$(ORIN) engine --model $(DEMO_RECIPE) --precision int8 $(if $(ROOT),--root $(ROOT)) $(if $(CALIB_ROOT),--calib-root $(CALIB_ROOT))
	$(ORIN) profile --model $(DEMO_RECIPE) --precision int8 $(if $(ROOT),--root $(ROOT))
