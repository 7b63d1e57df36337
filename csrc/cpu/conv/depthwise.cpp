// Depthwise convolution driver (one input channel per group; multiplier M = out_cg()).
//
// NCHW (SIMD along output rows). Each task owns one (image, input channel) plane, or for the
// weight gradient one input channel over all images. The source plane is first copied into a
// zero-padded scratch plane, split into `stride_w` column phases, so every output row is one
// unconditional call y[j] = init + sum_t w[t] * src[t][j] over contiguous rows: no border cases,
// any kernel / stride / dilation / per-side padding.
//   forward       source x, phases = stride_w; taps (kh, kw) read phase (kw*dil_w) % stride_w.
//   input grad    source dy upsampled by the stride (zeros between samples) and padded so that
//                 dx is the stride-1 correlation with the flipped kernel; all-zero rows are
//                 skipped, so a stride-s row only visits the ~KH/s rows that carry data. The M
//                 outputs of a channel are summed in the same call (no atomics, no scatter).
//   weight grad   per tap, lane-wise partial dot products of dy rows with shifted padded x rows,
//                 accumulated over images and rows in order, then reduced in lane order.
// 3x3, stride 1, dilation 1, one padding column each side (forward; input gradient with M == 1):
// no scratch plane. NCHW rows3x3_pad1 reads the rows in place (a shared zero row stands for
// padding rows; the first and last vector of a row take the padding column as a zero lane);
// NHWC nhwc_row3x3 computes output rows in pairs, so each source vector feeds both rows; large
// outputs (>= kDwStreamBytes) go through per-thread scratch rows, streamed out non-temporally.
// NHWC (SIMD across channels). The window is clipped per output pixel by a column plan shared
// by all rows and a row list per task, so interior pixels run the full window unconditionally.
//   forward / input grad   one task per output (input) row; the input gradient gathers, per
//                 input pixel, the (output pixel, tap) pairs that read it (exact stride phases).
//   weight grad   fixed chunks of output rows (count independent of threads) accumulate partial
//                 weight gradients that are then summed in chunk order.
//   M > 1: x rows are expanded to one value per output channel (forward, weight grad), and
//   the input gradient forms per-output-channel rows that are summed over the M outputs.
// Every sum has a fixed order that depends only on the shape: bitwise identical for any number
// of threads.
#include "cpu/conv/depthwise.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "common/check.h"
#include "common/workspace.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace fastconv {
namespace {

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
inline int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Per-thread scratch regions start on separate cache lines (no false sharing).
inline int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

// Spreads software prefetches of the next task's source plane over the row chunks of the
// current one, so that the next plane copy does not start on a cold stream. (Measured: a small
// gain at most for NCHW; the NHWC row prefetches in the kernels matter more.)
class Prefetcher {
 public:
  Prefetcher(const void* p, int64_t bytes, int64_t chunks)
      : p_(static_cast<const char*>(p)), end_(p_ ? p_ + bytes : nullptr),
        step_(chunks > 0 ? (bytes / chunks + 63) / 64 * 64 : bytes) {}
  void next() {
    if (p_ >= end_) return;
    const char* e = end_ - p_ > step_ ? p_ + step_ : end_;
    for (; p_ < e; p_ += 64) __builtin_prefetch(p_, 0, 3);
  }

 private:
  const char* p_;
  const char* end_;
  int64_t step_;
};

constexpr int64_t kRowChunk = 12;  // output rows per kernel call (between prefetch steps)

// 3x3, stride 1, dilation 1, one padding column each side: the kernels read the source in place
// (rows3x3_pad1 / nhwc_row3x3), so no padded copy is made.
inline bool pad1_3x3(const Conv2dParams& p) {
  return p.k_h == 3 && p.k_w == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
         p.dil_w == 1 && p.pad_left == 1 && p.pad_right == 1;
}

// Row pointers of a source plane for rows3x3_pad1: r[q] = source row q - top, or `zero` (a
// row of zeros) outside [0, h). Output row i of the 3x3 window reads r[i .. i + 2].
template <typename T>
void pad1_rows(const T* src, int64_t h, int64_t w, int64_t top, int64_t nq, const T* zero,
               const T** r) {
  for (int64_t q = 0; q < nq; ++q) {
    const int64_t ih = q - top;
    r[q] = ih >= 0 && ih < h ? src + ih * w : zero;
  }
}

// Padded scratch plane of `rows` x `cols` elements stored as `ph` column phases:
// element (r, col) lives at [(r*ph + col % ph)*pw + col / ph]. It holds
// src[(r - r0)/uh][(col - c0)/uw] where both divisions are exact and inside the source, else 0.
struct Plane {
  int64_t rows = 0, cols = 0, ph = 1, pw = 0;
  int64_t r0 = 0, c0 = 0, uh = 1, uw = 1;
  int64_t src_h = 0, src_w = 0;

