// The TensorRT runtime on a real engine (JetPack container or any TensorRT + GPU host):
//   ORIN_TRT_TEST_MANIFEST=engines/yolo/fp32/model.engine.json ctest -R engine
// Skipped (exit 77) when no manifest is given. Inputs are filled with a constant; the checks are about
// the plumbing: shapes, profile and byte checks, the drift guard, CUDA-graph replay equal to enqueueV3.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "check.hpp"
#include "orin_trt/engine.hpp"
#include "orin_trt/error.hpp"

using namespace orin_trt;

namespace {

std::string manifest_path() {
  const char* p = std::getenv("ORIN_TRT_TEST_MANIFEST");
  return p ? p : "";
}

// Every float32 input at profile 0's opt shape, filled with 0.5.
void feed(Engine& e) {
  const Manifest& m = e.manifest();
  for (const TensorInfo& t : m.inputs) {
    const std::vector<int64_t>& shape = m.profiles.at(0).shapes.at(t.name).opt;
    size_t n = 1;
    for (int64_t d : shape) n *= size_t(d);
    if (t.dtype != "float32") throw Error("test_engine feeds float32 inputs only; '" + t.name + "' is " + t.dtype);
    e.set_input(t.name, std::vector<float>(n, 0.5f), shape);
  }
}

std::vector<std::vector<float>> run_all_outputs(Engine& e) {
  feed(e);
  e.run();
  std::vector<std::vector<float>> outs;
  for (const TensorInfo& t : e.manifest().outputs) outs.push_back(e.output(t.name));
  return outs;
}

}  // namespace

TEST(runs_with_shapes_from_the_profile) {
  Engine e(manifest_path());
  const auto outs = run_all_outputs(e);
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string& name = e.manifest().outputs[i].name;
    const std::vector<int64_t> shape = e.output_shape(name);
    size_t n = 1;
    for (int64_t d : shape) {
      CHECK(d > 0);
      n *= size_t(d);
    }
    CHECK_EQ(outs[i].size(), n);
    bool finite = true;
    for (float v : outs[i]) finite = finite && std::isfinite(v);
    CHECK(finite);
    std::printf("  %s %s\n", name.c_str(), shape_to_string(shape).c_str());
  }
}

TEST(cuda_graph_replays_the_same_result) {
  Engine plain(manifest_path());
  EngineOptions options;
  options.cuda_graph = true;
  Engine graphed(manifest_path(), options);
  const auto a = run_all_outputs(plain);
  run_all_outputs(graphed);
  const auto b = run_all_outputs(graphed);  // second run replays the captured graph
  std::printf("  CUDA graph in use: %s\n", graphed.uses_cuda_graph() ? "yes" : "no (capture refused)");
  CHECK_EQ(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    CHECK_EQ(a[i].size(), b[i].size());
    double worst = 0;
    for (size_t k = 0; k < std::min(a[i].size(), b[i].size()); ++k) worst = std::max(worst, double(std::fabs(a[i][k] - b[i][k])));
    CHECK(worst <= 1e-4);
  }
}

TEST(bad_inputs_are_refused_by_name) {
  Engine e(manifest_path());
  const Manifest& m = e.manifest();
  const TensorInfo& in = m.inputs.at(0);
  std::vector<int64_t> too_big = m.profiles.at(0).shapes.at(in.name).max;
  too_big[0] += 1;
  CHECK_THROWS(e.set_input(in.name, std::vector<float>(1), too_big), Error, "is outside the profile");
  const std::vector<int64_t>& opt = m.profiles.at(0).shapes.at(in.name).opt;
  CHECK_THROWS(e.set_input(in.name, std::vector<float>(3), opt), Error, "bytes, got 12");
  CHECK_THROWS(e.output("no_such_tensor"), Error, "no tensor named 'no_such_tensor'");
  Engine fresh(manifest_path());
  CHECK_THROWS(fresh.run(), Error, "was never set");
}

TEST(drift_and_stale_manifest_refused_before_deserializing) {
  Manifest m = load_manifest(manifest_path());
  m.system.trt_version = "0.0.1";
  CHECK_THROWS(Engine(m, {}), DriftError, "TensorRT: engine 0.0.1, this system");
  m = load_manifest(manifest_path());
  m.engine_bytes += 1;
  CHECK_THROWS(Engine(m, {}), Error, "engine and manifest are from different builds");
}

int main(int argc, char** argv) {
  if (manifest_path().empty()) {
    std::printf("skipped: set ORIN_TRT_TEST_MANIFEST to an engine manifest built for this system\n");
    return 77;
  }
  return check::run_all(argc, argv);
}
