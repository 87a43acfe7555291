// The manifest's `llm` section: every key of the KV-cache contract checked, and every tensor it names
// checked against io.inputs / io.outputs, so an engine exported before the contract fails here by key.
#include <algorithm>

#include "manifest_reader.hpp"
#include "orin_trt/llm_spec.hpp"

namespace orin_trt {

std::string kv_tensor_name(const std::string& name_template, int layer, const std::string& kind) {
  std::string out = name_template;
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"{layer}", std::to_string(layer)}, {"{kind}", kind}}) {
    for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + value.size())) out.replace(at, key.size(), value);
  }
  return out;
}

namespace detail {
namespace {

const TensorInfo* find(const std::vector<TensorInfo>& list, const std::string& name) {
  auto it = std::find_if(list.begin(), list.end(), [&](const TensorInfo& t) { return t.name == name; });
  return it == list.end() ? nullptr : &*it;
}

// `name` is in io.<list_name> with `dtype`; otherwise the error names `key`, the key that implied it.
void require_tensor(const Reader& r, const std::vector<TensorInfo>& list, const std::string& list_name, const std::string& name,
                    const std::string& dtype, const std::string& key) {
  const TensorInfo* t = find(list, name);
  if (!t) r.fail(key, "'" + name + "' is not in io." + list_name);
  if (t->dtype != dtype) r.fail(key, "io." + list_name + " '" + name + "' is " + t->dtype + ", the contract needs " + dtype);
}

std::string name_template(const Reader& r, const json& obj, const std::string& key, const std::string& path) {
  const std::string s = r.str(obj, key, path);
  if (s.find("{layer}") == std::string::npos || s.find("{kind}") == std::string::npos) {
    r.fail(path, "'" + s + "' must contain {layer} and {kind}");
  }
  return s;
}

std::optional<int64_t> opt_id(const Reader& r, const json& obj, const std::string& key, const std::string& path) {
  if (!obj.contains(key) || obj.at(key).is_null()) return std::nullopt;
  return r.integer(obj, key, path, 0);
}

KvCacheSpec parse_kv_cache(const Reader& r, const json& kv) {
  KvCacheSpec s;
  if (kv.is_object() && !kv.contains("layout")) {
    r.fail("llm.kv_cache.layout", "missing (a manifest from before the device-resident KV-cache contract: re-export and rebuild the engine)");
  }
  s.layout = r.str(kv, "layout", "llm.kv_cache.layout");
  if (s.layout != kKvCacheLayout) {
    r.fail("llm.kv_cache.layout", "'" + s.layout + "' is not the sequence-major layout '" + kKvCacheLayout +
                                      "' (re-export the model for the device-resident cache)");
  }
  s.dtype = r.str(kv, "dtype", "llm.kv_cache.dtype");
  if (s.dtype != "float16" && s.dtype != "float32") r.fail("llm.kv_cache.dtype", "expected float16 or float32, got " + s.dtype);
  s.layers = int(r.integer(kv, "layers", "llm.kv_cache.layers", 1));
  s.kv_heads = int(r.integer(kv, "kv_heads", "llm.kv_cache.kv_heads", 1));
  s.head_dim = int(r.integer(kv, "head_dim", "llm.kv_cache.head_dim", 1));
  s.max_context = r.integer(kv, "max_context", "llm.kv_cache.max_context", 2);
  s.max_batch = int(r.integer(kv, "max_batch", "llm.kv_cache.max_batch", 1));
  s.past_input = name_template(r, kv, "past_input", "llm.kv_cache.past_input");
  s.new_output = name_template(r, kv, "new_output", "llm.kv_cache.new_output");
  const json& kinds = r.at(kv, "kinds", "llm.kv_cache.kinds");
  if (!kinds.is_array() || kinds.empty()) r.fail("llm.kv_cache.kinds", "expected a non-empty list of strings, got " + kinds.dump());
  for (const json& k : kinds) {
    if (!k.is_string() || k.get<std::string>().empty()) r.fail("llm.kv_cache.kinds", "expected a non-empty list of strings, got " + kinds.dump());
    if (std::count(s.kinds.begin(), s.kinds.end(), k.get<std::string>())) r.fail("llm.kv_cache.kinds", "'" + k.get<std::string>() + "' twice");
    s.kinds.push_back(k.get<std::string>());
  }
  return s;
}

}  // namespace

LlmSpec parse_llm_section(const Reader& r, const json& llm, const Manifest& m) {
  LlmSpec s;
  s.kv_cache = parse_kv_cache(r, r.at(llm, "kv_cache", "llm.kv_cache"));
  const json& logits = r.at(llm, "logits", "llm.logits");
  s.logits.output = r.str(logits, "output", "llm.logits.output");
  s.logits.positions_input = r.str(logits, "positions_input", "llm.logits.positions_input");
  s.logits.dtype = r.str(logits, "dtype", "llm.logits.dtype");
  if (s.logits.dtype != "float32") r.fail("llm.logits.dtype", "expected float32, got " + s.logits.dtype);
  s.logits.vocab = r.integer(logits, "vocab", "llm.logits.vocab", 1);

  const json& phases = r.at(llm, "phases", "llm.phases");
  s.prefill_profile = int(r.integer(phases, "prefill", "llm.phases.prefill", 0));
  s.decode_profile = int(r.integer(phases, "decode", "llm.phases.decode", 0));
  if (s.prefill_profile == s.decode_profile) r.fail("llm.phases", "prefill and decode name the same profile " + std::to_string(s.decode_profile));
  for (const auto& [phase, index] : {std::pair<const char*, int>{"prefill", s.prefill_profile}, {"decode", s.decode_profile}}) {
    if (!m.profiles.empty() && size_t(index) >= m.profiles.size()) {
      r.fail(std::string("llm.phases.") + phase, "profile " + std::to_string(index) + " does not exist (" +
                                                     std::to_string(m.profiles.size()) + " in profiles)");
    }
  }
  s.max_prompt = r.integer(llm, "max_prompt", "llm.max_prompt", 1);
  if (s.max_prompt > s.kv_cache.max_context) {
    r.fail("llm.max_prompt", std::to_string(s.max_prompt) + " exceeds llm.kv_cache.max_context " + std::to_string(s.kv_cache.max_context));
  }
  s.bos_id = opt_id(r, llm, "bos_id", "llm.bos_id");
  s.eos_id = opt_id(r, llm, "eos_id", "llm.eos_id");
  for (const auto& [key, id] : {std::pair<const char*, std::optional<int64_t>>{"llm.bos_id", s.bos_id}, {"llm.eos_id", s.eos_id}}) {
    if (id && *id >= s.logits.vocab) {
      r.fail(key, std::to_string(*id) + " is outside the vocabulary (llm.logits.vocab " + std::to_string(s.logits.vocab) + ")");
    }
  }

  const KvCacheSpec& kv = s.kv_cache;
  for (int layer = 0; layer < kv.layers; ++layer) {
    for (const std::string& kind : kv.kinds) {
      require_tensor(r, m.inputs, "inputs", kv_tensor_name(kv.past_input, layer, kind), kv.dtype, "llm.kv_cache.past_input");
      require_tensor(r, m.outputs, "outputs", kv_tensor_name(kv.new_output, layer, kind), kv.dtype, "llm.kv_cache.new_output");
    }
  }
  require_tensor(r, m.outputs, "outputs", s.logits.output, "float32", "llm.logits.output");
  require_tensor(r, m.inputs, "inputs", s.logits.positions_input, "int64", "llm.logits.positions_input");
  for (const std::string* name : {&s.input_ids, &s.attention_mask, &s.position_ids}) {
    require_tensor(r, m.inputs, "inputs", *name, "int64", "llm (engine input " + *name + ")");
  }
  return s;
}

}  // namespace detail
}  // namespace orin_trt
