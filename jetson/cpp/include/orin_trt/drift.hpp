// Drift guard: refuse an engine built for another system before TensorRT tries to deserialize it
// (TensorRT's own failure there is cryptic). The comparison is pure so it is unit-tested anywhere;
// reading the running system needs TensorRT and CUDA and lives in engine.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "orin_trt/manifest.hpp"

namespace orin_trt {

struct RunningSystem {
  std::optional<std::string> trt_version;         // "10.3.0"
  std::optional<std::string> compute_capability;  // "8.7"
  std::optional<std::string> l4t;                 // "36.4.0"; empty when not a Jetson
  std::optional<int> dla_cores;                   // how many DLA cores the GPU exposes
};

// One phrase per field that differs, naming both sides ("TensorRT: engine 10.3.0.30, this system 8.6.2").
// Fields the manifest leaves unset are not bound and never differ. TensorRT versions compare on the
// components both sides have (the library reports MAJOR.MINOR.PATCH, a manifest may add the BUILD).
std::vector<std::string> drift_differences(const SystemSpec& built_for, const RunningSystem& running);

// Throws DriftError naming the engine and every difference; does nothing when none.
void check_drift(const SystemSpec& built_for, const RunningSystem& running, const std::string& engine);

// getInferLibVersion()'s integer as a dotted version: TensorRT >= 10 (and TensorRT-RTX) encode
// MAJOR*10000+MINOR*100+PATCH, earlier releases MAJOR*1000+MINOR*100+PATCH.
std::string trt_version_from_int(int version);

// /etc/nv_tegra_release's first line ("# R36 (release), REVISION: 4.0, ...") -> "36.4.0"; empty if absent.
std::optional<std::string> parse_l4t_release(const std::string& text);

}  // namespace orin_trt