  void finish() { pw = div_up(cols, ph); }
  int64_t size() const { return padded(checked_mul(checked_mul(rows, ph), pw, "depthwise scratch")); }
  int64_t src_row(int64_t r) const {  // source row of scratch row r, or -1 (an all-zero row)
    const int64_t q = r - r0;
    if (uh == 1) return q >= 0 && q < src_h ? q : -1;
    if (q < 0 || q % uh != 0 || q / uh >= src_h) return -1;
    return q / uh;
  }
  int64_t row_stride() const { return ph * pw; }
  int64_t col_off(int64_t col) const { return (col % ph) * pw + col / ph; }
  // Column phases of one source row (uw == 1: only the forward plane is split): phase f,
  // index i holds column i*ph + f, i.e. source column i*ph + f - c0. PH: ph if constant, else 0.
  template <typename T, int PH>
  void split_row(const T* srow, T* base, int64_t step) const {
    if (PH) step = PH;
    for (int64_t f = 0; f < step; ++f) {
      T* dst = base + f * pw;
      const int64_t n = std::min(pw, div_up(cols - f, step));  // columns of this phase
      const int64_t i0 = std::min(n, std::max<int64_t>(0, ceil_div(c0 - f, step)));
      const int64_t i1 = std::max(i0, std::min(n, floor_div(c0 + src_w - 1 - f, step) + 1));
      const int64_t o = f - c0;
      for (int64_t i = 0; i < i0; ++i) dst[i] = T(0);
      for (int64_t i = i0; i < i1; ++i) dst[i] = srow[i * step + o];
      for (int64_t i = i1; i < pw; ++i) dst[i] = T(0);
    }
  }
  template <typename T>
  void build(const T* src, T* s) const {
    for (int64_t r = 0; r < rows; ++r) {
      T* base = s + r * ph * pw;
      const int64_t sr = src_row(r);
      if (sr < 0) {
        std::memset(base, 0, sizeof(T) * ph * pw);
        continue;
      }
      const T* srow = src + sr * src_w;
      if (ph == 1 && uw == 1) {
        const int64_t lo = std::min(std::max<int64_t>(c0, 0), cols);
        const int64_t hi = std::max(lo, std::min(c0 + src_w, cols));
        std::memset(base, 0, sizeof(T) * lo);
        if (hi > lo) std::memcpy(base + lo, srow + (lo - c0), sizeof(T) * (hi - lo));
        std::memset(base + hi, 0, sizeof(T) * (pw - hi));
        continue;
      }
      if (ph == 1) {  // upsampled source (uw > 1): zeros, then every uw-th column
        std::memset(base, 0, sizeof(T) * pw);
        const int64_t j0 = std::max<int64_t>(0, ceil_div(-c0, uw));
        const int64_t j1 = std::min(src_w, floor_div(cols - 1 - c0, uw) + 1);
        for (int64_t j = j0; j < j1; ++j) base[c0 + j * uw] = srow[j];
        continue;
      }
      if (ph == 2)  // constant step: the compiler vectorises the deinterleave
        split_row<T, 2>(srow, base, 2);
      else
        split_row<T, 0>(srow, base, ph);
      continue;
    }
  }
};

// The plane that forward and weight gradient read: x padded, split into stride_w phases.
Plane forward_plane(const Conv2dParams& p) {
  Plane g;
  g.rows = (p.out_h - 1) * p.stride_h + (p.k_h - 1) * p.dil_h + 1;
  g.cols = (p.out_w - 1) * p.stride_w + (p.k_w - 1) * p.dil_w + 1;
  g.ph = p.stride_w;
  g.r0 = p.pad_top;
  g.c0 = p.pad_left;
  g.src_h = p.in_h;
  g.src_w = p.in_w;
  g.finish();
  return g;
}

// Input-channel values repeated for each of the M output channels: e[iw*C*M + c*M + m] = x[iw*C + c].
template <typename T>
void expand_row(const T* x, int64_t W, int64_t C, int64_t M, T* e) {
  for (int64_t iw = 0; iw < W; ++iw)
    for (int64_t c = 0; c < C; ++c) {
      const T v = x[iw * C + c];
      for (int64_t m = 0; m < M; ++m) e[(iw * C + c) * M + m] = v;
    }
}

// Column plan of an NHWC row: for each output column j, its taps (source offset, weight offset).
struct ColPlan {
  AlignedArray<int64_t> cnt, xoff, woff;
  int64_t kmax = 0;
};

// ---------------------------------------------------------------------------- NCHW
template <typename T>
void forward_nchw(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, M = p.out_cg(), KH = p.k_h, KW = p.k_w;
  const int64_t KK = KH * KW, Ho = p.out_h, Wo = p.out_w, HW = p.in_h * p.in_w;
  const int64_t ntasks = N * C;
  const int nth = threads_for(ntasks);
  // a task reads one plane and writes M: consecutive tasks are handed out in runs
  const double plane_bytes = double(sizeof(T)) * (double(HW) + double(M) * Ho * Wo);
  if (pad1_3x3(p)) {  // in place: no scratch plane
    const int64_t nq = Ho + 2, qsz = padded(nq);
    AlignedArray<const T*> rws(checked_mul(qsz, nth, "depthwise scratch"));
    AlignedArray<T> zero(Wo);
    zero.zero();
    parallel_for_runs(ntasks, nth, task_run(ntasks, nth, plane_bytes), [&](int64_t t, int tid) {
      const int64_t n = t / C, c = t % C;
      const T** r = rws.data() + tid * qsz;
      pad1_rows(x + t * HW, p.in_h, p.in_w, p.pad_top, nq, zero.data(), r);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t o = c * M + m;
        k.rows3x3_pad1(r, w + o * KK, bias ? bias[o] : T(0), y + (n * O + o) * Ho * Wo, Wo, Ho,
                       Wo);
      }
    });
    return;
  }
  const Plane g = forward_plane(p);
  const int64_t psz = g.size(), tsz = padded(KK);
  AlignedArray<T> planes(checked_mul(psz, nth, "depthwise scratch"));
  AlignedArray<const T*> taps(checked_mul(tsz, nth, "depthwise scratch"));
  AlignedArray<int64_t> toff(KK);  // scratch offset of tap (kh, kw) from its output row's base
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw)
      toff.data()[kh * KW + kw] = kh * p.dil_h * g.row_stride() + g.col_off(kw * p.dil_w);
  const int64_t ostep = p.stride_h * g.row_stride();  // between consecutive output rows
  // 3x3, stride 1, dilation 1: the register-blocked kernel
  const bool k3 = KH == 3 && KW == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
                  p.dil_w == 1;
  parallel_for_runs(ntasks, nth, task_run(ntasks, nth, plane_bytes), [&](int64_t t, int tid) {
    const int64_t n = t / C, c = t % C;
    T* s = planes.data() + tid * psz;
    const T** src = taps.data() + tid * tsz;
    g.build(x + t * HW, s);
    const int64_t nchunks = div_up(Ho, kRowChunk);
    Prefetcher pf(t + 1 < ntasks ? x + (t + 1) * HW : nullptr, sizeof(T) * HW, M * nchunks);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t o = c * M + m;
      const T b = bias ? bias[o] : T(0);
      T* yp = y + (n * O + o) * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; oh += kRowChunk) {
        const int64_t nr = std::min(kRowChunk, Ho - oh);
        if (k3) {
          k.rows3x3(s + oh * ostep, ostep, w + o * KK, b, yp + oh * Wo, Wo, nr, Wo);
        } else {
          for (int64_t q = 0; q < KK; ++q) src[q] = s + oh * ostep + toff.data()[q];
          k.rows(src, w + o * KK, KK, b, yp + oh * Wo, Wo, nr, ostep, Wo);
        }
        pf.next();
      }
    }
  });
}

