// Top-k of classification logits with softmax probabilities, as pipeline/processing/classification.py does it.
#pragma once

#include <cstddef>
#include <vector>

namespace orin_trt {

struct ClassScore {
  int class_id = 0;
  float probability = 0;  // softmax over all classes
  float logit = 0;
};

// Highest logits first; equal logits keep the lower class id first.
std::vector<ClassScore> topk(const float* logits, size_t num_classes, size_t k);

}  // namespace orin_trt
