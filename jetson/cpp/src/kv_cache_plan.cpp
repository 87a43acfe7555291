#include "orin_trt/kv_cache_plan.hpp"

#include <algorithm>

#include "orin_trt/error.hpp"
#include "orin_trt/manifest.hpp"

namespace orin_trt {

bool is_aligned(uintptr_t address, size_t alignment) { return address % alignment == 0; }

KvCachePlan::KvCachePlan(const LlmSpec& spec, int batch) : batch_(batch), capacity_(spec.kv_cache.max_context) {
  const KvCacheSpec& kv = spec.kv_cache;
  if (batch < 1 || batch > kv.max_batch) {
    throw Error("batch " + std::to_string(batch) + " is outside 1..llm.kv_cache.max_batch " + std::to_string(kv.max_batch));
  }
  element_bytes_ = dtype_size(kv.dtype);
  dims_ = {batch, kv.kv_heads, kv.head_dim};
  row_bytes_ = size_t(batch) * size_t(kv.kv_heads) * size_t(kv.head_dim) * element_bytes_;
  for (int layer = 0; layer < kv.layers; ++layer) {
    for (const std::string& kind : kv.kinds) {
      tensors_.push_back({layer, kind, kv_tensor_name(kv.past_input, layer, kind), kv_tensor_name(kv.new_output, layer, kind)});
    }
  }
}

std::vector<int64_t> KvCachePlan::past_shape(int64_t past) const {
  std::vector<int64_t> s{past};
  s.insert(s.end(), dims_.begin(), dims_.end());
  return s;
}

std::vector<int64_t> KvCachePlan::new_shape(int64_t seq) const { return past_shape(seq); }

KvWrite KvCachePlan::write(int64_t past, int64_t seq, uintptr_t buffer_address, bool staged) const {
  if (past < 0 || seq < 1 || past + seq > capacity_) {
    throw Error("positions [" + std::to_string(past) + ", " + std::to_string(past + seq) + ") do not fit the KV cache of " +
                std::to_string(capacity_) + " positions (llm.kv_cache.max_context)");
  }
  KvWrite w;
  w.offset = size_t(past) * row_bytes_;
  w.bytes = size_t(seq) * row_bytes_;
  w.in_place = !staged && is_aligned(buffer_address + w.offset);
  if (!w.in_place && seq > staging_rows()) {
    throw Error("a step of " + std::to_string(seq) + " positions at offset " + std::to_string(w.offset) +
                " cannot be written in place and exceeds the staging buffer (" + std::to_string(staging_rows()) + " position)");
  }
  return w;
}

std::vector<int64_t> default_buckets(int64_t max_context) {
  std::vector<int64_t> b;
  for (int64_t p = 16; p < max_context - 1; p *= 2) b.push_back(p);
  b.push_back(max_context - 1);
  return b;
}

std::vector<int64_t> normalize_buckets(std::vector<int64_t> buckets, int64_t max_context) {
  for (int64_t b : buckets) {
    if (b < 1 || b > max_context - 1) {
      throw Error("past-length bucket " + std::to_string(b) + " is outside 1.." + std::to_string(max_context - 1) +
                  " (the decode profile's past lengths)");
    }
  }
  buckets.push_back(max_context - 1);
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

int64_t choose_bucket(const std::vector<int64_t>& buckets, int64_t past) {
  auto it = std::lower_bound(buckets.begin(), buckets.end(), past);
  if (it == buckets.end()) {
    throw Error("past length " + std::to_string(past) + " exceeds the largest bucket " +
                (buckets.empty() ? std::string("(none)") : std::to_string(buckets.back())));
  }
  return *it;
}

}  // namespace orin_trt
