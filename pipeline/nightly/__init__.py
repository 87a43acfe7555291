"""The nightly: profile a matrix of engines, keep every result in a history, flag regressions,
and render a morning report. `orin-trt nightly --matrix jetson/nightly.yaml` runs it."""
