// Pooling drivers and inner loops (contracts in pool2d.h).
//
// One engine serves max, avg and adaptive pooling: an Axis table per spatial dimension lists, for
// every output row (column), the first input position its window reads and how many taps it has,
// so the inner loops never test bounds. NCHW runs as "NHWC with C = 1" over batch*channels planes
// (and NHWC with one channel as NCHW: the same memory); NHWC loops innermost over contiguous
// channels. Float rows go to the active ISA's SIMD kernels (KernelTable::pool_f32, generated from
// kernels/pool_simd.h): max / avg forward across width (NCHW, stride 1 or 2) or channels (NHWC),
// indices in the same pass, and gather kernels for max backward with non-overlapping windows and
// for windows 3 wide 2 apart (ResNet's 3x3 s2 pool). Max backward with overlapping windows on NCHW
// planes that fit in L2 scatters into a whole-plane buffer (any ISA, any T).
// Without them (scalar ISA, double) the portable loops below do the same arithmetic in the same
// order, so results are bitwise identical under every ISA.
//
// Threading: tasks are (images x output-row blocks) cut by a fixed work grain, never by the thread
// count. Backward: see "backward" below (row blocks own grad_x rows and replay, in output order,
// every output row that reaches them), so every grad_x element accumulates in row-major output
// order whatever the thread count.
#include "cpu/pool/pool2d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/check.h"
#include "cpu/dispatch.h"
#include "cpu/kernels/pool_kernels.h"
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

// Outputs this large (bytes) are written with non-temporal stores: they cannot stay in cache, and
// streaming them saves the read-for-ownership of every line.
constexpr double kStreamBytes = 8.0 * 1024 * 1024;
// NCHW planes larger than this (bytes) get their next rows prefetched (prefetch_rows).
constexpr int64_t kPrefetchPlane = 4096;

// dst[0, n) = src[0, n); non-temporal 16-byte stores (SSE2, the x86-64 baseline) when `nt`.
// Callers fence (stream_fence) before the data is read by another thread.
template <typename T>
void out_copy(T* dst, const T* src, int64_t n, bool nt) {
#if defined(__SSE2__)
  if (nt && n * static_cast<int64_t>(sizeof(T)) >= 64) {
    char* d = reinterpret_cast<char*>(dst);
    const char* s = reinterpret_cast<const char*>(src);
    int64_t bytes = n * static_cast<int64_t>(sizeof(T));
    const int64_t head = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15);
    std::memcpy(d, s, static_cast<size_t>(head));  // dst is T-aligned: head is whole elements
    d += head, s += head, bytes -= head;
    int64_t i = 0;
    for (; i + 16 <= bytes; i += 16)
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    std::memcpy(d + i, s + i, static_cast<size_t>(bytes - i));
    return;
  }
#endif
  (void)nt;
  if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(n));
}

template <typename T>
void out_zero(T* dst, int64_t n, bool nt) {
#if defined(__SSE2__)
  if (nt && n * static_cast<int64_t>(sizeof(T)) >= 64) {
    char* d = reinterpret_cast<char*>(dst);
    int64_t bytes = n * static_cast<int64_t>(sizeof(T));
    const int64_t head = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15);
    std::memset(d, 0, static_cast<size_t>(head));
    d += head, bytes -= head;
    const __m128i z = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 16 <= bytes; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), z);
    std::memset(d + i, 0, static_cast<size_t>(bytes - i));
    return;
  }
#endif
  (void)nt;
  std::fill(dst, dst + n, T(0));
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Touches (prefetches into L1) the input rows [h0, h0 + nh) of an NCHW plane: the rows of the
// next output row's windows, issued one output row ahead. Measured (maxpool 2x2 s2 on 8 x 64
// planes of 224 x 224, 1 thread, with indices): 13.2 -> 8.9 ms (avgpool 6.0 -> 5.7); the
// hardware prefetchers do not run ahead of the kernels' pairs of short rows (896 B) on their own.
// Two or four rows ahead, into L2, or prefetching the output rows for writing was no better.
// Windows that overlap vertically (3x3 s2) already hold most of the next window's rows: there
// the prefetch loop over the whole next window cost ~4 % (maxpool 3x3 s2 NCHW forward 3.06 ->
// 3.16 ms, Zen 3), so it is off; SepMax3s2's fused path prefetches just the two new rows.
template <typename T>
inline void prefetch_rows(const T* x, int64_t h0, int64_t nh, int64_t in_w) {
  constexpr int64_t line = 64 / sizeof(T);
  const T* p = x + h0 * in_w;
  for (int64_t e = 0; e < nh * in_w; e += line) __builtin_prefetch(p + e, 0, 3);
}

// Window geometry along one axis: output o reads input positions first[o] + i*step, i < count[o].
// size[o] is avg pooling's count_include_pad extent (window clipped to input + pad_hi only).
struct Axis {
  std::vector<int64_t> first, count, size;
  int64_t step = 1;
  bool overlap = false;            // some input position is read by two outputs (conservative)
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
    const bool full = start >= 0 && start + (keff - 1) < in;  // common case: no division
    const int64_t i0 = full ? 0 : start < 0 ? ceil_div(-start, dil) : 0;
    const int64_t i1 = full ? k : start < in ? std::min(k, ceil_div(in - start, dil)) : 0;
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
  bool layout_nhwc;  // the caller's layout (NHWC with one channel runs as NCHW: same memory)
  int64_t in_img() const { return in_h * in_w * C; }
  int64_t out_img() const { return out_h * out_w * C; }
};

