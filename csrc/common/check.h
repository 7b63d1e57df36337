// FC_CHECK: cheap re-validation inside the C++ core. Python (_args.py) validates first and writes
// the user-facing messages; these checks only guard the core when it is reached another way
// (e.g. fastconv._core called directly). std::invalid_argument -> ValueError in pybind11.
#pragma once
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fastconv {

template <typename... Args>
[[noreturn]] inline void fail(const char* fn, Args&&... args) {
  std::ostringstream os;
  os << fn << ": ";
  (os << ... << args);
  throw std::invalid_argument(os.str());
}

// a * b for non-negative int64 values; throws std::overflow_error (-> OverflowError) on overflow.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what = "size") {
  if (a < 0 || b < 0) throw std::invalid_argument(std::string(what) + " is negative");
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a)
    throw std::overflow_error(std::string(what) + " overflows int64");
  return a * b;
}

}  // namespace fastconv

#define FC_CHECK(cond, fn, ...)                          \
  do {                                                   \
    if (!(cond)) ::fastconv::fail(fn, __VA_ARGS__);      \
  } while (0)
