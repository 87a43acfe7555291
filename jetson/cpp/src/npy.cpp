#include "orin_trt/npy.hpp"

#include <cstdio>
#include <fstream>
#include <regex>

#include "orin_trt/error.hpp"

namespace orin_trt {
namespace {

size_t item_size(const std::string& descr) {
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "<f2") return 2;
  if (descr == "<i8" || descr == "<f8") return 8;
  if (descr == "|u1" || descr == "|i1" || descr == "|b1") return 1;
  return 0;
}

}  // namespace

size_t NpyArray::count() const {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  char magic[6];
  in.read(magic, 6);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw Error(path + ": not a .npy file");
  uint8_t version[2];
  in.read(reinterpret_cast<char*>(version), 2);
  uint8_t len[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(len), version[0] == 1 ? 2 : 4);
  const uint32_t header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (uint32_t(len[3]) << 24);
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  if (!in) throw Error(path + ": truncated header");
  std::smatch m;
  NpyArray a;
  if (!std::regex_search(header, m, std::regex(R"('descr':\s*'([^']+)')"))) throw Error(path + ": no dtype in header");
  a.dtype = m[1].str();
  if (header.find("'fortran_order': False") == std::string::npos) throw Error(path + ": only C-order arrays are read");
  if (!std::regex_search(header, m, std::regex(R"('shape':\s*\(([^)]*)\))"))) throw Error(path + ": no shape in header");
  const std::string dims = m[1].str();
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) a.shape.push_back(std::stoll(it->str()));
  const size_t item = item_size(a.dtype);
  if (!item) throw Error(path + ": unsupported dtype " + a.dtype);
  a.bytes.resize(a.count() * item);
  in.read(reinterpret_cast<char*>(a.bytes.data()), std::streamsize(a.bytes.size()));
  if (!in) throw Error(path + ": truncated data (expected " + std::to_string(a.bytes.size()) + " bytes)");
  return a;
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  size_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= size_t(d);
  }
  if (shape.size() > 1) dims.erase(dims.size() - 2);  // "(3,)" keeps its comma, "(1, 84, 8400)" does not
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces so the data starts on a 64-byte boundary (format 1.0: 10-byte preamble).
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write");
    const uint16_t hlen = uint16_t(header.size());
    out.write("\x93NUMPY\x01\x00", 8);
    out.put(char(hlen & 0xff));
    out.put(char(hlen >> 8));
    out.write(header.data(), std::streamsize(header.size()));
    out.write(reinterpret_cast<const char*>(data), std::streamsize(count * sizeof(float)));
    if (!out) throw Error(path + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw Error(path + ": cannot rename " + tmp + " over it");
}

}  // namespace orin_trt
