// The device KV cache of an LlmSession, planned without TensorRT: one buffer per (layer, kind) of capacity
// [max_context, batch, kv_heads, head_dim] (sequence-major, so the first `past` positions are a contiguous
// prefix bound as the past input by address), where each step's new keys/values land (in place at
// `past * row_bytes` when that address meets TensorRT's alignment rule, else a staging buffer and one
// device-to-device copy), and the past-length buckets of the CUDA-graph decode step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "orin_trt/llm_spec.hpp"

namespace orin_trt {

// IExecutionContext::setTensorAddress: "The pointer must have at least 256-byte alignment"
// (NvInferRuntime.h, the same sentence in TensorRT 10.3, 10.16 and 11.1).
inline constexpr size_t kTensorAlignment = 256;

bool is_aligned(uintptr_t address, size_t alignment = kTensorAlignment);

struct KvTensor {
  int layer = 0;
  std::string kind;        // "key" | "value"
  std::string past_input;  // past_key_values.<layer>.<kind>
  std::string new_output;  // new_key_values.<layer>.<kind>
};

// Where one step's `seq` new positions go in one cache buffer.
struct KvWrite {
  size_t offset = 0;      // bytes from the buffer's start: past * row_bytes
  size_t bytes = 0;       // seq * row_bytes
  bool in_place = false;  // output bound at buffer + offset; else to staging, then one copy to buffer + offset
};

class KvCachePlan {
 public:
  KvCachePlan(const LlmSpec& spec, int batch);

  int batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }  // positions: llm.kv_cache.max_context
  size_t element_bytes() const { return element_bytes_; }
  size_t row_bytes() const { return row_bytes_; }  // one position: batch * kv_heads * head_dim * element
  size_t buffer_bytes() const { return size_t(capacity_) * row_bytes_; }
  // Staging holds one decode step (a prefill writes at offset 0, which is always aligned).
  int64_t staging_rows() const { return 1; }
  size_t staging_bytes() const { return size_t(staging_rows()) * row_bytes_; }
  size_t device_bytes() const { return tensors_.size() * (buffer_bytes() + staging_bytes()); }
  const std::vector<KvTensor>& tensors() const { return tensors_; }

  std::vector<int64_t> past_shape(int64_t past) const;  // [past, batch, kv_heads, head_dim]
  std::vector<int64_t> new_shape(int64_t seq) const;    // [seq, batch, kv_heads, head_dim]

  // The write of positions [past, past + seq) into the buffer at `buffer_address`; `staged` forces the
  // staging path (a CUDA graph bakes the output address in, so a graphed step always stages). Throws when
  // the positions exceed the capacity or the staging buffer.
  KvWrite write(int64_t past, int64_t seq, uintptr_t buffer_address, bool staged = false) const;

 private:
  int batch_;
  int64_t capacity_;
  size_t element_bytes_, row_bytes_;
  std::vector<int64_t> dims_;  // batch, kv_heads, head_dim
  std::vector<KvTensor> tensors_;
};

// Past-length buckets of the CUDA-graph decode step: powers of two from 16 below max_context - 1, then
// max_context - 1 (the decode profile's largest past), so every decode step has a bucket.
std::vector<int64_t> default_buckets(int64_t max_context);
// Sorted and unique, each in [1, max_context - 1]; max_context - 1 is added when missing. Throws naming a bad one.
std::vector<int64_t> normalize_buckets(std::vector<int64_t> buckets, int64_t max_context);
// The smallest bucket >= past (the padded past length the step runs at).
int64_t choose_bucket(const std::vector<int64_t>& buckets, int64_t past);

}  // namespace orin_trt
