// LlmSession on a real engine of the KV-cache contract (JetPack container or any TensorRT + GPU host):
//   ORIN_TRT_TEST_LLM_MANIFEST=engines/llama/fp16/model.engine.json \
//   [ORIN_TRT_TEST_LLM_PROMPT="1 450 4996"] [ORIN_TRT_TEST_LLM_EXPECTED="<greedy ids from ONNX Runtime>"] \
//   ctest --test-dir jetson/build -R llm_session
// Skipped (exit 77) when no manifest is given. The three cache paths (in place, forced staging, CUDA
// graphs over padded buckets) must generate the same ids, and the bytes copied per token must be exactly
// the token inputs and the logits, whatever the context length.
#include <cstdlib>

#include "check.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/llm_session.hpp"

using namespace orin_trt;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::vector<int64_t> prompt() {
  const std::string p = env("ORIN_TRT_TEST_LLM_PROMPT");
  return p.empty() ? std::vector<int64_t>{1} : parse_ids(p, "ORIN_TRT_TEST_LLM_PROMPT");
}

GenerationResult run(LlmOptions options, int64_t max_new) {
  LlmSession s(env("ORIN_TRT_TEST_LLM_MANIFEST"), options);
  return s.generate(prompt(), max_new);
}

}  // namespace

TEST(greedy_ids_equal_across_cache_paths) {
  const int64_t max_new = 40;  // crosses the 16 and 32 buckets
  const GenerationResult plain = run({}, max_new);
  LlmOptions staged_options;
  staged_options.force_staging = true;
  const GenerationResult staged = run(staged_options, max_new);
  LlmOptions graph_options;
  graph_options.cuda_graph = true;
  const GenerationResult graphed = run(graph_options, max_new);
  std::printf("  %zu new ids, stop %s, TTFT %.2f ms, %.1f tok/s plain, %.1f tok/s graphs (%s)\n", plain.new_ids[0].size(),
              stop_reason_name(plain.stop), 1e3 * plain.ttft_s, plain.decode_tokens_per_s(), graphed.decode_tokens_per_s(),
              graphed.cuda_graph_used ? "captured" : "refused");
  CHECK(plain.new_ids == staged.new_ids);
  CHECK(plain.new_ids == graphed.new_ids);
  CHECK(staged.staged_writes > 0);
  const std::string expected = env("ORIN_TRT_TEST_LLM_EXPECTED");
  if (!expected.empty()) CHECK(plain.new_ids[0] == parse_ids(expected, "ORIN_TRT_TEST_LLM_EXPECTED"));
}

TEST(bytes_per_token_are_the_token_inputs_and_the_logits) {
  const GenerationResult r = run({}, 64);
  LlmSession s(env("ORIN_TRT_TEST_LLM_MANIFEST"));
  const uint64_t vocab_bytes = uint64_t(s.spec().logits.vocab) * 4;
  const uint64_t n = uint64_t(prompt().size());
  CHECK_EQ(r.bytes.prefill.h2d, 8 * (3 * n + 1));  // ids, mask, positions, one logit position
  CHECK_EQ(r.bytes.prefill.d2h, vocab_bytes);
  if (r.decode_steps > 0) {
    // Per step: token id, position, one mask element; logit_positions once (prefill's n-1 -> 0).
    CHECK_EQ(r.bytes.decode.h2d, uint64_t(24 * r.decode_steps + 8));
    CHECK_EQ(r.bytes.decode.d2h, vocab_bytes * uint64_t(r.decode_steps));
  }
}

TEST(refusals_name_the_problem) {
  LlmSession s(env("ORIN_TRT_TEST_LLM_MANIFEST"));
  CHECK_THROWS(s.generate(std::vector<int64_t>(size_t(s.spec().max_prompt) + 1, 1), 4), Error, "exceed llm.max_prompt");
  CHECK_THROWS(s.generate({s.spec().logits.vocab}, 4), Error, "outside the vocabulary");
  CHECK_THROWS(s.generate({1}, 0), Error, "max_new_tokens must be at least 1");
}

int main(int argc, char** argv) {
  if (env("ORIN_TRT_TEST_LLM_MANIFEST").empty()) {
    std::printf("skipped: set ORIN_TRT_TEST_LLM_MANIFEST to an LLM engine manifest built for this system\n");
    return 77;
  }
  return check::run_all(argc, argv);
}
