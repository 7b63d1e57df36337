// FC_CHECK: cheap re-validation inside the C++ core. Python (_args.py) validates first and writes
// the user-facing messages; these checks only guard the core when it is reached another way
// (e.g. fastconv._core called directly). std::invalid_argument -> ValueError in pybind11.
#pragma once
#include <cstdint>
#include <limits>
#include <cstdio>
#include <type_traits>
#include <utility>
#include <stdexcept>
#include <string>

namespace fastconv {

// Messages are built without iostreams: on one test machine (Python 3.12, NumPy 2.5, gcc 13)
// formatting an integer through std::ostringstream inside the extension crashed in the
// locale's num_put facet, while std::to_string / snprintf work everywhere.
namespace detail {
inline void put(std::string& s, const char* v) { s += v ? v : "(null)"; }
inline void put(std::string& s, const std::string& v) { s += v; }
inline void put(std::string& s, char v) { s += v; }
inline void put(std::string& s, bool v) { s += v ? "true" : "false"; }
template <typename T, std::enable_if_t<std::is_integral<T>::value && !std::is_same<T, bool>::value &&
                                           !std::is_same<T, char>::value,
                                       int> = 0>
inline void put(std::string& s, T v) {
  s += std::to_string(v);
}
template <typename T, std::enable_if_t<std::is_floating_point<T>::value, int> = 0>
inline void put(std::string& s, T v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", static_cast<double>(v));
  s += b;
}
}  // namespace detail

// Concatenates the arguments (strings, integers, floating-point values) into one string.
template <typename... Args>
inline std::string cat(Args&&... args) {
  std::string s;
  (detail::put(s, std::forward<Args>(args)), ...);
  return s;
}

template <typename... Args>
[[noreturn]] inline void fail(const char* fn, Args&&... args) {
  throw std::invalid_argument(cat(fn, ": ", std::forward<Args>(args)...));
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
