// Written against the TensorRT 10.3 C++ API (JetPack 6)
// and only using what TensorRT 11 keeps (name-based I/O, enqueueV3; no bindings, no builder flags).
#include "orin_trt/engine.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

#include "orin_trt/error.hpp"
#include "trt_util.hpp"

namespace orin_trt {
namespace {

using namespace detail;

std::optional<std::string> read_l4t() {
  std::ifstream in("/etc/nv_tegra_release");
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  return parse_l4t_release(line);
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
  StreamPtr stream;
  std::map<std::string, Tensor> tensors;
  GraphExecPtr graph_exec;
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
    LoadedEngine loaded = load_engine(manifest, options.device, options.check_drift, logger);
    runtime = std::move(loaded.runtime);
    engine = std::move(loaded.engine);
    check_engine_matches_manifest(*engine, manifest);
    const std::string path = manifest.engine_path();
    context.reset(engine->createExecutionContext());
    if (!context) fail("cannot create an execution context");
    stream = make_stream();
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
      t.dtype = dtype_name(engine->getTensorDataType(name.c_str()));  // checked against the manifest in load()
      if (engine->isShapeInferenceIO(name.c_str())) {
        throw Error(manifest.engine_path() + ": tensor '" + name + "' is a shape tensor (host memory); not supported");
      }
      t.elem = dtype_size(t.dtype);
      if (t.input) {
        const auto max = engine->getProfileShape(name.c_str(), options.profile, nvinfer1::OptProfileSelector::kMAX);
        if (!context->setInputShape(name.c_str(), max)) fail("setInputShape('" + name + "', profile max)");
      }
      tensors.emplace(name, std::move(t));
    }
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
    if (!context->enqueueV3(stream.get())) fail("enqueueV3 failed");
    std::string reason;
    graph_exec = capture_graph(*context, stream.get(), logger, reason);
    if (!graph_exec) {
      graph_refused = true;
      std::fprintf(stderr, "[orin_trt] CUDA graph capture refused (%s); running without a graph\n", reason.c_str());
      return;
    }
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
