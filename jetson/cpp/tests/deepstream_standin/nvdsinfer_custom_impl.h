// STAND-IN, not DeepStream's header: the few declarations of the DeepStream SDK's nvdsinfer.h and
// nvdsinfer_custom_impl.h that the YOLO parser uses, with the SDK's names and field types, so the
// parser's logic is unit-tested where the SDK is absent. Where the SDK is installed, CMake compiles the
// parser and this test against the real header instead.
#pragma once

#include <vector>

typedef enum { FLOAT = 0, HALF = 1, INT8 = 2, INT32 = 3 } NvDsInferDataType;

#define NVDSINFER_MAX_DIMS 8
typedef struct {
  unsigned int numDims;
  unsigned int d[NVDSINFER_MAX_DIMS];
  unsigned int numElements;
} NvDsInferDims;

typedef struct {
  NvDsInferDataType dataType;
  union {
    NvDsInferDims inferDims;
    NvDsInferDims dims;
  };
  int bindingIndex;
  const char* layerName;
  void* buffer;
  int isInput;
} NvDsInferLayerInfo;

typedef struct {
  unsigned int width;
  unsigned int height;
  unsigned int channels;
} NvDsInferNetworkInfo;

typedef struct {
  unsigned int classId;
  float left;
  float top;
  float width;
  float height;
  float detectionConfidence;
} NvDsInferObjectDetectionInfo;

typedef struct {
  unsigned int numClassesConfigured;
  std::vector<float> perClassPreclusterThreshold;
  std::vector<float> perClassPostclusterThreshold;
} NvDsInferParseDetectionParams;

typedef bool (*NvDsInferParseCustomFunc)(std::vector<NvDsInferLayerInfo> const& outputLayersInfo,
                                         NvDsInferNetworkInfo const& networkInfo,
                                         NvDsInferParseDetectionParams const& detectionParams,
                                         std::vector<NvDsInferObjectDetectionInfo>& objectList);

#define CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(customParseFunc)                                      \
  static void checkFunc_##customParseFunc(NvDsInferParseCustomFunc func = customParseFunc) {   \
    (void)func;                                                                                 \
  }
