// Depthwise convolution kernels, written once against a vector policy P and instantiated by
// each ISA's depthwise.cpp (the only files compiled with that ISA's flags). Contracts: kernels.h.
//
// A policy provides: T, V (register type), W (lanes), zero(), set1(T), load(const T*),
// store(T*, V), fma(a, b, c) = a*b + c, add(a, b), load_zl(p) = {0, p[0], ..., p[W-2]} and
// load_zh(p) = {p[0], ..., p[W-2], 0} (neither reads p[W-1]).
// Sums run in a fixed order that depends only on the arguments, never on threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace dwimpl {

// NR output rows x (2 or 1) vectors of columns per step: 2*NR independent FMA chains; every
// tap's weight is broadcast once per step. The last partial vector is recomputed over
// [n - W, n) (every output is a pure function of the inputs, so overlapping stores write
// identical values). Requires n >= W.
template <typename P, int NR>
void rows_nr(const typename P::T* const* src, int64_t off, const typename P::T* wts, int64_t ntaps,
             typename P::T init, typename P::T* y, int64_t n, int64_t srs, int64_t yrs) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  const V vinit = P::set1(init);
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    V a[NR][2];
    for (int i = 0; i < NR; ++i) a[i][0] = a[i][1] = vinit;
    for (int64_t t = 0; t < ntaps; ++t) {
      const V wv = P::set1(wts[t]);
      const T* s = src[t] + off + j;
      for (int i = 0; i < NR; ++i) {
        a[i][0] = P::fma(wv, P::load(s + i * srs), a[i][0]);
        a[i][1] = P::fma(wv, P::load(s + i * srs + W), a[i][1]);
      }
    }
    for (int i = 0; i < NR; ++i) {
      P::store(y + i * yrs + j, a[i][0]);
      P::store(y + i * yrs + j + W, a[i][1]);
    }
  }
  for (; j < n; j += W) {
    if (j + W > n) j = n - W;  // overlapping last vector
    V a[NR];
    for (int i = 0; i < NR; ++i) a[i] = vinit;
    for (int64_t t = 0; t < ntaps; ++t) {
      const V wv = P::set1(wts[t]);
      const T* s = src[t] + off + j;
      for (int i = 0; i < NR; ++i) a[i] = P::fma(wv, P::load(s + i * srs), a[i]);
    }
    for (int i = 0; i < NR; ++i) P::store(y + i * yrs + j, a[i]);
  }
}

template <typename P>
void rows(const typename P::T* const* src, const typename P::T* wts, int64_t ntaps,
          typename P::T init, typename P::T* y, int64_t n, int64_t nr, int64_t srs, int64_t yrs) {
  using T = typename P::T;
  if (n < P::W) {
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T s = init;
        for (int64_t t = 0; t < ntaps; ++t) s += wts[t] * src[t][i * srs + j];
        y[i * yrs + j] = s;
      }
    return;
  }
  int64_t i = 0;
  for (; i + 4 <= nr; i += 4) rows_nr<P, 4>(src, i * srs, wts, ntaps, init, y + i * yrs, n, srs, yrs);
  const int64_t rem = nr - i;
  if (rem == 3) rows_nr<P, 3>(src, i * srs, wts, ntaps, init, y + i * yrs, n, srs, yrs);
  if (rem == 2) rows_nr<P, 2>(src, i * srs, wts, ntaps, init, y + i * yrs, n, srs, yrs);
  if (rem == 1) rows_nr<P, 1>(src, i * srs, wts, ntaps, init, y + i * yrs, n, srs, yrs);
}

// 3x3, stride 1, dilation 1: NR output rows x one vector per step, the nine weights in
// registers; each of the NR + 2 source rows is loaded once per column offset and feeds the (up
// to) three output rows that read it. Output row i sums rows q = i..i+2 in order, b in order.
// One zero column each side, read in place (no padded copy): output
// vector j of row i reads r[i + a] at columns j - 1 + b. Interior vectors load unconditionally;
// the first and last vector of a row take the missing column as a zero lane (load_zl / load_zh),
// so every output sums the same nine products, in the same order, as rows3x3 on a padded plane.
// E: 0 interior, 1 first vector (column -1 is zero), 2 last vector (column n is zero).
template <typename P, int NR, int E>
inline void pad1_step(const typename P::T* const* r, int64_t j, const typename P::V* wv,
                      typename P::V vinit, typename P::T* y, int64_t yrs) {
  using V = typename P::V;
  V acc[NR];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i) acc[i] = vinit;
