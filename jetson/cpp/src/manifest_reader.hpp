// Internal to the library: reading manifest JSON with errors that name the file and the key path, shared
// by the manifest's sections (manifest.cpp, llm_manifest.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "orin_trt/error.hpp"
#include "orin_trt/manifest.hpp"

namespace orin_trt {
namespace detail {

using json = nlohmann::json;

// Field access that names the file and the key path in every error.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(source_ + ": " + key + ": " + what);
  }

  const json& at(const json& obj, const std::string& key, const std::string& path) const {
    if (!obj.is_object() || !obj.contains(key)) fail(path, "missing");
    return obj.at(key);
  }

  std::string str(const json& obj, const std::string& key, const std::string& path) const {
    const json& v = at(obj, key, path);
    if (!v.is_string()) fail(path, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }

  std::optional<std::string> opt_str(const json& obj, const std::string& key, const std::string& path) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return std::nullopt;
    const json& v = obj.at(key);
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return v.dump();  // "8.7" is sometimes written as a number
    fail(path, "expected a string or null, got " + v.dump());
  }

  double num(const json& obj, const std::string& key, const std::string& path, double fallback) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return fallback;
    const json& v = obj.at(key);
    if (!v.is_number()) fail(path, "expected a number, got " + v.dump());
    return v.get<double>();
  }

  // A required integer of at least `min` (JSON numbers like 2.0 are refused: a count is written as an integer).
  int64_t integer(const json& obj, const std::string& key, const std::string& path, int64_t min) const {
    const json& v = at(obj, key, path);
    if (!v.is_number_integer()) fail(path, "expected an integer, got " + v.dump());
    const int64_t n = v.get<int64_t>();
    if (n < min) fail(path, "expected an integer >= " + std::to_string(min) + ", got " + v.dump());
    return n;
  }

  std::vector<int64_t> dims(const json& v, const std::string& path) const {
    if (!v.is_array()) fail(path, "expected a list of integers, got " + v.dump());
    std::vector<int64_t> out;
    for (const json& d : v) {
      if (!d.is_number_integer()) fail(path, "expected a list of integers, got " + v.dump());
      out.push_back(d.get<int64_t>());
    }
    return out;
  }

 private:
  std::string source_;
};

// The `llm` section, checked against the manifest's io tensors and profiles (llm_manifest.cpp).
LlmSpec parse_llm_section(const Reader& r, const json& llm, const Manifest& m);

}  // namespace detail
}  // namespace orin_trt
