// Portable small-channel block products (contract in kernels.h, body in smallc_impl.h): the
// vector policy is one scalar lane (also serves NEON builds, see dispatch.cpp).
#include "cpu/kernels/smallc_impl.h"

namespace fastconv {
namespace scalar {
namespace {

template <typename TT>
struct S {
  using T = TT;
  using R = TT;
  static constexpr int W = 1;
  static R zero() { return T(0); }
  static R load(const T* p) { return *p; }
  static void store(T* p, R v) { *p = v; }
  static void store_n(T*, R, int) {}  // never called: W == 1 has no partial vectors
  static R bcast(const T* p) { return *p; }
  static R fma(R a, R b, R c) { return a * b + c; }
};

}  // namespace

SmallcKernel<float> smallc_f32() { return smallcimpl::table<S<float>>(); }
SmallcKernel<double> smallc_f64() { return smallcimpl::table<S<double>>(); }

}  // namespace scalar
}  // namespace fastconv