#pragma GCC unroll 8
  for (int q = 0; q < NR + 2; ++q) {
    const typename P::T* s = r[q] + j;
#pragma GCC unroll 3
    for (int b = 0; b < 3; ++b) {
      const V xv = (E == 1 && b == 0)   ? P::load_zl(s)
                   : (E == 2 && b == 2) ? P::load_zh(s + 1)
                                        : P::load(s + b - 1);
#pragma GCC unroll 3
      for (int a = 0; a < 3; ++a) {
        const int i = q - a;
        if (i >= 0 && i < NR) acc[i] = P::fma(wv[a * 3 + b], xv, acc[i]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i) P::store(y + i * yrs + j, acc[i]);
}

// 3x3, stride 1, dilation 1 on a padded plane (every column present): NR output rows x one
// vector per step, as pad1_step with r[q] = s + q*rs + 1.
template <typename P, int NR>
void rows3x3_nr(const typename P::T* s, int64_t rs, const typename P::T* w9,
                typename P::T init, typename P::T* y, int64_t n, int64_t yrs) {
  using V = typename P::V;
  constexpr int64_t W = P::W;
  V wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = P::set1(w9[t]);
  const V vinit = P::set1(init);
  const typename P::T* r[NR + 2];
  for (int q = 0; q < NR + 2; ++q) r[q] = s + q * rs + 1;
  for (int64_t j = 0; j < n; j += W) {
    if (j + W > n) j = n - W;  // overlapping last vector (pure outputs)
    pad1_step<P, NR, 0>(r, j, wv, vinit, y, yrs);
  }
}

template <typename P>
void rows3x3(const typename P::T* s, int64_t rs, const typename P::T* w9, typename P::T init,
             typename P::T* y, int64_t n, int64_t nr, int64_t yrs) {
  using T = typename P::T;
  if (n < P::W) {
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T acc = init;
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) acc += w9[a * 3 + b] * s[(i + a) * rs + j + b];
        y[i * yrs + j] = acc;
      }
    return;
  }
  int64_t i = 0;
  for (; i + 6 <= nr; i += 6) rows3x3_nr<P, 6>(s + i * rs, rs, w9, init, y + i * yrs, n, yrs);
  switch (nr - i) {
    case 5: rows3x3_nr<P, 5>(s + i * rs, rs, w9, init, y + i * yrs, n, yrs); break;
    case 4: rows3x3_nr<P, 4>(s + i * rs, rs, w9, init, y + i * yrs, n, yrs); break;
    case 3: rows3x3_nr<P, 3>(s + i * rs, rs, w9, init, y + i * yrs, n, yrs); break;
    case 2: rows3x3_nr<P, 2>(s + i * rs, rs, w9, init, y + i * yrs, n, yrs); break;
    case 1: rows3x3_nr<P, 1>(s + i * rs, rs, w9, init, y + i * yrs, n, yrs); break;
    default: break;
  }
}

// NR output rows from the NR + 2 source rows r[0..NR+1]; n > W. The last vector overlaps its
// predecessor when W does not divide n (pure outputs: identical values).
template <typename P, int NR>
void pad1_nr(const typename P::T* const* r, const typename P::T* w9, typename P::T init,
             typename P::T* y, int64_t n, int64_t yrs) {
  using V = typename P::V;
  constexpr int64_t W = P::W;
  V wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = P::set1(w9[t]);
  const V vinit = P::set1(init);
  pad1_step<P, NR, 1>(r, 0, wv, vinit, y, yrs);
  for (int64_t j = W; j + W < n; j += W) pad1_step<P, NR, 0>(r, j, wv, vinit, y, yrs);
  pad1_step<P, NR, 2>(r, n - W, wv, vinit, y, yrs);
}

template <typename P>
void rows3x3_pad1(const typename P::T* const* r, const typename P::T* w9, typename P::T init,
                  typename P::T* y, int64_t n, int64_t nr, int64_t yrs) {
  using T = typename P::T;
  if (n <= P::W) {  // too narrow for one interior-free vector: scalar, same order
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T acc = init;
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) {
            const int64_t col = j - 1 + b;
            acc += w9[a * 3 + b] * (col >= 0 && col < n ? r[i + a][col] : T(0));
          }
        y[i * yrs + j] = acc;
      }
    return;
  }
  int64_t i = 0;
  for (; i + 4 <= nr; i += 4) pad1_nr<P, 4>(r + i, w9, init, y + i * yrs, n, yrs);
  switch (nr - i) {
    case 3: pad1_nr<P, 3>(r + i, w9, init, y + i * yrs, n, yrs); break;
    case 2: pad1_nr<P, 2>(r + i, w9, init, y + i * yrs, n, yrs); break;
    case 1: pad1_nr<P, 1>(r + i, w9, init, y + i * yrs, n, yrs); break;
    default: break;
  }
}

// NHWC 3x3, stride 1, dilation 1, one zero pixel each side. One output row from its source
// rows (those inside the image) rows[k] with kernel rows tap[k].
template <typename T>
struct Nhwc3Row {
  int64_t nrows;
  const T* rows[3];
  int64_t tap[3];
  T* y;
};

// PB pixels from j0 times CU vectors of channels from c of one output row. Each source vector
// is loaded once per row and feeds the (up to) three outputs that read it; a row's 3*CU weight
// vectors stay in registers. E: 1 = pixel j0 - 1 is the zero padding, 2 = pixel j0 + PB is.
// R3: exactly three source rows (fully unrolled). Sums: bias, then rows in order, then b.
template <typename P, int PB, int CU, int E, bool R3>
inline void nhwc3_block(const DwNhwc3x3<typename P::T>& a, const Nhwc3Row<typename P::T>& r,
                        int64_t j0, int64_t c) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  const int64_t C = a.C;
  V acc[CU][PB];
