"""Ground-truth evaluation: task metrics against labels (detection boxes, held-out text, the denoiser's own
training target), as opposed to agreement with the FP32 model, which stays a diagnostic.

One job per module: `yolo_labels` reads labelled detection data (YOLO txt, COCO json), `detection_map`
runs a detector over it and scores with pycocotools, `denoise` is the epsilon-prediction error of a UNet.
The LLM's protocol (perplexity over held-out text) is `pipeline.llm.perplexity`.
"""
