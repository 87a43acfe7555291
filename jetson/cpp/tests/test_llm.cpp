// The TensorRT-free parts of LlmSession: the manifest's `llm` section (tests/fixtures/llm follows
// the KV-cache contract), the cache plan, the per-step feeds (hand-computed from the contract), the copies
// a step makes and their byte counts, argmax, the stop rule, prompt checks and token-id parsing.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "check.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/kv_cache_plan.hpp"
#include "orin_trt/llm_step.hpp"
#include "orin_trt/manifest.hpp"

using namespace orin_trt;
using nlohmann::json;
using V = std::vector<int64_t>;

namespace {

const std::string kFixture = std::string(ORIN_TRT_FIXTURES_DIR) + "/llm/model.engine.json";

json fixture_json() {
  std::ifstream in(kFixture);
  return json::parse(in);
}

Manifest parse(const json& j) { return parse_manifest(j.dump(), "engines/llama/fp16/model.engine.json"); }
LlmSpec spec(const json& j) { return *parse(j).llm; }

// The fixture with Llama-3-8B's cache geometry: 8 KV heads of 128 (row 2048 bytes in float16).
LlmSpec llama8b_spec() {
  json j = fixture_json();
  j["llm"]["kv_cache"]["kv_heads"] = 8;
  j["llm"]["kv_cache"]["head_dim"] = 128;
  j["llm"]["kv_cache"]["max_context"] = 2048;
  j["llm"]["max_prompt"] = 512;
  return spec(j);
}

}  // namespace

TEST(fixture_llm_section_parses) {
  const Manifest m = load_manifest(kFixture);
  CHECK(m.llm.has_value());
  const LlmSpec& s = *m.llm;
  CHECK_EQ(s.kv_cache.layout, std::string("position,batch,kv_heads,head_dim"));
  CHECK_EQ(s.kv_cache.dtype, std::string("float16"));
  CHECK_EQ(s.kv_cache.layers, 2);
  CHECK_EQ(s.kv_cache.kv_heads, 2);
  CHECK_EQ(s.kv_cache.head_dim, 32);
  CHECK_EQ(s.kv_cache.max_context, int64_t(256));
  CHECK_EQ(s.kv_cache.max_batch, 1);
  CHECK(s.kv_cache.kinds == (std::vector<std::string>{"key", "value"}));
  CHECK_EQ(s.logits.output, std::string("logits"));
  CHECK_EQ(s.logits.positions_input, std::string("logit_positions"));
  CHECK_EQ(s.logits.vocab, int64_t(512));
  CHECK_EQ(s.prefill_profile, 0);
  CHECK_EQ(s.decode_profile, 1);
  CHECK_EQ(s.max_prompt, int64_t(128));
  CHECK(s.bos_id == std::optional<int64_t>(1));
  CHECK(s.eos_id == std::optional<int64_t>(2));
  CHECK_EQ(m.preprocess_type, std::string("tokenizer"));
  // Image manifests have no llm section.
  CHECK(!load_manifest(std::string(ORIN_TRT_GOLDEN_DIR) + "/yolo_manifest.json").llm.has_value());
}

TEST(kv_tensor_names_from_the_templates) {
  CHECK_EQ(kv_tensor_name("past_key_values.{layer}.{kind}", 0, "key"), std::string("past_key_values.0.key"));
  CHECK_EQ(kv_tensor_name("new_key_values.{layer}.{kind}", 31, "value"), std::string("new_key_values.31.value"));
  CHECK_EQ(kv_tensor_name("l{layer}_{kind}_{layer}", 3, "k"), std::string("l3_k_3"));
}