template <typename T>
void input_grad_nchw(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, M = p.out_cg(), KH = p.k_h, KW = p.k_w;
  const int64_t KK = KH * KW, H = p.in_h, W = p.in_w, HoWo = p.out_h * p.out_w;
  const int64_t ntasks = N * C;
  const int nth = threads_for(ntasks);
  // a task reads M dy planes and writes one dx plane: consecutive tasks are handed out in runs
  const double plane_bytes = double(sizeof(T)) * (double(M) * HoWo + double(H) * W);
  const int64_t run = task_run(ntasks, nth, plane_bytes);
  // 3x3, stride 1, dilation 1, one output per channel: the register-blocked kernels
  const bool k3 = KH == 3 && KW == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
                  p.dil_w == 1 && M == 1;
  if (k3 && pad1_3x3(p)) {  // in place (W == out_w), with the flipped kernel wf:
    // dx[ih][iw] = sum_{a,b} wf[a*3 + b] * dy[ih + a - (2 - pad_top)][iw - 1 + b]
    const int64_t nq = H + 2, qsz = padded(nq);
    AlignedArray<const T*> rws(checked_mul(qsz, nth, "depthwise scratch"));
    AlignedArray<T> zero(W);
    zero.zero();
    parallel_for_runs(ntasks, nth, run, [&](int64_t t, int tid) {
      const T** r = rws.data() + tid * qsz;
      pad1_rows(dy + t * HoWo, p.out_h, p.out_w, 2 - p.pad_top, nq, zero.data(), r);
      const int64_t c = t % C;
      T wf[9];
      for (int64_t q = 0; q < 9; ++q) wf[q] = w[c * 9 + 8 - q];  // flipped kernel
      k.rows3x3_pad1(r, wf, T(0), dx + t * H * W, W, H, W);
    });
    return;
  }
  Plane g;  // dy upsampled by the stride; dx[ih][iw] = sum w[KH-1-a][KW-1-b] * g(ih + a*dh, iw + b*dw)
  g.rows = H + (KH - 1) * p.dil_h;
  g.cols = W + (KW - 1) * p.dil_w;
  g.r0 = (KH - 1) * p.dil_h - p.pad_top;
  g.c0 = (KW - 1) * p.dil_w - p.pad_left;
  g.uh = p.stride_h;
  g.uw = p.stride_w;
  g.src_h = p.out_h;
  g.src_w = p.out_w;
  g.finish();
  const int64_t psz = g.size(), msz = checked_mul(psz, M, "depthwise scratch");
  const int64_t tsz = padded(checked_mul(M, KK));
  AlignedArray<T> planes(checked_mul(msz, nth, "depthwise scratch"));
  AlignedArray<const T*> taps(checked_mul(tsz, nth, "depthwise scratch"));
  AlignedArray<T> wts(checked_mul(tsz, nth, "depthwise scratch"));
  // Scratch rows that can carry dy samples (the others are zero by construction). Output rows
  // ih, ih + stride_h, ... see the same pattern, so each such phase is one multi-row call.
  AlignedArray<unsigned char> live(g.rows);
  for (int64_t r = 0; r < g.rows; ++r) {
    const int64_t q = r - g.r0;
    live.data()[r] = q - floor_div(q, g.uh) * g.uh == 0;
  }
  const int64_t sh = p.stride_h, rs = g.row_stride();  // (k3: every scratch row is live)
  parallel_for_runs(ntasks, nth, run, [&](int64_t t, int tid) {
    const int64_t n = t / C, c = t % C;
    T* s = planes.data() + tid * msz;
    const T** src = taps.data() + tid * tsz;
    T* wsel = wts.data() + tid * tsz;
    for (int64_t m = 0; m < M; ++m) g.build(dy + (n * O + c * M + m) * HoWo, s + m * psz);
    // the next task's dy planes follow this task's in memory
    Prefetcher pf(t + 1 < ntasks ? dy + (n * O + (c + 1) * M) * HoWo : nullptr,
                  sizeof(T) * M * HoWo, div_up(H, kRowChunk));
    if (k3) {
      T wf[9];
      for (int64_t q = 0; q < 9; ++q) wf[q] = w[c * 9 + 8 - q];  // flipped kernel
      for (int64_t i = 0; i < H; i += kRowChunk) {
        k.rows3x3(s + i * rs, rs, wf, T(0), dx + (t * H + i) * W, W, std::min(kRowChunk, H - i), W);
        pf.next();
      }
      return;
    }
    for (int64_t f = 0; f < std::min(sh, H); ++f) {
      int64_t nt = 0;
      for (int64_t m = 0; m < M; ++m) {
        const T* wo = w + (c * M + m) * KK;
        for (int64_t a = 0; a < KH; ++a) {
          const int64_t r = f + a * p.dil_h;
          if (!live.data()[r]) continue;  // zero row: contributes nothing
          const T* row = s + m * psz + r * rs;
          for (int64_t b = 0; b < KW; ++b) {
            src[nt] = row + b * p.dil_w;
            wsel[nt] = wo[(KH - 1 - a) * KW + (KW - 1 - b)];
            ++nt;
          }
        }
      }
      const int64_t nrows = div_up(H - f, sh);
      for (int64_t i = 0; i < nrows; i += kRowChunk) {
        if (i > 0)
          for (int64_t q = 0; q < nt; ++q) src[q] += kRowChunk * sh * rs;
        k.rows(src, wsel, nt, T(0), dx + (t * H + f + i * sh) * W, W,
               std::min(kRowChunk, nrows - i), sh * rs, sh * W);
        pf.next();
      }
    }
  });
}

