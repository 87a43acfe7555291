#include "orin_trt/detection.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "orin_trt/error.hpp"
#include "orin_trt/json_text.hpp"

namespace orin_trt {
namespace {

// Python offsets boxes by class * 7680 so one NMS pass never suppresses across classes.
constexpr float kClassOffset = 7680.0f;

std::string num(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}

}  // namespace

// float32 throughout, in numpy's operation order, so scores on the IoU threshold decide alike.
float box_iou(const Box& a, const Box& b) {
  const float iw = std::max(std::min(a.x2, b.x2) - std::max(a.x1, b.x1), 0.f);
  const float ih = std::max(std::min(a.y2, b.y2) - std::max(a.y1, b.y1), 0.f);
  const float inter = iw * ih;
  const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1);
  const float area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
  return inter / std::max(area_a + area_b - inter, 1e-9f);
}

std::vector<size_t> nms(const std::vector<Box>& boxes, const std::vector<float>& scores, float iou_threshold) {
  if (boxes.size() != scores.size()) throw Error("nms: boxes and scores differ in length");
  std::vector<size_t> order(boxes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return scores[i] > scores[j]; });
  std::vector<size_t> keep;
  std::vector<bool> removed(boxes.size(), false);
  for (size_t oi = 0; oi < order.size(); ++oi) {
    const size_t i = order[oi];
    if (removed[i]) continue;
    keep.push_back(i);
    for (size_t oj = oi + 1; oj < order.size(); ++oj) {
      const size_t j = order[oj];
      if (!removed[j] && box_iou(boxes[i], boxes[j]) > iou_threshold) removed[j] = true;
    }
  }
  return keep;
}

std::vector<Detection> decode_yolo(const float* output, int64_t channels, int64_t anchors, float conf_threshold,
                                   float iou_threshold, int max_detections) {
  if (channels < 5) throw Error("decode_yolo: expected [4 + classes, anchors], got " + std::to_string(channels) + " rows");
  std::vector<Detection> candidates;
  for (int64_t a = 0; a < anchors; ++a) {
    int best = 0;
    float best_score = output[4 * anchors + a];
    for (int64_t c = 1; c < channels - 4; ++c) {
      const float s = output[(4 + c) * anchors + a];
      if (s > best_score) best_score = s, best = int(c);  // first maximum wins, as argmax
    }
    if (!(best_score > conf_threshold)) continue;
    const float cx = output[a], cy = output[anchors + a], w = output[2 * anchors + a], h = output[3 * anchors + a];
    candidates.push_back({{cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}, best_score, best});
  }
  std::vector<Box> shifted;
  std::vector<float> scores;
  for (const Detection& d : candidates) {
    const float off = float(d.class_id) * kClassOffset;
    shifted.push_back({d.box.x1 + off, d.box.y1 + off, d.box.x2 + off, d.box.y2 + off});
    scores.push_back(d.score);
  }
  std::vector<size_t> keep = nms(shifted, scores, iou_threshold);
  if (max_detections >= 0 && keep.size() > size_t(max_detections)) keep.resize(size_t(max_detections));
  std::vector<Detection> out;
  for (size_t i : keep) out.push_back(candidates[i]);
  return out;
}

std::vector<Detection> to_source(std::vector<Detection> dets, const Letterbox& lb) {
  for (Detection& d : dets) {
    d.box.x1 = std::clamp((d.box.x1 - float(lb.pad_left)) / lb.ratio, 0.f, float(lb.src_width));
    d.box.x2 = std::clamp((d.box.x2 - float(lb.pad_left)) / lb.ratio, 0.f, float(lb.src_width));
    d.box.y1 = std::clamp((d.box.y1 - float(lb.pad_top)) / lb.ratio, 0.f, float(lb.src_height));
    d.box.y2 = std::clamp((d.box.y2 - float(lb.pad_top)) / lb.ratio, 0.f, float(lb.src_height));
  }
  return dets;
}

std::string detections_to_json(const std::vector<Detection>& dets, const std::vector<std::string>& class_names) {
  std::string s = "[";
  for (size_t i = 0; i < dets.size(); ++i) {
    const Detection& d = dets[i];
    s += i ? ",\n " : "\n ";
    s += "{\"box\": [" + num(d.box.x1) + ", " + num(d.box.y1) + ", " + num(d.box.x2) + ", " + num(d.box.y2) +
         "], \"score\": " + num(d.score) + ", \"class_id\": " + std::to_string(d.class_id);
    if (d.class_id >= 0 && size_t(d.class_id) < class_names.size()) {
      s += ", \"label\": " + json_quote(class_names[size_t(d.class_id)]);
    }
    s += "}";
  }
  return s + (dets.empty() ? "]" : "\n]");
}

}  // namespace orin_trt
