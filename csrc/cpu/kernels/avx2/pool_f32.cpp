// AVX2 float32 pooling row kernels: the vector policy for pool_simd.h (contract in
// pool_kernels.h). 8 float lanes; masks are float vectors (all-ones lanes).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

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
  // load_even without its final cross-lane step: the even elements in the order
  // [0 2 16 18 | 4 6 20 22]...; fix_even puts a vector built from such loads in order.
  static F load_even_raw(const float* p) {
    return _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
  }
  static F load_odd_raw(const float* p) {
    return _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(3, 1, 3, 1));
  }
  static F fix_even(F v) { return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)); }
  static I fix_even(I v) { return _mm256_permute4x64_epi64(v, 0xD8); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static M takes(F v, F m) {
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static F sel(M u, F a, F b) { return _mm256_blendv_ps(b, a, u); }
  static I seli(M u, I a, I b) {
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), u));
  }
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static I set1i(int32_t v) { return _mm256_set1_epi32(v); }
  static I loadi(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void storei(int32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static I addi(I a, I b) { return _mm256_add_epi32(a, b); }
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

// 4 outputs: idx (4 x int64) against taps {0, 1} + i*dhw; the two 32-bit halves of 64-bit lane k
// are dst columns 2k and 2k + 1. Returns false when some output matched no tap.
inline bool bwd_k2_block(const float* dy, const int64_t* idx, int64_t nh, int64_t dhw, float* dst,
                         int64_t drs, int64_t base) {
  const __m256i rel = _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)),
                                       _mm256_set_epi64x(base + 6, base + 4, base + 2, base));
  const __m128 d4 = _mm_add_ps(_mm_loadu_ps(dy), _mm_setzero_ps());
  const __m256 dd = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d4),
                                             _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0));
  __m256i acc = _mm256_setzero_si256();
  for (int64_t i = 0; i < nh; ++i) {
    const __m256i t = _mm256_set1_epi64x(i * dhw);
    const __m256i e0 = _mm256_cmpeq_epi64(rel, t);
    const __m256i e1 = _mm256_cmpeq_epi64(rel, _mm256_add_epi64(t, _mm256_set1_epi64x(1)));
    const __m256i m = _mm256_blend_epi32(e0, e1, 0xAA);
    acc = _mm256_or_si256(acc, m);
    _mm256_storeu_ps(dst + i * drs, _mm256_and_ps(_mm256_castsi256_ps(m), dd));
  }
  return _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(acc, _mm256_setzero_si256()))) == 0;
}

int64_t max_bwd_nchw_k2(const float* dy, const int64_t* idx, int64_t n, int64_t nh, int64_t dhw,
                        float* dst, int64_t drs, int64_t base) {
  if (n < 4) return 0;
  for (int64_t k = 0;; k += 4) {
    if (k + 4 > n) k = n - 4;  // the tail as one block overlapping the previous (same values)
    if (!bwd_k2_block(dy + k, idx + k, nh, dhw, dst + 2 * k, drs, base + 2 * k)) return k;
    if (k + 4 == n) return n;
  }
}

// 8 channels: idx (2 x 4 int64) against each tap; 64-bit masks narrowed to 32-bit lanes.
inline bool bwd_nhwc_block(const float* dy, const int64_t* idx, const int64_t* tap_pix,
                           const int32_t* tap_rel, int64_t ntaps, int64_t C, float* dst,
                           int64_t base) {
  const __m256i b = _mm256_set1_epi64x(base);
  const __m256i r0 = _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), b);
  const __m256i r1 =
      _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 4)), b);
  const __m256 d = _mm256_add_ps(_mm256_loadu_ps(dy), _mm256_setzero_ps());
  __m256 acc = _mm256_setzero_ps();
  for (int64_t t = 0; t < ntaps; ++t) {
    const __m256i tv = _mm256_set1_epi64x(tap_rel[t]);
    const __m256 e0 = _mm256_castsi256_ps(_mm256_cmpeq_epi64(r0, tv));
    const __m256 e1 = _mm256_castsi256_ps(_mm256_cmpeq_epi64(r1, tv));
    const __m256 s = _mm256_shuffle_ps(e0, e1, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
    acc = _mm256_or_ps(acc, m);
    _mm256_storeu_ps(dst + tap_pix[t] * C, _mm256_and_ps(m, d));
  }
  return _mm256_movemask_ps(acc) == 0xFF;
}

