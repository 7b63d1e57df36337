// AVX-512F dot-product microkernels, 4 x 3 outputs (contract in kernels.h, body in
// dot_impl.h): 12 zmm partial sums.
#include <immintrin.h>

#include "cpu/kernels/dot_impl.h"

namespace fastconv {
namespace avx512 {
namespace {

struct VF {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(R r) {  // halves added pairwise in a fixed order
    alignas(64) float v[16];
    _mm512_store_ps(v, r);
    float h[8];
    for (int l = 0; l < 8; ++l) h[l] = v[l] + v[l + 8];
    return ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]));
  }
};

struct VD {
  using T = double;
  using R = __m512d;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static double hsum(R r) {
    alignas(64) double v[8];
    _mm512_store_pd(v, r);
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
  }
};

}  // namespace

void dot_f32_4x3(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<VF, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

void dot_f64_4x3(int64_t kc, const double* a, int64_t lda, const double* b, int64_t ldb,
                 double* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<VD, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
