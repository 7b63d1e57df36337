// Dilated 3x3 stride-1 convolution through Winograd: with dilation d, output row a + d*i
// reads input rows of one residue class mod d only (a - pad + d*(i + kh)), so the layer splits
// into d_h * d_w independent 3x3 stride-1 dilation-1 convolutions, one per phase: output
// phase (a, b) against input phase ((a - pad_top) mod d_h, (b - pad_left) mod d_w) with its
// own (possibly cropped) padding. The forward pass and the input gradient run each phase in
// place, through strided views of the input and output (rows and columns d apart; NCHW inputs
// are copied compact first, one phase at a time, so their tile rows stay contiguous for the
// vector gathers): extra memory is Winograd's own bound for the phase (a quarter of its
// im2col matrix), plus the NCHW input phase (about x / (d_h d_w)); NaN / Inf in
// the operands (scanned once, in parallel, before any phase) make them decline, and the caller
// runs GEMM. The weight gradient copies each phase of x and grad_y into compact buffers (one
// phase at a time: about (x + y) / (d_h d_w)) and sums the phases' winograd_weight_grad; it
// declines when a phase's result holds a NaN/Inf.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/workspace.h"
#include "cpu/conv/winograd.h"
#include "cpu/parallel.h"

namespace fastconv {
namespace {

// One axis of one phase: outputs a, a+d, ... (out_len of them) read the input sub-sequence
// in0, in0+d, ... (in_len of it) as a stride-1 3-tap correlation with padding lo / hi.
struct AxisPhase {
  int64_t out0 = 0, out_len = 0, in0 = 0, in_len = 0, lo = 0, hi = 0;
};

bool axis_phase(int64_t in, int64_t out, int64_t pad_lo, int64_t d, int64_t a, AxisPhase& ph) {
  if (a >= out) return false;
  ph.out0 = a;
  ph.out_len = (out - a + d - 1) / d;
  const int64_t off = a - pad_lo;                 // tap 0 of output i reads off + d*(i + kh)
  const int64_t r = ((off % d) + d) % d, s = (off - r) / d;  // off = d*s + r
  const int64_t n_r = in > r ? (in - r + d - 1) / d : 0;   // length of input phase r
  int64_t t0 = 0, lo = -s;                        // sub-index t = i + kh - lo
  if (lo < 0) {                                   // rows before t0 are never read: crop
    t0 = -lo;
    lo = 0;
  }
  int64_t len = n_r - t0;
  int64_t hi = ph.out_len + 2 - len - lo;         // out_len = len + lo + hi - 2
  if (hi < 0) {                                   // rows past the last read one: crop
    len += hi;
    hi = 0;
  }
  if (len < 1) return false;
  ph.in0 = r + d * t0;
  ph.in_len = len;
  ph.lo = lo;
  ph.hi = hi;
  return true;
}

// The stride-1 dilation-1 sub-problem of phase (a, b); false if a phase is degenerate.
bool phase_params(const Conv2dParams& p, int64_t a, int64_t b, Conv2dParams& q, AxisPhase& ph,
                  AxisPhase& pw) {
  if (!axis_phase(p.in_h, p.out_h, p.pad_top, p.dil_h, a, ph)) return false;
  if (!axis_phase(p.in_w, p.out_w, p.pad_left, p.dil_w, b, pw)) return false;
  q = p;
  q.in_h = ph.in_len;
  q.in_w = pw.in_len;
  q.out_h = ph.out_len;
  q.out_w = pw.out_len;
  q.pad_top = ph.lo;
  q.pad_bottom = ph.hi;
  q.pad_left = pw.lo;
  q.pad_right = pw.hi;
  q.dil_h = q.dil_w = 1;
  return true;
}

// Copies between a full tensor and one phase of it: sub[n][c][i][j] <-> full[n][c][h0 + dh*i]
// [w0 + dw*j] (NCHW; NHWC with channels innermost). to_sub: direction.
template <typename T>
void copy_phase(const Conv2dParams& p, bool nchw, int64_t N, int64_t C, int64_t H, int64_t W,
                const AxisPhase& ph_h, int64_t len_h, const AxisPhase& ph_w, int64_t len_w,
                bool use_in, T* full, T* sub, bool to_sub) {
  const int64_t h0 = use_in ? ph_h.in0 : ph_h.out0, w0 = use_in ? ph_w.in0 : ph_w.out0;
  const int64_t dh = p.dil_h, dw = p.dil_w;
  if (nchw) {
    // planes of a few KiB: handed out in runs of consecutive planes
    const int64_t run = task_run(N * C, threads_for(N * C),
                                 2.0 * double(len_h) * double(len_w) * sizeof(T));
    parallel_for_runs(N * C, threads_for(N * C), run, [&](int64_t t, int) {
      for (int64_t i = 0; i < len_h; ++i) {
        T* f = full + (t * H + h0 + dh * i) * W + w0;
        T* s = sub + (t * len_h + i) * len_w;
        if (to_sub)
          for (int64_t j = 0; j < len_w; ++j) s[j] = f[dw * j];
        else
          for (int64_t j = 0; j < len_w; ++j) f[dw * j] = s[j];
      }
    });
  } else {
    parallel_for(N * len_h, [&](int64_t t, int) {
      const int64_t n = t / len_h, i = t % len_h;
      for (int64_t j = 0; j < len_w; ++j) {
        T* f = full + ((n * H + h0 + dh * i) * W + w0 + dw * j) * C;
        T* s = sub + ((n * len_h + i) * len_w + j) * C;
        if (to_sub)
          std::memcpy(s, f, sizeof(T) * static_cast<size_t>(C));
        else
          std::memcpy(f, s, sizeof(T) * static_cast<size_t>(C));
      }
    });
  }
}



// Element strides of the full tensor [n][c][h][w] (NCHW) or [n][h][w][c] (NHWC).
WinoView full_view(bool nchw, int64_t C, int64_t H, int64_t W) {
  WinoView v;
  if (nchw) {
    v.w = 1; v.h = W; v.c = H * W; v.n = C * H * W;
  } else {
    v.c = 1; v.w = C; v.h = W * C; v.n = H * W * C;
  }
  return v;
}

// The phase's view: rows and columns d apart, starting at (h0, w0).
template <typename T>
T* phase_view(T* base, const WinoView& full, int64_t dh, int64_t dw, int64_t h0, int64_t w0,
              WinoView& v) {
  v = full;
  v.h = full.h * dh;
  v.w = full.w * dw;
  return base + h0 * full.h + w0 * full.w;
}

// f(q, ph, pw) for every phase in order; false as soon as a phase is degenerate or f is.
template <class F>
bool each_phase(const Conv2dParams& p, F&& f) {
  for (int64_t a = 0; a < p.dil_h; ++a)
    for (int64_t b = 0; b < p.dil_w; ++b) {
      Conv2dParams q;
      AxisPhase ph, pw;
      if (!phase_params(p, a, b, q, ph, pw) || !f(q, ph, pw)) return false;
    }
  return true;
}

// Elements of the largest phase sub-problem's input and output (the buffers are allocated
// once and reused by every phase).
struct PhaseSizes {
  int64_t in = 0, out = 0;
};

PhaseSizes phase_sizes(const Conv2dParams& p, const char* fn) {
  PhaseSizes m;
  FC_CHECK(each_phase(p, [&](const Conv2dParams& q, const AxisPhase&, const AxisPhase&) {
             m.in = std::max(m.in, checked_mul(checked_mul(q.batch, q.in_c, "phase"),
                                               q.in_plane(), "phase"));
             m.out = std::max(m.out, checked_mul(checked_mul(q.batch, q.out_c, "phase"),
                                                 q.out_plane(), "phase"));
             return true;
           }),
           fn, "dilated Winograd phase");
  return m;
}

// Dilated 3x3 stride-1 layers of at most 64 x 64 phases (thousands of tiny phases: not worth it).
bool dilated_shape_ok(const Conv2dParams& p) {
  return p.k_h == 3 && p.k_w == 3 && p.stride_h == 1 && p.stride_w == 1 &&
         (p.dil_h > 1 || p.dil_w > 1) && p.dil_h <= 64 && p.dil_w <= 64;
}

}  // namespace

bool dilated_winograd_applicable(const Conv2dParams& p) {
  return dilated_shape_ok(p) &&
         each_phase(p, [](const Conv2dParams& q, const AxisPhase&, const AxisPhase&) {
           return winograd_applicable(q);
         });
}

template <typename T>
bool dilated_winograd_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias,
                              T* y) {
  const bool nchw = p.layout == Layout::NCHW;
  if (!winograd_all_finite(w, p.out_c * p.in_cg() * 9) ||
      !winograd_all_finite(x, p.batch * p.in_c * p.in_h * p.in_w))
    return false;
  const WinoView xf = full_view(nchw, p.in_c, p.in_h, p.in_w);
  const WinoView yf = full_view(nchw, p.out_c, p.out_h, p.out_w);
  // NCHW: the input phase copied compact, so the tiles' rows are contiguous (vector gathers)
  AlignedArray<T> xs(nchw ? phase_sizes(p, "conv2d").in : 0);
  return each_phase(p, [&](const Conv2dParams& q, const AxisPhase& ph, const AxisPhase& pw) {
    WinoView xv, yv;
    const T* xp = phase_view(x, xf, p.dil_h, p.dil_w, ph.in0, pw.in0, xv);
    if (nchw) {
      copy_phase(p, nchw, p.batch, p.in_c, p.in_h, p.in_w, ph, q.in_h, pw, q.in_w, true,
                 const_cast<T*>(x), xs.data(), true);
      xp = xs.data();
      xv = full_view(nchw, p.in_c, q.in_h, q.in_w);
    }
    T* yp = phase_view(y, yf, p.dil_h, p.dil_w, ph.out0, pw.out0, yv);
    winograd_forward_view(q, xp, xv, w, bias, yp, yv);
    return true;
  });
}

