// Greedy generation on a TensorRT LLM engine of the device-resident KV-cache contract (docs/cpp.md):
// each layer's key and value cache is allocated once on the device at capacity
// [max_context, batch, kv_heads, head_dim]; prefill runs on the manifest's `prefill` profile and every
// decode step on the `decode` profile (one execution context each); the past inputs are bound to the
// cache prefix by address and the new keys/values written at their position (in place when the address
// meets TensorRT's 256-byte rule, else through a staging buffer and one device-to-device copy). Per step
// only the changed token inputs go in and the logits come out; the session counts those bytes.
// Token ids in and out: the Python side tokenizes. Needs TensorRT + CUDA (target orin_trt::runtime).
//
//   orin_trt::LlmSession session("engines/llama/fp16/model.engine.json");
//   orin_trt::GenerationResult r = session.generate({1, 450, 4996}, 32);
//   // r.new_ids[0], r.ttft_s, r.decode_tokens_per_s(), r.bytes.h2d_per_token()
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "orin_trt/kv_cache_plan.hpp"
#include "orin_trt/llm_step.hpp"
#include "orin_trt/manifest.hpp"

namespace orin_trt {

struct LlmOptions {
  int device = 0;
  int batch = 1;                  // rows per generate() (equal-length prompts), at most llm.kv_cache.max_batch
  bool cuda_graph = false;        // capture the decode step once per past-length bucket and replay it
  std::vector<int64_t> buckets;   // those buckets; empty: default_buckets(max_context)
  bool check_drift = true;        // refuse an engine built for another TensorRT / GPU / L4T
  bool force_staging = false;     // write every decode step through the staging buffer (tests that path)
};

struct GenerationResult {
  std::vector<std::vector<int64_t>> new_ids;  // per row; ends with eos when the row stopped there
  StopReason stop = StopReason::None;
  double ttft_s = 0;     // generate() to the first new token on the host: prefill, logits copy, argmax
  double decode_s = 0;   // every decode step, end to end
  int64_t decode_steps = 0;
  ByteCounts bytes;      // host<->device per phase and per token (device-to-device: the staging copies)
  int64_t in_place_writes = 0, staged_writes = 0;  // cache writes (each layer and kind, each step)
  bool cuda_graph_used = false;
  double decode_tokens_per_s() const { return decode_s > 0 ? double(decode_steps) / decode_s : 0.0; }  // per row
};

class LlmSession {
 public:
  explicit LlmSession(const std::string& manifest_path, LlmOptions options = {});
  LlmSession(Manifest manifest, LlmOptions options);
  ~LlmSession();
  LlmSession(LlmSession&&) noexcept;
  LlmSession& operator=(LlmSession&&) noexcept;
  LlmSession(const LlmSession&) = delete;
  LlmSession& operator=(const LlmSession&) = delete;

  // Prefill the prompt, then decode greedily until eos, max_new_tokens or a full cache.
  GenerationResult generate(const std::vector<int64_t>& prompt, int64_t max_new_tokens);
  // The same for LlmOptions::batch equal-length prompts; stops at eos once every row has reached it.
  GenerationResult generate_batch(const std::vector<std::vector<int64_t>>& prompts, int64_t max_new_tokens);

  const Manifest& manifest() const;
  const LlmSpec& spec() const;
  const KvCachePlan& plan() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orin_trt
