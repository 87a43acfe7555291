// The only translation unit that includes TensorRT. Written against the TensorRT 10.3 C++ API (JetPack 6)
// and only using what TensorRT 11 keeps (name-based I/O, enqueueV3; no bindings, no builder flags).
#include "orin_trt/engine.hpp"

#include <NvInfer.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <utility>

#include "orin_trt/error.hpp"

namespace orin_trt {
namespace {

void cuda_check(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) {
    throw Error(what + ": CUDA error " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

// Prints warnings and errors, and keeps the last error so exceptions can quote TensorRT's own words.
class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity > Severity::kWARNING) return;
    std::fprintf(stderr, "[orin_trt] TensorRT %s: %s\n", severity == Severity::kWARNING ? "warning" : "error", msg);
    if (severity <= Severity::kERROR) {
      std::lock_guard<std::mutex> lock(mutex_);
      last_error_ = msg;
    }
  }
  std::string last_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_error_.empty() ? "no message from TensorRT" : last_error_;
  }

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
  DeviceBuffer(size_t bytes, const std::string& name) : bytes_(bytes) {
    cuda_check(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)), "cudaMalloc for tensor '" + name + "'");
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
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
struct GraphDelete {
  void operator()(CUgraph_st* g) const noexcept { cudaGraphDestroy(g); }
};
struct GraphExecDelete {
  void operator()(CUgraphExec_st* g) const noexcept { cudaGraphExecDestroy(g); }
};

nvinfer1::Dims to_dims(const std::vector<int64_t>& shape, const std::string& name) {
  nvinfer1::Dims d{};
  if (shape.size() > size_t(nvinfer1::Dims::MAX_DIMS)) throw Error("tensor '" + name + "': too many dimensions");
  d.nbDims = int32_t(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) d.d[i] = shape[i];
  return d;
}

std::vector<int64_t> from_dims(const nvinfer1::Dims& d) { return std::vector<int64_t>(d.d, d.d + std::max(d.nbDims, 0)); }

size_t volume(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t v : shape) n *= size_t(std::max<int64_t>(v, 0));
  return n;
}

// TensorRT's dtype in the manifest's spelling ("" for types the manifest has no name for).
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

std::optional<std::string> read_l4t() {
  std::ifstream in("/etc/nv_tegra_release");
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  return parse_l4t_release(line);
}

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

struct Tensor {
  std::string name;
  bool input = false;
  std::string dtype;
  size_t elem = 0;
  DeviceBuffer device;
  std::vector<uint8_t> host;  // outputs: the last run's copy
  bool fed = false;           // inputs: set_input() was called
};

}  // namespace

struct Engine::Impl {
  Manifest manifest;
  EngineOptions options;
  Logger logger;
  // Declaration order is destruction order reversed: the context goes before the engine, the engine
  // before the runtime, the graph before the buffers and the stream last.
  TrtPtr<nvinfer1::IRuntime> runtime;
  TrtPtr<nvinfer1::ICudaEngine> engine;
  TrtPtr<nvinfer1::IExecutionContext> context;
  std::unique_ptr<CUstream_st, StreamDelete> stream;
  std::map<std::string, Tensor> tensors;
  std::unique_ptr<CUgraph_st, GraphDelete> graph;
  std::unique_ptr<CUgraphExec_st, GraphExecDelete> graph_exec;
  std::string graph_shapes;  // the input shapes the graph was captured with
  bool graph_refused = false;

  [[noreturn]] void fail(const std::string& what) { throw Error(manifest.engine_path() + ": " + what + ": " + logger.last_error()); }

  ~Impl() {
    // Work enqueued without run() may still use the buffers about to be freed.
    if (stream) cudaStreamSynchronize(stream.get());
  }

