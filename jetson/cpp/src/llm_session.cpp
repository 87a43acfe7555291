// LlmSession: the TensorRT calls of the device-resident decode (TensorRT 10.3 API; every call also in
// 10.16 and 11.1). What it computes on the host (feeds, cache plan, copies, stop rule) is in
// kv_cache_plan.cpp and llm_step.cpp, tested without TensorRT; this file is verified only by compiling.
#include "orin_trt/llm_session.hpp"

#include <chrono>
#include <cstdio>
#include <map>

#include "orin_trt/error.hpp"
#include "trt_util.hpp"

namespace orin_trt {
namespace {

using namespace detail;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Page-locked host memory: the logits copy is then a true asynchronous DMA.
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) { cuda_check(cudaMallocHost(&ptr_, std::max<size_t>(bytes, 1)), "cudaMallocHost for the logits"); }
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  float* get() const { return static_cast<float*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

enum class Phase { Prefill, Decode };

}  // namespace

struct LlmSession::Impl {
  Manifest manifest;
  LlmSpec spec;
  LlmOptions options;
  KvCachePlan plan;
  std::vector<int64_t> buckets;
  Logger logger;
  // Destroyed in reverse: graphs, then contexts, before the engine, the runtime, the buffers, the stream.
  StreamPtr stream;
  std::vector<DeviceBuffer> cache, staging;  // one per plan.tensors() entry
  DeviceBuffer ids, mask, positions, logit_positions, logits;
  std::unique_ptr<PinnedBuffer> host_logits;
  TrtPtr<nvinfer1::IRuntime> runtime;
  TrtPtr<nvinfer1::ICudaEngine> engine;
  TrtPtr<nvinfer1::IExecutionContext> prefill, decode;
  std::map<int64_t, GraphExecPtr> graphs;  // decode step by past-length bucket
  int64_t decode_shapes_bucket = -1;       // the bucket whose shapes the decode context holds (-1: none)
  bool graph_refused = false;
  FeedMirrors mirrors;

  Impl(Manifest m, LlmOptions o)
      : manifest(std::move(m)), spec(require_llm(manifest)), options(std::move(o)), plan(spec, options.batch),
        buckets(normalize_buckets(options.buckets.empty() ? default_buckets(spec.kv_cache.max_context) : options.buckets,
                                  spec.kv_cache.max_context)) {
    LoadedEngine loaded = load_engine(manifest, options.device, options.check_drift, logger);
    runtime = std::move(loaded.runtime);
    engine = std::move(loaded.engine);
    check_engine_matches_manifest(*engine, manifest);
    check_engine_layout();
    stream = make_stream();
    prefill = make_context(spec.prefill_profile, "prefill");
    decode = make_context(spec.decode_profile, "decode");
    allocate();
    bind_fixed_addresses(*prefill);
    bind_fixed_addresses(*decode);
    cuda_check(cudaStreamSynchronize(stream.get()), "setting up the KV cache of " + manifest.engine_path());
  }

  ~Impl() {
    if (stream) cudaStreamSynchronize(stream.get());
  }

  static LlmSpec require_llm(const Manifest& m) {
    if (!m.llm) throw Error(m.source + ": llm: missing (not an LLM engine of the device-resident KV-cache contract)");
    return *m.llm;
  }

  [[noreturn]] void fail(const std::string& what) { throw Error(manifest.engine_path() + ": " + what + ": " + logger.last_error()); }

  // The cache is bound by address as a linear, sequence-major device array: any other format breaks the prefix.
  void check_engine_layout() {
    const int32_t profiles = engine->getNbOptimizationProfiles();
    for (const auto& [phase, index] : {std::pair<const char*, int>{"prefill", spec.prefill_profile}, {"decode", spec.decode_profile}}) {
      if (index >= profiles) {
        throw Error(manifest.source + ": llm.phases." + phase + ": profile " + std::to_string(index) + ", but the engine has " +
                    std::to_string(profiles));
      }
    }
    for (const KvTensor& t : plan.tensors()) {
      for (const std::string* name : {&t.past_input, &t.new_output}) {
        if (engine->getTensorLocation(name->c_str()) != nvinfer1::TensorLocation::kDEVICE ||
            engine->getTensorFormat(name->c_str()) != nvinfer1::TensorFormat::kLINEAR) {
          throw Error(manifest.engine_path() + ": tensor '" + *name + "' is not a linear device tensor; the KV cache needs one");
        }
      }
    }
  }

