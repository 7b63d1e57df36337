// AVX-512F float32 GEMM microkernel, 6 x 32 (contract in kernels.h): 12 zmm accumulators.
// Compiled with -mavx512f only in this directory; selected at run time when the CPU has it.
#include <immintrin.h>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace avx512 {

void gemm_f32_6x32(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  __m512 acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m512 av = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
    a += 6;
    b += 32;
  }
  if (mr == 6 && nr == 32 && cs_c == 1) {
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      float* r = c + i * rs_c;
      __m512 lo = acc[i][0], hi = acc[i][1];
      if (accumulate) {
        lo = _mm512_add_ps(lo, _mm512_loadu_ps(r));
        hi = _mm512_add_ps(hi, _mm512_loadu_ps(r + 16));
      }
      _mm512_storeu_ps(r, lo);
      _mm512_storeu_ps(r + 16, hi);
    }
    return;
  }
  alignas(64) float tile[6 * 32];
  for (int i = 0; i < 6; ++i) {
    _mm512_store_ps(tile + i * 32, acc[i][0]);
    _mm512_store_ps(tile + i * 32 + 16, acc[i][1]);
  }
  store_tile(tile, 32, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