template <typename T>
void weight_grad_nchw(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, M = p.out_cg(), KH = p.k_h, KW = p.k_w;
  const int64_t KK = KH * KW, Ho = p.out_h, Wo = p.out_w, HW = p.in_h * p.in_w;
  const Plane g = forward_plane(p);
  const int nth = threads_for(C);
  const int64_t psz = g.size(), tsz = padded(KK);
  const int64_t asz = padded(checked_mul(checked_mul(M, KK), kDwLanes, "depthwise scratch"));
  AlignedArray<T> planes(checked_mul(psz, nth, "depthwise scratch"));
  AlignedArray<const T*> taps(checked_mul(tsz, nth, "depthwise scratch"));
  AlignedArray<T> accs(checked_mul(asz, nth, "depthwise scratch"));
  AlignedArray<int64_t> toff(KK);  // as in forward_nchw
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw)
      toff.data()[kh * KW + kw] = kh * p.dil_h * g.row_stride() + g.col_off(kw * p.dil_w);
  const int64_t ostep = p.stride_h * g.row_stride();
  parallel_for(C, nth, [&](int64_t c, int tid) {
    T* s = planes.data() + tid * psz;
    const T** src = taps.data() + tid * tsz;
    T* acc = accs.data() + tid * asz;
    std::fill(acc, acc + asz, T(0));
    for (int64_t n = 0; n < N; ++n) {
      g.build(x + (n * C + c) * HW, s);
      const int64_t nchunks = div_up(Ho, kRowChunk);
      Prefetcher pf(n + 1 < N ? x + ((n + 1) * C + c) * HW : nullptr, sizeof(T) * HW,
                    M * nchunks);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t oh = 0; oh < Ho; oh += kRowChunk) {
          for (int64_t q = 0; q < KK; ++q) src[q] = s + oh * ostep + toff.data()[q];
          k.dot(dy + ((n * O + c * M + m) * Ho + oh) * Wo, Wo, src, KK, ostep,
                std::min(kRowChunk, Ho - oh), Wo, acc + m * KK * kDwLanes);
          pf.next();
        }
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t q = 0; q < KK; ++q) {
        const T* a = acc + (m * KK + q) * kDwLanes;
        T sum = a[0];
        for (int l = 1; l < kDwLanes; ++l) sum += a[l];
        dw[(c * M + m) * KK + q] = sum;
      }
  });
}