#pragma GCC unroll 4
  for (int u = 0; u < CU; ++u) {
    const V b0 = a.bias ? P::load(a.bias + c + u * W) : P::zero();
#pragma GCC unroll 16
    for (int i = 0; i < PB; ++i) acc[u][i] = b0;
  }
  const int64_t nrows = R3 ? 3 : r.nrows;
#pragma GCC unroll 3
  for (int64_t k = 0; k < nrows; ++k) {
    const T* xb = r.rows[k] + (j0 - 1) * C + c;
    const T* wr = a.w + (R3 ? k : r.tap[k]) * 3 * C + c;
    V w0[CU], w1[CU], w2[CU];
#pragma GCC unroll 4
    for (int u = 0; u < CU; ++u) {
      w0[u] = P::load(wr + u * W);
      w1[u] = P::load(wr + C + u * W);
      w2[u] = P::load(wr + 2 * C + u * W);
    }
#pragma GCC unroll 16
    for (int q = 0; q < PB + 2; ++q) {
      if ((E == 1 && q == 0) || (E == 2 && q == PB + 1)) continue;
#pragma GCC unroll 4
      for (int u = 0; u < CU; ++u) {
        const V xv = P::load(xb + q * C + u * W);
        if (q < PB) acc[u][q] = P::fma(w0[u], xv, acc[u][q]);
        if (q >= 1 && q - 1 < PB) acc[u][q - 1] = P::fma(w1[u], xv, acc[u][q - 1]);
        if (q >= 2) acc[u][q - 2] = P::fma(w2[u], xv, acc[u][q - 2]);
      }
    }
  }
  T* yb = r.y + j0 * C + c;
#pragma GCC unroll 16
  for (int i = 0; i < PB; ++i)
#pragma GCC unroll 4
    for (int u = 0; u < CU; ++u) P::store(yb + i * C + u * W, acc[u][i]);
}

// Two output rows from four source rows (all inside the image): output row i reads rows[i + a]
// with kernel row a; each source vector is loaded once for both rows (the rows' six weight
// vectors in registers), PB pixels x one vector of channels. Same sums, same order as above.
template <typename P, int PB, int E>
inline void nhwc3_pair_block(const DwNhwc3x3<typename P::T>& a, int64_t j0, int64_t c) {
  using T = typename P::T;
  using V = typename P::V;
  const int64_t C = a.C;
  V acc[2][PB];
  const V b0 = a.bias ? P::load(a.bias + c) : P::zero();
#pragma GCC unroll 16
  for (int i = 0; i < PB; ++i) acc[0][i] = acc[1][i] = b0;
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const T* xb = a.rows[k] + (j0 - 1) * C + c;
    V wa[3], wb[3];  // kernel row k for output row 0, k - 1 for output row 1
#pragma GCC unroll 3
    for (int b = 0; b < 3; ++b) {
      if (k <= 2) wa[b] = P::load(a.w + (k * 3 + b) * C + c);
      if (k >= 1) wb[b] = P::load(a.w + ((k - 1) * 3 + b) * C + c);
    }
#pragma GCC unroll 16
    for (int q = 0; q < PB + 2; ++q) {
      if ((E == 1 && q == 0) || (E == 2 && q == PB + 1)) continue;
      const V xv = P::load(xb + q * C);
#pragma GCC unroll 3
      for (int b = 0; b < 3; ++b) {
        const int i = q - b;
        if (i < 0 || i >= PB) continue;
        if (k <= 2) acc[0][i] = P::fma(wa[b], xv, acc[0][i]);
        if (k >= 1) acc[1][i] = P::fma(wb[b], xv, acc[1][i]);
      }
    }
  }
  T* yb = a.y + j0 * C + c;
#pragma GCC unroll 16
  for (int i = 0; i < PB; ++i) {
    P::store(yb + i * C, acc[0][i]);
    P::store(yb + a.y_rs + i * C, acc[1][i]);
  }
}

// The next block's new source pixels into L1: the line at channel c of each pixel and row,
// called every 64 bytes of channels (the strided pixel streams defeat the hardware
// prefetchers; measured ~20 % faster).
struct Nhwc3Prefetch {
  const void* const* rows;
  int64_t nrows, j, cnt;
};
template <typename T>
inline void nhwc3_prefetch(const Nhwc3Prefetch& f, int64_t C, int64_t c) {
  if ((c * int64_t(sizeof(T))) % 64 != 0) return;
  for (int64_t k = 0; k < f.nrows; ++k) {
    const T* s = static_cast<const T*>(f.rows[k]) + f.j * C + c;
    for (int64_t i = 0; i < f.cnt; ++i) __builtin_prefetch(s + i * C, 0, 3);
  }
}

// PB pixels from j0, all channels, of one output row.
template <typename P, int PB, int E, bool R3>
void nhwc3_pixels_r(const DwNhwc3x3<typename P::T>& a, const Nhwc3Row<typename P::T>& r,
                    int64_t j0, const Nhwc3Prefetch& f) {
  using T = typename P::T;
  constexpr int64_t W = P::W;
  const int64_t C = a.C;
  int64_t c = 0;
  for (; c + 2 * W <= C; c += 2 * W) {
    nhwc3_prefetch<T>(f, C, c);
    if (2 * W * sizeof(T) > 64) nhwc3_prefetch<T>(f, C, c + W);
    nhwc3_block<P, PB, 2, E, R3>(a, r, j0, c);
  }
  for (; c < C; c += W) {
    if (c + W > C) c = C - W;  // overlapping last vector (pure outputs)
    nhwc3_prefetch<T>(f, C, c);
    nhwc3_block<P, PB, 1, E, R3>(a, r, j0, c);
  }
}

