// What both samples share: their small command line, drawing boxes, and getting an output tensor
// either from the engine or, offline, from a saved .npy (how the samples run without a GPU).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "orin_trt/detection.hpp"
#include "orin_trt/image.hpp"
#include "orin_trt/manifest.hpp"

namespace samples {

// --key value pairs and --flags; unknown options and missing required ones fail with the usage text.
class Args {
 public:
  Args(int argc, char** argv, const std::string& usage, const std::vector<std::string>& flags);
  std::string get(const std::string& key, const std::string& fallback = "") const;
  std::string required(const std::string& key) const;
  bool flag(const std::string& key) const;

 private:
  std::string usage_;
  std::map<std::string, std::string> values_;
};

struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

// Run the engine on `input` (unless `raw_output` names a saved .npy to use instead) and return the
// output `name`; with `save_output`, the output is also written as .npy for the Python side.
Tensor infer(const orin_trt::Manifest& m, const orin_trt::Preprocessed& input, const std::string& name,
             const std::string& raw_output, const std::string& save_output, bool cuda_graph);

void draw_box(orin_trt::Image& img, const orin_trt::Box& box, int class_id, int thickness = 2);

void write_text(const std::string& path, const std::string& text);  // "-" = stdout

}  // namespace samples
