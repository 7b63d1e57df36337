// fastconv._core._testing: reach every kernel path from the tests (GEMM driver, one microkernel
// call, algorithm override). ISA forcing is the public set_isa.
#include <pybind11/stl.h>

#include "bindings/common.h"
#include "common/workspace.h"
#include "cpu/conv/conv2d.h"
#include "cpu/conv/winograd.h"
#include "cpu/dispatch.h"
#include "cpu/gemm/gemm.h"

namespace fastconv {
namespace {

template <typename T>
void bind_gemm(py::module_& t) {
  t.def(
      "gemm",
      [](CArray<T> a, CArray<T> b, CArray<T> c, bool accumulate) {
        const char* fn = "gemm";
        FC_CHECK(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2, fn, "a, b, c must be 2-D");
        const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
        FC_CHECK(b.shape(0) == K && c.shape(0) == M && c.shape(1) == N, fn, "shape mismatch");
        require_writable(c, fn, "c");
        const T* ap = a.data();
        const T* bp = b.data();
        T* cp = c.mutable_data();
        py::gil_scoped_release nogil;
        const GemmKernel<T>& g = kernels().gemm<T>();
        AlignedArray<T> ws(gemm_workspace_size(g));
        StridedSource<T> A(ap, K, 1), B(bp, 1, N);
        gemm_serial(g, 0, M, 0, N, 0, K, A, B, cp, N, 1, accumulate, ws.data());
      },
      py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
      py::arg("accumulate"));
  t.def(
      "gemm_ukr",
      [](int64_t kc, CArray<T> a, CArray<T> b, CArray<T> c, int64_t mr, int64_t nr,
         bool accumulate) {
        const char* fn = "gemm_ukr";
        const GemmKernel<T>& g = kernels().gemm<T>();
        FC_CHECK(kc >= 0 && a.size() >= kc * g.mr && b.size() >= kc * g.nr, fn,
                 "packed panels too small for kc=", kc);
        FC_CHECK(mr >= 1 && mr <= g.mr && nr >= 1 && nr <= g.nr, fn, "mr/nr out of range");
        FC_CHECK(c.ndim() == 2 && c.shape(0) == mr && c.shape(1) == nr, fn, "c must be (mr, nr)");
        require_writable(c, fn, "c");
        g.ukr(kc, a.data(), b.data(), c.mutable_data(), nr, 1, mr, nr, accumulate);
      },
      py::arg("kc"), py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
      py::arg("mr"), py::arg("nr"), py::arg("accumulate"));
  t.def(
      "dot_ukr",
      [](CArray<T> a, CArray<T> b, CArray<T> c, bool accumulate) {
        // a: (mr, kc), b: (nr, kc), c: (mr, nr); c (+)= a @ b.T through one dot-microkernel call.
        const char* fn = "dot_ukr";
        const DotKernel<T>& d = kernels().dot<T>();
        FC_CHECK(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2, fn, "a, b, c must be 2-D");
        const int64_t mr = a.shape(0), nr = b.shape(0), kc = a.shape(1);
        FC_CHECK(b.shape(1) == kc && c.shape(0) == mr && c.shape(1) == nr, fn, "shape mismatch");
        FC_CHECK(mr >= 1 && mr <= d.mr && nr >= 1 && nr <= d.nr, fn, "mr/nr out of range");
        require_writable(c, fn, "c");
        d.ukr(kc, a.data(), kc, b.data(), kc, c.mutable_data(), nr, 1, mr, nr, accumulate);
      },
      py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("c").noconvert(),
      py::arg("accumulate"));
}

}  // namespace

void register_testing(py::module_& m) {
  py::module_ t = m.def_submodule("_testing", "hooks that force kernel paths (tests only)");
  bind_gemm<float>(t);
  bind_gemm<double>(t);
  t.def("tile_sizes", [](const std::string& dtype) {
    const KernelTable& k = kernels();
    if (dtype == "float32") return std::make_pair(k.gemm_f32.mr, k.gemm_f32.nr);
    if (dtype == "float64") return std::make_pair(k.gemm_f64.mr, k.gemm_f64.nr);
    if (dtype == "dot_float32") return std::make_pair(k.dot_f32.mr, k.dot_f32.nr);
    if (dtype == "dot_float64") return std::make_pair(k.dot_f64.mr, k.dot_f64.nr);
    throw std::invalid_argument("tile_sizes: dtype must be 'float32' or 'float64'");
  }, py::arg("dtype"));
  // the row-A kernels' register tile and depth block (mr, nr, kc): the direct strided paths take
  // at most kc channels per group; the NCHW 1x1 in-place path wants planes of >= 4 nr pixels
  t.def("rows_tile", [](const std::string& dtype) {
    const KernelTable& k = kernels();
    if (dtype == "float32") return std::make_tuple(k.rows_f32.mr, k.rows_f32.nr, k.rows_f32.kc);
    if (dtype == "float64") return std::make_tuple(k.rows_f64.mr, k.rows_f64.nr, k.rows_f64.kc);
    throw std::invalid_argument("rows_tile: dtype must be 'float32' or 'float64'");
  }, py::arg("dtype"));
  t.def("split_512_datapath", &split_512_datapath);
  t.def("set_uarch_tuning", &set_uarch_tuning, py::arg("on"));
  t.def("get_uarch_tuning", [] { return uarch_tuning(); });
  t.def("set_conv_algorithm", &set_conv_algorithm, py::arg("name"));
  t.def("get_conv_algorithm", &get_conv_algorithm);
  t.def("conv_algorithms", &conv_algorithms);
  // Whether the Winograd paths take a layer (so tests can tell they really ran when forced):
  // forward and input gradient, and the weight gradient.
  const auto geometry = [](int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                           int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                           int64_t pl, int64_t pr, int64_t dh, int64_t dw, int64_t groups) {
    Conv2dParams p;
    p.batch = n; p.in_c = c; p.in_h = h; p.in_w = w; p.out_c = o;
    p.k_h = kh; p.k_w = kw; p.stride_h = sh; p.stride_w = sw;
    p.pad_top = pt; p.pad_bottom = pb; p.pad_left = pl; p.pad_right = pr;
    p.dil_h = dh; p.dil_w = dw; p.groups = groups;
    FC_CHECK(n >= 0 && c >= 0 && o >= 0 && groups >= 1 && c % groups == 0 && o % groups == 0 &&
                 sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1,
             "winograd_applicable", "bad geometry");
    p.out_h = output_size(h, kh, sh, pt, pb, dh);
    p.out_w = output_size(w, kw, sw, pl, pr, dw);
    return p;
  };
  for (const bool wgrad : {false, true})
    t.def(wgrad ? "winograd_weight_grad_applicable" : "winograd_applicable",
          [geometry, wgrad](int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                            int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pb,
                            int64_t pl, int64_t pr, int64_t dh, int64_t dw, int64_t groups) {
            const Conv2dParams p = geometry(n, c, h, w, o, kh, kw, sh, sw, pt, pb, pl, pr, dh,
                                            dw, groups);
            return wgrad ? winograd_weight_grad_applicable(p) : winograd_applicable(p);
          },
          py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("o"), py::arg("kh"),
          py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pt"), py::arg("pb"),
          py::arg("pl"), py::arg("pr"), py::arg("dh"), py::arg("dw"), py::arg("groups"));
}

}  // namespace fastconv
