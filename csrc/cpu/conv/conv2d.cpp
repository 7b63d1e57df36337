// Convolution as implicit GEMM: the im2col matrix is never materialised. Panel sources read it
// straight from the image while the GEMM driver packs (forward, weight gradient), and the input
// gradient computes column tiles that are scattered back (col2im) at once.
//
//   op        NCHW (per image n, group g)                 NHWC (per image n, group g)
//   forward   y[o][p]   = W[o][q] * col[q][p]             y[p][o]   = col[p][q] * W[q][o]
//   grad x    dcol[q][p] = W[o][q] * dy[o][p]  -> col2im   dcol[p][q] = dy[p][o] * W[q][o] -> col2im
//   grad w    dW[o][q] += dy[o][p] * col[q][p]            dW[q][o] += col[q][p] * dy[p][o]
// with q the patch index ((c, kh, kw) for NCHW, (kh, kw, c) for NHWC) and p the output pixel.
// Tasks never depend on the thread count, so results are bitwise identical for any count.
#include "cpu/conv/conv2d.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <cstdlib>
#include <stdexcept>
#include <type_traits>

#include "common/workspace.h"
#include "cpu/conv/depthwise.h"
#include "cpu/conv/direct.h"
#include "cpu/conv/smallc.h"
#include "cpu/conv/winograd.h"
#include "cpu/dispatch.h"
#include "cpu/gemm/gemm.h"
#include "cpu/parallel.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace fastconv {
namespace {

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
inline int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ------------------------------------------------------------------------------------------
// The virtual im2col matrix of one group: rows q (patch index), columns p (output pixel).
// ------------------------------------------------------------------------------------------
struct ColGeom {
  const Conv2dParams& P;
  int64_t Cg, KK, Q, npix;
  int64_t hs, ws, cs;  // element strides of x along h, w, channel within one image
  int64_t img;         // image stride of x
  int64_t c_off;       // offset of the group's first channel
  bool nchw;

  ColGeom(const Conv2dParams& p, int64_t g) : P(p) {
    Cg = p.in_cg();
    KK = p.kk();
    Q = Cg * KK;
    npix = p.out_plane();
    nchw = p.layout == Layout::NCHW;
    if (nchw) {
      ws = 1; hs = p.in_w; cs = p.in_h * p.in_w;
    } else {
      cs = 1; ws = p.in_c; hs = p.in_w * p.in_c;
    }
    img = p.in_c * p.in_h * p.in_w;
    c_off = g * Cg * cs;
  }
  // (c, kh, kw) of q + 1, given those of q.
  void advance(int64_t& c, int64_t& kh, int64_t& kw) const {
    if (nchw) {
      if (++kw < P.k_w) return;
      kw = 0;
      if (++kh < P.k_h) return;
      kh = 0;
      ++c;
    } else {
      if (++c < Cg) return;
      c = 0;
      if (++kw < P.k_w) return;
      kw = 0;
      ++kh;
    }
  }
  void decode(int64_t q, int64_t& c, int64_t& kh, int64_t& kw) const {
    if (nchw) {
      kw = q % P.k_w;
      const int64_t t = q / P.k_w;
      kh = t % P.k_h;
      c = t / P.k_h;
    } else {
      c = q % Cg;
      const int64_t t = q / Cg;
      kw = t % P.k_w;
      kh = t / P.k_w;
    }
  }
};

// For a fixed row q, walks pixels [p0, p1) of one image and reports runs:
//   sink(i, len, src, stride): elements i .. i+len-1 (relative to p0) are src[0], src[stride], ...
//   or zeros when src == nullptr (padding).
template <typename Ptr, typename Sink>
inline void runs_along_pixels(const ColGeom& G, Ptr x_img, int64_t q, int64_t p0, int64_t p1,
                              Sink&& sink) {
  const Conv2dParams& P = G.P;
  int64_t c, kh, kw;
  G.decode(q, c, kh, kw);
  Ptr xc = x_img + G.c_off + c * G.cs;
  const int64_t off_w = kw * P.dil_w - P.pad_left;
  const int64_t ow_lo = std::max<int64_t>(0, ceil_div(-off_w, P.stride_w));
  const int64_t ow_hi = std::min<int64_t>(P.out_w, floor_div(P.in_w - 1 - off_w, P.stride_w) + 1);
  int64_t oh = p0 / P.out_w, ow = p0 % P.out_w, p = p0;
  while (p < p1) {
    const int64_t len = std::min(P.out_w - ow, p1 - p);
    const int64_t i = p - p0, end = ow + len;
    const int64_t ih = oh * P.stride_h - P.pad_top + kh * P.dil_h;
    if (ih < 0 || ih >= P.in_h || ow_hi <= ow_lo) {
      sink(i, len, static_cast<Ptr>(nullptr), 0);
    } else {
      const int64_t a = std::min(std::max(ow_lo, ow), end);
      const int64_t b = std::min(std::max(ow_hi, a), end);
      if (a > ow) sink(i, a - ow, static_cast<Ptr>(nullptr), 0);
      if (b > a) sink(i + a - ow, b - a, xc + ih * G.hs + (a * P.stride_w + off_w) * G.ws,
                      P.stride_w * G.ws);
      if (end > b) sink(i + b - ow, end - b, static_cast<Ptr>(nullptr), 0);
    }
    p += len;
    ++oh;
    ow = 0;
  }
}

// For a fixed pixel p, walks rows [q0, q1) and reports runs like runs_along_pixels
// (NHWC: runs over channels, stride 1; NCHW: runs over kw, stride dil_w).
template <typename Ptr, typename Sink>
inline void runs_along_q(const ColGeom& G, Ptr x_img, int64_t p, int64_t q0, int64_t q1,
                         Sink&& sink) {
  const Conv2dParams& P = G.P;
  const int64_t ih0 = (p / P.out_w) * P.stride_h - P.pad_top;
  const int64_t iw0 = (p % P.out_w) * P.stride_w - P.pad_left;
  Ptr xg = x_img + G.c_off;
  int64_t q = q0;
  if (!G.nchw) {
    while (q < q1) {
      const int64_t c = q % G.Cg, t = q / G.Cg;
      const int64_t kh = t / P.k_w, kw = t % P.k_w;
      const int64_t len = std::min(G.Cg - c, q1 - q);
      const int64_t ih = ih0 + kh * P.dil_h, iw = iw0 + kw * P.dil_w;
      if (ih < 0 || ih >= P.in_h || iw < 0 || iw >= P.in_w)
        sink(q - q0, len, static_cast<Ptr>(nullptr), 0);
      else
        sink(q - q0, len, xg + ih * G.hs + iw * G.ws + c, 1);
      q += len;
    }
    return;
  }
  const int64_t kw_lo = std::max<int64_t>(0, ceil_div(-iw0, P.dil_w));
  const int64_t kw_hi = std::min<int64_t>(P.k_w, floor_div(P.in_w - 1 - iw0, P.dil_w) + 1);
  while (q < q1) {
    const int64_t kw = q % P.k_w, t = q / P.k_w;
    const int64_t kh = t % P.k_h, c = t / P.k_h;
    const int64_t len = std::min(P.k_w - kw, q1 - q), end = kw + len;
    const int64_t i = q - q0;
    const int64_t ih = ih0 + kh * P.dil_h;
    if (ih < 0 || ih >= P.in_h || kw_hi <= kw_lo) {
      sink(i, len, static_cast<Ptr>(nullptr), 0);
    } else {
      const int64_t a = std::min(std::max(kw_lo, kw), end);
      const int64_t b = std::min(std::max(kw_hi, a), end);
      if (a > kw) sink(i, a - kw, static_cast<Ptr>(nullptr), 0);
      if (b > a)
        sink(i + a - kw, b - a, xg + c * G.cs + ih * G.hs + (iw0 + a * P.dil_w) * G.ws,
             P.dil_w * G.ws);
      if (end > b) sink(i + b - kw, end - b, static_cast<Ptr>(nullptr), 0);
    }
    q += len;
  }
}

// Writes a run into consecutive lanes of packed panels [kc][W] at depth kk, crossing panels.
template <typename T>
struct LanesSink {
  T* buf;
  int64_t kc, kk;
  int W;
  void operator()(int64_t i, int64_t len, const T* src, int64_t stride) const {
    while (len > 0) {
      const int64_t panel = i / W, lane = i % W;
      const int64_t n = std::min<int64_t>(len, W - lane);
      T* d = buf + (panel * kc + kk) * W + lane;
      if (!src) {
        for (int64_t j = 0; j < n; ++j) d[j] = T(0);
      } else if (stride == 1) {
        for (int64_t j = 0; j < n; ++j) d[j] = src[j];
        src += n;
      } else {
        for (int64_t j = 0; j < n; ++j) d[j] = src[j * stride];
        src += n * stride;
      }
      i += n;
      len -= n;
    }
  }
};

// Writes a run along the depth of one lane: element i goes to base[i * W].
template <typename T>
struct DepthSink {
  T* base;
  int W;
  void operator()(int64_t i, int64_t len, const T* src, int64_t stride) const {
    T* d = base + i * W;
    if (!src)
      for (int64_t j = 0; j < len; ++j) d[j * W] = T(0);
    else
      for (int64_t j = 0; j < len; ++j) d[j * W] = src[j * stride];
  }
};

// Copies one full panel row (W = MR or NR elements) with a compile-time length, so the copy
// is a few inlined vector moves instead of a memcpy call.
template <typename T>
inline void copy_panel_row(T* dst, const T* src, int W) {
  switch (W) {
    case 4: std::memcpy(dst, src, 4 * sizeof(T)); return;
    case 6: std::memcpy(dst, src, 6 * sizeof(T)); return;
    case 8: std::memcpy(dst, src, 8 * sizeof(T)); return;
    case 16: std::memcpy(dst, src, 16 * sizeof(T)); return;
    case 32: std::memcpy(dst, src, 32 * sizeof(T)); return;
    default: std::memcpy(dst, src, static_cast<size_t>(W) * sizeof(T));
  }
}

// d[0..n) = s[0..n) for the short runs of a panel row: fixed-size (vector) moves, the tail
// as one move overlapping the last chunk.
template <typename T>
inline void copy_short(T* d, const T* s, int64_t n) {
  if (n >= 8) {
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) std::memcpy(d + e, s + e, 8 * sizeof(T));
    if (e < n) std::memcpy(d + n - 8, s + n - 8, 8 * sizeof(T));
  } else if (n >= 4) {
    std::memcpy(d, s, 4 * sizeof(T));
    std::memcpy(d + n - 4, s + n - 4, 4 * sizeof(T));
  } else {
    for (int64_t e = 0; e < n; ++e) d[e] = s[e];
  }
}

template <typename T>
void zero_tail_lanes(T* buf, int64_t nl, int64_t kc, int W) {
  const int64_t lanes = nl % W;
  if (lanes == 0) return;
  T* last = buf + (nl / W) * kc * W;
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t l = lanes; l < W; ++l) last[k * W + l] = T(0);
}

// col[p][q] as lanes = pixels p, depth = q (forward). Pixel-major packing (row segments of
// each q) suits NCHW and NHWC with few channels; q-major packing (channel runs of each pixel)
// suits NHWC with many.
template <typename T>
struct ColPixelLanes final : PanelSource<T> {
  const ColGeom& G;
  const T* x_img;
  bool pixel_major;
  ColPixelLanes(const ColGeom& g, const T* x) : G(g), x_img(x), pixel_major(g.nchw) {}
  ColPixelLanes(const ColGeom& g, const T* x, bool pm) : G(g), x_img(x), pixel_major(pm) {}
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override {
    if (pixel_major) {
      if (!pack_by_rows(l0, nl, k0, kc, W, buf)) pack_pixel_major(l0, nl, k0, kc, W, buf);
    } else {
      for (int64_t i = 0; i < nl; ++i)
        runs_along_q(G, x_img, l0 + i, k0, k0 + kc,
                     DepthSink<T>{buf + (i / W) * kc * W + i % W, W});
    }
    zero_tail_lanes(buf, nl, kc, W);
    return buf;
  }

  // Writes lanes [j, j + len) of depth row kk: zeros (src == nullptr) or src[0], src[step], ...
  // Lanes cross panel boundaries (panel j / W, lane j % W).
  static void put_lanes(T* buf, int64_t kc, int64_t kk, int W, int64_t j, int64_t len,
                        const T* src, int64_t step) {
    int64_t panel = j / W, lane = j - panel * W;
    T* d = buf + (panel * kc + kk) * W + lane;
    while (len > 0) {
      const int64_t n = std::min<int64_t>(len, W - lane);
      if (!src) {
        for (int64_t e = 0; e < n; ++e) d[e] = T(0);
      } else if (step == 1) {
        copy_short(d, src, n);
        src += n;
      } else {
        for (int64_t e = 0; e < n; ++e) d[e] = src[e * step];
        src += n * step;
      }
      len -= n;
      d += kc * W - lane;  // next panel, lane 0
      lane = 0;
    }
  }

  // Depth-row-major packing: the block's lanes are cut once into runs along output rows, then
  // each depth row q (one input row of one channel and kernel offset) is copied run by run, so
  // the image is read row after row (few memory streams) and the per-q bookkeeping is paid once
  // per run, not once per panel. Returns false (caller falls back) when the block has too many
  // runs (very narrow outputs).
  bool pack_by_rows(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const {
    const Conv2dParams& P = G.P;
    const int64_t Wo = P.out_w, Ho = P.out_h, in_w = P.in_w, in_h = P.in_h, sw = P.stride_w;
    constexpr int kMaxRuns = 48;
    struct Run { int64_t j, len, img, oh, ow; };
    Run runs[kMaxRuns];
    int nr = 0;
    {
      int64_t pp = l0, j = 0;
      while (j < nl) {
        if (nr == kMaxRuns) return false;
        const int64_t n = pp / G.npix, pix = pp % G.npix, oh = pix / Wo, ow = pix % Wo;
        const int64_t len = std::min(nl - j, Wo - ow);
        runs[nr++] = Run{j, len, n * G.img, oh, ow};
        j += len;
        pp += len;
      }
      (void)Ho;
    }
    const int64_t step = sw * G.ws;
    int64_t c, kh, kw;
    G.decode(k0, c, kh, kw);
    for (int64_t kk = 0; kk < kc; ++kk) {
      const T* xc = x_img + G.c_off + c * G.cs;
      const int64_t dh_off = kh * P.dil_h - P.pad_top, dw_off = kw * P.dil_w - P.pad_left;
      for (int r = 0; r < nr; ++r) {
        const Run& R = runs[r];
        const int64_t ih = R.oh * P.stride_h + dh_off;
        if (ih < 0 || ih >= in_h) {
          put_lanes(buf, kc, kk, W, R.j, R.len, nullptr, 0);
          continue;
        }
        const int64_t iw = R.ow * sw + dw_off;
        // lanes e in [lo, hi) read inside the row: 0 <= iw + e*sw < in_w
        int64_t lo, hi;
        if (sw == 1) {
          lo = std::min(R.len, std::max<int64_t>(0, -iw));
          hi = std::max(lo, std::min(R.len, in_w - iw));
        } else {
          lo = std::min(R.len, std::max<int64_t>(0, ceil_div(-iw, sw)));
          hi = std::max(lo, std::min(R.len, floor_div(in_w - 1 - iw, sw) + 1));
        }
        if (lo > 0) put_lanes(buf, kc, kk, W, R.j, lo, nullptr, 0);
        if (hi > lo)
          put_lanes(buf, kc, kk, W, R.j + lo, hi - lo,
                    xc + R.img + ih * G.hs + (iw + lo * sw) * G.ws, step);
        if (R.len > hi) put_lanes(buf, kc, kk, W, R.j + hi, R.len - hi, nullptr, 0);
      }
      G.advance(c, kh, kw);
    }
    return true;
  }

  // The hot packer of the NCHW forward pass (and of NHWC with few channels). Panel by panel (W output pixels, which span at most
  // a few output rows, possibly of consecutive images: a lane index past the image's last pixel
  // continues in the next image), q by q with (c, kh, kw) advanced incrementally: every row
  // segment of a panel is one contiguous (stride_w == 1) or strided copy, with a per-lane bounds
  // test only where the segment touches the padding.
  void pack_pixel_major(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const {
    const Conv2dParams& P = G.P;
    const int64_t Wo = P.out_w, Ho = P.out_h, in_w = P.in_w, in_h = P.in_h, sw = P.stride_w;
    const int64_t step = sw * G.ws;  // element distance between neighbouring lanes of a segment
    for (int64_t pb = 0; pb < nl; pb += W) {
      const int64_t lanes = std::min<int64_t>(W, nl - pb);
      T* dst = buf + (pb / W) * kc * W;
      const int64_t p_first = l0 + pb;
      const int64_t n0 = p_first / G.npix, pix0 = p_first % G.npix;
      const int64_t oh0 = pix0 / Wo, ow0 = pix0 % Wo;
      int64_t c, kh, kw;
      G.decode(k0, c, kh, kw);
      for (int64_t kk = 0; kk < kc; ++kk) {
        T* d = dst + kk * W;
        const T* xc = x_img + n0 * G.img + G.c_off + c * G.cs;
        const int64_t dh_off = kh * P.dil_h - P.pad_top, dw_off = kw * P.dil_w - P.pad_left;
        int64_t oh = oh0, ow = ow0;
        for (int64_t j = 0; j < lanes;) {
          if (oh == Ho) {  // continue in the next image
            oh = 0;
            xc += G.img;
          }
          const int64_t seg = std::min(lanes - j, Wo - ow);
          const int64_t ih = oh * P.stride_h + dh_off;
          const int64_t iw = ow * sw + dw_off;
          T* ds = d + j;
          if (ih < 0 || ih >= in_h) {
            for (int64_t e = 0; e < seg; ++e) ds[e] = T(0);
          } else {
            const T* row = xc + ih * G.hs;
            if (iw >= 0 && iw + (seg - 1) * sw < in_w) {
              if (step == 1 && seg == W)
                copy_panel_row(ds, row + iw, W);
              else if (step == 1)
                std::memcpy(ds, row + iw, sizeof(T) * static_cast<size_t>(seg));
              else
                for (int64_t e = 0; e < seg; ++e) ds[e] = row[(iw + e * sw) * G.ws];
            } else {
              for (int64_t e = 0; e < seg; ++e) {
                const int64_t ie = iw + e * sw;
                ds[e] = (ie >= 0 && ie < in_w) ? row[ie * G.ws] : T(0);
              }
            }
          }
          j += seg;
          ++oh;
          ow = 0;
        }
        G.advance(c, kh, kw);
      }
    }
  }
};

// col[q][pp] as lanes = q, depth = pp, a pixel index running over the whole batch (weight grad).
template <typename T>
struct ColQLanes final : PanelSource<T> {
  const ColGeom& G;
  const T* x;
  bool pixel_runs;  // read each lane's pixels as row runs (NCHW, or NHWC with few channels)
  ColQLanes(const ColGeom& g, const T* x_, bool pr) : G(g), x(x_), pixel_runs(pr) {}
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override {
    if (pixel_runs) {
      for (int64_t i = 0; i < nl; ++i) {
        T* lane = buf + (i / W) * kc * W + i % W;
        for (int64_t pp = k0; pp < k0 + kc;) {  // split the depth range at image boundaries
          const int64_t n = pp / G.npix, p = pp % G.npix;
          const int64_t p1 = std::min(G.npix, p + (k0 + kc - pp));
          runs_along_pixels(G, x + n * G.img, l0 + i, p, p1, DepthSink<T>{lane + (pp - k0) * W, W});
          pp += p1 - p;
        }
      }
    } else {
      for (int64_t kk = 0; kk < kc; ++kk) {
        const int64_t pp = k0 + kk, n = pp / G.npix, p = pp % G.npix;
        runs_along_q(G, x + n * G.img, p, l0, l0 + nl, LanesSink<T>{buf, kc, kk, W});
      }
    }
    zero_tail_lanes(buf, nl, kc, W);
    return buf;
  }
};

// dy[n][o][p] of one group as lanes = o, depth = pp over the batch (NCHW weight grad).
template <typename T>
struct BatchedRows final : PanelSource<T> {
  const T* base;  // dy + g*Og*npix
  int64_t npix, img;
  BatchedRows(const T* b, int64_t np, int64_t im) : base(b), npix(np), img(im) {}
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override {
    for (int64_t i = 0; i < nl; ++i) {
      T* lane = buf + (i / W) * kc * W + i % W;
      for (int64_t pp = k0; pp < k0 + kc;) {
        const int64_t n = pp / npix, p = pp % npix;
        const int64_t len = std::min(npix - p, k0 + kc - pp);
        const T* s = base + n * img + (l0 + i) * npix + p;
        T* d = lane + (pp - k0) * W;
        for (int64_t j = 0; j < len; ++j) d[j * W] = s[j];
        pp += len;
      }
    }
    zero_tail_lanes(buf, nl, kc, W);
    return buf;
  }
};

// dy[n][o][p] of one group as lanes = (n, p) running over consecutive images, depth = o
// (NCHW input gradient of small images).
template <typename T>
struct BatchedCols final : PanelSource<T> {
  const T* base;  // dy + (n0*O + g*Og)*npix
  int64_t npix, img;
  BatchedCols(const T* b, int64_t np, int64_t im) : base(b), npix(np), img(im) {}
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override {
    for (int64_t pb = 0; pb < nl; pb += W) {
      const int64_t lanes = std::min<int64_t>(W, nl - pb);
      T* dst = buf + (pb / W) * kc * W;
      for (int64_t k = 0; k < kc; ++k) {
        T* d = dst + k * W;
        for (int64_t j = 0; j < lanes;) {  // one run per image
          const int64_t l = l0 + pb + j, n = l / npix, p = l % npix;
          const int64_t len = std::min(npix - p, lanes - j);
          const T* s = base + n * img + (k0 + k) * npix + p;
          for (int64_t e = 0; e < len; ++e) d[j + e] = s[e];
          j += len;
        }
      }
    }
    zero_tail_lanes(buf, nl, kc, W);
    return buf;
  }
};

// The weight operand of one group. Packed once per call (and reused by every task) when all
// groups' packed weights fit in 1/4 of the layer's im2col buffer; layers with big weights and
// small images (e.g. 512 channels at 7x7, whose weights outweigh the im2col matrix) instead
// let the GEMM driver pack it block by block like any strided matrix, so one call's extra
// memory stays within that bound.
template <typename T>
struct WeightSource final : PanelSource<T> {
  StridedSource<T> strided;
  std::unique_ptr<PrepackedSource<T>> packed;
  WeightSource(const T* base, int64_t lane_stride, int64_t k_stride, int64_t L, int64_t K, int W,
               int64_t kc, bool prepack)
      : strided(base, lane_stride, k_stride) {
    if (prepack) packed.reset(new PrepackedSource<T>(strided, L, K, W, kc));
  }
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override {
    return packed ? packed->pack(l0, nl, k0, kc, W, buf) : strided.pack(l0, nl, k0, kc, W, buf);
  }
};

bool prepack_weights(const Conv2dParams& p) {
  const double im2col = double(p.batch) * double(p.in_c) * double(p.kk()) * double(p.out_plane());
  const double weights = double(p.out_c) * double(p.in_cg()) * double(p.kk());
  return weights <= im2col / 4;
}

// Strided NCHW input gradient: accumulate each tap's product straight into its phase plane
// (weights packed once). Its GEMMs have only the channel block's rows, so layers with few
// input channels per group (the 7x7 stem: 3) keep the column tile, whose rows are all
// channel-tap pairs (147 for the stem; the per-tap form ran it 1.6x slower).
bool phase_grad_direct(const Conv2dParams& p) { return prepack_weights(p) && p.in_cg() >= 16; }

// 1x1 kernel, stride 1, no padding: the im2col matrix is the input itself (a plain GEMM).
bool is_plain_gemm(const Conv2dParams& p) {
  return p.k_h == 1 && p.k_w == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 &&
         p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
}

// Per-thread scratch, allocated once per call.
template <typename T>
struct ThreadScratch {
  AlignedArray<T> mem;
  int64_t per = 0;
  int threads;  // pass to parallel_for(ntasks, threads, fn): tids stay below it
  ThreadScratch(int t, int64_t per_thread) : per((per_thread + 15) / 16 * 16), threads(t) {
    mem.reset(checked_mul(per, threads, "workspace size"));
  }
  T* at(int tid) { return mem.data() + tid * per; }
};

// ------------------------------------------------------------------------------------------
// Indirect-B GEMM: B read in place, its depth row k being the run at b + boff[k] (the runs of
// the NCHW stride-phase planes), A the weights packed once. Saves the copy of every im2col
// row into packed panels, which the microkernel then re-read.
// ------------------------------------------------------------------------------------------
// Index table k -> k*NR (the layout of one packed panel), for the partial last panel.
template <typename T>
std::vector<int64_t> panel_offsets(const GemmRowsKernel<T>& rk) {
  std::vector<int64_t> seq(static_cast<size_t>(rk.kc));
  for (int64_t k = 0; k < rk.kc; ++k) seq[k] = k * rk.nr;
  return seq;
}

// Scratch (elements) of ind_times: one packed kc x NR panel.
template <typename T>
int64_t ind_scratch(const GemmRowsKernel<T>& rk) {
  return rk.kc * rk.nr;
}

// buf[k*NR + l] = b[off[k] + l] for l < nr, zero for nr <= l < NR (k < kc): a partial panel.
template <typename T>
void copy_partial_panel(T* buf, const T* b, const int64_t* off, int64_t kc, int64_t nr,
                        int64_t NR) {
  for (int64_t k = 0; k < kc; ++k) {
    copy_short(buf + k * NR, b + off[k], nr);
    for (int64_t l = nr; l < NR; ++l) buf[k * NR + l] = T(0);
  }
}

// C[i][j] = sum_k A[i][k] b[boff[k] + j] for i < m, j < n into c[i*ldc + j]; A prepacked with
// the kernel's MR and depth blocks. Loops: depth block -> NR-lane panel (read in place, in L1
// across the tiles; the next one prefetched) -> MR-row tile. The last, partial panel is copied
// into buf so nothing past n is read; seq = panel_offsets(rk).
template <typename T>
void ind_times(const GemmRowsKernel<T>& rk, int64_t m, int64_t n, int64_t K,
               const PrepackedSource<T>& A, const T* b, const int64_t* boff, const int64_t* seq,
               T* c, int64_t ldc, T* buf) {
  const int64_t MR = rk.mr, NR = rk.nr;
  const int64_t span = NR * static_cast<int64_t>(sizeof(T));  // bytes of one panel row
  const KBlocks kb = k_blocks(K, rk.kc);
  for (int64_t blk = 0; blk < kb.count; ++blk) {
    const int64_t k0 = blk * kb.size, kc = std::min(kb.size, K - k0);
    const T* Ap = A.pack(0, m, k0, kc, static_cast<int>(MR), nullptr);
    const int64_t* off = boff + k0;
    for (int64_t j = 0; j < n; j += NR) {
      const int64_t nr = std::min(NR, n - j);
      const T* bj = b + j;
      const int64_t* oj = off;
      if (nr < NR) {  // partial panel: copied, so nothing past n is read
        copy_partial_panel(buf, b + j, off, kc, nr, NR);
        bj = buf;
        oj = seq;
      } else if (j + 2 * NR <= n) {
        for (int64_t k = 0; k < kc; ++k) {
          const char* nx = reinterpret_cast<const char*>(b + off[k] + j + NR);
          __builtin_prefetch(nx);
          if (span > 64) __builtin_prefetch(nx + span - 1);
        }
      }
      for (int64_t i = 0; i < m; i += MR)
        rk.ind(kc, Ap + (i / MR) * kc * MR, bj, oj, c + i * ldc + j, ldc, 1, std::min(MR, m - i),
               nr, blk > 0);
    }
  }
}

// ind_times for B streamed from memory once (the rows of a big NCHW activation, 1x1 layers):
// B rows are read in place, so nothing is copied; the panel two steps ahead is prefetched into
// L2 in slices between the microkernel calls (its rows lie a plane apart, which alias to few L1
// sets, so into L2 only), and so are the C lines of the next tile (written once, for writing).
// Only full NR panels are read in place; the partial last one is copied into buf.
template <typename T>
void ind_times_streamed(const GemmRowsKernel<T>& rk, int64_t m, int64_t n, int64_t K,
                        const PrepackedSource<T>& A, const T* b, const int64_t* boff,
                        const int64_t* seq, T* c, int64_t ldc, T* buf) {
  const int64_t MR = rk.mr, NR = rk.nr, PF = 2;
  const KBlocks kb = k_blocks(K, rk.kc);
  const int64_t tiles = div_up(m, MR);
  // Panels start on cache lines (b's rows share its alignment: NumPy's buffers are often 16
  // bytes past one, and a panel row across two lines ran 25 % slower): a partial head panel
  // first. Panel q covers lanes [js(q), js(q+1)).
  const int64_t lane_b = static_cast<int64_t>(sizeof(T));
  const int64_t mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(b) % 64);
  const int64_t head = (mis % lane_b == 0) ? std::min(n, ((64 - mis) % 64) / lane_b % NR) : 0;
  auto js = [&](int64_t q) { return q == 0 ? 0 : std::min(n, head + (q - (head > 0)) * NR); };
  const int64_t panels = (head > 0) + div_up(n - head, NR);
  auto prefetch_rows = [&](int64_t q, int64_t k0, int64_t kc, int64_t r0, int64_t r1) {
    const int64_t l0 = js(q), l1 = js(q + 1);
    for (int64_t k = r0; k < std::min(kc, r1); ++k) {
      const T* r = b + boff[k0 + k];
      __builtin_prefetch(r + l0, 0, 2);
      __builtin_prefetch(r + l1 - 1, 0, 2);
    }
  };
  for (int64_t blk = 0; blk < kb.count; ++blk) {
    const int64_t k0 = blk * kb.size, kc = std::min(kb.size, K - k0);
    const T* Ap = A.pack(0, m, k0, kc, static_cast<int>(MR), nullptr);
    const int64_t* off = boff + k0;
    const int64_t slice = div_up(kc, tiles);
    for (int64_t q = 0; q < std::min(panels, PF); ++q) prefetch_rows(q, k0, kc, 0, kc);
    for (int64_t q = 0; q < panels; ++q) {
      const int64_t j = js(q), nr = js(q + 1) - j;
      const T* bj = b + j;
      const int64_t* oj = off;
      if (nr < NR) {  // partial panel: copied, so nothing past n is read
        copy_partial_panel(buf, b + j, off, kc, nr, NR);
        bj = buf;
        oj = seq;
      }
      for (int64_t i = 0, s = 0; i < m; i += MR, ++s) {
        if (blk == 0) {  // C of the next tile (the first tile of the next panel after the last)
          const int64_t ni = i + MR < m ? i + MR : 0, nq = i + MR < m ? q : q + 1;
          if (nq < panels) {
            const int64_t l0 = js(nq), l1 = js(nq + 1);
            for (int64_t r = ni; r < std::min(m, ni + MR); ++r) {
              __builtin_prefetch(c + r * ldc + l0, 1, 3);
              __builtin_prefetch(c + r * ldc + l1 - 1, 1, 3);
            }
          }
        }
        rk.ind(kc, Ap + (i / MR) * kc * MR, bj, oj, c + i * ldc + j, ldc, 1, std::min(MR, m - i),
               nr, blk > 0);
        if (q + PF < panels) prefetch_rows(q + PF, k0, kc, s * slice, (s + 1) * slice);
      }
    }
  }
}

// Whether a 1x1 stride-1 unpadded NCHW layer's GEMM of depth K reads its B rows (image
// planes) in place (ind_times_streamed) rather than packing them. Measured (1 thread, 8 images
// of 56x56): depth 256 (256 -> 64 forward) 11.5 -> 10.0 ms; depth 64 (64 -> 256) 10.2 -> 10.9,
// slower, so only from depth 128. Needs the indirect kernel, weights packed once, and image
// planes of a few panels (smaller ones go through the batched column blocks).
template <typename T>
bool plain_ind(const Conv2dParams& p, int64_t K) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  return p.layout == Layout::NCHW && is_plain_gemm(p) && rk.ind != nullptr &&
         prepack_weights(p) && K >= 128 && p.out_plane() >= 4 * rk.nr;
}

