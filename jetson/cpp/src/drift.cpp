#include "orin_trt/drift.hpp"

#include <regex>
#include <sstream>

#include "orin_trt/error.hpp"

namespace orin_trt {
namespace {

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

// "10.3.0.30" and "10.3.0" agree: the library reports no build number. Fewer than 3 shared components
// ("10" vs "10.3.0") never count as agreement.
bool same_trt_version(const std::string& a, const std::string& b) {
  const auto pa = split_dots(a), pb = split_dots(b);
  const size_t n = std::min(pa.size(), pb.size());
  if (n < 3 && pa.size() != pb.size()) return false;
  for (size_t i = 0; i < n; ++i) {
    if (pa[i] != pb[i]) return false;
  }
  return true;
}

std::string show(const std::optional<std::string>& v, const char* absent) { return v ? *v : absent; }

}  // namespace

std::vector<std::string> drift_differences(const SystemSpec& built_for, const RunningSystem& running) {
  std::vector<std::string> out;
  if (built_for.trt_version &&
      (!running.trt_version || !same_trt_version(*built_for.trt_version, *running.trt_version))) {
    out.push_back("TensorRT: engine " + *built_for.trt_version + ", this system " +
                  show(running.trt_version, "unknown"));
  }
  if (built_for.compute_capability && built_for.compute_capability != running.compute_capability) {
    out.push_back("compute capability: engine " + *built_for.compute_capability + ", this system " +
                  show(running.compute_capability, "no CUDA device"));
  }
  if (built_for.l4t && built_for.l4t != running.l4t) {
    out.push_back("L4T: engine " + *built_for.l4t + ", this system " +
                  show(running.l4t, "none (not a Jetson: no /etc/nv_tegra_release)"));
  }
  if (built_for.dla_core && running.dla_cores && *built_for.dla_core >= *running.dla_cores) {
    out.push_back("DLA core: engine " + std::to_string(*built_for.dla_core) + ", this system has " +
                  std::to_string(*running.dla_cores) + " DLA core(s)");
  }
  return out;
}

void check_drift(const SystemSpec& built_for, const RunningSystem& running, const std::string& engine) {
  const auto diffs = drift_differences(built_for, running);
  if (diffs.empty()) return;
  std::string joined;
  for (const auto& d : diffs) joined += (joined.empty() ? "" : "; ") + d;
  throw DriftError("cannot load " + engine + ": built for a different system (" + joined +
                   "); rebuild it on this system (make engine) or run it where it was built");
}

std::string trt_version_from_int(int version) {
  // MAJOR*1000 never reaches 10000 (8.6.2 -> 8602); MAJOR*10000 always does (10.3.0 -> 100300,
  // TensorRT-RTX 1.7.1 -> 10701).
  const int base = version >= 10000 ? 10000 : 1000;
  const int major = version / base, rest = version % base;
  return std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
}

std::optional<std::string> parse_l4t_release(const std::string& text) {
  static const std::regex pattern(R"(R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+))");
  std::smatch m;
  if (!std::regex_search(text, m, pattern)) return std::nullopt;
  std::string revision = m[2].str();
  while (!revision.empty() && revision.back() == '.') revision.pop_back();
  return m[1].str() + "." + revision;
}

}  // namespace orin_trt
