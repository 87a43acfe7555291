// What the host computes for each step of an LlmSession, without TensorRT: the token inputs of a prefill
// or decode step (input_ids, attention_mask, position_ids, logit_positions, as the contract defines them),
// the parts of an input that changed since the device last received it (the only bytes copied), greedy
// argmax, the stop rule, the byte counts, and reading token ids (the Python side tokenizes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "orin_trt/llm_spec.hpp"

namespace orin_trt {

// The host-fed inputs of one step, row-major int64.
struct StepFeeds {
  int64_t batch = 0, seq = 0;
  int64_t past = 0;       // positions bound as the past input (the bucket when the step is padded)
  int64_t true_past = 0;  // positions really in the cache; the new keys/values go there
  std::vector<int64_t> input_ids, attention_mask, position_ids, logit_positions;

  std::vector<int64_t> ids_shape() const { return {batch, seq}; }
  std::vector<int64_t> mask_shape() const { return {batch, past + seq}; }
  std::vector<int64_t> positions_shape() const { return {batch, seq}; }
  std::vector<int64_t> logit_positions_shape() const { return {batch, 1}; }
};

// Prefill of equal-length prompts (one row each): mask all ones, positions 0..n-1, logits at n-1.
StepFeeds prefill_feeds(const std::vector<std::vector<int64_t>>& prompts);
// One decode step after `past` cached positions: the last token of each row at position `past`, logits at
// 0. `bucket` 0 binds exactly `past` positions; a bucket >= past pads the past to `bucket` positions whose
// mask is 0 (the CUDA-graph step: one shape per bucket), keeping 1 for the real past and the new token.
StepFeeds decode_feeds(const std::vector<int64_t>& last_tokens, int64_t past, int64_t bucket = 0);

// A contiguous range of elements to copy.
struct Run {
  size_t first = 0, count = 0;
  bool operator==(const Run& o) const { return first == o.first && count == o.count; }
};

// Mirrors what one device input buffer holds, so that a step copies only the elements that differ from
// it (a decode step's mask gains one element per row; its logit_positions do not change at all).
class DeviceMirror {
 public:
  // The runs of `next` that differ from the buffer (or lie beyond what it ever received); the mirror then
  // holds `next` in its prefix, as the buffer will after the copies.
  std::vector<Run> update(const std::vector<int64_t>& next);
  void clear() { held_.clear(); }  // after the device buffer was written by something else

 private:
  std::vector<int64_t> held_;
};

size_t run_bytes(const std::vector<Run>& runs, size_t element_bytes);

// The copies one step makes into the four token-input buffers, and their mirrors across steps.
struct StepUploads {
  std::vector<Run> input_ids, attention_mask, position_ids, logit_positions;
  size_t bytes() const;  // int64 elements
};
class FeedMirrors {
 public:
  StepUploads update(const StepFeeds& f);
  void clear();

 private:
  DeviceMirror ids_, mask_, positions_, logit_positions_;
};

// Index of the largest logit, the first on ties; a NaN wins, as in numpy.argmax.
int64_t argmax(const float* logits, size_t vocab);

enum class StopReason { None, Eos, MaxNewTokens, ContextFull };
const char* stop_reason_name(StopReason r);  // "eos" | "max_new_tokens" | "context_full" | "none"
// After `generated` new tokens with `length` positions in the sequence (prompt + generated): stop at eos
// (every row finished), at max_new_tokens, or when the next decode step has no position left in the cache.
StopReason stop_reason(int64_t generated, int64_t max_new_tokens, int64_t length, int64_t max_context, bool all_finished);

// Prompts a session accepts: `batch` rows, equal length 1..max_prompt, ids inside the vocabulary.
void check_prompts(const LlmSpec& spec, const std::vector<std::vector<int64_t>>& prompts, int batch);

// Bytes copied between host and device, by phase (device-to-device: staging copies, for information).
struct PhaseBytes {
  uint64_t h2d = 0, d2h = 0, d2d = 0;
  int64_t steps = 0;
};
struct ByteCounts {
  PhaseBytes prefill, decode;
  // Per decode step, i.e. per generated token of each row (the contract's bytes_h2d/d2h_per_token).
  double h2d_per_token() const { return decode.steps ? double(decode.h2d) / double(decode.steps) : 0.0; }
  double d2h_per_token() const { return decode.steps ? double(decode.d2h) / double(decode.steps) : 0.0; }
};

// Token ids: whitespace-separated non-negative integers (`source` names the argument or file in errors).
std::vector<int64_t> parse_ids(const std::string& text, const std::string& source);
std::vector<int64_t> read_ids_file(const std::string& path);

}  // namespace orin_trt