// PB pixels from j0, all channels, of both output rows: as a pair, or one row after the other.
template <typename P, int PB, int E>
void nhwc3_pixels(const DwNhwc3x3<typename P::T>& a, const Nhwc3Row<typename P::T>* r,
                  bool pair, int64_t j0) {
  using T = typename P::T;
  Nhwc3Prefetch f{pair ? reinterpret_cast<const void* const*>(a.rows)
                       : reinterpret_cast<const void* const*>(r[0].rows),
                  pair ? 4 : r[0].nrows, j0 + PB + 1,
                  E == 2 ? 0 : std::min<int64_t>(PB, a.ncols - (j0 + PB + 1))};
  if (pair) {
    for (int64_t c = 0; c < a.C; c += P::W) {
      if (c + P::W > a.C) c = a.C - P::W;  // overlapping last vector (pure outputs)
      nhwc3_prefetch<T>(f, a.C, c);
      nhwc3_pair_block<P, PB, E>(a, j0, c);
    }
    return;
  }
  for (int64_t i = 0; i < a.nout; ++i) {
    if (i > 0) f.cnt = 0;  // (the first row's pass prefetched the shared rows)
    if (r[i].nrows == 3)
      nhwc3_pixels_r<P, PB, E, true>(a, r[i], j0, f);
    else
      nhwc3_pixels_r<P, PB, E, false>(a, r[i], j0, f);
  }
}

// (Tried: one channel vector at a time sliding along the row, weights in registers, 4 outputs
// per step. Zen 3, 1 thread, dw3x3_128@56 NHWC forward: 1.7 -> 2.6 ms; the pixel-block kernel
// below stays.)
template <typename P>
void nhwc_row3x3(const DwNhwc3x3<typename P::T>& a) {
  using T = typename P::T;
  constexpr int64_t PB = 4;  // (measured: 4 x 2 vectors ~15 % faster than 8 x 1 for one row)
  const int64_t n = a.ncols, C = a.C;
  Nhwc3Row<T> r[2];
  bool all = true;
  for (int64_t i = 0; i < a.nout; ++i) {
    r[i].nrows = 0;
    r[i].y = a.y + i * a.y_rs;
    for (int64_t t = 0; t < 3; ++t) {
      const T* s = a.rows[i + t];
      all = all && s;
      if (!s) continue;
      r[i].rows[r[i].nrows] = s;
      r[i].tap[r[i].nrows++] = t;
    }
  }
  if (n <= PB || C < P::W) {  // narrow rows or few channels: scalar, same order
    for (int64_t i = 0; i < a.nout; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < C; ++c) {
          T s = a.bias ? a.bias[c] : T(0);
          for (int64_t k = 0; k < r[i].nrows; ++k)
            for (int64_t b = 0; b < 3; ++b) {
              const int64_t col = j - 1 + b;
              if (col >= 0 && col < n)
                s += a.w[(r[i].tap[k] * 3 + b) * C + c] * r[i].rows[k][col * C + c];
            }
          r[i].y[j * C + c] = s;
        }
    return;
  }
  // both rows at once when all four source rows exist (measured ~25 % faster than one by one)
  const bool pair = a.nout == 2 && all;
  // prefetch cursors: a share of the next task's new source rows (and of its output rows, for
  // writing) per block
  const char* pf = static_cast<const char*>(a.prefetch);
  const char* pfo = static_cast<const char*>(a.prefetch_out);
  const char* pf_end = pf ? pf + a.prefetch_bytes : nullptr;
  const int64_t pf_step = pf ? (a.prefetch_bytes / (n / PB + 1) | 63) + 1 : 0;
  auto prefetch = [&]() {
    const char* e = pf_end - pf > pf_step ? pf + pf_step : pf_end;
    for (; pf < e; pf += 64) {
      __builtin_prefetch(pf, 0, 2);
      if (pfo) {
        __builtin_prefetch(pfo, 1, 2);
        pfo += 64;
      }
    }
  };
  // the last block overlaps its predecessor when PB does not divide n (pure outputs)
  prefetch();
  nhwc3_pixels<P, PB, 1>(a, r, pair, 0);
  for (int64_t j = PB; j + PB < n; j += PB) {
    prefetch();
    nhwc3_pixels<P, PB, 0>(a, r, pair, j);
  }
  prefetch();
  nhwc3_pixels<P, PB, 2>(a, r, pair, n - PB);
}

