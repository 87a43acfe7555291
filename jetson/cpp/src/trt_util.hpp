// Internal to orin_trt::runtime: the TensorRT and CUDA pieces Engine and LlmSession share (owned objects,
// errors that quote TensorRT's last message, loading an engine behind the drift guard, CUDA-graph capture).
// Written against the TensorRT 10.3 C++ API (JetPack 6), using only what TensorRT 10.16 and 11 keep.
#pragma once

#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "orin_trt/manifest.hpp"

namespace orin_trt {
namespace detail {

void cuda_check(cudaError_t status, const std::string& what);

// Prints warnings and errors, and keeps the last error so exceptions can quote TensorRT's own words.
class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override;
  std::string last_error();

 private:
  std::mutex mutex_;
  std::string last_error_;
};

// TensorRT 10 objects are released with delete (destroy() is gone).
struct TrtDelete {
  template <typename T>
  void operator()(T* p) const noexcept {
    delete p;
  }
};
template <typename T>
using TrtPtr = std::unique_ptr<T, TrtDelete>;

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t bytes, const std::string& name);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct StreamDelete {
  void operator()(CUstream_st* s) const noexcept { cudaStreamDestroy(s); }
};
struct GraphExecDelete {
  void operator()(CUgraphExec_st* g) const noexcept { cudaGraphExecDestroy(g); }
};
using StreamPtr = std::unique_ptr<CUstream_st, StreamDelete>;
using GraphExecPtr = std::unique_ptr<CUgraphExec_st, GraphExecDelete>;

StreamPtr make_stream();

nvinfer1::Dims to_dims(const std::vector<int64_t>& shape, const std::string& name);
inline std::vector<int64_t> from_dims(const nvinfer1::Dims& d) { return std::vector<int64_t>(d.d, d.d + std::max(d.nbDims, 0)); }
size_t volume(const std::vector<int64_t>& shape);

// TensorRT's dtype in the manifest's spelling ("" for types the manifest has no name for).
std::string dtype_name(nvinfer1::DataType t);

// The runtime and the deserialized engine of `m`, after the drift guard (unless `check_drift` is off),
// on the manifest's DLA core. Errors name the engine file.
struct LoadedEngine {
  TrtPtr<nvinfer1::IRuntime> runtime;
  TrtPtr<nvinfer1::ICudaEngine> engine;
};
LoadedEngine load_engine(const Manifest& m, int device, bool check_drift, Logger& logger);

// Every I/O tensor of the engine is in the manifest with the same dtype, and the other way round.
void check_engine_matches_manifest(const nvinfer1::ICudaEngine& engine, const Manifest& m);

// Capture one enqueueV3 of `context` on `stream` into an instantiated graph. The caller has already run
// one plain enqueueV3 with the current shapes (TensorRT updates internal state on the first enqueue
// after a shape change). On refusal (DLA layers, some plugins) returns null and says why in `reason`.
GraphExecPtr capture_graph(nvinfer1::IExecutionContext& context, cudaStream_t stream, Logger& logger, std::string& reason);

}  // namespace detail
}  // namespace orin_trt
