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
  static F load_even_raw(const float* p) { return load_even(p); }  // one permute: in order
  static F load_odd_raw(const float* p) { return load_even(p + 1); }
  static F fix_even(F v) { return v; }
  static I fix_even(I v) { return v; }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static M takes(F v, F m) {
    return static_cast<M>(_mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) |
                          _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
  }
  static F sel(M u, F a, F b) { return _mm512_mask_blend_ps(u, b, a); }
  static I seli(M u, I a, I b) { return _mm512_mask_blend_epi32(u, b, a); }
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static I set1i(int32_t v) { return _mm512_set1_epi32(v); }
  static I loadi(const int32_t* p) { return _mm512_loadu_si512(p); }
  static void storei(int32_t* p, I v) { _mm512_storeu_si512(p, v); }
  static I addi(I a, I b) { return _mm512_add_epi32(a, b); }
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

// 8 outputs: idx (8 x int64) against taps {0, 1} + i*dhw; 16-bit store mask with bits 2k, 2k + 1
// from output k's two compares.
inline bool bwd_k2_block(const float* dy, const int64_t* idx, int64_t nh, int64_t dhw, float* dst,
                         int64_t drs, int64_t base) {
  const __m512i rel = _mm512_sub_epi64(
      _mm512_loadu_si512(idx),
      _mm512_add_epi64(_mm512_set1_epi64(base), _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0)));
  const __m512 d8 = _mm512_castps256_ps512(_mm256_add_ps(_mm256_loadu_ps(dy), _mm256_setzero_ps()));
  const __m512 dd = _mm512_permutexvar_ps(
      _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0), d8);
  const __m512i ones = _mm512_set1_epi32(-1);
  __mmask8 acc = 0;
  for (int64_t i = 0; i < nh; ++i) {
    const __m512i t = _mm512_set1_epi64(i * dhw);
    const __mmask8 e0 = _mm512_cmpeq_epi64_mask(rel, t);
    const __mmask8 e1 = _mm512_cmpeq_epi64_mask(rel, _mm512_add_epi64(t, _mm512_set1_epi64(1)));
    acc = static_cast<__mmask8>(acc | e0 | e1);
    const __m512i m = _mm512_mask_blend_epi32(0xAAAA, _mm512_maskz_mov_epi64(e0, ones),
                                              _mm512_maskz_mov_epi64(e1, ones));
    _mm512_storeu_ps(dst + i * drs, _mm512_maskz_mov_ps(_mm512_test_epi32_mask(m, m), dd));
  }
  return acc == 0xFF;
}

int64_t max_bwd_nchw_k2(const float* dy, const int64_t* idx, int64_t n, int64_t nh, int64_t dhw,
                        float* dst, int64_t drs, int64_t base) {
  if (n < 8) return 0;
  for (int64_t k = 0;; k += 8) {
    if (k + 8 > n) k = n - 8;  // the tail as one block overlapping the previous (same values)
    if (!bwd_k2_block(dy + k, idx + k, nh, dhw, dst + 2 * k, drs, base + 2 * k)) return k;
    if (k + 8 == n) return n;
  }
}

// 16 channels: idx (2 x 8 int64) against each tap; the two 8-bit masks form the 16-lane mask.
inline bool bwd_nhwc_block(const float* dy, const int64_t* idx, const int64_t* tap_pix,
                           const int32_t* tap_rel, int64_t ntaps, int64_t C, float* dst,
                           int64_t base) {
  const __m512i b = _mm512_set1_epi64(base);
  const __m512i r0 = _mm512_sub_epi64(_mm512_loadu_si512(idx), b);
  const __m512i r1 = _mm512_sub_epi64(_mm512_loadu_si512(idx + 8), b);
  const __m512 d = _mm512_add_ps(_mm512_loadu_ps(dy), _mm512_setzero_ps());
  unsigned acc = 0;
  for (int64_t t = 0; t < ntaps; ++t) {
    const __m512i tv = _mm512_set1_epi64(tap_rel[t]);
    const unsigned m = static_cast<unsigned>(_mm512_cmpeq_epi64_mask(r0, tv)) |
                       (static_cast<unsigned>(_mm512_cmpeq_epi64_mask(r1, tv)) << 8);
    acc |= m;
    _mm512_storeu_ps(dst + tap_pix[t] * C, _mm512_maskz_mov_ps(static_cast<__mmask16>(m), d));
  }
  return acc == 0xFFFF;
}

int64_t max_bwd_nhwc(const float* dy, const int64_t* idx, const int64_t* tap_pix,
                     const int32_t* tap_rel, int64_t ntaps, int64_t C, float* dst, int64_t base) {
  if (C < 16) return 0;
  for (int64_t c = 0;; c += 16) {
    if (c + 16 > C) c = C - 16;
    if (!bwd_nhwc_block(dy + c, idx + c, tap_pix, tap_rel, ntaps, C, dst + c, base)) return c;
    if (c + 16 == C) return C;
  }
}

int64_t check_row(const int64_t* idx, int64_t n, const int64_t* first, const int64_t* cnt,
                  int64_t base, int64_t nh, int64_t dhw) {
  const __m512i b = _mm512_set1_epi64(base), step = _mm512_set1_epi64(dhw);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m512i w = _mm512_loadu_si512(cnt + k);
    __m512i r = _mm512_sub_epi64(_mm512_loadu_si512(idx + k),
                                 _mm512_add_epi64(_mm512_loadu_si512(first + k), b));
    __mmask8 ok = _mm512_cmplt_epu64_mask(r, w);
    for (int64_t i = 1; i < nh; ++i) {
      r = _mm512_sub_epi64(r, step);
      ok = static_cast<__mmask8>(ok | _mm512_cmplt_epu64_mask(r, w));
    }
    if (ok != 0xFF) return k;
  }
  for (; k < n; ++k) {
    const uint64_t rel = static_cast<uint64_t>(idx[k]) - static_cast<uint64_t>(base + first[k]);
    bool ok = false;
    for (int64_t i = 0; i < nh; ++i)
      ok |= rel - static_cast<uint64_t>(i * dhw) < static_cast<uint64_t>(cnt[k]);
    if (!ok) return k;
  }
  return n;
}

int64_t check_run(const int64_t* idx, int64_t n, int64_t base, int64_t cnt, int64_t nh,
                  int64_t dhw) {
  const __m512i b = _mm512_set1_epi64(base), w = _mm512_set1_epi64(cnt);
  const __m512i step = _mm512_set1_epi64(dhw);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m512i r = _mm512_sub_epi64(_mm512_loadu_si512(idx + k), b);
    __mmask8 ok = _mm512_cmplt_epu64_mask(r, w);
    for (int64_t i = 1; i < nh; ++i) {
      r = _mm512_sub_epi64(r, step);
      ok = static_cast<__mmask8>(ok | _mm512_cmplt_epu64_mask(r, w));
    }
    if (ok != 0xFF) return k;
  }
  return k;  // the caller checks the tail
}

}  // namespace

void fill_pool_kernels_f32(PoolKernelsF32& k) {
  k.check_row = &check_row;
  k.check_run = &check_run;
  pool_simd::fill<V>(k);
  k.max_bwd_nchw_k2 = &max_bwd_nchw_k2;
  k.max_bwd_nhwc = &max_bwd_nhwc;
}

}  // namespace avx512
}  // namespace fastconv
