// Checks a sample's JSON (yolo_detect --json / vit_classify --json, run offline on the golden image and
// the golden raw output) against the golden expectations: the whole path image file -> preprocessing ->
// decoding -> JSON agrees with Python's.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "check.hpp"

using nlohmann::json;

static std::string g_kind, g_file;

TEST(sample_output_matches_golden) {
  std::ifstream gin(std::string(ORIN_TRT_GOLDEN_DIR) + "/golden.json"), sin(g_file);
  CHECK(gin.good() && sin.good());
  const json golden = json::parse(gin), got = json::parse(sin);
  const double tol = golden["tolerance"]["box_abs"];
  if (g_kind == "yolo") {
    const json& expected = golden["yolo"]["detections"];
    const json& dets = got["detections"];
    CHECK_EQ(dets.size(), expected.size());
    for (size_t i = 0; i < std::min(dets.size(), expected.size()); ++i) {
      CHECK_EQ(dets[i]["class_id"].get<int>(), expected[i]["class_id"].get<int>());
      CHECK_EQ(dets[i]["label"].get<std::string>(), expected[i]["label"].get<std::string>());
      CHECK_NEAR(dets[i]["score"].get<double>(), expected[i]["score"].get<double>(), 1e-7);
      for (size_t k = 0; k < 4; ++k) CHECK_NEAR(dets[i]["box"][k].get<double>(), expected[i]["box_source"][k].get<double>(), tol);
    }
  } else {
    const json& expected = golden["vit"]["top5"];
    const json& top = got["top"];
    CHECK_EQ(top.size(), expected.size());
    for (size_t i = 0; i < std::min(top.size(), expected.size()); ++i) {
      CHECK_EQ(top[i]["class_id"].get<int>(), expected[i]["class_id"].get<int>());
      CHECK_EQ(top[i]["label"].get<std::string>(), expected[i]["label"].get<std::string>());
      CHECK_NEAR(top[i]["probability"].get<double>(), expected[i]["probability"].get<double>(), 1e-6);
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: check_sample_output yolo|vit output.json\n");
    return 2;
  }
  g_kind = argv[1];
  g_file = argv[2];
  return check::run_all(1, argv);
}
