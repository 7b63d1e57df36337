// Portable depthwise kernels (contract in kernels.h): the vector policy is a single scalar.
// Also serves NEON builds (see dispatch.cpp).
#include "cpu/kernels/depthwise_impl.h"

namespace fastconv {
namespace scalar {
namespace {

template <typename TT>
struct Pol {
  using T = TT;
  using V = TT;
  static constexpr int64_t W = 1;
  static V zero() { return T(0); }
  static V set1(T v) { return v; }
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
  static V load_zl(const T*) { return T(0); }  // one lane: the zero only
  static V load_zh(const T*) { return T(0); }
};

}  // namespace

DwKernels<float> depthwise_f32() { return dwimpl::table<Pol<float>>(); }
DwKernels<double> depthwise_f64() { return dwimpl::table<Pol<double>>(); }

}  // namespace scalar
}  // namespace fastconv
