// Bindings for convolution: shape re-checks, output/param assembly, GIL release.
#include <pybind11/stl.h>

#include <optional>

#include "bindings/common.h"
#include "cpu/conv/conv2d.h"

namespace fastconv {
namespace {

// Builds and re-checks the geometry from x (N, C, H, W | N, H, W, C), weight and y shapes.
Conv2dParams make_params(const char* fn, const std::array<int64_t, 4>& xs,
                         const std::array<int64_t, 4>& wsh, const std::array<int64_t, 4>& ys,
                         int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                         int64_t dh, int64_t dw, int64_t groups, int layout,
                         bool check_out = true) {
  Conv2dParams p;
  p.layout = to_layout(layout, fn);
  const bool nchw = p.layout == Layout::NCHW;
  p.batch = xs[0];
  p.in_c = nchw ? xs[1] : xs[3];
  p.in_h = nchw ? xs[2] : xs[1];
  p.in_w = nchw ? xs[3] : xs[2];
  p.out_c = nchw ? wsh[0] : wsh[3];
  const int64_t wc = nchw ? wsh[1] : wsh[2];
  p.k_h = nchw ? wsh[2] : wsh[0];
  p.k_w = nchw ? wsh[3] : wsh[1];
  p.stride_h = sh; p.stride_w = sw;
  p.pad_top = pt; p.pad_bottom = pb; p.pad_left = pl; p.pad_right = pr;
  p.dil_h = dh; p.dil_w = dw;
  p.groups = groups;
  FC_CHECK(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1 && groups >= 1, fn,
           "stride, dilation and groups must be >= 1");
  FC_CHECK(pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0, fn, "padding must be >= 0");
  FC_CHECK(p.k_h >= 1 && p.k_w >= 1, fn, "weight: kernel size must be >= 1");
  FC_CHECK(p.in_c % groups == 0 && p.out_c % groups == 0 && wc * groups == p.in_c, fn,
           "weight expects ", wc, " input channels per group but x has ", p.in_c,
           " channels (groups=", groups, ")");
  const int64_t limit = int64_t(1) << 40;
  for (int64_t v : {p.in_h, p.in_w, p.k_h, p.k_w, sh, sw, pt, pb, pl, pr, dh, dw})
    FC_CHECK(v < limit, fn, "geometry value ", v, " exceeds the supported range");
  p.out_h = output_size(p.in_h, p.k_h, sh, pt, pb, dh);
  p.out_w = output_size(p.in_w, p.k_w, sw, pl, pr, dw);
  const std::array<int64_t, 4> want =
      nchw ? std::array<int64_t, 4>{p.batch, p.out_c, p.out_h, p.out_w}
           : std::array<int64_t, 4>{p.batch, p.out_h, p.out_w, p.out_c};
  FC_CHECK(p.out_h >= 1 && p.out_w >= 1, fn, "kernel larger than the padded input");
  FC_CHECK(!check_out || ys == want, fn, "output/grad_out shape (", ys[0], ", ", ys[1], ", ", ys[2], ", ",
           ys[3], ") does not match the expected (", want[0], ", ", want[1], ", ", want[2], ", ",
           want[3], ")");
  return p;
}

template <typename T>
void bind_dtype(py::module_& m) {
  m.def(
      "conv2d_forward",
      [](CArray<T> x, CArray<T> w, std::optional<CArray<T>> bias, CArray<T> out, int64_t sh,
         int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw,
         int64_t groups, int layout) {
        const char* fn = "conv2d";
        Conv2dParams p = make_params(fn, shape4(x, fn, "x"), shape4(w, fn, "weight"),
                                     shape4(out, fn, "out"), sh, sw, pt, pb, pl, pr, dh, dw,
                                     groups, layout);
        require_writable(out, fn, "out");
        const T* bp = nullptr;
        if (bias) {
          FC_CHECK(bias->ndim() == 1 && bias->shape(0) == p.out_c, fn, "bias must have shape (",
                   p.out_c, ",)");
          bp = bias->data();
        }
        const T* xp = x.data();
        const T* wp = w.data();
        T* yp = out.mutable_data();
        py::gil_scoped_release nogil;
        conv2d_forward<T>(p, xp, wp, bp, yp);
      },
      py::arg("x").noconvert(), py::arg("weight").noconvert(), py::arg("bias").noconvert(),
      py::arg("out").noconvert(), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"),
      py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("dil_h"),
      py::arg("dil_w"), py::arg("groups"), py::arg("layout"));

  m.def(
      "conv2d_input_grad",
      [](CArray<T> gy, CArray<T> w, CArray<T> gx, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
         int64_t pl, int64_t pr, int64_t dh, int64_t dw, int64_t groups, int layout) {
        const char* fn = "conv2d_input_grad";
        Conv2dParams p = make_params(fn, shape4(gx, fn, "grad_x"), shape4(w, fn, "weight"),
                                     shape4(gy, fn, "grad_out"), sh, sw, pt, pb, pl, pr, dh, dw,
                                     groups, layout);
        require_writable(gx, fn, "grad_x");
        const T* gyp = gy.data();
        const T* wp = w.data();
        T* gxp = gx.mutable_data();
        py::gil_scoped_release nogil;
        conv2d_input_grad<T>(p, gyp, wp, gxp);
      },
      py::arg("grad_out").noconvert(), py::arg("weight").noconvert(),
      py::arg("grad_x").noconvert(), py::arg("stride_h"), py::arg("stride_w"),
      py::arg("pad_top"), py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"),
      py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"), py::arg("layout"));

  m.def(
      "conv2d_weight_grad",
      [](CArray<T> gy, CArray<T> x, CArray<T> gw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
         int64_t pl, int64_t pr, int64_t dh, int64_t dw, int64_t groups, int layout) {
        const char* fn = "conv2d_weight_grad";
        Conv2dParams p = make_params(fn, shape4(x, fn, "x"), shape4(gw, fn, "grad_w"),
                                     shape4(gy, fn, "grad_out"), sh, sw, pt, pb, pl, pr, dh, dw,
                                     groups, layout);
        require_writable(gw, fn, "grad_w");
        const T* gyp = gy.data();
        const T* xp = x.data();
        T* gwp = gw.mutable_data();
        py::gil_scoped_release nogil;
        conv2d_weight_grad<T>(p, gyp, xp, gwp);
      },
      py::arg("grad_out").noconvert(), py::arg("x").noconvert(), py::arg("grad_w").noconvert(),
      py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_bottom"),
      py::arg("pad_left"), py::arg("pad_right"), py::arg("dil_h"), py::arg("dil_w"),
      py::arg("groups"), py::arg("layout"));

  m.def(
      "conv2d_bias_grad",
      [](CArray<T> gy, CArray<T> gb, int layout) {
        const char* fn = "conv2d_bias_grad";
        const auto s = shape4(gy, fn, "grad_out");
        Conv2dParams p;
        p.layout = to_layout(layout, fn);
        const bool nchw = p.layout == Layout::NCHW;
        p.batch = s[0];
        p.out_c = nchw ? s[1] : s[3];
        p.out_h = nchw ? s[2] : s[1];
        p.out_w = nchw ? s[3] : s[2];
        FC_CHECK(gb.ndim() == 1 && gb.shape(0) == p.out_c, fn, "grad_b must have shape (",
                 p.out_c, ",)");
        require_writable(gb, fn, "grad_b");
        const T* gyp = gy.data();
        T* gbp = gb.mutable_data();
        py::gil_scoped_release nogil;
        conv2d_bias_grad<T>(p, gyp, gbp);
      },
      py::arg("grad_out").noconvert(), py::arg("grad_b").noconvert(), py::arg("layout"));
}

}  // namespace

void register_conv(py::module_& m) {
  bind_dtype<float>(m);
  bind_dtype<double>(m);
  m.def(
      "conv2d_plan",
      [](const std::vector<int64_t>& xv, const std::vector<int64_t>& wv, int64_t sh, int64_t sw,
         int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw, int64_t groups,
         int layout, int op, bool is_double) {
        const char* fn = "explain_conv2d";
        FC_CHECK(op >= 0 && op <= 2, fn, "op must be 0 (forward), 1 (input_grad) or 2 (weight_grad)");
        FC_CHECK(xv.size() == 4 && wv.size() == 4, fn, "x_shape and weight_shape need 4 entries");
        const std::array<int64_t, 4> xs{xv[0], xv[1], xv[2], xv[3]};
        const std::array<int64_t, 4> wsh{wv[0], wv[1], wv[2], wv[3]};
        const Conv2dParams p = make_params(fn, xs, wsh, xs, sh, sw, pt, pb, pl, pr, dh, dw,
                                           groups, layout, false);
        const ConvPlan plan = conv2d_plan(p, static_cast<ConvOp>(op), is_double);
        return std::make_pair(plan.algorithm, plan.reason);
      },
      py::arg("x_shape"), py::arg("weight_shape"), py::arg("stride_h"), py::arg("stride_w"),
      py::arg("pad_top"), py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"),
      py::arg("dil_h"), py::arg("dil_w"), py::arg("groups"), py::arg("layout"), py::arg("op"), py::arg("is_double"),
      "The algorithm the selector picks for one op of a layer and a one-line reason.");
}

}  // namespace fastconv
