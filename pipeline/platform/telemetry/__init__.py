"""What happens on the Jetson itself: power state, tegrastats sampling, energy, TensorRT profiling depth.

Every reader takes a root directory and/or a command runner, so the same code parses recorded
outputs in tests and live outputs on a devkit. Only `trt_profiling` needs TensorRT and CUDA.
"""