Shape shape_of(const Pool2dParams& p) {
  const bool layout_nhwc = p.layout == Layout::NHWC;
  const bool nhwc = layout_nhwc && p.channels != 1;
  return Shape{nhwc,
               p.channels,
               nhwc ? p.channels : 1,
               nhwc ? p.batch : p.batch * p.channels,
               p.in_h,
               p.in_w,
               p.out_h,
               p.out_w,
               layout_nhwc};
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

// The SIMD row kernels of the active ISA for T (float only), or null: then the portable loops.
template <typename T>
const PoolKernelsF32* simd_kernels(const Geom& g, int64_t in_w) {
  if constexpr (!std::is_same_v<T, float>) {
    return nullptr;
  } else {
    const PoolKernelsF32& k = kernels().pool_f32;
    // Tap offsets (and offset + 1 for the stride-2 loads) must be exact int32.
    if (k.lanes == 0 || g.max_offset(in_w) + 1 > 2147483647.0) return nullptr;
    return &k;
  }
}

// Tap offsets of an nh x nw window (row step dh, column step dw) in row-major window order.
inline void window_taps(int64_t nh, int64_t nw, int64_t dh, int64_t dw, std::vector<int32_t>& rel,
                        std::vector<int64_t>* pix) {
  rel.resize(static_cast<size_t>(nh * nw));
  if (pix) pix->resize(rel.size());
  for (int64_t i = 0, t = 0; i < nh; ++i)
    for (int64_t j = 0; j < nw; ++j, ++t) {
      rel[t] = static_cast<int32_t>(i * dh + j * dw);
      if (pix) (*pix)[t] = i * dh + j * dw;
    }
}

// NCHW max over windows 3 wide 2 apart, interior columns [a, a + n): each input row's 3-wide
// maxima (and winning column) are computed once into a ring of row buffers (max_row3s2) and
// combined down each window's rows (max_col3s2): by the max rule, the first maximum / last NaN of
// the rows' first maxima / last NaNs is the window's in row-major order. Rows of one plane, in
// increasing output row order.
class SepMax3s2 {
 public:
  SepMax3s2(const PoolKernelsF32* k, const Geom& g, int64_t in_h, int64_t in_w, int64_t a,
            int64_t b)
      : k_(k), g_(g), in_w_(in_w), a_(a) {
    if (!k) return;
    n_ = b - a;
    plane_ = in_h * in_w;
    if (n_ < k->lanes || g.h.k > kMaxRows) {
      n_ = 0;
      return;
    }
    stride_ = (n_ + k->lanes - 1) / k->lanes * k->lanes;
    // A power-of-two ring of >= k_h rows: the slot is h & (slots_ - 1), no division per row.
    slots_ = 1;
    while (slots_ < g.h.k) slots_ *= 2;
    m_.resize(static_cast<size_t>(slots_ * stride_));
    j_.resize(m_.size());
    tag_.assign(static_cast<size_t>(slots_), -1);
    // One partial window left of the interior (padding 1): each row's maximum over its columns
    // is kept beside the ring too, and the output combined from those like the interior's.
    if (a == 1) {
      edge_m_.resize(static_cast<size_t>(slots_));
      edge_j_.resize(static_cast<size_t>(slots_));
    }
  }
  // Whether row_max also writes output 0 of row oh (the driver then skips it).
  bool covers_edge(int64_t oh) const {
    return n_ > 0 && !edge_m_.empty() && g_.h.count[oh] <= kMaxRows;
  }
  // Outputs [a, a + n) of row oh (returns n; 0 when not usable).
  // Kept out of line: inlined into the row driver it left both short of registers (spills).
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((noinline))
#endif
  int64_t row_max(const float* x, int64_t oh, float* o, int64_t* id) {
    if (n_ == 0) return 0;
    const int64_t h0 = g_.h.first[oh], nh = g_.h.count[oh];
    const float* mp[kMaxRows];
    const int32_t* jp[kMaxRows];
    int32_t rel[kMaxRows];
    if (nh > kMaxRows) return 0;
    if (nh == 3 && k_->max_fused3s2 && tag_[h0 & (slots_ - 1)] == h0) {
      // The window's first row is in the ring: both passes at once for the other two rows.
      const int64_t start = (h0 + 1) * in_w_ + a_ * 2 - g_.w.pad_lo;
      // The next output row's two new input rows are fetched while this one computes (only
      // those: the ring holds the shared one). Their first touch was a serial miss in edge_row
      // (column 0), ahead of the hardware prefetcher on these short rows. Zen 4,
      // maxpool3x3s2p1_64@112 NCHW forward, in-process medians: 1 thread 3.7 -> 3.1-3.4 ms,
      // 2 threads 1.9 -> 1.6-1.7 ms.
      for (int64_t e = (h0 + 3) * in_w_, e1 = std::min(plane_, (h0 + 5) * in_w_); e < e1;
           e += 64 / int64_t(sizeof(float)))
        __builtin_prefetch(x + e, 0, 3);
      if (start + in_w_ + 2 * n_ + 1 < plane_) {
        const int64_t s0 = h0 & (slots_ - 1), s2 = (h0 + 2) & (slots_ - 1);
        if (!edge_m_.empty()) {
          float em = edge_m_[s0], e1;
          int64_t ej = edge_j_[s0], j1;
          edge_row(x, h0 + 1, e1, j1);
          edge_row(x, h0 + 2, edge_m_[s2], edge_j_[s2]);
          fold(e1, j1, em, ej);
          fold(edge_m_[s2], edge_j_[s2], em, ej);
          o[0] = em;
          if (id) id[0] = ej;
        }
        const int64_t base = h0 * in_w_ + a_ * 2 - g_.w.pad_lo;
        k_->max_fused3s2(x + start, in_w_, n_, m_.data() + s0 * stride_, j_.data() + s0 * stride_,
                         m_.data() + s2 * stride_, j_.data() + s2 * stride_, o + a_,
                         id ? id + a_ : nullptr, base);
        tag_[s2] = h0 + 2;
        return n_;
      }
    }
    for (int64_t i = 0; i < nh; ++i) {
      const int64_t h = h0 + i, sl = h & (slots_ - 1);
      float* m = m_.data() + sl * stride_;
      int32_t* j = j_.data() + sl * stride_;
      if (tag_[sl] != h) {
        const int64_t start = h * in_w_ + a_ * 2 - g_.w.pad_lo;
        if (start + 2 * n_ + 1 < plane_) {
          k_->max_row3s2(x + start, n_, m, j);
        } else {  // it reads one element past output n - 1's last tap: from a padded copy
          pad_.assign(static_cast<size_t>(2 * n_ + 2), 0.0f);
          std::copy(x + start, x + start + 2 * n_ + 1, pad_.begin());
          k_->max_row3s2(pad_.data(), n_, m, j);
        }
        if (!edge_m_.empty()) edge_row(x, h, edge_m_[sl], edge_j_[sl]);
        tag_[sl] = h;
      }
      mp[i] = m, jp[i] = j, rel[i] = static_cast<int32_t>(i * in_w_);
    }
    if (!edge_m_.empty()) {
      float em = edge_m_[h0 & (slots_ - 1)];
      int64_t ej = edge_j_[h0 & (slots_ - 1)];
      for (int64_t i = 1; i < nh; ++i)
        fold(edge_m_[(h0 + i) & (slots_ - 1)], edge_j_[(h0 + i) & (slots_ - 1)], em, ej);
      o[0] = em;
      if (id) id[0] = ej;
    }
    const int64_t base = h0 * in_w_ + a_ * 2 - g_.w.pad_lo;
    k_->max_col3s2(mp, jp, rel, nh, n_, o + a_, id ? id + a_ : nullptr, base);
    return n_;
  }

 private:
  // (m, j) = (v, vj) if v takes m by the max rule.
  static void fold(float v, int64_t vj, float& m, int64_t& j) {
    const bool u = takes(v, m);
    m = select(u, v, m);
    j = select(u, vj, j);
  }
  // Row h's maximum over output 0's columns, and its plane index.
  void edge_row(const float* x, int64_t h, float& em, int64_t& ej) const {
    const int64_t e0 = h * in_w_ + g_.w.first[0], ne = g_.w.count[0];
    em = x[e0];
    ej = e0;
    for (int64_t c = 1; c < ne; ++c) fold(x[e0 + c], e0 + c, em, ej);
  }
  static constexpr int64_t kMaxRows = 16;
  const PoolKernelsF32* k_;
  const Geom& g_;
  int64_t in_w_, a_, n_ = 0, stride_ = 0, slots_ = 0, plane_ = 0;
  std::vector<float> m_, pad_, edge_m_;
  std::vector<int32_t> j_;
  std::vector<int64_t> tag_, edge_j_;
};

template <typename T, bool IDX>
void max_rows_nchw(const T* x, T* out, int64_t* ind, Off<T>* off, const PoolKernelsF32* simd,
                   const Geom& g, int64_t in_h, int64_t in_w, int64_t out_w, int64_t r0,
                   int64_t r1) {
  const int64_t dh = g.h.step * in_w, dw = g.w.step;
  // Vector path for the interior columns when the stride is 1 or 2 and offsets fit the scratch.
  int64_t a = g.w.full_lo, b = g.w.full_hi;
  const int64_t S = g.w.stride;
  const bool use_simd = simd && b - a >= simd->lanes && (S == 1 || S == 2);
  const bool vec = use_simd || (off && b - a >= 4 && (S == 1 || S == 2));
  if (!vec) a = b = out_w;
  std::vector<int32_t> taps;
  int64_t taps_nh = -1;
  // Windows 3 wide 2 apart that overlap vertically: the two-pass kernels (SepMax3s2).
  const bool two_pass = use_simd && S == 2 && g.w.k == 3 && g.w.step == 1 && g.h.step == 1 &&
                        g.h.k > g.h.stride && simd->max_row3s2 != nullptr;
  SepMax3s2 sep(two_pass ? simd : nullptr, g, in_h, in_w, a, b);
  const bool prefetch =
      in_h * in_w * static_cast<int64_t>(sizeof(T)) > kPrefetchPlane && !g.h.overlap;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    if (prefetch && oh + 1 < r1) prefetch_rows(x, g.h.first[oh + 1], g.h.count[oh + 1], in_w);
    T* o = out + oh * out_w;
    int64_t* id = IDX ? ind + oh * out_w : nullptr;
    int64_t scratch_idx;
    for (int64_t ow = 0; ow < out_w; ++ow) {
      if (ow == a) {
        int64_t done = 0;
        if constexpr (std::is_same_v<T, float>) {
          if (two_pass) {
            done = sep.row_max(x, oh, o, IDX ? id : nullptr);
          } else if (use_simd) {
            if (nh != taps_nh) window_taps(nh, g.w.k, dh, dw, taps, nullptr), taps_nh = nh;
            const int64_t base = h0 * in_w + a * S - g.w.pad_lo;
            int64_t n = b - a;
            // The kernel reads S - 1 elements past the last tap of output n - 1: keep in the plane.
            const int64_t last = base + (n - 1) * S + taps.back() + (S - 1);
            if (last >= in_h * in_w) --n;
            done = (S == 1 ? simd->max_nchw_s1 : simd->max_nchw_s2)(
                x + base, taps.data(), nh * g.w.k, n, o + a, IDX ? id + a : nullptr, base);
          }
        }
        if (a + done < b) {
          if (off) {
            if (S == 1)
              max_row_interior<T, IDX, 1>(x, o, id, off, g, oh, in_w, a + done, b);
            else
              max_row_interior<T, IDX, 2>(x, o, id, off, g, oh, in_w, a + done, b);
          } else {
            for (int64_t c = a + done; c < b; ++c)
              max_one(x, h0 * in_w + g.w.first[c], nh, dh, g.w.count[c], dw, o[c],
                      IDX ? id[c] : scratch_idx);
          }
        }
        ow = b - 1;
        continue;
      }
      if (two_pass && ow == 0 && sep.covers_edge(oh)) continue;  // written by sep.row_max
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
// int64 indices are tracked directly in the index output (not vectorised under SSE2). With SIMD
// kernels (float), they do the leading multiple-of-lanes channels and these loops the rest.
template <typename T, bool IDX>
void max_rows_nhwc(const T* x, T* out, int64_t* ind, Off<T>* off, const PoolKernelsF32* simd,
                   const Geom& g, int64_t in_w, int64_t out_w, int64_t C, int64_t r0,
                   int64_t r1) {
  const int64_t dh = g.h.step * in_w, dw = g.w.step;
  std::vector<int32_t> rel;
  std::vector<int64_t> pix;
  int64_t tab_nh = -1, tab_nw = -1;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int64_t base = h0 * in_w + g.w.first[ow], nw = g.w.count[ow];
      T* o = out + (oh * out_w + ow) * C;
      int64_t* id = IDX ? ind + (oh * out_w + ow) * C : nullptr;
      int64_t c0 = 0;
      if constexpr (std::is_same_v<T, float>) {
        if (simd && C >= simd->lanes) {
          if (nh != tab_nh || nw != tab_nw) {
            window_taps(nh, nw, dh, dw, rel, &pix);
            tab_nh = nh, tab_nw = nw;
          }
          c0 = simd->max_nhwc(x + base * C, pix.data(), rel.data(), nh * nw, C, o, id, base);
        }
      }
      if (c0 == C) continue;
      const int64_t n = C - c0;
      const T* xb = x + c0;
      o += c0;
      if (IDX) id += c0;
      std::copy(xb + base * C, xb + base * C + n, o);
      if (IDX && off) std::fill(off, off + n, Off<T>(0));
      if (IDX && !off) std::fill(id, id + n, base);
      for (int64_t i = 0, row = base; i < nh; ++i, row += dh)
        for (int64_t j = (i == 0 ? 1 : 0); j < nw; ++j) {
          const int64_t pos = row + j * dw;
          if (!IDX)
            max_update(xb + pos * C, o, n);
          else if (off)
            max_update_idx(xb + pos * C, o, off, static_cast<Off<T>>(pos - base), n);
          else
            max_update_idx(xb + pos * C, o, id, pos, n);
        }
      if (IDX && off)
        for (int64_t c = 0; c < n; ++c) id[c] = base + static_cast<int64_t>(off[c]);
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

// Where forward output rows go: straight into the image's output, or, for outputs too large to
// stay in cache, through a scratch row copied out with non-temporal stores (no read for
// ownership of every output line).
template <typename T>
struct RowOut {
  T* out;
  int64_t row_len;
  T* buf;  // null: write in place
  T* row(int64_t oh) const { return buf ? buf : out + oh * row_len; }
  void done(int64_t oh) const {
    if (buf) out_copy(out + oh * row_len, buf, row_len, true);
  }
};

template <typename T>
void avg_rows_nchw(const T* __restrict x, const RowOut<T>& ro, const Geom& g, const AvgDiv& dv,
                   int64_t in_plane, int64_t in_w, int64_t out_w, int64_t r0, int64_t r1) {
  int64_t a = g.w.full_lo, b = g.w.full_hi;  // empty for adaptive pooling
  if (!(b - a >= 4 && (g.w.stride == 1 || g.w.stride == 2))) a = b = out_w;
  const PoolKernelsF32* simd = simd_kernels<T>(g, in_w);
  const int64_t S = g.w.stride;
  std::vector<int32_t> taps;
  int64_t taps_nh = -1;
  const bool prefetch = in_plane * static_cast<int64_t>(sizeof(T)) > kPrefetchPlane && !g.h.overlap;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    if (prefetch && oh + 1 < r1) prefetch_rows(x, g.h.first[oh + 1], g.h.count[oh + 1], in_w);
    T* __restrict orow = ro.row(oh);
    for (int64_t ow = 0; ow < out_w; ++ow) {
      if (ow == a) {
        int64_t done = 0;
        if constexpr (std::is_same_v<T, float>) {
          if (simd && nh > 0 && b - a >= simd->lanes) {
            if (nh != taps_nh) window_taps(nh, g.w.k, in_w, 1, taps, nullptr), taps_nh = nh;
            const int64_t base = h0 * in_w + a * S - g.w.pad_lo;
            int64_t n = b - a;
            // The stride-2 loads read one element past the last tap: keep in the plane.
            if (base + (n - 1) * S + taps.back() + (S - 1) >= in_plane)
              --n;
            T d1, d2;
            dv.get(nh, g.w.k, g.h.size[oh], g.w.size[a], d1, d2);
            done = (S == 1 ? simd->avg_nchw_s1 : simd->avg_nchw_s2)(
                x + base, taps.data(), nh * g.w.k, n, orow + a, d1);
          }
        }
        if (a + done < b) {
          if (S == 1)
            avg_row_interior<T, 1>(x, orow, g, dv, oh, in_w, a + done, b);
          else
            avg_row_interior<T, 2>(x, orow, g, dv, oh, in_w, a + done, b);
        }
        ow = b - 1;
        continue;
      }
      const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
      T& o = orow[ow];
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
    ro.done(oh);
  }
}

template <typename T>
void avg_rows_nhwc(const T* x, const RowOut<T>& ro, const Geom& g, const AvgDiv& dv, int64_t in_w,
                   int64_t out_w, int64_t C, int64_t r0, int64_t r1) {
  const PoolKernelsF32* simd = simd_kernels<T>(g, in_w);
  std::vector<int32_t> rel;
  std::vector<int64_t> pix;
  int64_t tab_nh = -1, tab_nw = -1;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t h0 = g.h.first[oh], nh = g.h.count[oh];
    T* orow = ro.row(oh);
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
      T* __restrict o = orow + ow * C;
      T d1, d2;
      dv.get(nh, nw, g.h.size[oh], g.w.size[ow], d1, d2);
      if constexpr (std::is_same_v<T, float>) {
        if (simd && !dv.adaptive && nh > 0 && nw > 0 && C >= simd->lanes) {
          if (nh != tab_nh || nw != tab_nw) {
            window_taps(nh, nw, in_w, 1, rel, &pix);
            tab_nh = nh, tab_nw = nw;
          }
          if (simd->avg_nhwc(x + (h0 * in_w + w0) * C, pix.data(), nh * nw, C, o, d1) == C)
            continue;
        }
      }
      std::fill(o, o + C, T(0));
      if (nh == 0 || nw == 0) continue;
      for (int64_t i = 0; i < nh; ++i)
        for (int64_t j = 0; j < nw; ++j) {
          const T* __restrict xp = x + ((h0 + i) * in_w + w0 + j) * C;
          for (int64_t c = 0; c < C; ++c) o[c] += xp[c];
        }
      for (int64_t c = 0; c < C; ++c) o[c] = o[c] / d1;
      if (dv.adaptive)
        for (int64_t c = 0; c < C; ++c) o[c] = o[c] / d2;
    }
    ro.done(oh);
  }
}

// ---- drivers ----------------------------------------------------------------------------------

// Forward tasks get kForwardGrain times the base grain: a forward pass streams its input, and
// cutting a plane into short row blocks (avgpool 2x2 on 224x224 NCHW planes: 4 blocks of 37 rows)
// cost about 5 % of a memory-bound run in task overhead and restarted streams.
constexpr double kForwardGrain = 8.0;

// Calls body(i0, i1, r0, r1): images [i0, i1) x output rows [r0, r1), one call per task.
template <typename Body>
void forward_tasks(const Shape& s, const Geom& g, Body&& body) {
  if (s.images == 0 || s.C == 0) return;
  const Split sp = make_split(
      s.images, s.out_h, static_cast<double>(s.out_w) * g.taps() * s.C / kForwardGrain, true);
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
    const PoolKernelsF32* simd = simd_kernels<T>(g, s.in_w);
    for (int64_t img = i0; img < i1; ++img) {
      const T* xi = x + img * s.in_img();
      T* oi = out + img * s.out_img();
      int64_t* ii = ind ? ind + img * s.out_img() : nullptr;
      if (s.nhwc) {
        if (ind)
          max_rows_nhwc<T, true>(xi, oi, ii, off, simd, g, s.in_w, s.out_w, s.C, r0, r1);
        else
          max_rows_nhwc<T, false>(xi, oi, ii, off, simd, g, s.in_w, s.out_w, s.C, r0, r1);
      } else {
        if (ind)
          max_rows_nchw<T, true>(xi, oi, ii, off, simd, g, s.in_h, s.in_w, s.out_w, r0, r1);
        else
          max_rows_nchw<T, false>(xi, oi, ii, off, simd, g, s.in_h, s.in_w, s.out_w, r0, r1);
      }
    }
  });
}

