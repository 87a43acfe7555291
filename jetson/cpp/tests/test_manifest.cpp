// Manifest parsing: the golden manifests load; every kind of bad file fails naming the file and key.
#include <fstream>
#include <nlohmann/json.hpp>

#include "check.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/manifest.hpp"

using namespace orin_trt;
using nlohmann::json;

namespace {

const std::string kYolo = std::string(ORIN_TRT_GOLDEN_DIR) + "/yolo_manifest.json";

json yolo_json() {
  std::ifstream in(kYolo);
  return json::parse(in);
}

Manifest parse(const json& j) { return parse_manifest(j.dump(), "/engines/yolo/int8/model.engine.json"); }

}  // namespace

TEST(golden_manifest_loads) {
  const Manifest m = load_manifest(kYolo);
  CHECK_EQ(m.model, std::string("yolo-golden"));
  CHECK_EQ(m.inputs.size(), size_t(1));
  CHECK_EQ(m.inputs[0].name, std::string("images"));
  CHECK(m.inputs[0].shape == (std::vector<int64_t>{-1, 3, 64, 96}));
  CHECK_EQ(m.outputs[0].dtype, std::string("float32"));
  CHECK_EQ(m.profiles.size(), size_t(1));
  CHECK(m.profiles[0].shapes.at("images").max == (std::vector<int64_t>{4, 3, 64, 96}));
  CHECK(m.system.trt_version == std::optional<std::string>("10.3.0.30"));
  CHECK(!m.system.dla_core.has_value());
  CHECK_EQ(m.preprocess->height, 64);
  CHECK_EQ(m.preprocess->width, 96);
  CHECK_NEAR(m.preprocess->scale, 1.0 / 255, 1e-9);
  CHECK_EQ(m.postprocess->class_names.size(), size_t(5));
  CHECK_EQ(m.engine_path(), std::string(ORIN_TRT_GOLDEN_DIR) + "/model.engine");
  CHECK(m.is_input("images") && !m.is_input("output0"));
  CHECK_EQ(m.tensor("output0").shape[1], int64_t(9));
}

TEST(engine_path_resolves_beside_the_manifest) {
  const Manifest m = parse(yolo_json());
  CHECK_EQ(m.engine_path(), std::string("/engines/yolo/int8/model.engine"));
  CHECK_EQ(parse_manifest(yolo_json().dump(), "model.engine.json").engine_path(), std::string("./model.engine"));
}

TEST(bad_manifests_name_file_and_key) {
  CHECK_THROWS(load_manifest("/nonexistent/model.engine.json"), Error, "/nonexistent/model.engine.json: cannot open");
  CHECK_THROWS(parse_manifest("{not json", "m.json"), Error, "m.json: not valid JSON");
  json j = yolo_json();
  j["schema"] = "orin-trt/manifest@2";
  CHECK_THROWS(parse(j), Error, "model.engine.json: schema: 'orin-trt/manifest@2' is not orin-trt/manifest@1");
  j = yolo_json();
  j.erase("io");
  CHECK_THROWS(parse(j), Error, "io: missing");
  j = yolo_json();
  j["io"]["inputs"][0]["dtype"] = "complex64";
  CHECK_THROWS(parse(j), Error, "io.inputs[0].dtype: unknown dtype 'complex64'");
  j = yolo_json();
  j["io"]["outputs"][0]["shape"] = {1, "x"};
  CHECK_THROWS(parse(j), Error, "io.outputs[0].shape: expected a list of integers");
  j = yolo_json();
  j["preprocess"]["resize"] = "stretch";
  CHECK_THROWS(parse(j), Error, "preprocess.resize: unknown mode 'stretch'");
  j = yolo_json();
  j["preprocess"]["std"] = {1.0, 0.0, 1.0};
  CHECK_THROWS(parse(j), Error, "preprocess.std");
  j = yolo_json();
  j["preprocess"]["input"] = "image";
  CHECK_THROWS(parse(j), Error, "preprocess.input: 'image' is not an input");
  j = yolo_json();
  j["postprocess"]["output"] = "boxes";
  CHECK_THROWS(parse(j), Error, "postprocess.output: 'boxes' is not an output");
  j = yolo_json();
  j["system"]["dla_core"] = "zero";
  CHECK_THROWS(parse(j), Error, "system.dla_core");
  j = yolo_json();
  j["profiles"][0]["shapes"]["images"]["min"] = {1, 3, 64};
  CHECK_THROWS(parse(j), Error, "profiles[0].shapes.images: min, opt and max differ in rank");
  CHECK_THROWS(parse(yolo_json()).tensor("logits"), Error, "no tensor named 'logits' (tensors: images, output0)");
}

TEST(optional_sections) {
  json j = yolo_json();
  j.erase("preprocess");
  j.erase("postprocess");
  j["system"]["compute_capability"] = 8.7;  // a number is accepted as its text
  j["system"]["dla_core"] = 1;
  const Manifest m = parse(j);
  CHECK(!m.preprocess && !m.postprocess);
  CHECK(m.system.compute_capability == std::optional<std::string>("8.7"));
  CHECK(m.system.dla_core == std::optional<int>(1));
}

TEST(non_image_preprocess_is_named_not_parsed) {
  json j = yolo_json();
  j["preprocess"] = {{"type", "tokenizer"}, {"input", "input_ids"}, {"tokenizer", "builtin"}};
  j["postprocess"] = {{"type", "causal_lm"}, {"output", "output0"}, {"eos_token_id", 1}};
  const Manifest m = parse(j);
  CHECK_EQ(m.preprocess_type, std::string("tokenizer"));
  CHECK(!m.preprocess.has_value());
  CHECK_EQ(m.postprocess->type, std::string("causal_lm"));
  CHECK_EQ(parse(yolo_json()).preprocess_type, std::string("image"));
}

TEST(shapes_outside_the_profile_are_refused) {
  const Manifest m = parse(yolo_json());
  check_shape_in_profile(m, 0, "images", {1, 3, 64, 96});
  check_shape_in_profile(m, 0, "images", {4, 3, 64, 96});
  CHECK_THROWS(check_shape_in_profile(m, 0, "images", {5, 3, 64, 96}), Error,
               "input 'images' shape [5, 3, 64, 96] is outside the profile at dimension 0 (profile 'default': min "
               "[1, 3, 64, 96], max [4, 3, 64, 96])");
  CHECK_THROWS(check_shape_in_profile(m, 0, "images", {1, 3, 64}), Error, "has rank 3, expected 4");
  CHECK_THROWS(check_shape_in_profile(m, 1, "images", {1, 3, 64, 96}), Error, "optimization profile 1 does not exist");
  CHECK_THROWS(check_shape_in_profile(m, 0, "output0", {1, 9, 126}), Error, "'output0' is not an engine input");
}

TEST(dtype_sizes) {
  CHECK_EQ(dtype_size("float32"), size_t(4));
  CHECK_EQ(dtype_size("float16"), size_t(2));
  CHECK_EQ(dtype_size("int8"), size_t(1));
  CHECK_EQ(dtype_size("int64"), size_t(8));
  CHECK_THROWS(dtype_size("float128"), Error, "unknown dtype 'float128'");
}

TEST_MAIN()
