// AVX-512F float64 GEMM microkernel, 6 x 16 (contract in kernels.h): 12 zmm accumulators.
// Compiled with -mavx512f only in this directory; selected at run time when the CPU has it.
#include <immintrin.h>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace avx512 {

void gemm_f64_6x16(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  __m512d acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512d b0 = _mm512_loadu_pd(b);
    const __m512d b1 = _mm512_loadu_pd(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m512d av = _mm512_set1_pd(a[i]);
      acc[i][0] = _mm512_fmadd_pd(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_pd(av, b1, acc[i][1]);
    }
    a += 6;
    b += 16;
  }
  if (mr == 6 && nr == 16 && cs_c == 1) {
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      double* r = c + i * rs_c;
      __m512d lo = acc[i][0], hi = acc[i][1];
      if (accumulate) {
        lo = _mm512_add_pd(lo, _mm512_loadu_pd(r));
        hi = _mm512_add_pd(hi, _mm512_loadu_pd(r + 8));
      }
      _mm512_storeu_pd(r, lo);
      _mm512_storeu_pd(r + 8, hi);
    }
    return;
  }
  alignas(64) double tile[6 * 16];
  for (int i = 0; i < 6; ++i) {
    _mm512_store_pd(tile + i * 16, acc[i][0]);
    _mm512_store_pd(tile + i * 16 + 8, acc[i][1]);
  }
  store_tile(tile, 16, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