template <typename T>
bool dilated_winograd_input_grad(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const bool nchw = p.layout == Layout::NCHW;
  if (!winograd_all_finite(w, p.out_c * p.in_cg() * 9) ||
      !winograd_all_finite(dy, p.batch * p.out_c * p.out_h * p.out_w))
    return false;
  // Input elements outside every phase's cropped sub-image are read by no output: zero.
  const int64_t nx = p.batch * p.in_c * p.in_h * p.in_w;
  parallel_for((nx + 65535) / 65536, [&](int64_t t, int) {
    const int64_t e0 = t * 65536, e1 = std::min(nx, e0 + 65536);
    std::memset(static_cast<void*>(dx + e0), 0, sizeof(T) * static_cast<size_t>(e1 - e0));
  });
  const WinoView xf = full_view(nchw, p.in_c, p.in_h, p.in_w);
  const WinoView yf = full_view(nchw, p.out_c, p.out_h, p.out_w);
  AlignedArray<T> dys(nchw ? phase_sizes(p, "conv2d_input_grad").out : 0);  // as the forward
  return each_phase(p, [&](const Conv2dParams& q, const AxisPhase& ph, const AxisPhase& pw) {
    WinoView xv, yv;
    T* xp = phase_view(dx, xf, p.dil_h, p.dil_w, ph.in0, pw.in0, xv);
    const T* yp = phase_view(dy, yf, p.dil_h, p.dil_w, ph.out0, pw.out0, yv);
    if (nchw) {
      copy_phase(p, nchw, p.batch, p.out_c, p.out_h, p.out_w, ph, q.out_h, pw, q.out_w, false,
                 const_cast<T*>(dy), dys.data(), true);
      yp = dys.data();
      yv = full_view(nchw, p.out_c, q.out_h, q.out_w);
    }
    winograd_input_grad_view(q, yp, yv, w, xp, xv);
    return true;
  });
}