TEST(bad_llm_sections_name_the_key) {
  const auto fails = [](const std::function<void(json&)>& edit, const std::string& needle) {
    json j = fixture_json();
    edit(j);
    CHECK_THROWS(parse(j), Error, needle);
  };
  // A manifest of the engine before the contract (present.<i>.*, FP32 cache, batch-major).
  fails([](json& j) { j["llm"] = {{"phases", {{"prefill", 0}, {"decode", 1}}}, {"max_batch", 4}, {"max_prompt", 128},
                                   {"max_context", 256}, {"kv_cache", {{"layers", 2}, {"kv_heads", 2}, {"head_dim", 16},
                                   {"dtype", "float32"}, {"bytes_per_token", 512}}}}; },
        "engines/llama/fp16/model.engine.json: llm.kv_cache.layout: missing (a manifest from before the device-resident "
        "KV-cache contract: re-export and rebuild the engine)");
  fails([](json& j) { j["llm"]["kv_cache"]["layout"] = "batch,kv_heads,position,head_dim"; },
        "llm.kv_cache.layout: 'batch,kv_heads,position,head_dim' is not the sequence-major layout");
  fails([](json& j) { j["llm"]["kv_cache"]["dtype"] = "int8"; }, "llm.kv_cache.dtype: expected float16 or float32, got int8");
  fails([](json& j) { j["llm"]["kv_cache"]["layers"] = 0; }, "llm.kv_cache.layers: expected an integer >= 1, got 0");
  fails([](json& j) { j["llm"]["kv_cache"]["head_dim"] = 32.0; }, "llm.kv_cache.head_dim: expected an integer, got 32.0");
  fails([](json& j) { j["llm"]["kv_cache"].erase("max_context"); }, "llm.kv_cache.max_context: missing");
  fails([](json& j) { j["llm"]["kv_cache"]["past_input"] = "past_key_values.{layer}"; },
        "llm.kv_cache.past_input: 'past_key_values.{layer}' must contain {layer} and {kind}");
  fails([](json& j) { j["llm"]["kv_cache"]["kinds"] = json::array(); }, "llm.kv_cache.kinds: expected a non-empty list");
  fails([](json& j) { j["llm"]["kv_cache"]["kinds"] = {"key", "key"}; }, "llm.kv_cache.kinds: 'key' twice");
  fails([](json& j) { j["llm"]["logits"]["dtype"] = "float16"; }, "llm.logits.dtype: expected float32, got float16");
  fails([](json& j) { j["llm"]["logits"]["vocab"] = "512"; }, "llm.logits.vocab: expected an integer, got \"512\"");
  fails([](json& j) { j["llm"]["phases"]["decode"] = 0; }, "llm.phases: prefill and decode name the same profile 0");
  fails([](json& j) { j["llm"]["phases"]["decode"] = 2; }, "llm.phases.decode: profile 2 does not exist (2 in profiles)");
  fails([](json& j) { j["llm"]["max_prompt"] = 257; }, "llm.max_prompt: 257 exceeds llm.kv_cache.max_context 256");
  fails([](json& j) { j["llm"]["eos_id"] = 512; }, "llm.eos_id: 512 is outside the vocabulary (llm.logits.vocab 512)");
  fails([](json& j) { j["llm"]["bos_id"] = -1; }, "llm.bos_id: expected an integer >= 0, got -1");
  fails([](json& j) { j["llm"]["kv_cache"]["layers"] = 3; },
        "llm.kv_cache.past_input: 'past_key_values.2.key' is not in io.inputs");
  fails([](json& j) { j["io"]["inputs"][7]["dtype"] = "float32"; },
        "llm.kv_cache.past_input: io.inputs 'past_key_values.1.value' is float32, the contract needs float16");
  fails([](json& j) { j["io"]["outputs"][1]["name"] = "present.0.key"; },
        "llm.kv_cache.new_output: 'new_key_values.0.key' is not in io.outputs");
  fails([](json& j) { j["llm"]["logits"]["output"] = "lm_logits"; }, "llm.logits.output: 'lm_logits' is not in io.outputs");
  fails([](json& j) { j["io"]["inputs"][1]["name"] = "mask"; }, "llm (engine input attention_mask): 'attention_mask' is not in io.inputs");
  fails([](json& j) { j["io"]["inputs"][3]["dtype"] = "int32"; },
        "llm.logits.positions_input: io.inputs 'logit_positions' is int32, the contract needs int64");
  fails([](json& j) { j["llm"] = "yes"; }, "llm: expected an object");
}

