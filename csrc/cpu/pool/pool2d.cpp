// Pooling drivers and inner loops (contracts in pool2d.h).
//
// One engine serves max, avg and adaptive pooling: an Axis table per spatial dimension lists, for
// every output row (column), the first input position its window reads and how many taps it has,
// so the inner loops never test bounds. NCHW runs as "NHWC with C = 1" over batch*channels planes;
// NHWC loops innermost over contiguous channels (plain loops, auto-vectorised).
//
// Threading: tasks are (images x output-row blocks) cut by a fixed work grain, never by the thread
// count. Backward: each task first zeroes the part of grad_x it owns, then scatters into it only:
// row blocks when windows do not overlap vertically, else whole images (NCHW planes, or NHWC
// (image, channel block)). Every grad_x element therefore accumulates in row-major output order,
// whatever the thread count.
#include "cpu/pool/pool2d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "common/check.h"
#include "cpu/parallel.h"

#if defined(__GNUC__)
#define FC_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FC_ALWAYS_INLINE inline
#endif

namespace fastconv {
namespace {

#ifndef FASTCONV_POOL_GRAIN  // overridable only to stress the task splitting in tests
#define FASTCONV_POOL_GRAIN 16384.0
#endif
constexpr double kGrain = FASTCONV_POOL_GRAIN;    // minimum work (element visits) per task
constexpr int64_t kMaxExtent = int64_t(1) << 60;  // bound on sizes, strides and dilated kernels

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a >= 0, b > 0

// Window geometry along one axis: output o reads input positions first[o] + i*step, i < count[o].
// size[o] is avg pooling's count_include_pad extent (window clipped to input + pad_hi only).
struct Axis {
  std::vector<int64_t> first, count, size;
  int64_t step = 1;
  bool overlap = false;            // some input position is read by two outputs (conservative)
  std::vector<double> lo_d, hi_d;  // first and first + count as doubles (index validation)
  double mean_taps = 1;
  double reach = 0;  // max over windows of (count - 1) * step
  // Max / avg pooling: outputs [full_lo, full_hi) have all k taps inside the input, the first at
  // o*stride - pad_lo. Empty for adaptive pooling.
  int64_t full_lo = 0, full_hi = 0, stride = 0, pad_lo = 0, k = 0;
};

struct Geom {
  Axis h, w;
  double taps() const { return h.mean_taps * w.mean_taps; }
  // Largest distance (in plane elements) between a window's first tap and another of its taps.
  double max_offset(int64_t in_w) const { return h.reach * static_cast<double>(in_w) + w.reach; }
};

void finish_axis(Axis& a) {
  a.lo_d.resize(a.first.size());
  a.hi_d.resize(a.first.size());
  for (size_t o = 0; o < a.first.size(); ++o) {
    a.lo_d[o] = static_cast<double>(a.first[o]);
    a.hi_d[o] = static_cast<double>(a.first[o] + a.count[o]);
  }
  double total = 0;
  for (int64_t c : a.count) {
    total += static_cast<double>(c);
    a.reach = std::max(a.reach, static_cast<double>(c - 1) * static_cast<double>(a.step));
  }
  a.mean_taps = a.count.empty() ? 1.0 : std::max(1.0, total / static_cast<double>(a.count.size()));
}

void check_sizes(const char* fn, const Pool2dParams& p) {
  FC_CHECK(p.layout == Layout::NCHW || p.layout == Layout::NHWC, fn,
           "layout must be 0 (NCHW) or 1 (NHWC), got ", static_cast<int>(p.layout));
  for (int64_t v : {p.batch, p.channels, p.in_h, p.in_w, p.out_h, p.out_w})
    FC_CHECK(v >= 0 && v <= kMaxExtent, fn, "sizes must be in [0, 2^60], got batch=", p.batch,
             " channels=", p.channels, " input ", p.in_h, "x", p.in_w, " output ", p.out_h, "x",
             p.out_w);
}

// Validates one axis of max / avg pooling; builds its table when `build` (batch*channels > 0).
Axis pool_axis(const char* fn, const char* dim, int64_t in, int64_t out, int64_t k, int64_t stride,
               int64_t lo, int64_t hi, int64_t dil, bool is_max, bool build) {
  FC_CHECK(k >= 1 && k <= kMaxExtent, fn, "kernel ", dim, " must be in [1, 2^60], got ", k);
  FC_CHECK(stride >= 1 && stride <= kMaxExtent, fn, "stride ", dim, " must be in [1, 2^60], got ",
           stride);
  FC_CHECK(dil >= 1 && dil <= kMaxExtent, fn, "dilation ", dim, " must be in [1, 2^60], got ", dil);
  FC_CHECK(is_max || dil == 1, fn, "avg pooling has no dilation, got dilation ", dim, " = ", dil);
  FC_CHECK(k - 1 <= kMaxExtent / dil, fn, "dilated kernel ", dim,
           " dilation*(k-1)+1 exceeds 2^60 (k=", k, ", dilation=", dil, ")");
  const int64_t keff = dil * (k - 1) + 1;
  FC_CHECK(lo >= 0 && hi >= 0 && lo < keff && hi < keff, fn, "padding along ", dim,
           " must be >= 0 and smaller than the dilated kernel ", dim, " ", keff, ", got (", lo,
           ", ", hi, ")");
  const int64_t fl = output_size(in, k, stride, lo, hi, dil, false);
  const int64_t ce = output_size(in, k, stride, lo, hi, dil, true);
  FC_CHECK(out == fl || out == ce, fn, "output ", dim, " ", out, " does not match input ", dim, " ",
           in, " with kernel ", k, ", stride ", stride, ", padding (", lo, ", ", hi, "), dilation ",
           dil, ": expected ", fl,
           (ce != fl ? " (or " + std::to_string(ce) + " with ceil_mode)" : std::string()));
  Axis a;
  if (!build) return a;
  FC_CHECK(out >= 1, fn, "no pooling window fits: input ", dim, " ", in, " plus padding (", lo,
           ", ", hi, ") is smaller than the dilated kernel ", dim, " ", keff);
  a.step = dil;
  a.overlap = out > 1 && stride < keff;
  a.stride = stride;
  a.pad_lo = lo;
  a.k = k;
  a.full_lo = out;
  a.first.resize(out);
  a.count.resize(out);
  a.size.resize(out);
  for (int64_t o = 0; o < out; ++o) {
    const int64_t start = o * stride - lo;
    const int64_t i0 = start < 0 ? ceil_div(-start, dil) : 0;
    const int64_t i1 = start < in ? std::min(k, ceil_div(in - start, dil)) : 0;
    const int64_t n = std::max<int64_t>(0, i1 - i0);
    FC_CHECK(!is_max || n > 0, fn, "the pooling window of output ", dim, " ", o,
             " holds no input element (input ", dim, " ", in, ", kernel ", k, ", stride ", stride,
             ", padding (", lo, ", ", hi, "), dilation ", dil, ")");
    if (start >= 0 && n == k) {
      a.full_lo = std::min(a.full_lo, o);
      a.full_hi = o + 1;
    }
    a.first[o] = n > 0 ? start + i0 * dil : std::clamp<int64_t>(start, 0, in);
    a.count[o] = n;
    a.size[o] = std::min(start + k, in + hi) - start;
  }
  a.full_lo = std::min(a.full_lo, a.full_hi);
  finish_axis(a);
  return a;
}

Axis adaptive_axis(const char* fn, const char* dim, int64_t in, int64_t out, bool build) {
  Axis a;
  if (!build) return a;
  FC_CHECK(in >= 1 && out >= 1, fn, "adaptive pooling needs input and output ", dim,
           " >= 1, got input ", in, " and output ", out);
  checked_mul(out, in + 1, (std::string(fn) + ": adaptive pooling output*input " + dim).c_str());
  a.first.resize(out);
  a.count.resize(out);
  int64_t prev_end = 0;
  for (int64_t o = 0; o < out; ++o) {
    const int64_t s = (o * in) / out, e = ((o + 1) * in + out - 1) / out;
    a.overlap = a.overlap || s < prev_end;
    a.first[o] = s;
    a.count[o] = e - s;
    prev_end = e;
  }
  a.size = a.count;
  finish_axis(a);
  return a;
}

bool has_work(const Pool2dParams& p) { return p.batch > 0 && p.channels > 0; }

Geom pool_geom(const char* fn, const Pool2dParams& p, bool is_max) {
  check_sizes(fn, p);
  const bool build = has_work(p);
  Geom g;
  g.h = pool_axis(fn, "height", p.in_h, p.out_h, p.k_h, p.stride_h, p.pad_top, p.pad_bottom,
                  p.dil_h, is_max, build);
  g.w = pool_axis(fn, "width", p.in_w, p.out_w, p.k_w, p.stride_w, p.pad_left, p.pad_right, p.dil_w,
                  is_max, build);
  checked_mul(p.k_h, p.k_w, (std::string(fn) + ": kernel height*width").c_str());
  return g;
}

Geom adaptive_geom(const char* fn, const Pool2dParams& p) {
  check_sizes(fn, p);
  const bool build = has_work(p);
  return Geom{adaptive_axis(fn, "height", p.in_h, p.out_h, build),
              adaptive_axis(fn, "width", p.in_w, p.out_w, build)};
}

// Dense problem view: `images` planes of in_h x in_w x C (NCHW: batch*channels planes, C = 1).
struct Shape {
  bool nhwc;
  int64_t channels, C, images, in_h, in_w, out_h, out_w;
  int64_t in_img() const { return in_h * in_w * C; }
  int64_t out_img() const { return out_h * out_w * C; }
};

Shape shape_of(const Pool2dParams& p) {
  const bool nhwc = p.layout == Layout::NHWC;
  return Shape{nhwc,
               p.channels,
               nhwc ? p.channels : 1,
               nhwc ? p.batch : p.batch * p.channels,
               p.in_h,
               p.in_w,
               p.out_h,
               p.out_w};
}

// Cuts `items` x `rows` into tasks of about kGrain work: row blocks of one item when an item is
// big and rows may be split, else groups of whole items. Depends on sizes only.
struct Split {
  int64_t items = 0, rows = 0, ipt = 1, rpt = 1, blocks = 1, ntasks = 0;
  void get(int64_t t, int64_t& i0, int64_t& i1, int64_t& r0, int64_t& r1) const {
    if (blocks > 1) {
      i0 = t / blocks;
      i1 = i0 + 1;
      r0 = (t % blocks) * rpt;
      r1 = std::min(rows, r0 + rpt);
    } else {
      i0 = t * ipt;
      i1 = std::min(items, i0 + ipt);
      r0 = 0;
      r1 = rows;
    }
  }
};

Split make_split(int64_t items, int64_t rows, double row_work, bool split_rows) {
  Split s;
  s.items = items;
  s.rows = rows;
  if (items <= 0 || rows <= 0) return s;
  row_work = std::max(row_work, 1.0);
  const double item_work = row_work * static_cast<double>(rows);
  if (split_rows && item_work >= 2 * kGrain) {
    s.rpt = static_cast<int64_t>(
        std::min<double>(static_cast<double>(rows), std::ceil(kGrain / row_work)));
    s.rpt = std::max<int64_t>(s.rpt, 1);
    s.blocks = ceil_div(rows, s.rpt);
    s.ntasks = items * s.blocks;
  } else {
    s.rpt = rows;
    s.ipt = static_cast<int64_t>(
        std::min<double>(static_cast<double>(items), std::ceil(kGrain / item_work)));
    s.ipt = std::max<int64_t>(s.ipt, 1);
    s.ntasks = ceil_div(items, s.ipt);
  }
  return s;
}

// ---- forward inner loops (one image, output rows [r0, r1)) ------------------------------------

// Index scratch for the vectorised max loops: the winner's offset from the window's first tap, in
// a type whose compare masks match T's lane width under plain SSE2 (int32 for float, double for
// double: both exact for offsets up to kMaxOffset<T>). Wider windows use int64 indices directly.
template <typename T>
using Off = std::conditional_t<sizeof(T) == 4, int32_t, double>;
template <typename T>
constexpr double kMaxOffset = sizeof(T) == 4 ? 2147483647.0 : 9007199254740992.0;

template <typename T>
bool offsets_fit(const Geom& g, int64_t in_w) {
  return g.max_offset(in_w) <= kMaxOffset<T>;
}

// The max rule, one lane: m = (v > m || isnan(v)) ? v : m, and the winner's position.
template <typename T>
inline bool takes(T v, T m) {
  return (v > m) | (v != v);
}

// NCHW, one output row, interior columns [a, b) (windows fully inside horizontally), as k_h*k_w
// vector passes across columns: pass (i, j) updates every column with its tap (i, j), so each
// column still sees its taps in row-major window order. S = stride_w (1 or 2).
template <typename T, bool IDX, int S>
void max_row_interior(const T* __restrict x, T* __restrict o, int64_t* __restrict id,
                      Off<T>* __restrict off, const Geom& g, int64_t oh, int64_t in_w, int64_t a,
                      int64_t b) {
  const int64_t h0 = g.h.first[oh], nh = g.h.count[oh], dh = g.h.step * in_w, dw = g.w.step;
  const int64_t base = h0 * in_w + a * S - g.w.pad_lo, n = b - a, kw = g.w.k;
  T* __restrict ob = o + a;
  for (int64_t i = 0; i < nh; ++i)
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t rel = i * dh + j * dw;
      const T* __restrict xr = x + base + rel;
      if (i == 0 && j == 0) {
        for (int64_t k = 0; k < n; ++k) ob[k] = xr[k * S];
        if (IDX) std::fill(off, off + n, Off<T>(0));
      } else if (IDX) {
        const Off<T> r = static_cast<Off<T>>(rel);
        for (int64_t k = 0; k < n; ++k) {
          const T v = xr[k * S], m = ob[k];
          const bool u = takes(v, m);
          ob[k] = u ? v : m;
          off[k] = u ? r : off[k];
        }
      } else {
        for (int64_t k = 0; k < n; ++k) {
          const T v = xr[k * S], m = ob[k];
          ob[k] = takes(v, m) ? v : m;
        }
      }
    }
  if (IDX)
    for (int64_t k = 0; k < n; ++k) id[a + k] = base + k * S + static_cast<int64_t>(off[k]);
}

// u ? a : b without a branch (the max rule's outcome is unpredictable on real data).
template <typename T>
inline T select(bool u, T a, T b) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  const Bits mask = Bits(0) - Bits(u), r = (ia & mask) | (ib & ~mask);
  T out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

// NCHW, one output, any window: scalar, branch-free.
template <typename T>
inline void max_one(const T* __restrict x, int64_t base, int64_t nh, int64_t dh, int64_t nw,
                    int64_t dw, T& out, int64_t& idx) {
  // Starting from the first tap equals starting from -inf with idx = first tap.
  T m = x[base];
  int64_t mi = base;
  for (int64_t i = 0, row = base; i < nh; ++i, row += dh)
    for (int64_t j = (i == 0 ? 1 : 0); j < nw; ++j) {
      const T v = x[row + j * dw];
      const bool u = takes(v, m);
      m = select(u, v, m);
      mi = select(u, row + j * dw, mi);
    }
  out = m;
  idx = mi;
}

template <typename T, bool IDX>
void max_rows_nchw(const T* x, T* out, int64_t* ind, Off<T>* off, const Geom& g, int64_t in_w,
                   int64_t out_w, int64_t r0, int64_t r1) {
  const int64_t dh = g.h.step * in_w, dw = g.w.step;
  // Vector path for the interior columns when the stride is 1 or 2 and offsets fit the scratch.
  int64_t a = g.w.full_lo, b = g.w.full_hi;
  const bool vec = off && b - a >= 4 && (g.w.stride == 1 || g.w.stride == 2);
  if (!vec) a = b = out_w;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    T* o = out + oh * out_w;
    int64_t* id = IDX ? ind + oh * out_w : nullptr;
    int64_t scratch_idx;
    for (int64_t ow = 0; ow < out_w; ++ow) {
      if (ow == a) {
        if (g.w.stride == 1)
          max_row_interior<T, IDX, 1>(x, o, id, off, g, oh, in_w, a, b);
        else
          max_row_interior<T, IDX, 2>(x, o, id, off, g, oh, in_w, a, b);
        ow = b - 1;
        continue;
      }
      max_one(x, h0 * in_w + g.w.first[ow], nh, dh, g.w.count[ow], dw, o[ow],
              IDX ? id[ow] : scratch_idx);
    }
  }
}