// G taps at once: each dy vector is loaded once and multiplied into G register accumulators
// (G independent FMA chains). Lane l of tap t sums, in order over rows i and vector blocks,
// the products at columns j < nv with j mod W == l; the scalar tail j >= nv goes to lane j - nv.
template <typename P, int G>
void dot_g(const typename P::T* dy, int64_t dy_rs, const typename P::T* const* src,
           int64_t src_rs, int64_t nr, int64_t n, typename P::T* acc) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  const int64_t nv = n / W * W;
  V a[G];
  for (int g = 0; g < G; ++g) a[g] = P::zero();
  for (int64_t i = 0; i < nr; ++i) {
    const T* d = dy + i * dy_rs;
    const int64_t so = i * src_rs;
    for (int64_t j = 0; j < nv; j += W) {
      const V dv = P::load(d + j);
      for (int g = 0; g < G; ++g) a[g] = P::fma(dv, P::load(src[g] + so + j), a[g]);
    }
  }
  for (int g = 0; g < G; ++g) {
    T* at = acc + g * kDwLanes;
    P::store(at, P::add(P::load(at), a[g]));
  }
  if (nv < n)
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = nv; j < n; ++j) {
        const T d = dy[i * dy_rs + j];
        for (int g = 0; g < G; ++g) acc[g * kDwLanes + (j - nv)] += d * src[g][i * src_rs + j];
      }
}

template <typename P>
void dot(const typename P::T* dy, int64_t dy_rs, const typename P::T* const* src, int64_t ntaps,
         int64_t src_rs, int64_t nr, int64_t n, typename P::T* acc) {
  static_assert(P::W <= kDwLanes, "vector wider than kDwLanes");
  for (int64_t t = 0; t < ntaps; t += 9) {
    const int64_t g = ntaps - t < 9 ? ntaps - t : 9;
    const auto* s = src + t;
    auto* at = acc + t * kDwLanes;
    switch (g) {
      case 9: dot_g<P, 9>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 8: dot_g<P, 8>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 7: dot_g<P, 7>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 6: dot_g<P, 6>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 5: dot_g<P, 5>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 4: dot_g<P, 4>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 3: dot_g<P, 3>(dy, dy_rs, s, src_rs, nr, n, at); break;
      case 2: dot_g<P, 2>(dy, dy_rs, s, src_rs, nr, n, at); break;
      default: dot_g<P, 1>(dy, dy_rs, s, src_rs, nr, n, at); break;
    }
  }
}

// NHWC: PB pixels j0 + i*jstep that share pixel j0's taps, their sources xstep apart; each
// weight vector is loaded once for the PB pixels (PB independent FMA chains). Channels
// [cs, ce) in vectors, the last partial vector recomputed over [ce - W, ce) (pure outputs);
// fewer than W channels: scalar. Output (pixel i, channel c) goes to yb[i*ystep + c - cs].
template <typename P, int PB>
void nhwc_block(const DwNhwcRow<typename P::T>& a, int64_t j0, int64_t xstep, int64_t cs,
                int64_t ce, typename P::T* yb, int64_t ystep) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  const int64_t cnt = a.cnt[j0];
  const int64_t* xo = a.col_xoff + j0 * a.kmax;
  const int64_t* wo = a.col_woff + j0 * a.kmax;
  if (ce - cs < W) {
    for (int i = 0; i < PB; ++i)
      for (int64_t c = cs; c < ce; ++c) {
        T s = a.bias ? a.bias[c] : T(0);
        for (int64_t r = 0; r < a.nrows; ++r)
          for (int64_t k = 0; k < cnt; ++k)
            s += a.w[a.row_woff[r] + wo[k] + c] * a.rows[r][xo[k] + i * xstep + c];
        yb[i * ystep + (c - cs)] = s;
      }
    return;
  }
  int64_t c = cs;
  // PB < 4: CU vectors of channels at once, so that a few pixels still give 4 independent FMA
  // chains (every output keeps the same tap order)
  constexpr int CU = PB >= 4 ? 1 : 4 / PB;
  if (CU > 1)
    for (; c + CU * W <= ce; c += CU * W) {
      V acc[PB][CU];
      for (int u = 0; u < CU; ++u) {
        const V b = a.bias ? P::load(a.bias + c + u * W) : P::zero();
        for (int i = 0; i < PB; ++i) acc[i][u] = b;
      }
      for (int64_t r = 0; r < a.nrows; ++r) {
        const T* xr = a.rows[r] + c;
        const T* wr = a.w + a.row_woff[r] + c;
        for (int64_t k = 0; k < cnt; ++k) {
          const T* xp = xr + xo[k];
          for (int u = 0; u < CU; ++u) {
            const V wv = P::load(wr + wo[k] + u * W);
            for (int i = 0; i < PB; ++i)
              acc[i][u] = P::fma(wv, P::load(xp + i * xstep + u * W), acc[i][u]);
          }
        }
      }
      for (int i = 0; i < PB; ++i)
        for (int u = 0; u < CU; ++u) P::store(yb + i * ystep + (c + u * W - cs), acc[i][u]);
    }
  for (; c < ce; c += W) {
    if (c + W > ce) c = ce - W;  // overlapping last vector
    V acc[PB];
    const V b = a.bias ? P::load(a.bias + c) : P::zero();
    for (int i = 0; i < PB; ++i) acc[i] = b;
    for (int64_t r = 0; r < a.nrows; ++r) {
      const T* xr = a.rows[r] + c;
      const T* wr = a.w + a.row_woff[r] + c;
      for (int64_t k = 0; k < cnt; ++k) {
        const V wv = P::load(wr + wo[k]);
        const T* xp = xr + xo[k];
        for (int i = 0; i < PB; ++i) acc[i] = P::fma(wv, P::load(xp + i * xstep), acc[i]);
      }
    }
    for (int i = 0; i < PB; ++i) P::store(yb + i * ystep + (c - cs), acc[i]);
  }
}