  Tensor& tensor(const std::string& name) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      manifest.tensor(name);  // throws, listing the manifest's tensors, if it is unknown there too
      throw Error(manifest.engine_path() + ": tensor '" + name + "' is in " + manifest.source +
                  " but not in the engine (engine and manifest are from different builds)");
    }
    return it->second;
  }

  std::string input_shapes() const {
    std::string key;
    for (const auto& [name, t] : tensors) {
      if (t.input) key += name + shape_to_string(from_dims(context->getTensorShape(name.c_str()))) + ";";
    }
    return key;
  }

  void load() {
    cuda_check(cudaSetDevice(options.device), "cudaSetDevice(" + std::to_string(options.device) + ")");
    runtime.reset(nvinfer1::createInferRuntime(logger));
    if (!runtime) throw Error("cannot create the TensorRT runtime: " + logger.last_error());
    const std::string path = manifest.engine_path();
    if (options.check_drift) {
      RunningSystem now = running_system(options.device);
      now.dla_cores = runtime->getNbDLACores();
      check_drift(manifest.system, now, path);
    }
    if (manifest.system.dla_core) runtime->setDLACore(*manifest.system.dla_core);
    const std::vector<char> blob = read_file(path, manifest.engine_bytes);
    engine.reset(runtime->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine) fail("deserialization failed");
    context.reset(engine->createExecutionContext());
    if (!context) fail("cannot create an execution context");
    cudaStream_t s = nullptr;
    cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    stream.reset(s);
    if (options.profile < 0 || options.profile >= engine->getNbOptimizationProfiles()) {
      throw Error(path + ": optimization profile " + std::to_string(options.profile) + " does not exist (" +
                  std::to_string(engine->getNbOptimizationProfiles()) + " profile(s))");
    }
    if (!context->setOptimizationProfileAsync(options.profile, stream.get())) fail("cannot select the optimization profile");
    allocate();
  }

  // One device buffer per I/O tensor, sized for the profile's largest shapes, bound once.
  void allocate() {
    const int32_t n = engine->getNbIOTensors();
    for (int32_t i = 0; i < n; ++i) {
      const std::string name = engine->getIOTensorName(i);
      Tensor t;
      t.name = name;
      t.input = engine->getTensorIOMode(name.c_str()) == nvinfer1::TensorIOMode::kINPUT;
      t.dtype = dtype_name(engine->getTensorDataType(name.c_str()));
      if (t.dtype.empty()) throw Error(manifest.engine_path() + ": tensor '" + name + "' has a dtype this library does not handle");
      if (engine->isShapeInferenceIO(name.c_str())) {
        throw Error(manifest.engine_path() + ": tensor '" + name + "' is a shape tensor (host memory); not supported");
      }
      const TensorInfo& declared = manifest.tensor(name);  // throws if the manifest does not know it
      if (declared.dtype != t.dtype) {
        throw Error(manifest.source + ": tensor '" + name + "' is " + declared.dtype + " in the manifest but " + t.dtype +
                    " in the engine (engine and manifest are from different builds)");
      }
      t.elem = dtype_size(t.dtype);
      if (t.input) {
        const auto max = engine->getProfileShape(name.c_str(), options.profile, nvinfer1::OptProfileSelector::kMAX);
        if (!context->setInputShape(name.c_str(), max)) fail("setInputShape('" + name + "', profile max)");
      }
      tensors.emplace(name, std::move(t));
    }
    for (const TensorInfo& declared : manifest.inputs) tensor(declared.name);  // every manifest tensor exists
    for (const TensorInfo& declared : manifest.outputs) tensor(declared.name);
    for (auto& [name, t] : tensors) {
      const std::vector<int64_t> shape = from_dims(context->getTensorShape(name.c_str()));
      if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; })) {
        throw Error(manifest.engine_path() + ": output '" + name + "' has a data-dependent shape " + shape_to_string(shape) +
                    "; this library needs outputs whose shape follows from the inputs");
      }
      t.device = DeviceBuffer(volume(shape) * t.elem, name);
      if (!context->setTensorAddress(name.c_str(), t.device.get())) fail("setTensorAddress('" + name + "')");
    }
  }

  void set_input(const std::string& name, const void* data, size_t bytes, const std::vector<int64_t>& shape) {
    Tensor& t = tensor(name);
    if (!t.input) throw Error(manifest.source + ": '" + name + "' is an output, not an input");
    check_shape_in_profile(manifest, size_t(options.profile), name, shape);
    const size_t expected = volume(shape) * t.elem;
    if (bytes != expected) {
      throw Error(manifest.source + ": input '" + name + "' of shape " + shape_to_string(shape) + " (" + t.dtype + ") takes " +
                  std::to_string(expected) + " bytes, got " + std::to_string(bytes));
    }
    if (!context->setInputShape(name.c_str(), to_dims(shape, name))) fail("setInputShape('" + name + "', " + shape_to_string(shape) + ")");
    cuda_check(cudaMemcpyAsync(t.device.get(), data, bytes, cudaMemcpyHostToDevice, stream.get()), "copy of input '" + name + "'");
    t.fed = true;
  }

  // CUDA graphs: TensorRT needs one enqueueV3 outside capture after a shape change (it updates
  // internal state then); the graph is recaptured whenever the input shapes change.
  void enqueue() {
    if (options.cuda_graph && !graph_refused) {
      const std::string shapes = input_shapes();
      if (!graph_exec || shapes != graph_shapes) capture(shapes);
      if (graph_exec) {
        cuda_check(cudaGraphLaunch(graph_exec.get(), stream.get()), "cudaGraphLaunch");
        return;
      }
    }
    if (!context->enqueueV3(stream.get())) fail("enqueueV3 failed");
  }

  void capture(const std::string& shapes) {
    graph_exec.reset();
    graph.reset();
    if (!context->enqueueV3(stream.get())) fail("enqueueV3 failed");
    cuda_check(cudaStreamSynchronize(stream.get()), "cudaStreamSynchronize");
    cuda_check(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    const bool enqueued = context->enqueueV3(stream.get());
    cudaGraph_t g = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream.get(), &g);
    graph.reset(g);
    cudaGraphExec_t exec = nullptr;
    cudaError_t inst = cudaErrorUnknown;
    if (enqueued && ended == cudaSuccess && g) {
#if CUDART_VERSION >= 12000
      inst = cudaGraphInstantiate(&exec, g, 0);
#else
      inst = cudaGraphInstantiate(&exec, g, nullptr, nullptr, 0);
#endif
    }
    if (!enqueued || ended != cudaSuccess || inst != cudaSuccess) {
      // Some engines cannot be captured (e.g. DLA layers, some plugins): run them without a graph.
      cudaGetLastError();  // clear the capture error
      graph.reset();
      graph_refused = true;
      std::fprintf(stderr, "[orin_trt] CUDA graph capture refused (%s); running without a graph\n",
                   !enqueued ? logger.last_error().c_str() : cudaGetErrorString(ended != cudaSuccess ? ended : inst));
      return;
    }
    graph_exec.reset(exec);
    graph_shapes = shapes;
  }

  void run() {
    for (const auto& [name, t] : tensors) {
      if (t.input && !t.fed) throw Error(manifest.source + ": input '" + name + "' was never set: set_input() every input before run()");
    }
    enqueue();
    for (auto& [name, t] : tensors) {
      if (t.input) continue;
      t.host.resize(volume(from_dims(context->getTensorShape(name.c_str()))) * t.elem);
      cuda_check(cudaMemcpyAsync(t.host.data(), t.device.get(), t.host.size(), cudaMemcpyDeviceToHost, stream.get()),
                 "copy of output '" + name + "'");
    }
    cuda_check(cudaStreamSynchronize(stream.get()), "inference on " + manifest.engine_path());
  }
};

