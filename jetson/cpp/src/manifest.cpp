#include "orin_trt/manifest.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "manifest_reader.hpp"
#include "orin_trt/error.hpp"

namespace orin_trt {
namespace {

using json = nlohmann::json;
using detail::Reader;

std::vector<TensorInfo> parse_tensors(const Reader& r, const json& list, const std::string& path) {
  if (!list.is_array() || list.empty()) r.fail(path, "expected a non-empty list of tensors");
  std::vector<TensorInfo> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    TensorInfo t;
    t.name = r.str(list[i], "name", p + ".name");
    t.dtype = r.str(list[i], "dtype", p + ".dtype");
    try {
      dtype_size(t.dtype);
    } catch (const Error& e) {
      r.fail(p + ".dtype", e.what());
    }
    t.shape = r.dims(r.at(list[i], "shape", p + ".shape"), p + ".shape");
    out.push_back(std::move(t));
  }
  return out;
}

PreprocessSpec parse_preprocess(const Reader& r, const json& pre) {
  PreprocessSpec s;
  s.input = r.str(pre, "input", "preprocess.input");
  std::vector<int64_t> size = r.dims(r.at(pre, "size", "preprocess.size"), "preprocess.size");
  if (size.size() != 2 || size[0] <= 0 || size[1] <= 0) r.fail("preprocess.size", "expected [height, width] > 0");
  s.height = int(size[0]);
  s.width = int(size[1]);
  const std::string mode = pre.contains("resize") ? r.str(pre, "resize", "preprocess.resize") : "letterbox";
  if (mode == "letterbox") {
    s.resize = ResizeMode::Letterbox;
  } else if (mode == "resize_crop") {
    s.resize = ResizeMode::ResizeCrop;
  } else if (mode == "resize") {
    s.resize = ResizeMode::Resize;
  } else {
    r.fail("preprocess.resize", "unknown mode '" + mode + "' (letterbox, resize_crop, resize)");
  }
  s.pad_value = int(r.num(pre, "pad_value", "preprocess.pad_value", 114));
  s.resize_shorter = int(r.num(pre, "resize_shorter", "preprocess.resize_shorter", s.height));
  const std::string color = pre.contains("color") ? r.str(pre, "color", "preprocess.color") : "RGB";
  if (color != "RGB" && color != "BGR") r.fail("preprocess.color", "expected RGB or BGR, got " + color);
  s.bgr = color == "BGR";
  const std::string layout = pre.contains("layout") ? r.str(pre, "layout", "preprocess.layout") : "NCHW";
  if (layout != "NCHW" && layout != "NHWC") r.fail("preprocess.layout", "expected NCHW or NHWC, got " + layout);
  s.nchw = layout == "NCHW";
  s.scale = float(r.num(pre, "scale", "preprocess.scale", 1.0));
  for (const char* key : {"mean", "std"}) {
    if (!pre.contains(key)) continue;
    const json& v = pre.at(key);
    const std::string path = std::string("preprocess.") + key;
    if (!v.is_array() || v.size() != 3) r.fail(path, "expected 3 numbers, got " + v.dump());
    for (size_t c = 0; c < 3; ++c) {
      if (!v[c].is_number()) r.fail(path, "expected 3 numbers, got " + v.dump());
      (std::string(key) == "mean" ? s.mean : s.std)[c] = v[c].get<float>();
    }
  }
  for (float sd : s.std) {
    if (sd == 0.f) r.fail("preprocess.std", "a standard deviation of 0 divides by zero");
  }
  return s;
}

PostprocessSpec parse_postprocess(const Reader& r, const json& post) {
  PostprocessSpec s;
  s.type = r.str(post, "type", "postprocess.type");
  if (post.contains("output") && !post.at("output").is_null()) s.output = r.str(post, "output", "postprocess.output");
  if (post.contains("class_names") && !post.at("class_names").is_null()) {
    const json& names = post.at("class_names");
    if (!names.is_array()) r.fail("postprocess.class_names", "expected a list of strings");
    for (const json& n : names) {
      if (!n.is_string()) r.fail("postprocess.class_names", "expected a list of strings, got " + n.dump());
      s.class_names.push_back(n.get<std::string>());
    }
  }
  s.conf_threshold = float(r.num(post, "conf_threshold", "postprocess.conf_threshold", 0.25));
  s.iou_threshold = float(r.num(post, "iou_threshold", "postprocess.iou_threshold", 0.7));
  s.max_detections = int(r.num(post, "max_detections", "postprocess.max_detections", 300));
  s.top_k = int(r.num(post, "top_k", "postprocess.top_k", 5));
  return s;
}

}  // namespace

