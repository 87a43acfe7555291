#include "sample_util.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "orin_trt/error.hpp"
#include "orin_trt/npy.hpp"
#ifdef ORIN_TRT_HAVE_RUNTIME
#include "orin_trt/engine.hpp"
#endif

namespace samples {

Args::Args(int argc, char** argv, const std::string& usage, const std::vector<std::string>& flags) : usage_(usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("%s\n", usage.c_str());
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) throw orin_trt::Error("unexpected argument '" + a + "'\n" + usage);
    const std::string key = a.substr(2);
    if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
      values_[key] = "1";
    } else if (i + 1 < argc) {
      values_[key] = argv[++i];
    } else {
      throw orin_trt::Error("option " + a + " needs a value\n" + usage);
    }
  }
}

std::string Args::get(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

std::string Args::required(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw orin_trt::Error("missing --" + key + "\n" + usage_);
  return it->second;
}

bool Args::flag(const std::string& key) const { return values_.count(key) > 0; }

Tensor infer(const orin_trt::Manifest& m, const orin_trt::Preprocessed& input, const std::string& name,
             const std::string& raw_output, const std::string& save_output, bool cuda_graph) {
  Tensor out;
  if (!raw_output.empty()) {
    const orin_trt::NpyArray a = orin_trt::read_npy(raw_output);
    if (a.dtype != "<f4") throw orin_trt::Error(raw_output + ": expected float32, got " + a.dtype);
    out.data = a.as<float>();
    out.shape = a.shape;
    return out;
  }
#ifdef ORIN_TRT_HAVE_RUNTIME
  orin_trt::EngineOptions options;
  options.cuda_graph = cuda_graph;
  orin_trt::Engine engine(m, options);
  engine.set_input(m.preprocess->input, input.tensor, input.shape);
  engine.run();
  out.data = engine.output(name);
  out.shape = engine.output_shape(name);
  if (!save_output.empty()) orin_trt::write_npy(save_output, out.data.data(), out.shape);
  return out;
#else
  (void)m, (void)input, (void)name, (void)save_output, (void)cuda_graph;
  throw orin_trt::Error("built without TensorRT: pass --raw-output <output.npy> (the engine's saved output) "
                        "or rebuild where NvInfer.h and CUDA exist (the JetPack container)");
#endif
}

void draw_box(orin_trt::Image& img, const orin_trt::Box& box, int class_id, int thickness) {
  static const uint8_t palette[][3] = {{255, 56, 56}, {255, 157, 151}, {255, 112, 31}, {255, 178, 29}, {207, 210, 49},
                                       {72, 249, 10},  {146, 204, 23},  {61, 219, 134}, {26, 147, 52},  {0, 212, 187}};
  const uint8_t* color = palette[size_t(std::max(class_id, 0)) % (sizeof palette / sizeof palette[0])];
  const int x1 = std::clamp(int(box.x1), 0, img.width - 1), x2 = std::clamp(int(box.x2), 0, img.width - 1);
  const int y1 = std::clamp(int(box.y1), 0, img.height - 1), y2 = std::clamp(int(box.y2), 0, img.height - 1);
  auto paint = [&](int x, int y) {
    if (x >= 0 && y >= 0 && x < img.width && y < img.height) std::copy_n(color, 3, img.pixel(x, y));
  };
  for (int t = 0; t < thickness; ++t) {
    for (int x = x1; x <= x2; ++x) paint(x, y1 + t), paint(x, y2 - t);
    for (int y = y1; y <= y2; ++y) paint(x1 + t, y), paint(x2 - t, y);
  }
}

void write_text(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw orin_trt::Error(path + ": cannot write");
}

}  // namespace samples
