// .npy files (numpy's format 1.x/2.x, little-endian, C order): how tensors travel between the C++ side
// and the Python pipeline, e.g. a raw engine output saved on the Orin and decoded by Python, or the
// golden vectors. Only the dtypes the manifest uses are read; anything else is refused by name.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace orin_trt {

struct NpyArray {
  std::string dtype;  // numpy descr: "<f4", "|u1", "<i8", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  size_t count() const;
  template <typename T>
  std::vector<T> as() const {
    std::vector<T> out(bytes.size() / sizeof(T));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
  }
};

NpyArray read_npy(const std::string& path);
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace orin_trt