int64_t max_bwd_nhwc(const float* dy, const int64_t* idx, const int64_t* tap_pix,
                     const int32_t* tap_rel, int64_t ntaps, int64_t C, float* dst, int64_t base) {
  if (C < 8) return 0;
  for (int64_t c = 0;; c += 8) {
    if (c + 8 > C) c = C - 8;
    if (!bwd_nhwc_block(dy + c, idx + c, tap_pix, tap_rel, ntaps, C, dst + c, base)) return c;
    if (c + 8 == C) return C;
  }
}

// 8 channels of one pixel against each candidate.
inline __m256 gather_nhwc_block(const float* dy, const int32_t* idx, const int64_t* dy_off,
                                const int64_t* id_off, int64_t ncand, __m256i pv) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t t = 0; t < ncand; ++t) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + id_off[t]));
    const __m256 m = _mm256_castsi256_ps(_mm256_cmpeq_epi32(v, pv));
    acc = _mm256_add_ps(acc, _mm256_and_ps(m, _mm256_loadu_ps(dy + dy_off[t])));
  }
  return acc;
}

int64_t max_bwd_gather_nhwc(const float* dy, const int32_t* idx, const int64_t* dy_off,
                            const int64_t* id_off, int64_t ncand, int32_t pos, int64_t C,
                            float* dst) {
  if (C < 8) return 0;
  const __m256i pv = _mm256_set1_epi32(pos);
  int64_t c = 0;
  for (; c + 8 <= C; c += 8)
    _mm256_storeu_ps(dst + c, gather_nhwc_block(dy + c, idx + c, dy_off, id_off, ncand, pv));
  if (c < C)  // the tail as one block overlapping the previous (same values)
    _mm256_storeu_ps(dst + C - 8,
                     gather_nhwc_block(dy + C - 8, idx + C - 8, dy_off, id_off, ncand, pv));
  return C;
}

// k3s2 gather, NCHW: 8 outputs o .. o + 7 give the 16 padded columns 2o .. 2o + 15: even columns
// ("edges", taps j = 2 of o - 1 and j = 0 of o) and odd ones ("centres", tap j = 1 of o),
// interleaved at the end.
template <int NR>
inline void k3s2_nchw_rows(const float* const* dy, const int32_t* const* id, int64_t nr,
                           int32_t pos, int64_t n, float* dst) {
  const int64_t rows = NR > 0 ? NR : nr;
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), one = _mm256_set1_epi32(1);
  for (int64_t o = 0; o < n + 1; o += 8) {
    const __m256i te = _mm256_add_epi32(_mm256_set1_epi32(pos + static_cast<int32_t>(2 * o)), lane2);
    const __m256i tc = _mm256_add_epi32(te, one);
    __m256 e = _mm256_setzero_ps(), c = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; ++r) {
      const __m256i ip = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(id[r] + o - 1));
      const __m256i ic = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(id[r] + o));
      const __m256 dp = _mm256_loadu_ps(dy[r] + o - 1), dc = _mm256_loadu_ps(dy[r] + o);
      e = _mm256_add_ps(e, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ip, te)), dp));
      e = _mm256_add_ps(e, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ic, te)), dc));
      c = _mm256_add_ps(c, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ic, tc)), dc));
    }
    const __m256 lo = _mm256_unpacklo_ps(e, c), hi = _mm256_unpackhi_ps(e, c);
    _mm256_storeu_ps(dst + 2 * o, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 2 * o + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
}

bool max_bwd_k3s2_nchw(const float* const* dy, const int32_t* const* id, int64_t nr, int32_t pos,
                       int64_t n, float* dst) {
  if (nr == 1)
    k3s2_nchw_rows<1>(dy, id, nr, pos, n, dst);
  else if (nr == 2)
    k3s2_nchw_rows<2>(dy, id, nr, pos, n, dst);
  else
    k3s2_nchw_rows<0>(dy, id, nr, pos, n, dst);
  return true;
}