template <typename T, typename I>
inline void max_update_idx(const T* __restrict v, T* __restrict m, I* __restrict id, I pos,
                           int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const T a = v[c], b = m[c];
    const bool u = takes(a, b);
    m[c] = u ? a : b;
    id[c] = u ? pos : id[c];
  }
}

template <typename T>
inline void max_update(const T* __restrict v, T* __restrict m, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const T a = v[c], b = m[c];
    m[c] = takes(a, b) ? a : b;
  }
}

// NHWC: innermost loops across contiguous channels; the running max lives in the output pixel,
// the winners' offsets in `off` (C entries), or, when offsets do not fit Off<T> (off == null),
// int64 indices are tracked directly in the index output (not vectorised under SSE2).
template <typename T, bool IDX>
void max_rows_nhwc(const T* x, T* out, int64_t* ind, Off<T>* off, const Geom& g, int64_t in_w,
                   int64_t out_w, int64_t C, int64_t r0, int64_t r1) {
  const int64_t dh = g.h.step * in_w, dw = g.w.step;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int64_t base = h0 * in_w + g.w.first[ow], nw = g.w.count[ow];
      T* o = out + (oh * out_w + ow) * C;
      int64_t* id = IDX ? ind + (oh * out_w + ow) * C : nullptr;
      std::copy(x + base * C, x + base * C + C, o);
      if (IDX && off) std::fill(off, off + C, Off<T>(0));
      if (IDX && !off) std::fill(id, id + C, base);
      for (int64_t i = 0, row = base; i < nh; ++i, row += dh)
        for (int64_t j = (i == 0 ? 1 : 0); j < nw; ++j) {
          const int64_t pos = row + j * dw;
          if (!IDX)
            max_update(x + pos * C, o, C);
          else if (off)
            max_update_idx(x + pos * C, o, off, static_cast<Off<T>>(pos - base), C);
          else
            max_update_idx(x + pos * C, o, id, pos, C);
        }
      if (IDX && off)
        for (int64_t c = 0; c < C; ++c) id[c] = base + static_cast<int64_t>(off[c]);
    }
  }
}

