// AVX-512F float32 pooling row kernels: the vector policy for pool_simd.h (contract in
// pool_kernels.h). 16 float lanes; masks are __mmask16.
#include <immintrin.h>

#include "cpu/kernels/pool_simd.h"

namespace fastconv {
namespace avx512 {
namespace {

struct V {
  static constexpr int L = 16;
  using F = __m512;
  using M = __mmask16;
  using I = __m512i;
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F load_even(const float* p) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
  }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static M takes(F v, F m) {
    return static_cast<M>(_mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) |
                          _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
  }
  static F sel(M u, F a, F b) { return _mm512_mask_blend_ps(u, b, a); }
  static I seli(M u, I a, I b) { return _mm512_mask_blend_epi32(u, b, a); }
  static I set1i(int32_t v) { return _mm512_set1_epi32(v); }
  static void store_idx(int64_t* d, I off, int64_t b0, int64_t step) {
    const __m512i lane = _mm512_set_epi64(b0 + 7 * step, b0 + 6 * step, b0 + 5 * step,
                                          b0 + 4 * step, b0 + 3 * step, b0 + 2 * step, b0 + step,
                                          b0);
    const __m512i eight = _mm512_set1_epi64(8 * step);
    const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(off));
    const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(off, 1));
    _mm512_storeu_si512(d, _mm512_add_epi64(lo, lane));
    _mm512_storeu_si512(d + 8, _mm512_add_epi64(hi, _mm512_add_epi64(lane, eight)));
  }
  static void dup2(const float* s, float* d) {
    const F v = _mm512_loadu_ps(s);
    const __m512i lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i hi = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    _mm512_storeu_ps(d, _mm512_permutexvar_ps(lo, v));
    _mm512_storeu_ps(d + 16, _mm512_permutexvar_ps(hi, v));
  }
};

}  // namespace

void fill_pool_kernels_f32(PoolKernelsF32& k) { pool_simd::fill<V>(k); }

}  // namespace avx512
}  // namespace fastconv