Engine::Engine(const std::string& manifest_path, EngineOptions options) : Engine(load_manifest(manifest_path), options) {}

Engine::Engine(Manifest manifest, EngineOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->manifest = std::move(manifest);
  impl_->options = options;
  impl_->load();
}

Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

const Manifest& Engine::manifest() const { return impl_->manifest; }

void Engine::set_input(const std::string& name, const void* data, size_t bytes, const std::vector<int64_t>& shape) {
  impl_->set_input(name, data, bytes, shape);
}

void Engine::set_input(const std::string& name, const std::vector<float>& data, const std::vector<int64_t>& shape) {
  const Tensor& t = impl_->tensor(name);
  if (t.dtype != "float32") throw Error(impl_->manifest.source + ": input '" + name + "' is " + t.dtype + ", not float32");
  impl_->set_input(name, data.data(), data.size() * sizeof(float), shape);
}

void Engine::run() { impl_->run(); }
void Engine::enqueue() { impl_->enqueue(); }

std::vector<int64_t> Engine::output_shape(const std::string& name) const {
  impl_->tensor(name);
  return from_dims(impl_->context->getTensorShape(name.c_str()));
}

const std::vector<uint8_t>& Engine::output_bytes(const std::string& name) const {
  const Tensor& t = impl_->tensor(name);
  if (t.input) throw Error(impl_->manifest.source + ": '" + name + "' is an input, not an output");
  return t.host;
}

std::vector<float> Engine::output(const std::string& name) const {
  const Tensor& t = impl_->tensor(name);
  if (t.dtype != "float32") throw Error(impl_->manifest.source + ": output '" + name + "' is " + t.dtype + "; use output_bytes()");
  const std::vector<uint8_t>& bytes = output_bytes(name);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::copy_n(bytes.data(), out.size() * sizeof(float), reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

void* Engine::device_buffer(const std::string& name) const { return impl_->tensor(name).device.get(); }
cudaStream_t Engine::stream() const { return impl_->stream.get(); }
bool Engine::uses_cuda_graph() const { return impl_->graph_exec != nullptr; }

RunningSystem running_system(int device) {
  RunningSystem s;
  s.trt_version = trt_version_from_int(getInferLibVersion());
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
    s.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  }
  s.l4t = read_l4t();
  return s;
}

}  // namespace orin_trt