// Avg divisor: sum / d1 (then / d2 for adaptive pooling, PyTorch's `sum / kh / kw`).
struct AvgDiv {
  int64_t override_ = 0;
  bool include_pad = true, adaptive = false;
  template <typename T>
  void get(int64_t nh, int64_t nw, int64_t sh, int64_t sw, T& d1, T& d2) const {
    if (adaptive) {
      d1 = static_cast<T>(nh);
      d2 = static_cast<T>(nw);
      return;
    }
    d1 = static_cast<T>(override_ != 0 ? override_ : include_pad ? sh * sw : nh * nw);
    d2 = T(1);
  }
};

// NCHW avg, one output row, interior columns [a, b) (all k_w taps inside), as vector passes:
// each column sums its taps in row-major window order from 0, exactly like the scalar loop, and
// shares one divisor. S = stride_w (1 or 2).
template <typename T, int S>
void avg_row_interior(const T* __restrict x, T* __restrict o, const Geom& g, const AvgDiv& dv,
                      int64_t oh, int64_t in_w, int64_t a, int64_t b) {
  const int64_t h0 = g.h.first[oh], nh = g.h.count[oh], n = b - a, kw = g.w.k;
  const int64_t base = h0 * in_w + a * S - g.w.pad_lo;
  T* __restrict ob = o + a;
  std::fill(ob, ob + n, T(0));
  if (nh == 0) return;
  for (int64_t i = 0; i < nh; ++i)
    for (int64_t j = 0; j < kw; ++j) {
      const T* __restrict xr = x + base + i * in_w + j;
      for (int64_t k = 0; k < n; ++k) ob[k] += xr[k * S];
    }
  T d1, d2;
  dv.get(nh, kw, g.h.size[oh], g.w.size[a], d1, d2);
  for (int64_t k = 0; k < n; ++k) ob[k] = ob[k] / d1;
}