  // kON_PROFILE_CHANGE: each context holds the activation memory of its own profile only (kSTATIC would
  // give both the largest profile's), and selects its profile once.
  TrtPtr<nvinfer1::IExecutionContext> make_context(int profile, const char* phase) {
    TrtPtr<nvinfer1::IExecutionContext> c(
        engine->createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kON_PROFILE_CHANGE));
    if (!c) fail(std::string("cannot create the ") + phase + " execution context");
    if (!c->setOptimizationProfileAsync(profile, stream.get())) fail(std::string("cannot select the ") + phase + " profile " + std::to_string(profile));
    return c;
  }

  void allocate() {
    const size_t b = size_t(options.batch);
    for (const KvTensor& t : plan.tensors()) {
      cache.emplace_back(plan.buffer_bytes(), t.past_input + " cache");
      // Zeros: a padded (masked) past position is then finite even before it was ever written.
      cuda_check(cudaMemsetAsync(cache.back().get(), 0, plan.buffer_bytes(), stream.get()), "clearing the KV cache");
      staging.emplace_back(plan.staging_bytes(), t.new_output + " staging");
    }
    const size_t prompt = b * size_t(spec.max_prompt) * sizeof(int64_t);
    ids = DeviceBuffer(prompt, spec.input_ids);
    positions = DeviceBuffer(prompt, spec.position_ids);
    logit_positions = DeviceBuffer(prompt, spec.logits.positions_input);
    mask = DeviceBuffer(b * size_t(spec.kv_cache.max_context) * sizeof(int64_t), spec.attention_mask);
    const size_t logits_bytes = b * size_t(spec.logits.vocab) * sizeof(float);  // one logit position per row
    logits = DeviceBuffer(logits_bytes, spec.logits.output);
    host_logits = std::make_unique<PinnedBuffer>(logits_bytes);
  }

  void bind(nvinfer1::IExecutionContext& c, const std::string& name, void* address) {
    if (!c.setTensorAddress(name.c_str(), address)) fail("setTensorAddress('" + name + "')");
  }

  // Token inputs, logits and the past inputs (the cache base: the prefix of `past` positions) never move.
  void bind_fixed_addresses(nvinfer1::IExecutionContext& c) {
    bind(c, spec.input_ids, ids.get());
    bind(c, spec.attention_mask, mask.get());
    bind(c, spec.position_ids, positions.get());
    bind(c, spec.logits.positions_input, logit_positions.get());
    bind(c, spec.logits.output, logits.get());
    for (size_t i = 0; i < cache.size(); ++i) bind(c, plan.tensors()[i].past_input, cache[i].get());
  }

  void set_shape(nvinfer1::IExecutionContext& c, int profile, const std::string& name, const std::vector<int64_t>& shape) {
    check_shape_in_profile(manifest, size_t(profile), name, shape);
    if (!c.setInputShape(name.c_str(), to_dims(shape, name))) fail("setInputShape('" + name + "', " + shape_to_string(shape) + ")");
  }

  void set_shapes(nvinfer1::IExecutionContext& c, int profile, const StepFeeds& f) {
    set_shape(c, profile, spec.input_ids, f.ids_shape());
    set_shape(c, profile, spec.attention_mask, f.mask_shape());
    set_shape(c, profile, spec.position_ids, f.positions_shape());
    set_shape(c, profile, spec.logits.positions_input, f.logit_positions_shape());
    for (const KvTensor& t : plan.tensors()) set_shape(c, profile, t.past_input, plan.past_shape(f.past));
    // An engine of the contract returns logits for logit_positions only and this chunk's keys/values only.
    expect_shape(c, spec.logits.output, {f.batch, 1, spec.logits.vocab});
    for (const KvTensor& t : plan.tensors()) expect_shape(c, t.new_output, plan.new_shape(f.seq));
  }

