#include "trt_util.hpp"

#include <cstdio>
#include <fstream>

#include "orin_trt/drift.hpp"
#include "orin_trt/engine.hpp"
#include "orin_trt/error.hpp"

namespace orin_trt {
namespace detail {

void cuda_check(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) {
    throw Error(what + ": CUDA error " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

void Logger::log(Severity severity, const char* msg) noexcept {
  if (severity > Severity::kWARNING) return;
  std::fprintf(stderr, "[orin_trt] TensorRT %s: %s\n", severity == Severity::kWARNING ? "warning" : "error", msg);
  if (severity <= Severity::kERROR) {
    std::lock_guard<std::mutex> lock(mutex_);
    last_error_ = msg;
  }
}

std::string Logger::last_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_.empty() ? "no message from TensorRT" : last_error_;
}

DeviceBuffer::DeviceBuffer(size_t bytes, const std::string& name) : bytes_(bytes) {
  cuda_check(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)), "cudaMalloc of " + std::to_string(bytes) + " bytes for '" + name + "'");
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

StreamPtr make_stream() {
  cudaStream_t s = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  return StreamPtr(s);
}

nvinfer1::Dims to_dims(const std::vector<int64_t>& shape, const std::string& name) {
  nvinfer1::Dims d{};
  if (shape.size() > size_t(nvinfer1::Dims::MAX_DIMS)) throw Error("tensor '" + name + "': too many dimensions");
  d.nbDims = int32_t(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) d.d[i] = shape[i];
  return d;
}

size_t volume(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t v : shape) n *= size_t(std::max<int64_t>(v, 0));
  return n;
}

std::string dtype_name(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return "float32";
    case nvinfer1::DataType::kHALF: return "float16";
    case nvinfer1::DataType::kBF16: return "bfloat16";
    case nvinfer1::DataType::kINT8: return "int8";
    case nvinfer1::DataType::kUINT8: return "uint8";
    case nvinfer1::DataType::kINT32: return "int32";
    case nvinfer1::DataType::kINT64: return "int64";
    case nvinfer1::DataType::kBOOL: return "bool";
    case nvinfer1::DataType::kFP8: return "fp8";
    default: return "";
  }
}

namespace {

std::vector<char> read_file(const std::string& path, int64_t expected_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open the engine (the manifest's engine.file)");
  const std::streamsize size = in.tellg();
  if (expected_bytes > 0 && size != expected_bytes) {
    throw Error(path + ": " + std::to_string(size) + " bytes, but its manifest records " + std::to_string(expected_bytes) +
                " (engine and manifest are from different builds; rebuild or copy both together)");
  }
  std::vector<char> blob(size_t(std::max<std::streamsize>(size, 0)));
  in.seekg(0);
  in.read(blob.data(), size);
  if (!in) throw Error(path + ": read failed");
  return blob;
}

}  // namespace

LoadedEngine load_engine(const Manifest& m, int device, bool check_drift_first, Logger& logger) {
  cuda_check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
  LoadedEngine out;
  out.runtime.reset(nvinfer1::createInferRuntime(logger));
  if (!out.runtime) throw Error("cannot create the TensorRT runtime: " + logger.last_error());
  const std::string path = m.engine_path();
  if (check_drift_first) {
    RunningSystem now = running_system(device);
    now.dla_cores = out.runtime->getNbDLACores();
    check_drift(m.system, now, path);
  }
  if (m.system.dla_core) out.runtime->setDLACore(*m.system.dla_core);
  const std::vector<char> blob = read_file(path, m.engine_bytes);
  out.engine.reset(out.runtime->deserializeCudaEngine(blob.data(), blob.size()));
  if (!out.engine) throw Error(path + ": deserialization failed: " + logger.last_error());
  return out;
}

void check_engine_matches_manifest(const nvinfer1::ICudaEngine& engine, const Manifest& m) {
  const std::string path = m.engine_path();
  std::vector<std::string> names;
  for (int32_t i = 0; i < engine.getNbIOTensors(); ++i) {
    const std::string name = engine.getIOTensorName(i);
    names.push_back(name);
    const std::string dtype = dtype_name(engine.getTensorDataType(name.c_str()));
    if (dtype.empty()) throw Error(path + ": tensor '" + name + "' has a dtype this library does not handle");
    const TensorInfo& declared = m.tensor(name);  // throws if the manifest does not know it
    if (declared.dtype != dtype) {
      throw Error(m.source + ": tensor '" + name + "' is " + declared.dtype + " in the manifest but " + dtype +
                  " in the engine (engine and manifest are from different builds)");
    }
  }
  for (const auto* list : {&m.inputs, &m.outputs}) {
    for (const TensorInfo& t : *list) {
      if (std::find(names.begin(), names.end(), t.name) == names.end()) {
        throw Error(path + ": tensor '" + t.name + "' is in " + m.source + " but not in the engine (engine and manifest are from different builds)");
      }
    }
  }
}

GraphExecPtr capture_graph(nvinfer1::IExecutionContext& context, cudaStream_t stream, Logger& logger, std::string& reason) {
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  const bool enqueued = context.enqueueV3(stream);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  cudaGraphExec_t exec = nullptr;
  cudaError_t inst = cudaErrorUnknown;
  if (enqueued && ended == cudaSuccess && graph) {
#if CUDART_VERSION >= 12000
    inst = cudaGraphInstantiate(&exec, graph, 0);
#else
    inst = cudaGraphInstantiate(&exec, graph, nullptr, nullptr, 0);
#endif
  }
  if (graph) cudaGraphDestroy(graph);  // the instantiated graph does not need it
  if (!enqueued || ended != cudaSuccess || inst != cudaSuccess) {
    cudaGetLastError();  // clear the capture error
    reason = !enqueued ? logger.last_error() : cudaGetErrorString(ended != cudaSuccess ? ended : inst);
    return nullptr;
  }
  return GraphExecPtr(exec);
}

}  // namespace detail
}  // namespace orin_trt
