"""The core every stage stands on: artifact layout and atomic writes, ONNX helpers, the stage cache,
vouching, the workspace guard and its lock, the log."""
