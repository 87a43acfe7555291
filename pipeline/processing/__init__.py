"""Pre- and post-processing and comparison of tensors: images, YOLO detection, classification, agreement."""