// One pixel, taps outer and channels inner, accumulating in the output pixel (L1): each source
// pixel's channels are read as one contiguous run. Used when consecutive pixels' sources are
// strided, where streaming the source matters more than register reuse.
template <typename P>
void nhwc_pixel_stream(const DwNhwcRow<typename P::T>& a, int64_t j0, int64_t cs, int64_t ce,
                       typename P::T* yb) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  const int64_t cnt = a.cnt[j0];
  const int64_t* xo = a.col_xoff + j0 * a.kmax;
  const int64_t* wo = a.col_woff + j0 * a.kmax;
  const int64_t n = ce - cs;
  const int64_t nv = n / W * W;
  for (int64_t c = 0; c < nv; c += W)
    P::store(yb + c, a.bias ? P::load(a.bias + cs + c) : P::zero());
  for (int64_t c = nv; c < n; ++c) yb[c] = a.bias ? a.bias[cs + c] : T(0);
  for (int64_t r = 0; r < a.nrows; ++r)
    for (int64_t k = 0; k < cnt; ++k) {
      const T* xp = a.rows[r] + xo[k] + cs;
      const T* wp = a.w + a.row_woff[r] + wo[k] + cs;
      int64_t c = 0;
      for (; c + 2 * W <= nv; c += 2 * W) {
        P::store(yb + c, P::fma(P::load(wp + c), P::load(xp + c), P::load(yb + c)));
        P::store(yb + c + W, P::fma(P::load(wp + c + W), P::load(xp + c + W), P::load(yb + c + W)));
      }
      for (; c < nv; c += W) P::store(yb + c, P::fma(P::load(wp + c), P::load(xp + c), P::load(yb + c)));
      for (; c < n; ++c) yb[c] += wp[c] * xp[c];
    }
}

// Whether pixels j0 + i*jstep (i < pb) share j0's taps with sources evenly spaced; sets xstep.
template <typename T>
bool uniform(const DwNhwcRow<T>& a, int64_t j0, int64_t pb, int64_t* xstep) {
  const int64_t js = a.jstep, K = a.kmax;
  if (j0 + (pb - 1) * js >= a.ncols) return false;
  const int64_t cnt = a.cnt[j0];
  const int64_t* x0 = a.col_xoff + j0 * K;
  const int64_t* w0 = a.col_woff + j0 * K;
  *xstep = cnt > 0 ? a.col_xoff[(j0 + js) * K] - x0[0] : 0;
  for (int64_t i = 1; i < pb; ++i) {
    const int64_t j = j0 + i * js;
    if (a.cnt[j] != cnt) return false;
    for (int64_t k = 0; k < cnt; ++k)
      if (a.col_woff[j * K + k] != w0[k] || a.col_xoff[j * K + k] != x0[k] + i * *xstep) return false;
  }
  return true;
}

// Sliding-window form of nhwc_block: the K taps of every row read sources exactly xstep
// apart (stride 1 and dilation 1 in pixels: tap t of pixel i reads pixel i + t), so each source
// vector is loaded once and used by up to K pixels, with the K weight vectors in registers.
// `rev`: the taps are listed with decreasing source offsets (input gradient).
template <typename P, int PB, int K>
void nhwc_slide(const DwNhwcRow<typename P::T>& a, int64_t j0, int64_t xstep, bool rev,
                int64_t cs, int64_t ce, typename P::T* yb, int64_t ystep) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  const int64_t* xo = a.col_xoff + j0 * a.kmax;
  const int64_t* wo = a.col_woff + j0 * a.kmax;
  int64_t wof[K];
  for (int t = 0; t < K; ++t) wof[t] = wo[rev ? K - 1 - t : t];
  const int64_t xfirst = xo[rev ? K - 1 : 0];
  for (int64_t c = cs; c < ce; c += W) {
    if (c + W > ce) c = ce - W;  // overlapping last vector (ce - cs >= W here)
    V acc[PB];
    const V b = a.bias ? P::load(a.bias + c) : P::zero();
    for (int i = 0; i < PB; ++i) acc[i] = b;
    for (int64_t r = 0; r < a.nrows; ++r) {
      const T* xb = a.rows[r] + xfirst + c;
      const T* wr = a.w + a.row_woff[r] + c;
      V wv[K];
#pragma GCC unroll 8
      for (int t = 0; t < K; ++t) wv[t] = P::load(wr + wof[t]);
#pragma GCC unroll 16
      for (int q = 0; q < PB + K - 1; ++q) {
        const V xv = P::load(xb + q * xstep);
#pragma GCC unroll 8
        for (int t = 0; t < K; ++t) {
          const int i = q - t;
          if (i >= 0 && i < PB) acc[i] = P::fma(wv[t], xv, acc[i]);
        }
      }
    }
    for (int i = 0; i < PB; ++i) P::store(yb + i * ystep + (c - cs), acc[i]);
  }
}

