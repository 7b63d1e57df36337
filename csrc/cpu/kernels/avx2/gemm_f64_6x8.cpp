// AVX2/FMA float64 GEMM microkernel, 6 x 8 (contract in kernels.h): 12 ymm accumulators.
#include <immintrin.h>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace avx2 {

void gemm_f64_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  __m256d acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_loadu_pd(b);
    const __m256d b1 = _mm256_loadu_pd(b + 4);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m256d av = _mm256_broadcast_sd(a + i);
      acc[i][0] = _mm256_fmadd_pd(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_pd(av, b1, acc[i][1]);
    }
    a += 6;
    b += 8;
  }
  if (mr == 6 && nr == 8 && cs_c == 1) {
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      double* r = c + i * rs_c;
      __m256d lo = acc[i][0], hi = acc[i][1];
      if (accumulate) {
        lo = _mm256_add_pd(lo, _mm256_loadu_pd(r));
        hi = _mm256_add_pd(hi, _mm256_loadu_pd(r + 4));
      }
      _mm256_storeu_pd(r, lo);
      _mm256_storeu_pd(r + 4, hi);
    }
    return;
  }
  alignas(32) double tile[6 * 8];
  for (int i = 0; i < 6; ++i) {
    _mm256_store_pd(tile + i * 8, acc[i][0]);
    _mm256_store_pd(tile + i * 8 + 4, acc[i][1]);
  }
  store_tile(tile, 8, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx2
}  // namespace fastconv
