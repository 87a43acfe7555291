#include "orin_trt/image.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "orin_trt/error.hpp"

namespace orin_trt {
namespace {

constexpr int kCoefBits = 11;  // OpenCV's INTER_RESIZE_COEF_BITS
constexpr int kCoefScale = 1 << kCoefBits;

// One axis of OpenCV's INTER_LINEAR table: source index and 11-bit weights per destination index.
// The float arithmetic (float fraction, round-to-nearest of each weight) is OpenCV's, to stay bit-exact.
struct Taps {
  std::vector<int> index;        // first source sample
  std::vector<int> index_next;   // second source sample (clamped)
  std::vector<int> w0, w1;
};

Taps linear_taps(int src, int dst, bool clamp_weights) {
  Taps t;
  const double scale = double(src) / double(dst);
  for (int d = 0; d < dst; ++d) {
    float f = float((d + 0.5) * scale - 0.5);
    int s = int(std::floor(f));
    f -= float(s);
    int next = s + 1;
    if (clamp_weights) {
      // Horizontally OpenCV pins the edge samples (weight 1 on the first / last pixel).
      if (s < 0) f = 0.f, s = 0, next = 1;
      if (s + 1 >= src) f = 0.f, s = src - 1, next = src - 1;
    }
    // Vertically it keeps the fraction and clamps the row indices instead.
    t.index.push_back(std::clamp(s, 0, src - 1));
    t.index_next.push_back(std::clamp(next, 0, src - 1));
    t.w0.push_back(int(std::nearbyint((1.f - f) * kCoefScale)));
    t.w1.push_back(int(std::nearbyint(f * kCoefScale)));
  }
  return t;
}

// OpenCV's vectorized vertical pass for 8-bit: ((S0>>4)*b0>>16) + ((S1>>4)*b1>>16), rounded by 2 bits.
inline uint8_t vertical_mix(int s0, int s1, int b0, int b1) {
  const int v = (((s0 >> 4) * b0) >> 16) + (((s1 >> 4) * b1) >> 16);
  return uint8_t(std::clamp((v + 2) >> 2, 0, 255));
}

void require_image(const Image& img, const char* what) {
  if (img.width <= 0 || img.height <= 0 || img.channels <= 0 ||
      img.data.size() != size_t(img.width) * img.height * img.channels) {
    throw Error(std::string(what) + ": empty or inconsistent image (" + std::to_string(img.width) + "x" +
                std::to_string(img.height) + "x" + std::to_string(img.channels) + ", " +
                std::to_string(img.data.size()) + " bytes)");
  }
}

}  // namespace

Image resize_bilinear(const Image& src, int width, int height) {
  require_image(src, "resize");
  if (width <= 0 || height <= 0) throw Error("resize: target size must be positive");
  if (width == src.width && height == src.height) return src;
  const int cn = src.channels;
  const Taps tx = linear_taps(src.width, width, true);
  const Taps ty = linear_taps(src.height, height, false);

  // Horizontal pass into 32-bit rows (each value = pixel * 2048), computed once per source row used.
  std::vector<std::vector<int>> rows(size_t(src.height));
  auto row = [&](int y) -> const std::vector<int>& {
    std::vector<int>& r = rows[size_t(y)];
    if (r.empty()) {
      r.resize(size_t(width) * cn);
      const uint8_t* s = src.pixel(0, y);
      for (int x = 0; x < width; ++x) {
        const int a = tx.index[x] * cn, b = tx.index_next[x] * cn;
        for (int c = 0; c < cn; ++c) r[size_t(x) * cn + c] = s[a + c] * tx.w0[x] + s[b + c] * tx.w1[x];
      }
    }
    return r;
  };

  Image out(width, height, cn);
  for (int y = 0; y < height; ++y) {
    const std::vector<int>& r0 = row(ty.index[y]);
    const std::vector<int>& r1 = row(ty.index_next[y]);
    uint8_t* d = out.pixel(0, y);
    for (size_t i = 0; i < r0.size(); ++i) d[i] = vertical_mix(r0[i], r1[i], ty.w0[y], ty.w1[y]);
  }
  return out;
}

Image letterbox(const Image& src, int height, int width, int pad_value, Letterbox* info) {
  require_image(src, "letterbox");
  // Python: r = min(H/h, W/w) in double; new size = round(w*r), round(h*r) with ties to even.
  const double r = std::min(double(height) / src.height, double(width) / src.width);
  const int nw = int(std::nearbyint(src.width * r)), nh = int(std::nearbyint(src.height * r));
  const Image resized = resize_bilinear(src, nw, nh);
  const int left = (width - nw) / 2, top = (height - nh) / 2;
  Image out(width, height, src.channels, uint8_t(std::clamp(pad_value, 0, 255)));
  for (int y = 0; y < nh; ++y) {
    std::copy_n(resized.pixel(0, y), size_t(nw) * src.channels, out.pixel(left, top + y));
  }
  if (info) *info = Letterbox{float(r), left, top, src.width, src.height};
  return out;
}

Image resize_crop(const Image& src, int height, int width, int resize_shorter) {
  require_image(src, "resize_crop");
  const double r = double(resize_shorter) / std::min(src.height, src.width);
  const int nw = std::max(int(std::nearbyint(src.width * r)), width);
  const int nh = std::max(int(std::nearbyint(src.height * r)), height);
  const Image resized = resize_bilinear(src, nw, nh);
  const int top = (nh - height) / 2, left = (nw - width) / 2;
  Image out(width, height, src.channels);
  for (int y = 0; y < height; ++y) {
    std::copy_n(resized.pixel(left, top + y), size_t(width) * src.channels, out.pixel(0, y));
  }
  return out;
}

std::vector<float> normalize(const Image& img, const PreprocessSpec& spec) {
  require_image(img, "normalize");
  if (img.channels != 3) throw Error("normalize: expected a 3-channel image, got " + std::to_string(img.channels));
  const size_t hw = size_t(img.width) * img.height;
  std::vector<float> out(hw * 3);
  for (size_t p = 0; p < hw; ++p) {
    for (int c = 0; c < 3; ++c) {
      const int src_c = spec.bgr ? 2 - c : c;
      // Same operation order as numpy: (x * scale - mean) / std in float32.
      const float v = (float(img.data[p * 3 + src_c]) * spec.scale - spec.mean[c]) / spec.std[c];
      out[spec.nchw ? size_t(c) * hw + p : p * 3 + c] = v;
    }
  }
  return out;
}

Preprocessed preprocess_image(const Image& rgb, const PreprocessSpec& spec) {
  Preprocessed p;
  Image fitted;
  switch (spec.resize) {
    case ResizeMode::Letterbox: {
      Letterbox lb;
      fitted = letterbox(rgb, spec.height, spec.width, spec.pad_value, &lb);
      p.letterbox = lb;
      break;
    }
    case ResizeMode::ResizeCrop:
      fitted = resize_crop(rgb, spec.height, spec.width, spec.resize_shorter > 0 ? spec.resize_shorter : spec.height);
      break;
    case ResizeMode::Resize:
      fitted = resize_bilinear(rgb, spec.width, spec.height);
      break;
  }
  p.tensor = normalize(fitted, spec);
  p.shape = spec.nchw ? std::vector<int64_t>{1, 3, spec.height, spec.width}
                      : std::vector<int64_t>{1, spec.height, spec.width, 3};
  return p;
}

}  // namespace orin_trt
