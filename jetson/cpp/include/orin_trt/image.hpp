// Image preprocessing exactly as pipeline/processing/image.py does it, driven by the manifest's `preprocess`.
// Resizing reproduces OpenCV's INTER_LINEAR for uint8 (half-pixel centers, 11-bit fixed-point weights);
// it agrees with cv2.resize within 1 LSB per pixel (checked by the golden vectors).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "orin_trt/manifest.hpp"

namespace orin_trt {

// Interleaved 8-bit image, rows top to bottom, RGB order unless a caller says otherwise.
struct Image {
  int width = 0, height = 0, channels = 3;
  std::vector<uint8_t> data;  // height * width * channels

  Image() = default;
  Image(int w, int h, int c, uint8_t fill = 0) : width(w), height(h), channels(c), data(size_t(w) * h * c, fill) {}
  uint8_t* pixel(int x, int y) { return data.data() + (size_t(y) * width + x) * channels; }
  const uint8_t* pixel(int x, int y) const { return data.data() + (size_t(y) * width + x) * channels; }
};

// How an image was fitted into the input, to map boxes back to the original.
struct Letterbox {
  float ratio = 1.f;
  int pad_left = 0, pad_top = 0;
  int src_width = 0, src_height = 0;
};

Image resize_bilinear(const Image& src, int width, int height);
Image letterbox(const Image& src, int height, int width, int pad_value, Letterbox* info);
Image resize_crop(const Image& src, int height, int width, int resize_shorter);

// HWC uint8 -> float32 tensor with a batch axis of 1, in the spec's channel order and layout.
std::vector<float> normalize(const Image& img, const PreprocessSpec& spec);

struct Preprocessed {
  std::vector<float> tensor;
  std::vector<int64_t> shape;       // [1, 3, H, W] (NCHW) or [1, H, W, 3]
  std::optional<Letterbox> letterbox;
};

Preprocessed preprocess_image(const Image& rgb, const PreprocessSpec& spec);

}  // namespace orin_trt
