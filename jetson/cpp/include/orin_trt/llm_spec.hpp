// The manifest's `llm` section (the device-resident KV-cache contract, docs/manifest.md): what a decode
// session needs to allocate the cache once and feed each step. Parsed with the rest of the manifest, so a
// manifest that does not follow the contract fails at load time, naming the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace orin_trt {

// The sequence-major cache layout of the contract: the first `past` positions of a buffer of capacity
// [max_context, batch, kv_heads, head_dim] are one contiguous prefix.
inline constexpr const char* kKvCacheLayout = "position,batch,kv_heads,head_dim";

struct KvCacheSpec {
  std::string layout = kKvCacheLayout;
  std::string dtype;  // float16 (fp16 / int8 / int4 engines) or float32 (an fp32 engine)
  int layers = 0, kv_heads = 0, head_dim = 0;
  int64_t max_context = 0;  // positions one cache buffer holds
  int max_batch = 0;
  std::string past_input;  // "past_key_values.{layer}.{kind}"
  std::string new_output;  // "new_key_values.{layer}.{kind}"
  std::vector<std::string> kinds;  // ["key", "value"]
};

struct LogitsSpec {
  std::string output = "logits";
  std::string positions_input = "logit_positions";
  std::string dtype = "float32";
  int64_t vocab = 0;
};

struct LlmSpec {
  KvCacheSpec kv_cache;
  LogitsSpec logits;
  int prefill_profile = 0, decode_profile = 1;  // `phases`: optimization profile index of each phase
  int64_t max_prompt = 0;
  std::optional<int64_t> bos_id, eos_id;
  // The token inputs every step feeds (not in the manifest section: fixed by the contract's engine I/O).
  std::string input_ids = "input_ids", attention_mask = "attention_mask", position_ids = "position_ids";
};

// `template` with every {layer} and {kind} replaced: "past_key_values.{layer}.{kind}" -> "past_key_values.0.key".
std::string kv_tensor_name(const std::string& name_template, int layer, const std::string& kind);

}  // namespace orin_trt