size_t dtype_size(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float16" || dtype == "bfloat16") return 2;
  if (dtype == "int8" || dtype == "uint8" || dtype == "bool" || dtype == "fp8") return 1;
  if (dtype == "int64") return 8;
  throw Error("unknown dtype '" + dtype + "'");
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string Manifest::engine_path() const {
  if (!engine_file.empty() && engine_file.front() == '/') return engine_file;
  return dir.empty() ? engine_file : dir + "/" + engine_file;
}

const TensorInfo& Manifest::tensor(const std::string& name) const {
  for (const auto* list : {&inputs, &outputs}) {
    for (const TensorInfo& t : *list) {
      if (t.name == name) return t;
    }
  }
  std::string known;
  for (const auto* list : {&inputs, &outputs}) {
    for (const TensorInfo& t : *list) known += (known.empty() ? "" : ", ") + t.name;
  }
  throw Error(source + ": no tensor named '" + name + "' (tensors: " + known + ")");
}

bool Manifest::is_input(const std::string& name) const {
  for (const TensorInfo& t : inputs) {
    if (t.name == name) return true;
  }
  return false;
}

Manifest parse_manifest(const std::string& text, const std::string& source) {
  Reader r(source);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(source + ": not valid JSON (" + e.what() + ")");
  }
  if (!doc.is_object()) r.fail("(top level)", "expected a JSON object");

  Manifest m;
  m.source = source;
  const size_t slash = source.find_last_of('/');
  m.dir = slash == std::string::npos ? "." : source.substr(0, slash);
  m.schema = r.str(doc, "schema", "schema");
  if (m.schema.rfind("orin-trt/manifest@1", 0) != 0) {
    r.fail("schema", "'" + m.schema + "' is not orin-trt/manifest@1 (this library reads version 1)");
  }
  m.model = r.str(doc, "model", "model");
  m.family = doc.contains("family") ? r.str(doc, "family", "family") : "";
  m.precision = r.str(doc, "precision", "precision");

  const json& engine = r.at(doc, "engine", "engine");
  m.engine_file = r.str(engine, "file", "engine.file");
  m.engine_sha256 = r.opt_str(engine, "sha256", "engine.sha256").value_or("");
  m.engine_bytes = int64_t(r.num(engine, "bytes", "engine.bytes", 0));
  if (doc.contains("weights") && doc.at("weights").is_object()) {
    m.random_weights = doc.at("weights").value("random", false);
  }

  const json& io = r.at(doc, "io", "io");
  m.inputs = parse_tensors(r, r.at(io, "inputs", "io.inputs"), "io.inputs");
  m.outputs = parse_tensors(r, r.at(io, "outputs", "io.outputs"), "io.outputs");

  if (doc.contains("profiles") && doc.at("profiles").is_array()) {
    const json& profiles = doc.at("profiles");
    for (size_t i = 0; i < profiles.size(); ++i) {
      const std::string p = "profiles[" + std::to_string(i) + "]";
      Profile prof;
      prof.name = profiles[i].contains("name") ? r.str(profiles[i], "name", p + ".name") : std::to_string(i);
      const json& shapes = r.at(profiles[i], "shapes", p + ".shapes");
      if (!shapes.is_object()) r.fail(p + ".shapes", "expected an object of input name -> {min, opt, max}");
      for (const auto& [name, range] : shapes.items()) {
        const std::string q = p + ".shapes." + name;
        ShapeRange sr{r.dims(r.at(range, "min", q + ".min"), q + ".min"), r.dims(r.at(range, "opt", q + ".opt"), q + ".opt"),
                      r.dims(r.at(range, "max", q + ".max"), q + ".max")};
        if (sr.min.size() != sr.max.size() || sr.opt.size() != sr.max.size()) r.fail(q, "min, opt and max differ in rank");
        prof.shapes.emplace(name, std::move(sr));
      }
      m.profiles.push_back(std::move(prof));
    }
  }

  const json& sys = r.at(doc, "system", "system");
  m.system.trt_version = r.opt_str(sys, "trt_version", "system.trt_version");
  m.system.compute_capability = r.opt_str(sys, "compute_capability", "system.compute_capability");
  m.system.l4t = r.opt_str(sys, "l4t", "system.l4t");
  if (sys.contains("dla_core") && !sys.at("dla_core").is_null()) {
    if (!sys.at("dla_core").is_number_integer()) r.fail("system.dla_core", "expected 0, 1 or null");
    m.system.dla_core = sys.at("dla_core").get<int>();
  }

  if (doc.contains("preprocess") && doc.at("preprocess").is_object()) {
    // Image sections carry no `type` (or "image"); others (an LLM's tokenizer) are named, not parsed.
    const json& pre = doc.at("preprocess");
    m.preprocess_type = pre.contains("type") ? r.str(pre, "type", "preprocess.type") : "image";
  }
  if (m.preprocess_type == "image") {
    m.preprocess = parse_preprocess(r, doc.at("preprocess"));
    if (!m.is_input(m.preprocess->input)) r.fail("preprocess.input", "'" + m.preprocess->input + "' is not an input in io.inputs");
  }
  if (doc.contains("postprocess") && doc.at("postprocess").is_object()) {
    m.postprocess = parse_postprocess(r, doc.at("postprocess"));
    const std::string& out = m.postprocess->output;
    if (!out.empty()) {
      bool found = false;
      for (const TensorInfo& t : m.outputs) found = found || t.name == out;
      if (!found) r.fail("postprocess.output", "'" + out + "' is not an output in io.outputs");
    }
  }
  if (doc.contains("llm")) {
    if (!doc.at("llm").is_object()) r.fail("llm", "expected an object, got " + doc.at("llm").dump());
    m.llm = detail::parse_llm_section(r, doc.at("llm"), m);
  }
  return m;
}

