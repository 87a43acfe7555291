// The engine manifest (`model.engine.json`, schema orin-trt/manifest@1; see docs/manifest.md):
// the parts a C++ consumer needs, parsed and validated up front so a bad file fails here, by key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "orin_trt/llm_spec.hpp"

namespace orin_trt {

struct TensorInfo {
  std::string name;
  std::string dtype;           // float32 | float16 | int8 | int32 | int64 | bool | uint8 | bfloat16
  std::vector<int64_t> shape;  // -1 where the dimension is dynamic
};

struct ShapeRange {
  std::vector<int64_t> min, opt, max;
};

struct Profile {
  std::string name;
  std::map<std::string, ShapeRange> shapes;  // by input tensor name
};

// What the engine is bound to; an empty optional means "not bound" (e.g. a non-Jetson build).
struct SystemSpec {
  std::optional<std::string> trt_version;
  std::optional<std::string> compute_capability;  // "8.7"
  std::optional<std::string> l4t;                 // "36.4.0"
  std::optional<int> dla_core;
};

enum class ResizeMode { Letterbox, ResizeCrop, Resize };

struct PreprocessSpec {
  std::string input;
  int height = 0, width = 0;  // manifest `size` is [height, width]
  ResizeMode resize = ResizeMode::Letterbox;
  int pad_value = 114;
  int resize_shorter = 0;  // resize_crop only; 0 = the target height
  bool bgr = false;        // `color`: channel order the model expects
  bool nchw = true;        // `layout`: NCHW (with a batch axis) or NHWC
  float scale = 1.0f;
  float mean[3] = {0.f, 0.f, 0.f};
  float std[3] = {1.f, 1.f, 1.f};
};

struct PostprocessSpec {
  std::string type;  // yolo_detect | classification | noise_prediction | causal_lm
  std::string output;
  std::vector<std::string> class_names;
  float conf_threshold = 0.25f;
  float iou_threshold = 0.7f;
  int max_detections = 300;
  int top_k = 5;
};

struct Manifest {
  std::string source;  // the file it came from (named in every error)
  std::string dir;     // its folder: the engine file is resolved against it
  std::string schema, model, family, precision;
  std::string engine_file;
  std::string engine_sha256;
  int64_t engine_bytes = 0;
  bool random_weights = false;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<Profile> profiles;
  SystemSpec system;
  std::string preprocess_type;                // "image", or another kind the library does not run ("tokenizer")
  std::optional<PreprocessSpec> preprocess;  // image models only
  std::optional<PostprocessSpec> postprocess;
  std::optional<LlmSpec> llm;  // causal LMs: the KV-cache contract (llm_spec.hpp)

  std::string engine_path() const;                         // dir / engine_file
  const TensorInfo& tensor(const std::string& name) const;  // an input or an output; throws naming it
  bool is_input(const std::string& name) const;
};

// Parse the manifest text; `source` names the file in errors. Throws orin_trt::Error.
Manifest parse_manifest(const std::string& text, const std::string& source);
Manifest load_manifest(const std::string& path);

// Size in bytes of one element of a manifest dtype; throws on an unknown dtype.
size_t dtype_size(const std::string& dtype);

// Throws (naming the tensor, the dimension and the profile's bounds) if `shape` lies outside
// profile `profile_index` of the manifest: TensorRT would otherwise reject it with a generic message.
void check_shape_in_profile(const Manifest& m, size_t profile_index, const std::string& input,
                            const std::vector<int64_t>& shape);

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace orin_trt
