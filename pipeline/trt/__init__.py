"""The thin TensorRT layer: the only code that imports tensorrt or tensorrt_rtx.

Everything above it deals in ONNX paths, shape profiles, plain options and plan bytes.
"""