template <typename T>
void avg_rows_nchw(const T* __restrict x, T* __restrict out, const Geom& g, const AvgDiv& dv,
                   int64_t in_w, int64_t out_w, int64_t r0, int64_t r1) {
  int64_t a = g.w.full_lo, b = g.w.full_hi;  // empty for adaptive pooling
  if (!(b - a >= 4 && (g.w.stride == 1 || g.w.stride == 2))) a = b = out_w;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    for (int64_t ow = 0; ow < out_w; ++ow) {
      if (ow == a) {
        if (g.w.stride == 1)
          avg_row_interior<T, 1>(x, out + oh * out_w, g, dv, oh, in_w, a, b);
        else
          avg_row_interior<T, 2>(x, out + oh * out_w, g, dv, oh, in_w, a, b);
        ow = b - 1;
        continue;
      }
      const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
      T& o = out[oh * out_w + ow];
      if (nh == 0 || nw == 0) {
        o = T(0);
        continue;
      }
      T s = T(0);
      for (int64_t i = 0; i < nh; ++i) {
        const T* xr = x + (h0 + i) * in_w + w0;
        for (int64_t j = 0; j < nw; ++j) s += xr[j];
      }
      T d1, d2;
      dv.get(nh, nw, g.h.size[oh], g.w.size[ow], d1, d2);
      s = s / d1;
      if (dv.adaptive) s = s / d2;
      o = s;
    }
  }
}

template <typename T>
void avg_rows_nhwc(const T* x, T* out, const Geom& g, const AvgDiv& dv, int64_t in_w, int64_t out_w,
                   int64_t C, int64_t r0, int64_t r1) {
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
      T* __restrict o = out + (oh * out_w + ow) * C;
      std::fill(o, o + C, T(0));
      if (nh == 0 || nw == 0) continue;
      for (int64_t i = 0; i < nh; ++i)
        for (int64_t j = 0; j < nw; ++j) {
          const T* __restrict xp = x + ((h0 + i) * in_w + w0 + j) * C;
          for (int64_t c = 0; c < C; ++c) o[c] += xp[c];
        }
      T d1, d2;
      dv.get(nh, nw, g.h.size[oh], g.w.size[ow], d1, d2);
      for (int64_t c = 0; c < C; ++c) o[c] = o[c] / d1;
      if (dv.adaptive)
        for (int64_t c = 0; c < C; ++c) o[c] = o[c] / d2;
    }
  }
}

// ---- drivers ----------------------------------------------------------------------------------