// The plain_ind GEMMs, per image n and group g: C[i][p] = sum_k A[i][k] B[k][p] over the
// plane's P pixels, with A[i][k] = a[g*m*K + i*ls + k*ks] (the group's weights), B's row k the
// plane bsrc + (n*b_c + g*K + k)*P and C's row i the plane c + (n*c_c + g*m + i)*P; plus
// bias[g*m + i] if given. Tasks: about 1536 pixels of one image and group.
template <typename T>
void plain_ind_run(const Conv2dParams& p, int64_t m, int64_t K, const T* a, int64_t ls,
                   int64_t ks, const T* bsrc, int64_t b_c, T* c, int64_t c_c, const T* bias) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  const int64_t N = p.batch, G = p.groups, P = p.out_plane();
  const int64_t a_g = m * K;  // elements between the groups' A blocks
  std::vector<std::unique_ptr<PrepackedSource<T>>> wa(static_cast<size_t>(G));
  for (int64_t gi = 0; gi < G; ++gi) {
    wa[gi].reset(
        new PrepackedSource<T>(StridedSource<T>(a + gi * a_g, ls, ks), m, K, rk.mr, rk.kc));
  }
  std::vector<int64_t> boff(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) boff[k] = k * P;
  const std::vector<int64_t> seq = panel_offsets(rk);
  const int64_t nb = div_up(P, 1536), blk = div_up(div_up(P, nb), rk.nr) * rk.nr;
  const int64_t tasks = N * G * nb;
  ThreadScratch<T> scratch(threads_for(tasks), ind_scratch(rk));
  parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
    const int64_t bi = t % nb, gi = (t / nb) % G, n = t / (nb * G);
    const int64_t p0 = bi * blk, p1 = std::min(P, p0 + blk);
    if (p0 >= p1) return;
    T* cp = c + (n * c_c + gi * m) * P + p0;
    ind_times_streamed(rk, m, p1 - p0, K, *wa[gi], bsrc + (n * b_c + gi * K) * P + p0,
                       boff.data(), seq.data(), cp, P, scratch.at(tid));
    if (bias)
      for (int64_t i = 0; i < m; ++i) {
        const T bv = bias[gi * m + i];
        T* row = cp + i * P;
        for (int64_t j = 0; j < p1 - p0; ++j) row[j] += bv;
      }
  });
}

// Whether the NCHW phase forward reads the planes in place (indirect B) rather than packing
// them: the packs are amortised over the output channels' row tiles, while in-place panel
// rows cost a line-crossing load per depth step and twice the L1 footprint. Measured (1
// thread, process time): the 7x7 s2 stem (64 outputs) 27.9 -> 25.1 ms; 3x3 s2 64 -> 128
// 14.1 -> 14.5 ms (slower), so only up to 64 outputs per group. NCHW 1x1 layers read in place
// the same way were no faster either (x rows 12.5 KB apart: one page and L1 set per row).
// NHWC layers with < 16 channels per group (the stem) take the same orientation: planar phase
// planes read in place, the tile [o][pixel] transposed into y. Measured (stem, NHWC, medians
// of 4 alternating runs): 28.9 -> 26.0 ms at 1 thread, 14.6 -> 13.1 at 2, against pixels as
// the tile's rows (packing 6-pixel runs per depth step, ~10 % of the call).
template <typename T>
bool phase_ind_gemm(const Conv2dParams& p) {
  return (p.layout == Layout::NCHW || p.in_cg() < 16) && kernels().rows<T>().ind != nullptr &&
         prepack_weights(p) && p.out_cg() <= 64;
}


// ------------------------------------------------------------------------------------------
// Strided layers through stride-phase planes (forward). With stride s an input row is
// ih = s*oh + r (r = kh*dil - pad), i.e. row oh + floor(r/s) of phase (r mod s): a strided layer
// is a stride-1 layer over the s_h x s_w phase images of its input. A task splits the input
// rows its output rows need into zero-padded phase planes once ([c][phase][row][col], padded so
// every tap's window lies inside), and every im2col row is then a run of contiguous copies
// with no bounds tests. Measured (callgrind, 1 image): the strided, bounds-tested gather of
// ColPixelLanes took ~12 instructions per packed element on 3x3 stride 2 and ~9 on the 7x7
// stride-2 stem; the split reads each input element once and the copies cost ~1.
// ------------------------------------------------------------------------------------------
struct PhaseAxis {
  int64_t s = 1, off0 = 0, ext = 0;  // off0 = min over taps of floor(r/s); ext = max - off0
  std::vector<int64_t> idx;          // phase -> index among the used phases, -1 if unused
  std::vector<int64_t> used;         // used phases, increasing
  std::vector<int64_t> tap_phase, tap_off;  // per kernel tap: phase and floor(r/s)
  PhaseAxis(int64_t stride, int64_t k, int64_t dil, int64_t pad) : s(stride), idx(stride, -1) {
    int64_t hi = 0;
    for (int64_t t = 0; t < k; ++t) {
      const int64_t r = t * dil - pad, off = floor_div(r, s);
      tap_phase.push_back(r - off * s);
      tap_off.push_back(off);
      off0 = t == 0 ? off : std::min(off0, off);
      hi = t == 0 ? off : std::max(hi, off);
    }
    ext = hi - off0;
    for (int64_t t = 0; t < k; ++t) idx[tap_phase[t]] = 0;
    for (int64_t ph = 0; ph < s; ++ph)
      if (idx[ph] == 0) {
        idx[ph] = static_cast<int64_t>(used.size());
        used.push_back(ph);
      }
  }
  int64_t nph() const { return static_cast<int64_t>(used.size()); }
};

struct PhasePlan {
  bool ok = false;
  int64_t rows = 0, blocks = 0;  // output rows per task, row blocks per image
  int64_t Wp = 0, Rp = 0;        // plane row length and rows
  int64_t plane = 0, planes = 0; // elements per plane, per task (all channels and phases)
  int64_t tile = 0;              // elements of the task's GEMM result (virtual pixels x Og)
  int max_threads = 0;           // threads whose scratch fits the memory bound
};

// Output rows per task: about `pix` pixels (the GEMM's column block), cut evenly.
// `lanes`: the register tile's extent along the pixels (NR for NCHW, MR for NHWC).
PhasePlan phase_plan(const Conv2dParams& p, int64_t pix, int64_t lanes) {
  PhasePlan pl;
  if ((p.stride_h == 1 && p.stride_w == 1) || p.stride_h > 8 || p.stride_w > 8) return pl;
  if (p.out_plane() < pix / 2) return pl;  // small images: the batched paths fill the tiles
  const PhaseAxis ah(p.stride_h, p.k_h, p.dil_h, p.pad_top);
  const PhaseAxis aw(p.stride_w, p.k_w, p.dil_w, p.pad_left);
  const double im2col = double(p.batch) * double(p.in_c) * double(p.kk()) * double(p.out_plane());
  const double bound = std::max(im2col / 4, double(1 << 16));
  const int64_t Ho = p.out_h, Wo = p.out_w;
  pl.Wp = Wo + aw.ext;
  const auto set_rows = [&](int64_t r) {
    pl.blocks = div_up(Ho, r);
    pl.rows = div_up(Ho, pl.blocks);
    pl.Rp = pl.rows + ah.ext;
    pl.plane = pl.Rp * pl.Wp;
    pl.planes = p.in_cg() * ah.nph() * aw.nph() * pl.plane;
    pl.tile = ((pl.rows - 1) * pl.Wp + Wo) * p.out_cg();
    return double(pl.planes + pl.tile) * 4 <= bound;
  };
  // Rows per task: at most `pix` pixels, fewer until 4 tasks' planes and tiles fit in a
  // quarter of the im2col matrix (the layer's extra-memory bound)...
  int64_t rmax = std::max<int64_t>(1, std::min<int64_t>(Ho, pix / Wo));
  while (!set_rows(rmax) && rmax > 1) rmax = rmax > 2 ? rmax * 2 / 3 : 1;
  // ... and, from rmax/2 to rmax, the count whose blocks leave the fewest idle lanes in their
  // last register tiles (e.g. 3x3 s2 at 28x28: 10 rows = 289 virtual pixels run 19 tiles of
  // 16 with 15 idle lanes, 11 rows = 318 run 20 with 2).
  int64_t best = rmax, best_lanes = -1;
  for (int64_t r = rmax; r >= std::max<int64_t>(1, rmax / 2); --r) {
    const int64_t nb = div_up(Ho, r), rows = div_up(Ho, nb);
    int64_t computed = 0;
    for (int64_t oh0 = 0; oh0 < Ho; oh0 += rows)
      computed += div_up((std::min(Ho - oh0, rows) - 1) * pl.Wp + Wo, lanes) * lanes;
    if (best_lanes < 0 || computed < best_lanes) {
      best = r;
      best_lanes = computed;
    }
  }
  set_rows(best);
  // The plan never depends on the thread count (nor do results): where the bound holds fewer
  // tasks' scratch than there are threads, fewer threads run.
  pl.max_threads = static_cast<int>(
      std::min(1024.0, std::floor(bound / double(pl.planes + pl.tile))));
  pl.ok = pl.max_threads >= 1;
  return pl;
}

// Splits input rows of one image and group into the planes of output rows [oh0, oh1).
template <typename T>
void split_phases(const Conv2dParams& p, const PhaseAxis& ah, const PhaseAxis& aw,
                  const PhasePlan& pl, const T* x_img, int64_t gi, int64_t oh0, int64_t oh1,
                  T* planes, bool pixel_major = false) {
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t Cg = p.in_cg(), H = p.in_h, Wd = p.in_w, Wp = pl.Wp;
  const int64_t nh = ah.nph(), nw = aw.nph(), rows = (oh1 - oh0) + ah.ext;
  const int64_t cstride = nh * nw * pl.plane;  // between channels' planes
  // valid columns [jlo, jhi) per w phase: 0 <= s_w*(off0 + j) + pw < in_w
  std::vector<int64_t> jlo(nw), jhi(nw);
  for (int64_t b = 0; b < nw; ++b) {
    const int64_t pw = aw.used[b];
    jlo[b] = std::min(Wp, std::max<int64_t>(0, ceil_div(-pw, aw.s) - aw.off0));
    jhi[b] = std::max(jlo[b], std::min(Wp, floor_div(Wd - 1 - pw, aw.s) + 1 - aw.off0));
  }
  for (int64_t a = 0; a < nh; ++a)
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t ih = ah.s * (oh0 + ah.off0 + i) + ah.used[a];
      const bool in = ih >= 0 && ih < H;
      for (int64_t b = 0; b < nw; ++b) {
        const int64_t lo = in ? jlo[b] : Wp, hi = in ? jhi[b] : Wp;
        if (pixel_major) {  // NHWC into [phase][row][col][c]: one channel vector per pixel
          T* d = planes + ((a * nw + b) * pl.plane + i * Wp) * Cg;
          std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(lo * Cg));
          std::memset(static_cast<void*>(d + hi * Cg), 0,
                      sizeof(T) * static_cast<size_t>((Wp - hi) * Cg));
          if (lo >= hi) continue;
          const int64_t iw0 = aw.s * (aw.off0 + lo) + aw.used[b];
          const T* px = x_img + (ih * Wd + iw0) * p.in_c + gi * Cg;
          const int64_t step = aw.s * p.in_c;
          for (int64_t j = 0; j < hi - lo; ++j)
            std::memcpy(d + (lo + j) * Cg, px + j * step, sizeof(T) * static_cast<size_t>(Cg));
          continue;
        }
        T* d0 = planes + (a * nw + b) * pl.plane + i * Wp;  // channel 0
        for (int64_t c = 0; c < Cg; ++c) {
          T* d = d0 + c * cstride;
          for (int64_t j = 0; j < lo; ++j) d[j] = T(0);
          for (int64_t j = hi; j < Wp; ++j) d[j] = T(0);
        }
        if (lo >= hi) continue;
        const int64_t iw0 = aw.s * (aw.off0 + lo) + aw.used[b];
        if (nchw) {
          for (int64_t c = 0; c < Cg; ++c) {
            const T* row = x_img + ((gi * Cg + c) * H + ih) * Wd + iw0;
            T* d = d0 + c * cstride + lo;
            if (aw.s == 2)
              for (int64_t j = 0; j < hi - lo; ++j) d[j] = row[2 * j];
            else
              for (int64_t j = 0; j < hi - lo; ++j) d[j] = row[j * aw.s];
          }
        } else {
          const T* px = x_img + (ih * Wd + iw0) * p.in_c + gi * Cg;
          const int64_t step = aw.s * p.in_c;
          for (int64_t c = 0; c < Cg; ++c) {  // channel by channel: contiguous writes
            T* dc = d0 + c * cstride + lo;
            const T* pc = px + c;
            for (int64_t j = 0; j < hi - lo; ++j) dc[j] = pc[j * step];
          }
        }
      }
    }
}

// The im2col matrix of one task's output rows over its phase planes. Lanes run over the
// plane's row length Wp >= out_w ("virtual" pixels: the Wp - out_w columns past each output row
// are computed and dropped), so lane l of row q is planes[qoff[q] + l] and a panel row is one
// contiguous copy (measured: ~3 instructions per element when panels were cut at output-row
// ends, and 1 segment in 2 crossed one on 28-wide outputs).
template <typename T>
struct PhaseCols final : PanelSource<T> {
  const T* planes;
  const int64_t* qoff;
  PhaseCols(const T* pl, const int64_t* qo) : planes(pl), qoff(qo) {}
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override {
    for (int64_t pb = 0; pb < nl; pb += W) {
      const int64_t lanes = std::min<int64_t>(W, nl - pb);
      const T* src = planes + l0 + pb;
      T* dst = buf + (pb / W) * kc * W;
      if (lanes == W)
        for (int64_t kk = 0; kk < kc; ++kk) copy_panel_row(dst + kk * W, src + qoff[k0 + kk], W);
      else
        for (int64_t kk = 0; kk < kc; ++kk) copy_short(dst + kk * W, src + qoff[k0 + kk], lanes);
    }
    zero_tail_lanes(buf, nl, kc, W);
    return buf;
  }
};

// NHWC phase forward with >= 16 channels per group: the planes are laid out pixel-major
// ([phase][row][col][c], so the split copies whole channel vectors), and each kernel tap's
// im2col columns are then rows of A with k = c contiguous: the row-A microkernel reads them
// in place, tap after tap into the same register tile, against the tap's packed weights. The
// planar planes made the split a transpose and every 6-pixel A panel a copy of Q runs.
template <typename T>
bool phase_rows_gemm(const Conv2dParams& p) {
  return p.layout == Layout::NHWC && prepack_weights(p) && p.in_cg() >= 16;
}

// C[i][j] (i < m, j < n; c[i*ldc + j]) = sum over segments s of A_s B_s, A_s's row i being
// the K values at a + aoff[s] + i*lda and B_s prepacked (lanes j, depth K) with the kernel's
// NR and depth blocks. Loops: MR-row tile -> NR panel -> segment -> depth block, so the C
// tile accumulates in registers and L1 across all segments.
template <typename T>
void rows_segments(const GemmRowsKernel<T>& rk, int64_t m, int64_t n, int64_t K, const T* a,
                   const int64_t* aoff, int64_t nseg, int64_t lda,
                   const std::unique_ptr<PrepackedSource<T>>* B, T* c, int64_t ldc) {
  const int64_t MR = rk.mr, NR = rk.nr;
  const KBlocks kb = k_blocks(K, rk.kc);
  for (int64_t i = 0; i < m; i += MR) {
    const int64_t mr = std::min(MR, m - i);
    for (int64_t j = 0; j < n; j += NR) {
      const int64_t nr = std::min(NR, n - j);
      for (int64_t sg = 0; sg < nseg; ++sg)
        for (int64_t b = 0; b < kb.count; ++b) {
          const int64_t k0 = b * kb.size, kc = std::min(kb.size, K - k0);
          const T* Bp = B[sg]->pack(0, n, k0, kc, static_cast<int>(NR), nullptr);
          rk.ukr(kc, a + aoff[sg] + i * lda + k0, lda, Bp + (j / NR) * kc * NR, c + i * ldc + j,
                 ldc, 1, mr, nr, sg > 0 || b > 0);
        }
    }
  }
}