TEST(keys_beyond_the_contract_are_kept_out_of_the_way) {
  json j = fixture_json();  // the keys the manifest had before the contract may stay beside it
  j["llm"]["max_context"] = 256;
  j["llm"]["max_batch"] = 1;
  j["llm"]["kv_cache"]["bytes_per_token"] = 512;
  j["llm"]["kv_cache"]["for"] = {{"batch", 1}, {"context", 256}};
  CHECK_EQ(spec(j).kv_cache.max_context, int64_t(256));
}

TEST(optional_token_ids) {
  json j = fixture_json();
  j["llm"]["eos_id"] = nullptr;
  j["llm"].erase("bos_id");
  const LlmSpec s = spec(j);
  CHECK(!s.eos_id && !s.bos_id);
}

TEST(cache_plan_sizes_and_names) {
  const KvCachePlan plan(spec(fixture_json()), 1);
  CHECK_EQ(plan.element_bytes(), size_t(2));
  CHECK_EQ(plan.row_bytes(), size_t(1 * 2 * 32 * 2));  // 128
  CHECK_EQ(plan.buffer_bytes(), size_t(256 * 128));
  CHECK_EQ(plan.staging_bytes(), size_t(128));
  CHECK_EQ(plan.tensors().size(), size_t(4));
  CHECK_EQ(plan.device_bytes(), size_t(4 * (256 * 128 + 128)));
  CHECK_EQ(plan.tensors()[1].past_input, std::string("past_key_values.0.value"));
  CHECK_EQ(plan.tensors()[2].new_output, std::string("new_key_values.1.key"));
  CHECK_EQ(plan.tensors()[3].layer, 1);
  CHECK(plan.past_shape(0) == (V{0, 1, 2, 32}));
  CHECK(plan.past_shape(37) == (V{37, 1, 2, 32}));
  CHECK(plan.new_shape(1) == (V{1, 1, 2, 32}));

  json j = fixture_json();
  j["llm"]["kv_cache"]["dtype"] = "float32";
  j["llm"]["kv_cache"]["max_batch"] = 4;
  for (json& t : j["io"]["inputs"]) if (t["name"].get<std::string>().rfind("past", 0) == 0) t["dtype"] = "float32";
  for (json& t : j["io"]["outputs"]) if (t["name"].get<std::string>().rfind("new", 0) == 0) t["dtype"] = "float32";
  const KvCachePlan fp32(spec(j), 2);
  CHECK_EQ(fp32.row_bytes(), size_t(2 * 2 * 32 * 4));  // 512
  CHECK(fp32.past_shape(5) == (V{5, 2, 2, 32}));
  CHECK_THROWS(KvCachePlan(spec(j), 5), Error, "batch 5 is outside 1..llm.kv_cache.max_batch 4");
  CHECK_THROWS(KvCachePlan(spec(fixture_json()), 0), Error, "batch 0 is outside");
  // Llama-3-8B: 32 layers would be 64 buffers of 2048 * 2048 bytes; here the fixture's 2 layers.
  const KvCachePlan big(llama8b_spec(), 1);
  CHECK_EQ(big.row_bytes(), size_t(2048));
  CHECK_EQ(big.buffer_bytes(), size_t(2048) * 2048);
}

