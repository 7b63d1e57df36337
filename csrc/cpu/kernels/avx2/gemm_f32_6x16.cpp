// AVX2/FMA float32 GEMM microkernel, 6 x 16 (contract in kernels.h).
// 12 ymm accumulators (6 rows x 2 vectors), 2 for B, 1 for the A broadcast.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"
#include "cpu/kernels/avx2/vec.h"

namespace fastconv {
namespace avx2 {

void gemm_f32_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#define FC_STEP(k)                                          \
  {                                                         \
    const __m256 b0 = _mm256_loadu_ps(b + (k)*16);          \
    const __m256 b1 = _mm256_loadu_ps(b + (k)*16 + 8);      \
    __m256 av = _mm256_broadcast_ss(a + (k)*6 + 0);         \
    c00 = _mm256_fmadd_ps(av, b0, c00);                     \
    c01 = _mm256_fmadd_ps(av, b1, c01);                     \
    av = _mm256_broadcast_ss(a + (k)*6 + 1);                \
    c10 = _mm256_fmadd_ps(av, b0, c10);                     \
    c11 = _mm256_fmadd_ps(av, b1, c11);                     \
    av = _mm256_broadcast_ss(a + (k)*6 + 2);                \
    c20 = _mm256_fmadd_ps(av, b0, c20);                     \
    c21 = _mm256_fmadd_ps(av, b1, c21);                     \
    av = _mm256_broadcast_ss(a + (k)*6 + 3);                \
    c30 = _mm256_fmadd_ps(av, b0, c30);                     \
    c31 = _mm256_fmadd_ps(av, b1, c31);                     \
    av = _mm256_broadcast_ss(a + (k)*6 + 4);                \
    c40 = _mm256_fmadd_ps(av, b0, c40);                     \
    c41 = _mm256_fmadd_ps(av, b1, c41);                     \
    av = _mm256_broadcast_ss(a + (k)*6 + 5);                \
    c50 = _mm256_fmadd_ps(av, b0, c50);                     \
    c51 = _mm256_fmadd_ps(av, b1, c51);                     \
  }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 16 * 16), _MM_HINT_T0);
    FC_STEP(0) FC_STEP(1) FC_STEP(2) FC_STEP(3)
    a += 24;
    b += 64;
  }
  for (; k < kc; ++k) {
    FC_STEP(0)
    a += 6;
    b += 16;
  }
#undef FC_STEP
  if (mr == 6 && nr == 16 && cs_c == 1) {
    float* r[6] = {c, c + rs_c, c + 2 * rs_c, c + 3 * rs_c, c + 4 * rs_c, c + 5 * rs_c};
    const __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    for (int i = 0; i < 6; ++i) {
      __m256 lo = acc[2 * i], hi = acc[2 * i + 1];
      if (accumulate) {
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(r[i]));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(r[i] + 8));
      }
      _mm256_storeu_ps(r[i], lo);
      _mm256_storeu_ps(r[i] + 8, hi);
    }
    return;
  }
  alignas(32) float tile[6 * 16];
  _mm256_store_ps(tile + 0, c00);  _mm256_store_ps(tile + 8, c01);
  _mm256_store_ps(tile + 16, c10); _mm256_store_ps(tile + 24, c11);
  _mm256_store_ps(tile + 32, c20); _mm256_store_ps(tile + 40, c21);
  _mm256_store_ps(tile + 48, c30); _mm256_store_ps(tile + 56, c31);
  _mm256_store_ps(tile + 64, c40); _mm256_store_ps(tile + 72, c41);
  _mm256_store_ps(tile + 80, c50); _mm256_store_ps(tile + 88, c51);
  store_tile(tile, 16, c, rs_c, cs_c, mr, nr, accumulate);
}

// In place (kernels.h): the shared 6 x (2 vectors) body.
void gemm_sap_f32_6x16(int64_t kc, const float* a, int64_t lda, const float* const* b, int64_t bo,
                       float* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                       bool accumulate) {
  gemm_sap_6x2<VF>(kc, a, lda, b, bo, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx2
}  // namespace fastconv