// ---------------------------------------------------------------------------- NHWC
// NHWC outputs this large (bytes) are written with non-temporal stores: they cannot stay in
// cache, and streaming them saves the read-for-ownership of every line (as pool2d does).
constexpr double kDwStreamBytes = 8.0 * 1024 * 1024;

// 3x3, stride 1, dilation 1, one padding pixel each side, M == 1 (nhwc_row3x3): output rows in
// pairs, row oh reading source rows oh - top + a (a < 3; zero outside [0, src_h)). Both rows
// of a pair and the source rows are `wd` pixels of C channels. One task per pair of rows.
template <typename T>
void nhwc_3x3_pairs(int64_t N, int64_t out_h, int64_t src_h, int64_t top, const T* src,
                    const T* w, const T* bias, T* y, int64_t wd, int64_t C) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t rs = wd * C, pairs = div_up(out_h, 2), ntasks = N * pairs;
  const int nth = threads_for(ntasks);
  // Large outputs: each pair of rows is computed into per-thread scratch (L2) and then copied
  // out with non-temporal stores (no read-for-ownership of the output lines; stores straight
  // from the kernel would leave partial lines in the write-combining buffers).
  const auto stream_copy = kernels().pool_f32.stream_copy;
  const bool stream =
      stream_copy && static_cast<double>(N) * out_h * rs * sizeof(T) >= kDwStreamBytes;
  AlignedArray<T> scratch(stream ? checked_mul(checked_mul(int64_t(nth), 2), rs) : 0);
  parallel_for(ntasks, nth, [&](int64_t t, int tid) {
    const int64_t n = t / pairs, oh = t % pairs * 2, nout = std::min<int64_t>(2, out_h - oh);
    const T* r[4];
    for (int64_t q = 0; q < nout + 2; ++q) {
      const int64_t ih = oh - top + q;
      r[q] = ih >= 0 && ih < src_h ? src + (n * src_h + ih) * rs : nullptr;
    }
    // the source rows the next pair reads and this one does not, and its output rows
    const int64_t nf = std::max<int64_t>(oh + nout + 2 - top, 0);
    const int64_t nl = std::min<int64_t>(oh + 5 - top, src_h - 1);
    const int64_t npf = std::min(nl - nf + 1, out_h - oh - 2);  // rows
    const bool pf = npf > 0;
    T* yt = y + (n * out_h + oh) * rs;
    T* out = stream ? scratch.data() + int64_t(tid) * 2 * rs : yt;
    k.nhwc_row3x3(DwNhwc3x3<T>{nout, r, wd, w, bias, out, rs, C,
                               pf ? src + (n * src_h + nf) * rs : nullptr,
                               pf ? int64_t(sizeof(T)) * npf * rs : 0,
                               pf && !stream ? y + (n * out_h + oh + 2) * rs : nullptr});
    if (stream) {
      const int64_t f = int64_t(sizeof(T) / sizeof(float));  // (a bit copy, as floats)
      stream_copy(reinterpret_cast<const float*>(out), nout * rs * f, reinterpret_cast<float*>(yt));
#if defined(__SSE2__)
      _mm_sfence();  // the streamed lines are visible before the task ends
#endif
    }
  });
}

