// yolo_detect: image -> letterbox (as the manifest says) -> engine -> decode + NMS -> boxes as JSON and a
// drawn image. Offline (no GPU), --raw-output feeds a saved engine output instead of running the engine.
#include <cstdio>

#include "common/image_io.hpp"
#include "common/sample_util.hpp"
#include "orin_trt/detection.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/json_text.hpp"
#include "orin_trt/manifest.hpp"
#include "orin_trt/npy.hpp"

static const char* kUsage =
    "usage: yolo_detect --manifest engines/yolo/int8/model.engine.json --image in.jpg\n"
    "                   [--json boxes.json|-] [--draw drawn.png] [--conf 0.25] [--iou 0.7]\n"
    "                   [--cuda-graph] [--save-input input.npy] [--save-output output.npy] [--raw-output output.npy]";

int main(int argc, char** argv) {
  try {
    const samples::Args args(argc, argv, kUsage, {"cuda-graph"});
    const orin_trt::Manifest m = orin_trt::load_manifest(args.required("manifest"));
    if (!m.preprocess || m.preprocess->resize != orin_trt::ResizeMode::Letterbox || !m.postprocess ||
        m.postprocess->type != "yolo_detect") {
      throw orin_trt::Error(m.source + ": not a YOLO detector (needs preprocess.resize letterbox and postprocess.type "
                            "yolo_detect)");
    }
    const orin_trt::PostprocessSpec& post = *m.postprocess;
    const std::string output = post.output.empty() ? m.outputs.front().name : post.output;

    const orin_trt::Image image = samples::read_rgb(args.required("image"));
    const orin_trt::Preprocessed input = orin_trt::preprocess_image(image, *m.preprocess);
    if (!args.get("save-input").empty()) orin_trt::write_npy(args.get("save-input"), input.tensor.data(), input.shape);
    const samples::Tensor raw = samples::infer(m, input, output, args.get("raw-output"), args.get("save-output"),
                                               args.flag("cuda-graph"));
    if (raw.shape.size() != 3 || raw.shape[0] != 1) {
      throw orin_trt::Error("output '" + output + "': expected [1, 4 + classes, anchors], got " +
                            orin_trt::shape_to_string(raw.shape));
    }
    const float conf = std::stof(args.get("conf", std::to_string(post.conf_threshold)));
    const float iou = std::stof(args.get("iou", std::to_string(post.iou_threshold)));
    const auto dets = orin_trt::to_source(
        orin_trt::decode_yolo(raw.data.data(), raw.shape[1], raw.shape[2], conf, iou, post.max_detections),
        *input.letterbox);

    samples::write_text(args.get("json", "-"), "{\"image\": " + orin_trt::json_quote(args.required("image")) +
                                                   ", \"model\": " + orin_trt::json_quote(m.model) + ", \"detections\": " +
                                                   orin_trt::detections_to_json(dets, post.class_names) + "}\n");
    if (!args.get("draw").empty()) {
      orin_trt::Image drawn = image;
      for (const auto& d : dets) samples::draw_box(drawn, d.box, d.class_id);
      samples::write_image(args.get("draw"), drawn);
    }
    std::fprintf(stderr, "yolo_detect: %zu detection(s)%s\n", dets.size(),
                 m.random_weights ? " (random weights: boxes are meaningless)" : "");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "yolo_detect: %s\n", e.what());
    return 2;
  }
}