  void expect_shape(nvinfer1::IExecutionContext& c, const std::string& name, const std::vector<int64_t>& expected) {
    const std::vector<int64_t> shape = from_dims(c.getTensorShape(name.c_str()));
    if (shape != expected) {
      throw Error(manifest.engine_path() + ": output '" + name + "' has shape " + shape_to_string(shape) + ", the KV-cache contract needs " +
                  shape_to_string(expected) + " (an engine exported before the contract?)");
    }
  }

  size_t upload(const DeviceBuffer& buffer, const std::vector<int64_t>& values, const std::vector<Run>& runs, const std::string& name) {
    for (const Run& r : runs) {
      cuda_check(cudaMemcpyAsync(static_cast<int64_t*>(buffer.get()) + r.first, values.data() + r.first, r.count * sizeof(int64_t),
                                 cudaMemcpyHostToDevice, stream.get()),
                 "copy of input '" + name + "'");
    }
    return run_bytes(runs, sizeof(int64_t));
  }

  // One step: copy the changed token inputs, bind the new keys/values, run (or replay the bucket's
  // graph), place staged keys/values, copy the logits out. Returns the logits on the host.
  const float* step(Phase phase, const StepFeeds& f, bool graphed, PhaseBytes& bytes, GenerationResult& result) {
    try {
      return run_step(phase, f, graphed, bytes, result);
    } catch (...) {
      mirrors.clear();  // a failed copy leaves the input buffers unknown: the next step copies them whole
      throw;
    }
  }

  const float* run_step(Phase phase, const StepFeeds& f, bool graphed, PhaseBytes& bytes, GenerationResult& result) {
    nvinfer1::IExecutionContext& c = phase == Phase::Prefill ? *prefill : *decode;
    const int profile = phase == Phase::Prefill ? spec.prefill_profile : spec.decode_profile;

    const StepUploads u = mirrors.update(f);
    bytes.h2d += upload(ids, f.input_ids, u.input_ids, spec.input_ids);
    bytes.h2d += upload(mask, f.attention_mask, u.attention_mask, spec.attention_mask);
    bytes.h2d += upload(positions, f.position_ids, u.position_ids, spec.position_ids);
    bytes.h2d += upload(logit_positions, f.logit_positions, u.logit_positions, spec.logits.positions_input);

    if (phase == Phase::Prefill) {
      set_shapes(c, profile, f);
    } else if (!graphed || decode_shapes_bucket != f.past) {
      set_shapes(c, profile, f);
      decode_shapes_bucket = graphed ? f.past : -1;  // a bucket's graph replays with the shapes it was captured with
    }
    std::vector<KvWrite> writes;
    for (size_t i = 0; i < cache.size(); ++i) {
      const bool staged = graphed || (phase == Phase::Decode && options.force_staging);
      const KvWrite w = plan.write(f.true_past, f.seq, reinterpret_cast<uintptr_t>(cache[i].get()), staged);
      bind(c, plan.tensors()[i].new_output, w.in_place ? static_cast<char*>(cache[i].get()) + w.offset : staging[i].get());
      writes.push_back(w);
    }

    if (graphed) {
      run_graph(f.past);
    } else if (!c.enqueueV3(stream.get())) {
      fail("enqueueV3 failed");
    }

    for (size_t i = 0; i < cache.size(); ++i) {
      const KvWrite& w = writes[i];
      if (w.in_place) {
        ++result.in_place_writes;
        continue;
      }
      cuda_check(cudaMemcpyAsync(static_cast<char*>(cache[i].get()) + w.offset, staging[i].get(), w.bytes, cudaMemcpyDeviceToDevice,
                                 stream.get()),
                 "placing '" + plan.tensors()[i].new_output + "' in the cache");
      bytes.d2d += w.bytes;
      ++result.staged_writes;
    }
    const size_t logits_bytes = size_t(f.batch) * size_t(spec.logits.vocab) * sizeof(float);
    cuda_check(cudaMemcpyAsync(host_logits->get(), logits.get(), logits_bytes, cudaMemcpyDeviceToHost, stream.get()), "copy of the logits");
    bytes.d2h += logits_bytes;
    cuda_check(cudaStreamSynchronize(stream.get()), std::string(phase == Phase::Prefill ? "prefill" : "decode") + " on " + manifest.engine_path());
    ++bytes.steps;
    return host_logits->get();
  }