template <typename T>
void forward_nhwc(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, M = p.out_cg(), KH = p.k_h, KW = p.k_w;
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w;
  if (M == 1 && pad1_3x3(p)) {  // sliding 3x3 kernel, sources read in place
    nhwc_3x3_pairs(p.batch, Ho, H, p.pad_top, x, w, bias, y, Wo, C);
    return;
  }
  const int64_t ps = M == 1 ? C : O;  // pixel stride of the rows the kernel reads
  ColPlan cp;
  cp.kmax = KW;
  cp.cnt.reset(Wo);
  cp.xoff.reset(checked_mul(Wo, KW));
  cp.woff.reset(checked_mul(Wo, KW));
  cp.xoff.zero();
  cp.woff.zero();
  for (int64_t ow = 0; ow < Wo; ++ow) {
    int64_t n = 0;
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t iw = ow * p.stride_w - p.pad_left + kw * p.dil_w;
      if (iw < 0 || iw >= W) continue;
      cp.xoff.data()[ow * KW + n] = iw * ps;
      cp.woff.data()[ow * KW + n] = kw * O;
      ++n;
    }
    cp.cnt.data()[ow] = n;
  }
  const int64_t ntasks = N * Ho;
  const int nth = threads_for(ntasks);
  const int64_t rsz = padded(KH);
  const int64_t esz = M == 1 ? 0 : padded(checked_mul(checked_mul(KH, W), O, "depthwise scratch"));
  AlignedArray<const T*> rows(checked_mul(rsz, nth));
  AlignedArray<int64_t> rwoff(checked_mul(rsz, nth));
  AlignedArray<T> exp(checked_mul(esz, nth, "depthwise scratch"));
  parallel_for(ntasks, nth, [&](int64_t t, int tid) {
    const int64_t n = t / Ho, oh = t % Ho;
    const T** r = rows.data() + tid * rsz;
    int64_t* rw = rwoff.data() + tid * rsz;
    int64_t nr = 0;
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
      if (ih < 0 || ih >= H) continue;
      const T* xr = x + (n * H + ih) * W * C;
      if (M > 1) {
        T* e = exp.data() + tid * esz + nr * W * O;
        expand_row(xr, W, C, M, e);
        xr = e;
      }
      r[nr] = xr;
      rw[nr] = kh * KW * O;
      ++nr;
    }
    // the input rows the next output row reads and this one does not (M == 1: read in place).
    // Stride 1 only: at larger strides the rows are memory-bound anyway and the extra
    // prefetches measured slower.
    const int64_t last = oh * p.stride_h - p.pad_top + (KH - 1) * p.dil_h;
    const int64_t nfirst = std::max(std::max(last + 1, (oh + 1) * p.stride_h - p.pad_top),
                                    int64_t(0));
    const int64_t nlast = std::min(last + p.stride_h, H - 1);
    const bool pf = p.stride_h == 1 && M == 1 && oh + 1 < Ho && nfirst <= nlast;
    const int64_t pf_bytes = pf ? int64_t(sizeof(T)) * (nlast - nfirst + 1) * W * C : 0;
    const DwNhwcRow<T> a{nr, r, rw, Wo, cp.cnt.data(), cp.xoff.data(), cp.woff.data(), KW,
                         1, w, bias, y + t * Wo * O, O, O,
                         pf ? x + (n * H + nfirst) * W * C : nullptr, pf_bytes, nullptr};
    k.nhwc_row(a);
  });
}