template <typename T>
void avg_forward(const T* x, T* out, const Shape& s, const Geom& g, const AvgDiv& dv) {
  const bool nt = static_cast<double>(s.images) * s.out_img() * sizeof(T) >= kStreamBytes;
  const int64_t row_len = s.out_w * s.C;
  forward_tasks(s, g, [&](int64_t i0, int64_t i1, int64_t r0, int64_t r1) {
    thread_local std::vector<T> buf;
    if (nt && buf.size() < static_cast<size_t>(row_len)) buf.resize(static_cast<size_t>(row_len));
    for (int64_t img = i0; img < i1; ++img) {
      const T* xi = x + img * s.in_img();
      const RowOut<T> ro{out + img * s.out_img(), row_len, nt ? buf.data() : nullptr};
      if (s.nhwc)
        avg_rows_nhwc(xi, ro, g, dv, s.in_w, s.out_w, s.C, r0, r1);
      else
        avg_rows_nchw(xi, ro, g, dv, s.in_h * s.in_w, s.in_w, s.out_w, r0, r1);
    }
    if (nt) stream_fence();
  });
}

// ---- backward -----------------------------------------------------------------------------------
//
// Tasks are (image, output-row block) pairs cut by sizes only. The task of output rows [r0, r1)
// owns grad_x rows [lo, hi) (lo = the smallest first window row of rows >= r0, hi likewise for
// r1: the blocks partition the rows) and computes them completely: it replays, in row-major output
// order, every output row whose window reaches into [lo, hi) (with overlapping windows, a few rows
// of the previous block: the halo), clipped to its rows. Every grad_x element therefore
// accumulates the same terms in the same order as one sequential pass, whatever the thread count.
// The rows are accumulated in a small window of zeroed scratch rows (RowWin) and written out once,
// in order, as soon as no later output row can reach them: grad_x is written exactly once (with
// non-temporal stores when large), never zero-filled and re-read.

// Along the height: end[o] = one past the last input row of window o (first[o] when empty),
// fmin[o] = min first[o'] over o' >= o (fmin[out] = in), pend[o] = max end[o'] over o' <= o.
struct RowPlan {
  std::vector<int64_t> end, fmin, pend;
  RowPlan(const Axis& a, int64_t in) {
    const size_t n = a.first.size();
    end.resize(n), fmin.resize(n + 1), pend.resize(n);
    for (size_t o = 0; o < n; ++o)
      end[o] = a.count[o] > 0 ? a.first[o] + (a.count[o] - 1) * a.step + 1 : a.first[o];
    fmin[n] = in;
    for (size_t o = n; o-- > 0;) fmin[o] = std::min(a.first[o], fmin[o + 1]);
    for (size_t o = 0; o < n; ++o) pend[o] = std::max(end[o], o ? pend[o - 1] : int64_t(0));
  }
  int64_t lo(int64_t r0) const { return r0 == 0 ? 0 : fmin[r0]; }
  int64_t hi(int64_t r1, int64_t out, int64_t in) const { return r1 == out ? in : fmin[r1]; }
  // First output row whose window may reach row `lo` or beyond (<= r0).
  int64_t halo(int64_t r0, int64_t lo) const {
    const auto it = std::upper_bound(pend.begin(), pend.begin() + r0, lo);
    return static_cast<int64_t>(it - pend.begin());
  }
};

// Grad_x rows [lo, hi) of one image, each row_len elements, written out exactly once and in
// order through a window of scratch rows [wlo, wlo + cap): rows [cur, top) are live (zeroed, then
// accumulated); rows below `cur` are written.
template <typename T>
class RowWin {
 public:
  // buf: the calling thread's scratch (reused across tasks; grown when needed).
  RowWin(T* gx, int64_t row_len, int64_t lo, int64_t hi, int64_t cap_rows, bool nt,
         std::vector<T>& buf)
      : gx_(gx), rl_(row_len), lo_(lo), hi_(hi), cur_(lo), top_(lo), wlo_(lo),
        cap_(std::max<int64_t>(1, std::min(cap_rows, hi - lo))), nt_(nt), buf_(buf) {
    if (buf_.size() < static_cast<size_t>(cap_ * rl_)) buf_.resize(static_cast<size_t>(cap_ * rl_));
    cap_ = static_cast<int64_t>(buf_.size()) / std::max<int64_t>(rl_, 1);
  }
  // Writes out the rows below `final_below`, makes rows [a, b) (clipped to [lo, hi)) live and
  // returns them: element q of the image (row q / row_len) is at (returned)[q - off], valid for
  // rows [*ra, *rb).
  T* open(int64_t final_below, int64_t a, int64_t b, int64_t& off, int64_t& ra, int64_t& rb) {
    flush_to(final_below);
    ra = std::max(a, std::max(lo_, cur_));
    rb = std::min(b, hi_);
    if (rb > top_) {
      if (rb - wlo_ > cap_) {  // slide: move the live rows to the front (grow if they do not fit)
        const int64_t live = top_ - cur_;
        if (rb - cur_ > cap_) {
          cap_ = rb - cur_;
          std::vector<T> nb(static_cast<size_t>(cap_ * rl_));
          std::copy(buf_.begin() + (cur_ - wlo_) * rl_, buf_.begin() + (top_ - wlo_) * rl_,
                    nb.begin());
          buf_.swap(nb);
        } else if (live > 0) {
          std::memmove(buf_.data(), buf_.data() + (cur_ - wlo_) * rl_,
                       sizeof(T) * static_cast<size_t>(live * rl_));
        }
        wlo_ = cur_;
      }
      std::fill(buf_.data() + (top_ - wlo_) * rl_, buf_.data() + (rb - wlo_) * rl_, T(0));
      top_ = rb;
    }
    off = wlo_ * rl_;
    return buf_.data();
  }
  void finish() { flush_to(hi_); }
  // Rows [a, b) (clipped to [lo, hi)) are final and each exactly `src` (row_len elements, row h
  // at src + (h - a) * row_len when `step`, else every row `src`): written out at once, the rows
  // below them first. For windows that never overlap vertically: nothing is live then.
  void emit(int64_t a, int64_t b, const T* src, bool step) {
    const int64_t ra = std::max(a, std::max(lo_, cur_)), rb = std::min(b, hi_);
    if (rb <= ra) return;
    flush_to(ra);
    for (int64_t h = ra; h < rb; ++h)
      out_copy(gx_ + h * rl_, src + (step ? (h - a) * rl_ : 0), rl_, nt_);
    cur_ = rb;
    if (top_ < cur_) top_ = wlo_ = cur_;
  }

