"""orin-trt: PyTorch models to TensorRT engines for NVIDIA Jetson Orin."""

__version__ = "0.1.0"
