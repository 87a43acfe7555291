// A minimal test harness (no test framework to install): TEST(name) registers a case, CHECK records a
// failure with file:line and keeps going, main() runs every case and returns non-zero on any failure.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace check {

struct Case {
  const char* name;
  std::function<void()> body;
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}
inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, std::function<void()> body) { cases().push_back({name, std::move(body)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "  %s:%d: %s\n", file, line, what.c_str());
}

inline int run_all(int argc, char** argv) {
  int failed_cases = 0;
  for (const Case& c : cases()) {
    if (argc > 1 && std::string(argv[1]) != c.name) continue;
    const int before = failures();
    try {
      c.body();
    } catch (const std::exception& e) {
      fail(c.name, 0, std::string("unexpected exception: ") + e.what());
    }
    const bool ok = failures() == before;
    failed_cases += !ok;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
  }
  std::printf("%zu cases, %d failed\n", cases().size(), failed_cases);
  return failed_cases ? 1 : 0;
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)
#define TEST(name)                                                          \
  static void name();                                                       \
  static check::Register CHECK_CAT(register_, name)(#name, name);           \
  static void name()

#define CHECK(cond) \
  do {              \
    if (!(cond)) check::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                      \
  do {                                                                                      \
    const auto va_ = (a);                                                                   \
    const auto vb_ = (b);                                                                   \
    if (!(va_ == vb_)) {                                                                    \
      std::ostringstream os_;                                                               \
      os_ << #a " == " #b " (" << va_ << " vs " << vb_ << ")";                              \
      check::fail(__FILE__, __LINE__, os_.str());                                           \
    }                                                                                       \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                               \
  do {                                                                                      \
    const double va_ = double(a), vb_ = double(b);                                          \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                                 \
      std::ostringstream os_;                                                               \
      os_ << #a " ~ " #b " (" << va_ << " vs " << vb_ << ", tolerance " << (tol) << ")";    \
      check::fail(__FILE__, __LINE__, os_.str());                                           \
    }                                                                                       \
  } while (0)

// The statement throws an exception of `type` whose message contains `needle`.
#define CHECK_THROWS(stmt, type, needle)                                                     \
  do {                                                                                       \
    bool thrown_ = false;                                                                    \
    try {                                                                                    \
      stmt;                                                                                  \
    } catch (const type& e_) {                                                               \
      thrown_ = true;                                                                        \
      if (std::string(e_.what()).find(needle) == std::string::npos)                          \
        check::fail(__FILE__, __LINE__, std::string("message lacks '") + (needle) + "': " + e_.what()); \
    }                                                                                        \
    if (!thrown_) check::fail(__FILE__, __LINE__, "no " #type " from " #stmt);               \
  } while (0)

#define TEST_MAIN() \
  int main(int argc, char** argv) { return check::run_all(argc, argv); }