TEST(new_keys_in_place_when_aligned_else_staged) {
  const KvCachePlan plan(spec(fixture_json()), 1);  // row 128 bytes: every other position is 256-aligned
  const uintptr_t base = 0x7f0000000000;             // cudaMalloc addresses are 256-aligned
  CHECK(is_aligned(base) && !is_aligned(base + 128) && is_aligned(base + 256));

  KvWrite w = plan.write(0, 7, base);  // prefill: offset 0
  CHECK(w.in_place);
  CHECK_EQ(w.offset, size_t(0));
  CHECK_EQ(w.bytes, size_t(7 * 128));
  w = plan.write(7, 1, base);  // decode at an odd position: 896 % 256 = 128
  CHECK(!w.in_place);
  CHECK_EQ(w.offset, size_t(896));
  CHECK_EQ(w.bytes, size_t(128));
  w = plan.write(8, 1, base);  // 1024 % 256 = 0
  CHECK(w.in_place);
  CHECK_EQ(w.offset, size_t(1024));
  CHECK(!plan.write(8, 1, base, /*staged=*/true).in_place);  // a CUDA-graph step always stages
  CHECK(plan.write(255, 1, base).in_place == false);           // the last position
  CHECK_THROWS(plan.write(256, 1, base), Error, "positions [256, 257) do not fit the KV cache of 256 positions");
  CHECK_THROWS(plan.write(250, 7, base), Error, "do not fit the KV cache");
  CHECK_THROWS(plan.write(0, 7, base + 128), Error, "cannot be written in place and exceeds the staging buffer");

  const KvCachePlan big(llama8b_spec(), 1);  // row 2048: every position is in place
  int in_place = 0;
  for (int64_t p = 0; p < 2048; ++p) in_place += big.write(p, 1, base).in_place;
  CHECK_EQ(in_place, 2048);
}

TEST(past_length_buckets) {
  CHECK(default_buckets(256) == (V{16, 32, 64, 128, 255}));
  CHECK(default_buckets(2048) == (V{16, 32, 64, 128, 256, 512, 1024, 2047}));
  CHECK(default_buckets(16) == (V{15}));
  CHECK(default_buckets(17) == (V{16}));
  CHECK(normalize_buckets({64, 8, 8}, 256) == (V{8, 64, 255}));
  CHECK(normalize_buckets({255}, 256) == (V{255}));
  CHECK_THROWS(normalize_buckets({0}, 256), Error, "past-length bucket 0 is outside 1..255");
  CHECK_THROWS(normalize_buckets({256}, 256), Error, "past-length bucket 256 is outside 1..255");
  const V b = default_buckets(256);
  CHECK_EQ(choose_bucket(b, 1), int64_t(16));
  CHECK_EQ(choose_bucket(b, 16), int64_t(16));
  CHECK_EQ(choose_bucket(b, 17), int64_t(32));
  CHECK_EQ(choose_bucket(b, 200), int64_t(255));
  CHECK_EQ(choose_bucket(b, 255), int64_t(255));
  CHECK_THROWS(choose_bucket(b, 256), Error, "past length 256 exceeds the largest bucket 255");
}

// The contract: prefill [[0..n-1]] positions and logit_positions [[n-1]]; decode [[past]] and [[0]].
TEST(prefill_feeds_for_a_prompt) {
  const StepFeeds f = prefill_feeds({{1, 45, 23}});
  CHECK(f.input_ids == (V{1, 45, 23}));
  CHECK(f.attention_mask == (V{1, 1, 1}));
  CHECK(f.position_ids == (V{0, 1, 2}));
  CHECK(f.logit_positions == (V{2}));
  CHECK(f.ids_shape() == (V{1, 3}));
  CHECK(f.mask_shape() == (V{1, 3}));
  CHECK(f.positions_shape() == (V{1, 3}));
  CHECK(f.logit_positions_shape() == (V{1, 1}));
  CHECK_EQ(f.past, int64_t(0));
  CHECK_EQ(f.true_past, int64_t(0));

  const StepFeeds b = prefill_feeds({{1, 45, 23}, {1, 7, 9}});
  CHECK(b.input_ids == (V{1, 45, 23, 1, 7, 9}));
  CHECK(b.position_ids == (V{0, 1, 2, 0, 1, 2}));
  CHECK(b.logit_positions == (V{2, 2}));
  CHECK(b.mask_shape() == (V{2, 3}));
  CHECK_THROWS(prefill_feeds({{1, 2}, {3}}), Error, "equal lengths");
  CHECK_THROWS(prefill_feeds({{}}), Error, "no prompt tokens");
}

