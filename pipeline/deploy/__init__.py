"""Consumer configs generated from an engine's manifest: a Triton model repository and a DeepStream
nvinfer config. Each reads only `model.engine` + `model.engine.json` (docs/manifest.md)."""
