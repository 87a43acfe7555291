// YOLO output decoding as pipeline/processing/detection.py does it: best class per anchor, confidence filter,
// class-aware greedy NMS (one pass, boxes offset by class), top max_detections.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "orin_trt/image.hpp"

namespace orin_trt {

struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

struct Detection {
  Box box;  // xyxy, input pixels (or source pixels after to_source)
  float score = 0;
  int class_id = 0;
};

float box_iou(const Box& a, const Box& b);

// Indices kept by greedy NMS, highest score first; equal scores keep the lower index first.
std::vector<size_t> nms(const std::vector<Box>& boxes, const std::vector<float>& scores, float iou_threshold);

// One image's output, layout [4 + num_classes, anchors] (row-major): cx, cy, w, h, then class scores.
std::vector<Detection> decode_yolo(const float* output, int64_t channels, int64_t anchors, float conf_threshold,
                                   float iou_threshold, int max_detections);

// Boxes from input pixels back to the original image (undo the letterbox, clip to the image).
std::vector<Detection> to_source(std::vector<Detection> dets, const Letterbox& lb);

// [{"box":[x1,y1,x2,y2],"score":s,"class_id":c,"label":"..."}...] (labels when names are given).
std::string detections_to_json(const std::vector<Detection>& dets, const std::vector<std::string>& class_names);

}  // namespace orin_trt
