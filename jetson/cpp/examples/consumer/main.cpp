// The least code to run an orin-trt YOLO engine from C++: manifest -> preprocess -> engine -> boxes.
#include <cstdio>

#include <orin_trt/detection.hpp>
#include <orin_trt/error.hpp>
#include <orin_trt/image.hpp>
#include <orin_trt/manifest.hpp>
#ifdef HAVE_ENGINE
#include <orin_trt/engine.hpp>
#endif

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: my_detector engines/yolo/int8/model.engine.json\n");
    return 2;
  }
  try {
    const orin_trt::Manifest m = orin_trt::load_manifest(argv[1]);
    if (!m.preprocess || !m.postprocess || m.postprocess->type != "yolo_detect") {
      throw orin_trt::Error(m.source + ": not an image detector (postprocess.type yolo_detect)");
    }
    const orin_trt::Image frame(1280, 720, 3, 128);  // your camera frame, RGB
    const orin_trt::Preprocessed input = orin_trt::preprocess_image(frame, *m.preprocess);
    std::printf("%s: input %s %s\n", m.model.c_str(), m.preprocess->input.c_str(),
                orin_trt::shape_to_string(input.shape).c_str());
#ifdef HAVE_ENGINE
    orin_trt::Engine engine(m, {});  // drift check, deserialize, allocate by tensor name
    engine.set_input(m.preprocess->input, input.tensor, input.shape);
    engine.run();
    const std::string& out = m.postprocess->output;
    const std::vector<int64_t> shape = engine.output_shape(out);
    const auto boxes = orin_trt::to_source(
        orin_trt::decode_yolo(engine.output(out).data(), shape[1], shape[2], m.postprocess->conf_threshold,
                              m.postprocess->iou_threshold, m.postprocess->max_detections),
        *input.letterbox);
    std::printf("%s\n", orin_trt::detections_to_json(boxes, m.postprocess->class_names).c_str());
#endif
    return 0;
  } catch (const orin_trt::Error& e) {
    std::fprintf(stderr, "my_detector: %s\n", e.what());
    return 1;
  }
}