template <typename T>
void input_grad_nhwc(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, M = p.out_cg(), KH = p.k_h, KW = p.k_w;
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w;
  if (M == 1 && pad1_3x3(p)) {  // the forward's kernel with the flipped kernel wf:
    // dx[ih][iw] = sum_{a,b} wf[a*3 + b] * dy[ih + a - (2 - pad_top)][iw - 1 + b]  (W == Wo)
    AlignedArray<T> wf(checked_mul(9, C, "depthwise scratch"));
    for (int64_t q = 0; q < 9; ++q) std::memcpy(wf.data() + q * C, w + (8 - q) * C, sizeof(T) * C);
    nhwc_3x3_pairs(N, H, Ho, 2 - p.pad_top, dy, wf.data(), static_cast<const T*>(nullptr), dx, W,
                   C);
    return;
  }
  ColPlan cp;  // for input column iw: the (output column, kw) pairs whose window reads it
  cp.kmax = KW;
  cp.cnt.reset(W);
  cp.xoff.reset(checked_mul(W, KW));
  cp.woff.reset(checked_mul(W, KW));
  cp.xoff.zero();
  cp.woff.zero();
  for (int64_t iw = 0; iw < W; ++iw) {
    int64_t n = 0;
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t q = iw + p.pad_left - kw * p.dil_w;
      if (q < 0 || q % p.stride_w != 0 || q / p.stride_w >= Wo) continue;
      cp.xoff.data()[iw * KW + n] = (q / p.stride_w) * O;
      cp.woff.data()[iw * KW + n] = kw * O;
      ++n;
    }
    cp.cnt.data()[iw] = n;
  }
  const int64_t ntasks = N * H;
  const int nth = threads_for(ntasks);
  const int64_t rsz = padded(KH);
  const int64_t tsz = M == 1 ? 0 : padded(checked_mul(W, O, "depthwise scratch"));
  AlignedArray<const T*> rows(checked_mul(rsz, nth));
  AlignedArray<int64_t> rwoff(checked_mul(rsz, nth));
  AlignedArray<T> tmp(checked_mul(tsz, nth, "depthwise scratch"));
  parallel_for(ntasks, nth, [&](int64_t t, int tid) {
    const int64_t n = t / H, ih = t % H;
    const T** r = rows.data() + tid * rsz;
    int64_t* rw = rwoff.data() + tid * rsz;
    int64_t nr = 0;
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t q = ih + p.pad_top - kh * p.dil_h;
      if (q < 0 || q % p.stride_h != 0 || q / p.stride_h >= Ho) continue;
      r[nr] = dy + (n * Ho + q / p.stride_h) * Wo * O;
      rw[nr] = kh * KW * O;
      ++nr;
    }
    T* out = dx + t * W * C;
    T* row = M == 1 ? out : tmp.data() + tid * tsz;
    // the dy row the next input row reads first
    const int64_t q_next = ih + 1 + p.pad_top;
    const bool pf = ih + 1 < H && q_next % p.stride_h == 0 && q_next / p.stride_h < Ho;
    const DwNhwcRow<T> a{nr, r, rw, W, cp.cnt.data(), cp.xoff.data(), cp.woff.data(), KW,
                         p.stride_w, w, nullptr, row, O, O,
                         pf ? dy + (n * Ho + q_next / p.stride_h) * Wo * O : nullptr,
                         pf ? static_cast<int64_t>(sizeof(T)) * std::min(W, Wo) * O : 0,
                         pf && M == 1 ? dx + (t + 1) * W * C : nullptr};
    k.nhwc_row(a);
    if (M > 1)
      for (int64_t e = 0; e < W * C; ++e) {
        const T* v = row + e * M;
        T s = v[0];
        for (int64_t m = 1; m < M; ++m) s += v[m];
        out[e] = s;
      }
  });
}

