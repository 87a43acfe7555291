#include "orin_trt/classification.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace orin_trt {

std::vector<ClassScore> topk(const float* logits, size_t num_classes, size_t k) {
  if (num_classes == 0) return {};
  // Softmax with the maximum subtracted (no overflow on large logits), summed in double.
  const float top = *std::max_element(logits, logits + num_classes);
  std::vector<double> e(num_classes);
  double sum = 0;
  for (size_t i = 0; i < num_classes; ++i) sum += e[i] = std::exp(double(logits[i]) - double(top));
  std::vector<size_t> order(num_classes);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  order.resize(std::min(k, num_classes));
  std::vector<ClassScore> out;
  for (size_t i : order) out.push_back({int(i), float(e[i] / sum), logits[i]});
  return out;
}

}  // namespace orin_trt