// NHWC direct forward (strided layers, 16..kc channels per group): every register tile is 6
// consecutive output pixels of one image, summed over the kernel taps in one call of the
// segmented row-A microkernel. A tap whose 6 input pixels lie in one input row, inside the
// image, is read in place (rows stride_w * C apart); a tap entirely in the padding rows is
// skipped; the others (tiles across an output row end or touching the padding) copy their 6
// channel vectors, zeros for padding, into scratch. The tile is stored straight into y.
// It replaced the stride-phase path for these layers, which split the input into phase
// planes, summed the taps in 9 microkernel calls of depth C (the tile round-tripping through
// memory between them) and copied a virtual-pixel tile out. Measured (1 thread, 3x3 s2, 64 ->
// 128 at 56x56, 8 images): 12.0 -> 11.0 ms. Within a task (16 tiles) the loop runs panel by
// panel over the tiles, so each tap's B panel is reused from L1/L2 (splitting the taps so a
// call's B panels fit in L1 made no measurable difference).
// (either layout: the NCHW forward runs the same scheme on a transposed band, below)
template <typename T>
bool direct_strided(const Conv2dParams& p) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  return rk.seg != nullptr && prepack_weights(p) && p.in_cg() >= 16 && p.in_cg() <= rk.kc &&
         !is_plain_gemm(p) && (p.stride_h > 1 || p.stride_w > 1);
}

template <typename T>
bool nhwc_direct(const Conv2dParams& p) {
  return p.layout == Layout::NHWC && direct_strided<T>(p);
}

template <typename T>
void forward_nhwc_direct(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), O = p.out_c, Cg = p.in_cg();
  const int64_t C = p.in_c, KK = p.kk(), P = p.out_plane(), Wo = p.out_w;
  const int64_t H = p.in_h, W = p.in_w, MR = rk.mr, NR = rk.nr;
  const int64_t panels = div_up(Og, NR);
  if (MR > 16) throw std::logic_error("forward_nhwc_direct: register tile taller than 16 rows");
  // Weights per group and tap (lanes o, depth c), and each (group, panel, tap)'s B panel.
  std::vector<std::unique_ptr<PrepackedSource<T>>> wt(static_cast<size_t>(G * KK));
  std::vector<const T*> bp(static_cast<size_t>(G * panels * KK));
  for (int64_t gi = 0; gi < G; ++gi)
    for (int64_t t = 0; t < KK; ++t) {
      const StridedSource<T> src(w + t * Cg * O + gi * Og, 1, O);
      wt[gi * KK + t].reset(new PrepackedSource<T>(src, Og, Cg, static_cast<int>(NR), rk.kc));
      const T* base = wt[gi * KK + t]->pack(0, Og, 0, Cg, static_cast<int>(NR), nullptr);
      for (int64_t jp = 0; jp < panels; ++jp) bp[(gi * panels + jp) * KK + t] = base + jp * Cg * NR;
    }
  constexpr int64_t TB = 16;           // tiles per task
  const int64_t tile_blk = TB * MR;    // pixels per task
  const int64_t nb = div_up(P, tile_blk), tasks = N * G * nb;
  const int64_t img = H * W * C;
  // scratch: each tile's copied taps (KK x MR x Cg)
  ThreadScratch<T> scratch(threads_for(tasks), TB * KK * MR * Cg);
  parallel_for(tasks, scratch.threads, [&](int64_t task, int tid) {
    const int64_t b = task % nb, gi = (task / nb) % G, n = task / (nb * G);
    const int64_t q0 = b * tile_blk, q1 = std::min(P, q0 + tile_blk);
    const T* xg = x + n * img + gi * Cg;
    // Per tile: its segments (A rows in place or copied, lda, tap), then panel by panel over
    // the tiles, so each tap's B panel is reused by the task's tiles from L1/L2.
    std::vector<const T*> a(static_cast<size_t>(TB * KK)), bb(static_cast<size_t>(KK));
    std::vector<int64_t> lda(static_cast<size_t>(TB * KK)), tap(static_cast<size_t>(TB * KK));
    int64_t nseg[TB];
    int64_t oh_[16], ow_[16];  // MR <= 16 (checked above)
    const int64_t ntiles = div_up(q1 - q0, MR);
    for (int64_t ti = 0; ti < ntiles; ++ti) {
      const int64_t q = q0 + ti * MR, mr = std::min(MR, q1 - q);
      T* copy = scratch.at(tid) + ti * KK * MR * Cg;
      for (int64_t i = 0; i < mr; ++i) oh_[i] = (q + i) / Wo, ow_[i] = (q + i) % Wo;
      const bool one_row = oh_[0] == oh_[mr - 1];
      int64_t ns = 0;
      const T** at = a.data() + ti * KK;
      int64_t* lt = lda.data() + ti * KK;
      int64_t* tt = tap.data() + ti * KK;
      for (int64_t kh = 0; kh < p.k_h; ++kh)
        for (int64_t kw = 0; kw < p.k_w; ++kw) {
          const int64_t t = kh * p.k_w + kw;
          const int64_t dh = kh * p.dil_h - p.pad_top, dw = kw * p.dil_w - p.pad_left;
          const int64_t ih0 = oh_[0] * p.stride_h + dh;
          const int64_t iw0 = ow_[0] * p.stride_w + dw, iw1 = ow_[mr - 1] * p.stride_w + dw;
          if (one_row && (ih0 < 0 || ih0 >= H)) continue;  // all in the padding rows
          if (one_row && iw0 >= 0 && iw1 < W) {               // in place
            at[ns] = xg + (ih0 * W + iw0) * C;
            lt[ns] = p.stride_w * C;
          } else {
            T* dst = copy + t * MR * Cg;
            for (int64_t i = 0; i < mr; ++i) {
              const int64_t ih = oh_[i] * p.stride_h + dh, iw = ow_[i] * p.stride_w + dw;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                std::memcpy(dst + i * Cg, xg + (ih * W + iw) * C,
                            sizeof(T) * static_cast<size_t>(Cg));
              else
                std::memset(dst + i * Cg, 0, sizeof(T) * static_cast<size_t>(Cg));
            }
            at[ns] = dst;
            lt[ns] = Cg;
          }
          tt[ns++] = t;
        }
      nseg[ti] = ns;
    }
    for (int64_t jp = 0; jp < panels; ++jp) {
      const T* const* bt = bp.data() + (gi * panels + jp) * KK;
      for (int64_t ti = 0; ti < ntiles; ++ti) {
        const int64_t q = q0 + ti * MR, mr = std::min(MR, q1 - q);
        const int64_t* tt = tap.data() + ti * KK;
        for (int64_t sg = 0; sg < nseg[ti]; ++sg) bb[sg] = bt[tt[sg]];
        rk.seg(nseg[ti], Cg, a.data() + ti * KK, lda.data() + ti * KK, bb.data(),
               y + (n * P + q) * O + gi * Og + jp * NR, O, 1, mr, std::min(NR, Og - jp * NR),
               false);
      }
    }
    if (bias)
      for (int64_t q = q0; q < q1; ++q)
        for (int64_t o = 0; o < Og; ++o) y[(n * P + q) * O + gi * Og + o] += bias[gi * Og + o];
  });
}

// Outputs at least this large (bytes) are written with non-temporal stores where a pass
// copies them out of a scratch tile.
constexpr double kStreamOut = 8.0 * 1024 * 1024;

// dst[j] = src[j] + b (+ bv[j] when bv is given), j < n, with non-temporal stores where SSE2
// has them (float); callers end their task with stream_fence().
template <typename T>
void stream_row_plus(T* dst, const T* src, int64_t n, T b, const T* bv = nullptr) {
  int64_t j = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 15) != 0; ++j)
      dst[j] = src[j] + (bv ? bv[j] : b);
    const __m128 b4 = _mm_set1_ps(b);
    if (bv)
      for (; j + 4 <= n; j += 4)
        _mm_stream_ps(dst + j, _mm_add_ps(_mm_loadu_ps(src + j), _mm_loadu_ps(bv + j)));
    else
      for (; j + 4 <= n; j += 4) _mm_stream_ps(dst + j, _mm_add_ps(_mm_loadu_ps(src + j), b4));
  }
#endif
  for (; j < n; ++j) dst[j] = src[j] + (bv ? bv[j] : b);
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// y[j*ldy + o] = t[o*ldt + j] (+ bias[o]), j < n pixels, o < m channels: a tile of channel rows
// into pixel-major output, 4 x 4 blocks through SSE registers (float; non-temporal stores when
// `nt`), the rest element by element. Without a bias, + -0.0 (the identity) keeps it a copy.
template <typename T>
void transpose_out(const T* t, int64_t ldt, int64_t n, int64_t m, const T* bias, T* y,
                   int64_t ldy, bool nt) {
  int64_t j0 = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    const bool aligned = (reinterpret_cast<uintptr_t>(y) & 15) == 0 && ldy % 4 == 0;
    if (m % 4 == 0)
      for (; j0 + 4 <= n; j0 += 4)
        for (int64_t o = 0; o < m; o += 4) {
          __m128 r0 = _mm_loadu_ps(t + o * ldt + j0), r1 = _mm_loadu_ps(t + (o + 1) * ldt + j0);
          __m128 r2 = _mm_loadu_ps(t + (o + 2) * ldt + j0), r3 = _mm_loadu_ps(t + (o + 3) * ldt + j0);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
          const __m128 b = bias ? _mm_loadu_ps(bias + o) : _mm_set1_ps(-0.0f);
          float* d = y + j0 * ldy + o;
          const __m128 v[4] = {_mm_add_ps(r0, b), _mm_add_ps(r1, b), _mm_add_ps(r2, b),
                               _mm_add_ps(r3, b)};
          for (int i = 0; i < 4; ++i) {
            if (nt && aligned)
              _mm_stream_ps(d + i * ldy, v[i]);
            else
              _mm_storeu_ps(d + i * ldy, v[i]);
          }
        }
  }
#endif
  for (int64_t j = j0; j < n; ++j)
    for (int64_t o = 0; o < m; ++o) y[j * ldy + o] = t[o * ldt + j] + (bias ? bias[o] : T(-0.0));
}


// NCHW direct forward (strided layers, 16..kc channels per group): the NHWC direct kernel
// on a pixel-major copy. A task takes a band of output rows of one image and group,
// transposes the input rows they read into a zero-padded [row][column][channel] band (one read
// of the input, in place of the phase split), and sums every 6-pixel register tile over all
// taps in one segmented call, taps read in the band at the stride; the tile is stored
// transposed into y (6 pixels of 16 output channels). The phase path's im2col packs, its
// virtual-pixel tile and that tile's copy into y go.
template <typename T>
bool nchw_direct(const Conv2dParams& p) {
  return p.layout == Layout::NCHW && direct_strided<T>(p);
}

struct NchwDirectPlan {
  int64_t R = 0, bands = 0;     // output rows per task, bands per image
  int64_t Rin = 0, Win = 0;     // band rows and (padded) columns
  int64_t band = 0, copies = 0; // elements: the band, the row-crossing tiles' copied taps
  int64_t slots = 0;            // row-crossing tiles per band (bound)
  int max_threads = 0;
};

template <typename T>
NchwDirectPlan nchw_direct_plan(const Conv2dParams& p) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  NchwDirectPlan pl;
  const int64_t Wo = p.out_w, Ho = p.out_h, Cg = p.in_cg(), KK = p.kk();
  // ~16 tiles of pixels per task: B panels reused across them from L1/L2
  pl.R = std::max<int64_t>(1, std::min<int64_t>(Ho, (16 * rk.mr + Wo / 2) / Wo));
  pl.bands = div_up(Ho, pl.R);
  pl.R = div_up(Ho, pl.bands);
  pl.Rin = (pl.R - 1) * p.stride_h + (p.k_h - 1) * p.dil_h + 1;
  pl.Win = (Wo - 1) * p.stride_w + (p.k_w - 1) * p.dil_w + 1;
  pl.band = pl.Rin * pl.Win * Cg;
  // tiles crossing an output-row end copy their taps: at most one per row end when a row holds
  // a whole tile, else any tile
  const int64_t ntiles = div_up(pl.R * Wo, rk.mr);
  pl.slots = Wo >= rk.mr ? std::min(ntiles, pl.R) : ntiles;
  pl.copies = pl.slots * KK * rk.mr * Cg;
  const double im2col = double(p.batch) * double(p.in_c) * double(KK) * double(p.out_plane());
  const double bound = std::max(im2col / 4, double(1 << 16));
  pl.max_threads = static_cast<int>(
      std::min(1024.0, std::floor(bound / double(pl.band + pl.copies + 64))));
  return pl;
}

// Taken unless the stride-phase path reads its planes in place (<= 64 outputs per group, large
// outputs), which measured faster on those layers: 64 -> 64 channels at 224 x 224, stride 2,
// 1 thread: 6.9 ms there, 7.2 ms direct (the transposed stores touch 16 output planes per
// tile). Smaller images gain (16 x 64 x 14 x 14 -> 128: 1.04 -> 0.79 ms), as does
// 3x3s2_64to128@56 (14.2 -> 11.4 ms).
template <typename T>
bool use_nchw_direct(const Conv2dParams& p) {
  if (!nchw_direct<T>(p) || nchw_direct_plan<T>(p).max_threads < 1) return false;
  const GemmKernel<T>& g = kernels().gemm<T>();
  return !(phase_ind_gemm<T>(p) && phase_plan(p, g.nc, g.nr).ok);
}

template <typename T>
void forward_nchw_direct(const Conv2dParams& p, const NchwDirectPlan& pl, const T* x, const T* w,
                         const T* bias, T* y) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), Cg = p.in_cg(), C = p.in_c;
  const int64_t KK = p.kk(), P = p.out_plane(), Wo = p.out_w, Ho = p.out_h;
  const int64_t H = p.in_h, W = p.in_w, MR = rk.mr, NR = rk.nr;
  const int64_t panels = div_up(Og, NR), Win = pl.Win, Rin = pl.Rin;
  // Weights per group and tap (lanes o, depth c; OIHW: o*Cg*KK + c*KK + t).
  std::vector<std::unique_ptr<PrepackedSource<T>>> wt(static_cast<size_t>(G * KK));
  std::vector<const T*> bp(static_cast<size_t>(G * panels * KK));
  for (int64_t gi = 0; gi < G; ++gi)
    for (int64_t t = 0; t < KK; ++t) {
      const StridedSource<T> src(w + gi * Og * Cg * KK + t, Cg * KK, KK);
      wt[gi * KK + t].reset(new PrepackedSource<T>(src, Og, Cg, static_cast<int>(NR), rk.kc));
      const T* base = wt[gi * KK + t]->pack(0, Og, 0, Cg, static_cast<int>(NR), nullptr);
      for (int64_t jp = 0; jp < panels; ++jp) bp[(gi * panels + jp) * KK + t] = base + jp * Cg * NR;
    }
  const int64_t tasks = N * G * pl.bands;
  ThreadScratch<T> scratch(std::min(threads_for(tasks), pl.max_threads), pl.band + pl.copies);
  parallel_for(tasks, scratch.threads, [&](int64_t task, int tid) {
    const int64_t bi = task % pl.bands, gi = (task / pl.bands) % G, n = task / (pl.bands * G);
    const int64_t oh0 = bi * pl.R, oh1 = std::min(Ho, oh0 + pl.R);
    if (oh0 >= oh1) return;
    T* band = scratch.at(tid);
    T* copy = band + pl.band;
    // The band: input rows ih0 + r, columns iw0 + j (zero outside the image), channels last.
    const int64_t ih0 = oh0 * p.stride_h - p.pad_top, iw0 = -p.pad_left;
    const int64_t jlo = std::min(Win, std::max<int64_t>(0, -iw0));
    const int64_t jhi = std::max(jlo, std::min(Win, W - iw0));
    const int64_t rows_in = std::min(Rin, (oh1 - 1 - oh0) * p.stride_h + (p.k_h - 1) * p.dil_h + 1);
    const T* xg = x + (n * C + gi * Cg) * H * W;
    for (int64_t r = 0; r < rows_in; ++r) {
      T* d = band + r * Win * Cg;
      const int64_t ih = ih0 + r;
      if (ih < 0 || ih >= H || jlo >= jhi) {
        std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(Win * Cg));
        continue;
      }
      std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(jlo * Cg));
      std::memset(static_cast<void*>(d + jhi * Cg), 0,
                  sizeof(T) * static_cast<size_t>((Win - jhi) * Cg));
      const T* src = xg + ih * W + iw0;  // column j of channel c at src[c*H*W + j]
      transpose_out(src + jlo, H * W, jhi - jlo, Cg, static_cast<const T*>(nullptr),
                    d + jlo * Cg, Cg, false);
    }
    // Tiles of MR consecutive output pixels of the band: one segment per tap.
    const int64_t q0 = oh0 * Wo, q1 = oh1 * Wo, ntiles = div_up(q1 - q0, MR);
    std::vector<const T*> a(static_cast<size_t>(ntiles * KK)), bb(static_cast<size_t>(KK));
    std::vector<int64_t> lda(static_cast<size_t>(ntiles * KK)), tap(lda.size()), nseg(ntiles);
    int64_t ncopy = 0;
    for (int64_t ti = 0; ti < ntiles; ++ti) {
      const int64_t q = q0 + ti * MR, mr = std::min(MR, q1 - q);
      const int64_t ohA = q / Wo, owA = q % Wo, ohB = (q + mr - 1) / Wo;
      const bool one_row = ohA == ohB;
      T* cp = nullptr;
      if (!one_row) {
        if (ncopy >= pl.slots) throw std::logic_error("forward_nchw_direct: copy slots");
        cp = copy + (ncopy++) * KK * MR * Cg;
      }
      int64_t ns = 0;
      for (int64_t kh = 0; kh < p.k_h; ++kh) {
        const int64_t rr = (ohA - oh0) * p.stride_h + kh * p.dil_h;  // band row of pixel 0
        if (one_row && (ih0 + rr < 0 || ih0 + rr >= H)) continue;   // a padding row
        for (int64_t kw = 0; kw < p.k_w; ++kw) {
          const int64_t t = kh * p.k_w + kw, sg = ti * KK + ns;
          if (one_row) {
            a[sg] = band + (rr * Win + owA * p.stride_w + kw * p.dil_w) * Cg;
            lda[sg] = p.stride_w * Cg;
          } else {
            T* dst = cp + t * MR * Cg;
            for (int64_t i = 0; i < mr; ++i) {
              const int64_t oh = (q + i) / Wo, ow = (q + i) % Wo;
              const int64_t br = (oh - oh0) * p.stride_h + kh * p.dil_h;
              std::memcpy(dst + i * Cg, band + (br * Win + ow * p.stride_w + kw * p.dil_w) * Cg,
                          sizeof(T) * static_cast<size_t>(Cg));
            }
            a[sg] = dst;
            lda[sg] = Cg;
          }
          tap[sg] = t;
          ++ns;
        }
      }
      nseg[ti] = ns;
    }
    T* yg = y + (n * p.out_c + gi * Og) * P;
    for (int64_t jp = 0; jp < panels; ++jp) {
      const T* const* bt = bp.data() + (gi * panels + jp) * KK;
      const int64_t nr = std::min(NR, Og - jp * NR);
      for (int64_t ti = 0; ti < ntiles; ++ti) {
        const int64_t q = q0 + ti * MR, mr = std::min(MR, q1 - q);
        for (int64_t sg = 0; sg < nseg[ti]; ++sg) bb[sg] = bt[tap[ti * KK + sg]];
        // C[i][j] = y[o = jp*NR + j][pixel q + i]: rows 1 apart, columns P apart
        rk.seg(nseg[ti], Cg, a.data() + ti * KK, lda.data() + ti * KK, bb.data(),
               yg + jp * NR * P + q, 1, P, mr, nr, false);
      }
    }
    if (bias)
      for (int64_t o = 0; o < Og; ++o) {
        const T bv = bias[gi * Og + o];
        T* yo = yg + o * P;
        for (int64_t qq = q0; qq < q1; ++qq) yo[qq] += bv;
      }
  });
}


template <typename T>
void forward_phase(const Conv2dParams& p, const PhasePlan& pl, const T* x, const T* w,
                   const std::vector<std::unique_ptr<WeightSource<T>>>& wp, const T* bias,
                   T* y) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), O = p.out_c, Cg = p.in_cg();
  const int64_t Q = Cg * p.kk(), P = p.out_plane(), Wo = p.out_w, Wp = pl.Wp;
  const bool nchw = p.layout == Layout::NCHW;
  const PhaseAxis ah(p.stride_h, p.k_h, p.dil_h, p.pad_top);
  const PhaseAxis aw(p.stride_w, p.k_w, p.dil_w, p.pad_left);
  // plane offset of each im2col row q (its channel, phases and tap offsets)
  std::vector<int64_t> qoff(static_cast<size_t>(Q));
  {
    const ColGeom geom(p, 0);
    for (int64_t q = 0; q < Q; ++q) {
      int64_t c, kh, kw;
      geom.decode(q, c, kh, kw);
      const int64_t a = ah.idx[ah.tap_phase[kh]], b = aw.idx[aw.tap_phase[kw]];
      qoff[q] = ((c * ah.nph() + a) * aw.nph() + b) * pl.plane +
                (ah.tap_off[kh] - ah.off0) * Wp + (aw.tap_off[kw] - aw.off0);
    }
  }
  const int64_t img = p.in_c * p.in_h * p.in_w;
  // NCHW: the phase planes are B, read in place by the indirect-B microkernel (weights
  // packed once for its tile) instead of packed run by run.
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  const bool ind = phase_ind_gemm<T>(p);
  std::vector<std::unique_ptr<PrepackedSource<T>>> wa(ind ? G : 0);
  for (int64_t gi = 0; gi < static_cast<int64_t>(wa.size()); ++gi) {
    const StridedSource<T> src = nchw ? StridedSource<T>(w + gi * Og * Q, Q, 1)  // lanes o,
                                      : StridedSource<T>(w + gi * Og, 1, O);     // depth q
    wa[gi].reset(new PrepackedSource<T>(src, Og, Q, rk.mr, rk.kc));
  }
  const std::vector<int64_t> seq = ind ? panel_offsets(rk) : std::vector<int64_t>();
  // NHWC: pixel-major planes, A rows read in place per tap (offsets aoff), weights per tap.
  const bool rows = !nchw && phase_rows_gemm<T>(p);
  const int64_t KK = p.kk();
  std::vector<std::unique_ptr<PrepackedSource<T>>> wt(rows ? G * KK : 0);
  std::vector<int64_t> aoff(rows ? KK : 0);
  if (rows)
    for (int64_t kh = 0; kh < p.k_h; ++kh)
      for (int64_t kw = 0; kw < p.k_w; ++kw) {
        const int64_t t = kh * p.k_w + kw;
        const int64_t a = ah.idx[ah.tap_phase[kh]], b = aw.idx[aw.tap_phase[kw]];
        aoff[t] = ((a * aw.nph() + b) * pl.plane + (ah.tap_off[kh] - ah.off0) * Wp +
                   (aw.tap_off[kw] - aw.off0)) * Cg;
        for (int64_t gi = 0; gi < G; ++gi) {
          const StridedSource<T> src(w + t * Cg * O + gi * Og, 1, O);  // lanes o, depth c
          wt[gi * KK + t].reset(new PrepackedSource<T>(src, Og, Cg, rk.nr, rk.kc));
        }
      }
  const int64_t tasks = N * G * pl.blocks;
  const int64_t ws = std::max(gemm_workspace_size(g), ind_scratch(rk));
  // Outputs too large to stay in cache are copied out of the tile with non-temporal stores
  // (no read for ownership of y's lines).
  const bool stream = double(N) * double(p.out_c) * double(P) * sizeof(T) >= kStreamOut;
  ThreadScratch<T> scratch(std::min(threads_for(tasks), pl.max_threads), ws + pl.planes + pl.tile);
  parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
    const int64_t rb = t % pl.blocks, gi = (t / pl.blocks) % G, n = t / (pl.blocks * G);
    const int64_t oh0 = rb * pl.rows, oh1 = std::min(p.out_h, oh0 + pl.rows);
    if (oh0 >= oh1) return;
    const int64_t nv = (oh1 - oh0 - 1) * Wp + Wo;  // virtual pixels of the block
    T* planes = scratch.at(tid) + ws;
    T* tile = planes + pl.planes;
    split_phases(p, ah, aw, pl, x + n * img, gi, oh0, oh1, planes, rows);
    const PhaseCols<T> col(planes, qoff.data());
    // GEMM into the tile (virtual pixels), then the output rows' first Wo pixels go to y.
    if (rows)  // tile[l][o]
      rows_segments(rk, nv, Og, Cg, planes, aoff.data(), KK, Cg, wt.data() + gi * KK, tile, Og);
    else if (ind)  // tile[o][l]
      ind_times(rk, Og, nv, Q, *wa[gi], planes, qoff.data(), seq.data(), tile, nv,
                scratch.at(tid));
    else if (nchw)
      gemm_serial(g, 0, Og, 0, nv, 0, Q, *wp[gi], col, tile, nv, 1, false, scratch.at(tid));
    else       // tile[l][o]
      gemm_serial(g, 0, nv, 0, Og, 0, Q, col, *wp[gi], tile, Og, 1, false, scratch.at(tid));
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t l = (oh - oh0) * Wp;
      if (nchw) {
        for (int64_t o = 0; o < Og; ++o) {
          const T bv = bias ? bias[gi * Og + o] : T(0);
          const T* src = tile + o * nv + l;
          T* dst = y + (n * O + gi * Og + o) * P + oh * Wo;
          if (stream)
            stream_row_plus(dst, src, Wo, bv);
          else
            for (int64_t j = 0; j < Wo; ++j) dst[j] = src[j] + bv;
        }
      } else if (ind) {  // tile[o][l] -> y[pixel][o]
        transpose_out(tile + l, nv, Wo, Og, bias ? bias + gi * Og : nullptr,
                      y + (n * P + oh * Wo) * O + gi * Og, O, stream);
      } else {
        for (int64_t j = 0; j < Wo; ++j) {
          const T* src = tile + (l + j) * Og;
          T* dst = y + (n * P + oh * Wo + j) * O + gi * Og;
          if (stream)  // (+ -0.0 is the identity: a plain copy, as the memcpy below)
            stream_row_plus(dst, src, Og, T(-0.0), bias ? bias + gi * Og : nullptr);
          else if (bias)
            for (int64_t o = 0; o < Og; ++o) dst[o] = src[o] + bias[gi * Og + o];
          else
            std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(Og));
        }
      }
    }
    if (stream) stream_fence();
  });
}

