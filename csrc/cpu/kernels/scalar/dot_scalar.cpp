// Portable dot-product microkernels (contract in kernels.h, body in dot_impl.h): 8 scalar
// partial sums per output so the compiler may use the baseline vector unit.
#include "cpu/kernels/dot_impl.h"

namespace fastconv {
namespace scalar {
namespace {

template <typename TT>
struct Vec {  // 8 lanes held as a plain array: fixed order, vectorisable
  using T = TT;
  struct R { T v[8]; };
  static constexpr int W = 8;
  static R zero() { return R{}; }
  static R load(const T* p) {
    R r;
    for (int l = 0; l < 8; ++l) r.v[l] = p[l];
    return r;
  }
  static R fma(const R& a, const R& b, R c) {
    for (int l = 0; l < 8; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static T hsum(const R& r) {
    return ((r.v[0] + r.v[4]) + (r.v[2] + r.v[6])) + ((r.v[1] + r.v[5]) + (r.v[3] + r.v[7]));
  }
};

}  // namespace

void dot_f32_4x3(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<Vec<float>, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

void dot_f64_4x3(int64_t kc, const double* a, int64_t lda, const double* b, int64_t ldb,
                 double* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<Vec<double>, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace scalar
}  // namespace fastconv
