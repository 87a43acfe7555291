// The DeepStream YOLO parser (deepstream/nvdsinfer_orin_yolo.cpp): per-class thresholds (>=, as nvinfer
// asks), classes beyond numClassesConfigured dropped, boxes clamped to the network input, and no NMS
// (nvinfer clusters afterwards, so overlapping boxes both come out).
#include <nvdsinfer_custom_impl.h>

#include "check.hpp"

extern "C" bool NvDsInferParseOrinYolo(std::vector<NvDsInferLayerInfo> const&, NvDsInferNetworkInfo const&,
                                       NvDsInferParseDetectionParams const&, std::vector<NvDsInferObjectDetectionInfo>&);

namespace {

constexpr int kClasses = 5, kAnchors = 6;

// [4 + classes, anchors]: anchor a gets box (cx, cy, w, h) and `score` for class `cls`, 0.01 elsewhere.
std::vector<float> output() {
  std::vector<float> out((4 + kClasses) * kAnchors, 0.01f);
  auto set = [&](int a, float cx, float cy, float w, float h, int cls, float score) {
    const float box[4] = {cx, cy, w, h};
    for (int r = 0; r < 4; ++r) out[r * kAnchors + a] = box[r];
    out[(4 + cls) * kAnchors + a] = score;
  };
  set(0, 10, 10, 4, 4, 0, 0.9f);   // kept
  set(1, 10, 10, 4, 4, 0, 0.8f);   // duplicate: kept, nvinfer's NMS removes it
  set(2, 30, 30, 4, 4, 1, 0.3f);   // below class 1's threshold 0.5: dropped
  set(3, 40, 20, 4, 4, 4, 0.9f);   // class 4 >= numClassesConfigured 4: dropped
  set(4, 62, 20, 10, 8, 2, 0.6f);  // crosses the right edge: clamped to 64
  set(5, 20, 40, 6, 6, 3, 0.4f);   // exactly class 3's threshold: kept (>=)
  return out;
}

NvDsInferLayerInfo layer(std::vector<float>& data, unsigned int rows) {
  NvDsInferLayerInfo info{};
  info.dataType = FLOAT;
  info.inferDims.numDims = 2;
  info.inferDims.d[0] = rows;
  info.inferDims.d[1] = kAnchors;
  info.inferDims.numElements = rows * kAnchors;
  info.layerName = "output0";
  info.buffer = data.data();
  return info;
}

NvDsInferParseDetectionParams params() {
  NvDsInferParseDetectionParams p{};
  p.numClassesConfigured = 4;
  p.perClassPreclusterThreshold = {0.25f, 0.5f, 0.25f, 0.4f};
  return p;
}

}  // namespace

TEST(decodes_filters_and_clamps) {
  std::vector<float> data = output();
  const NvDsInferNetworkInfo net{64, 48, 3};
  std::vector<NvDsInferObjectDetectionInfo> objects;
  CHECK(NvDsInferParseOrinYolo({layer(data, 4 + kClasses)}, net, params(), objects));
  CHECK_EQ(objects.size(), size_t(4));
  if (objects.size() != 4) return;
  CHECK_EQ(objects[0].classId, 0u);
  CHECK_NEAR(objects[0].detectionConfidence, 0.9, 1e-7);
  CHECK_NEAR(objects[0].left, 8, 1e-6);
  CHECK_NEAR(objects[0].width, 4, 1e-6);
  CHECK_EQ(objects[1].classId, 0u);  // the duplicate
  CHECK_EQ(objects[2].classId, 2u);
  CHECK_NEAR(objects[2].left, 57, 1e-6);
  CHECK_NEAR(objects[2].left + objects[2].width, 64, 1e-6);  // clamped to the network width
  CHECK_EQ(objects[3].classId, 3u);
}

TEST(refuses_other_layouts) {
  std::vector<float> data = output();
  std::vector<NvDsInferObjectDetectionInfo> objects;
  const NvDsInferNetworkInfo net{64, 48, 3};
  CHECK(!NvDsInferParseOrinYolo({layer(data, 4)}, net, params(), objects));  // no class rows
  NvDsInferLayerInfo half = layer(data, 4 + kClasses);
  half.dataType = HALF;
  CHECK(!NvDsInferParseOrinYolo({half}, net, params(), objects));
  CHECK(!NvDsInferParseOrinYolo({}, net, params(), objects));
}

TEST_MAIN()
