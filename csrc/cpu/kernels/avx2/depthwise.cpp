// AVX2/FMA depthwise kernels (contract in kernels.h; shared code in depthwise_impl.h).
#include <immintrin.h>

#include "cpu/kernels/depthwise_impl.h"

namespace fastconv {
namespace avx2 {
namespace {

struct PolF32 {
  using T = float;
  using V = __m256;
  static constexpr int64_t W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T v) { return _mm256_set1_ps(v); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V load_zl(const T* p) {  // {0, p[0..6]}
    const V v = _mm256_permutevar8x32_ps(load(p), _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6));
    return _mm256_blend_ps(v, zero(), 1);
  }
  static V load_zh(const T* p) {  // {p[0..6], 0}
    return _mm256_maskload_ps(p, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0));
  }
};

struct PolF64 {
  using T = double;
  using V = __m256d;
  static constexpr int64_t W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T v) { return _mm256_set1_pd(v); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V load_zl(const T* p) {  // {0, p[0..2]}
    return _mm256_blend_pd(_mm256_permute4x64_pd(load(p), 0x90), zero(), 1);
  }
  static V load_zh(const T* p) {  // {p[0..2], 0}
    return _mm256_maskload_pd(p, _mm256_setr_epi64x(-1, -1, -1, 0));
  }
};

}  // namespace

DwKernels<float> depthwise_f32() { return dwimpl::table<PolF32>(); }
DwKernels<double> depthwise_f64() { return dwimpl::table<PolF64>(); }

}  // namespace avx2
}  // namespace fastconv
