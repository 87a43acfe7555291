"""The Orin platform: targets (SKU table), which Jetson this host is, the L4T/JetPack/TensorRT lines,
version drift, DLA rules and on-device telemetry."""
