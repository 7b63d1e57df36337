// AVX2 float32 pooling row kernels: the vector policy for pool_simd.h (contract in
// pool_kernels.h). 8 float lanes; masks are float vectors (all-ones lanes).
#include <immintrin.h>

#include "cpu/kernels/pool_simd.h"

namespace fastconv {
namespace avx2 {
namespace {

struct V {
  static constexpr int L = 8;
  using F = __m256;
  using M = __m256;
  using I = __m256i;
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F load_even(const float* p) {
    const F a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    // [a0 a2 b0 b2 | a4 a6 b4 b6] -> 64-bit chunks 0, 2, 1, 3
    const F s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
  }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static M takes(F v, F m) {
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static F sel(M u, F a, F b) { return _mm256_blendv_ps(b, a, u); }
  static I seli(M u, I a, I b) {
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), u));
  }
  static I set1i(int32_t v) { return _mm256_set1_epi32(v); }
  static void store_idx(int64_t* d, I off, int64_t b0, int64_t step) {
    const __m256i lane = _mm256_set_epi64x(b0 + 3 * step, b0 + 2 * step, b0 + step, b0);
    const __m256i four = _mm256_set1_epi64x(4 * step);
    const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(off));
    const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(off, 1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_add_epi64(lo, lane));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 4),
                        _mm256_add_epi64(hi, _mm256_add_epi64(lane, four)));
  }
  static void dup2(const float* s, float* d) {
    const F v = _mm256_loadu_ps(s);
    const F lo = _mm256_unpacklo_ps(v, v), hi = _mm256_unpackhi_ps(v, v);
    _mm256_storeu_ps(d, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(d + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
};

}  // namespace

void fill_pool_kernels_f32(PoolKernelsF32& k) { pool_simd::fill<V>(k); }

}  // namespace avx2
}  // namespace fastconv