// Calls body(i0, i1, r0, r1): images [i0, i1) x output rows [r0, r1), one call per task.
template <typename Body>
void forward_tasks(const Shape& s, const Geom& g, Body&& body) {
  if (s.images == 0 || s.C == 0) return;
  const Split sp =
      make_split(s.images, s.out_h, static_cast<double>(s.out_w) * g.taps() * s.C, true);
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    int64_t i0, i1, r0, r1;
    sp.get(t, i0, i1, r0, r1);
    body(i0, i1, r0, r1);
  });
}

template <typename T>
void max_forward(const T* x, T* out, int64_t* ind, const Shape& s, const Geom& g) {
  const bool fit = offsets_fit<T>(g, s.in_w);
  forward_tasks(s, g, [&](int64_t i0, int64_t i1, int64_t r0, int64_t r1) {
    std::vector<Off<T>> scratch(fit ? static_cast<size_t>(s.nhwc ? s.C : s.out_w) : 0);
    Off<T>* off = fit ? scratch.data() : nullptr;
    for (int64_t img = i0; img < i1; ++img) {
      const T* xi = x + img * s.in_img();
      T* oi = out + img * s.out_img();
      int64_t* ii = ind ? ind + img * s.out_img() : nullptr;
      if (s.nhwc) {
        if (ind)
          max_rows_nhwc<T, true>(xi, oi, ii, off, g, s.in_w, s.out_w, s.C, r0, r1);
        else
          max_rows_nhwc<T, false>(xi, oi, ii, off, g, s.in_w, s.out_w, s.C, r0, r1);
      } else {
        if (ind)
          max_rows_nchw<T, true>(xi, oi, ii, off, g, s.in_w, s.out_w, r0, r1);
        else
          max_rows_nchw<T, false>(xi, oi, ii, off, g, s.in_w, s.out_w, r0, r1);
      }
    }
  });
}

template <typename T>
void avg_forward(const T* x, T* out, const Shape& s, const Geom& g, const AvgDiv& dv) {
  forward_tasks(s, g, [&](int64_t i0, int64_t i1, int64_t r0, int64_t r1) {
    for (int64_t img = i0; img < i1; ++img) {
      const T* xi = x + img * s.in_img();
      T* oi = out + img * s.out_img();
      if (s.nhwc)
        avg_rows_nhwc(xi, oi, g, dv, s.in_w, s.out_w, s.C, r0, r1);
      else
        avg_rows_nchw(xi, oi, g, dv, s.in_w, s.out_w, r0, r1);
    }
  });
}

// Zeroes grad_x and calls body(img, c0, c1, r0, r1) so that each grad_x element is zeroed and then
// accumulated by exactly one task, in row-major output order.
template <typename T, typename Body>
void backward_tasks(T* grad_x, const Shape& s, const Geom& g, Body&& body) {
  if (s.images == 0 || s.C == 0) return;
  const double out_pix = static_cast<double>(s.out_h) * s.out_w;
  const double in_pix = static_cast<double>(s.in_h) * s.in_w;
  int64_t cb = s.C;  // channel block (NHWC with vertically overlapping windows only)
  if (s.nhwc && g.h.overlap) {
    const double per_c = out_pix * g.taps() + in_pix;
    if (per_c * s.C >= 2 * kGrain) {
      cb = static_cast<int64_t>(std::ceil(kGrain / per_c));
      cb = std::min(s.C, ceil_div(std::max<int64_t>(cb, 1), 16) * 16);
    }
  }
  const int64_t nblk = ceil_div(s.C, cb);
  const double row_work =
      (static_cast<double>(s.out_w) * g.taps() + in_pix / std::max<int64_t>(s.out_h, 1)) * cb;
  const Split sp = make_split(s.images * nblk, s.out_h, row_work, !g.h.overlap);
  const int64_t in_w = s.in_w, C = s.C;
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    int64_t i0, i1, r0, r1;
    sp.get(t, i0, i1, r0, r1);
    // Input rows owned: from the first row of this block's first window up to the next block's.
    const int64_t lo = r0 == 0 ? 0 : std::clamp<int64_t>(g.h.first[r0], 0, s.in_h);
    const int64_t hi = r1 == s.out_h ? s.in_h : std::clamp<int64_t>(g.h.first[r1], 0, s.in_h);
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t img = item / nblk, c0 = (item % nblk) * cb, c1 = std::min(C, c0 + cb);
      T* gx = grad_x + img * s.in_img();
      if (c0 == 0 && c1 == C) {
        std::fill(gx + lo * in_w * C, gx + hi * in_w * C, T(0));
      } else {
        for (int64_t pix = lo * in_w; pix < hi * in_w; ++pix)
          std::fill(gx + pix * C + c0, gx + pix * C + c1, T(0));
      }
      body(img, c0, c1, r0, r1);
    }
  });
}

template <typename T>
void max_backward(const T* grad_out, const int64_t* ind, T* grad_x, const Shape& s, const Geom& g) {
  const int64_t C = s.C, out_w = s.out_w;
  backward_tasks(grad_x, s, g, [&](int64_t img, int64_t c0, int64_t c1, int64_t r0, int64_t r1) {
    const T* go = grad_out + img * s.out_img();
    const int64_t* id = ind + img * s.out_img();
    T* gx = grad_x + img * s.in_img();
    if (!s.nhwc) {
      for (int64_t o = r0 * out_w; o < r1 * out_w; ++o) gx[id[o]] += go[o];
    } else {
      for (int64_t o = r0 * out_w; o < r1 * out_w; ++o)
        for (int64_t c = c0; c < c1; ++c) gx[id[o * C + c] * C + c] += go[o * C + c];
    }
  });
}

