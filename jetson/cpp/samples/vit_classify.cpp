// vit_classify: image -> preprocessing from the manifest -> engine -> top-5 with labels.
// Offline (no GPU), --raw-output feeds saved logits instead of running the engine.
#include <cstdio>

#include "common/image_io.hpp"
#include "common/sample_util.hpp"
#include "orin_trt/classification.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/json_text.hpp"
#include "orin_trt/manifest.hpp"
#include "orin_trt/npy.hpp"

static const char* kUsage =
    "usage: vit_classify --manifest engines/vit/fp16/model.engine.json --image in.jpg [--top 5]\n"
    "                    [--json top5.json|-] [--cuda-graph] [--save-input input.npy] [--save-output logits.npy] [--raw-output logits.npy]";

int main(int argc, char** argv) {
  try {
    const samples::Args args(argc, argv, kUsage, {"cuda-graph"});
    const orin_trt::Manifest m = orin_trt::load_manifest(args.required("manifest"));
    if (!m.preprocess || !m.postprocess || m.postprocess->type != "classification") {
      throw orin_trt::Error(m.source + ": not a classifier (needs a preprocess section and postprocess.type classification)");
    }
    const orin_trt::PostprocessSpec& post = *m.postprocess;
    const std::string output = post.output.empty() ? m.outputs.front().name : post.output;

    const orin_trt::Preprocessed input = orin_trt::preprocess_image(samples::read_rgb(args.required("image")), *m.preprocess);
    if (!args.get("save-input").empty()) orin_trt::write_npy(args.get("save-input"), input.tensor.data(), input.shape);
    const samples::Tensor logits = samples::infer(m, input, output, args.get("raw-output"), args.get("save-output"),
                                                  args.flag("cuda-graph"));
    if (logits.shape.empty() || logits.shape[0] != 1) {
      throw orin_trt::Error("output '" + output + "': expected [1, classes], got " + orin_trt::shape_to_string(logits.shape));
    }
    const size_t k = size_t(std::stoi(args.get("top", std::to_string(post.top_k))));
    const auto top = orin_trt::topk(logits.data.data(), logits.data.size(), k);

    std::string json = "{\"image\": " + orin_trt::json_quote(args.required("image")) +
                       ", \"model\": " + orin_trt::json_quote(m.model) + ", \"top\": [";
    for (size_t i = 0; i < top.size(); ++i) {
      const auto& t = top[i];
      const std::string label = size_t(t.class_id) < post.class_names.size() ? post.class_names[size_t(t.class_id)]
                                                                               : std::to_string(t.class_id);
      char numbers[96];
      std::snprintf(numbers, sizeof numbers, ", \"probability\": %.9g, \"logit\": %.9g}", double(t.probability),
                    double(t.logit));
      json += std::string(i ? "," : "") + "\n  {\"class_id\": " + std::to_string(t.class_id) +
              ", \"label\": " + orin_trt::json_quote(label) + numbers;
      std::fprintf(stderr, "%zu. %-24s %6.2f%%\n", i + 1, label.c_str(), 100.0 * double(t.probability));
    }
    samples::write_text(args.get("json", "-"), json + "\n]}\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vit_classify: %s\n", e.what());
    return 2;
  }
}
