// llm_generate: token ids -> greedy generation on an LLM engine of the device-resident KV-cache contract
// (orin_trt::LlmSession) -> the new ids on stdout, one line, as the input is written; tokens/s, time to
// first token and bytes copied per token on stderr (and --json). The Python side tokenizes:
//   orin-trt generate --print-ids ...   or any tokenizer writing space-separated ids.
// --plan prints the KV-cache plan and the first steps' inputs without running (needs no TensorRT).
#include <cstdio>
#include <numeric>
#include <sys/stat.h>

#include "common/sample_util.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/json_text.hpp"
#include "orin_trt/kv_cache_plan.hpp"
#include "orin_trt/llm_step.hpp"
#include "orin_trt/manifest.hpp"
#ifdef ORIN_TRT_HAVE_RUNTIME
#include "orin_trt/llm_session.hpp"
#endif

static const char* kUsage =
    "usage: llm_generate <engine_dir | model.engine.json> (--ids \"1 45 23\" | --ids-file prompt_ids.txt)\n"
    "                    [--max-new-tokens 32] [--cuda-graph] [--buckets \"16 32 64\"] [--force-staging]\n"
    "                    [--json result.json|-] [--plan]";

namespace {

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The manifest beside the engine: <dir>/model.engine.json (or <dir>/manifest.json), or the file itself.
std::string manifest_path(const std::string& arg) {
  if (!is_dir(arg)) return arg;
  for (const char* name : {"model.engine.json", "manifest.json"}) {
    const std::string p = arg + "/" + name;
    struct stat st {};
    if (stat(p.c_str(), &st) == 0) return p;
  }
  throw orin_trt::Error(arg + ": no model.engine.json (the engine's manifest) in this folder");
}

std::string ids_text(const std::vector<int64_t>& ids, const char* sep = " ") {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? sep : "") + std::to_string(ids[i]);
  return s;
}

int64_t single_int(const std::string& text, const std::string& option) {
  const std::vector<int64_t> v = orin_trt::parse_ids(text, option);
  if (v.size() != 1 || v[0] < 1) throw orin_trt::Error(option + ": expected one integer >= 1, got '" + text + "'");
  return v[0];
}

// Which decode positions are written in place: position p is when p * row_bytes is a multiple of 256.
std::string in_place_rule(size_t row_bytes) {
  const size_t period = orin_trt::kTensorAlignment / std::gcd(row_bytes, orin_trt::kTensorAlignment);
  return period == 1 ? "every position in place"
                     : "in place where position % " + std::to_string(period) + " == 0, else staging + one copy";
}

void print_plan(const orin_trt::Manifest& m, const orin_trt::KvCachePlan& plan, const std::vector<int64_t>& buckets,
                const std::vector<int64_t>& prompt) {
  const orin_trt::LlmSpec& s = *m.llm;
  const orin_trt::StepFeeds pre = orin_trt::prefill_feeds({prompt});
  // Placeholder tokens: the real ones come from the logits. The first decode step also moves
  // logit_positions; the second is every later step's cost.
  const orin_trt::StepFeeds dec = orin_trt::decode_feeds({1}, int64_t(prompt.size()));
  orin_trt::FeedMirrors mirrors;
  const size_t pre_h2d = mirrors.update(pre).bytes();
  mirrors.update(dec);
  const size_t dec_h2d = mirrors.update(orin_trt::decode_feeds({2}, int64_t(prompt.size()) + 1)).bytes();
  std::printf("model: %s (%s)\n", m.model.c_str(), m.precision.c_str());
  std::printf("kv cache: %zu buffers of [%lld, %d, %d, %d] %s, %zu bytes each, %zu bytes on the device with staging\n",
              plan.tensors().size(), (long long)plan.capacity(), plan.batch(), s.kv_cache.kv_heads, s.kv_cache.head_dim,
              s.kv_cache.dtype.c_str(), plan.buffer_bytes(), plan.device_bytes());
  std::printf("row bytes: %zu (%s)\n", plan.row_bytes(), in_place_rule(plan.row_bytes()).c_str());
  std::printf("profiles: prefill %d, decode %d; max_prompt %lld\n", s.prefill_profile, s.decode_profile, (long long)s.max_prompt);
  std::printf("graph buckets: %s\n", ids_text(buckets).c_str());
  std::printf("prefill input_ids: %s\n", ids_text(pre.input_ids).c_str());
  std::printf("prefill position_ids: %s\n", ids_text(pre.position_ids).c_str());
  std::printf("prefill logit_positions: %s\n", ids_text(pre.logit_positions).c_str());
  std::printf("decode 1 position_ids: %s, attention_mask %s\n", ids_text(dec.position_ids).c_str(),
              orin_trt::shape_to_string(dec.mask_shape()).c_str());
  std::printf("bytes: prefill h2d %zu, decode h2d per token %zu, d2h per token %zu\n", pre_h2d, dec_h2d,
              size_t(plan.batch()) * size_t(s.logits.vocab) * sizeof(float));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2 || std::string(argv[1]).rfind("--", 0) == 0) {
      if (argc >= 2 && (std::string(argv[1]) == "--help")) {
        std::printf("%s\n", kUsage);
        return 0;
      }
      throw orin_trt::Error(std::string("missing <engine_dir>\n") + kUsage);
    }
    const samples::Args args(argc - 1, argv + 1, kUsage, {"cuda-graph", "force-staging", "plan"});
    const orin_trt::Manifest m = orin_trt::load_manifest(manifest_path(argv[1]));
    if (!m.llm) throw orin_trt::Error(m.source + ": llm: missing (not an LLM engine of the device-resident KV-cache contract)");
    if (!args.get("ids").empty() == !args.get("ids-file").empty()) throw orin_trt::Error(std::string("give --ids or --ids-file\n") + kUsage);
    const std::vector<int64_t> prompt = args.get("ids").empty() ? orin_trt::read_ids_file(args.get("ids-file"))
                                                                : orin_trt::parse_ids(args.get("ids"), "--ids");
    orin_trt::check_prompts(*m.llm, {prompt}, 1);
    const int64_t max_new = single_int(args.get("max-new-tokens", "32"), "--max-new-tokens");
    const std::vector<int64_t> buckets = orin_trt::normalize_buckets(
        args.get("buckets").empty() ? orin_trt::default_buckets(m.llm->kv_cache.max_context) : orin_trt::parse_ids(args.get("buckets"), "--buckets"),
        m.llm->kv_cache.max_context);
    if (args.flag("plan")) {
      print_plan(m, orin_trt::KvCachePlan(*m.llm, 1), buckets, prompt);
      return 0;
    }