template <typename T>
void weight_grad_nhwc(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const DwKernels<T>& k = kernels().dw<T>();
  const int64_t N = p.batch, C = p.in_c, O = p.out_c, M = p.out_cg(), KH = p.k_h, KW = p.k_w;
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, KK = KH * KW;
  const int64_t ps = M == 1 ? C : O;
  // Fixed chunks of output rows (their number depends on the shape only), each accumulating a
  // partial gradient; the partials are summed in chunk order.
  const int64_t R = N * Ho;
  const int64_t chunk = div_up(R, std::min<int64_t>(R, 64));
  const int64_t nchunks = div_up(R, chunk);
  const int64_t wsize = checked_mul(KK, O, "depthwise scratch");
  const int64_t psz = padded(wsize);
  AlignedArray<T> partial(checked_mul(psz, nchunks, "depthwise scratch"));
  const int nth = threads_for(nchunks);
  const int64_t esz = M == 1 ? 0 : padded(checked_mul(W, O, "depthwise scratch"));
  AlignedArray<T> exp(checked_mul(esz, nth, "depthwise scratch"));
  // KW = 3, stride and dilation 1 along the row, one output per channel: each dy vector is
  // loaded once for the row's three taps (the same sums in the same order as per tap)
  const bool dot3 = KW == 3 && p.stride_w == 1 && p.dil_w == 1 && M == 1;
  parallel_for(nchunks, nth, [&](int64_t t, int tid) {
    T* part = partial.data() + t * psz;
    std::fill(part, part + wsize, T(0));
    const int64_t r1 = std::min(R, (t + 1) * chunk);
    for (int64_t row = t * chunk; row < r1; ++row) {
      const int64_t n = row / Ho, oh = row % Ho;
      const T* dyr = dy + row * Wo * O;
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dil_h;
        if (ih < 0 || ih >= H) continue;
        const T* xr = x + (n * H + ih) * W * C;
        if (M > 1) {
          T* e = exp.data() + tid * esz;
          expand_row(xr, W, C, M, e);
          xr = e;
        }
        if (dot3) {  // the three taps of the row at once
          k.nhwc_dot3(dyr, xr, Wo, W, -p.pad_left, O, part + kh * KW * O);
          continue;
        }
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t off = kw * p.dil_w - p.pad_left;
          const int64_t lo = std::max<int64_t>(0, ceil_div(-off, p.stride_w));
          const int64_t hi = std::min<int64_t>(Wo, floor_div(W - 1 - off, p.stride_w) + 1);
          if (hi <= lo) continue;
          k.nhwc_dot(dyr + lo * O, O, xr + (lo * p.stride_w + off) * ps, p.stride_w * ps, hi - lo,
                     O, part + (kh * KW + kw) * O);
        }
      }
    }
  });
  const int64_t blk = 1024;
  parallel_for(div_up(wsize, blk), [&](int64_t b, int) {
    const int64_t e0 = b * blk, e1 = std::min(wsize, e0 + blk);
    for (int64_t e = e0; e < e1; ++e) {
      T s = partial.data()[e];
      for (int64_t ch = 1; ch < nchunks; ++ch) s += partial.data()[ch * psz + e];
      dw[e] = s;
    }
  });
}

}  // namespace

template <typename T>
void depthwise_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  if (p.layout == Layout::NCHW)
    forward_nchw(p, x, w, bias, y);
  else
    forward_nhwc(p, x, w, bias, y);
}

template <typename T>
void depthwise_input_grad(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  if (p.layout == Layout::NCHW)
    input_grad_nchw(p, dy, w, dx);
  else
    input_grad_nhwc(p, dy, w, dx);
}

template <typename T>
void depthwise_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  if (p.layout == Layout::NCHW)
    weight_grad_nchw(p, dy, x, dw);
  else
    weight_grad_nhwc(p, dy, x, dw);
}

#define FC_INSTANTIATE(T)                                                                    \
  template void depthwise_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template void depthwise_input_grad<T>(const Conv2dParams&, const T*, const T*, T*);        \
  template void depthwise_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
