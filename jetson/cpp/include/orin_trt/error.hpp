// One exception type for everything the library refuses: the message names the file, key or tensor at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace orin_trt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The engine was built for another system (TensorRT, compute capability, L4T, DLA core).
class DriftError : public Error {
 public:
  using Error::Error;
};

}  // namespace orin_trt