// Input gradient of a strided NCHW layer through phase planes: the transpose of
// forward_phase. A task owns a block of input channels of one image and group, so its writes
// are exclusive: per block of output rows it computes, tap by tap, W_t^T[c][o] dy[o][l] over
// virtual pixels l (dy copied to the plane width, the extra columns zero) and accumulates it
// straight into the tap's phase plane (the microkernel's C rows are the channels' planes), and
// finally interleaves the planes into grad_x. (The strided, bounds-tested col2im scatter is
// what made the stride-2 input gradient slower than the forward; computing a column tile and
// adding its rows into the planes, the fallback where the weights are not packed once, cost
// an extra pass: 3x3s2_64to128@56, 1 thread, 14.4 -> 14.0 ms without it.)
struct PhaseGradPlan {
  bool ok = false;
  int64_t rows = 0, blocks = 0;  // output rows per GEMM block, blocks per image
  int64_t cblk = 0, ncb = 0;     // input channels per task, channel blocks per group
  int64_t Wp = 0, Rp = 0, plane = 0;  // planes span the whole image: Rp = out_h + ext_h rows
  int64_t planes = 0, tile = 0, dyv = 0;  // per-task scratch elements
  int max_threads = 0;                    // threads whose scratch fits the memory bound
};

PhaseGradPlan phase_grad_plan(const Conv2dParams& p, int64_t pix, int64_t mc) {
  PhaseGradPlan pl;
  if (p.layout != Layout::NCHW || (p.stride_h == 1 && p.stride_w == 1) || p.stride_h > 8 ||
      p.stride_w > 8 || p.out_plane() < pix / 2 || p.out_cg() == 0)
    return pl;
  const PhaseAxis ah(p.stride_h, p.k_h, p.dil_h, p.pad_top);
  const PhaseAxis aw(p.stride_w, p.k_w, p.dil_w, p.pad_left);
  const int64_t KK = p.kk(), Cg = p.in_cg();
  pl.cblk = std::max<int64_t>(1, std::min<int64_t>(Cg, 2 * mc / KK));
  pl.ncb = div_up(Cg, pl.cblk);
  // channel blocks of whole register tiles (MR = 6 rows) where that keeps the block count
  pl.cblk = std::min(Cg, div_up(div_up(Cg, pl.ncb), int64_t(6)) * 6);
  pl.ncb = div_up(Cg, pl.cblk);
  pl.Wp = p.out_w + aw.ext;
  pl.Rp = p.out_h + ah.ext;
  pl.plane = pl.Rp * pl.Wp;
  pl.planes = pl.cblk * ah.nph() * aw.nph() * pl.plane;
  const double im2col = double(p.batch) * double(p.in_c) * double(KK) * double(p.out_plane());
  const double bound = std::max(im2col / 4, double(1 << 16));
  // Rows per GEMM block: fewer until 4 tasks' scratch fits the bound (or one row); as in
  // phase_plan, the plan never depends on the thread count: fewer threads run where needed.
  for (int64_t rmax = std::max<int64_t>(1, std::min<int64_t>(p.out_h, pix / p.out_w));;
       rmax = rmax > 2 ? rmax * 2 / 3 : 1) {
    pl.blocks = div_up(p.out_h, rmax);
    pl.rows = div_up(p.out_h, pl.blocks);
    const int64_t nv = (pl.rows - 1) * pl.Wp + p.out_w;
    pl.tile = pl.cblk * KK * nv;
    pl.dyv = p.out_cg() * nv;
    if (double(pl.planes + pl.tile + pl.dyv) * 4 <= bound || rmax == 1) break;
  }
  pl.max_threads = static_cast<int>(
      std::min(1024.0, std::floor(bound / double(pl.planes + pl.tile + pl.dyv))));
  pl.ok = pl.max_threads >= 1;
  return pl;
}

template <typename T>
void input_grad_phase(const Conv2dParams& p, const PhaseGradPlan& pl, const T* dy, const T* w,
                      const std::vector<std::unique_ptr<WeightSource<T>>>& wp, T* dx) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), O = p.out_c, Cg = p.in_cg();
  const int64_t KK = p.kk(), P = p.out_plane(), Wo = p.out_w, Wp = pl.Wp;
  const int64_t H = p.in_h, Wd = p.in_w;
  const PhaseAxis ah(p.stride_h, p.k_h, p.dil_h, p.pad_top);
  const PhaseAxis aw(p.stride_w, p.k_w, p.dil_w, p.pad_left);
  const int64_t nh = ah.nph(), nw = aw.nph();
  // plane offset of each (channel within the block, tap): q - q0 = c * KK + kh * k_w + kw
  std::vector<int64_t> qoff(static_cast<size_t>(pl.cblk * KK));
  for (int64_t c = 0; c < pl.cblk; ++c)
    for (int64_t kh = 0; kh < p.k_h; ++kh)
      for (int64_t kw = 0; kw < p.k_w; ++kw)
        qoff[(c * p.k_h + kh) * p.k_w + kw] =
            ((c * nh + ah.idx[ah.tap_phase[kh]]) * nw + aw.idx[aw.tap_phase[kw]]) * pl.plane +
            (ah.tap_off[kh] - ah.off0) * Wp + (aw.tap_off[kw] - aw.off0);
  // grad_x columns of w phase b: iw = s_w * (off0 + j) + pw for plane columns j in
  // [jlo[b], jhi[b]); columns no phase reaches stay zero.
  std::vector<int64_t> jlo(nw), jhi(nw);
  int64_t covered = 0;
  for (int64_t b = 0; b < nw; ++b) {
    const int64_t pw = aw.used[b];
    jlo[b] = std::min(Wp, std::max<int64_t>(0, ceil_div(-pw, aw.s) - aw.off0));
    jhi[b] = std::max(jlo[b], std::min(Wp, floor_div(Wd - 1 - pw, aw.s) + 1 - aw.off0));
    covered += jhi[b] - jlo[b];
  }
  const int64_t tasks = N * G * pl.ncb, ws = gemm_workspace_size(g);
  // Per-tap weights W_t^T (lanes: the block's channels, depth o), packed once: each tap's
  // GEMM accumulates straight into its phase plane (C rows = channels' planes), so the column
  // tile and the pass adding it into the planes disappear.
  const bool direct = phase_grad_direct(p);
  std::vector<std::unique_ptr<PrepackedSource<T>>> wt(direct ? G * KK * pl.ncb : 0);
  if (direct)
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t t = 0; t < KK; ++t)
        for (int64_t cb = 0; cb < pl.ncb; ++cb) {
          const int64_t c0 = cb * pl.cblk, nc = std::min(Cg, c0 + pl.cblk) - c0;
          const StridedSource<T> src(w + gi * Og * Cg * KK + c0 * KK + t, KK, Cg * KK);
          wt[(gi * KK + t) * pl.ncb + cb].reset(new PrepackedSource<T>(src, nc, Og, g.mr, g.kc));
        }
  const int64_t nv_max = (pl.rows - 1) * Wp + Wo;
  const int64_t bblk = direct ? std::min(Og, g.kc) * div_up(nv_max, g.nr) * g.nr : 0;
  const int64_t tile_size = direct ? 0 : pl.tile;
  ThreadScratch<T> scratch(std::min(threads_for(tasks), pl.max_threads),
                           ws + pl.planes + tile_size + pl.dyv + bblk);
  parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
    const int64_t cb = t % pl.ncb, gi = (t / pl.ncb) % G, n = t / (pl.ncb * G);
    const int64_t c0 = cb * pl.cblk, c1 = std::min(Cg, c0 + pl.cblk);
    const int64_t q0 = c0 * KK, q1 = c1 * KK;
    T* planes = scratch.at(tid) + ws;
    T* tile = planes + pl.planes;
    T* dyv = tile + tile_size;
    std::memset(static_cast<void*>(planes), 0,
                sizeof(T) * static_cast<size_t>((c1 - c0) * nh * nw * pl.plane));
    const T* dyn = dy + (n * O + gi * Og) * P;
    for (int64_t oh0 = 0; oh0 < p.out_h; oh0 += pl.rows) {
      const int64_t oh1 = std::min(p.out_h, oh0 + pl.rows);
      const int64_t nv = (oh1 - oh0 - 1) * Wp + Wo;
      for (int64_t o = 0; o < Og; ++o)  // dy rows at the plane width, extra columns zero
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* d = dyv + o * nv + (oh - oh0) * Wp;
          std::memcpy(d, dyn + o * P + oh * Wo, sizeof(T) * static_cast<size_t>(Wo));
          if (oh + 1 < oh1)
            for (int64_t j = Wo; j < Wp; ++j) d[j] = T(0);
        }
      const StridedSource<T> B(dyv, 1, nv);  // lanes l, depth o
      if (direct) {
        T* bp = dyv + pl.dyv;
        const int64_t MR = g.mr, NR = g.nr, cs = nh * nw * pl.plane, m = c1 - c0;
        const KBlocks kb = k_blocks(Og, g.kc);
        for (int64_t b = 0; b < kb.count; ++b) {
          const int64_t k0 = b * kb.size, kc = std::min(kb.size, Og - k0);
          const T* Bp = B.pack(0, nv, k0, kc, g.nr, bp);
          for (int64_t tap = 0; tap < KK; ++tap) {  // tap by tap: C rows in one plane region
            const T* Ap = wt[(gi * KK + tap) * pl.ncb + cb]->pack(0, m, k0, kc, g.mr, nullptr);
            T* ct = planes + qoff[tap] + oh0 * Wp;
            for (int64_t i = 0; i < m; i += MR)
              for (int64_t j = 0; j < nv; j += NR)
                g.ukr(kc, Ap + (i / MR) * kc * MR, Bp + (j / NR) * kc * NR, ct + i * cs + j, cs,
                      1, std::min(MR, m - i), std::min(NR, nv - j), true);
          }
        }
        continue;
      }
      gemm_serial(g, q0, q1, 0, nv, 0, Og, *wp[gi], B, tile, nv, 1, false, scratch.at(tid));
      for (int64_t q = q0; q < q1; ++q) {
        const T* src = tile + (q - q0) * nv;
        T* dst = planes + qoff[q - q0] + oh0 * Wp;
        for (int64_t r = 0; r < oh1 - oh0; ++r)
          for (int64_t j = 0; j < Wo; ++j) dst[r * Wp + j] += src[r * Wp + j];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {  // interleave the planes into grad_x
      T* dxc = dx + (n * p.in_c + gi * Cg + c) * H * Wd;
      const T* pc = planes + (c - c0) * nh * nw * pl.plane;
      for (int64_t ih = 0; ih < H; ++ih) {
        const int64_t ph = ih % ah.s, i = ih / ah.s - ah.off0, a = ah.idx[ph];
        T* d = dxc + ih * Wd;
        if (a < 0 || i < 0 || i >= pl.Rp) {
          std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(Wd));
          continue;
        }
        if (covered < Wd) std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(Wd));
        for (int64_t b = 0; b < nw; ++b) {
          const T* row = pc + (a * nw + b) * pl.plane + i * Wp;
          T* db = d + aw.s * aw.off0 + aw.used[b];
          for (int64_t j = jlo[b]; j < jhi[b]; ++j) db[j * aw.s] = row[j];
        }
      }
    }
  });
}

// ------------------------------------------------------------------------------------------
// NHWC 1x1 stride-1 layers as row-A GEMMs: the pixels' channel vectors are the rows of A with
// k contiguous (x[pix][c] forward, dy[pix][o] for the input gradient), so the row-A
// microkernel broadcasts them in place and nothing but the small weight matrix (packed once,
// shared by all tasks) is ever packed. The packed path transposed every pixel into [kc][MR]
// micro-panels (the input gradient through an element-by-element strided copy).
// ------------------------------------------------------------------------------------------
// Rows [0, m) of A (a[i*lda + k], k < K) times all n lanes of the prepacked B into
// c[i*ldc + j]. Loops: depth block -> 6-row tile (its A rows stay in L1) -> B micro-panel.
template <typename T>
void rows_times_packed(const GemmRowsKernel<T>& rk, int64_t m, int64_t n, int64_t K, const T* a,
                       int64_t lda, const PrepackedSource<T>& B, T* c, int64_t ldc) {
  const int64_t MR = rk.mr, NR = rk.nr;
  const KBlocks kb = k_blocks(K, rk.kc);
  for (int64_t b = 0; b < kb.count; ++b) {
    const int64_t k0 = b * kb.size, kc = std::min(kb.size, K - k0);
    const T* Bp = B.pack(0, n, k0, kc, static_cast<int>(NR), nullptr);
    for (int64_t i = 0; i < m; i += MR) {
      const int64_t mr = std::min(MR, m - i);
      const T* ai = a + i * lda + k0;
      for (int64_t j = 0; j < n; j += NR)
        rk.ukr(kc, ai, lda, Bp + (j / NR) * kc * NR, c + i * ldc + j, ldc, 1, mr,
               std::min(NR, n - j), b > 0);
    }
  }
}

// Whether an NHWC 1x1 stride-1 layer runs as a row-A GEMM: the weights (K x n) must be small
// enough to pack once (the layer's extra-memory bound, as prepack_weights).
bool nhwc_rows_gemm(const Conv2dParams& p) {
  return p.layout == Layout::NHWC && is_plain_gemm(p) && prepack_weights(p) &&
         p.in_cg() >= 8 && p.out_cg() >= 8;
}

// dst[pix][o] (ld ldd) = A rows (pixels) x B over the batch's pixels, tasks of whole 6-row
// tiles; `bias` (n values or null) is added per task while its block is in cache.
template <typename T>
void nhwc_rows_gemm_run(const GemmRowsKernel<T>& rk, int64_t pixels, int64_t n, int64_t K,
                        const T* a, int64_t lda, const PrepackedSource<T>& B, const T* bias,
                        T* dst, int64_t ldd) {
  const int64_t blk = rk.mr * 16, tasks = div_up(pixels, blk);
  parallel_for(tasks, [&](int64_t t, int) {
    const int64_t i0 = t * blk, m = std::min(blk, pixels - i0);
    T* c = dst + i0 * ldd;
    rows_times_packed(rk, m, n, K, a + i0 * lda, lda, B, c, ldd);
    if (bias)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t o = 0; o < n; ++o) c[i * ldd + o] += bias[o];
  });
}

std::mutex g_algo_mutex;
std::string g_algo = "auto";

// ------------------------------------------------------------------------------------------
// forward
// ------------------------------------------------------------------------------------------
template <typename T>
void forward_gemm(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), O = p.out_c;
  const int64_t Q = p.in_cg() * p.kk(), P = p.out_plane();
  const bool nchw = p.layout == Layout::NCHW;
  const bool pre = prepack_weights(p);
  if (nhwc_rows_gemm(p)) {  // y[pix][g*Og + o] = x[pix][g*Cg + c] W[c][g*Og + o]
    const GemmRowsKernel<T>& rk = kernels().rows<T>();
    for (int64_t gi = 0; gi < G; ++gi) {
      const StridedSource<T> ws(w + gi * Og, 1, O);  // lanes o, depth c
      const PrepackedSource<T> B(ws, Og, Q, rk.nr, rk.kc);
      nhwc_rows_gemm_run(rk, N * P, Og, Q, x + gi * Q, p.in_c, B, bias ? bias + gi * Og : nullptr,
                         y + gi * Og, O);
    }
    return;
  }
  if (nchw && plain_ind<T>(p, Q)) {  // y[o][p] = W[o][c] x[c][p], x read in place
    plain_ind_run(p, Og, Q, w, Q, 1, x, p.in_c, y, O, bias);
    return;
  }
  if (nhwc_direct<T>(p)) {
    forward_nhwc_direct(p, x, w, bias, y);
    return;
  }
  if (use_nchw_direct<T>(p)) {  // (the plan is a few integers: recomputed, not passed back)
    forward_nchw_direct(p, nchw_direct_plan<T>(p), x, w, bias, y);
    return;
  }
  // Strided layers with large outputs: phase planes, weights as A (NCHW) or B (NHWC).
  const PhasePlan phase = phase_plan(p, g.nc, nchw ? g.nr : g.mr);
  // NHWC with few input channels takes the NCHW orientation (pixels in the vector lanes).
  const bool few_nhwc = !nchw && p.in_cg() < 8 && !phase.ok;
  // Weights packed once per group (lanes o, depth q): as A for NCHW and few-channel NHWC, as B
  // for the other NHWC layers.
  std::vector<std::unique_ptr<WeightSource<T>>> wp(G);
  for (int64_t gi = 0; gi < G; ++gi) {
    if (nchw)
      wp[gi].reset(new WeightSource<T>(w + gi * Og * Q, Q, 1, Og, Q, g.mr, g.kc, pre));
    else
      wp[gi].reset(new WeightSource<T>(w + gi * Og, 1, O, Og, Q, few_nhwc ? g.mr : g.nr, g.kc,
                                       pre));
  }
  if (phase.ok) {
    forward_phase(p, phase, x, w, wp, bias, y);
    return;
  }
  if (nchw && P < g.nc) {
    // Small images: a column block spans several images (lanes continue across images), so the
    // register tiles stay full; the block is computed into scratch and copied out with the bias.
    const int64_t cols = N * P, nb = div_up(cols, g.nc), tasks = G * nb;
    const int64_t ws = gemm_workspace_size(g);
    ThreadScratch<T> scratch(threads_for(tasks), ws + Og * g.nc);
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t b = t % nb, gi = t / nb;
      const int64_t j0 = b * g.nc, j1 = std::min(cols, j0 + g.nc), wdt = j1 - j0;
      const ColGeom geom(p, gi);
      const ColPixelLanes<T> col(geom, x);
      T* tile = scratch.at(tid) + ws;
      gemm_serial(g, 0, Og, j0, j1, 0, Q, *wp[gi], col, tile, wdt, 1, false, scratch.at(tid));
      for (int64_t o = 0; o < Og; ++o) {
        const T bv = bias ? bias[gi * Og + o] : T(0);
        const T* src = tile + o * wdt;
        for (int64_t j = j0; j < j1;) {  // one run per image
          const int64_t n = j / P, pix = j % P, len = std::min(P - pix, j1 - j);
          T* dst = y + (n * O + gi * Og + o) * P + pix;
          for (int64_t e = 0; e < len; ++e) dst[e] = src[j - j0 + e] + bv;
          j += len;
        }
      }
    });
    return;
  }
  if (few_nhwc) {
    // NHWC with few input channels: channel runs are too short to pack from, so pack row
    // segments instead (pixels in the vector lanes) and store the tile transposed into y, whose
    // pixels are contiguous across images: y[pix][g*Og + o] at rs = 1 (o), cs = O (pixel).
    const int64_t cols = N * P, nb = div_up(cols, g.nc), tasks = G * nb;
    ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g));
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t b = t % nb, gi = t / nb;
      const int64_t j0 = b * g.nc, j1 = std::min(cols, j0 + g.nc);
      const ColGeom geom(p, gi);
      const ColPixelLanes<T> col(geom, x, true);
      T* c = y + j0 * O + gi * Og;
      gemm_serial(g, 0, Og, j0, j1, 0, Q, *wp[gi], col, c, 1, O, false, scratch.at(tid));
      if (bias)
        for (int64_t j = 0; j < j1 - j0; ++j)
          for (int64_t o = 0; o < Og; ++o) c[j * O + o] += bias[gi * Og + o];
    });
    return;
  }
  const bool plain = is_plain_gemm(p);
  const int64_t blk = nchw ? g.nc : g.mc;  // pixels per task
  const int64_t nb = div_up(P, blk);
  const int64_t tasks = N * G * nb;
  ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g));
  parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
    const int64_t b = t % nb, gi = (t / nb) % G, n = t / (nb * G);
    const int64_t p0 = b * blk, p1 = std::min(P, p0 + blk);
    const ColGeom geom(p, gi);
    const ColPixelLanes<T> col(geom, x + n * geom.img);
    if (nchw) {
      T* c = y + (n * O + gi * Og) * P + p0;
      if (plain) {  // 1x1, stride 1, no padding: col is x[c][p] itself
        const StridedSource<T> xs(x + n * geom.img + gi * p.in_cg() * P, 1, P);
        gemm_serial(g, 0, Og, p0, p1, 0, Q, *wp[gi], xs, c, P, 1, false, scratch.at(tid));
      } else {
        gemm_serial(g, 0, Og, p0, p1, 0, Q, *wp[gi], col, c, P, 1, false, scratch.at(tid));
      }
      if (bias)
        for (int64_t o = 0; o < Og; ++o) {
          const T bv = bias[gi * Og + o];
          T* row = c + o * P;
          for (int64_t j = 0; j < p1 - p0; ++j) row[j] += bv;
        }
    } else {
      T* c = y + (n * P + p0) * O + gi * Og;
      gemm_serial(g, p0, p1, 0, Og, 0, Q, col, *wp[gi], c, O, 1, false, scratch.at(tid));
      if (bias)
        for (int64_t i = 0; i < p1 - p0; ++i)
          for (int64_t o = 0; o < Og; ++o) c[i * O + o] += bias[gi * Og + o];
    }
  });
}