template <typename T>
void avg_backward(const T* grad_out, T* grad_x, const Shape& s, const Geom& g, const AvgDiv& dv) {
  const int64_t C = s.C, in_w = s.in_w, out_w = s.out_w;
  backward_tasks(grad_x, s, g, [&](int64_t img, int64_t c0, int64_t c1, int64_t r0, int64_t r1) {
    const T* go = grad_out + img * s.out_img();
    T* gx = grad_x + img * s.in_img();
    std::vector<T> buf(s.nhwc ? static_cast<size_t>(C) : 0);
    T* __restrict gb = buf.data();
    for (int64_t oh = r0; oh < r1; ++oh) {
      const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
        if (nh == 0 || nw == 0) continue;
        T d1, d2;
        dv.get(nh, nw, g.h.size[oh], g.w.size[ow], d1, d2);
        const int64_t o = oh * out_w + ow;
        if (!s.nhwc) {
          T d = go[o] / d1;
          if (dv.adaptive) d = d / d2;
          for (int64_t i = 0; i < nh; ++i) {
            T* gr = gx + (h0 + i) * in_w + w0;
            for (int64_t j = 0; j < nw; ++j) gr[j] += d;
          }
        } else {
          const T* __restrict gp = go + o * C;
          for (int64_t c = c0; c < c1; ++c) gb[c] = gp[c] / d1;
          if (dv.adaptive)
            for (int64_t c = c0; c < c1; ++c) gb[c] = gb[c] / d2;
          for (int64_t i = 0; i < nh; ++i)
            for (int64_t j = 0; j < nw; ++j) {
              T* __restrict gr = gx + ((h0 + i) * in_w + w0 + j) * C;
              for (int64_t c = c0; c < c1; ++c) gr[c] += gb[c];
            }
        }
      }
    }
  });
}

// ---- index validation (max backward) ----------------------------------------------------------

// v / w for 0 <= v < 2^50 without a 64-bit division: (v + 0.5) / w lies at least 0.5/w away from
// an integer and the double product errs by less than that, so truncation is exact.
struct RowDiv {
  int64_t w;
  double inv;
  bool fast;
  RowDiv(int64_t w_, int64_t limit)
      : w(w_), inv(1.0 / static_cast<double>(w_)), fast(limit <= (int64_t(1) << 50)) {}
  int64_t operator()(int64_t v) const {
    return fast ? static_cast<int64_t>((static_cast<double>(v) + 0.5) * inv) : v / w;
  }
};

// off = position - first tap: is it one of the n taps step apart?
inline bool on_tap(int64_t off, int64_t n, int64_t step) {
  if (step == 1) return static_cast<uint64_t>(off) < static_cast<uint64_t>(n);
  return (off >= 0) & (off % step == 0) & (off / step < n);
}

// Vectorisable check of n indices v[k] against windows rows [h_lo, h_hi) x columns [w_lo, w_hi),
// bounds per element (HPer / WPer: element k uses [k]) or shared ([0]), for undilated windows of
// planes with at most 2^48 elements. All arithmetic is exact in double: v is converted through
// its bits, the row is (v + 0.5)/w - 0.5 (within 0.5 - 0.5/w of it, minus rounding error far
// below 0.5/w) rounded to nearest, the column v - row*w. Returns true when every index is valid.
template <bool HPer, bool WPer>
FC_ALWAYS_INLINE bool indices_in_windows(const int64_t* __restrict v, int64_t n,
                                         const double* __restrict h_lo,
                                         const double* __restrict h_hi,
                                         const double* __restrict w_lo,
                                         const double* __restrict w_hi, double in_w, double inv_w,
                                         double in_hw) {
  constexpr double k2p52 = 4503599627370496.0;   // 2^52: its bits | v is 2^52 + v
  constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52: (q + kRound) - kRound rounds q
  constexpr uint64_t kLow48 = (uint64_t(1) << 48) - 1, kExp = 0x4330000000000000ull;
  uint64_t high = 0;  // any of bits 48..63 set (negative or huge): invalid
  double bad = 0;     // a double flag keeps the loop vectorisable under SSE2
  for (int64_t k = 0; k < n; ++k) {
    const uint64_t u = static_cast<uint64_t>(v[k]);
    high |= u;
    const uint64_t bits = (u & kLow48) | kExp;
    double dv;
    std::memcpy(&dv, &bits, sizeof dv);
    dv -= k2p52;
    const double q = (dv + 0.5) * inv_w - 0.5;
    const double ih = (q + kRound) - kRound;  // exact for |q| < 2^51, q may be -0.5 < q < 0
    const double iw = dv - ih * in_w;
    const int64_t kh = HPer ? k : 0, kw = WPer ? k : 0;
    const bool ok =
        (dv < in_hw) & (ih >= h_lo[kh]) & (ih < h_hi[kh]) & (iw >= w_lo[kw]) & (iw < w_hi[kw]);
    bad = ok ? bad : 1.0;
  }
  return bad == 0 && (high >> 48) == 0;
}

