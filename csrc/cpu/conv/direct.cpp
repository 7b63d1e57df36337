// Direct convolution. NCHW loops keep the output (or input) row innermost so that stride-1 rows
// are contiguous and vectorise; NHWC loops keep channels innermost. Tasks own disjoint outputs
// and run their sums in a fixed order, so results do not depend on the thread count.
#include "cpu/conv/direct.h"

#include <algorithm>
#include <cstring>

#include "cpu/parallel.h"

namespace fastconv {
namespace {

inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Output columns [lo, hi) whose input column ow*stride + off lies inside [0, in).
inline void valid_range(int64_t off, int64_t stride, int64_t in, int64_t out, int64_t& lo,
                        int64_t& hi) {
  lo = std::max<int64_t>(0, ceil_div(-off, stride));
  hi = std::min<int64_t>(out, floor_div(in - 1 - off, stride) + 1);
}

// Fixed-order dot product with 8 independent partial sums (vectorisable without reassociation).
template <typename T>
inline T dot_strided(const T* a, const T* b, int64_t n, int64_t sb) {
  T acc[8] = {};
  int64_t i = 0;
  if (sb == 1)
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  for (; i < n; ++i) acc[i & 7] += a[i] * b[i * sb];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

template <typename T>
void direct_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, Cg = p.in_cg(), Og = p.out_cg();
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, KH = p.k_h, KW = p.k_w;
  if (p.layout == Layout::NCHW) {
    parallel_for(N * O, [&](int64_t t, int) {
      const int64_t n = t / O, o = t % O, g = o / Og;
      T* yp = y + t * Ho * Wo;
      const T b0 = bias ? bias[o] : T(0);
      for (int64_t e = 0; e < Ho * Wo; ++e) yp[e] = b0;
      for (int64_t ci = 0; ci < Cg; ++ci) {
        const T* xp = x + (n * C + g * Cg + ci) * H * W;
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw) {
            const T wv = w[((o * Cg + ci) * KH + kh) * KW + kw];
            const int64_t off = kw * p.dil_w - p.pad_left;
            int64_t lo, hi;
            valid_range(off, p.stride_w, W, Wo, lo, hi);
            if (hi <= lo) continue;
            for (int64_t oh = 0; oh < Ho; ++oh) {
              const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
              if (ih < 0 || ih >= H) continue;
              T* yr = yp + oh * Wo;
              const T* xr = xp + ih * W;
              if (p.stride_w == 1)
                for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow + off];
              else
                for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * p.stride_w + off];
            }
          }
      }
    });
    return;
  }
  // NHWC: one task per output row; channels innermost.
  parallel_for(N * Ho, [&](int64_t t, int) {
    const int64_t n = t / Ho, oh = t % Ho;
    for (int64_t ow = 0; ow < Wo; ++ow) {
      T* yo = y + ((n * Ho + oh) * Wo + ow) * O;
      for (int64_t o = 0; o < O; ++o) yo[o] = bias ? bias[o] : T(0);
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
        if (ih < 0 || ih >= H) continue;
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t iw = ow * p.stride_w - p.pad_left + kw * p.dil_w;
          if (iw < 0 || iw >= W) continue;
          const T* xi = x + ((n * H + ih) * W + iw) * C;
          const T* wk = w + (kh * KW + kw) * Cg * O;
          if (Cg == 1 && Og == 1) {
            for (int64_t o = 0; o < O; ++o) yo[o] += wk[o] * xi[o];
          } else {
            for (int64_t ci = 0; ci < Cg; ++ci)
              for (int64_t o = 0; o < O; ++o) yo[o] += wk[ci * O + o] * xi[(o / Og) * Cg + ci];
          }
        }
      }
    }
  });
}

