#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "image_io.hpp"
#include "orin_trt/error.hpp"

namespace samples {

orin_trt::Image read_rgb(const std::string& path) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) throw orin_trt::Error(path + ": cannot be decoded as an image");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  orin_trt::Image img(rgb.cols, rgb.rows, 3);
  for (int y = 0; y < rgb.rows; ++y) std::memcpy(img.pixel(0, y), rgb.ptr(y), size_t(rgb.cols) * 3);
  return img;
}

void write_image(const std::string& path, const orin_trt::Image& rgb) {
  cv::Mat view(rgb.height, rgb.width, CV_8UC3, const_cast<uint8_t*>(rgb.data.data()));
  cv::Mat bgr;
  cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path, bgr)) throw orin_trt::Error(path + ": cannot write the image");
}

}  // namespace samples
