// Reading and writing image files for the samples (stb_image, or OpenCV where that is what exists,
// as in JetPack). The library itself never touches files of pixels.
#pragma once

#include <string>

#include "orin_trt/image.hpp"

namespace samples {

orin_trt::Image read_rgb(const std::string& path);                 // any 8-bit image -> RGB
void write_image(const std::string& path, const orin_trt::Image& rgb);  // .png or .jpg by extension

}  // namespace samples
