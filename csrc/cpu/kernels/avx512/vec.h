// AVX-512F vector policies shared by this directory's kernel bodies (gemm_6x2_impl.h,
// dot_impl.h): one lane type each, with the operations those bodies use.
#pragma once
#include <immintrin.h>

namespace fastconv {
namespace avx512 {

struct VF {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
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
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static double hsum(R r) {
    alignas(64) double v[8];
    _mm512_store_pd(v, r);
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
  }
};

}  // namespace avx512
}  // namespace fastconv
