// Writing JSON text without a JSON library in the interface: a string as a quoted, escaped JSON string.
#pragma once

#include <string>

namespace orin_trt {

std::string json_quote(const std::string& s);

}  // namespace orin_trt