TEST(decode_feeds_exact_and_padded) {
  const StepFeeds f = decode_feeds({311}, 3);  // after the prompt "1 45 23"
  CHECK(f.input_ids == (V{311}));
  CHECK(f.attention_mask == (V{1, 1, 1, 1}));
  CHECK(f.mask_shape() == (V{1, 4}));
  CHECK(f.position_ids == (V{3}));
  CHECK(f.logit_positions == (V{0}));
  CHECK_EQ(f.past, int64_t(3));
  CHECK_EQ(f.true_past, int64_t(3));

  const StepFeeds p = decode_feeds({311}, 3, 16);  // padded to the bucket of 16 past positions
  CHECK_EQ(p.past, int64_t(16));
  CHECK_EQ(p.true_past, int64_t(3));
  CHECK(p.mask_shape() == (V{1, 17}));
  CHECK(p.attention_mask == (V{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  CHECK(p.position_ids == (V{3}));  // the real position, not the padded one

  const StepFeeds b = decode_feeds({5, 6}, 2, 4);
  CHECK(b.attention_mask == (V{1, 1, 0, 0, 1, 1, 1, 0, 0, 1}));
  CHECK(b.position_ids == (V{2, 2}));
  CHECK(b.logit_positions == (V{0, 0}));
  CHECK_THROWS(decode_feeds({5}, 8, 4), Error, "bucket 4 is shorter than the past 8");
  CHECK_THROWS(decode_feeds({5}, 0), Error, "needs a prefilled past");
}

TEST(device_mirror_copies_only_what_changed) {
  DeviceMirror m;
  CHECK(m.update({1, 1, 1}) == (std::vector<Run>{{0, 3}}));
  CHECK(m.update({1, 1, 1, 1}) == (std::vector<Run>{{3, 1}}));
  CHECK(m.update({1, 1, 1, 1}).empty());
  CHECK(m.update({1, 0, 1, 0, 5}) == (std::vector<Run>{{1, 1}, {3, 2}}));
  // A shorter upload leaves the tail on the device: the mirror keeps it.
  CHECK(m.update({1, 0}).empty());
  CHECK(m.update({1, 0, 1, 0, 5, 6}) == (std::vector<Run>{{5, 1}}));
  m.clear();
  CHECK(m.update({1, 0}) == (std::vector<Run>{{0, 2}}));
  CHECK_EQ(run_bytes({{0, 2}, {7, 3}}, 8), size_t(40));
}

// Bytes per token stay constant as the context grows: token id + position + one mask element per row,
// logit_positions once; a padded bucket costs its mask once, then one element per step.
TEST(host_to_device_bytes_per_step_do_not_grow_with_the_context) {
  FeedMirrors mirrors;
  const StepUploads pre = mirrors.update(prefill_feeds({{1, 45, 23}}));
  CHECK_EQ(pre.bytes(), size_t(8 * (3 + 3 + 3 + 1)));
  CHECK_EQ(mirrors.update(decode_feeds({9}, 3)).bytes(), size_t(8 * (1 + 1 + 1 + 1)));  // logit_positions 2 -> 0
  for (int64_t past = 4; past < 200; ++past) {
    const StepUploads u = mirrors.update(decode_feeds({9 + past}, past));
    CHECK_EQ(u.bytes(), size_t(24));
    CHECK(u.attention_mask == (std::vector<Run>{{size_t(past), 1}}));
  }
  FeedMirrors graphed;
  graphed.update(prefill_feeds({{1, 45, 23}}));
  const V buckets = default_buckets(256);
  const StepUploads first = graphed.update(decode_feeds({9}, 3, choose_bucket(buckets, 3)));
  CHECK_EQ(first.bytes(), size_t(8 * (1 + 1 + 14 + 1)));  // mask: 13 zeros + the new token's 1 beyond the prompt's 3
  for (int64_t past = 4; past <= 16; ++past) {
    CHECK_EQ(graphed.update(decode_feeds({100 + past}, past, choose_bucket(buckets, past))).bytes(), size_t(24));
  }
  const StepUploads next_bucket = graphed.update(decode_feeds({7}, 17, 32));
  CHECK(next_bucket.bytes() > size_t(24));  // the new bucket's mask layout, once
  CHECK_EQ(graphed.update(decode_feeds({8}, 18, 32)).bytes(), size_t(24));
}

TEST(byte_counts_per_token) {
  ByteCounts c;
  CHECK_EQ(c.h2d_per_token(), 0.0);
  c.decode.h2d = 24 * 10;
  c.decode.d2h = 2048 * 10;
  c.decode.steps = 10;
  CHECK_EQ(c.h2d_per_token(), 24.0);
  CHECK_EQ(c.d2h_per_token(), 2048.0);
}

TEST(argmax_first_maximum) {
  const float a[] = {0.5f, 2.0f, -1.0f, 2.0f};
  CHECK_EQ(argmax(a, 4), int64_t(1));
  const float neg[] = {-3.0f, -2.5f, -7.0f};
  CHECK_EQ(argmax(neg, 3), int64_t(1));
  const float nan[] = {1.0f, std::nanf(""), 5.0f};
  CHECK_EQ(argmax(nan, 3), int64_t(1));
  CHECK_EQ(argmax(a, 1), int64_t(0));
  CHECK_THROWS(argmax(a, 0), Error, "empty vocabulary");
}

TEST(stop_rule) {
  CHECK(stop_reason(1, 8, 4, 256, false) == StopReason::None);
  CHECK(stop_reason(1, 8, 4, 256, true) == StopReason::Eos);
  CHECK(stop_reason(8, 8, 11, 256, false) == StopReason::MaxNewTokens);
  CHECK(stop_reason(8, 8, 11, 256, true) == StopReason::Eos);
  CHECK(stop_reason(3, 100, 255, 256, false) == StopReason::None);  // decode at past 255 writes the last position
  CHECK(stop_reason(3, 100, 256, 256, false) == StopReason::ContextFull);
  CHECK_EQ(std::string(stop_reason_name(StopReason::ContextFull)), std::string("context_full"));
  CHECK_EQ(std::string(stop_reason_name(StopReason::Eos)), std::string("eos"));
}

TEST(prompt_checks) {
  const LlmSpec s = spec(fixture_json());
  check_prompts(s, {{1, 45, 23}}, 1);
  check_prompts(s, {V(128, 7)}, 1);
  CHECK_THROWS(check_prompts(s, {V(129, 7)}, 1), Error, "prompt: 129 tokens exceed llm.max_prompt 128");
  CHECK_THROWS(check_prompts(s, {{1, 512}}, 1), Error, "prompt: token id 512 is outside the vocabulary 0..511");
  CHECK_THROWS(check_prompts(s, {{-1}}, 1), Error, "token id -1 is outside");
  CHECK_THROWS(check_prompts(s, {{}}, 1), Error, "prompt: no token ids");
  CHECK_THROWS(check_prompts(s, {{1}, {2}}, 1), Error, "2 prompt(s) for a session of batch 1");
  CHECK_THROWS(check_prompts(s, {{1}, {2, 3}}, 2), Error, "prompt 1: the prompts of one batch must have equal lengths");
}

TEST(token_ids_parse) {
  CHECK(parse_ids("1 45 23", "--ids") == (V{1, 45, 23}));
  CHECK(parse_ids("\t1\n 2  \n", "--ids") == (V{1, 2}));
  CHECK_THROWS(parse_ids("1,2", "--ids"), Error, "--ids: '1,2' is not a token id (expected space-separated non-negative integers)");
  CHECK_THROWS(parse_ids("1 -3", "--ids"), Error, "'-3' is not a token id");
  CHECK_THROWS(parse_ids("7x", "--ids"), Error, "'7x' is not a token id");
  CHECK_THROWS(parse_ids("99999999999999999999", "--ids"), Error, "is not a token id");
  CHECK_THROWS(parse_ids("  \n", "prompt.txt"), Error, "prompt.txt: no token ids");
  const std::string path = "test_llm_ids.txt";
  {
    std::ofstream out(path);
    out << "1 45 23\n";
  }
  CHECK(read_ids_file(path) == (V{1, 45, 23}));
  std::remove(path.c_str());
  CHECK_THROWS(read_ids_file("/nonexistent/ids.txt"), Error, "/nonexistent/ids.txt: cannot open the token-ids file");
}

TEST_MAIN()