  // The first step of a bucket runs plainly (TensorRT updates its state after a shape change) and is
  // captured; later steps of that bucket replay the graph.
  void run_graph(int64_t bucket) {
    auto it = graphs.find(bucket);
    if (it != graphs.end()) {
      cuda_check(cudaGraphLaunch(it->second.get(), stream.get()), "cudaGraphLaunch");
      return;
    }
    if (!decode->enqueueV3(stream.get())) fail("enqueueV3 failed");
    std::string reason;
    GraphExecPtr g = capture_graph(*decode, stream.get(), logger, reason);
    if (!g) {
      graph_refused = true;
      std::fprintf(stderr, "[orin_trt] CUDA graph capture of the decode step refused (%s); decoding without graphs\n", reason.c_str());
      return;
    }
    graphs.emplace(bucket, std::move(g));
  }

  GenerationResult generate(const std::vector<std::vector<int64_t>>& prompts, int64_t max_new_tokens) {
    check_prompts(spec, prompts, options.batch);
    if (max_new_tokens < 1) throw Error("max_new_tokens must be at least 1, got " + std::to_string(max_new_tokens));
    GenerationResult r;
    r.new_ids.resize(prompts.size());
    std::vector<bool> finished(prompts.size(), false);
    std::vector<int64_t> last(prompts.size());
    const auto take = [&](const float* host) {
      bool all = true;
      for (size_t row = 0; row < prompts.size(); ++row) {
        if (!finished[row]) {
          last[row] = argmax(host + row * size_t(spec.logits.vocab), size_t(spec.logits.vocab));
          r.new_ids[row].push_back(last[row]);
          finished[row] = spec.eos_id && last[row] == *spec.eos_id;
        }
        all = all && finished[row];
      }
      return all;
    };

    const Clock::time_point start = Clock::now();
    bool all_finished = take(step(Phase::Prefill, prefill_feeds(prompts), false, r.bytes.prefill, r));
    r.ttft_s = seconds_since(start);
    int64_t length = int64_t(prompts.front().size()), generated = 1;
    const Clock::time_point decode_start = Clock::now();
    while ((r.stop = stop_reason(generated, max_new_tokens, length, plan.capacity(), all_finished)) == StopReason::None) {
      const bool graphed = options.cuda_graph && !graph_refused;
      const StepFeeds f = decode_feeds(last, length, graphed ? choose_bucket(buckets, length) : 0);
      all_finished = take(step(Phase::Decode, f, graphed, r.bytes.decode, r));
      r.cuda_graph_used = r.cuda_graph_used || (graphed && !graph_refused);
      ++length;
      ++generated;
      ++r.decode_steps;
    }
    r.decode_s = seconds_since(decode_start);
    return r;
  }
};

LlmSession::LlmSession(const std::string& manifest_path, LlmOptions options) : LlmSession(load_manifest(manifest_path), std::move(options)) {}
LlmSession::LlmSession(Manifest manifest, LlmOptions options) : impl_(std::make_unique<Impl>(std::move(manifest), std::move(options))) {}
LlmSession::~LlmSession() = default;
LlmSession::LlmSession(LlmSession&&) noexcept = default;
LlmSession& LlmSession::operator=(LlmSession&&) noexcept = default;

GenerationResult LlmSession::generate_batch(const std::vector<std::vector<int64_t>>& prompts, int64_t max_new_tokens) {
  return impl_->generate(prompts, max_new_tokens);
}
GenerationResult LlmSession::generate(const std::vector<int64_t>& prompt, int64_t max_new_tokens) {
  return impl_->generate({prompt}, max_new_tokens);
}

const Manifest& LlmSession::manifest() const { return impl_->manifest; }
const LlmSpec& LlmSession::spec() const { return impl_->spec; }
const KvCachePlan& LlmSession::plan() const { return impl_->plan; }

}  // namespace orin_trt
