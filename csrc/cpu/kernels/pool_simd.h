// Pooling row kernels written once against a vector policy V; each SIMD ISA's pool_f32.cpp
// defines V with its intrinsics and includes this header (contract in pool_kernels.h).
//
// V provides: L (float lanes), F (float vector), M (compare mask), I (int32 vector), and
//   F load(const float*)                     unaligned load of L floats
//   F load_even(const float* p)              p[0], p[2], ..., p[2L - 2] (reads p[0 .. 2L-1])
//   void store(float*, F)
//   M takes(F v, F m)                        lanes where v > m || isnan(v)
//   F sel(M u, F a, F b)                     u ? a : b per lane
//   I seli(M u, I a, I b)
//   F load_even_raw(const float* p), F fix_even(F), I fix_even(I)
//                                            load_even in two steps: lane-wise arithmetic on
//                                            load_even_raw results, then fix_even (also for int
//                                            vectors built alongside)
//   F load_odd_raw(const float* p)           load_even_raw(p + 1) (may read p[2L] no further)
//   F zero(), add(F, F), div(F, F), mul(F, F), set1(float)
//   I set1i(int32_t), I loadi(const int32_t*), void storei(int32_t*, I), I addi(I, I)
//   void store_idx(int64_t* d, I off, int64_t b0, int64_t step)   d[l] = b0 + l*step + off[l]
//   void dup2(const float* s, float* d)      d[2l] = d[2l + 1] = s[l], l < L
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cpu/kernels/pool_kernels.h"

