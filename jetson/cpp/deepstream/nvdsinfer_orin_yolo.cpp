// DeepStream nvinfer bounding-box parser for orin-trt YOLO engines: output [4 + classes, anchors] per
// frame (cx, cy, w, h in network-input pixels, then class scores). It decodes with the same code as the
// library and the samples (best class per anchor, per-class confidence); nvinfer then clusters
// (cluster-mode=2: NMS with [class-attrs-all] nms-iou-threshold), as `orin-trt deploy` configures it.
#include <nvdsinfer_custom_impl.h>

#include <algorithm>
#include <cstdio>

#include "orin_trt/detection.hpp"

extern "C" bool NvDsInferParseOrinYolo(std::vector<NvDsInferLayerInfo> const& outputLayersInfo,
                                       NvDsInferNetworkInfo const& networkInfo,
                                       NvDsInferParseDetectionParams const& detectionParams,
                                       std::vector<NvDsInferObjectDetectionInfo>& objectList) {
  if (outputLayersInfo.size() != 1) {
    std::fprintf(stderr, "NvDsInferParseOrinYolo: expected 1 output layer, got %zu\n", outputLayersInfo.size());
    return false;
  }
  const NvDsInferLayerInfo& layer = outputLayersInfo[0];
  if (layer.dataType != FLOAT) {
    std::fprintf(stderr, "NvDsInferParseOrinYolo: output '%s' must be float32\n", layer.layerName);
    return false;
  }
  // nvinfer gives per-frame dims (no batch axis): [4 + classes, anchors].
  const NvDsInferDims& dims = layer.inferDims;
  if (dims.numDims != 2 || dims.d[0] < 5) {
    std::fprintf(stderr, "NvDsInferParseOrinYolo: output '%s' must be [4 + classes, anchors]\n", layer.layerName);
    return false;
  }
  const int64_t channels = dims.d[0], anchors = dims.d[1];
  const auto& thresholds = detectionParams.perClassPreclusterThreshold;
  const float lowest = thresholds.empty() ? 0.25f : *std::min_element(thresholds.begin(), thresholds.end());
  // iou 1.0 and no cap: nothing is suppressed here; nvinfer's own clustering does the NMS.
  const auto detections = orin_trt::decode_yolo(static_cast<const float*>(layer.buffer), channels, anchors, lowest,
                                                1.0f, -1);
  objectList.clear();
  const float width = float(networkInfo.width), height = float(networkInfo.height);
  for (const orin_trt::Detection& d : detections) {
    const unsigned int cls = unsigned(d.class_id);
    if (cls >= detectionParams.numClassesConfigured) continue;
    if (cls < thresholds.size() && d.score < thresholds[cls]) continue;
    const float x1 = std::clamp(d.box.x1, 0.f, width), y1 = std::clamp(d.box.y1, 0.f, height);
    const float x2 = std::clamp(d.box.x2, 0.f, width), y2 = std::clamp(d.box.y2, 0.f, height);
    if (x2 <= x1 || y2 <= y1) continue;
    NvDsInferObjectDetectionInfo object{};
    object.classId = cls;
    object.left = x1;
    object.top = y1;
    object.width = x2 - x1;
    object.height = y2 - y1;
    object.detectionConfidence = d.score;
    objectList.push_back(object);
  }
  return true;
}

CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseOrinYolo);
