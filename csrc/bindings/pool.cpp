// Python bindings of the pooling kernels; the contract (names, argument order) is
// python/fastconv/_core.pyi. Each function has a float and a double overload taking C-contiguous
// arrays with .noconvert(), so a wrong or mixed dtype raises TypeError. Shapes, writability,
// memory overlap and the pooling geometry are checked (ValueError) before the GIL is released;
// index validation (max backward) runs with the GIL released and still raises ValueError.
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "bindings/common.h"
#include "cpu/pool/pool2d.h"

namespace fastconv {
namespace {

using IndexArray = CArray<int64_t>;

struct Dims {  // batch, channels, height, width of a 4-D array in its layout
  int64_t n, c, h, w;
};

Dims dims_of(const py::array& a, Layout layout, const char* fn, const char* name) {
  const auto s = shape4(a, fn, name);
  return layout == Layout::NCHW ? Dims{s[0], s[1], s[2], s[3]} : Dims{s[0], s[3], s[1], s[2]};
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += cat(i ? ", " : "", static_cast<int64_t>(a.shape(i)));
  s += a.ndim() == 1 ? ",)" : ")";
  return s;
}

const char* layout_name(Layout layout) { return layout == Layout::NCHW ? "NCHW" : "NHWC"; }

void check_same_nc(const char* fn, Layout layout, const py::array& a, const Dims& da,
                   const char* na, const py::array& b, const Dims& db, const char* nb) {
  FC_CHECK(da.n == db.n && da.c == db.c, fn, na, " has shape ", shape_str(a), " but ", nb,
           " has shape ", shape_str(b), ": batch and channels must match (layout ",
           layout_name(layout), ")");
}

void check_same_shape(const char* fn, const py::array& a, const char* na, const py::array& b,
                      const char* nb) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  FC_CHECK(same, fn, na, " has shape ", shape_str(a), " but must have the shape of ", nb, " ",
           shape_str(b));
}

// C-contiguous arrays occupy exactly [data, data + nbytes): an output must not share bytes with
// any other argument.
void check_no_overlap(const char* fn, const py::array& out, const char* no, const py::array& other,
                      const char* nother) {
  if (out.nbytes() == 0 || other.nbytes() == 0) return;
  const auto a = reinterpret_cast<uintptr_t>(out.data());
  const auto b = reinterpret_cast<uintptr_t>(other.data());
  FC_CHECK(a + static_cast<uintptr_t>(out.nbytes()) <= b ||
               b + static_cast<uintptr_t>(other.nbytes()) <= a,
           fn, no, " overlaps ", nother, " in memory");
}

Pool2dParams make_params(const Dims& in, const Dims& out, Layout layout) {
  Pool2dParams p;
  p.batch = in.n;
  p.channels = in.c;
  p.in_h = in.h;
  p.in_w = in.w;
  p.out_h = out.h;
  p.out_w = out.w;
  p.layout = layout;
  return p;
}

void set_window(Pool2dParams& p, int64_t k_h, int64_t k_w, int64_t stride_h, int64_t stride_w,
                int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                int64_t dil_h, int64_t dil_w) {
  p.k_h = k_h;
  p.k_w = k_w;
  p.stride_h = stride_h;
  p.stride_w = stride_w;
  p.pad_top = pad_top;
  p.pad_bottom = pad_bottom;
  p.pad_left = pad_left;
  p.pad_right = pad_right;
  p.dil_h = dil_h;
  p.dil_w = dil_w;
}

// Forward: x -> out (+ indices). Returns the params with in/out sizes filled in.
Pool2dParams check_forward(const char* fn, Layout layout, const py::array& x, const py::array& out,
                           const py::array* indices) {
  const Dims dx = dims_of(x, layout, fn, "x"), dout = dims_of(out, layout, fn, "out");
  check_same_nc(fn, layout, out, dout, "out", x, dx, "x");
  require_writable(out, fn, "out");
  check_no_overlap(fn, out, "out", x, "x");
  if (indices) {
    check_same_shape(fn, *indices, "indices", out, "out");
    require_writable(*indices, fn, "indices");
    check_no_overlap(fn, *indices, "indices", x, "x");
    check_no_overlap(fn, *indices, "indices", out, "out");
  }
  return make_params(dx, dout, layout);
}

// Backward: grad_out (+ indices) -> grad_x.
Pool2dParams check_backward(const char* fn, Layout layout, const py::array& grad_out,
                            const py::array* indices, const py::array& grad_x) {
  const Dims dgo = dims_of(grad_out, layout, fn, "grad_out");
  const Dims dgx = dims_of(grad_x, layout, fn, "grad_x");
  check_same_nc(fn, layout, grad_x, dgx, "grad_x", grad_out, dgo, "grad_out");
  require_writable(grad_x, fn, "grad_x");
  check_no_overlap(fn, grad_x, "grad_x", grad_out, "grad_out");
  if (indices) {
    check_same_shape(fn, *indices, "indices", grad_out, "grad_out");
    check_no_overlap(fn, grad_x, "grad_x", *indices, "indices");
  }
  return make_params(dgx, dgo, layout);
}

template <typename T>
void max_pool2d_forward_py(CArray<T> x, CArray<T> out, std::optional<IndexArray> indices,
                           int64_t k_h, int64_t k_w, int64_t stride_h, int64_t stride_w,
                           int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                           int64_t dil_h, int64_t dil_w, int layout) {
  const char* fn = "max_pool2d_forward";
  Pool2dParams p = check_forward(fn, to_layout(layout, fn), x, out, indices ? &*indices : nullptr);
  set_window(p, k_h, k_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h,
             dil_w);
  check_pool2d_params(fn, p, true);
  const T* xp = x.data();
  T* op = out.mutable_data();
  int64_t* ip = indices ? indices->mutable_data() : nullptr;
  py::gil_scoped_release release;
  fastconv::max_pool2d_forward<T>(xp, op, ip, p);
}

template <typename T>
void max_pool2d_backward_py(CArray<T> grad_out, IndexArray indices, CArray<T> grad_x, int64_t k_h,
                            int64_t k_w, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                            int64_t pad_bottom, int64_t pad_left, int64_t pad_right, int64_t dil_h,
                            int64_t dil_w, int layout) {
  const char* fn = "max_pool2d_backward";
  Pool2dParams p = check_backward(fn, to_layout(layout, fn), grad_out, &indices, grad_x);
  set_window(p, k_h, k_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h,
             dil_w);
  check_pool2d_params(fn, p, true);
  const T* gop = grad_out.data();
  const int64_t* ip = indices.data();
  T* gxp = grad_x.mutable_data();
  py::gil_scoped_release release;  // index errors thrown below still reach Python as ValueError
  fastconv::max_pool2d_backward<T>(gop, ip, gxp, p);
}

template <typename T>
void avg_pool2d_forward_py(CArray<T> x, CArray<T> out, int64_t k_h, int64_t k_w, int64_t stride_h,
                           int64_t stride_w, int64_t pad_top, int64_t pad_bottom, int64_t pad_left,
                           int64_t pad_right, bool count_include_pad, int64_t divisor_override,
                           int layout) {
  const char* fn = "avg_pool2d_forward";
  Pool2dParams p = check_forward(fn, to_layout(layout, fn), x, out, nullptr);
  set_window(p, k_h, k_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, 1, 1);
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor_override;
  check_pool2d_params(fn, p, false);
  const T* xp = x.data();
  T* op = out.mutable_data();
  py::gil_scoped_release release;
  fastconv::avg_pool2d_forward<T>(xp, op, p);
}

template <typename T>
void avg_pool2d_backward_py(CArray<T> grad_out, CArray<T> grad_x, int64_t k_h, int64_t k_w,
                            int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_bottom,
                            int64_t pad_left, int64_t pad_right, bool count_include_pad,
                            int64_t divisor_override, int layout) {
  const char* fn = "avg_pool2d_backward";
  Pool2dParams p = check_backward(fn, to_layout(layout, fn), grad_out, nullptr, grad_x);
  set_window(p, k_h, k_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, 1, 1);
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor_override;
  check_pool2d_params(fn, p, false);
  const T* gop = grad_out.data();
  T* gxp = grad_x.mutable_data();
  py::gil_scoped_release release;
  fastconv::avg_pool2d_backward<T>(gop, gxp, p);
}

template <typename T>
void adaptive_avg_pool2d_forward_py(CArray<T> x, CArray<T> out, int layout) {
  const char* fn = "adaptive_avg_pool2d_forward";
  const Pool2dParams p = check_forward(fn, to_layout(layout, fn), x, out, nullptr);
  check_adaptive_pool2d_params(fn, p);
  const T* xp = x.data();
  T* op = out.mutable_data();
  py::gil_scoped_release release;
  fastconv::adaptive_avg_pool2d_forward<T>(xp, op, p);
}

template <typename T>
void adaptive_avg_pool2d_backward_py(CArray<T> grad_out, CArray<T> grad_x, int layout) {
  const char* fn = "adaptive_avg_pool2d_backward";
  const Pool2dParams p = check_backward(fn, to_layout(layout, fn), grad_out, nullptr, grad_x);
  check_adaptive_pool2d_params(fn, p);
  const T* gop = grad_out.data();
  T* gxp = grad_x.mutable_data();
  py::gil_scoped_release release;
  fastconv::adaptive_avg_pool2d_backward<T>(gop, gxp, p);
}

template <typename T>
void adaptive_max_pool2d_forward_py(CArray<T> x, CArray<T> out, std::optional<IndexArray> indices,
                                    int layout) {
  const char* fn = "adaptive_max_pool2d_forward";
  const Pool2dParams p =
      check_forward(fn, to_layout(layout, fn), x, out, indices ? &*indices : nullptr);
  check_adaptive_pool2d_params(fn, p);
  const T* xp = x.data();
  T* op = out.mutable_data();
  int64_t* ip = indices ? indices->mutable_data() : nullptr;
  py::gil_scoped_release release;
  fastconv::adaptive_max_pool2d_forward<T>(xp, op, ip, p);
}

template <typename T>
void adaptive_max_pool2d_backward_py(CArray<T> grad_out, IndexArray indices, CArray<T> grad_x,
                                     int layout) {
  const char* fn = "adaptive_max_pool2d_backward";
  const Pool2dParams p = check_backward(fn, to_layout(layout, fn), grad_out, &indices, grad_x);
  check_adaptive_pool2d_params(fn, p);
  const T* gop = grad_out.data();
  const int64_t* ip = indices.data();
  T* gxp = grad_x.mutable_data();
  py::gil_scoped_release release;  // index errors thrown below still reach Python as ValueError
  fastconv::adaptive_max_pool2d_backward<T>(gop, ip, gxp, p);
}

template <typename T>
void def_pool(py::module_& m) {
  using py::arg;
  m.def("max_pool2d_forward", &max_pool2d_forward_py<T>, arg("x").noconvert(),
        arg("out").noconvert(), arg("indices").noconvert(), arg("k_h"), arg("k_w"), arg("stride_h"),
        arg("stride_w"), arg("pad_top"), arg("pad_bottom"), arg("pad_left"), arg("pad_right"),
        arg("dil_h"), arg("dil_w"), arg("layout"),
        "out (and indices, if not None) = max pooling of x; indices are flat ih*in_w + iw.");
  m.def("max_pool2d_backward", &max_pool2d_backward_py<T>, arg("grad_out").noconvert(),
        arg("indices").noconvert(), arg("grad_x").noconvert(), arg("k_h"), arg("k_w"),
        arg("stride_h"), arg("stride_w"), arg("pad_top"), arg("pad_bottom"), arg("pad_left"),
        arg("pad_right"), arg("dil_h"), arg("dil_w"), arg("layout"),
        "grad_x = scatter-add of grad_out at indices; ValueError (before writing) if an index "
        "is outside its own window.");
  m.def("avg_pool2d_forward", &avg_pool2d_forward_py<T>, arg("x").noconvert(),
        arg("out").noconvert(), arg("k_h"), arg("k_w"), arg("stride_h"), arg("stride_w"),
        arg("pad_top"), arg("pad_bottom"), arg("pad_left"), arg("pad_right"),
        arg("count_include_pad"), arg("divisor_override"), arg("layout"),
        "out = average pooling of x (PyTorch semantics; divisor_override == 0 means none).");
  m.def("avg_pool2d_backward", &avg_pool2d_backward_py<T>, arg("grad_out").noconvert(),
        arg("grad_x").noconvert(), arg("k_h"), arg("k_w"), arg("stride_h"), arg("stride_w"),
        arg("pad_top"), arg("pad_bottom"), arg("pad_left"), arg("pad_right"),
        arg("count_include_pad"), arg("divisor_override"), arg("layout"),
        "grad_x = gradient of avg_pool2d_forward.");
  m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward_py<T>, arg("x").noconvert(),
        arg("out").noconvert(), arg("layout"), "out = adaptive average pooling of x.");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward_py<T>,
        arg("grad_out").noconvert(), arg("grad_x").noconvert(), arg("layout"),
        "grad_x = gradient of adaptive_avg_pool2d_forward.");
  m.def("adaptive_max_pool2d_forward", &adaptive_max_pool2d_forward_py<T>, arg("x").noconvert(),
        arg("out").noconvert(), arg("indices").noconvert(), arg("layout"),
        "out (and indices, if not None) = adaptive max pooling of x.");
  m.def("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward_py<T>,
        arg("grad_out").noconvert(), arg("indices").noconvert(), arg("grad_x").noconvert(),
        arg("layout"),
        "grad_x = scatter-add of grad_out at indices; ValueError (before writing) if an index "
        "is outside its own window.");
}

}  // namespace

void register_pool(py::module_& m) {
  def_pool<float>(m);
  def_pool<double>(m);
}

}  // namespace fastconv
