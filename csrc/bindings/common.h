// Helpers shared by the binding files: array types that refuse conversion, shape access and the
// cheap re-checks done before the GIL is released.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <string>

#include "common/check.h"
#include "common/params.h"

namespace fastconv {
namespace py = pybind11;

// C-contiguous array of exactly T; bound with .noconvert() so pybind11 never copies or casts.
template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

inline std::array<int64_t, 4> shape4(const py::array& a, const char* fn, const char* name) {
  FC_CHECK(a.ndim() == 4, fn, name, " must be 4-D, got ndim=", a.ndim());
  return {static_cast<int64_t>(a.shape(0)), static_cast<int64_t>(a.shape(1)),
          static_cast<int64_t>(a.shape(2)), static_cast<int64_t>(a.shape(3))};
}

inline void require_writable(const py::array& a, const char* fn, const char* name) {
  FC_CHECK(a.writeable(), fn, name, " must be writable");
}

inline Layout to_layout(int layout, const char* fn) {
  FC_CHECK(layout == 0 || layout == 1, fn, "layout must be 0 (NCHW) or 1 (NHWC), got ", layout);
  return static_cast<Layout>(layout);
}

void register_conv(py::module_& m);
void register_pool(py::module_& m);
void register_info(py::module_& m);
void register_testing(py::module_& m);
void register_results(py::module_& m);

}  // namespace fastconv