namespace fastconv {
namespace pool_simd {

// Stride-2 rows are loaded in load_even_raw's lane order; the block's results (values and the
// offsets built alongside) are put in order once at the end (fix_s).
template <typename V, int S>
inline typename V::F load_s(const float* p) {
  if constexpr (S == 1)
    return V::load(p);
  else
    return V::load_even_raw(p);
}
template <typename V, int S, typename X>
inline X fix_s(X v) {
  if constexpr (S == 1)
    return v;
  else
    return V::fix_even(v);
}

// NB blocks of L outputs at once: independent compare/select chains hide their latency.
template <typename V, int S, int NB, bool IDX>
inline void max_nchw_block(const float* x, const int32_t* tap_off, int64_t ntaps, float* out,
                           int64_t* idx, int64_t base) {
  using F = typename V::F;
  using I = typename V::I;
  F m[NB];
  I off[NB];
  const I t0 = V::set1i(tap_off[0]);
  for (int b = 0; b < NB; ++b) {
    m[b] = load_s<V, S>(x + b * V::L * S + tap_off[0]);
    off[b] = t0;
  }
  for (int64_t t = 1; t < ntaps; ++t) {
    const int32_t r = tap_off[t];
    const I rv = V::set1i(r);
    for (int b = 0; b < NB; ++b) {
      const F v = load_s<V, S>(x + b * V::L * S + r);
      const auto u = V::takes(v, m[b]);
      m[b] = V::sel(u, v, m[b]);
      if (IDX) off[b] = V::seli(u, rv, off[b]);
    }
  }
  for (int b = 0; b < NB; ++b) {
    V::store(out + b * V::L, fix_s<V, S>(m[b]));
    if (IDX) V::store_idx(idx + b * V::L, fix_s<V, S>(off[b]), base + b * V::L * S, S);
  }
}

template <typename V, int S, bool IDX>
int64_t max_nchw_impl(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n,
                      float* out, int64_t* idx, int64_t base) {
  constexpr int64_t L = V::L;
  int64_t k = 0;
  for (; k + 2 * L <= n; k += 2 * L)
    max_nchw_block<V, S, 2, IDX>(x + k * S, tap_off, ntaps, out + k, IDX ? idx + k : nullptr,
                                 base + k * S);
  for (; k + L <= n; k += L)
    max_nchw_block<V, S, 1, IDX>(x + k * S, tap_off, ntaps, out + k, IDX ? idx + k : nullptr,
                                 base + k * S);
  if (k < n && n >= L) {  // the tail as one block overlapping the previous (same values)
    k = n - L;
    max_nchw_block<V, S, 1, IDX>(x + k * S, tap_off, ntaps, out + k, IDX ? idx + k : nullptr,
                                 base + k * S);
    k = n;
  }
  return k;
}

template <typename V, int S>
int64_t max_nchw(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n, float* out,
                 int64_t* idx, int64_t base) {
  return idx ? max_nchw_impl<V, S, true>(x, tap_off, ntaps, n, out, idx, base)
             : max_nchw_impl<V, S, false>(x, tap_off, ntaps, n, out, idx, base);
}

// Row pass of the 3-wide, 2-apart windows: taps j = 0, 1, 2 are the even, odd and next even
// elements, all in load_even_raw's lane order (the column pass fixes the order once). The
// winning tap's offset is j0 + j.
template <typename V>
inline void max_row3s2_reg(const float* x, typename V::I j0, typename V::F& a, typename V::I& j) {
  a = V::load_even_raw(x);
  j = j0;
  const typename V::F b = V::load_odd_raw(x);
  auto u = V::takes(b, a);
  a = V::sel(u, b, a);
  j = V::seli(u, V::addi(j0, V::set1i(1)), j);
  const typename V::F c = V::load_even_raw(x + 2);
  u = V::takes(c, a);
  a = V::sel(u, c, a);
  j = V::seli(u, V::addi(j0, V::set1i(2)), j);
}

template <typename V>
inline void max_row3s2_block(const float* x, float* m, int32_t* jw) {
  typename V::F a;
  typename V::I j;
  max_row3s2_reg<V>(x, V::set1i(0), a, j);
  V::store(m, a);
  V::storei(jw, j);
}

// max_row3s2 of rows x and x + w folded after the row in (m, jw); row x + w's go to (m2, jw2).
template <typename V, bool IDX>
void max_fused3s2_impl(const float* x, int64_t w, int64_t n, const float* m, const int32_t* jw,
                       float* m2, int32_t* jw2, float* out, int64_t* idx, int64_t base) {
  using I = typename V::I;
  constexpr int64_t L = V::L;
  const int64_t nb = (n + L - 1) / L;
  const I w1 = V::set1i(static_cast<int32_t>(w)), w2 = V::set1i(static_cast<int32_t>(2 * w));
  for (int64_t q = 0; q < nb; ++q) {
    const int64_t k = std::min(q * L, n - L), s = q * L;
    typename V::F a = V::load(m + s), v;
    I off = V::loadi(jw + s), j;
    max_row3s2_reg<V>(x + 2 * k, w1, v, j);
    auto u = V::takes(v, a);
    a = V::sel(u, v, a);
    if (IDX) off = V::seli(u, j, off);
    max_row3s2_reg<V>(x + w + 2 * k, V::set1i(0), v, j);
    V::store(m2 + s, v);
    V::storei(jw2 + s, j);
    u = V::takes(v, a);
    a = V::sel(u, v, a);
    if (IDX) off = V::seli(u, V::addi(j, w2), off);
    V::store(out + k, V::fix_even(a));
    if (IDX) V::store_idx(idx + k, V::fix_even(off), base + 2 * k, 2);
  }
}

template <typename V>
void max_fused3s2(const float* x, int64_t w, int64_t n, const float* m, const int32_t* jw,
                  float* m2, int32_t* jw2, float* out, int64_t* idx, int64_t base) {
  if (idx)
    max_fused3s2_impl<V, true>(x, w, n, m, jw, m2, jw2, out, idx, base);
  else
    max_fused3s2_impl<V, false>(x, w, n, m, jw, m2, jw2, out, idx, base);
}

template <typename V>
void max_row3s2(const float* x, int64_t n, float* m, int32_t* jw) {
  constexpr int64_t L = V::L;
  const int64_t nb = (n + L - 1) / L;
  for (int64_t q = 0; q < nb; ++q) {
    const int64_t k = std::min(q * L, n - L);
    max_row3s2_block<V>(x + 2 * k, m + q * L, jw + q * L);
  }
}

template <typename V, bool IDX, int NH>
void max_col3s2_impl(const float* const* m, const int32_t* const* jw, const int32_t* rel,
                     int64_t nh_rt, int64_t n, float* out, int64_t* idx, int64_t base) {
  using I = typename V::I;
  const int64_t nh = NH > 0 ? NH : nh_rt;
  constexpr int64_t L = V::L;
  const int64_t nb = (n + L - 1) / L;
  for (int64_t q = 0; q < nb; ++q) {
    const int64_t k = std::min(q * L, n - L), s = q * L;
    typename V::F a = V::load(m[0] + s);
    I off = IDX ? V::addi(V::loadi(jw[0] + s), V::set1i(rel[0])) : V::set1i(0);
    for (int64_t i = 1; i < nh; ++i) {
      const typename V::F v = V::load(m[i] + s);
      const auto u = V::takes(v, a);
      a = V::sel(u, v, a);
      if (IDX) off = V::seli(u, V::addi(V::loadi(jw[i] + s), V::set1i(rel[i])), off);
    }
    V::store(out + k, V::fix_even(a));
    if (IDX) V::store_idx(idx + k, V::fix_even(off), base + 2 * k, 2);
  }
}

template <typename V>
void max_col3s2(const float* const* m, const int32_t* const* jw, const int32_t* rel, int64_t nh,
                int64_t n, float* out, int64_t* idx, int64_t base) {
  if (idx && nh == 3)
    max_col3s2_impl<V, true, 3>(m, jw, rel, nh, n, out, idx, base);
  else if (idx)
    max_col3s2_impl<V, true, 0>(m, jw, rel, nh, n, out, idx, base);
  else
    max_col3s2_impl<V, false, 0>(m, jw, rel, nh, n, out, idx, base);
}

template <typename V, int NB, bool IDX>
inline void max_nhwc_block(const float* x, const int64_t* tap_pix, const int32_t* tap_rel,
                           int64_t ntaps, int64_t C, float* out, int64_t* idx, int64_t base) {
  using F = typename V::F;
  using I = typename V::I;
  F m[NB];
  I off[NB];
  const float* p0 = x + tap_pix[0] * C;
  const I r0 = V::set1i(tap_rel[0]);
  for (int b = 0; b < NB; ++b) {
    m[b] = V::load(p0 + b * V::L);
    off[b] = r0;
  }
  for (int64_t t = 1; t < ntaps; ++t) {
    const float* p = x + tap_pix[t] * C;
    const I rv = V::set1i(tap_rel[t]);
    for (int b = 0; b < NB; ++b) {
      const F v = V::load(p + b * V::L);
      const auto u = V::takes(v, m[b]);
      m[b] = V::sel(u, v, m[b]);
      if (IDX) off[b] = V::seli(u, rv, off[b]);
    }
  }
  for (int b = 0; b < NB; ++b) {
    V::store(out + b * V::L, m[b]);
    if (IDX) V::store_idx(idx + b * V::L, off[b], base, 0);
  }
}

template <typename V, bool IDX>
int64_t max_nhwc_impl(const float* x, const int64_t* tap_pix, const int32_t* tap_rel,
                      int64_t ntaps, int64_t C, float* out, int64_t* idx, int64_t base) {
  constexpr int64_t L = V::L;
  int64_t c = 0;
  for (; c + 4 * L <= C; c += 4 * L)
    max_nhwc_block<V, 4, IDX>(x + c, tap_pix, tap_rel, ntaps, C, out + c,
                              IDX ? idx + c : nullptr, base);
  for (; c + L <= C; c += L)
    max_nhwc_block<V, 1, IDX>(x + c, tap_pix, tap_rel, ntaps, C, out + c,
                              IDX ? idx + c : nullptr, base);
  if (c < C && C >= L) {  // the tail as one block overlapping the previous (same values)
    c = C - L;
    max_nhwc_block<V, 1, IDX>(x + c, tap_pix, tap_rel, ntaps, C, out + c,
                              IDX ? idx + c : nullptr, base);
    c = C;
  }
  return c;
}

template <typename V>
int64_t max_nhwc(const float* x, const int64_t* tap_pix, const int32_t* tap_rel, int64_t ntaps,
                 int64_t C, float* out, int64_t* idx, int64_t base) {
  return idx ? max_nhwc_impl<V, true>(x, tap_pix, tap_rel, ntaps, C, out, idx, base)
             : max_nhwc_impl<V, false>(x, tap_pix, tap_rel, ntaps, C, out, idx, base);
}

// Avg: out[k] = (((0 + tap 0) + tap 1) + ...) / d, taps in the order given. The lane-wise sums
// of stride-2 rows stay in load_even_raw's order until the end. A power-of-two divisor is a
// multiplication by its exact reciprocal (the same correctly rounded quotient).
inline bool exact_reciprocal(float d) {
  int e;
  return d > 0 && std::frexp(d, &e) == 0.5f && std::isfinite(1.0f / d);
}

template <typename V>
struct Quot {  // v / divisor
  bool recip;
  typename V::F d;
  explicit Quot(float divisor)
      : recip(exact_reciprocal(divisor)), d(V::set1(recip ? 1.0f / divisor : divisor)) {}
  typename V::F operator()(typename V::F v) const { return recip ? V::mul(v, d) : V::div(v, d); }
};

template <typename V, int S, int NB>
inline void avg_nchw_block(const float* x, const int32_t* tap_off, int64_t ntaps, float* out,
                           const Quot<V>& q) {
  typename V::F acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = V::zero();
  for (int64_t t = 0; t < ntaps; ++t)
    for (int b = 0; b < NB; ++b) acc[b] = V::add(acc[b], load_s<V, S>(x + b * V::L * S + tap_off[t]));
  for (int b = 0; b < NB; ++b) V::store(out + b * V::L, q(fix_s<V, S>(acc[b])));
}

// 2x2 windows 2 apart (taps 0, 1, w, w + 1): each row's pair of vectors is loaded once.
inline bool is_2x2(const int32_t* tap_off, int64_t ntaps) {
  return ntaps == 4 && tap_off[0] == 0 && tap_off[1] == 1 && tap_off[3] == tap_off[2] + 1;
}

template <typename V>
inline void avg_2x2_block(const float* x, int64_t w, float* out, const Quot<V>& q) {
  typename V::F a = V::add(V::zero(), V::load_even_raw(x));
  a = V::add(a, V::load_odd_raw(x));
  a = V::add(a, V::load_even_raw(x + w));
  a = V::add(a, V::load_odd_raw(x + w));
  V::store(out, q(V::fix_even(a)));
}

inline void prefetch_read(const float* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

// A row of 2x2 windows (n >= L) in two sequential passes: the first input row's pair sums go to a
// small scratch (in load_even_raw's order), then the second row is added. Rows 0 and 1 of the
// windows are adjacent in memory, so the input is read as one forward stream instead of two
// interleaved ones (w floats apart), which the hardware prefetchers follow far better. The sums
// are formed in the same order as avg_2x2_block (bitwise identical).
template <typename V>
inline void avg_2x2_row(const float* xr, int64_t w, int64_t n, float* out, const Quot<V>& q) {
  constexpr int64_t L = V::L;
  constexpr int64_t kChunk = 32 * L;  // outputs per pass pair (scratch: kChunk floats)
  // Software prefetch this far (floats) ahead in the stream: 1.5 KB, measured best between 0.5
  // and 3 KB; the hardware prefetchers alone leave the loads waiting. Never faults.
  constexpr int64_t kPfDist = 384;
  alignas(64) float tmp[kChunk];
  const Quot<V> ql = q;  // a local copy: provably not aliased by the stores to out
  const int64_t nfull = n - n % L;
  for (int64_t c0 = 0; c0 < nfull; c0 += kChunk) {
    const int64_t m = std::min<int64_t>(kChunk, nfull - c0);
    const float* xa = xr + 2 * c0;
    for (int64_t k = 0; k < m; k += L) {
      prefetch_read(xa + 2 * k + kPfDist);
      typename V::F a = V::add(V::zero(), V::load_even_raw(xa + 2 * k));
      V::store(tmp + k, V::add(a, V::load_odd_raw(xa + 2 * k)));
    }
    const float* xb = xa + w;
    for (int64_t k = 0; k < m; k += L) {
      prefetch_read(xb + 2 * k + kPfDist);
      typename V::F a = V::add(V::load(tmp + k), V::load_even_raw(xb + 2 * k));
      a = V::add(a, V::load_odd_raw(xb + 2 * k));
      V::store(out + c0 + k, ql(V::fix_even(a)));
    }
  }
  if (nfull < n) avg_2x2_block<V>(xr + 2 * (n - L), w, out + (n - L), q);
}

template <typename V, int S>
int64_t avg_nchw(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n, float* out,
                 float divisor) {
  constexpr int64_t L = V::L;
  if (n < L) return 0;
  const Quot<V> q(divisor);
  if (S == 2 && is_2x2(tap_off, ntaps)) {
    const float* xr = x + tap_off[0];
    const int64_t w = tap_off[2];
    avg_2x2_row<V>(xr, w, n, out, q);
    return n;
  }
  int64_t k = 0;
  for (; k + 2 * L <= n; k += 2 * L)
    avg_nchw_block<V, S, 2>(x + k * S, tap_off, ntaps, out + k, q);
  for (; k + L <= n; k += L) avg_nchw_block<V, S, 1>(x + k * S, tap_off, ntaps, out + k, q);
  if (k < n) avg_nchw_block<V, S, 1>(x + (n - L) * S, tap_off, ntaps, out + (n - L), q);
  return n;
}

// NHWC avg, one output pixel: out[c] = (sum of taps t < ntaps at x[tap_pix[t]*C + c], in order
// from 0) / divisor, 4 vectors of channels at a time.
template <typename V, int NB>
inline void avg_nhwc_block(const float* x, const int64_t* tap_pix, int64_t ntaps, int64_t C,
                           float* out, const Quot<V>& q) {
  typename V::F acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = V::zero();
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* p = x + tap_pix[t] * C;
    for (int b = 0; b < NB; ++b) acc[b] = V::add(acc[b], V::load(p + b * V::L));
  }
  for (int b = 0; b < NB; ++b) V::store(out + b * V::L, q(acc[b]));
}

template <typename V>
int64_t avg_nhwc(const float* x, const int64_t* tap_pix, int64_t ntaps, int64_t C, float* out,
                 float divisor) {
  constexpr int64_t L = V::L;
  if (C < L) return 0;
  const Quot<V> q(divisor);
  int64_t c = 0;
  for (; c + 4 * L <= C; c += 4 * L)
    avg_nhwc_block<V, 4>(x + c, tap_pix, ntaps, C, out + c, q);
  for (; c + L <= C; c += L) avg_nhwc_block<V, 1>(x + c, tap_pix, ntaps, C, out + c, q);
  if (c < C) avg_nhwc_block<V, 1>(x + (C - L), tap_pix, ntaps, C, out + (C - L), q);
  return C;
}

template <typename V>
void dup2(const float* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + V::L <= n; i += V::L) V::dup2(src + i, dst + 2 * i);
  for (; i < n; ++i) dst[2 * i] = dst[2 * i + 1] = src[i];
}

// Global average over hw pixels of C channels, 4 vectors of channels at a time.
template <typename V, int NB>
inline void global_avg_nhwc_block(const float* x, int64_t hw, int64_t C, float* out,
                                  typename V::F dh, typename V::F dw) {
  typename V::F acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = V::zero();
  for (int64_t e = 0; e < hw; ++e)
    for (int b = 0; b < NB; ++b) acc[b] = V::add(acc[b], V::load(x + e * C + b * V::L));
  for (int b = 0; b < NB; ++b) V::store(out + b * V::L, V::div(V::div(acc[b], dh), dw));
}

template <typename V>
int64_t global_avg_nhwc(const float* x, int64_t hw, int64_t C, float* out, float dh, float dw) {
  constexpr int64_t L = V::L;
  if (C < L) return 0;
  const typename V::F vh = V::set1(dh), vw = V::set1(dw);
  int64_t c = 0;
  for (; c + 4 * L <= C; c += 4 * L) global_avg_nhwc_block<V, 4>(x + c, hw, C, out + c, vh, vw);
  for (; c + L <= C; c += L) global_avg_nhwc_block<V, 1>(x + c, hw, C, out + c, vh, vw);
  if (c < C) global_avg_nhwc_block<V, 1>(x + (C - L), hw, C, out + (C - L), vh, vw);
  return C;
}

template <typename V>
void fill(PoolKernelsF32& k) {
  k.lanes = V::L;
  k.max_nchw_s1 = &max_nchw<V, 1>;
  k.max_nchw_s2 = &max_nchw<V, 2>;
  k.max_nhwc = &max_nhwc<V>;
  k.max_row3s2 = &max_row3s2<V>;
  k.max_col3s2 = &max_col3s2<V>;
  k.max_fused3s2 = &max_fused3s2<V>;
  k.avg_nchw_s1 = &avg_nchw<V, 1>;
  k.avg_nchw_s2 = &avg_nchw<V, 2>;
  k.dup2 = &dup2<V>;
  k.global_avg_nhwc = &global_avg_nhwc<V>;
  k.avg_nhwc = &avg_nhwc<V>;
}

}  // namespace pool_simd
}  // namespace fastconv