Manifest load_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the manifest (expected model.engine.json beside the engine)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_manifest(text.str(), path);
}

void check_shape_in_profile(const Manifest& m, size_t profile_index, const std::string& input,
                            const std::vector<int64_t>& shape) {
  if (!m.is_input(input)) throw Error(m.source + ": '" + input + "' is not an engine input");
  if (m.profiles.empty()) return;  // nothing recorded: leave the check to TensorRT
  if (profile_index >= m.profiles.size()) {
    throw Error(m.source + ": optimization profile " + std::to_string(profile_index) + " does not exist (" +
                std::to_string(m.profiles.size()) + " profile(s))");
  }
  const Profile& prof = m.profiles[profile_index];
  auto it = prof.shapes.find(input);
  if (it == prof.shapes.end()) return;
  const ShapeRange& r = it->second;
  const std::string bounds = " (profile '" + prof.name + "': min " + shape_to_string(r.min) + ", max " +
                             shape_to_string(r.max) + ")";
  if (shape.size() != r.max.size()) {
    throw Error(m.source + ": input '" + input + "' shape " + shape_to_string(shape) + " has rank " +
                std::to_string(shape.size()) + ", expected " + std::to_string(r.max.size()) + bounds);
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < r.min[d] || shape[d] > r.max[d]) {
      throw Error(m.source + ": input '" + input + "' shape " + shape_to_string(shape) + " is outside the profile at dimension " +
                  std::to_string(d) + bounds);
    }
  }
}

}  // namespace orin_trt
