// .npy round trip, and the refusals of files the reader does not handle.
#include <cstdio>
#include <fstream>

#include "check.hpp"
#include "orin_trt/error.hpp"
#include "orin_trt/npy.hpp"

using namespace orin_trt;

TEST(float_round_trip) {
  const std::string path = "test_npy_roundtrip.npy";
  const std::vector<float> values = {1.5f, -2.f, 0.f, 3.25f, 1e-7f, 42.f};
  write_npy(path, values.data(), {1, 2, 3});
  const NpyArray a = read_npy(path);
  CHECK_EQ(a.dtype, std::string("<f4"));
  CHECK(a.shape == (std::vector<int64_t>{1, 2, 3}));
  CHECK(a.as<float>() == values);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  CHECK_EQ((long(in.tellg()) - long(values.size() * 4)) % 64, 0L);  // data starts 64-byte aligned
  write_npy(path, values.data(), {6});
  CHECK(read_npy(path).shape == (std::vector<int64_t>{6}));
  std::remove(path.c_str());
}

TEST(golden_uint8_image_reads) {
  const NpyArray a = read_npy(std::string(ORIN_TRT_GOLDEN_DIR) + "/resize_src.npy");
  CHECK_EQ(a.dtype, std::string("|u1"));
  CHECK(a.shape == (std::vector<int64_t>{16, 24, 3}));
  CHECK_EQ(a.bytes.size(), size_t(16 * 24 * 3));
}

TEST(bad_files_are_named) {
  CHECK_THROWS(read_npy("/nonexistent.npy"), Error, "/nonexistent.npy: cannot open");
  const std::string path = "test_npy_bad.npy";
  {
    std::ofstream out(path);
    out << "not numpy";
  }
  CHECK_THROWS(read_npy(path), Error, "test_npy_bad.npy: not a .npy file");
  std::remove(path.c_str());
}

TEST_MAIN()