// k3s2 gather, NHWC: outputs o = 0 .. n in order (sequential reads of the rows), 8 channels at a
// time; the C % 8 tail as one block overlapping the previous (same values).
template <int NR>
inline void k3s2_nhwc_rows(const float* const* dy, const int32_t* const* id, int64_t nr,
                           int32_t pos, int64_t n, int64_t C, float* dst) {
  const int64_t rows = NR > 0 ? NR : nr;
  const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
  __m256i te = _mm256_set1_epi32(pos);
  for (int64_t o = 0; o <= n; ++o, te = _mm256_add_epi32(te, two)) {
    const __m256i tc = _mm256_add_epi32(te, one);
    float* de = dst + 2 * o * C;
    for (int64_t c = 0;; c += 8) {
      if (c + 8 > C) c = C - 8;
      __m256 e = _mm256_setzero_ps(), m = _mm256_setzero_ps();
      for (int64_t r = 0; r < rows; ++r) {
        const int32_t* ir = id[r] + o * C + c;
        const float* dr = dy[r] + o * C + c;
        const __m256i ip = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ir - C));
        const __m256i ic = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ir));
        const __m256 dp = _mm256_loadu_ps(dr - C), dc = _mm256_loadu_ps(dr);
        e = _mm256_add_ps(e, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ip, te)), dp));
        e = _mm256_add_ps(e, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ic, te)), dc));
        m = _mm256_add_ps(m, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(ic, tc)), dc));
      }
      _mm256_storeu_ps(de + c, e);
      _mm256_storeu_ps(de + C + c, m);
      if (c + 8 == C) break;
    }
  }
}

bool max_bwd_k3s2_nhwc(const float* const* dy, const int32_t* const* id, int64_t nr, int32_t pos,
                       int64_t n, int64_t C, float* dst) {
  if (C < 8) return false;
  if (nr == 1)
    k3s2_nhwc_rows<1>(dy, id, nr, pos, n, C, dst);
  else if (nr == 2)
    k3s2_nhwc_rows<2>(dy, id, nr, pos, n, C, dst);
  else
    k3s2_nhwc_rows<0>(dy, id, nr, pos, n, C, dst);
  return true;
}

// Narrow + check, 8 indices at a time: the low dwords (in order) are stored, the high dwords
// OR-ed (a valid index is below 2^31); (lo - first - i*dhw) < cnt unsigned, as signed compares
// of values offset by 2^31.
template <int NH>
bool narrow_check_nh(const int64_t* idx, int64_t n, const int32_t* first, const int32_t* cnt,
                     int32_t base, int64_t nh_rt, int32_t dhw, int32_t* out) {
  const int64_t nh = NH > 0 ? NH : nh_rt;
  const __m256i sign = _mm256_set1_epi32(INT32_MIN);
  const __m256i b = _mm256_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(base) ^ 0x80000000u));
  const __m256i step = _mm256_set1_epi32(dhw);
  __m256i high = _mm256_setzero_si256(), ok_all = _mm256_set1_epi32(-1);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 a = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + k)));
    const __m256 c = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + k + 4)));
    const __m256i lo = _mm256_permute4x64_epi64(
        _mm256_castps_si256(_mm256_shuffle_ps(a, c, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8);
    high = _mm256_or_si256(high, _mm256_castps_si256(_mm256_shuffle_ps(a, c, _MM_SHUFFLE(3, 1, 3, 1))));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), lo);
    const __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + k));
    const __m256i w = _mm256_xor_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cnt + k)), sign);
    // (lo - base - first) + 2^31: base was offset by 2^31 above (xor = add mod 2^32)
    __m256i r = _mm256_sub_epi32(_mm256_sub_epi32(lo, b), f);
    __m256i ok = _mm256_cmpgt_epi32(w, r);
    for (int64_t i = 1; i < nh; ++i) {
      r = _mm256_sub_epi32(r, step);
      ok = _mm256_or_si256(ok, _mm256_cmpgt_epi32(w, r));
    }
    ok_all = _mm256_and_si256(ok_all, ok);
  }
  bool good = _mm256_testz_si256(high, high) &&
              _mm256_movemask_ps(_mm256_castsi256_ps(ok_all)) == 0xFF;
  for (; k < n; ++k) {
    out[k] = static_cast<int32_t>(idx[k]);
    const uint64_t rel = static_cast<uint64_t>(idx[k]) -
                         static_cast<uint64_t>(static_cast<int64_t>(base) + first[k]);
    bool ok = false;
    for (int64_t i = 0; i < nh; ++i)
      ok |= rel - static_cast<uint64_t>(i * dhw) < static_cast<uint64_t>(cnt[k]);
    good = good && ok;
  }
  return good;
}