// Whether the cnt taps of pixel j0 read sources xstep apart, in increasing (*rev = false) or
// decreasing (*rev = true) order.
template <typename T>
bool sliding(const DwNhwcRow<T>& a, int64_t j0, int64_t xstep, bool* rev) {
  const int64_t cnt = a.cnt[j0];
  const int64_t* xo = a.col_xoff + j0 * a.kmax;
  if (cnt < 2 || xstep == 0) return false;
  const int64_t d = xo[1] - xo[0];
  if (d != xstep && d != -xstep) return false;
  for (int64_t k = 2; k < cnt; ++k)
    if (xo[k] - xo[k - 1] != d) return false;
  *rev = d < 0;
  return true;
}

template <typename P>
bool try_slide(const DwNhwcRow<typename P::T>& a, int64_t j0, int64_t xs, int64_t cs,
               int64_t ce, typename P::T* yb, int64_t ystep) {
  bool rev = false;
  if (ce - cs < P::W || !sliding(a, j0, xs, &rev)) return false;
  switch (a.cnt[j0]) {
    case 2: nhwc_slide<P, 8, 2>(a, j0, xs, rev, cs, ce, yb, ystep); return true;
    case 3: nhwc_slide<P, 8, 3>(a, j0, xs, rev, cs, ce, yb, ystep); return true;
    case 4: nhwc_slide<P, 8, 4>(a, j0, xs, rev, cs, ce, yb, ystep); return true;
    case 5: nhwc_slide<P, 8, 5>(a, j0, xs, rev, cs, ce, yb, ystep); return true;
    default: return false;
  }
}

// Blocks of 8 pixels are computed into a small stack buffer and copied out pixel by pixel, so
// whole output lines are written in sequence rather than as 8 interleaved half-line streams.
// Channels are taken in chunks that fit the buffer; every chunk has at least W channels (the
// last one may overlap its predecessor: pure outputs). The optional prefetch region (the next
// row's new source row) is spread over the blocks.
template <typename P>
void nhwc_row(const DwNhwcRow<typename P::T>& a) {
  using T = typename P::T;
  constexpr int64_t kBuf = 8192 / sizeof(T);
  alignas(64) T buf[kBuf];
  const int64_t js = a.jstep, C = a.C;
  const int64_t cw = C < kBuf / 8 ? C : kBuf / 8;
  // prefetch cursor: a share of the next source row per block of 8 pixels
  const char* pf = static_cast<const char*>(a.prefetch);
  const char* pfo = static_cast<const char*>(a.prefetch_out);
  const char* pf_end = pf ? pf + a.prefetch_bytes : nullptr;
  const int64_t pf_step = pf ? ((a.prefetch_bytes / ((a.ncols + 7) / 8 + 1)) | 63) + 1 : 0;
  for (int64_t cb = 0; cb < C; cb += cw) {
    const int64_t ce = cb + cw < C ? cb + cw : C;
    const int64_t cs = (ce - cb < P::W && C >= P::W) ? ce - P::W : cb;
    const int64_t n = ce - cs;
    const int64_t ystep = js * a.y_ps;
    for (int64_t f = 0; f < js; ++f) {
      int64_t j = f;
      while (j < a.ncols) {
        int64_t xs = 0;
        T* yj = a.y + j * a.y_ps + cs;
        if (pf < pf_end) {
          const char* e = pf + pf_step < pf_end ? pf + pf_step : pf_end;
          for (; pf < e; pf += 64) {
            __builtin_prefetch(pf, 0, 2);
            if (pfo) {
              __builtin_prefetch(pfo, 1, 2);
              pfo += 64;
            }
          }
        }
        // 8-pixel blocks when the pixels' sources are adjacent; with strided sources (stride
        // > 1 in the source) the memory traffic dominates and one pixel at a time (all its
        // channels in order) streams best.
        // near the row's end: an 8-pixel block that ends past j, shifted back over pixels
        // already computed (recomputed identically: pure outputs, same tap order)
        int64_t jb = j;
        bool b8 = uniform(a, j, 8, &xs) && xs <= C;
        if (!b8 && j + 8 * js > a.ncols)
          for (int64_t s = 1; s < 8 && j - s * js >= f && !b8; ++s)
            if (uniform(a, j - s * js, 8, &xs) && xs <= C) {
              jb = j - s * js;
              b8 = true;
            }
        if (b8) {
          T* yjb = a.y + jb * a.y_ps + cs;
          if (!try_slide<P>(a, jb, xs, cs, ce, buf, n)) nhwc_block<P, 8>(a, jb, xs, cs, ce, buf, n);
          for (int i = (j - jb) / js; i < 8; ++i)
            std::memcpy(yjb + i * ystep, buf + i * n, sizeof(T) * n);
          j = jb + 8 * js;
        } else if (uniform(a, j, 4, &xs) && xs <= C) {
          nhwc_block<P, 4>(a, j, xs, cs, ce, yj, ystep);
          j += 4 * js;
        } else if (xs > C) {
          nhwc_pixel_stream<P>(a, j, cs, ce, yj);
          j += js;
        } else {
          nhwc_block<P, 1>(a, j, 0, cs, ce, yj, ystep);
          j += js;
        }
      }
    }
  }
}