template <typename T>
void direct_input_grad(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, Cg = p.in_cg(), Og = p.out_cg();
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, KH = p.k_h, KW = p.k_w;
  if (p.layout == Layout::NCHW) {
    parallel_for(N * C, [&](int64_t t, int) {
      const int64_t n = t / C, c = t % C, g = c / Cg, ci = c % Cg;
      T* xp = dx + t * H * W;
      std::memset(xp, 0, sizeof(T) * H * W);
      for (int64_t oo = 0; oo < Og; ++oo) {
        const int64_t o = g * Og + oo;
        const T* yp = dy + (n * O + o) * Ho * Wo;
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw) {
            const T wv = w[((o * Cg + ci) * KH + kh) * KW + kw];
            const int64_t off = kw * p.dil_w - p.pad_left;
            int64_t lo, hi;
            valid_range(off, p.stride_w, W, Wo, lo, hi);
            if (hi <= lo) continue;
            for (int64_t oh = 0; oh < Ho; ++oh) {
              const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
              if (ih < 0 || ih >= H) continue;
              T* xr = xp + ih * W;
              const T* yr = yp + oh * Wo;
              if (p.stride_w == 1)
                for (int64_t ow = lo; ow < hi; ++ow) xr[ow + off] += wv * yr[ow];
              else
                for (int64_t ow = lo; ow < hi; ++ow) xr[ow * p.stride_w + off] += wv * yr[ow];
            }
          }
      }
    });
    return;
  }
  // NHWC: scatter per image (windows of neighbouring rows overlap).
  parallel_for(N, [&](int64_t n, int) {
    T* xn = dx + n * H * W * C;
    std::memset(xn, 0, sizeof(T) * H * W * C);
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const T* yo = dy + ((n * Ho + oh) * Wo + ow) * O;
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t iw = ow * p.stride_w - p.pad_left + kw * p.dil_w;
            if (iw < 0 || iw >= W) continue;
            T* xi = xn + (ih * W + iw) * C;
            const T* wk = w + (kh * KW + kw) * Cg * O;
            if (Cg == 1 && Og == 1) {
              for (int64_t c = 0; c < C; ++c) xi[c] += wk[c] * yo[c];
            } else {
              for (int64_t ci = 0; ci < Cg; ++ci)
                for (int64_t o = 0; o < O; ++o) xi[(o / Og) * Cg + ci] += wk[ci * O + o] * yo[o];
            }
          }
        }
      }
  });
}

template <typename T>
void direct_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, Cg = p.in_cg(), Og = p.out_cg();
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, KH = p.k_h, KW = p.k_w;
  if (p.layout == Layout::NCHW) {
    parallel_for(O * Cg, [&](int64_t t, int) {
      const int64_t o = t / Cg, ci = t % Cg, c = (o / Og) * Cg + ci;
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t off = kw * p.dil_w - p.pad_left;
          int64_t lo, hi;
          valid_range(off, p.stride_w, W, Wo, lo, hi);
          T s = T(0);
          if (hi > lo)
            for (int64_t n = 0; n < N; ++n)
              for (int64_t oh = 0; oh < Ho; ++oh) {
                const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
                if (ih < 0 || ih >= H) continue;
                const T* yr = dy + ((n * O + o) * Ho + oh) * Wo;
                const T* xr = x + ((n * C + c) * H + ih) * W;
                s += dot_strided(yr + lo, xr + lo * p.stride_w + off, hi - lo, p.stride_w);
              }
          dw[((o * Cg + ci) * KH + kh) * KW + kw] = s;
        }
    });
    return;
  }
  // NHWC: one task per kernel tap (kh, kw) owning the slab dw[kh][kw][:][:].
  parallel_for(KH * KW, [&](int64_t t, int) {
    const int64_t kh = t / KW, kw = t % KW;
    T* slab = dw + t * Cg * O;
    std::fill(slab, slab + Cg * O, T(0));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
        if (ih < 0 || ih >= H) continue;
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t iw = ow * p.stride_w - p.pad_left + kw * p.dil_w;
          if (iw < 0 || iw >= W) continue;
          const T* xi = x + ((n * H + ih) * W + iw) * C;
          const T* yo = dy + ((n * Ho + oh) * Wo + ow) * O;
          if (Cg == 1 && Og == 1) {
            for (int64_t c = 0; c < C; ++c) slab[c] += xi[c] * yo[c];
          } else {
            for (int64_t ci = 0; ci < Cg; ++ci)
              for (int64_t o = 0; o < O; ++o) slab[ci * O + o] += xi[(o / Og) * Cg + ci] * yo[o];
          }
        }
      }
  });
}

#define FC_INSTANTIATE(T)                                                                 \
  template void direct_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template void direct_input_grad<T>(const Conv2dParams&, const T*, const T*, T*);        \
  template void direct_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