 private:
  void flush_to(int64_t h) {
    h = std::min(h, hi_);
    if (h <= cur_) return;
    const int64_t live_end = std::min(h, top_);
    if (live_end > cur_)
      out_copy(gx_ + cur_ * rl_, buf_.data() + (cur_ - wlo_) * rl_, (live_end - cur_) * rl_, nt_);
    const int64_t z0 = std::max(cur_, top_);
    if (h > z0) out_zero(gx_ + z0 * rl_, (h - z0) * rl_, nt_);
    cur_ = h;
    if (top_ < cur_) top_ = wlo_ = cur_;
  }
  T* gx_;
  int64_t rl_, lo_, hi_, cur_, top_, wlo_, cap_;
  bool nt_;
  std::vector<T>& buf_;
};

// Runs body(t, img, r0, r1, win, rp) per task (row blocks of images); body calls win.open per
// output row it replays.
template <typename T, typename Body>
void backward_tasks(T* grad_x, const Shape& s, const Geom& g, Body&& body) {
  if (s.images == 0 || s.C == 0) return;
  const RowPlan rp(g.h, s.in_h);
  const int64_t row_len = s.in_w * s.C;
  const double in_rows = static_cast<double>(s.in_h) / std::max<int64_t>(s.out_h, 1);
  const double row_work =
      (static_cast<double>(s.out_w) * g.taps() + in_rows * static_cast<double>(s.in_w)) *
      static_cast<double>(s.C);
  Split sp = make_split(s.images, s.out_h, row_work, true);
  if (g.h.overlap && sp.blocks > 1 && sp.rpt < 8) {  // halo rows are replayed: keep blocks tall
    sp.rpt = std::min<int64_t>(s.out_h, 8);
    sp.blocks = ceil_div(s.out_h, sp.rpt);
    sp.ntasks = s.images * sp.blocks;
  }
  const bool nt = static_cast<double>(s.images) * s.in_img() * sizeof(T) >= kStreamBytes;
  const int64_t span = static_cast<int64_t>(g.h.reach) + 1;
  const int64_t cap = std::max<int64_t>(
      2 * span + 2, static_cast<int64_t>(65536 / sizeof(T)) / std::max<int64_t>(row_len, 1));
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    int64_t i0, i1, r0, r1;
    sp.get(t, i0, i1, r0, r1);
    const int64_t lo = rp.lo(r0), hi = rp.hi(r1, s.out_h, s.in_h);
    thread_local std::vector<T> buf;  // scratch rows, reused by this thread's later tasks
    for (int64_t img = i0; img < i1; ++img) {
      RowWin<T> win(grad_x + img * s.in_img(), row_len, lo, hi, cap, nt, buf);
      if (!body(img, r0, r1, lo, win, rp)) break;
      win.finish();
    }
    if (nt) stream_fence();
    // Keep small scratch for the next task; give back what only huge rows needed.
    if (buf.capacity() * sizeof(T) > (size_t(8) << 20)) std::vector<T>().swap(buf);
  });
}

// Divisor of avg output (oh, ow) when the width axis has full windows: the interior columns
// [full_lo, full_hi) share one, computed once per row.
template <typename T>
void avg_row_values(const T* go, T* d, const Geom& g, const AvgDiv& dv, int64_t oh, int64_t out_w,
                    int64_t C) {
  const int64_t nh = g.h.count[oh];
  int64_t a = g.w.full_lo, b = g.w.full_hi;
  if (dv.adaptive || b <= a) a = b = out_w;
  for (int64_t ow = 0; ow < out_w; ++ow) {
    if (ow == a) {
      T d1, d2;
      dv.get(nh, g.w.k, g.h.size[oh], g.w.size[a], d1, d2);
      const T* __restrict gp = go + a * C;
      T* __restrict dp = d + a * C;
      for (int64_t e = 0, n = (b - a) * C; e < n; ++e) dp[e] = gp[e] / d1;
      ow = b - 1;
      continue;
    }
    T d1, d2;
    const int64_t nw = g.w.count[ow];
    dv.get(nh, nw, g.h.size[oh], g.w.size[ow], d1, d2);
    for (int64_t c = 0; c < C; ++c) {
      T v = go[ow * C + c] / d1;
      if (dv.adaptive) v = v / d2;
      d[ow * C + c] = (nh == 0 || nw == 0) ? T(0) : v;
    }
  }
}

// Is flat index v one of the taps of a window whose first tap is `lo`, with nh rows dhw apart
// and nw consecutive columns (nw <= in_w)? Unsigned arithmetic: huge or negative v never match.
FC_ALWAYS_INLINE bool on_window(int64_t v, int64_t lo, int64_t nh, int64_t dhw, int64_t nw) {
  const uint64_t rel = static_cast<uint64_t>(v) - static_cast<uint64_t>(lo);
  bool ok = false;
  for (int64_t i = 0; i < nh; ++i)
    ok |= rel - static_cast<uint64_t>(i * dhw) < static_cast<uint64_t>(nw);
  return ok;
}

// Scatter of max backward. With `fused` (undilated columns, at most kFusedRows window rows) each
// index is checked as it is used; otherwise `first_bad` checks a task's indices first. The first
// bad position of a task goes to bad_out and ends the task.
constexpr int64_t kFusedRows = 8;

template <typename T>
void max_backward(const T* grad_out, const int64_t* ind, T* grad_x, const Shape& s, const Geom& g,
                  bool fused, const std::function<int64_t(const int64_t*, int64_t, int64_t)>& first_bad,
                  std::vector<int64_t>& bad_out) {
  const int64_t C = s.C, out_w = s.out_w, in_w = s.in_w, rl = in_w * C;
  const bool clip = g.h.overlap;
  const int64_t dhw = g.h.step * in_w;
  // Gather kernels (float): windows overlap neither vertically (!clip) nor horizontally.
  const PoolKernelsF32* simd = simd_kernels<T>(g, in_w);
  const bool no_w_overlap = !g.w.overlap && g.w.step == 1;
  const bool k2 = simd && simd->max_bwd_nchw_k2 && no_w_overlap && g.w.k == 2 &&
                  g.w.stride == 2 && g.w.full_hi - g.w.full_lo >= simd->lanes;
  const bool gather_nhwc = simd && simd->max_bwd_nhwc && no_w_overlap && C >= simd->lanes;
  // Windows that tile whole rows (no overlap, every column in one full window) under a gather
  // kernel: the kernel writes every element of its rows, so they go to a scratch of one
  // window's rows and straight out (RowWin::emit), never zeroed and copied through the window.
  // Measured (maxpool 2x2 s2, 8 x 64 x 224 x 224, 1 thread): NHWC 15.8 -> 10.1 ms.
  bool tiles = !clip && no_w_overlap && g.w.full_lo == 0 && g.w.full_hi == out_w &&
               out_w * g.w.k == in_w && (C == 1 ? k2 : gather_nhwc);
  for (int64_t o = 0; tiles && o < s.out_h; ++o) tiles = g.h.count[o] == g.h.k;
  // The row check kernel is index-only: any T (the float table's entry serves double too).
  const auto row_check = kernels().pool_f32.check_row;
  const auto run_check = kernels().pool_f32.check_run;
  std::mutex mu;
  backward_tasks(grad_x, s, g, [&](int64_t img, int64_t r0, int64_t r1, int64_t lo, RowWin<T>& win,
                                   const RowPlan& rp) {
    const T* go = grad_out + img * s.out_img();
    const int64_t* id = ind + img * s.out_img();
    std::vector<int32_t> taps_rel;
    std::vector<int64_t> taps_pix;
    int64_t tab_nh = -1, tab_nw = -1;
    std::vector<T> rows(tiles ? static_cast<size_t>(g.h.k * rl) : 0);  // one window's rows
    const auto report = [&](int64_t e) {
      std::lock_guard<std::mutex> lock(mu);
      bad_out.push_back(img * s.out_img() + e);
      return false;
    };
    if (!fused) {
      const int64_t e = first_bad(id, r0, r1);
      if (e >= 0) return report(e);
    }
    for (int64_t oh = clip ? rp.halo(r0, lo) : r0; oh < r1; ++oh) {
      int64_t off, ra, rb;
      T* w;
      if (tiles) {
        w = rows.data(), off = g.h.first[oh] * rl;
        ra = g.h.first[oh], rb = ra + g.h.count[oh];
      } else {
        w = win.open(std::max(rp.fmin[oh], lo), g.h.first[oh], rp.end[oh], off, ra, rb);
      }
      const bool check = fused && oh >= r0;
      if (rb <= ra && !check) continue;
      const int64_t* io = id + oh * out_w * C;
      const T* gr = go + oh * out_w * C;
      const int64_t b0 = g.h.first[oh] * in_w, nh = g.h.count[oh];
      const int64_t* w0 = g.w.first.data();
      const int64_t* nw = g.w.count.data();
      if (!clip) {  // every valid index lies in the live rows
        // Scalar: check (when fused) and accumulate outputs [o0, o1), channels from c0 on.
        const auto scalar = [&](int64_t o0, int64_t o1, int64_t c0) -> bool {
          for (int64_t o = o0; o < o1; ++o, c0 = 0) {
            const int64_t l0 = b0 + w0[o], n0 = nw[o];
            for (int64_t c = c0; c < C; ++c) {
              const int64_t v = io[o * C + c];
              if (check && !on_window(v, l0, nh, dhw, n0)) return report((oh * out_w + o) * C + c);
              w[v * C + c - off] += gr[o * C + c];
            }
          }
          return true;
        };
        bool simd_done = false;
        if constexpr (std::is_same_v<T, float>) {
          if (C == 1 && k2) {
            const int64_t a = g.w.full_lo, b = g.w.full_hi, l0 = b0 + w0[a];
            if (!scalar(0, a, 0)) return false;
            const int64_t done = simd->max_bwd_nchw_k2(gr + a, io + a, b - a, nh, dhw,
                                                       w + l0 - off, dhw, l0);
            if (!scalar(a + done, out_w, 0)) return false;
            simd_done = true;
          } else if (C > 1 && gather_nhwc) {
            for (int64_t o = 0; o < out_w; ++o) {
              const int64_t l0 = b0 + w0[o];
              if (nh != tab_nh || nw[o] != tab_nw) {
                window_taps(nh, nw[o], dhw, 1, taps_rel, &taps_pix);
                tab_nh = nh, tab_nw = nw[o];
              }
              const int64_t done = simd->max_bwd_nhwc(gr + o * C, io + o * C, taps_pix.data(),
                                                      taps_rel.data(), nh * nw[o], C,
                                                      w + l0 * C - off, l0);
              if (done < C && !scalar(o, o + 1, done)) return false;
            }
            simd_done = true;
          }
        }
        if (!simd_done && C == 1 && check && row_check) {
          const int64_t k = row_check(io, out_w, w0, nw, b0, nh, dhw);
          for (int64_t o = k; o < out_w; ++o)
            if (!on_window(io[o], b0 + w0[o], nh, dhw, nw[o])) return report(oh * out_w + o);
          for (int64_t o = 0; o < out_w; ++o) w[io[o] - off] += gr[o];
          simd_done = true;
        }
        if (!simd_done && !scalar(0, out_w, 0)) return false;
        if (tiles) win.emit(ra, rb, rows.data(), true);
      } else {  // halo rows are checked by their own task: clip every position to the live rows
        const uint64_t qlo = static_cast<uint64_t>(ra * rl);
        const uint64_t qn = rb > ra ? static_cast<uint64_t>((rb - ra) * rl) : 0;
        const uint64_t uC = static_cast<uint64_t>(C);
        if (C == 1) {
          bool chk = check;
          if (chk && row_check) {  // vector check of the row first, then the plain scatter
            const int64_t k = row_check(io, out_w, w0, nw, b0, nh, dhw);
            for (int64_t o = k; o < out_w; ++o)
              if (!on_window(io[o], b0 + w0[o], nh, dhw, nw[o])) return report(oh * out_w + o);
            chk = false;
          }
          for (int64_t o = 0; o < out_w; ++o) {
            const int64_t v = io[o];
            if (chk && !on_window(v, b0 + w0[o], nh, dhw, nw[o])) return report(oh * out_w + o);
            const uint64_t q = static_cast<uint64_t>(v);
            if (q - qlo < qn) w[static_cast<int64_t>(q) - off] += gr[o];
          }
          continue;
        }
        for (int64_t o = 0; o < out_w; ++o) {
          const int64_t l0 = b0 + w0[o], n0 = nw[o];
          bool chk = check;
          if (chk && run_check) {  // vector check of the pixel's indices, then a plain scatter
            for (int64_t c = run_check(io + o * C, C, l0, n0, nh, dhw); c < C; ++c)
              if (!on_window(io[o * C + c], l0, nh, dhw, n0))
                return report((oh * out_w + o) * C + c);
            chk = false;
          }
          for (int64_t c = 0; c < C; ++c) {
            const int64_t v = io[o * C + c];
            if (chk && !on_window(v, l0, nh, dhw, n0)) return report((oh * out_w + o) * C + c);
            const uint64_t q = static_cast<uint64_t>(v) * uC + static_cast<uint64_t>(c);
            if (q - qlo < qn) w[static_cast<int64_t>(q) - off] += gr[o * C + c];
          }
        }
      }
    }
    return true;
  });
}