// acc[c] += sum_i dy[i*dy_ps + c] * x[i*x_step + c], i increasing.
template <typename P>
void nhwc_dot(const typename P::T* dy, int64_t dy_ps, const typename P::T* x, int64_t x_step,
              int64_t count, int64_t C, typename P::T* acc) {
  using T = typename P::T;
  using V = typename P::V;
  constexpr int64_t W = P::W;
  int64_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) {
    V a0 = P::load(acc + c), a1 = P::load(acc + c + W);
    V a2 = P::load(acc + c + 2 * W), a3 = P::load(acc + c + 3 * W);
    const T* d = dy + c;
    const T* s = x + c;
    for (int64_t i = 0; i < count; ++i, d += dy_ps, s += x_step) {
      a0 = P::fma(P::load(d), P::load(s), a0);
      a1 = P::fma(P::load(d + W), P::load(s + W), a1);
      a2 = P::fma(P::load(d + 2 * W), P::load(s + 2 * W), a2);
      a3 = P::fma(P::load(d + 3 * W), P::load(s + 3 * W), a3);
    }
    P::store(acc + c, a0);
    P::store(acc + c + W, a1);
    P::store(acc + c + 2 * W, a2);
    P::store(acc + c + 3 * W, a3);
  }
  for (; c + W <= C; c += W) {
    V a0 = P::load(acc + c);
    const T* d = dy + c;
    const T* s = x + c;
    for (int64_t i = 0; i < count; ++i, d += dy_ps, s += x_step) a0 = P::fma(P::load(d), P::load(s), a0);
    P::store(acc + c, a0);
  }
  for (; c < C; ++c) {
    T s = acc[c];
    for (int64_t i = 0; i < count; ++i) s += dy[i * dy_ps + c] * x[i * x_step + c];
    acc[c] = s;
  }
}

// U vectors of channels at c: each dy vector is loaded once for the three taps (3*U chains).
template <typename P, int U>
void nhwc_dot3_vec(const typename P::T* dy, const typename P::T* x, int64_t n, int64_t W,
                   int64_t off, int64_t C, int64_t c, typename P::T* acc) {
  using V = typename P::V;
  constexpr int64_t W_ = P::W;
  V a[3][U];
  for (int b = 0; b < 3; ++b)
    for (int u = 0; u < U; ++u) a[b][u] = P::load(acc + b * C + c + u * W_);
  // pixels j with all three taps inside the row: [j0, j1)
  const int64_t j0 = std::min(n, std::max<int64_t>(0, -off));
  const int64_t j1 = std::max(j0, std::min(n, W - off - 2));
  auto edge = [&](int64_t j) {
    for (int b = 0; b < 3; ++b) {
      const int64_t iw = j + off + b;
      if (iw < 0 || iw >= W) continue;
      for (int u = 0; u < U; ++u)
        a[b][u] = P::fma(P::load(dy + j * C + c + u * W_), P::load(x + iw * C + c + u * W_), a[b][u]);
    }
  };
  for (int64_t j = 0; j < j0; ++j) edge(j);
  for (int64_t j = j0; j < j1; ++j) {
    const typename P::T* xp = x + (j + off) * C + c;
    for (int u = 0; u < U; ++u) {
      const V d = P::load(dy + j * C + c + u * W_);
      a[0][u] = P::fma(d, P::load(xp + u * W_), a[0][u]);
      a[1][u] = P::fma(d, P::load(xp + C + u * W_), a[1][u]);
      a[2][u] = P::fma(d, P::load(xp + 2 * C + u * W_), a[2][u]);
    }
  }
  for (int64_t j = j1; j < n; ++j) edge(j);
  for (int b = 0; b < 3; ++b)
    for (int u = 0; u < U; ++u) P::store(acc + b * C + c + u * W_, a[b][u]);
}

template <typename P>
void nhwc_dot3(const typename P::T* dy, const typename P::T* x, int64_t n, int64_t W,
               int64_t off, int64_t C, typename P::T* acc) {
  using T = typename P::T;
  constexpr int64_t W_ = P::W;
  int64_t c = 0;
  for (; c + 2 * W_ <= C; c += 2 * W_) nhwc_dot3_vec<P, 2>(dy, x, n, W, off, C, c, acc);
  for (; c + W_ <= C; c += W_) nhwc_dot3_vec<P, 1>(dy, x, n, W, off, C, c, acc);
  for (; c < C; ++c)
    for (int b = 0; b < 3; ++b) {
      T s = acc[b * C + c];
      for (int64_t j = 0; j < n; ++j) {
        const int64_t iw = j + off + b;
        if (iw >= 0 && iw < W) s += dy[j * C + c] * x[iw * C + c];
      }
      acc[b * C + c] = s;
    }
}

template <typename P>
DwKernels<typename P::T> table() {
  DwKernels<typename P::T> k;
  k.rows = &rows<P>;
  k.rows3x3 = &rows3x3<P>;
  k.rows3x3_pad1 = &rows3x3_pad1<P>;
  k.nhwc_row3x3 = &nhwc_row3x3<P>;
  k.dot = &dot<P>;
  k.nhwc_row = &nhwc_row<P>;
  k.nhwc_dot = &nhwc_dot<P>;
  k.nhwc_dot3 = &nhwc_dot3<P>;
  return k;
}

}  // namespace dwimpl
}  // namespace fastconv