bool dilated_winograd_weight_grad_applicable(const Conv2dParams& p) {
  return p.groups == 1 && dilated_shape_ok(p) &&
         each_phase(p, [](const Conv2dParams& q, const AxisPhase&, const AxisPhase&) {
           return winograd_weight_grad_applicable(q);
         });
}

// dw = the phases' weight gradients summed in phase order (a fixed order: bitwise the same for
// any thread count); one more weight-sized buffer for the phases after the first.
template <typename T>
bool dilated_winograd_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const bool nchw = p.layout == Layout::NCHW;
  const PhaseSizes sz = phase_sizes(p, "conv2d_weight_grad");
  const int64_t wsize = 9 * p.in_c * p.out_c;
  AlignedArray<T> xs(sz.in), dys(sz.out), part(wsize);
  bool first = true;
  return each_phase(p, [&](const Conv2dParams& q, const AxisPhase& ph, const AxisPhase& pw) {
    copy_phase(p, nchw, p.batch, p.in_c, p.in_h, p.in_w, ph, q.in_h, pw, q.in_w, true,
               const_cast<T*>(x), xs.data(), true);
    copy_phase(p, nchw, p.batch, p.out_c, p.out_h, p.out_w, ph, q.out_h, pw, q.out_w, false,
               const_cast<T*>(dy), dys.data(), true);
    if (!winograd_weight_grad(q, dys.data(), xs.data(), first ? dw : part.data())) return false;
    if (!first)
      parallel_for((wsize + 4095) / 4096, [&](int64_t t, int) {
        const int64_t e0 = t * 4096, e1 = std::min(wsize, e0 + 4096);
        for (int64_t e = e0; e < e1; ++e) dw[e] += part.data()[e];
      });
    first = false;
    return true;
  });
}

#define FC_INSTANTIATE(T)                                                                      \
  template bool dilated_winograd_forward<T>(const Conv2dParams&, const T*, const T*, const T*, \
                                            T*);                                               \
  template bool dilated_winograd_input_grad<T>(const Conv2dParams&, const T*, const T*, T*);   \
  template bool dilated_winograd_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