template <typename T>
void avg_backward(const T* grad_out, T* grad_x, const Shape& s, const Geom& g, const AvgDiv& dv) {
  const int64_t C = s.C, in_w = s.in_w, out_w = s.out_w, rl = in_w * C;
  // Columns never overlap: one expanded row (each column holds its window's value, gaps 0) is
  // added to every input row of the window.
  const bool expand = !g.w.overlap;
  const PoolKernelsF32* simd = nullptr;
  if constexpr (std::is_same_v<T, float>) simd = kernels().pool_f32.lanes ? &kernels().pool_f32 : nullptr;
  // Interior columns tile the row 2 apart (C == 1): the expansion is a lane duplication.
  const bool dup = expand && C == 1 && g.w.k == 2 && g.w.stride == 2 && g.w.step == 1 &&
                   g.w.full_hi - g.w.full_lo >= 1;
  // Rows never overlap either: every grad_x row of a window is that expanded row, written out
  // directly (RowWin::emit) instead of zeroed, accumulated into and copied. Measured (avgpool
  // 2x2 s2, 8 x 64 x 224 x 224, 1 thread, medians of 4 alternating runs): NCHW 12.3 -> 9.3 ms,
  // NHWC 14.8 -> 9.6 ms.
  const bool direct = expand && !g.h.overlap;
  backward_tasks(grad_x, s, g, [&](int64_t img, int64_t r0, int64_t r1, int64_t lo, RowWin<T>& win,
                                   const RowPlan& rp) {
    const T* go = grad_out + img * s.out_img();
    std::vector<T> d(static_cast<size_t>(out_w * C)), r(expand ? static_cast<size_t>(rl) : 0);
    for (int64_t oh = g.h.overlap ? rp.halo(r0, lo) : r0; oh < r1; ++oh) {
      int64_t off = 0, ra = 0, rb = 0;
      T* w = direct ? nullptr
                    : win.open(std::max(rp.fmin[oh], lo), g.h.first[oh], rp.end[oh], off, ra, rb);
      if ((!direct && rb <= ra) || g.h.count[oh] == 0) continue;
      avg_row_values(go + oh * out_w * C, d.data(), g, dv, oh, out_w, C);
      if (direct)  // d + 0: what adding d to a zeroed element gives (-0 becomes +0)
        for (T& v : d) v += T(0);
      if (expand) {
        T* __restrict rr = r.data();
        std::fill(r.begin(), r.end(), T(0));
        int64_t ow = 0;
        if constexpr (std::is_same_v<T, float>) {
          if (dup && simd) {
            const int64_t a = g.w.full_lo, b = g.w.full_hi;
            for (; ow < a; ++ow)
              for (int64_t j = 0; j < g.w.count[ow]; ++j) rr[g.w.first[ow] + j] = d[ow];
            simd->dup2(d.data() + a, b - a, rr + g.w.first[a]);
            ow = b;
          }
        }
        for (; ow < out_w; ++ow) {
          const T* __restrict dp = d.data() + ow * C;
          for (int64_t j = 0; j < g.w.count[ow]; ++j) {
            T* __restrict rp2 = rr + (g.w.first[ow] + j) * C;
            for (int64_t c = 0; c < C; ++c) rp2[c] = dp[c];
          }
        }
        if (direct) {
          win.emit(g.h.first[oh], g.h.first[oh] + g.h.count[oh], rr, false);
          continue;
        }
        for (int64_t h = ra; h < rb; ++h) {
          T* __restrict wr = w + h * rl - off;
          for (int64_t e = 0; e < rl; ++e) wr[e] += rr[e];
        }
      } else {
        if (C == 1) {
          for (int64_t ow = 0; ow < out_w; ++ow) {
            const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
            const T dv1 = d[ow];
            for (int64_t h = ra; h < rb; ++h) {
              T* __restrict wr = w + h * in_w + w0 - off;
              for (int64_t j = 0; j < nw; ++j) wr[j] += dv1;
            }
          }
          continue;
        }
        for (int64_t ow = 0; ow < out_w; ++ow) {
          const int64_t w0 = g.w.first[ow], nw = g.w.count[ow];
          const T* __restrict dp = d.data() + ow * C;
          for (int64_t h = ra; h < rb; ++h)
            for (int64_t j = 0; j < nw; ++j) {
              T* __restrict wr = w + (h * in_w + w0 + j) * C - off;
              for (int64_t c = 0; c < C; ++c) wr[c] += dp[c];
            }
        }
      }
    }
    return true;
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

// Index checks for max backward, run by each backward task on its own output rows before it
// scatters them. first_bad(id, r0, r1): the first invalid element position (relative to the image
// `id` points to) in output rows [r0, r1), or -1.
class IndexCheck {
 public:
  IndexCheck(const Shape& s, const Geom& g)
      : g_(g), hlo_(bounds(g.h, false)), hhi_(bounds(g.h, true)), wlo_(bounds(g.w, false)),
        whi_(bounds(g.w, true)), in_hw_(s.in_h * s.in_w), in_w_(s.in_w), C_(s.C), out_w_(s.out_w),
        row_len_(s.out_w * s.C), img_len_(s.out_h * s.out_w * s.C), div_(s.in_w, in_hw_),
        in_w_d_(static_cast<double>(s.in_w)), inv_w_(1.0 / in_w_d_),
        in_hw_d_(static_cast<double>(in_hw_)) {
    // Vector path: per-element bound tables for a whole image when it is small (runs of many
    // rows), else per output row (NCHW: the column table itself; NHWC: columns repeated C times
    // when the row is small), else per pixel (NHWC, large C).
    constexpr int64_t kTable = 8192;
    vec_ = g.h.step == 1 && g.w.step == 1 && in_hw_ <= (int64_t(1) << 48);
    img_tab_ = vec_ && img_len_ <= kTable;
    row_tab_ = vec_ && !img_tab_ && (C_ == 1 || row_len_ <= kTable);
    if (img_tab_ || (row_tab_ && C_ > 1)) {
      const int64_t len = img_tab_ ? img_len_ : row_len_;
      hl_.resize(len), hh_.resize(len), wl_.resize(len), wh_.resize(len);
      for (int64_t e = 0; e < len; ++e) {
        const int64_t oh = e / row_len_, ow = (e / C_) % out_w_;
        hl_[e] = hlo_[oh], hh_[e] = hhi_[oh], wl_[e] = wlo_[ow], wh_[e] = whi_[ow];
      }
    }
  }

  int64_t first_bad(const int64_t* id, int64_t r0, int64_t r1) const {
    if (img_tab_) {
      const int64_t e0 = r0 * row_len_, e1 = r1 * row_len_;
      if (indices_in_windows<true, true>(id + e0, e1 - e0, hl_.data() + e0, hh_.data() + e0,
                                         wl_.data() + e0, wh_.data() + e0, in_w_d_, inv_w_,
                                         in_hw_d_))
        return -1;
      return scan(id, e0, e1);
    }
    const double* wlr = C_ == 1 ? wlo_.data() : wl_.data();  // column bounds of one row
    const double* whr = C_ == 1 ? whi_.data() : wh_.data();
    for (int64_t oh = r0; oh < r1; ++oh) {
      const int64_t e0 = oh * row_len_;
      const double *hlo = &hlo_[oh], *hhi = &hhi_[oh];
      bool ok = true;
      if (row_tab_) {
        ok = indices_in_windows<false, true>(id + e0, row_len_, hlo, hhi, wlr, whr, in_w_d_,
                                             inv_w_, in_hw_d_);
      } else if (vec_) {  // NHWC with long rows: one shared window per pixel
        for (int64_t ow = 0; ow < out_w_ && ok; ++ow)
          ok = indices_in_windows<false, false>(id + e0 + ow * C_, C_, hlo, hhi, &wlo_[ow],
                                                &whi_[ow], in_w_d_, inv_w_, in_hw_d_);
      } else {
        ok = false;  // dilated windows: the exact scalar scan only
      }
      if (!ok) {
        const int64_t e = scan(id, e0, e0 + row_len_);
        if (e >= 0) return e;
      }
    }
    return -1;
  }

 private:
  // first[o] (or first[o] + count[o] when `end`) as doubles, for the vector checks.
  static std::vector<double> bounds(const Axis& a, bool end) {
    std::vector<double> b(a.first.size());
    for (size_t o = 0; o < b.size(); ++o)
      b[o] = static_cast<double>(a.first[o] + (end ? a.count[o] : 0));
    return b;
  }
  // Exact scalar check of elements [e0, e1) of one image: the first bad position, or -1.
  int64_t scan(const int64_t* id, int64_t e0, int64_t e1) const {
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t oh = e / row_len_, ow = (e / C_) % out_w_, v = id[e];
      const bool in_range = static_cast<uint64_t>(v) < static_cast<uint64_t>(in_hw_);
      const int64_t vv = in_range ? v : 0;
      const int64_t ih = div_(vv), iw = vv - ih * in_w_;
      if (!(in_range & on_tap(ih - g_.h.first[oh], g_.h.count[oh], g_.h.step) &
            on_tap(iw - g_.w.first[ow], g_.w.count[ow], g_.w.step)))
        return e;
    }
    return -1;
  }
  const Geom& g_;
  std::vector<double> hlo_, hhi_, wlo_, whi_;
  int64_t in_hw_, in_w_, C_, out_w_, row_len_, img_len_;
  RowDiv div_;
  double in_w_d_, inv_w_, in_hw_d_;
  bool vec_ = false, img_tab_ = false, row_tab_ = false;
  std::vector<double> hl_, hh_, wl_, wh_;
};

// Throws std::invalid_argument for the invalid index at flat position e of `ind` (decoded in
// the array's own index order, layout as the caller passed it).
[[noreturn]] void fail_index(const char* fn, const int64_t* ind, int64_t e, const Shape& s,
                             const Geom& g) {
  const int64_t C = s.C, out_w = s.out_w, in_hw = s.in_h * s.in_w, in_w = s.in_w;
  const int64_t c = s.nhwc ? e % C : (e / (s.out_h * out_w)) % s.channels;
  const int64_t pix = s.nhwc ? e / C : e;
  const int64_t ow = pix % out_w, oh = (pix / out_w) % s.out_h;
  const int64_t n = s.nhwc ? pix / (out_w * s.out_h) : pix / (out_w * s.out_h) / s.channels;
  const std::string where =
      (s.nhwc || s.layout_nhwc) ? cat("indices[", n, ", ", oh, ", ", ow, ", ", c, "] = ", ind[e])
                                : cat("indices[", n, ", ", c, ", ", oh, ", ", ow, "] = ", ind[e]);
  const int64_t v = ind[e];
  if (static_cast<uint64_t>(v) >= static_cast<uint64_t>(in_hw))
    fail(fn, where, " is out of range: an index must be a flat position ih*in_w + iw in [0, ",
         in_hw, ") of the ", s.in_h, "x", in_w, " input plane");
  const int64_t h0 = g.h.first[oh], w0 = g.w.first[ow];
  fail(fn, where, " (row ", v / in_w, ", column ", v % in_w,
       ") is not in the pooling window of that output, which reads rows ", h0, "..",
       h0 + (g.h.count[oh] - 1) * g.h.step, " step ", g.h.step, " and columns ", w0, "..",
       w0 + (g.w.count[ow] - 1) * g.w.step, " step ", g.w.step, " of the ", s.in_h, "x", in_w,
       " input plane");
}

// ---- max backward as a gather (overlapping windows) ---------------------------------------------
//
// Where windows overlap, the scatter above accumulates into scratch rows, replays halo rows and
// scatters one element at a time. NHWC with few candidate outputs per input element (3x3 stride
// 2, ResNet's pool: at most 2 per axis) computes each grad_x element once instead: the sum, in
// row-major output order, of dy over the candidate outputs whose index names it (+0 for the
// others: bitwise the scatter's sum, see pool_kernels.h), 8 channels per vector compare. Indices
// are only compared, never used as addresses, so each task checks the indices of the output rows
// it owns (those whose window starts in its grad_x rows) independently of the rows it reads.
// (NCHW stays with the scatter: a vector gather across columns measured more instructions per
// element than the row-checked scalar scatter.)

// Candidate outputs of each input position i along one axis: [lo[i], hi[i]) (undilated windows,
// first[] and first[] + count[] nondecreasing, as for max and adaptive pooling).
struct Cands {
  std::vector<int64_t> lo, hi;
  int64_t most = 0;
  Cands(const Axis& a, int64_t in) : lo(static_cast<size_t>(in)), hi(static_cast<size_t>(in)) {
    const int64_t out = static_cast<int64_t>(a.first.size());
    int64_t o0 = 0, o1 = 0;
    for (int64_t i = 0; i < in; ++i) {
      while (o0 < out && a.first[o0] + a.count[o0] <= i) ++o0;
      while (o1 < out && a.first[o1] <= i) ++o1;
      lo[i] = o0;
      hi[i] = std::max(o0, o1);
      most = std::max(most, hi[i] - lo[i]);
    }
  }
};

bool monotone(const Axis& a) {
  for (size_t o = 1; o < a.first.size(); ++o)
    if (a.first[o] < a.first[o - 1] || a.first[o] + a.count[o] < a.first[o - 1] + a.count[o - 1])
      return false;
  return true;
}

// Worth a gather: overlapping undilated windows, at most 4 candidates per input element.
bool gather_backward(const Shape& s, const Geom& g, const Cands& ch, const Cands& cw) {
  return s.C > 1 && (g.h.overlap || g.w.overlap) && g.h.step == 1 && g.w.step == 1 && ch.most * cw.most <= 4 &&
         monotone(g.h) && monotone(g.w);
}

// grad_x row ih, columns [w0, w1), all channels, into dst (the row): portable loop.
template <typename T>
void gather_cols(const T* go, const int64_t* id, int64_t rs, int64_t ra, int64_t rb,
                 const Cands& cw, int64_t w0, int64_t w1, int64_t C, int64_t pos_row, T* dst) {
  for (int64_t iw = w0; iw < w1; ++iw) {
    T* __restrict d = dst + iw * C;
    std::fill(d, d + C, T(0));
    const int64_t pos = pos_row + iw;
    for (int64_t oh = ra; oh < rb; ++oh)
      for (int64_t ow = cw.lo[iw]; ow < cw.hi[iw]; ++ow) {
        const T* __restrict gp = go + oh * rs + ow * C;
        const int64_t* __restrict ip = id + oh * rs + ow * C;
        for (int64_t c = 0; c < C; ++c) d[c] += ip[c] == pos ? gp[c] : T(0);
      }
  }
}

// First invalid index (its position from id) of output rows [r0, r1) of one NHWC image, or -1:
// the vector check of the active ISA (check_run), exact scalar checks for the rest. Undilated
// windows only.
int64_t first_bad_rows(const int64_t* id, const Shape& s, const Geom& g, int64_t r0, int64_t r1) {
  const auto check_run = kernels().pool_f32.check_run;
  const int64_t C = s.C, out_w = s.out_w, in_w = s.in_w;
  for (int64_t oh = r0; oh < r1; ++oh) {
    const int64_t b0 = g.h.first[oh] * in_w, nh = g.h.count[oh];
    for (int64_t o = 0; o < out_w; ++o) {
      const int64_t l0 = b0 + g.w.first[o], nw = g.w.count[o];
      const int64_t* ip = id + (oh * out_w + o) * C;
      for (int64_t c = check_run ? check_run(ip, C, l0, nw, nh, in_w) : 0; c < C; ++c)
        if (!on_window(ip[c], l0, nh, in_w, nw)) return (oh * out_w + o) * C + c;
    }
  }
  return -1;
}

// Task t of a split of images x grad_x rows: images [i0, i1), grad_x rows [h0, h1), and the output
// rows [r0, r1) it owns: windows starting in [h0, h1) (the first task also owns any starting
// above row 0).
struct RowTask {
  int64_t i0, i1, h0, h1, r0, r1;
};

RowTask row_task(const Split& sp, int64_t t, const Shape& s, const Geom& g) {
  RowTask k;
  sp.get(t, k.i0, k.i1, k.h0, k.h1);
  const auto owned = [&](int64_t h) {
    return h >= s.in_h ? s.out_h
                       : static_cast<int64_t>(std::lower_bound(g.h.first.begin(), g.h.first.end(), h) -
                                              g.h.first.begin());
  };
  k.r0 = k.h0 == 0 ? 0 : owned(k.h0);
  k.r1 = owned(k.h1);
  return k;
}

template <typename T>
void max_backward_gather(const T* grad_out, const int64_t* ind, T* grad_x, const Shape& s,
                         const Geom& g, const Cands& ch, const Cands& cw,
                         std::vector<int64_t>& bad_out) {
  const int64_t C = s.C, in_w = s.in_w, out_w = s.out_w, rl = in_w * C, rs = out_w * C;
  const PoolKernelsF32* simd = simd_kernels<T>(g, in_w);
  // The kernel compares the indices' low 32 bits (a copy of the candidate rows' indices).
  const bool vec = simd && simd->max_bwd_gather_nhwc && C >= 8 &&
                   s.in_h * in_w <= std::numeric_limits<int32_t>::max();
  const double cand = static_cast<double>(ch.most * cw.most);
  const Split sp = make_split(s.images, s.in_h, static_cast<double>(rl) * cand, true);
  const bool nt = static_cast<double>(s.images) * s.in_img() * sizeof(T) >= kStreamBytes;
  std::mutex mu;
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    const auto [i0, i1, h0, h1, r0, r1] = row_task(sp, t, s, g);
    thread_local std::vector<T> row;
    thread_local std::vector<int32_t> low;  // low 32 bits of the candidate rows' indices
    if (row.size() < static_cast<size_t>(rl)) row.resize(static_cast<size_t>(rl));
    const int64_t nr_max = ch.most;
    if (vec && low.size() < static_cast<size_t>(nr_max * rs))
      low.resize(static_cast<size_t>(nr_max * rs));
    for (int64_t img = i0; img < i1; ++img) {
      const T* go = grad_out + img * s.out_img();
      const int64_t* id = ind + img * s.out_img();
      T* gx = grad_x + img * s.in_img();
      const int64_t e = first_bad_rows(id, s, g, r0, r1);
      if (e >= 0) {
        std::lock_guard<std::mutex> lock(mu);
        bad_out.push_back(img * s.out_img() + e);
        break;
      }
      int64_t held[4] = {-1, -1, -1, -1};  // output row in each slot of `low` (oh % nr_max)
      for (int64_t ih = h0; ih < h1; ++ih) {
        const int64_t ra = ch.lo[ih], nr = ch.hi[ih] - ra, pos_row = ih * in_w;
        T* d = row.data();
        const T* gor = go + ra * rs;
        const int64_t* idr = id + ra * rs;
        int64_t iw = 0;
        if constexpr (std::is_same_v<T, float>) {
          if (vec && nr > 0) {
            int64_t slot[4];
            for (int64_t r = 0; r < nr; ++r) {  // each output row is narrowed once per image
              const int64_t oh = ra + r, k = oh % nr_max;
              slot[r] = k * rs;
              if (held[k] == oh) continue;
              const int64_t* src = id + oh * rs;
              int32_t* dst = low.data() + k * rs;
              for (int64_t q = 0; q < rs; ++q) dst[q] = static_cast<int32_t>(src[q]);
              held[k] = oh;
            }
            int64_t dy_off[4], id_off[4];
            for (; iw < in_w; ++iw) {
              int64_t n = 0;
              for (int64_t r = 0; r < nr; ++r)
                for (int64_t ow = cw.lo[iw]; ow < cw.hi[iw]; ++ow, ++n) {
                  dy_off[n] = r * rs + ow * C;
                  id_off[n] = slot[r] + ow * C;
                }
              simd->max_bwd_gather_nhwc(gor, low.data(), dy_off, id_off, n,
                                        static_cast<int32_t>(pos_row + iw), C, d + iw * C);
            }
          }
        }
        gather_cols(gor, idr, rs, 0, nr, cw, iw, in_w, C, pos_row, d);
        out_copy(gx + ih * rl, d, rl, nt);
      }
    }
    if (nt) stream_fence();
  });
}