// Checks every index before any grad_x write; throws std::invalid_argument naming the first bad
// one (in array order, whatever the thread count).
void validate_indices(const char* fn, const int64_t* ind, const Shape& s, const Geom& g) {
  if (s.images == 0 || s.C == 0) return;
  const int64_t in_hw = s.in_h * s.in_w, in_w = s.in_w, C = s.C, out_w = s.out_w;
  const int64_t row_len = out_w * C, img_len = s.out_h * row_len;  // index elements
  const RowDiv div(in_w, in_hw);
  const int64_t dh = g.h.step, dw = g.w.step;
  const double in_w_d = static_cast<double>(in_w), inv_w = 1.0 / in_w_d,
               in_hw_d = static_cast<double>(in_hw);
  // Exact scalar check of the indices of one image at element positions [e0, e1): the first bad
  // position, or -1.
  const auto scan = [&](const int64_t* id, int64_t e0, int64_t e1) -> int64_t {
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t oh = e / row_len, ow = (e / C) % out_w, v = id[e];
      const bool in_range = static_cast<uint64_t>(v) < static_cast<uint64_t>(in_hw);
      const int64_t vv = in_range ? v : 0;
      const int64_t ih = div(vv), iw = vv - ih * in_w;
      if (!(in_range & on_tap(ih - g.h.first[oh], g.h.count[oh], dh) &
            on_tap(iw - g.w.first[ow], g.w.count[ow], dw)))
        return e;
    }
    return -1;
  };
  // Vector path: per-element bound tables for a whole image when it is small (runs of many rows),
  // else per output row (NCHW: the column table itself; NHWC: columns repeated C times when the
  // row is small), else per pixel (NHWC, large C).
  constexpr int64_t kTable = 8192;
  const bool vec = dh == 1 && dw == 1 && in_hw <= (int64_t(1) << 48);
  const bool img_tab = vec && img_len <= kTable;
  const bool row_tab = vec && !img_tab && (C == 1 || row_len <= kTable);
  std::vector<double> hl, hh, wl, wh;
  if (img_tab || (row_tab && C > 1)) {
    const int64_t len = img_tab ? img_len : row_len;
    hl.resize(len), hh.resize(len), wl.resize(len), wh.resize(len);
    for (int64_t e = 0; e < len; ++e) {
      const int64_t oh = e / row_len, ow = (e / C) % out_w;
      hl[e] = g.h.lo_d[oh], hh[e] = g.h.hi_d[oh], wl[e] = g.w.lo_d[ow], wh[e] = g.w.hi_d[ow];
    }
  }
  const double* wlr = C == 1 ? g.w.lo_d.data() : wl.data();  // column bounds of one output row
  const double* whr = C == 1 ? g.w.hi_d.data() : wh.data();
  const Split sp = make_split(s.images, s.out_h, static_cast<double>(row_len), true);
  std::vector<int64_t> bad(static_cast<size_t>(sp.ntasks), -1);  // first bad flat position per task
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    int64_t i0, i1, r0, r1;
    sp.get(t, i0, i1, r0, r1);
    for (int64_t img = i0; img < i1; ++img) {
      const int64_t* id = ind + img * img_len;
      int64_t e = -1;
      if (img_tab) {
        const int64_t e0 = r0 * row_len, e1 = r1 * row_len;
        if (!indices_in_windows<true, true>(id + e0, e1 - e0, hl.data() + e0, hh.data() + e0,
                                            wl.data() + e0, wh.data() + e0, in_w_d, inv_w, in_hw_d))
          e = scan(id, e0, e1);
      } else {
        for (int64_t oh = r0; oh < r1 && e < 0; ++oh) {
          const int64_t e0 = oh * row_len;
          const double *hlo = &g.h.lo_d[oh], *hhi = &g.h.hi_d[oh];
          bool ok = true;
          if (row_tab) {
            ok = indices_in_windows<false, true>(id + e0, row_len, hlo, hhi, wlr, whr, in_w_d,
                                                 inv_w, in_hw_d);
          } else if (vec) {  // NHWC with long rows: one shared window per pixel
            for (int64_t ow = 0; ow < out_w && ok; ++ow)
              ok = indices_in_windows<false, false>(id + e0 + ow * C, C, hlo, hhi, &g.w.lo_d[ow],
                                                    &g.w.hi_d[ow], in_w_d, inv_w, in_hw_d);
          } else {
            ok = false;  // dilated windows: the exact scalar scan only
          }
          if (!ok) e = scan(id, e0, e0 + row_len);
        }
      }
      if (e >= 0) {
        bad[t] = img * img_len + e;
        return;
      }
    }
  });
  for (int64_t e : bad) {
    if (e < 0) continue;
    // Decode the flat position into the array's own index order.
    const int64_t c = s.nhwc ? e % C : (e / (s.out_h * out_w)) % s.channels;
    const int64_t pix = s.nhwc ? e / C : e;
    const int64_t ow = pix % out_w, oh = (pix / out_w) % s.out_h;
    const int64_t n = s.nhwc ? pix / (out_w * s.out_h) : pix / (out_w * s.out_h) / s.channels;
    std::ostringstream where;
    if (s.nhwc)
      where << "indices[" << n << ", " << oh << ", " << ow << ", " << c << "] = " << ind[e];
    else
      where << "indices[" << n << ", " << c << ", " << oh << ", " << ow << "] = " << ind[e];
    const int64_t v = ind[e];
    if (static_cast<uint64_t>(v) >= static_cast<uint64_t>(in_hw))
      fail(fn, where.str(),
           " is out of range: an index must be a flat position ih*in_w + iw in [0, ", in_hw,
           ") of the ", s.in_h, "x", in_w, " input plane");
    const int64_t h0 = g.h.first[oh], w0 = g.w.first[ow];
    fail(fn, where.str(), " (row ", v / in_w, ", column ", v % in_w,
         ") is not in the pooling window of that output, which reads rows ", h0, "..",
         h0 + (g.h.count[oh] - 1) * g.h.step, " step ", g.h.step, " and columns ", w0, "..",
         w0 + (g.w.count[ow] - 1) * g.w.step, " step ", g.w.step, " of the ", s.in_h, "x", in_w,
         " input plane");
  }
}

}  // namespace

// ---- public entry points ------------------------------------------------------------------------

void check_pool2d_params(const char* fn, const Pool2dParams& p, bool is_max) {
  (void)pool_geom(fn, p, is_max);
}

void check_adaptive_pool2d_params(const char* fn, const Pool2dParams& p) {
  (void)adaptive_geom(fn, p);
}

template <typename T>
void max_pool2d_forward(const T* x, T* out, int64_t* indices, const Pool2dParams& p) {
  const Geom g = pool_geom("max_pool2d_forward", p, true);
  max_forward(x, out, indices, shape_of(p), g);
}

template <typename T>
void max_pool2d_backward(const T* grad_out, const int64_t* indices, T* grad_x,
                         const Pool2dParams& p) {
  const char* fn = "max_pool2d_backward";
  const Geom g = pool_geom(fn, p, true);
  const Shape s = shape_of(p);
  validate_indices(fn, indices, s, g);
  max_backward(grad_out, indices, grad_x, s, g);
}

