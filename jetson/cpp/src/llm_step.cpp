#include "orin_trt/llm_step.hpp"

#include <cctype>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "orin_trt/error.hpp"

namespace orin_trt {

StepFeeds prefill_feeds(const std::vector<std::vector<int64_t>>& prompts) {
  if (prompts.empty() || prompts.front().empty()) throw Error("prefill: no prompt tokens");
  StepFeeds f;
  f.batch = int64_t(prompts.size());
  f.seq = int64_t(prompts.front().size());
  for (const std::vector<int64_t>& row : prompts) {
    if (int64_t(row.size()) != f.seq) throw Error("prefill: prompts of one batch must have equal lengths");
    f.input_ids.insert(f.input_ids.end(), row.begin(), row.end());
    for (int64_t i = 0; i < f.seq; ++i) f.position_ids.push_back(i);
    f.logit_positions.push_back(f.seq - 1);
  }
  f.attention_mask.assign(size_t(f.batch * f.seq), 1);
  return f;
}

StepFeeds decode_feeds(const std::vector<int64_t>& last_tokens, int64_t past, int64_t bucket) {
  if (last_tokens.empty()) throw Error("decode: no tokens");
  if (past < 1) throw Error("decode: needs a prefilled past, got " + std::to_string(past));
  if (bucket != 0 && bucket < past) {
    throw Error("decode: bucket " + std::to_string(bucket) + " is shorter than the past " + std::to_string(past));
  }
  StepFeeds f;
  f.batch = int64_t(last_tokens.size());
  f.seq = 1;
  f.true_past = past;
  f.past = bucket ? bucket : past;
  f.input_ids = last_tokens;
  f.position_ids.assign(size_t(f.batch), past);
  f.logit_positions.assign(size_t(f.batch), 0);
  for (int64_t r = 0; r < f.batch; ++r) {
    for (int64_t j = 0; j < f.past; ++j) f.attention_mask.push_back(j < past ? 1 : 0);
    f.attention_mask.push_back(1);  // the new token
  }
  return f;
}

std::vector<Run> DeviceMirror::update(const std::vector<int64_t>& next) {
  std::vector<Run> runs;
  for (size_t i = 0; i < next.size(); ++i) {
    if (i < held_.size() && held_[i] == next[i]) continue;
    if (!runs.empty() && runs.back().first + runs.back().count == i) {
      ++runs.back().count;
    } else {
      runs.push_back({i, 1});
    }
  }
  if (held_.size() < next.size()) held_.resize(next.size());
  std::copy(next.begin(), next.end(), held_.begin());
  return runs;
}

size_t run_bytes(const std::vector<Run>& runs, size_t element_bytes) {
  size_t n = 0;
  for (const Run& r : runs) n += r.count;
  return n * element_bytes;
}

size_t StepUploads::bytes() const {
  return run_bytes(input_ids, 8) + run_bytes(attention_mask, 8) + run_bytes(position_ids, 8) + run_bytes(logit_positions, 8);
}

StepUploads FeedMirrors::update(const StepFeeds& f) {
  return {ids_.update(f.input_ids), mask_.update(f.attention_mask), positions_.update(f.position_ids),
          logit_positions_.update(f.logit_positions)};
}

void FeedMirrors::clear() {
  for (DeviceMirror* m : {&ids_, &mask_, &positions_, &logit_positions_}) m->clear();
}

int64_t argmax(const float* logits, size_t vocab) {
  if (vocab == 0) throw Error("argmax over an empty vocabulary");
  size_t best = 0;
  for (size_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i])) return int64_t(i);
    if (logits[i] > logits[best]) best = i;
  }
  return int64_t(best);
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Eos: return "eos";
    case StopReason::MaxNewTokens: return "max_new_tokens";
    case StopReason::ContextFull: return "context_full";
    default: return "none";
  }
}

StopReason stop_reason(int64_t generated, int64_t max_new_tokens, int64_t length, int64_t max_context, bool all_finished) {
  if (all_finished) return StopReason::Eos;
  if (generated >= max_new_tokens) return StopReason::MaxNewTokens;
  // The next decode step reads `length` past positions and writes position `length`.
  if (length >= max_context) return StopReason::ContextFull;
  return StopReason::None;
}

void check_prompts(const LlmSpec& spec, const std::vector<std::vector<int64_t>>& prompts, int batch) {
  if (int64_t(prompts.size()) != batch) {
    throw Error(std::to_string(prompts.size()) + " prompt(s) for a session of batch " + std::to_string(batch));
  }
  for (size_t r = 0; r < prompts.size(); ++r) {
    const std::vector<int64_t>& p = prompts[r];
    const std::string row = prompts.size() > 1 ? "prompt " + std::to_string(r) + ": " : "prompt: ";
    if (p.empty()) throw Error(row + "no token ids");
    if (p.size() != prompts.front().size()) throw Error(row + "the prompts of one batch must have equal lengths");
    if (int64_t(p.size()) > spec.max_prompt) {
      throw Error(row + std::to_string(p.size()) + " tokens exceed llm.max_prompt " + std::to_string(spec.max_prompt) +
                  " (the prefill profile's longest sequence)");
    }
    for (int64_t id : p) {
      if (id < 0 || id >= spec.logits.vocab) {
        throw Error(row + "token id " + std::to_string(id) + " is outside the vocabulary 0.." + std::to_string(spec.logits.vocab - 1));
      }
    }
  }
}

std::vector<int64_t> parse_ids(const std::string& text, const std::string& source) {
  std::vector<int64_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = -1;
    const bool digits = std::isdigit(static_cast<unsigned char>(word[0])) != 0;
    try {
      if (digits) v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (!digits || used != word.size()) {
      throw Error(source + ": '" + word + "' is not a token id (expected space-separated non-negative integers)");
    }
    ids.push_back(int64_t(v));
  }
  if (ids.empty()) throw Error(source + ": no token ids");
  return ids;
}

std::vector<int64_t> read_ids_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the token-ids file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_ids(text.str(), path);
}

}  // namespace orin_trt