// ---- max backward as a gather, windows 3 wide and 2 apart across rows (ResNet's 3x3 s2 pool) ----
//
// Both layouts: each grad_x row is computed once, from its (at most 4) candidate output rows, by
// the max_bwd_k3s2_* kernels (pool_kernels.h: every padded column compares the indices of the <= 2
// outputs covering it, in row-major output order; bitwise the scatter). An output row's indices
// are narrowed to int32 once per task into a small ring of row copies (with sentinel pixels at
// both ends, so the kernels need no edge cases) and checked in the same pass (narrow_check); a
// task checks the output rows it owns (windows starting in its grad_x rows). float only, with
// the active ISA's kernels.

// Usable: undilated windows, 3 wide 2 apart across the width, <= 4 candidate rows, positions
// and compare targets exact in int32.
bool k3s2_backward(const Shape& s, const Geom& g, const Cands& ch) {
  const PoolKernelsF32& k = kernels().pool_f32;
  if (!k.narrow_check || !k.stream_copy || !(s.nhwc ? k.max_bwd_k3s2_nhwc && s.C >= k.lanes : k.max_bwd_k3s2_nchw != nullptr))
    return false;
  return g.w.k == 3 && g.w.stride == 2 && g.w.step == 1 && g.h.step == 1 && ch.most <= 4 &&
         monotone(g.h) &&
         static_cast<double>(s.in_h) * s.in_w + 2.0 * s.out_w + 64 < 2147483647.0;
}

