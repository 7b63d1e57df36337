// AVX-512F depthwise kernels (contract in kernels.h; shared code in depthwise_impl.h).
#include <immintrin.h>

#include "cpu/kernels/depthwise_impl.h"

namespace fastconv {
namespace avx512 {
namespace {

struct PolF32 {
  using T = float;
  using V = __m512;
  static constexpr int64_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T v) { return _mm512_set1_ps(v); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V load_zl(const T* p) {  // {0, p[0..14]}
    const __m512i idx = _mm512_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
    return _mm512_maskz_permutexvar_ps(__mmask16(0xFFFE), idx, load(p));
  }
  static V load_zh(const T* p) { return _mm512_maskz_loadu_ps(__mmask16(0x7FFF), p); }
};

struct PolF64 {
  using T = double;
  using V = __m512d;
  static constexpr int64_t W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T v) { return _mm512_set1_pd(v); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V load_zl(const T* p) {  // {0, p[0..6]}
    const __m512i idx = _mm512_setr_epi64(0, 0, 1, 2, 3, 4, 5, 6);
    return _mm512_maskz_permutexvar_pd(__mmask8(0xFE), idx, load(p));
  }
  static V load_zh(const T* p) { return _mm512_maskz_loadu_pd(__mmask8(0x7F), p); }
};

}  // namespace

DwKernels<float> depthwise_f32() { return dwimpl::table<PolF32>(); }
DwKernels<double> depthwise_f64() { return dwimpl::table<PolF64>(); }

}  // namespace avx512
}  // namespace fastconv