// ------------------------------------------------------------------------------------------
// input gradient: GEMM into a column tile, then col2im-scatter the tile into grad_x
// ------------------------------------------------------------------------------------------
// NHWC direct input gradient (strided layers, 16+ channels and <= kc outputs per group): the
// gather form of the transposed convolution. Grad_x pixels of one row whose columns agree
// modulo the stride (iw + pad_left = r mod stride_w) receive the same kernel columns, from
// consecutive grad_out pixels: a register tile of 6 such pixels is summed over every valid
// (kh, kw) in one segmented call, grad_out rows read in place (copied, with zeros, at the
// image edges), W_t^T (lanes c, depth o) packed once per tap, and stored straight into
// grad_x at the stride. Every grad_x element is written once: no zeroing, column tile or
// col2im pass.
// NCHW runs the same tiles on grad_out rows transposed to [ow][o] per task, and collects the
// grad_x row as [c][iw] in scratch before copying it into the planes.
// Taken where a row's column classes fill the 6-pixel tiles to within 15 % (small images lose
// to the column-tile path there: 14x14 stride 2, 7 pixels per class in two tiles).
// Measured (1 thread, 3x3s2_64to128@56): NCHW 14.3 -> 12.6 ms, NHWC 11.2 -> 11.0 ms; 64 -> 64
// channels at 224x224, N = 1: NCHW 10.2 -> 7.3 ms, NHWC 12.8 -> 6.3 ms.
template <typename T>
bool direct_grad(const Conv2dParams& p) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  if (!(rk.seg != nullptr && prepack_weights(p) && p.in_cg() >= 16 && p.out_cg() >= 1 &&
        p.out_cg() <= rk.kc && !is_plain_gemm(p) && (p.stride_h > 1 || p.stride_w > 1)))
    return false;
  const int64_t cnt = div_up(p.in_w, p.stride_w), lanes = div_up(cnt, rk.mr) * rk.mr;
  return double(lanes) <= 1.15 * double(cnt);
}

template <typename T>
void input_grad_direct(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const GemmRowsKernel<T>& rk = kernels().rows<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), O = p.out_c, Cg = p.in_cg();
  const int64_t C = p.in_c, KK = p.kk(), H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w;
  const int64_t MR = rk.mr, NR = rk.nr, sh = p.stride_h, sw = p.stride_w;
  const int64_t panels = div_up(Cg, NR);
  std::vector<std::unique_ptr<PrepackedSource<T>>> wt(static_cast<size_t>(G * KK));
  std::vector<const T*> bp(static_cast<size_t>(G * panels * KK));
  for (int64_t gi = 0; gi < G; ++gi)
    for (int64_t t = 0; t < KK; ++t) {
      const StridedSource<T> src =  // lanes c, depth o
          p.layout == Layout::NCHW ? StridedSource<T>(w + gi * Og * Cg * KK + t, KK, Cg * KK)
                                   : StridedSource<T>(w + t * Cg * O + gi * Og, O, 1);
      wt[gi * KK + t].reset(new PrepackedSource<T>(src, Cg, Og, static_cast<int>(NR), rk.kc));
      const T* base = wt[gi * KK + t]->pack(0, Cg, 0, Og, static_cast<int>(NR), nullptr);
      for (int64_t jp = 0; jp < panels; ++jp) bp[(gi * panels + jp) * KK + t] = base + jp * Og * NR;
    }
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t tasks = N * G * H;
  // NCHW: the grad_out rows a task reads, transposed to [ow][o] first (at most k_h rows)
  ThreadScratch<T> scratch(threads_for(tasks),
                           KK * MR * Og + (nchw ? p.k_h * Wo * Og + Cg * W : 0));
  parallel_for(tasks, scratch.threads, [&](int64_t task, int tid) {
    const int64_t ih = task % H, gi = (task / H) % G, n = task / (H * G);
    T* copy = scratch.at(tid);
    T* dyt = copy + KK * MR * Og;
    T* rowbuf = dyt + p.k_h * Wo * Og;  // NCHW: the grad_x row, [c][iw], copied out at the end
    // kernel rows reaching this grad_x row: oh = (ih + pad_top - kh*dil) / stride_h
    int64_t khs[64], ohs[64], nkh = 0;
    for (int64_t kh = 0; kh < p.k_h && nkh < 64; ++kh) {
      const int64_t v = ih + p.pad_top - kh * p.dil_h;
      if (v < 0 || v % sh != 0 || v / sh >= Ho) continue;
      khs[nkh] = kh, ohs[nkh++] = v / sh;
    }
    std::vector<const T*> a(static_cast<size_t>(KK)), bb(static_cast<size_t>(KK));
    std::vector<int64_t> lda(static_cast<size_t>(KK)), tap(static_cast<size_t>(KK));
    const T* dyn = dy + n * Ho * Wo * O + gi * Og;
    int64_t rs_o = O;  // between consecutive grad_out pixels of a row
    if (nchw) {
      for (int64_t a_ = 0; a_ < nkh; ++a_)
        transpose_out(dy + ((n * O + gi * Og) * Ho + ohs[a_]) * Wo, Ho * Wo, Wo, Og,
                      static_cast<const T*>(nullptr), dyt + a_ * Wo * Og, Og, false);
      rs_o = Og;
    }
    for (int64_t r = 0; r < sw; ++r) {
      const int64_t iw0 = ((r - p.pad_left) % sw + sw) % sw;  // first column of the class
      if (iw0 >= W) continue;
      const int64_t cnt = div_up(W - iw0, sw);
      for (int64_t m0 = 0; m0 < cnt; m0 += MR) {
        const int64_t mr = std::min(MR, cnt - m0);
        int64_t ns = 0;
        for (int64_t a_ = 0; a_ < nkh; ++a_)
          for (int64_t kw = 0; kw < p.k_w; ++kw) {
            const int64_t v = iw0 + sw * m0 + p.pad_left - kw * p.dil_w;  // = sw * ow0
            if (((v % sw) + sw) % sw != 0) continue;
            const int64_t ow0 = floor_div(v, sw);
            if (ow0 + mr <= 0 || ow0 >= Wo) continue;  // all outside grad_out
            const T* row = nchw ? dyt + a_ * Wo * Og : dyn + ohs[a_] * Wo * O;
            if (ow0 >= 0 && ow0 + mr <= Wo) {
              a[ns] = row + ow0 * rs_o;
              lda[ns] = rs_o;
            } else {
              T* dst = copy + ns * MR * Og;
              for (int64_t i = 0; i < mr; ++i) {
                const int64_t ow = ow0 + i;
                if (ow >= 0 && ow < Wo)
                  std::memcpy(dst + i * Og, row + ow * rs_o, sizeof(T) * static_cast<size_t>(Og));
                else
                  std::memset(dst + i * Og, 0, sizeof(T) * static_cast<size_t>(Og));
              }
              a[ns] = dst;
              lda[ns] = Og;
            }
            tap[ns++] = khs[a_] * p.k_w + kw;
          }
        // C[i][j] = grad_x pixel (ih, iw0 + sw*(m0 + i)), channel jp*NR + j
        T* out = nchw ? rowbuf + iw0 + sw * m0
                      : dx + ((n * H + ih) * W + iw0 + sw * m0) * C + gi * Cg;
        const int64_t rs = nchw ? sw : sw * C, cs = nchw ? W : 1;
        for (int64_t jp = 0; jp < panels; ++jp) {
          const T* const* bt = bp.data() + (gi * panels + jp) * KK;
          for (int64_t sg = 0; sg < ns; ++sg) bb[sg] = bt[tap[sg]];
          rk.seg(ns, Og, a.data(), lda.data(), bb.data(), out + jp * NR * cs, rs, cs, mr,
                 std::min(NR, Cg - jp * NR), false);
        }
      }
    }
    if (nchw)  // the row's channels into their planes (contiguous runs)
      for (int64_t c = 0; c < Cg; ++c)
        std::memcpy(dx + ((n * C + gi * Cg + c) * H + ih) * W, rowbuf + c * W,
                    sizeof(T) * static_cast<size_t>(W));
  });
}

template <typename T>
void input_grad_gemm(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t N = p.batch, G = p.groups, Og = p.out_cg(), O = p.out_c, Cg = p.in_cg();
  const int64_t KK = p.kk(), Q = Cg * KK, P = p.out_plane();
  const int64_t img_x = p.in_c * p.in_h * p.in_w;
  const bool nchw = p.layout == Layout::NCHW;
  if (Og == 0) {
    parallel_for(N, [&](int64_t n, int) { std::memset(dx + n * img_x, 0, sizeof(T) * img_x); });
    return;
  }
  if (direct_grad<T>(p)) {
    input_grad_direct(p, dy, w, dx);
    return;
  }
  if (nhwc_rows_gemm(p)) {  // dx[pix][g*Cg + c] = dy[pix][g*Og + o] W^T[o][c]
    const GemmRowsKernel<T>& rk = kernels().rows<T>();
    for (int64_t gi = 0; gi < G; ++gi) {
      const StridedSource<T> ws(w + gi * Og, O, 1);  // lanes c, depth o
      const PrepackedSource<T> B(ws, Cg, Og, rk.nr, rk.kc);
      nhwc_rows_gemm_run(rk, N * P, Cg, Og, dy + gi * Og, O, B, static_cast<const T*>(nullptr),
                         dx + gi * Cg, p.in_c);
    }
    return;
  }

  // NHWC with few channels takes the NCHW orientation (q rows, pixels in the lanes): its
  // channel runs are too short to scatter from efficiently.
  const bool q_rows = nchw || Cg < 8;
  const bool pre = prepack_weights(p);
  std::vector<std::unique_ptr<WeightSource<T>>> wp(G);
  for (int64_t gi = 0; gi < G; ++gi) {
    if (nchw)  // A = W^T: lanes q, depth o
      wp[gi].reset(new WeightSource<T>(w + gi * Og * Q, 1, Q, Q, Og, g.mr, g.kc, pre));
    else if (q_rows)  // A = W^T: lanes q, depth o
      wp[gi].reset(new WeightSource<T>(w + gi * Og, O, 1, Q, Og, g.mr, g.kc, pre));
    else              // B = W^T: lanes q, depth o
      wp[gi].reset(new WeightSource<T>(w + gi * Og, O, 1, Q, Og, g.nr, g.kc, pre));
  }
  const PhaseGradPlan phase = phase_grad_plan(p, g.nc, g.mc);
  if (phase.ok) {
    input_grad_phase(p, phase, dy, w, wp, dx);
    return;
  }
  if (nchw && plain_ind<T>(p, Og)) {  // dx[c][p] = W^T[c][o] dy[o][p], dy read in place
    plain_ind_run(p, Cg, Og, w, 1, Cg, dy, O, dx, p.in_c, static_cast<const T*>(nullptr));
    return;
  }
  if (nchw && is_plain_gemm(p) && P >= g.nc) {
    // 1x1 stride 1 unpadded: dx[c][p] = W^T[c][o] dy[o][p] is a plain GEMM written straight
    // into dx (no column tile, no col2im, no zeroing pass).
    const int64_t nb = div_up(P, g.nc), tasks = N * G * nb;
    ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g));
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t b = t % nb, gi = (t / nb) % G, n = t / (nb * G);
      const int64_t p0 = b * g.nc, p1 = std::min(P, p0 + g.nc);
      const StridedSource<T> B(dy + (n * O + gi * Og) * P, 1, P);  // lanes p, depth o
      T* c = dx + (n * p.in_c + gi * Cg) * P + p0;
      gemm_serial(g, 0, Cg, p0, p1, 0, Og, *wp[gi], B, c, P, 1, false, scratch.at(tid));
    });
    return;
  }
  if (!q_rows && is_plain_gemm(p)) {
    // NHWC 1x1 stride 1 unpadded: dx[pp][c] = dy[pp][o] W^T[o][c] over the batch's pixels pp,
    // a plain GEMM written straight into grad_x (no zeroing pass, column tile or col2im: on
    // 256 channels at 56x56 those were three extra passes over a 25 MB grad_x).
    const int64_t cols = N * P, nb = div_up(cols, g.mc), tasks = G * nb;
    ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g));
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t b = t % nb, gi = t / nb;
      const int64_t i0 = b * g.mc, i1 = std::min(cols, i0 + g.mc);
      const StridedSource<T> A(dy + gi * Og, O, 1);  // dy[pp][o]: lanes pp, depth o
      T* c = dx + i0 * p.in_c + gi * Cg;
      gemm_serial(g, i0, i1, 0, Cg, 0, Og, A, *wp[gi], c, p.in_c, 1, false, scratch.at(tid));
    });
    return;
  }
  parallel_for(N, [&](int64_t n, int) { std::memset(dx + n * img_x, 0, sizeof(T) * img_x); });
  auto scatter = [](int64_t i, int64_t len, T* dst, int64_t stride, const T* vals) {
    if (!dst) return;
    for (int64_t j = 0; j < len; ++j) dst[j * stride] += vals[i + j];
  };

  if (nchw) {
    // Tasks own whole input channels of a run of images of one group: exclusive writes, fixed
    // order. Small images are batched (columns continue into the next image) so the register
    // tiles stay full; large ones are cut into column blocks.
    const int64_t cblk = std::max<int64_t>(1, std::min<int64_t>(Cg, 2 * g.mc / KK));
    const int64_t ncb = div_up(Cg, cblk);
    const int64_t ipb = std::max<int64_t>(1, g.nc / std::max<int64_t>(P, 1));  // images per task
    const int64_t nib = div_up(N, ipb);
    const int64_t pblk = ipb > 1 ? ipb * P : g.nc;
    const int64_t tasks = nib * G * ncb;
    const int64_t tile = cblk * KK * pblk;
    ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g) + tile);
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t cb = t % ncb, gi = (t / ncb) % G, ib = t / (ncb * G);
      const int64_t q0 = cb * cblk * KK, q1 = std::min(Q, q0 + cblk * KK);
      const int64_t n0 = ib * ipb, n1 = std::min(N, n0 + ipb);
      const ColGeom geom(p, gi);
      T* ws = scratch.at(tid);
      T* tl = ws + gemm_workspace_size(g);
      if (ipb > 1) {
        // dy[n][o][p] of the group as lanes = (n - n0, p), depth = o.
        const BatchedCols<T> B(dy + (n0 * O + gi * Og) * P, P, O * P);
        const int64_t wdt = (n1 - n0) * P;
        gemm_serial(g, q0, q1, 0, wdt, 0, Og, *wp[gi], B, tl, wdt, 1, false, ws);
        for (int64_t n = n0; n < n1; ++n)
          for (int64_t q = q0; q < q1; ++q) {
            const T* vals = tl + (q - q0) * wdt + (n - n0) * P;
            runs_along_pixels(geom, dx + n * img_x, q, 0, P,
                              [&](int64_t i, int64_t len, T* d, int64_t st) {
                                scatter(i, len, d, st, vals);
                              });
          }
        return;
      }
      const int64_t n = n0;
      const StridedSource<T> B(dy + (n * O + gi * Og) * P, 1, P);  // dy[o][p]: lanes p, depth o
      T* xi = dx + n * img_x;
      for (int64_t p0 = 0; p0 < P; p0 += pblk) {
        const int64_t p1 = std::min(P, p0 + pblk), wdt = p1 - p0;
        gemm_serial(g, q0, q1, p0, p1, 0, Og, *wp[gi], B, tl, wdt, 1, false, ws);
        for (int64_t q = q0; q < q1; ++q) {
          const T* vals = tl + (q - q0) * wdt;
          runs_along_pixels(geom, xi, q, p0, p1, [&](int64_t i, int64_t len, T* d, int64_t st) {
            scatter(i, len, d, st, vals);
          });
        }
      }
    });
  } else if (q_rows) {
    // One task per (run of whole images, group): all Q rows at once (a q range of NHWC is not
    // a channel range), columns are pixels contiguous across images in dy.
    const int64_t ipb = std::max<int64_t>(1, g.nc / std::max<int64_t>(P, 1));
    const int64_t nib = div_up(N, ipb), pblk = ipb > 1 ? ipb * P : g.nc;
    const int64_t tasks = nib * G;
    ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g) + Q * pblk);
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t gi = t % G, n0 = (t / G) * ipb, n1 = std::min(N, n0 + ipb);
      const ColGeom geom(p, gi);
      const StridedSource<T> B(dy + n0 * P * O + gi * Og, O, 1);  // dy[pp][o]: lanes pp, depth o
      T* ws = scratch.at(tid);
      T* tl = ws + gemm_workspace_size(g);
      const int64_t cols = (n1 - n0) * P;
      for (int64_t j0 = 0; j0 < cols; j0 += pblk) {
        const int64_t j1 = std::min(cols, j0 + pblk), wdt = j1 - j0;
        gemm_serial(g, 0, Q, j0, j1, 0, Og, *wp[gi], B, tl, wdt, 1, false, ws);
        for (int64_t j = j0; j < j1;) {  // one run per image
          const int64_t n = n0 + j / P, pix = j % P, len = std::min(P - pix, j1 - j);
          for (int64_t q = 0; q < Q; ++q) {
            const T* vals = tl + q * wdt + (j - j0);
            runs_along_pixels(geom, dx + n * img_x, q, pix, pix + len,
                              [&](int64_t i, int64_t l, T* d, int64_t st) {
                                scatter(i, l, d, st, vals);
                              });
          }
          j += len;
        }
      }
    });
  } else {
    const int64_t pblk = std::max<int64_t>(g.mr, std::min<int64_t>(g.mc, (1 << 16) / std::max<int64_t>(Q, 1)) / g.mr * g.mr);
    const int64_t tasks = N * G;
    // dy[p][o] rows are A with k = o contiguous: with the weights packed once, the row-A
    // microkernel broadcasts them in place (the packed path transposed them element by element).
    const GemmRowsKernel<T>& rk = kernels().rows<T>();
    std::vector<std::unique_ptr<PrepackedSource<T>>> wr(pre ? G : 0);
    for (int64_t gi = 0; gi < static_cast<int64_t>(wr.size()); ++gi) {
      const StridedSource<T> src(w + gi * Og, O, 1);  // lanes q, depth o
      wr[gi].reset(new PrepackedSource<T>(src, Q, Og, rk.nr, rk.kc));
    }
    ThreadScratch<T> scratch(threads_for(tasks), gemm_workspace_size(g) + pblk * Q);
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) {
      const int64_t gi = t % G, n = t / G;
      const ColGeom geom(p, gi);
      const T* dyn = dy + n * P * O + gi * Og;
      const StridedSource<T> A(dyn, O, 1);  // dy[p][o]: lanes p, depth o
      T* ws = scratch.at(tid);
      T* tl = ws + gemm_workspace_size(g);
      T* xi = dx + n * img_x;
      for (int64_t p0 = 0; p0 < P; p0 += pblk) {
        const int64_t p1 = std::min(P, p0 + pblk);
        if (!wr.empty())
          rows_times_packed(rk, p1 - p0, Q, Og, dyn + p0 * O, O, *wr[gi], tl, Q);
        else
          gemm_serial(g, p0, p1, 0, Q, 0, Og, A, *wp[gi], tl, Q, 1, false, ws);
        for (int64_t pix = p0; pix < p1; ++pix) {
          const T* vals = tl + (pix - p0) * Q;
          runs_along_q(geom, xi, pix, 0, Q, [&](int64_t i, int64_t len, T* d, int64_t s) {
            scatter(i, len, d, s, vals);
          });
        }
      }
    });
  }
}

// Weight gradients reduce over batch x pixels. With few output blocks the reduction is cut
// into a shape-determined number of chunks (never the thread count), each written to its own
// partial buffer, and the partials are summed in chunk order: bitwise identical for any
// number of threads.
// Reduction chunks of the packed-GEMM and dot-product weight-gradient drivers: one chunk once
// there are >= 16 output blocks, else up to 16 chunks of >= 4096 pixels, partials <= 2^24
// elements. A function of the shape only, never of the thread count.
int64_t gemm_wgrad_chunks(const Conv2dParams& p, int64_t out_blocks, int64_t wsize,
                          int64_t /*reserve*/) {
  if (out_blocks >= 16) return 1;
  const int64_t Kt = p.batch * p.out_plane();
  int64_t chunks = std::min<int64_t>(16, div_up(Kt, 4096));
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, (int64_t(1) << 24) / std::max<int64_t>(wsize, 1)));
  return std::max<int64_t>(chunks, 1);
}

template <typename T>
void sum_chunks(const T* partial, int64_t chunks, int64_t wsize, T* dw) {
  const int64_t blk = 4096;
  parallel_for(div_up(wsize, blk), [&](int64_t t, int) {
    const int64_t e0 = t * blk, e1 = std::min(wsize, e0 + blk);
    for (int64_t e = e0; e < e1; ++e) {
      T s = partial[e];
      for (int64_t ch = 1; ch < chunks; ++ch) s += partial[ch * wsize + e];
      dw[e] = s;
    }
  });
}

// Reduction chunks of the row-A and NHWC weight-gradient drivers: enough tasks (>= 16) that
// two or more threads share them evenly, chunks of >= 1024 pixels, and partial sums within 1/4
// of the layer's im2col matrix, less `reserve` elements of the driver's own scratch. A function
// of the shape only, never of the thread count.
int64_t wgrad_chunks(const Conv2dParams& p, int64_t out_blocks, int64_t wsize, int64_t reserve) {
  const int64_t Kt = p.batch * p.out_plane();
  const int64_t im2col_4 = p.groups * p.in_cg() * p.kk() * Kt / 4;
  // 7/8 of the bound: the rest is headroom for what a measurement of the call also sees (the
  // output, allocator rounding); at the full quarter 1x1_64to256@56 NHWC measured 0.255 once.
  const int64_t budget = im2col_4 - im2col_4 / 8;
  int64_t chunks = div_up(16, std::max<int64_t>(out_blocks, 1));
  chunks = std::min(chunks, std::max<int64_t>(1, Kt / 1024));
  chunks = std::min(chunks, (budget - reserve) / std::max<int64_t>(wsize, 1));
  return std::max<int64_t>(chunks, 1);
}

// The task grid of every weight-gradient GEMM driver: tasks own (group, block of MB
// C rows, block of NB C columns, reduction chunk); chunk partials go to their own buffers and
// finish() sums them in chunk order.
template <typename T>
struct WgradSplit {
  int64_t M, MB, mb, N, NB, nb, Kt, wsize, chunks, kchunk, tasks;
  AlignedArray<T> partial;
  struct Task {
    int64_t gi, i0, i1, j0, j1, k0, k1;
    T* base;  // dW, or this chunk's partial buffer
  };
  using ChunkRule = int64_t (*)(const Conv2dParams&, int64_t out_blocks, int64_t wsize,
                                int64_t reserve);
  // reserve: elements of scratch the driver needs besides the partials; the partials then
  // share 1/4 of the im2col buffer with it. It must not depend on the thread count (the chunk
  // count fixes the summation order).
  WgradSplit(const Conv2dParams& p, int64_t m, int64_t mblk, int64_t n, int64_t nblk,
             ChunkRule rule = &wgrad_chunks, int64_t reserve = 0)
      : M(m), MB(mblk), mb(div_up(m, mblk)), N(n), NB(nblk), nb(div_up(n, nblk)) {
    Kt = p.batch * p.out_plane();
    wsize = p.out_c * p.in_cg() * p.kk();
    const int64_t out_blocks = p.groups * mb * nb;
    chunks = rule(p, out_blocks, wsize, reserve);
    kchunk = div_up(Kt, chunks);
    if (chunks > 1) partial.reset(checked_mul(wsize, chunks, "workspace size"));
    tasks = out_blocks * chunks;
  }
  Task task(int64_t t, T* dw) {
    const int64_t ch = t % chunks;
    int64_t r = t / chunks;
    const int64_t jb = r % nb;
    r /= nb;
    const int64_t ib = r % mb, gi = r / mb;
    Task k;
    k.gi = gi;
    k.i0 = ib * MB, k.i1 = std::min(M, k.i0 + MB);
    k.j0 = jb * NB, k.j1 = std::min(N, k.j0 + NB);
    k.k0 = std::min(Kt, ch * kchunk), k.k1 = std::min(Kt, k.k0 + kchunk);
    k.base = chunks > 1 ? partial.data() + ch * wsize : dw;
    return k;
  }
  // Runs fn(task, scratch) for every task with `per` elements of per-thread scratch, then sums
  // the chunk partials into dw.
  template <typename Fn>
  void run(int64_t per, T* dw, Fn&& fn) {
    ThreadScratch<T> scratch(threads_for(tasks), per);
    parallel_for(tasks, scratch.threads, [&](int64_t t, int tid) { fn(task(t, dw), scratch.at(tid)); });
    if (chunks > 1) sum_chunks(partial.data(), chunks, wsize, dw);
  }
};

