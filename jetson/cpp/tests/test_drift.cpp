// The drift guard's pure comparison, and the parsers of the running system's version strings.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "check.hpp"
#include "orin_trt/drift.hpp"
#include "orin_trt/error.hpp"

using namespace orin_trt;
using nlohmann::json;

namespace {

// The drift rule's cases, shared with pytest (tests/contracts/drift_cases.json).
json shared_cases() {
  std::ifstream in(std::string(ORIN_TRT_CONTRACTS_DIR) + "/drift_cases.json");
  return json::parse(in);
}

template <typename T>
std::optional<T> opt(const json& j, const char* key) {
  return j.contains(key) && !j.at(key).is_null() ? std::optional<T>(j.at(key).get<T>()) : std::nullopt;
}

SystemSpec spec_of(const json& j) {
  return {opt<std::string>(j, "trt_version"), opt<std::string>(j, "compute_capability"), opt<std::string>(j, "l4t"),
          opt<int>(j, "dla_core")};
}

RunningSystem running_of(const json& j) {
  return {opt<std::string>(j, "trt_version"), opt<std::string>(j, "compute_capability"), opt<std::string>(j, "l4t"),
          opt<int>(j, "dla_cores")};
}

SystemSpec orin_build() { return {std::string("10.3.0.30"), std::string("8.7"), std::string("36.4.0"), std::nullopt}; }

RunningSystem orin_now() { return {std::string("10.3.0"), std::string("8.7"), std::string("36.4.0"), 2}; }

}  // namespace

TEST(same_system_passes) {
  CHECK(drift_differences(orin_build(), orin_now()).empty());
  check_drift(orin_build(), orin_now(), "model.engine");
  // An unbound manifest (TensorRT-RTX build: no compute capability, no L4T) checks only what it records.
  SystemSpec rtx{std::string("1.7.1.116"), std::nullopt, std::nullopt, std::nullopt};
  RunningSystem desktop{std::string("1.7.1"), std::string("8.9"), std::nullopt, std::nullopt};
  CHECK(drift_differences(rtx, desktop).empty());
}

TEST(each_difference_names_both_sides) {
  RunningSystem other = orin_now();
  other.trt_version = "8.6.2";
  other.l4t = "35.5.0";
  other.compute_capability = "7.2";
  const auto diffs = drift_differences(orin_build(), other);
  CHECK_EQ(diffs.size(), size_t(3));
  CHECK_EQ(diffs.at(0), std::string("TensorRT: engine 10.3.0.30, this system 8.6.2"));
  CHECK_EQ(diffs.at(1), std::string("compute capability: engine 8.7, this system 7.2"));
  CHECK_EQ(diffs.at(2), std::string("L4T: engine 36.4.0, this system 35.5.0"));
  CHECK_THROWS(check_drift(orin_build(), other, "engines/yolo/int8/model.engine"), DriftError,
               "cannot load engines/yolo/int8/model.engine: built for a different system (TensorRT: engine 10.3.0.30, "
               "this system 8.6.2; compute capability");
}

TEST(trt_versions_compare_on_shared_components) {
  RunningSystem now = orin_now();
  now.trt_version = "10.3.1";
  CHECK_EQ(drift_differences(orin_build(), now).size(), size_t(1));
  now.trt_version = "10";  // too little to agree on
  CHECK_EQ(drift_differences(orin_build(), now).size(), size_t(1));
  now.trt_version = std::nullopt;
  CHECK_EQ(drift_differences(orin_build(), now).at(0), std::string("TensorRT: engine 10.3.0.30, this system unknown"));
}

TEST(not_a_jetson_and_dla) {
  RunningSystem desktop = orin_now();
  desktop.l4t = std::nullopt;
  CHECK_EQ(drift_differences(orin_build(), desktop).at(0),
           std::string("L4T: engine 36.4.0, this system none (not a Jetson: no /etc/nv_tegra_release)"));
  SystemSpec dla = orin_build();
  dla.dla_core = 1;
  RunningSystem nano = orin_now();
  nano.dla_cores = 0;  // Orin Nano: no DLA
  CHECK_EQ(drift_differences(dla, nano).at(0), std::string("DLA core: engine 1, this system has 0 DLA core(s)"));
  CHECK(drift_differences(dla, orin_now()).empty());
}

TEST(trt_versions_agree_as_the_shared_table_says) {
  const json table = shared_cases();  // kept alive: a range-for over a temporary's member dangles
  CHECK(!table.at("trt_versions").empty());
  for (const auto& c : table.at("trt_versions")) {
    SystemSpec engine{c.at("engine").get<std::string>(), std::nullopt, std::nullopt, std::nullopt};
    RunningSystem now{c.at("system").get<std::string>(), std::nullopt, std::nullopt, std::nullopt};
    CHECK_EQ(drift_differences(engine, now).empty(), c.at("same").get<bool>());
  }
}

TEST(drift_cases_of_the_shared_table) {
  const json table = shared_cases();
  CHECK(!table.at("cases").empty());
  for (const auto& c : table.at("cases")) {
    std::vector<std::string> labels;
    for (const auto& d : drift_differences(spec_of(c.at("engine")), running_of(c.at("system")))) {
      labels.push_back(d.substr(0, d.find(':')));
    }
    auto expected = c.at("differs").get<std::vector<std::string>>();
    std::sort(labels.begin(), labels.end());
    std::sort(expected.begin(), expected.end());
    CHECK(labels == expected);
  }
}

TEST(version_parsers) {
  CHECK_EQ(trt_version_from_int(100300), std::string("10.3.0"));
  CHECK_EQ(trt_version_from_int(101302), std::string("10.13.2"));
  CHECK_EQ(trt_version_from_int(8602), std::string("8.6.2"));
  CHECK_EQ(trt_version_from_int(10701), std::string("1.7.1"));  // TensorRT-RTX
  CHECK(parse_l4t_release("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64") ==
        std::optional<std::string>("36.4.0"));
  CHECK(parse_l4t_release("# R35 (release), REVISION: 5.0, GCID: 35550185") == std::optional<std::string>("35.5.0"));
  CHECK(!parse_l4t_release("garbage").has_value());
}

TEST_MAIN()
