// AVX2/FMA dot-product microkernels, 4 x 3 outputs (contract in kernels.h, body in
// dot_impl.h): 12 ymm partial sums, 3 B rows and 1 A row loaded per step.
#include <immintrin.h>

#include "cpu/kernels/dot_impl.h"

namespace fastconv {
namespace avx2 {
namespace {

struct VF {
  using T = float;
  using R = __m256;
  static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(R r) {  // ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
  }
};

struct VD {
  using T = double;
  using R = __m256d;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static double hsum(R r) {  // (l0+l2) + (l1+l3)
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(r), _mm256_extractf128_pd(r, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
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

}  // namespace avx2
}  // namespace fastconv