bool narrow_check(const int64_t* idx, int64_t n, const int32_t* first, const int32_t* cnt,
                  int32_t base, int64_t nh, int32_t dhw, int32_t* out) {
  switch (nh) {
    case 2: return narrow_check_nh<2>(idx, n, first, cnt, base, nh, dhw, out);
    case 3: return narrow_check_nh<3>(idx, n, first, cnt, base, nh, dhw, out);
    default: return narrow_check_nh<0>(idx, n, first, cnt, base, nh, dhw, out);
  }
}

template <bool ZERO>
void stream_impl(float* src, int64_t n, float* dst) {
  int64_t i = 0;
  const int64_t head = static_cast<int64_t>(((32 - (reinterpret_cast<uintptr_t>(dst) & 31)) & 31) / 4);
  if ((reinterpret_cast<uintptr_t>(dst) & 3) != 0 || n < head + 16) {  // unaligned floats or short
    std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(n));
    if (ZERO) std::memset(src, 0, sizeof(float) * static_cast<size_t>(n));
    return;
  }
  const __m256 z = _mm256_setzero_ps();
  for (; i < head; ++i) {
    dst[i] = src[i];
    if (ZERO) src[i] = 0.0f;
  }
  for (; i + 16 <= n; i += 16) {
    _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
    if (ZERO) {
      _mm256_storeu_ps(src + i, z);
      _mm256_storeu_ps(src + i + 8, z);
    }
  }
  if (i + 8 <= n) {
    _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    if (ZERO) _mm256_storeu_ps(src + i, z);
    i += 8;
  }
  for (; i < n; ++i) {
    dst[i] = src[i];
    if (ZERO) src[i] = 0.0f;
  }
}

void stream_copy(const float* src, int64_t n, float* dst) {
  stream_impl<false>(const_cast<float*>(src), n, dst);  // never written
}

void stream_move(float* src, int64_t n, float* dst) { stream_impl<true>(src, n, dst); }

// Unsigned a < b for 64-bit lanes: flip the sign bits, compare signed.
int64_t check_row(const int64_t* idx, int64_t n, const int64_t* first, const int64_t* cnt,
                  int64_t base, int64_t nh, int64_t dhw) {
  const __m256i sign = _mm256_set1_epi64x(INT64_MIN), b = _mm256_set1_epi64x(base);
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + k));
    const __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + k));
    const __m256i w = _mm256_xor_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cnt + k)), sign);
    __m256i r = _mm256_xor_si256(_mm256_sub_epi64(v, _mm256_add_epi64(f, b)), sign);
    const __m256i step = _mm256_set1_epi64x(dhw);
    __m256i ok = _mm256_cmpgt_epi64(w, r);
    for (int64_t i = 1; i < nh; ++i) {
      r = _mm256_sub_epi64(r, step);  // (rel - i*dhw) ^ sign, wrapping like the unsigned rule
      ok = _mm256_or_si256(ok, _mm256_cmpgt_epi64(w, r));
    }
    if (_mm256_movemask_pd(_mm256_castsi256_pd(ok)) != 0xF) return k;
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
  const __m256i sign = _mm256_set1_epi64x(INT64_MIN), b = _mm256_set1_epi64x(base);
  const __m256i w = _mm256_xor_si256(_mm256_set1_epi64x(cnt), sign);
  const __m256i step = _mm256_set1_epi64x(dhw);
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + k));
    __m256i r = _mm256_xor_si256(_mm256_sub_epi64(v, b), sign);
    __m256i ok = _mm256_cmpgt_epi64(w, r);
    for (int64_t i = 1; i < nh; ++i) {
      r = _mm256_sub_epi64(r, step);
      ok = _mm256_or_si256(ok, _mm256_cmpgt_epi64(w, r));
    }
    if (_mm256_movemask_pd(_mm256_castsi256_pd(ok)) != 0xF) return k;
  }
  return k;  // the caller checks the tail
}

