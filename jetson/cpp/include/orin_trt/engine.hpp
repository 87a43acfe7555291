// A TensorRT engine loaded with its manifest, run by tensor name (TensorRT 10 API: setInputShape,
// setTensorAddress, enqueueV3) on its own CUDA stream, optionally replayed as a CUDA graph, on the
// DLA core the manifest names. Every TensorRT and CUDA object is owned (RAII); failures throw
// orin_trt::Error with TensorRT's own last message. Needs TensorRT + CUDA (target orin_trt::runtime).
//
//   orin_trt::Engine engine("engines/yolo/int8/model.engine.json");
//   engine.set_input("images", tensor, {1, 3, 640, 640});
//   engine.run();
//   std::vector<float> out = engine.output("output0");   // shape: engine.output_shape("output0")
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "orin_trt/drift.hpp"
#include "orin_trt/manifest.hpp"

namespace orin_trt {

struct EngineOptions {
  int device = 0;           // CUDA device
  int profile = 0;          // optimization profile (index into the manifest's `profiles`)
  bool cuda_graph = false;  // capture enqueueV3 once per input shape and replay it
  bool check_drift = true;  // refuse an engine built for another TensorRT / GPU / L4T before loading it
};

class Engine {
 public:
  explicit Engine(const std::string& manifest_path, EngineOptions options = {});
  Engine(Manifest manifest, EngineOptions options);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Manifest& manifest() const;

  // Copy one input to the device (asynchronously, on the engine's stream) and set its shape; the shape
  // is checked against the manifest's profile and the byte count against the shape and dtype.
  void set_input(const std::string& name, const void* data, size_t bytes, const std::vector<int64_t>& shape);
  void set_input(const std::string& name, const std::vector<float>& data, const std::vector<int64_t>& shape);

  // Enqueue the inference (or replay its CUDA graph), copy every output to the host and wait.
  void run();
  // Enqueue only, no copies and no wait: for pipelines that read device_buffer() on stream().
  void enqueue();

  std::vector<int64_t> output_shape(const std::string& name) const;  // after set_input of every input
  std::vector<float> output(const std::string& name) const;           // host copy from the last run(); float32 only
  const std::vector<uint8_t>& output_bytes(const std::string& name) const;

  void* device_buffer(const std::string& name) const;
  cudaStream_t stream() const;
  bool uses_cuda_graph() const;  // false when capture was refused (the reason went to stderr)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The system this process runs on, for the drift guard: TensorRT's library version, the device's
// compute capability, the L4T release (/etc/nv_tegra_release) and the DLA core count.
RunningSystem running_system(int device = 0);

}  // namespace orin_trt