// ------------------------------------------------------------------------------------------
// weight gradient: reduction over batch x pixels, cut into a shape-determined number of chunks
// ------------------------------------------------------------------------------------------
template <typename T>
void weight_grad_gemm(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  // NCHW only (NHWC weight gradients all take weight_grad_nhwc): C = dW[o][q], M = Og, N = Q.
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t Og = p.out_cg(), O = p.out_c, Q = p.in_cg() * p.kk(), P = p.out_plane();
  WgradSplit<T> split(p, Og, g.mc, Q, g.nc, &gemm_wgrad_chunks);
  split.run(gemm_workspace_size(g), dw, [&](const typename WgradSplit<T>::Task& tk, T* ws) {
    const int64_t gi = tk.gi, i0 = tk.i0, i1 = tk.i1, j0 = tk.j0, j1 = tk.j1, k0 = tk.k0, k1 = tk.k1;
    const ColGeom geom(p, gi);
    const ColQLanes<T> col(geom, x, true);
    const BatchedRows<T> A(dy + gi * Og * P, P, O * P);
    T* c = tk.base + gi * Og * Q + i0 * Q + j0;
    gemm_serial(g, i0, i1, j0, j1, k0, k1, A, col, c, Q, 1, false, ws);
  });
}

// ------------------------------------------------------------------------------------------
// weight gradient, NCHW: dot products. dW[o][q] = sum_pp dy[o][pp] * col[q][pp] with pp the
// pixel index over the whole batch: grad_out rows and im2col rows both run along pp, so each
// task copies kb-long pieces of its rows into scratch (no transposition) and runs the dot
// microkernel's MR x NR tiles over them. The pp range is cut into a shape-determined number of
// chunks whose partial results are summed in a fixed order: bitwise identical for any thread
// count.
// ------------------------------------------------------------------------------------------
template <typename T>
struct ContigSink {  // run element i goes to row[i]
  T* row;
  void operator()(int64_t i, int64_t len, const T* src, int64_t stride) const {
    T* d = row + i;
    if (!src)
      std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(len));
    else if (stride == 1)
      std::memcpy(d, src, sizeof(T) * static_cast<size_t>(len));
    else if (stride == 2)  // stride-2 layers: a constant stride lets the compiler vectorise
      for (int64_t j = 0; j < len; ++j) d[j] = src[2 * j];
    else
      for (int64_t j = 0; j < len; ++j) d[j] = src[j * stride];
  }
};

template <typename T>
void weight_grad_dot(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const DotKernel<T>& d = kernels().dot<T>();
  const int64_t Og = p.out_cg(), O = p.out_c, Q = p.in_cg() * p.kk(), P = p.out_plane();
  const int64_t kb = d.kb;
  // Rows per task: the OB x kb block of grad_out rows stays in L2 while the q tiles stream
  // past it (each q tile's NR rows stay in L1); scratch is sized by the layer's own extents.
  const int64_t OB = std::min<int64_t>(64 / d.mr * d.mr, Og);
  const int64_t QB = std::min<int64_t>(96 / d.nr * d.nr, Q);
  WgradSplit<T> split(p, Og, OB, Q, QB, &gemm_wgrad_chunks);
  split.run(checked_mul(OB + QB, kb, "workspace size"), dw,
            [&](const typename WgradSplit<T>::Task& tk, T* Ab) {
    const int64_t gi = tk.gi, o0 = tk.i0, o1 = tk.i1, q0 = tk.j0, q1 = tk.j1, k0 = tk.k0, k1 = tk.k1;
    T* base = tk.base;
    T* c = base + (gi * Og + o0) * Q + q0;
    if (k1 <= k0) {
      for (int64_t o = o0; o < o1; ++o)
        std::memset(static_cast<void*>(c + (o - o0) * Q), 0, sizeof(T) * static_cast<size_t>(q1 - q0));
      return;
    }
    const ColGeom geom(p, gi);
    T* Bb = Ab + OB * kb;
    // Large images: depth blocks end at image boundaries, and grad_out rows (and, for 1x1
    // stride-1 layers, the input rows themselves) are read in place with a row stride of P.
    // Small images: blocks run across images through copies, so they stay kb long.
    const bool in_place = P >= kb / 2;
    const bool plain = is_plain_gemm(p);
    for (int64_t b0 = k0; b0 < k1;) {
      const int64_t kn = in_place ? std::min({kb, k1 - b0, P - b0 % P}) : std::min(kb, k1 - b0);
      const T* A = Ab;
      const T* B = Bb;
      int64_t lda = kb, ldb = kb;
      if (in_place) {
        const int64_t n = b0 / P, pix = b0 % P;
        A = dy + (n * O + gi * Og + o0) * P + pix;
        lda = P;
        if (plain) {
          B = x + (n * p.in_c + gi * p.in_cg() + q0) * P + pix;
          ldb = P;
        } else {
          for (int64_t q = q0; q < q1; ++q)
            runs_along_pixels(geom, x + n * geom.img, q, pix, pix + kn,
                              ContigSink<T>{Bb + (q - q0) * kb});
        }
      } else {
        for (int64_t pp = b0; pp < b0 + kn;) {  // one piece per image
          const int64_t n = pp / P, pix = pp % P, len = std::min(P - pix, b0 + kn - pp);
          const T* dyn = dy + (n * O + gi * Og) * P + pix;
          for (int64_t o = o0; o < o1; ++o)
            std::memcpy(Ab + (o - o0) * kb + (pp - b0), dyn + o * P,
                        sizeof(T) * static_cast<size_t>(len));
          for (int64_t q = q0; q < q1; ++q)
            runs_along_pixels(geom, x + n * geom.img, q, pix, pix + len,
                              ContigSink<T>{Bb + (q - q0) * kb + (pp - b0)});
          pp += len;
        }
      }
      const bool acc = b0 > k0;
      for (int64_t q = q0; q < q1; q += d.nr)
        for (int64_t o = o0; o < o1; o += d.mr)
          d.ukr(kn, A + (o - o0) * lda, lda, B + (q - q0) * ldb, ldb, c + (o - o0) * Q + (q - q0),
                Q, 1, std::min<int64_t>(d.mr, o1 - o), std::min<int64_t>(d.nr, q1 - q), acc);
      b0 += kn;
    }
  });
}

// ------------------------------------------------------------------------------------------
// weight gradient, NCHW: row-A GEMM tiles. dW[o][q] = sum_pp dy[o][pp] * col[q][pp], pp the
// pixel index over the whole batch: both operands have pp contiguous. The side with more rows
// (A: im2col rows when Q >= Og, else grad_out rows) is read as rows by the row-A microkernel,
// in place where the rows lie in memory (grad_out; the input of a 1x1 stride-1 layer) or copied
// run by run; the side with fewer rows (B) is transposed into [kc][NR] micro-panels once per
// depth block and serves every A row of the task. So only the smaller operand is transposed
// (8x8 register transposes where the ISA has them). Each 6-row A micro-panel stays in L1 while
// the task's packed B block (<= 192 KiB) streams past it from L2; the orientation and blocking
// are the ones with the least packing work per pixel.
// Tasks own (group, A block, B block, reduction chunk); the C block is accumulated in scratch
// and written once per task; chunks are summed in chunk order: bitwise identical for any
// thread count.
// ------------------------------------------------------------------------------------------


// dst[j*ldd + i] = src[i*lds + j] (or 0 when zero) for i < rows, j < cols, in 8 x 8 tiles so
// both sides stay within a few cache lines (the weight gradient's C blocks written out).
template <typename T>
void store_block_t(const T* src, int64_t lds, int64_t rows, int64_t cols, bool zero, T* dst,
                   int64_t ldd) {
  for (int64_t i0 = 0; i0 < rows; i0 += 8)
    for (int64_t j0 = 0; j0 < cols; j0 += 8) {
      const int64_t i1 = std::min(rows, i0 + 8), j1 = std::min(cols, j0 + 8);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ldd + i] = zero ? T(0) : src[i * lds + j];
    }
}

// Transposes nl rows of kn elements (row l at src + l*ld) into ceil(nl/NR) micro-panels
// [kn][NR] (panel p at dst + p*kn*NR), zero-filling lanes past nl.
template <typename T>
void rows_to_panels(const T* src, int64_t ld, int64_t nl, int64_t kn, int NR, T* dst) {
  for (int64_t p0 = 0; p0 < nl; p0 += NR) {
    T* d = dst + (p0 / NR) * kn * NR;
    const int64_t lanes = std::min<int64_t>(NR, nl - p0);
    constexpr int64_t KB = 8;  // 8 depth rows x the panel's lanes: short-stride stores
    for (int64_t k0 = 0; k0 < kn; k0 += KB) {
      const int64_t kl = std::min(KB, kn - k0);
      for (int64_t l = 0; l < lanes; ++l) {
        const T* s = src + (p0 + l) * ld + k0;
        for (int64_t k = 0; k < kl; ++k) d[(k0 + k) * NR + l] = s[k];
      }
      for (int64_t k = 0; k < kl; ++k)
        for (int64_t l = lanes; l < NR; ++l) d[(k0 + k) * NR + l] = T(0);
    }
  }
}

template <typename T>
void weight_grad_rows(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const GemmRowsKernel<T>& g = kernels().rows<T>();
  const int64_t Og = p.out_cg(), O = p.out_c, Cg = p.in_cg();
  const int64_t Q = Cg * p.kk(), P = p.out_plane();
  const int64_t MR = g.mr, NR = g.nr, kc = g.kc;
  constexpr int64_t bkb = 192, ckb = 128;  // KiB: packed B block (L2), C block in scratch
  const bool plain = is_plain_gemm(p);
  const bool in_place = P >= kc / 2;
  // Blocking for one orientation: B blocks of NBB lanes (kc x NBB packed stays in L2), A blocks
  // of MB rows (the MB x NBB C block in scratch stays within ckb KiB).
  struct Blocking { int64_t MA, NB, MB, mb, NBB, nb; double cost; };
  const auto blocking = [&](bool acol, int64_t shrink) {
    Blocking b;
    b.MA = acol ? Q : Og;
    b.NB = acol ? Og : Q;
    const int64_t lanes =
        std::max<int64_t>(NR, (bkb * 1024 / int64_t(sizeof(T)) / kc / shrink) / NR * NR);
    b.nb = div_up(b.NB, lanes);
    b.NBB = std::min(b.NB, div_up(div_up(b.NB, b.nb), NR) * NR);
    const int64_t rows = std::max<int64_t>(MR, (ckb * 1024 / int64_t(sizeof(T)) / b.NBB) / MR * MR);
    b.mb = div_up(b.MA, rows);
    b.MB = std::min(b.MA, div_up(div_up(b.MA, b.mb), MR) * MR);
    // packing work per pixel: A rows copied once per B block, B rows transposed once per A block
    const double col_copy = (plain && in_place) ? 0.0 : (P < 64 ? 2.0 : 1.0);
    const double dy_copy = in_place ? 0.0 : 0.25;
    b.cost = double(b.MA) * b.nb * (acol ? col_copy : dy_copy) +
             double(b.NB) * b.mb * ((acol ? dy_copy : col_copy) + 1.0);
    return b;
  };
  // The cheapest of both orientations with B blocks of the full, half or quarter width (narrower
  // B blocks leave room for taller A blocks in the C block, so the B side is transposed fewer
  // times: r3x3_256@14 NCHW, 1 thread, 73 -> 82 GFLOP/s).
  bool a_col = true;
  Blocking bl = blocking(true, 1);
  for (int acol = 1; acol >= 0; --acol)
    for (int64_t shrink : {1, 2, 4}) {
      const Blocking b = blocking(acol != 0, shrink);
      if (b.cost < bl.cost) {
        bl = b;
        a_col = acol != 0;  // A rows: im2col rows q (else grad_out rows o)
      }
    }
  const int64_t MB = bl.MB, NBB = bl.NBB;
  WgradSplit<T> split(p, bl.MA, MB, bl.NB, NBB);
  const int64_t panels = div_up(NBB, NR) * NR;
  // scratch: A rows (MB x kc), B rows (NBB x kc), B panels (panels x kc), C block (MB x NBB)
  const int64_t per = checked_mul(MB + NBB + panels, kc, "workspace size") + MB * NBB;
  split.run(per, dw, [&](const typename WgradSplit<T>::Task& tk, T* Abuf) {
    const int64_t gi = tk.gi, i0 = tk.i0, i1 = tk.i1, j0 = tk.j0, j1 = tk.j1, k0 = tk.k0, k1 = tk.k1;
    const ColGeom geom(p, gi);
    T* Braw = Abuf + MB * kc;
    T* Bp = Braw + NBB * kc;
    T* Cl = Bp + panels * kc;
    // Rows [r0, r1) of one side over pixels [b0, b0 + kn): in place (ld = P) or copied into buf.
    const auto rows = [&](bool col_side, int64_t r0, int64_t r1, int64_t b0, int64_t kn, T* buf,
                          int64_t& ld) -> const T* {
      if (in_place && (!col_side || plain)) {
        const int64_t n = b0 / P, pix = b0 % P;
        ld = P;
        return col_side ? x + (n * p.in_c + gi * Cg + r0) * P + pix
                        : dy + (n * O + gi * Og + r0) * P + pix;
      }
      ld = kc;
      for (int64_t pp = b0; pp < b0 + kn;) {  // one piece per image
        const int64_t n = pp / P, pix = pp % P, len = std::min(P - pix, b0 + kn - pp);
        for (int64_t q = r0; q < r1; ++q) {
          T* d = buf + (q - r0) * kc + (pp - b0);
          if (!col_side)
            std::memcpy(d, dy + (n * O + gi * Og + q) * P + pix, sizeof(T) * static_cast<size_t>(len));
          else
            runs_along_pixels(geom, x + n * geom.img, q, pix, pix + len, ContigSink<T>{d});
        }
        pp += len;
      }
      return buf;
    };
    for (int64_t b0 = k0; b0 < k1;) {
      // Even depth blocks (784 pixels: 4 x 196, not 3 x 256 + 16): short ones pay the C tile
      // load and store for few FMAs.
      const int64_t left = in_place ? std::min(k1 - b0, P - b0 % P) : k1 - b0;
      const int64_t kn = div_up(left, div_up(left, kc));
      int64_t lda = 0, ldb = 0;
      const T* A = rows(a_col, i0, i1, b0, kn, Abuf, lda);
      const T* B = rows(!a_col, j0, j1, b0, kn, Braw, ldb);
      if (g.pack_t)
        g.pack_t(B, ldb, j1 - j0, kn, Bp);
      else
        rows_to_panels(B, ldb, j1 - j0, kn, static_cast<int>(NR), Bp);
      const bool acc = b0 > k0;
      for (int64_t ir = 0; ir < i1 - i0; ir += MR)
        for (int64_t jr = 0; jr < j1 - j0; jr += NR)
          g.ukr(kn, A + ir * lda, lda, Bp + (jr / NR) * kn * NR, Cl + ir * NBB + jr, NBB, 1,
                std::min<int64_t>(MR, i1 - i0 - ir), std::min<int64_t>(NR, j1 - j0 - jr), acc);
      b0 += kn;
    }
    T* wg = tk.base + gi * Og * Q;
    const bool empty = k1 <= k0;
    if (a_col)  // C[q][o] into dW[o][q]
      store_block_t(Cl, NBB, i1 - i0, j1 - j0, empty, wg + j0 * Q + i0, Q);
    else
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j)
          wg[i * Q + j] = empty ? T(0) : Cl[(i - i0) * NBB + (j - j0)];
  });
}

// NCHW stride-1 weight gradient over zero-padded input bands: dW[o][c][t] = sum_p dy[o][p] *
// x[c][p shifted by tap t]. A task copies the input rows of a band of output rows (its block of
// channels) once into a zero-padded band [c][rows][Wp] (Wp = the padded width), where every
// tap's operand row is a contiguous run over "virtual pixels" v = row * Wp + column: the row-A
// microkernel reads 6 channels' runs in place (rows one band plane apart) for each tap. grad_out
// rows are transposed into NR-output panels once per band, zero at the Wp - Wo virtual columns
// and outside the task's pixels. The packed driver (weight_grad_rows) copied each of the KK
// im2col rows separately instead of one band. The tile C[t][c][o] block stays in scratch.
// Measured (Zen 4, AVX-512, ms, rows driver -> bands): r3x3_64@56 1 thread 22.5 -> 21.0,
// 2 threads 11.7 -> 10.7; dil2_3x3_64@56 22.0 -> 21.1.
struct BandWgradPlan {
  int64_t Wp = 0, R = 0, Rb = 0, MB = 0, NBB = 0;
};

template <typename T>
BandWgradPlan band_wgrad_plan(const Conv2dParams& p) {
  const GemmRowsKernel<T>& g = kernels().rows<T>();
  BandWgradPlan b;
  b.Wp = p.out_w + (p.k_w - 1) * p.dil_w;
  b.R = std::max<int64_t>(1, std::min<int64_t>(p.out_h, 256 / b.Wp));  // ~256 virtual pixels
  b.Rb = b.R + (p.k_h - 1) * p.dil_h;
  b.MB = std::min<int64_t>(p.in_cg(), 64);
  b.NBB = std::min<int64_t>(div_up(p.out_cg(), g.nr) * g.nr, 128);
  return b;
}

template <typename T>
bool band_weight_grad(const Conv2dParams& p) {
  const GemmRowsKernel<T>& g = kernels().rows<T>();
  if (p.layout != Layout::NCHW || p.stride_h != 1 || p.stride_w != 1 || p.kk() < 2 ||
      p.out_cg() < g.nr || p.in_cg() < g.mr || !(g.kc >= 64))
    return false;
  // padding columns cost FMAs on zeros: at most 1/8 of the virtual pixels; and only rows of
  // >= 48 outputs (28-wide r3x3_128@28 measured no gain, within the noise or up to 8 % slower)
  const BandWgradPlan b = band_wgrad_plan<T>(p);
  return 8 * (b.Wp - p.out_w) <= b.Wp && p.out_w >= 48;
}

template <typename T>
void weight_grad_band(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const GemmRowsKernel<T>& g = kernels().rows<T>();
  const BandWgradPlan bp = band_wgrad_plan<T>(p);
  const int64_t Og = p.out_cg(), Cg = p.in_cg(), KK = p.kk(), O = p.out_c, C = p.in_c;
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, P = p.out_plane();
  const int64_t MR = g.mr, NR = g.nr, Wp = bp.Wp, R = bp.R, Rb = bp.Rb, MB = bp.MB, NBB = bp.NBB;
  const int64_t plane = Rb * Wp, kmax = R * Wp;
  const int64_t panels = div_up(NBB, NR);
  // scratch: band (MB planes), grad_out panels (panels x kmax x NR), C block (KK x MB x NBB)
  const int64_t cblk = KK * MB * NBB;
  const int64_t per = checked_mul(MB, plane, "workspace size") + panels * kmax * NR + cblk;
  // tasks over (group, channel block, output block, pixel chunk): the split's rows are the
  // channels (MB per block), its columns the outputs (NBB per block)
  WgradSplit<T> split(p, Cg, MB, Og, NBB, &wgrad_chunks, 2 * per);
  split.run(per, dw, [&](const typename WgradSplit<T>::Task& tk, T* S) {
    const int64_t gi = tk.gi, c0 = tk.i0, c1 = tk.i1, o0 = tk.j0, o1 = tk.j1, k0 = tk.k0, k1 = tk.k1;
    const int64_t mc = c1 - c0, no = o1 - o0;
    T* band = S;
    T* Bp = band + MB * plane;
    T* Cl = Bp + panels * kmax * NR;
    bool first = true;
    // bands: runs of <= R output rows of one image inside [k0, k1)
    for (int64_t pp = k0; pp < k1;) {
      const int64_t n = pp / P, oh0 = (pp % P) / Wo;
      const int64_t oh1 = std::min<int64_t>(Ho, oh0 + R);
      const int64_t pend = std::min<int64_t>(k1, n * P + oh1 * Wo);  // task pixels in this band
      const int64_t rows = oh1 - oh0, kn = (rows - 1) * Wp + Wo;
      // input band: rows oh0 - pad_top .. of channels c0.. , zero-padded to Wp columns
      const int64_t rb = rows + (p.k_h - 1) * p.dil_h;
      for (int64_t c = 0; c < mc; ++c) {
        const T* xc = x + (n * C + gi * Cg + c0 + c) * H * W;
        T* bc = band + c * plane;
        for (int64_t r = 0; r < rb; ++r) {
          const int64_t ih = oh0 - p.pad_top + r;
          T* d = bc + r * Wp;
          if (ih < 0 || ih >= H) {
            std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(Wp));
            continue;
          }
          const int64_t lo = std::min<int64_t>(Wp, std::max<int64_t>(0, p.pad_left));
          const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(Wp, p.pad_left + W));
          for (int64_t j = 0; j < lo; ++j) d[j] = T(0);
          std::memcpy(d + lo, xc + ih * W + (lo - p.pad_left), sizeof(T) * static_cast<size_t>(hi - lo));
          for (int64_t j = hi; j < Wp; ++j) d[j] = T(0);
        }
      }
      // grad_out panels [v][NR] over the band's virtual pixels, zero outside the task's pixels:
      // per output row, its columns in the task transposed from grad_out rows (P apart)
      for (int64_t jp = 0; jp < panels; ++jp) {
        T* bpn = Bp + jp * kmax * NR;
        const int64_t oa = o0 + jp * NR, lanes = std::min<int64_t>(NR, o1 - oa);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t rp = n * P + (oh0 + r) * Wo;  // the row's first pixel
          const int64_t ca = std::max<int64_t>(0, pp - rp), cb = std::min<int64_t>(Wo, pend - rp);
          T* d = bpn + r * Wp * NR;
          const int64_t vend = r + 1 < rows ? Wp : Wo;  // the last row has no virtual columns
          std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(ca * NR));
          if (cb > ca) {  // one panel of `lanes` outputs (the rest zero) over columns ca..cb
            const T* src = dy + (n * O + gi * Og + oa) * P + (oh0 + r) * Wo + ca;
            if (g.pack_t)
              g.pack_t(src, P, lanes, cb - ca, d + ca * NR);
            else
              rows_to_panels(src, P, lanes, cb - ca, static_cast<int>(NR), d + ca * NR);
          }
          const int64_t z0 = std::max(ca, cb);
          std::memset(static_cast<void*>(d + z0 * NR), 0, sizeof(T) * static_cast<size_t>((vend - z0) * NR));
        }
      }
      // every tap: C[t][c][o] (+)= band runs (6 channels) x grad_out panels
      for (int64_t t = 0; t < KK; ++t) {
        const int64_t shift = (t / p.k_w) * p.dil_h * Wp + (t % p.k_w) * p.dil_w;
        for (int64_t ic = 0; ic < mc; ic += MR)
          for (int64_t jp = 0; jp < panels; ++jp)
            g.ukr(kn, band + ic * plane + shift, plane, Bp + jp * kmax * NR,
                  Cl + (t * MB + ic) * NBB + jp * NR, NBB, 1, std::min<int64_t>(MR, mc - ic),
                  std::min<int64_t>(NR, no - jp * NR), !first);
      }
      first = false;
      pp = pend;
    }
    // C[t][c][o] into dW[g*Og + o][c][t] (or this chunk's partial)
    T* wg = tk.base + gi * Og * Cg * KK;
    for (int64_t o = 0; o < no; ++o)
      for (int64_t c = 0; c < mc; ++c)
        for (int64_t t = 0; t < KK; ++t)
          wg[((o0 + o) * Cg + c0 + c) * KK + t] = first ? T(0) : Cl[(t * MB + c) * NBB + o];
  });
}