// The 8 partial sums of one plane (lane j: elements e = j mod 8, from +0; the masked tail adds
// +0 to the other lanes, which leaves a sum started from +0 unchanged).
inline __m256 plane_partials(const float* x, int64_t hw, __m256i tail) {
  __m256 acc = _mm256_setzero_ps();
  int64_t e = 0;
  for (; e + 8 <= hw; e += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + e));
  if (e < hw) acc = _mm256_add_ps(acc, _mm256_maskload_ps(x + e, tail));
  return acc;
}

void global_avg_nchw(const float* x, int64_t hw, int64_t n, float* out, float dh, float dw) {
  const int32_t rem = static_cast<int32_t>(hw % 8);
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 vh = _mm256_set1_ps(dh), vw = _mm256_set1_ps(dw);
  int64_t p = 0;
  for (; p + 8 <= n; p += 8) {  // 8 planes: the tree sums of all 8 with 3 horizontal adds
    __m256 a[8];
    for (int q = 0; q < 8; ++q) a[q] = plane_partials(x + (p + q) * hw, hw, tail);
    // hadd(a, b) = [a0+a1 a2+a3 b0+b1 b2+b3 | a4+a5 a6+a7 b4+b5 b6+b7]
    const __m256 h01 = _mm256_hadd_ps(a[0], a[1]), h23 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 h45 = _mm256_hadd_ps(a[4], a[5]), h67 = _mm256_hadd_ps(a[6], a[7]);
    // lane q (q < 4): plane q's (s0+s1)+(s2+s3); upper half: its (s4+s5)+(s6+s7)
    const __m256 g0 = _mm256_hadd_ps(h01, h23), g1 = _mm256_hadd_ps(h45, h67);
    const __m256 lo = _mm256_permute2f128_ps(g0, g1, 0x20), hi = _mm256_permute2f128_ps(g0, g1, 0x31);
    _mm256_storeu_ps(out + p, _mm256_div_ps(_mm256_div_ps(_mm256_add_ps(lo, hi), vh), vw));
  }
  for (; p < n; ++p) {
    const __m256 a = plane_partials(x + p * hw, hw, tail);
    const __m256 h = _mm256_hadd_ps(a, a), g = _mm256_hadd_ps(h, h);
    const __m128 s = _mm_add_ss(_mm256_castps256_ps128(g), _mm256_extractf128_ps(g, 1));
    out[p] = _mm_cvtss_f32(s) / dh / dw;
  }
}

}  // namespace

void fill_pool_kernels_f32(PoolKernelsF32& k) {
  k.global_avg_nchw = &global_avg_nchw;
  k.check_row = &check_row;
  k.check_run = &check_run;
  pool_simd::fill<V>(k);
  k.max_bwd_nchw_k2 = &max_bwd_nchw_k2;
  k.max_bwd_nhwc = &max_bwd_nhwc;
  k.max_bwd_gather_nhwc = &max_bwd_gather_nhwc;
  k.max_bwd_k3s2_nchw = &max_bwd_k3s2_nchw;
  k.max_bwd_k3s2_nhwc = &max_bwd_k3s2_nhwc;
  k.narrow_check = &narrow_check;
  k.stream_copy = &stream_copy;
  k.stream_move = &stream_move;
}

}  // namespace avx2
}  // namespace fastconv