// First invalid index (position from id) of output row oh of one image, or -1: exact scalar check
// (undilated windows).
int64_t first_bad_row(const int64_t* id, const Shape& s, const Geom& g, int64_t oh) {
  const int64_t C = s.C, in_w = s.in_w, b0 = g.h.first[oh] * in_w, nh = g.h.count[oh];
  for (int64_t o = 0; o < s.out_w; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t e = (oh * s.out_w + o) * C + c;
      if (!on_window(id[e], b0 + g.w.first[o], nh, in_w, g.w.count[o])) return e;
    }
  return -1;
}

void max_backward_k3s2(const float* grad_out, const int64_t* ind, float* grad_x, const Shape& s,
                       const Geom& g, const Cands& ch, std::vector<int64_t>& bad_out) {
  const PoolKernelsF32& kt = kernels().pool_f32;
  const int64_t C = s.C, in_w = s.in_w, out_w = s.out_w, rl = in_w * C, rs = out_w * C;
  const int64_t pw = g.w.pad_lo, nslot = ch.most;
  // Row copies: pixels [-8, out_w + 8), data at pixel 0; dst: padded columns [0, 2*out_w + 16).
  const int64_t slot = (out_w + 16) * C, lead = 8 * C, dst_len = (2 * out_w + 16) * C;
  // grad_x rows are built in blocks of about 64 KB (whole planes of ResNet's NCHW pool) and
  // streamed out at once: rows of a few hundred bytes cost more in per-row copy overhead.
  const int64_t blk_rows = std::max<int64_t>(1, (int64_t(16) << 10) / std::max<int64_t>(rl, 1));
  const int64_t lead_b = 2 * C;  // >= pw pixels before row 0
  const int64_t blk_len = lead_b + blk_rows * rl + dst_len;
  // Covered grad_x columns: padded q = iw + pw < 2*out_w + 2 (later ones are in no window).
  const int64_t cover = std::min(in_w, 2 * out_w + 2 - pw);
  std::vector<int32_t> first(static_cast<size_t>(rs)), cnt(static_cast<size_t>(rs));
  for (int64_t o = 0; o < out_w; ++o)
    for (int64_t c = 0; c < C; ++c) {
      first[o * C + c] = static_cast<int32_t>(g.w.first[o]);
      cnt[o * C + c] = static_cast<int32_t>(g.w.count[o]);
    }
  // Coarse tasks: whole planes (NCHW), or blocks of >= 16 grad_x rows (each block narrows one
  // output row of the previous block again).
  Split sp = make_split(s.images, s.in_h, static_cast<double>(rl) * 0.25, true);
  if (sp.blocks > 1 && sp.rpt < 16) {
    sp.rpt = std::min<int64_t>(s.in_h, 16);
    sp.blocks = ceil_div(s.in_h, sp.rpt);
    sp.ntasks = s.images * sp.blocks;
  }
  const bool nt = static_cast<double>(s.images) * s.in_img() * sizeof(float) >= kStreamBytes;
  std::mutex mu;
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    const auto [i0, i1, h0, h1, r0, r1] = row_task(sp, t, s, g);
    thread_local std::vector<int32_t> ids;  // nslot row copies of the indices' low 32 bits
    thread_local std::vector<float> dys, blk, saved;
    if (ids.size() < static_cast<size_t>(nslot * slot)) {
      ids.assign(static_cast<size_t>(nslot * slot), std::numeric_limits<int32_t>::min());
      dys.assign(static_cast<size_t>(nslot * slot), 0.0f);
    }
    if (blk.size() < static_cast<size_t>(blk_len)) blk.resize(static_cast<size_t>(blk_len));
    if (saved.size() < static_cast<size_t>(pw * C)) saved.resize(static_cast<size_t>(pw * C));
    // Sentinels: the pixels outside [0, out_w) of every slot (out_w may differ from last call's).
    for (int64_t k = 0; k < nslot; ++k) {
      std::fill(ids.begin() + k * slot, ids.begin() + k * slot + lead, std::numeric_limits<int32_t>::min());
      std::fill(ids.begin() + k * slot + lead + rs, ids.begin() + (k + 1) * slot,
                std::numeric_limits<int32_t>::min());
    }
    for (int64_t img = i0; img < i1; ++img) {
      const float* go = grad_out + img * s.out_img();
      const int64_t* id = ind + img * s.out_img();
      float* gx = grad_x + img * s.in_img();
      int64_t held[4] = {-1, -1, -1, -1};  // output row in each slot (oh % nslot)
      const float* dy_at[4] = {};           // its gradients (the row itself or a padded copy)
      int64_t blk_h = h0;  // first grad_x row of the block being built
      for (int64_t ih = h0; ih < h1; ++ih) {
        const int64_t ra = ch.lo[ih], nr = ch.hi[ih] - ra;
        const float* dyp[4];
        const int32_t* idp[4];
        for (int64_t r = 0; r < nr; ++r) {
          const int64_t oh = ra + r, k = oh % nslot;
          int32_t* si = ids.data() + k * slot + lead;
          float* sd = dys.data() + k * slot + lead;
          if (held[k] != oh) {
            const bool ok = kt.narrow_check(id + oh * rs, rs, first.data(), cnt.data(),
                                            static_cast<int32_t>(g.h.first[oh] * in_w),
                                            g.h.count[oh], static_cast<int32_t>(in_w), si);
            if (!ok && oh >= r0 && oh < r1) {
              const int64_t e = first_bad_row(id, s, g, oh);
              if (e >= 0) {
                std::lock_guard<std::mutex> lock(mu);
                bad_out.push_back(img * s.out_img() + e);
                if (nt) stream_fence();
                return;
              }
            }
            // The kernels read dy at pixels -1 and out_w too, where the never-matching
            // sentinel ids make the values irrelevant: a copy only where they lie outside the
            // array (the first and last output row of the whole batch).
            const bool edge = (img == 0 && oh == 0) || (img + 1 == s.images && oh + 1 == s.out_h);
            if (edge) std::memcpy(sd, go + oh * rs, sizeof(float) * static_cast<size_t>(rs));
            dy_at[k] = edge ? sd : go + oh * rs;
            held[k] = oh;
          }
          dyp[r] = dy_at[k];
          idp[r] = si;
        }
        // Row j of the block lives at blk + lead_b + j*rl; the kernel's padded row starts pw
        // pixels before it, over the previous row's last pixels (saved and restored).
        const int64_t j = ih - blk_h;
        float* rowp = blk.data() + lead_b + j * rl;
        if (nr == 0) {
          std::fill(rowp, rowp + rl, 0.0f);
        } else {
          const int64_t keep = j > 0 ? pw * C : 0;
          std::copy(rowp - keep, rowp, saved.data());
          const int32_t pos = static_cast<int32_t>(ih * in_w - pw);
          if (s.nhwc)
            kt.max_bwd_k3s2_nhwc(dyp, idp, nr, pos, out_w, C, rowp - pw * C);
          else
            kt.max_bwd_k3s2_nchw(dyp, idp, nr, pos, out_w, rowp - pw * C);
          std::copy(saved.data(), saved.data() + keep, rowp - keep);
          if (cover < in_w) std::fill(rowp + cover * C, rowp + rl, 0.0f);
        }
        if (j + 1 == blk_rows || ih + 1 == h1) {  // the block's rows out in one stream
          const int64_t len = (j + 1) * rl;
          if (nt)
            kt.stream_copy(blk.data() + lead_b, len, gx + blk_h * rl);
          else
            std::memcpy(gx + blk_h * rl, blk.data() + lead_b, sizeof(float) * static_cast<size_t>(len));
          blk_h = ih + 1;
        }
      }
    }
    if (nt) stream_fence();
  });
}

// ---- max backward, NCHW planes that fit in cache: scatter into a zeroed plane buffer -------------
//
// With overlapping windows the row-window scatter above replays halo rows and clips every
// position; a plane small enough for L2 (undilated windows) is instead accumulated whole in a
// thread-local buffer, in row-major output order (the sequential sum), each output row's indices
// checked first (the vector narrow_check where the ISA has one), then streamed out once.
constexpr int64_t kPlaneBytes = 256 << 10;

template <typename T>
bool plane_backward(const Shape& s, const Geom& g) {
  return !s.nhwc && (g.h.overlap || g.w.overlap) && g.h.step == 1 && g.w.step == 1 &&
         static_cast<double>(s.in_h) * s.in_w * sizeof(T) <= static_cast<double>(kPlaneBytes);
}