// NCHW weight gradients with few outputs per group take the dot-product tiles: the GEMM
// path's transposing pack of the im2col operand is amortised over only Og rows there (LeNet
// layers ran 7-12x faster, 64-channel layers ~5 %), while wide layers keep the GEMM tiles.
bool use_dot_weight_grad(const Conv2dParams& p) {
  return p.layout == Layout::NCHW && (p.out_cg() <= 64 || is_plain_gemm(p));
}

// ------------------------------------------------------------------------------------------
// weight gradient, NHWC: dW[q][o] = sum_pp col[pp][q] * dy[pp][o]. Both operands are
// pixel-major, i.e. already "depth x lanes": packing is plain copies, no transposes, pixel by
// pixel (each pixel's grad_out row and input rows read front to back once). Patch lanes are
// copied as runs of consecutive (kw, c) entries of one kernel row, which are contiguous in an
// NHWC image (a 7x7 stem with 3 channels: 21 values per run). grad_out or the patches take the
// MR-wide A panels (see weight_grad_nhwc); a task's C block is accumulated in scratch and
// written into dW once (transposed when it is dW^T).
// ------------------------------------------------------------------------------------------

// Lanes per packed block of the NHWC weight-gradient driver (256 KiB of float32 at kc = 256).
constexpr int64_t kNhwcLanes = 256;

// Lanes [lane, lane + len) of a patch block: patch entries (kh, kw, c), (kh, kw, c + 1), ...
// that are contiguous in the image wherever the pixel's kernel window lies inside it
// horizontally (across taps only when dil_w == 1 and the group holds every channel).
struct PanelRun {
  int64_t lane, len, kh, kw, c;
};

// Splits patch lanes [j0, j0 + nl) into runs (lanes counted from j0); returns how many.
inline int64_t panel_runs(const ColGeom& G, int64_t j0, int64_t nl, PanelRun* runs) {
  const Conv2dParams& P = G.P;
  const bool merge_taps = P.dil_w == 1 && G.Cg == P.in_c;
  int64_t count = 0, c = j0 % G.Cg, tap = j0 / G.Cg;
  for (int64_t lane = 0; lane < nl;) {
    const int64_t kh = tap / P.k_w, kw = tap % P.k_w;
    // entries left in this tap, then in the rest of the kernel row when taps are contiguous
    int64_t len = G.Cg - c;
    if (merge_taps) len += (P.k_w - 1 - kw) * G.Cg;
    len = std::min(len, nl - lane);
    runs[count++] = PanelRun{lane, len, kh, kw, c};
    lane += len;
    const int64_t e = c + len;  // entries past the first tap's channel 0
    tap += e / G.Cg;
    c = e % G.Cg;
  }
  return count;
}

// d[0, len) = s[0, len) with fixed-size (inlined) vector copies; meant for short runs.
template <typename T>
inline void copy_run(T* d, const T* s, int64_t len) {
  constexpr int64_t V = 32 / sizeof(T);  // one AVX vector
  if (len >= V) {
    int64_t e = 0;
    for (; e + V <= len; e += V) std::memcpy(d + e, s + e, V * sizeof(T));
    if (e < len) std::memcpy(d + len - V, s + len - V, V * sizeof(T));  // overlapping tail
  } else if (len >= V / 2) {
    std::memcpy(d, s, V / 2 * sizeof(T));
    std::memcpy(d + len - V / 2, s + len - V / 2, V / 2 * sizeof(T));
  } else {
    for (int64_t e = 0; e < len; ++e) d[e] = s[e];
  }
}

// row[p * pstride + l] = lin[p * W + l] for p < panels, l < W: fixed-size copies.
template <typename T, int W>
inline void split_row_w(T* row, int64_t pstride, const T* lin, int64_t panels) {
  for (int64_t p = 0; p < panels; ++p) std::memcpy(row + p * pstride, lin + p * W, W * sizeof(T));
}

template <typename T>
inline void split_row(T* row, int64_t pstride, const T* lin, int64_t panels, int64_t W) {
  switch (W) {
    case 4: split_row_w<T, 4>(row, pstride, lin, panels); return;
    case 6: split_row_w<T, 6>(row, pstride, lin, panels); return;
    case 8: split_row_w<T, 8>(row, pstride, lin, panels); return;
    case 16: split_row_w<T, 16>(row, pstride, lin, panels); return;
    case 32: split_row_w<T, 32>(row, pstride, lin, panels); return;
    default:
      for (int64_t p = 0; p < panels; ++p)
        std::memcpy(row + p * pstride, lin + p * W, static_cast<size_t>(W) * sizeof(T));
  }
}

// Copies `len` values of `src` (zeros where src is null) to lanes [lane, lane + len) of one
// depth row of a packed block, split at micro-panel boundaries ([kn][NR] panels, panel stride
// pstride = kn*NR; row points at the row in panel 0).
template <typename T>
inline void put_lanes(T* row, int64_t pstride, int64_t NR, int64_t lane, const T* src,
                      int64_t len) {
  int64_t pi = lane / NR, l = lane - pi * NR;
  if (src && l == 0 && len >= NR) {  // whole panels: one width dispatch for all of them
    const int64_t full = len / NR;
    split_row(row + pi * pstride, pstride, src, full, NR);
    pi += full;
    src += full * NR;
    len -= full * NR;
  }
  while (len > 0) {
    const int64_t m = std::min(len, NR - l);
    T* d = row + pi * pstride + l;
    if (!src)
      for (int64_t e = 0; e < m; ++e) d[e] = T(0);
    else if (m == NR)
      copy_panel_row(d, src, static_cast<int>(NR));
    else
      copy_run(d, src, m);
    if (src) src += m;
    len -= m;
    ++pi;
    l = 0;
  }
}

// Packs a patch block: patch lanes [j0, j1) as runs (`nruns` of them, lanes counted from j0)
// into ceil((j1 - j0) / NR) micro-panels [kn][NR] (lanes past j1 zero; NR: the panel width of
// the side the patches take) over pixels [b0, b0 + kn)
// of the flattened batch. Pixel-outer, so each pixel's input rows are read front to back once
// (panel-outer reads of wide rows missed the cache); pixels advance incrementally.
template <typename T>
void pack_nhwc_block(const ColGeom& G, const T* x, const PanelRun* runs, int64_t nruns,
                     int64_t j0, int64_t j1, int64_t b0, int64_t kn, int64_t NR, T* buf) {
  const Conv2dParams& P = G.P;
  int64_t n = b0 / G.npix, pix = b0 % G.npix;
  int64_t oh = pix / P.out_w, ow = pix % P.out_w;
  const int64_t span_w = (P.k_w - 1) * P.dil_w;
  const int64_t nl = j1 - j0, pstride = kn * NR, panels = div_up(nl, NR);
  const int64_t last = (nl / NR) * pstride;  // the panel holding lane nl (when nl < panels*NR)
  // Runs of a few panels at most (few channels: the stem's 21-value kernel rows), and any runs
  // into narrow (A) panels, are gathered into one contiguous row first, then split into panels
  // with whole-panel copies (1x1_64to256 NHWC, 1 thread: -2 %).
  const bool linear = nl < 4 * NR * nruns || NR < 8;
  T lin[kNhwcLanes + 32] = {};
  T* row = nullptr;
  const auto put = [&](int64_t lane, const T* src, int64_t len) {
    if (!linear)
      put_lanes(row, pstride, NR, lane, src, len);
    else if (src)
      copy_run(lin + lane, src, len);
    else
      for (int64_t e = 0; e < len; ++e) lin[lane + e] = T(0);
  };
  for (int64_t kk = 0; kk < kn; ++kk) {
    const int64_t ih0 = oh * P.stride_h - P.pad_top, iw0 = ow * P.stride_w - P.pad_left;
    const T* xn = x + n * G.img + G.c_off;
    const bool inside = iw0 >= 0 && iw0 + span_w < P.in_w;
    row = buf + kk * NR;
    for (int64_t r = 0; r < nruns; ++r) {
      const PanelRun& u = runs[r];
      const int64_t ih = ih0 + u.kh * P.dil_h;
      if (ih < 0 || ih >= P.in_h) {
        put(u.lane, nullptr, u.len);
      } else if (inside) {
        put(u.lane, xn + ih * G.hs + (iw0 + u.kw * P.dil_w) * G.ws + u.c, u.len);
      } else {  // tap by tap, zero where the tap falls into the left or right padding
        for (int64_t e = 0, kw = u.kw, c = u.c; e < u.len; ++kw, c = 0) {
          const int64_t m = std::min(G.Cg - c, u.len - e);
          const int64_t iw = iw0 + kw * P.dil_w;
          const bool pad = iw < 0 || iw >= P.in_w;
          put(u.lane + e, pad ? nullptr : xn + ih * G.hs + iw * G.ws + c, m);
          e += m;
        }
      }
    }
    if (linear)  // lin past nl stays zero
      split_row(row, pstride, lin, panels, NR);
    else
      for (int64_t l = nl % NR; l < panels * NR - nl + nl % NR; ++l) row[last + l] = T(0);
    if (++ow == P.out_w) {
      ow = 0;
      if (++oh == P.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

// Packs lanes [0, nl) x depth [0, kn) of a pixel-major matrix (element (lane, k) at
// src[k*ld + lane]) into [kn][W] panels, lanes past nl zero-filled. Depth-outer: each source
// row is read front to back once (strided panel-by-panel reads missed the cache on wide rows).
template <typename T, int W>
void pack_pixel_major_w(const T* src, int64_t ld, int64_t nl, int64_t kn, T* buf) {
  const int64_t full = nl / W, rem = nl - full * W;
  const int64_t pstride = kn * W;
  for (int64_t k = 0; k < kn; ++k) {
    const T* s = src + k * ld;
    T* d = buf + k * W;
    for (int64_t p = 0; p < full; ++p) std::memcpy(d + p * pstride, s + p * W, W * sizeof(T));
    if (rem) {
      T* dr = d + full * pstride;
      for (int64_t l = 0; l < rem; ++l) dr[l] = s[full * W + l];
      for (int64_t l = rem; l < W; ++l) dr[l] = T(0);
    }
  }
}

template <typename T>
void pack_pixel_major(const T* src, int64_t ld, int64_t nl, int64_t kn, int W, T* buf) {
  switch (W) {
    case 4: pack_pixel_major_w<T, 4>(src, ld, nl, kn, buf); return;
    case 6: pack_pixel_major_w<T, 6>(src, ld, nl, kn, buf); return;
    case 8: pack_pixel_major_w<T, 8>(src, ld, nl, kn, buf); return;
    case 16: pack_pixel_major_w<T, 16>(src, ld, nl, kn, buf); return;
    case 32: pack_pixel_major_w<T, 32>(src, ld, nl, kn, buf); return;
    default:
      for (int64_t p = 0; p * W < nl; ++p)
        for (int64_t k = 0; k < kn; ++k)
          for (int64_t l = 0; l < W; ++l)
            buf[(p * kn + k) * W + l] = p * W + l < nl ? src[k * ld + p * W + l] : T(0);
  }
}

template <typename T>
void weight_grad_nhwc(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t Og = p.out_cg(), O = p.out_c, Q = p.in_cg() * p.kk();
  const int64_t MR = g.mr, NR = g.nr, kc = g.kc;
  // A (MR-wide panels: short copies) takes grad_out, C = dW^T written transposed, unless there
  // are more outputs than patch entries, the reduction is short or the channels are few: then A
  // takes the patches and C = dW[q][o] is stored as it is. Zen 3, 1 thread: 1x1_64to256 13.8 ->
  // 12.6 ms; r3x3_512@7 (392 pixels, dW 9 MiB: the transposed store cost 7 %) 26.3 -> 24.6 ms;
  // the stem (147 patch entries: 8 % of the 16-wide panels' lanes idle) 31.5 -> 29.2 ms.
  const bool a_col = Og > Q || p.batch * p.out_plane() < 2048 || p.in_cg() < 8;
  const bool prefetch = is_plain_gemm(p);  // 1x1 stride 1: see the depth-block loop
  // (Tried: reading the B side of 1x1 layers in place with the indirect-B microkernel instead
  // of packing it, panels aligned to lines. Zen 3, 1 thread: 1x1_64to256 11.7 -> 17.0 ms,
  // 1x1_256to64 16.7 -> 17.5 ms in one script: pixel rows 1 KiB apart share 4 L1 sets, so
  // every depth step of every tile missed L1. Packing stays.)
  const int64_t M = a_col ? Q : Og, N = a_col ? Og : Q;
  // A blocks: MB x kc packed <= akb KiB stays in L2 while each B micro-panel (in L1) meets all
  // of it; B blocks: <= kNhwcLanes lanes.
  constexpr int64_t akb = 256;
  const int64_t rows = std::min<int64_t>(
      kNhwcLanes / MR * MR, std::max<int64_t>(MR, (akb * 1024 / int64_t(sizeof(T)) / kc) / MR * MR));
  const int64_t mb = div_up(M, rows), MB = std::min(M, div_up(div_up(M, mb), MR) * MR);
  const int64_t nb = div_up(N, kNhwcLanes), NBB = std::min(N, div_up(div_up(N, nb), NR) * NR);
  const int64_t apan = div_up(MB, MR) * MR, bpan = div_up(NBB, NR) * NR;
  // scratch: A panels (apan x kc), B panels (bpan x kc), C block (MB x NBB); the partials
  // leave room for two threads' of it within 1/4 of the im2col buffer (1x1_64to256@56 took
  // 0.251 of it with 16 chunks)
  const int64_t per = checked_mul(apan + bpan, kc, "workspace size") + MB * NBB;
  WgradSplit<T> split(p, M, MB, N, NBB, &wgrad_chunks, 2 * per);
  split.run(per, dw, [&](const typename WgradSplit<T>::Task& tk, T* Ap) {
    const int64_t gi = tk.gi, i0 = tk.i0, i1 = tk.i1, j0 = tk.j0, j1 = tk.j1, k0 = tk.k0, k1 = tk.k1;
    const ColGeom geom(p, gi);
    T* Bp = Ap + apan * kc;
    T* Cl = Bp + bpan * kc;
    const int64_t q0 = a_col ? i0 : j0, q1 = a_col ? i1 : j1;  // the task's patch lanes
    const int64_t o0 = a_col ? j0 : i0, o1 = a_col ? j1 : i1;  // and outputs
    PanelRun runs[kNhwcLanes];  // the patch block's runs (each holds >= 1 lane)
    const int64_t nruns = panel_runs(geom, q0, q1 - q0, runs);
    for (int64_t b0 = k0, kn = 0; b0 < k1; b0 += kn) {
      kn = div_up(k1 - b0, div_up(k1 - b0, kc));  // even depth blocks
      // dy[pp][g*Og + o]: lanes o, depth pp
      const T* dyb = dy + b0 * O + gi * Og + o0;
      pack_pixel_major(dyb, O, o1 - o0, kn, static_cast<int>(a_col ? NR : MR), a_col ? Bp : Ap);
      pack_nhwc_block(geom, x, runs, nruns, q0, q1, b0, kn, a_col ? MR : NR, a_col ? Ap : Bp);
      const bool acc = b0 > k0;
      // 1x1 layers stream grad_out and the input from memory: the next depth block's rows are
      // fetched into L2 while this one computes, spread over its microkernel calls (Zen 3,
      // 1 thread: 1x1_256to64 NHWC -3 %, 1x1_64to256 -1.5 %; no gain on 3x3 layers).
      const int64_t b1 = b0 + kn, kn1 = b1 < k1 ? div_up(k1 - b1, div_up(k1 - b1, kc)) : 0;
      const char* pf[2] = {nullptr, nullptr};
      const char* pe[2] = {nullptr, nullptr};
      if (kn1 > 0 && prefetch) {
        pf[0] = reinterpret_cast<const char*>(dy + b1 * O);
        pe[0] = reinterpret_cast<const char*>(dy + (b1 + kn1) * O);
        const int64_t n1 = b1 / geom.npix, pl = std::min(b1 + kn1, (n1 + 1) * geom.npix) - 1;
        const int64_t ih_lo = std::max<int64_t>(0, (b1 % geom.npix) / p.out_w * p.stride_h - p.pad_top);
        const int64_t ih_hi = std::min<int64_t>(
            p.in_h - 1, (pl % geom.npix) / p.out_w * p.stride_h - p.pad_top + (p.k_h - 1) * p.dil_h);
        if (ih_hi >= ih_lo) {
          pf[1] = reinterpret_cast<const char*>(x + n1 * geom.img + ih_lo * geom.hs);
          pe[1] = reinterpret_cast<const char*>(x + n1 * geom.img + (ih_hi + 1) * geom.hs);
        }
      }
      const int64_t calls = div_up(j1 - j0, NR) * div_up(i1 - i0, MR);
      const int64_t step[2] = {pe[0] - pf[0] > 0 ? div_up((pe[0] - pf[0]) / 64 + 1, calls) * 64 : 0,
                               pe[1] - pf[1] > 0 ? div_up((pe[1] - pf[1]) / 64 + 1, calls) * 64 : 0};
      for (int64_t jr = j0; jr < j1; jr += NR) {
        const int64_t nr = std::min<int64_t>(NR, j1 - jr);
        const T* bp = Bp + ((jr - j0) / NR) * kn * NR;
        for (int64_t ir = 0; ir < i1 - i0; ir += MR) {
          g.ukr(kn, Ap + (ir / MR) * kn * MR, bp, Cl + ir * NBB + (jr - j0), NBB, 1,
                std::min<int64_t>(MR, i1 - i0 - ir), nr, acc);
          for (int s2 = 0; s2 < 2; ++s2)
            for (const char* e = std::min(pe[s2], pf[s2] + step[s2]); pf[s2] < e; pf[s2] += 64)
              __builtin_prefetch(pf[s2], 0, 2);
        }
      }
    }
    T* wq = tk.base + gi * Og;  // dW[q][g*Og + o]
    const bool empty = k1 <= k0;
    if (!a_col) {  // C[o][q]
      store_block_t(Cl, NBB, i1 - i0, j1 - j0, empty, wq + j0 * O + i0, O);
    } else {  // C[q][o]
      for (int64_t i = i0; i < i1; ++i) {
        T* d = wq + i * O + j0;
        if (empty)
          std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(j1 - j0));
        else
          std::memcpy(d, Cl + (i - i0) * NBB, sizeof(T) * static_cast<size_t>(j1 - j0));
      }
    }
  });
}

// NHWC weight gradients take the NHWC driver.
bool use_nhwc_weight_grad(const Conv2dParams& p) {
  return p.layout == Layout::NHWC;
}

// NHWC weight gradient with nothing packed, for groups whose channels fill whole panels
// (Cg a multiple of NR, so a panel never straddles two taps): for each kernel tap, dW_tap^T =
// grad_out^T x (input pixels shifted by the tap). A (MR outputs) is read in place from grad_out
// rows (O apart), B (NR channels) from the shifted input pixel rows, given per pixel by pointer
// (a zero row where the tap falls into the padding). Depth blocks of kInPlaceDepth pixels keep
// both operands' rows in L1 while the B panel meets every A panel. The packed driver above
// copies each pixel's patch (9x the input for 3x3) into panels first, and those copies stall
// on their stores. Measured (Zen 4, AVX-512, medians, packed -> in place, ms): r3x3_64@56
// 22.3 -> 20.7 (1 thread), dil2_3x3_64@56 22.0 -> 20.0, r3x3_128@28 20.8 -> 19.6. Only for
// spatial kernels with pixel rows <= 512 bytes apart: wider rows map onto too few L1 sets
// (r3x3_256@14 and r3x3_512@7 were 2-7 % slower), and 1x1 layers keep the packed driver's
// prefetching and orientation choice (10-20 % slower in place). With <= 128 channels each way
// the selector now prefers smallc for most such layers (choose_algorithm); this path serves the
// dilated ones, those smallc's memory plan declines, and forced GEMM.
constexpr int64_t kInPlaceDepth = 64;

template <typename T>
bool nhwc_wgrad_in_place(const Conv2dParams& p) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  return p.layout == Layout::NHWC && g.sap != nullptr && p.in_cg() % g.nr == 0 &&
         p.out_cg() >= g.mr && p.kk() > 1 && p.in_c * int64_t(sizeof(T)) <= 512;
}

template <typename T>
void weight_grad_nhwc_in_place(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const GemmKernel<T>& g = kernels().gemm<T>();
  const int64_t Og = p.out_cg(), O = p.out_c, Cg = p.in_cg(), C = p.in_c, KK = p.kk();
  const int64_t Q = Cg * KK, MR = g.mr, NR = g.nr, KN = kInPlaceDepth;
  const int64_t H = p.in_h, W = p.in_w, npix = p.out_plane();
  // C blocks: MB outputs (<= 126) x NBB lanes (<= kNhwcLanes), in per-thread scratch
  const int64_t mb = div_up(Og, 21 * MR), MB = std::min(Og, div_up(div_up(Og, mb), MR) * MR);
  const int64_t nb = div_up(Q, kNhwcLanes), NBB = div_up(div_up(Q, nb), NR) * NR;
  // scratch: C block, the partial last A panel ([KN][MR]), B row pointers (taps x KN) as T slots
  const int64_t taps = div_up(NBB, Cg) + 1;  // taps one lane block can touch
  const int64_t ptr_slots = div_up(taps * KN * int64_t(sizeof(T*)), int64_t(sizeof(T)));
  const int64_t ptr_at = div_up(MB * NBB + KN * MR, 16) * 16;  // pointer-aligned offset
  const int64_t per = ptr_at + ptr_slots;
  std::vector<T> zero(static_cast<size_t>(Cg), T(0));  // the padding's pixel row
  WgradSplit<T> split(p, Og, MB, Q, NBB, &wgrad_chunks, 2 * per);
  split.run(per, dw, [&](const typename WgradSplit<T>::Task& tk, T* S) {
    const int64_t gi = tk.gi, i0 = tk.i0, i1 = tk.i1, j0 = tk.j0, j1 = tk.j1, k0 = tk.k0, k1 = tk.k1;
    T* Cl = S;
    T* Ap = Cl + MB * NBB;
    const T** bptr = reinterpret_cast<const T**>(S + ptr_at);
    const int64_t t0 = j0 / Cg, t1 = div_up(j1, Cg);  // the task's taps
    const int64_t m = i1 - i0, a_full = m / MR * MR;
    for (int64_t b0 = k0, kn = 0; b0 < k1; b0 += kn) {
      kn = div_up(k1 - b0, div_up(k1 - b0, KN));  // even depth blocks
      // B rows: per tap, per pixel of the block, the shifted input pixel's channels of group gi
      int64_t n = b0 / npix, pix = b0 % npix, oh = pix / p.out_w, ow = pix % p.out_w;
      for (int64_t kk = 0; kk < kn; ++kk) {
        const int64_t ih0 = oh * p.stride_h - p.pad_top, iw0 = ow * p.stride_w - p.pad_left;
        const T* xn = x + n * H * W * C + gi * Cg;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t ih = ih0 + (t / p.k_w) * p.dil_h, iw = iw0 + (t % p.k_w) * p.dil_w;
          bptr[(t - t0) * KN + kk] =
              ih >= 0 && ih < H && iw >= 0 && iw < W ? xn + (ih * W + iw) * C : zero.data();
        }
        if (++ow == p.out_w) {
          ow = 0;
          if (++oh == p.out_h) {
            oh = 0;
            ++n;
          }
        }
      }
      // A rows: grad_out pixels b0.., outputs i0..; the partial last panel is packed
      const T* A = dy + b0 * O + gi * Og + i0;
      if (a_full < m)
        for (int64_t kk = 0; kk < kn; ++kk)
          for (int64_t r = 0; r < MR; ++r)
            Ap[kk * MR + r] = a_full + r < m ? A[kk * O + a_full + r] : T(0);
      const bool acc = b0 > k0;
      for (int64_t jr = j0; jr < j1; jr += NR) {
        const T* const* bt = bptr + (jr / Cg - t0) * KN;
        const int64_t bo = jr % Cg, nr = std::min<int64_t>(NR, j1 - jr);
        T* cj = Cl + (jr - j0);
        for (int64_t ir = 0; ir < a_full; ir += MR)
          g.sap(kn, A + ir, O, bt, bo, cj + ir * NBB, NBB, 1, MR, nr, acc);
        if (a_full < m) g.sap(kn, Ap, MR, bt, bo, cj + a_full * NBB, NBB, 1, m - a_full, nr, acc);
      }
    }
    T* wq = tk.base + gi * Og;  // dW[q][g*Og + o]
    store_block_t(Cl, NBB, m, j1 - j0, k1 <= k0, wq + j0 * O + i0, O);
  });
}

// NCHW weight gradients whose smaller side (outputs per group or patch length) fills the
// row-A tiles' B micro-panels take them; narrower ones keep the dot-product tiles.
template <typename T>
bool use_rows_weight_grad(const Conv2dParams& p) {
  return p.layout == Layout::NCHW && std::min(p.out_cg(), p.in_cg() * p.kk()) >= kernels().rows<T>().nr;
}

enum class Algo { Gemm, Direct, Winograd, Depthwise, Smallc };

struct Choice {
  Algo algo;
  std::string reason;
};

// Below this many flops a call runs on one thread (see SerialScope): ~50 us of work.
bool is_small(const Conv2dParams& p) {
  const double flops = 2.0 * p.batch * p.out_c * p.in_cg() * p.kk() * p.out_plane();
  return flops < 4.0e6;
}

// How the GEMM path lays the problem out for this layer and op (the reason text only).
std::string gemm_shape_reason(const Conv2dParams& p, ConvOp op, bool is_double) {
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t nc = is_double ? kernels().gemm<double>().nc : kernels().gemm<float>().nc;
  const int64_t mc = is_double ? kernels().gemm<double>().mc : kernels().gemm<float>().mc;
  const bool in_place = is_double ? plain_ind<double>(p, op == ConvOp::Forward ? p.in_cg() : p.out_cg())
                                  : plain_ind<float>(p, op == ConvOp::Forward ? p.in_cg() : p.out_cg());
  if (op != ConvOp::WeightGrad && in_place)
    return std::string("1x1 stride-1 unpadded: a plain GEMM ") +
           (op == ConvOp::Forward ? "over the input" : "written straight into grad_x") +
           ", its channel planes read in place by the microkernel (no packing; the panels "
           "ahead prefetched)";
  if (is_plain_gemm(p) && nchw && op == ConvOp::Forward)
    return "1x1 stride-1 unpadded: a plain GEMM over the input";
  if (op != ConvOp::WeightGrad && nhwc_rows_gemm(p))
    return std::string("1x1 stride-1 unpadded (NHWC): a row-A GEMM over the batch's pixels, "
                       "their channel vectors broadcast in place, only the weights packed "
                       "(once)") +
           (op == ConvOp::InputGrad ? ", written straight into grad_x" : "");
  const int nr = is_double ? kernels().gemm<double>().nr : kernels().gemm<float>().nr;
  const int mr = is_double ? kernels().gemm<double>().mr : kernels().gemm<float>().mr;
  if (op == ConvOp::Forward && (is_double ? nhwc_direct<double>(p) : nhwc_direct<float>(p)))
    return "direct NHWC: each register tile (6 output pixels) summed over all kernel taps in "
           "one microkernel call, each tap's input pixels read in place at the stride (copied "
           "only at the padding and output-row ends), stored straight into y";
  if (op == ConvOp::Forward &&
      (is_double ? use_nchw_direct<double>(p) : use_nchw_direct<float>(p)))
    return "direct NCHW: each task transposes the input rows of a band of output rows into a "
           "zero-padded pixel-major band, then every register tile (6 output pixels) is summed "
           "over all kernel taps in one microkernel call, taps read in the band at the stride, "
           "stored transposed into y";
  if (op == ConvOp::Forward && phase_plan(p, nc, nchw ? nr : mr).ok)
    return std::string("implicit GEMM over stride-phase planes (each task splits its input rows "
                       "into zero-padded phase images once, then ") +
           ((is_double ? phase_ind_gemm<double>(p) : phase_ind_gemm<float>(p))
                ? "reads their runs in place), "
                : phase_rows_gemm<float>(p)
                      ? "reads each tap's rows in place: pixel-major planes, channels "
                        "contiguous), "
                      : "packs contiguous runs), ") +
           (nchw || (is_double ? phase_ind_gemm<double>(p) : phase_ind_gemm<float>(p))
                ? "pixels in the vector lanes"
                : "pixels as the register tile's rows");
  if (op == ConvOp::WeightGrad &&
      (is_double ? band_weight_grad<double>(p) : band_weight_grad<float>(p)))
    return "implicit GEMM over zero-padded input bands (NCHW, stride 1): each band of output "
           "rows copies its input rows once, every tap's rows read in place in it, grad_out "
           "transposed into micro-panels once per band";
  if (op == ConvOp::WeightGrad &&
      (is_double ? use_rows_weight_grad<double>(p) : use_rows_weight_grad<float>(p)))
    return "implicit GEMM with row-A tiles over pixel runs (NCHW): the larger side read as rows "
           "(in place where possible), only the smaller side transposed into micro-panels";
  if (op == ConvOp::WeightGrad &&
      (is_double ? nhwc_wgrad_in_place<double>(p) : nhwc_wgrad_in_place<float>(p)))
    return "implicit GEMM with nothing packed (NHWC, channels per group a multiple of the "
           "vector panel): per kernel tap, grad_out rows and the tap's shifted input pixel "
           "rows read in place (a zero row for padding)";
  if (op == ConvOp::WeightGrad && use_nhwc_weight_grad(p))
    return "implicit GEMM (im2col never materialised), channels in the vector lanes: grad_out "
           "and the patches' contiguous runs packed pixel by pixel (plain copies)";
  if (op == ConvOp::WeightGrad && use_dot_weight_grad(p))
    return "implicit GEMM as dot-product tiles over pixel runs (NCHW with <= 64 outputs per "
           "group or 1x1 stride 1: no transposing pack of the im2col rows)";
  if (op == ConvOp::InputGrad && (is_double ? direct_grad<double>(p) : direct_grad<float>(p)))
    return std::string("direct input gradient: each register tile (6 grad_x pixels of one row "
                       "that share their kernel columns) summed over every reaching kernel tap "
                       "in one microkernel call, grad_out rows read ") +
           (nchw ? "from a transposed copy" : "in place") + ", stored straight into grad_x";
  if (op == ConvOp::InputGrad && phase_grad_plan(p, nc, mc).ok)
    return phase_grad_direct(p)
               ? "implicit GEMM over stride-phase planes (each tap's product accumulated "
                 "straight into zero-padded phase images, interleaved into grad_x once)"
               : "implicit GEMM into column tiles over stride-phase planes (tile rows added "
                 "into zero-padded phase images as contiguous runs, interleaved into grad_x "
                 "once)";
  if (op == ConvOp::InputGrad && is_plain_gemm(p) && !nchw && p.in_cg() >= 8 && p.out_c > 0)
    return "1x1 stride-1 unpadded: a plain GEMM over the batch's pixels written straight into "
           "grad_x";
  if (op == ConvOp::InputGrad && is_plain_gemm(p) && nchw && p.out_plane() >= nc)
    return "1x1 stride-1 unpadded: a plain GEMM written straight into grad_x";
  const bool few = !nchw && p.in_cg() < 8;
  std::string s = "implicit GEMM (im2col never materialised), ";
  if (nchw || few)
    s += few ? "pixels in the vector lanes (NHWC with < 8 channels per group)"
             : "pixels in the vector lanes";
  else
    s += "channels in the vector lanes";
  if (nchw && p.out_plane() < nc && op != ConvOp::WeightGrad)
    s += ", small images batched into one column block";
  return s;
}

// The algorithm for a layer and op, with the one-line reason shown by explain_conv2d():
// the forced one if set (and applicable), else direct for depthwise-like layers (one input
// channel per group and few outputs per group: a GEMM there is mostly zero padding), else GEMM.
Choice choose_algorithm(const Conv2dParams& p, ConvOp op, bool is_double) {
  (void)is_double;
  std::string forced;
  {
    std::lock_guard<std::mutex> lock(g_algo_mutex);
    forced = g_algo;
  }
  if (forced == "gemm")
    return {Algo::Gemm, "forced by set_conv_algorithm('gemm'): " + gemm_shape_reason(p, op, is_double)};
  if (forced == "direct") return {Algo::Direct, "forced by set_conv_algorithm('direct')"};
  if (forced == "depthwise" && depthwise_applicable(p))
    return {Algo::Depthwise, "forced by set_conv_algorithm('depthwise')"};
  if (forced == "smallc" && smallc_applicable(p, op))
    return {Algo::Smallc, "forced by set_conv_algorithm('smallc')"};
  const bool wino_op = op != ConvOp::WeightGrad;  // Winograd: forward and input gradient only
  // forced but not applicable (not 3x3 stride 1 dilation 1, or the weight gradient): automatic
  const bool dilated = p.dil_h > 1 || p.dil_w > 1;
  const auto wino_ok = [&] {
    return dilated ? dilated_winograd_applicable(p) : winograd_applicable(p);
  };
  if (forced == "winograd" && wino_op && wino_ok())
    return {Algo::Winograd, std::string("forced by set_conv_algorithm('winograd'): F(4x4,3x3)") +
                                (dilated ? " on each dilation phase" : "") +
                                " (GEMM if the data holds NaN/Inf)"};
  const bool wino_wgrad = op == ConvOp::WeightGrad && (dilated
                                                           ? dilated_winograd_weight_grad_applicable(p)
                                                           : winograd_weight_grad_applicable(p));
  if (forced == "winograd" && wino_wgrad)
    return {Algo::Winograd, std::string("forced by set_conv_algorithm('winograd'): F(4x4,3x3) "
                                        "weight gradient") +
                                (dilated ? " summed over the dilation phases" : "") +
                                " (GEMM if the data holds NaN/Inf)"};
  // One input channel per group, multiplier <= 4: a GEMM there is mostly zero padding; the
  // SIMD depthwise kernels read each input once per output channel. (The plain "direct" loops
  // run only when forced: they are the independent twin the tests compare against.)
  if (depthwise_applicable(p) && p.out_cg() <= 4)
    return {Algo::Depthwise, p.layout == Layout::NCHW
                                 ? "one input channel per group, <= 4 outputs per group: SIMD "
                                   "depthwise kernels along the output rows"
                                 : "one input channel per group, <= 4 outputs per group: SIMD "
                                   "depthwise kernels across channels"};
  // Winograd F(4x4,3x3): 36 instead of 144 multiply-adds per 4x4 tile and channel pair; its
  // transforms cost per tile and channel, so it needs a few channels per group (>= 8) to
  // amortise them, and >= 2e7 flops to pay the per-call weight transform and NaN/Inf scan.
  // Measured, 1 thread Zen 3 AVX2, vs GEMM: 1.4-2.3x at 8-16 channels and 4-60 Mflop, 2-3x on
  // ResNet 3x3 layers (float32), 2.4-3.7x (float64); below 2e7 flops one layer lost (0.98x).
  // The weight transform is paid per call, so the call also needs enough 4x4 output tiles to
  // amortise it: r3x3_512@7 with batch 2 (8 tiles) ran 16.9 ms against 14.6 ms for GEMM, with
  // batch 8 (32 tiles) 15.1 ms against 26.3 ms.
  const double flops = 2.0 * p.batch * p.out_c * p.in_cg() * p.kk() * p.out_plane();
  const int64_t tiles = p.batch * ((p.out_h + 3) / 4) * ((p.out_w + 3) / 4);
  if (wino_op && p.in_cg() >= 8 && p.out_cg() >= 8 && flops >= 2.0e7 && tiles >= 24 &&
      wino_ok()) {
    if (dilated)
      return {Algo::Winograd, "dilated 3x3 stride 1, >= 8 channels per group, >= 2e7 flops, >= 24 "
                              "output tiles: "
                              "split into dil_h x dil_w phase images, each Winograd F(4x4,3x3) "
                              "(GEMM if the data holds NaN/Inf)"};
    return {Algo::Winograd, "3x3 stride 1, >= 8 channels per group, >= 2e7 flops, >= 24 output "
                            "tiles: Winograd F(4x4,3x3), 4x fewer multiplies, blocked within 1/4 "
                            "of the im2col memory (GEMM if the data holds NaN/Inf)"};
  }
  // The weight gradient of the same layers (no groups): G^T [sum over tiles of (A dy A^T) .*
  // (B^T x B)] G, 36 instead of 144 multiply-adds per 4x4 tile and channel pair, the tiles the
  // reduction of 36 block products. Zen 4 AVX-512 float32, 1 thread, ms, the previous
  // algorithm -> Winograd (NHWC / NCHW): r3x3_64@56 19.1 / 20.2 -> 7.7 / 8.5, r3x3_128@28
  // 18.2 / 19.3 -> 7.7 / 7.8, r3x3_512@7 19.4 / 23.8 -> 13.0 / 13.4.
  if (wino_wgrad && p.in_c >= 8 && p.out_c >= 8 && flops >= 2.0e7 && tiles >= 24)
    return {Algo::Winograd, std::string(dilated ? "dilated " : "") +
                                "3x3 stride 1 weight gradient, >= 8 channels, >= 2e7 flops, >= "
                                "24 output tiles: Winograd F(4x4,3x3), 4x fewer multiplies, the "
                                "tiles summed in a fixed order within 1/4 of the im2col memory" +
                                (dilated ? ", one problem per dilation phase, summed in phase "
                                           "order"
                                         : "") +
                                " (GEMM if the data holds NaN/Inf)"};
  // Few channels (LeNet-like): the implicit GEMM's packing of a 25..150-deep im2col operand
  // dominates there; the smallc kernels broadcast input pixels against channel (or, for the
  // input gradient, kernel-tap) vectors with no packing. Measured, 1 thread Zen 3 AVX2
  // float32, vs GEMM (NCHW / NHWC): lenet_conv2 (6 -> 16, 5x5) forward 3.3x / 4.4x, input
  // gradient 2.3x / 2.1x, weight gradient 2.7x / 4.5x; lenet_conv1 (1 -> 6) forward 2.0x /
  // 2.7x, input gradient 1.3x, weight gradient 1.8x / 3.6x; 3..16 -> 8..32 channel layers
  // 1.05-8x. 1x1 layers are a plain GEMM already; 3x3 layers with >= 8 channels per group
  // take Winograd above (faster still: 16 -> 32 at 16x16, 0.46 vs 0.51 ms).
  // NHWC weight gradients up to 128 channels each way take it too: per kernel row, one
  // call sums the KW*C contiguous taps of every pixel against its grad_out row over a whole
  // image, nothing packed. Zen 4 AVX-512, interleaved medians, GEMM -> smallc (1 / 2 threads,
  // ms): the ResNet stem (3 -> 64, 7x7 s2) 27.3 -> 22.1 / 16.4 -> 14.0; r3x3_128@28 24.1 ->
  // 20.3 / 10.7 -> 9.7; 3x3s2_64to128@56 11.9 -> 9.8 / 5.9 -> 5.3; r3x3_64@56 even (23.1 /
  // 22.4, 12.1 / 12.6). r3x3_256@14 was slower (21.0 -> 25.7), as were the NCHW ones (stem
  // 27.2 -> 35.4).
  // NCHW weight gradients of that size take it where the band driver does not (strided
  // layers, rows narrower than 48): the image is transposed channels-last per image first.
  // Interleaved medians, 1 / 2 threads, ms, GEMM -> smallc: stem 25.3 -> 22.2 / 13.0 -> 11.3;
  // 3x3s2_64to128@56 13.0 -> 11.0 / 6.1 -> 5.6; r3x3_128@28 21.2 -> 18.8 / 10.1 -> 10.2;
  // r3x3_64@56 (band driver) 20.7 against 21.1.
  const bool wide_wgrad =
      op == ConvOp::WeightGrad && p.in_c <= 128 && p.out_c <= 128 &&
      (p.layout == Layout::NHWC ||
       !(is_double ? band_weight_grad<double>(p) : band_weight_grad<float>(p)));
  if (smallc_applicable(p, op) && (smallc_few_channels(p) || wide_wgrad) && p.kk() >= 4 &&
      smallc_fits(p, op))
    return {Algo::Smallc, wide_wgrad && !smallc_few_channels(p)
                              ? (p.layout == Layout::NHWC
                                     ? "NHWC weight gradient, <= 128 channels in and out, kernel "
                                       ">= 2x2: smallc direct kernel with the output channels in "
                                       "the vector lanes, each kernel row's contiguous taps "
                                       "summed over whole images (no im2col packing)"
                                     : "NCHW weight gradient, <= 128 channels in and out, kernel "
                                       ">= 2x2, no band driver: smallc direct kernel on each "
                                       "image transposed channels-last, the output channels in "
                                       "the vector lanes, each kernel row's contiguous taps "
                                       "summed over whole images (no im2col packing)")
                          : op == ConvOp::InputGrad
                              ? "few channels (<= 16 in, <= 32 out), kernel >= 2x2: smallc "
                                "direct kernel with the kernel taps in the vector lanes, then "
                                "col2im (no packing)"
                              : "few channels (<= 16 in, <= 32 out), kernel >= 2x2: smallc "
                                "direct kernel with the output channels in the vector lanes, "
                                "input pixels broadcast (no im2col packing)"};
  return {Algo::Gemm, gemm_shape_reason(p, op, is_double)};
}

template <typename T>
Algo select_algorithm(const Conv2dParams& p, ConvOp op) {
  return choose_algorithm(p, op, std::is_same<T, double>::value).algo;
}

const char* algo_name(Algo a) {
  switch (a) {
    case Algo::Direct: return "direct";
    case Algo::Winograd: return "winograd";
    case Algo::Depthwise: return "depthwise";
    case Algo::Smallc: return "smallc";
    default: return "gemm";
  }
}

}  // namespace