#ifdef ORIN_TRT_HAVE_RUNTIME
    orin_trt::LlmOptions options;
    options.cuda_graph = args.flag("cuda-graph");
    options.buckets = buckets;
    options.force_staging = args.flag("force-staging");
    orin_trt::LlmSession session(m, options);
    const orin_trt::GenerationResult r = session.generate(prompt, max_new);
    std::printf("%s\n", ids_text(r.new_ids[0]).c_str());
    std::fprintf(stderr,
                 "%zu new tokens (stop: %s); TTFT %.2f ms; decode %.1f tokens/s; bytes per token: h2d %.0f, d2h %.0f "
                 "(prefill h2d %llu, d2h %llu); cache writes in place %lld, staged %lld; CUDA graph: %s\n",
                 r.new_ids[0].size(), orin_trt::stop_reason_name(r.stop), 1e3 * r.ttft_s, r.decode_tokens_per_s(),
                 r.bytes.h2d_per_token(), r.bytes.d2h_per_token(), (unsigned long long)r.bytes.prefill.h2d,
                 (unsigned long long)r.bytes.prefill.d2h, (long long)r.in_place_writes, (long long)r.staged_writes,
                 r.cuda_graph_used ? "yes" : "no");
    if (!args.get("json").empty()) {
      char numbers[512];
      std::snprintf(numbers, sizeof numbers,
                    "\"ttft_s\": %.9g, \"decode_s\": %.9g, \"decode_steps\": %lld, \"tokens_per_s\": %.9g, "
                    "\"bytes_h2d_per_token\": %.9g, \"bytes_d2h_per_token\": %.9g, \"bytes_prefill_h2d\": %llu, "
                    "\"bytes_prefill_d2h\": %llu, \"bytes_d2d\": %llu, \"cuda_graph\": %s",
                    r.ttft_s, r.decode_s, (long long)r.decode_steps, r.decode_tokens_per_s(), r.bytes.h2d_per_token(),
                    r.bytes.d2h_per_token(), (unsigned long long)r.bytes.prefill.h2d, (unsigned long long)r.bytes.prefill.d2h,
                    (unsigned long long)(r.bytes.prefill.d2d + r.bytes.decode.d2d), r.cuda_graph_used ? "true" : "false");
      samples::write_text(args.get("json"), "{\"model\": " + orin_trt::json_quote(m.model) + ", \"prompt_ids\": [" +
                                                ids_text(prompt, ", ") + "], \"new_ids\": [" + ids_text(r.new_ids[0], ", ") +
                                                "], \"stop\": \"" + orin_trt::stop_reason_name(r.stop) + "\", " + numbers + "}\n");
    }
    return 0;
#else
    (void)max_new;
    throw orin_trt::Error("built without TensorRT: rebuild where NvInfer.h and CUDA exist (the JetPack container); "
                          "--plan prints the KV-cache plan and the first steps' inputs without it");
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llm_generate: %s\n", e.what());
    return 2;
  }
}
