#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>

#include <cstring>

#include "image_io.hpp"
#include "orin_trt/error.hpp"

namespace samples {

orin_trt::Image read_rgb(const std::string& path) {
  int w = 0, h = 0, channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &channels, 3);
  if (!data) throw orin_trt::Error(path + ": cannot be decoded as an image (" + stbi_failure_reason() + ")");
  orin_trt::Image img(w, h, 3);
  std::memcpy(img.data.data(), data, img.data.size());
  stbi_image_free(data);
  return img;
}

void write_image(const std::string& path, const orin_trt::Image& rgb) {
  const bool jpg = path.size() > 4 && (path.substr(path.size() - 4) == ".jpg" || path.substr(path.size() - 5) == ".jpeg");
  const int ok = jpg ? stbi_write_jpg(path.c_str(), rgb.width, rgb.height, rgb.channels, rgb.data.data(), 90)
                     : stbi_write_png(path.c_str(), rgb.width, rgb.height, rgb.channels, rgb.data.data(),
                                      rgb.width * rgb.channels);
  if (!ok) throw orin_trt::Error(path + ": cannot write the image");
}

}  // namespace samples