std::vector<std::string> conv_algorithms() {
  return {"gemm", "direct", "winograd", "depthwise", "smallc"};
}

void set_conv_algorithm(const std::string& name) {
  if (name != "auto") {
    const auto all = conv_algorithms();
    if (std::find(all.begin(), all.end(), name) == all.end())
      throw std::invalid_argument("set_conv_algorithm: unknown algorithm '" + name +
                                  "' (expected 'auto', 'gemm', 'direct', 'winograd', 'depthwise' or 'smallc')");
  }
  std::lock_guard<std::mutex> lock(g_algo_mutex);
  g_algo = name;
}

std::string get_conv_algorithm() {
  std::lock_guard<std::mutex> lock(g_algo_mutex);
  return g_algo;
}

ConvPlan conv2d_plan(const Conv2dParams& p, ConvOp op, bool is_double) {
  const Choice c = choose_algorithm(p, op, is_double);
  std::string reason = c.reason;
  if (is_small(p)) reason += "; under 4 MFLOP: runs on the calling thread";
  return {algo_name(c.algo), reason};
}

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const SerialScope serial(is_small(p));
  const int64_t P = p.out_plane();
  const int64_t total = p.batch * p.out_c * P;
  if (total == 0) return;
  if (p.in_cg() * p.kk() == 0) {  // no input channels: y = bias (or 0)
    const bool nchw = p.layout == Layout::NCHW;
    for (int64_t e = 0; e < total; ++e) {
      const int64_t o = nchw ? (e / P) % p.out_c : e % p.out_c;
      y[e] = bias ? bias[o] : T(0);
    }
    return;
  }
  const Algo algo = select_algorithm<T>(p, ConvOp::Forward);
  if (algo == Algo::Depthwise)
    depthwise_forward(p, x, w, bias, y);
  else if (algo == Algo::Smallc)
    smallc_forward(p, x, w, bias, y);
  else if (algo == Algo::Direct)
    direct_forward(p, x, w, bias, y);
  else if (algo != Algo::Winograd || !(p.dil_h > 1 || p.dil_w > 1
                                           ? dilated_winograd_forward(p, x, w, bias, y)
                                           : winograd_forward(p, x, w, bias, y)))  // NaN/Inf
    forward_gemm(p, x, w, bias, y);
}

template <typename T>
void conv2d_input_grad(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const SerialScope serial(is_small(p));
  if (p.batch * p.in_c * p.in_h * p.in_w == 0) return;
  const Algo algo = select_algorithm<T>(p, ConvOp::InputGrad);
  if (algo == Algo::Depthwise)
    depthwise_input_grad(p, dy, w, dx);
  else if (algo == Algo::Smallc)
    smallc_input_grad(p, dy, w, dx);
  else if (algo == Algo::Direct)
    direct_input_grad(p, dy, w, dx);
  else if (algo != Algo::Winograd || !(p.dil_h > 1 || p.dil_w > 1
                                           ? dilated_winograd_input_grad(p, dy, w, dx)
                                           : winograd_input_grad(p, dy, w, dx)))  // NaN/Inf
    input_grad_gemm(p, dy, w, dx);
}

template <typename T>
void conv2d_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const SerialScope serial(is_small(p));
  const int64_t wsize = p.out_c * p.in_cg() * p.kk();
  if (wsize == 0) return;
  if (p.batch * p.out_plane() == 0) {
    std::memset(dw, 0, sizeof(T) * wsize);
    return;
  }
  const Algo algo = select_algorithm<T>(p, ConvOp::WeightGrad);
  if (algo == Algo::Depthwise)
    depthwise_weight_grad(p, dy, x, dw);
  else if (algo == Algo::Smallc)
    smallc_weight_grad(p, dy, x, dw);
  else if (algo == Algo::Direct)
    direct_weight_grad(p, dy, x, dw);
  else if (algo == Algo::Winograd && (p.dil_h > 1 || p.dil_w > 1
                                          ? dilated_winograd_weight_grad(p, dy, x, dw)
                                          : winograd_weight_grad(p, dy, x, dw)))
    return;  // (false: NaN/Inf in the data, then another algorithm below rewrites dw)
  else if (band_weight_grad<T>(p))
    weight_grad_band(p, dy, x, dw);
  else if (use_rows_weight_grad<T>(p))
    weight_grad_rows(p, dy, x, dw);
  else if (nhwc_wgrad_in_place<T>(p))
    weight_grad_nhwc_in_place(p, dy, x, dw);
  else if (use_nhwc_weight_grad(p))
    weight_grad_nhwc(p, dy, x, dw);
  else if (use_dot_weight_grad(p))
    weight_grad_dot(p, dy, x, dw);
  else
    weight_grad_gemm(p, dy, x, dw);
}

template <typename T>
void conv2d_bias_grad(const Conv2dParams& p, const T* dy, T* db) {
  const SerialScope serial(p.batch * p.out_c * p.out_plane() < (int64_t(1) << 18));
  const int64_t O = p.out_c, P = p.out_plane(), N = p.batch;
  if (O == 0) return;
  if (p.layout == Layout::NCHW) {
    parallel_for(O, [&](int64_t o, int) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) {
        const T* r = dy + (n * O + o) * P;
        for (int64_t j = 0; j < P; ++j) s += r[j];
      }
      db[o] = static_cast<T>(s);
    });
  } else {
    const int64_t blk = 64;
    parallel_for(div_up(O, blk), [&](int64_t t, int) {
      const int64_t o0 = t * blk, o1 = std::min(O, o0 + blk);
      double acc[64] = {};
      for (int64_t r = 0; r < N * P; ++r)
        for (int64_t o = o0; o < o1; ++o) acc[o - o0] += dy[r * O + o];
      for (int64_t o = o0; o < o1; ++o) db[o] = static_cast<T>(acc[o - o0]);
    });
  }
}

#define FC_INSTANTIATE(T)                                                                  \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template void conv2d_input_grad<T>(const Conv2dParams&, const T*, const T*, T*);        \
  template void conv2d_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);       \
  template void conv2d_bias_grad<T>(const Conv2dParams&, const T*, T*);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