template <typename T>
void max_backward_plane(const T* grad_out, const int64_t* ind, T* grad_x, const Shape& s,
                        const Geom& g, std::vector<int64_t>& bad_out) {
  const PoolKernelsF32& kt = kernels().pool_f32;
  const int64_t in_w = s.in_w, out_w = s.out_w, hw = s.in_h * in_w, ohw = s.out_h * out_w;
  const auto narrow = kt.narrow_check;  // index-only: serves double too
  std::vector<int32_t> first(static_cast<size_t>(out_w)), cnt(static_cast<size_t>(out_w));
  for (int64_t o = 0; o < out_w; ++o) {
    first[o] = static_cast<int32_t>(g.w.first[o]);
    cnt[o] = static_cast<int32_t>(g.w.count[o]);
  }
  const bool nt = static_cast<double>(s.images) * hw * sizeof(T) >= kStreamBytes;
  const Split sp = make_split(s.images, 1, static_cast<double>(hw + ohw) / 4, false);
  std::mutex mu;
  parallel_for(sp.ntasks, [&](int64_t t, int) {
    int64_t i0, i1, r0, r1;
    sp.get(t, i0, i1, r0, r1);
    thread_local std::vector<T> buf;  // kept all +0 between uses (`clean`)
    thread_local bool clean = true;
    thread_local std::vector<int32_t> low;
    if (buf.size() < static_cast<size_t>(hw)) buf.assign(static_cast<size_t>(hw), T(0)), clean = true;
    if (low.size() < static_cast<size_t>(out_w)) low.resize(static_cast<size_t>(out_w));
    T* __restrict b = buf.data();
    for (int64_t img = i0; img < i1; ++img) {
      const T* __restrict go = grad_out + img * ohw;
      const int64_t* __restrict id = ind + img * ohw;
      if (!clean) std::fill(buf.begin(), buf.end(), T(0));  // after an abandoned plane
      clean = false;
      for (int64_t oh = 0; oh < s.out_h; ++oh) {
        const int64_t* __restrict io = id + oh * out_w;
        if (!(narrow && narrow(io, out_w, first.data(), cnt.data(),
                               static_cast<int32_t>(g.h.first[oh] * in_w), g.h.count[oh],
                               static_cast<int32_t>(in_w), low.data()))) {
          const int64_t e = first_bad_row(id, s, g, oh);
          if (e >= 0) {
            std::lock_guard<std::mutex> lock(mu);
            bad_out.push_back(img * ohw + e);
            if (nt) stream_fence();
            return;
          }
        }
        const T* __restrict gr = go + oh * out_w;
        for (int64_t o = 0; o < out_w; ++o) b[io[o]] += gr[o];
      }
      T* dst = grad_x + img * hw;
      clean = true;
      if constexpr (std::is_same_v<T, float>) {
        if (nt && kt.stream_move) {
          kt.stream_move(b, hw, dst);
          continue;
        }
      }
      out_copy(dst, b, hw, nt);
      std::fill(b, b + hw, T(0));
    }
    if (nt) stream_fence();
  });
}

// Max / adaptive-max backward: each task checks its own indices, then scatters; the first bad
// index in array order (whatever the thread count) is reported after all tasks end. grad_x is
// unspecified when this throws.
template <typename T>
void max_backward_checked(const char* fn, const T* grad_out, const int64_t* ind, T* grad_x,
                          const Shape& s, const Geom& g) {
  if (s.images == 0 || s.C == 0) return;
  std::vector<int64_t> bad;
  {
    const Cands ch(g.h, s.in_h), cw(g.w, s.in_w);
    if (plane_backward<T>(s, g)) {
      max_backward_plane(grad_out, ind, grad_x, s, g, bad);
      if (!bad.empty()) fail_index(fn, ind, *std::min_element(bad.begin(), bad.end()), s, g);
      return;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (k3s2_backward(s, g, ch)) {
        max_backward_k3s2(grad_out, ind, grad_x, s, g, ch, bad);
        if (!bad.empty()) fail_index(fn, ind, *std::min_element(bad.begin(), bad.end()), s, g);
        return;
      }
    }
    if (gather_backward(s, g, ch, cw)) {
      max_backward_gather(grad_out, ind, grad_x, s, g, ch, cw, bad);
      if (!bad.empty()) fail_index(fn, ind, *std::min_element(bad.begin(), bad.end()), s, g);
      return;
    }
  }
  int64_t max_rows = 0;
  for (int64_t c : g.h.count) max_rows = std::max(max_rows, c);
  const bool fused = g.w.step == 1 && max_rows <= kFusedRows;
  std::unique_ptr<IndexCheck> chk(fused ? nullptr : new IndexCheck(s, g));
  max_backward(
      grad_out, ind, grad_x, s, g, fused,
      [&](const int64_t* id, int64_t r0, int64_t r1) { return chk->first_bad(id, r0, r1); }, bad);
  if (!bad.empty()) fail_index(fn, ind, *std::min_element(bad.begin(), bad.end()), s, g);
}

}  // namespace

// ---- public entry points ------------------------------------------------------------------------

// Calls moving less than this (input + output bytes, ~50 us at memory speed) run on one thread
// (SerialScope): a ResNet head's global average (8x512x7x7, 0.8 MB) takes ~20 us on one core,
// and waking a team on a busy machine measured milliseconds.
constexpr double kSerialBytes = 1 << 20;

bool small_call(const Pool2dParams& p, size_t elem) {
  const auto d = [](int64_t v) { return static_cast<double>(v); };
  return d(p.batch) * d(p.channels) * (d(p.in_h) * d(p.in_w) + d(p.out_h) * d(p.out_w)) *
             static_cast<double>(elem) <
         kSerialBytes;
}

void check_pool2d_params(const char* fn, const Pool2dParams& p, bool is_max) {
  (void)pool_geom(fn, p, is_max);
}

void check_adaptive_pool2d_params(const char* fn, const Pool2dParams& p) {
  (void)adaptive_geom(fn, p);
}

template <typename T>
void max_pool2d_forward(const T* x, T* out, int64_t* indices, const Pool2dParams& p) {
  const Geom g = pool_geom("max_pool2d_forward", p, true);
  const SerialScope serial(small_call(p, sizeof(T)));
  max_forward(x, out, indices, shape_of(p), g);
}

template <typename T>
void max_pool2d_backward(const T* grad_out, const int64_t* indices, T* grad_x,
                         const Pool2dParams& p) {
  const char* fn = "max_pool2d_backward";
  const Geom g = pool_geom(fn, p, true);
  const SerialScope serial(small_call(p, sizeof(T)));
  max_backward_checked(fn, grad_out, indices, grad_x, shape_of(p), g);
}

template <typename T>
void avg_pool2d_forward(const T* x, T* out, const Pool2dParams& p) {
  const Geom g = pool_geom("avg_pool2d_forward", p, false);
  const SerialScope serial(small_call(p, sizeof(T)));
  avg_forward(x, out, shape_of(p), g, AvgDiv{p.divisor_override, p.count_include_pad, false});
}

template <typename T>
void avg_pool2d_backward(const T* grad_out, T* grad_x, const Pool2dParams& p) {
  const Geom g = pool_geom("avg_pool2d_backward", p, false);
  const SerialScope serial(small_call(p, sizeof(T)));
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
  const PoolKernelsF32* simd = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    const PoolKernelsF32& k = kernels().pool_f32;
    if (hw >= 1 && (s.nhwc ? k.global_avg_nhwc != nullptr : k.global_avg_nchw != nullptr))
      simd = &k;
  }
  if (simd && !s.nhwc) {  // NCHW: whole tasks of planes in one kernel call
    const int64_t per = std::max<int64_t>(8, static_cast<int64_t>(kGrain) / hw);
    parallel_for(ceil_div(s.images, per), [&](int64_t t, int) {
      const int64_t p0 = t * per, n = std::min(s.images, p0 + per) - p0;
      if constexpr (std::is_same_v<T, float>) simd->global_avg_nchw(x + p0 * hw, hw, n, out + p0, dh, dw);
    });
    return;
  }
  for_images(s, [&](int64_t img) {
    const T* __restrict xi = x + img * hw * C;
    T* __restrict o = out + img * C;  // out never overlaps x (contract)
    if constexpr (std::is_same_v<T, float>) {
      if (simd && simd->global_avg_nhwc(xi, hw, C, o, dh, dw) == C) return;
    }
    if (!s.nhwc) {
      T acc[8] = {};
      int64_t e = 0;
      for (; e + 8 <= hw; e += 8)
        for (int j = 0; j < 8; ++j) acc[j] += xi[e + j];
      for (; e < hw; ++e) acc[e & 7] += xi[e];
      const T sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      o[0] = sum / dh / dw;
    } else {
      // Channel blocks summed in a local accumulator (registers), pixels in order from 0.
      constexpr int64_t kB = 64;
      for (int64_t c0 = 0; c0 < C; c0 += kB) {
        const int64_t n = std::min(kB, C - c0);
        T acc[kB] = {};
        for (int64_t e = 0; e < hw; ++e) {
          const T* __restrict xr = xi + e * C + c0;
          for (int64_t c = 0; c < n; ++c) acc[c] += xr[c];
        }
        for (int64_t c = 0; c < n; ++c) o[c0 + c] = acc[c] / dh / dw;
      }
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
  const SerialScope serial(small_call(p, sizeof(T)));
  if (p.out_h == 1 && p.out_w == 1)
    global_avg_forward(x, out, shape_of(p));
  else
    avg_forward(x, out, shape_of(p), g, AvgDiv{0, true, true});
}

template <typename T>
void adaptive_avg_pool2d_backward(const T* grad_out, T* grad_x, const Pool2dParams& p) {
  const Geom g = adaptive_geom("adaptive_avg_pool2d_backward", p);
  const SerialScope serial(small_call(p, sizeof(T)));
  if (p.out_h == 1 && p.out_w == 1)
    global_avg_backward(grad_out, grad_x, shape_of(p));
  else
    avg_backward(grad_out, grad_x, shape_of(p), g, AvgDiv{0, true, true});
}

template <typename T>
void adaptive_max_pool2d_forward(const T* x, T* out, int64_t* indices, const Pool2dParams& p) {
  const Geom g = adaptive_geom("adaptive_max_pool2d_forward", p);
  const SerialScope serial(small_call(p, sizeof(T)));
  max_forward(x, out, indices, shape_of(p), g);
}

template <typename T>
void adaptive_max_pool2d_backward(const T* grad_out, const int64_t* indices, T* grad_x,
                                  const Pool2dParams& p) {
  const char* fn = "adaptive_max_pool2d_backward";
  const Geom g = adaptive_geom(fn, p);
  const SerialScope serial(small_call(p, sizeof(T)));
  max_backward_checked(fn, grad_out, indices, grad_x, shape_of(p), g);
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