template <typename T>
void avg_pool2d_forward(const T* x, T* out, const Pool2dParams& p) {
  const Geom g = pool_geom("avg_pool2d_forward", p, false);
  avg_forward(x, out, shape_of(p), g, AvgDiv{p.divisor_override, p.count_include_pad, false});
}

template <typename T>
void avg_pool2d_backward(const T* grad_out, T* grad_x, const Pool2dParams& p) {
  const Geom g = pool_geom("avg_pool2d_backward", p, false);
  avg_backward(grad_out, grad_x, shape_of(p), g,
               AvgDiv{p.divisor_override, p.count_include_pad, false});
}

// Runs body(img) for every image, whole images per task, about kGrain elements per task.
template <typename Body>
void for_images(const Shape& s, Body&& body) {
  const int64_t per =
      std::max<int64_t>(1, static_cast<int64_t>(kGrain) / std::max<int64_t>(s.in_img(), 1));
  parallel_for((s.images + per - 1) / per, [&](int64_t t, int) {
    const int64_t i1 = std::min(s.images, (t + 1) * per);
    for (int64_t img = t * per; img < i1; ++img) body(img);
  });
}

// Global average (1 x 1 output), the common case of adaptive average pooling: a plain
// reduction, so NCHW planes are summed with 8 independent partial sums (vectorisable, fixed
// order) instead of one latency-bound chain, and the backward pass is a fill.
template <typename T>
void global_avg_forward(const T* x, T* out, const Shape& s) {
  const int64_t hw = s.in_h * s.in_w, C = s.C;
  const T dh = static_cast<T>(s.in_h), dw = static_cast<T>(s.in_w);
  for_images(s, [&](int64_t img) {
    const T* xi = x + img * hw * C;
    T* o = out + img * C;
    if (!s.nhwc) {
      T acc[8] = {};
      int64_t e = 0;
      for (; e + 8 <= hw; e += 8)
        for (int j = 0; j < 8; ++j) acc[j] += xi[e + j];
      for (; e < hw; ++e) acc[e & 7] += xi[e];
      const T sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      o[0] = sum / dh / dw;
    } else {
      std::fill(o, o + C, T(0));
      for (int64_t e = 0; e < hw; ++e)
        for (int64_t c = 0; c < C; ++c) o[c] += xi[e * C + c];
      for (int64_t c = 0; c < C; ++c) o[c] = o[c] / dh / dw;
    }
  });
}

template <typename T>
void global_avg_backward(const T* grad_out, T* grad_x, const Shape& s) {
  const int64_t hw = s.in_h * s.in_w, C = s.C;
  const T dh = static_cast<T>(s.in_h), dw = static_cast<T>(s.in_w);
  for_images(s, [&](int64_t img) {
    const T* go = grad_out + img * C;
    T* gx = grad_x + img * hw * C;
    if (!s.nhwc) {
      std::fill(gx, gx + hw, go[0] / dh / dw);
    } else {
      for (int64_t c = 0; c < C; ++c) gx[c] = go[c] / dh / dw;
      for (int64_t e = 1; e < hw; ++e) std::memcpy(gx + e * C, gx, sizeof(T) * C);
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* out, const Pool2dParams& p) {
  const Geom g = adaptive_geom("adaptive_avg_pool2d_forward", p);
  if (p.out_h == 1 && p.out_w == 1)
    global_avg_forward(x, out, shape_of(p));
  else
    avg_forward(x, out, shape_of(p), g, AvgDiv{0, true, true});
}

template <typename T>
void adaptive_avg_pool2d_backward(const T* grad_out, T* grad_x, const Pool2dParams& p) {
  const Geom g = adaptive_geom("adaptive_avg_pool2d_backward", p);
  if (p.out_h == 1 && p.out_w == 1)
    global_avg_backward(grad_out, grad_x, shape_of(p));
  else
    avg_backward(grad_out, grad_x, shape_of(p), g, AvgDiv{0, true, true});
}

template <typename T>
void adaptive_max_pool2d_forward(const T* x, T* out, int64_t* indices, const Pool2dParams& p) {
  const Geom g = adaptive_geom("adaptive_max_pool2d_forward", p);
  max_forward(x, out, indices, shape_of(p), g);
}

template <typename T>
void adaptive_max_pool2d_backward(const T* grad_out, const int64_t* indices, T* grad_x,
                                  const Pool2dParams& p) {
  const char* fn = "adaptive_max_pool2d_backward";
  const Geom g = adaptive_geom(fn, p);
  const Shape s = shape_of(p);
  validate_indices(fn, indices, s, g);
  max_backward(grad_out, indices, grad_x, s, g);
}

#define FC_POOL_INSTANTIATE(T)                                                               \
  template void max_pool2d_forward<T>(const T*, T*, int64_t*, const Pool2dParams&);          \
  template void max_pool2d_backward<T>(const T*, const int64_t*, T*, const Pool2dParams&);   \
  template void avg_pool2d_forward<T>(const T*, T*, const Pool2dParams&);                    \
  template void avg_pool2d_backward<T>(const T*, T*, const Pool2dParams&);                   \
  template void adaptive_avg_pool2d_forward<T>(const T*, T*, const Pool2dParams&);           \
  template void adaptive_avg_pool2d_backward<T>(const T*, T*, const Pool2dParams&);          \
  template void adaptive_max_pool2d_forward<T>(const T*, T*, int64_t*, const Pool2dParams&); \
  template void adaptive_max_pool2d_backward<T>(const T*, const int64_t*, T*, const Pool2dParams&);
FC_POOL_INSTANTIATE(float)
FC_POOL_INSTANTIATE(double)
#undef FC_POOL_INSTANTIATE

}  // namespace fastconv
