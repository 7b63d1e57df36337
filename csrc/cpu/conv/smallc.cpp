// Small-channel direct convolution driver (kernel contract: kernels.h, SmallcArgs).
//
// Every op is one block product out[r][l] = init[r][l] + sum_i sum_t a[r + ...] * b[i, t][l]
// with channels in the lanes l and a broadcast from a zero-bordered copy of one image: no
// im2col packing.
//   forward      per output row: r = output column, i = (kh, c), t = kw over the image padded
//                into planar rows [h][c][w]; b = weights [kh][c][kw][out_c]; init = bias.
//                (Stride 1: the broadcast columns r must be contiguous.) NCHW layers whose
//                output rows fill the vectors better than their channels swap the roles:
//                output columns in the lanes, weights broadcast, rows stored into y.
//   input grad   per block of output rows: the im2col-shaped gradient dcol[p][(kh, kw, c)] =
//                sum_o grad_out[o][p] * w[o][(kh, kw, c)] (r = pixel, t = o; lanes = the
//                150 or 25 taps, so no lane is wasted on 6 or 1 channels), then added into a
//                padded channels-last image, where the taps of one kernel row are contiguous;
//                any stride and padding.
//   weight grad  per image and kernel row: r = taps, i = output row, t = output column; b =
//                grad_out as [pixel][out_c]; out = init = a partial gradient [tap][out_c]
//                (NCHW with few channels: the planar image, one call per (kh, c) over
//                kw; otherwise the image channels-last [h][w][c], transposed from NCHW
//                per image, one call per kh over (kw, c)). Images are cut
//                into a number of chunks fixed by the batch size (never the thread count);
//                partials are summed in chunk order.
// NCHW outputs are computed channels-last into per-thread scratch and transposed per image.
// Tasks are images (or image chunks). Per-thread scratch is zeroed once, so the padding border
// of a packed image stays zero while only its interior is rewritten per image.
#include "cpu/conv/smallc.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "common/workspace.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace fastconv {
namespace {

// The copy and transpose loops below run once per image inside the parallel lambdas; inlined
// there, GCC ran out of registers and kept their pointers on the stack (8 instructions per
// element): as calls of their own they are tight loops.
#define FC_NOINLINE __attribute__((noinline))

inline int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return div_up(a, b) * b; }
constexpr int64_t kDcolPixels = 12;  // input gradient: output pixels per im2col-shaped block
inline int64_t image_size(int64_t h, int64_t w, int64_t c) {  // padded sizes can be huge
  return checked_mul(checked_mul(h, w, "workspace size"), c, "workspace size");
}

template <typename T>
struct Scratch {
  AlignedArray<T> mem;
  int64_t per = 0;
  int threads;
  Scratch(int t, int64_t per_thread)
      : per(round_up(std::max<int64_t>(per_thread, 1), 16)), threads(t) {
    mem.reset(checked_mul(per, threads, "workspace size"));
    mem.zero();
  }
  T* at(int tid) { return mem.data() + tid * per; }
};

// [P][ld] (first C lanes) <-> [C][P]: tb x tb blocks through the kernel's transpose where
// there is one (AVX2 float: 8x8 in registers, ~8x fewer instructions than element copies),
// the edges (and every element elsewhere) in blocks of 16 pixels, so each plane is touched one
// 64-byte run at a time. (Pixel by pixel, planes 4 KiB apart thrash one L1 set: a 32x32
// image ran its forward pass 2.4x slower.)
constexpr int64_t kTBlk = 16;

// to_planes: dst[c*S + q] = src[q*ld + c]; from_planes: dst[q*ld + c] = src[c*S + q], q < P,
// with planes S = P apart unless a plane stride ps is given (one row of each plane).
template <typename T>
FC_NOINLINE void change_layout(const SmallcKernel<T>& k, bool to_planes, const T* src,
                               int64_t ld, int64_t P, int64_t C, T* dst, int64_t ps = -1) {
  const int64_t S = ps < 0 ? P : ps;
  int64_t cb = 0, pb = 0;  // channels and pixels done by the block transposes
  if (k.transpose) {
    const int64_t tb = k.tb;
    cb = C / tb * tb;
    pb = P / tb * tb;
    for (int64_t q = 0; q < pb; q += tb)
      for (int64_t c = 0; c < cb; c += tb) {
        if (to_planes)
          k.transpose(src + q * ld + c, ld, dst + c * S + q, S);
        else
          k.transpose(src + c * S + q, S, dst + q * ld + c, ld);
      }
  }
  for (int64_t p0 = 0; p0 < P; p0 += kTBlk) {
    const int64_t p1 = std::min(P, p0 + kTBlk);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t q = std::max(p0, c < cb ? pb : 0); q < p1; ++q) {
        if (to_planes)
          dst[c * S + q] = src[q * ld + c];
        else
          dst[q * ld + c] = src[c * S + q];
      }
  }
}

// Copies one image (NCHW [C][H][W] or NHWC [H][W][C]) into the interior of a channels-last
// buffer [.][Wp][C] at row `top`, column `left`; the border is left as it is (zero). NCHW rows
// go through change_layout's block transposes, one row of each plane at a time.
template <typename T>
FC_NOINLINE void pack_image(const SmallcKernel<T>& k, const T* src, bool nchw, int64_t C,
                            int64_t H, int64_t W, int64_t top, int64_t left, int64_t Wp, T* dst) {
  for (int64_t h = 0; h < H; ++h) {
    T* d = dst + ((h + top) * Wp + left) * C;
    if (!nchw || C == 1)
      std::memcpy(d, src + h * W * C, sizeof(T) * static_cast<size_t>(W * C));
    else
      change_layout(k, false, src + h * W, C, W, C, d, H * W);
  }
}

// Adds the im2col-shaped rows dcol[(oh - oh0) * out_w + ow][(kh, kw, c)] (row stride ld) of
// output rows [oh0, oh1) into the padded channels-last image img [.][Wp][in_c], where the taps
// (kw, c) of one kernel row are contiguous.
template <typename T>
FC_NOINLINE void col2im_rows(const Conv2dParams& p, const T* dcol, int64_t ld, int64_t oh0,
                             int64_t oh1, int64_t Wp, T* img) {
  const int64_t C = p.in_c, KWC = p.k_w * C, Wo = p.out_w;
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const T* src = dcol + ((oh - oh0) * Wo + ow) * ld;
      T* d = img + ((oh * p.stride_h) * Wp + ow * p.stride_w) * C;
      for (int64_t kh = 0; kh < p.k_h; ++kh, src += KWC, d += Wp * C)
        for (int64_t j = 0; j < KWC; ++j) d[j] += src[j];
    }
}

bool has_padding(const Conv2dParams& p) {
  return p.pad_top || p.pad_bottom || p.pad_left || p.pad_right;
}

// Weight (output channel o, input channel i, kh, kw) in the caller's layout.
template <typename T>
struct WeightAt {
  const Conv2dParams& p;
  const T* w;
  T operator()(int64_t o, int64_t i, int64_t kh, int64_t kw) const {
    return p.layout == Layout::NCHW ? w[((o * p.in_c + i) * p.k_h + kh) * p.k_w + kw]
                                    : w[((kh * p.k_w + kw) * p.in_c + i) * p.out_c + o];
  }
};

// Copies one image (NCHW [C][H][W] or NHWC [H][W][C]) into the interior of a planar-row
// buffer [.][C][Wp] at row `top`, column `left`; the border is left as it is (zero).
template <typename T>
FC_NOINLINE void pack_planar(const T* src, bool nchw, int64_t C, int64_t H, int64_t W, int64_t top,
                 int64_t left, int64_t Wp, T* dst) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t c = 0; c < C; ++c) {
      T* d = dst + ((h + top) * C + c) * Wp + left;
      if (nchw) {  // short rows: an inline loop, not a library call per row
        const T* s = src + (c * H + h) * W;
        for (int64_t w = 0; w < W; ++w) d[w] = s[w];
      } else
        for (int64_t w = 0; w < W; ++w) d[w] = src[(h * W + w) * C + c];
    }
}

}  // namespace

bool smallc_few_channels(const Conv2dParams& p) { return p.in_c <= 16 && p.out_c <= 32; }

bool smallc_applicable(const Conv2dParams& p, ConvOp op) {
  if (p.groups != 1 || p.dil_h != 1 || p.dil_w != 1) return false;
  return op != ConvOp::Forward || p.stride_w == 1;
}

// The smallc weight gradient's memory plan, a function of the shape only: `chunks` partial
// sums of the gradient (fixed by the batch, never by the threads), and at most `threads`
// threads' scratch (an image copy and, unless read in place, a grad_out copy), all within a
// quarter of the layer's im2col buffer (counted with the widest vector, 16 lanes). chunks is
// 0 when not even one chunk and one thread fit.
struct WgradMem {
  int64_t chunks = 0;
  int threads = 1;  // >= 1
};

WgradMem smallc_wgrad_mem(const Conv2dParams& p) {
  constexpr int64_t kL = 16;
  const int64_t img = (p.in_h + p.pad_top + p.pad_bottom) * (p.in_w + p.pad_left + p.pad_right) *
                      p.in_c;
  const int64_t Kp = div_up(p.out_c, kL) * kL, taps = p.kk() * p.in_c;
  const int64_t per_thread =
      img + ((p.layout == Layout::NHWC && p.out_c % kL == 0) ? 0 : p.out_plane() * Kp);
  const int64_t wsize = taps * Kp;
  const int64_t budget = p.batch * taps * p.out_plane() / 4;
  WgradMem m;
  // as many chunks as images (<= 16), fewer where two threads' scratch would not fit beside them
  int64_t chunks = std::min<int64_t>(p.batch, 16);
  chunks = std::min(chunks, (budget - 2 * per_thread) / std::max<int64_t>(wsize, 1));
  // an even count where there are two or more: two threads then split the chunks evenly
  chunks = chunks >= 2 ? chunks / 2 * 2 : 1;
  if (chunks * wsize + per_thread > budget) return m;
  m.chunks = chunks;
  m.threads = static_cast<int>(std::clamp<int64_t>(
      (budget - chunks * wsize) / std::max<int64_t>(per_thread, 1), 1, 1024));
  return m;
}

bool smallc_fits(const Conv2dParams& p, ConvOp op) {
  // Weight gradients beyond the few-channel rule (every NHWC one): the plan caps the threads,
  // so one thread's scratch must fit
  if (op == ConvOp::WeightGrad && (p.layout == Layout::NHWC || !smallc_few_channels(p)))
    return smallc_wgrad_mem(p).chunks > 0;
  constexpr double kL = 16, kThreads = 16;  // widest vector (lanes), most threads assumed
  const auto up = [&](double n) { return std::ceil(n / kL) * kL; };
  const double img = double(p.in_h + p.pad_top + p.pad_bottom) *
                     double(p.in_w + p.pad_left + p.pad_right) * double(p.in_c);
  const double P = double(p.out_plane()), taps = double(p.kk()) * double(p.in_c);
  double per_thread = img + P * up(double(p.out_c)), shared = taps * up(double(p.out_c));
  if (op == ConvOp::InputGrad)
    per_thread = img + P * double(p.out_c) +
                 std::max<double>(kDcolPixels, double(p.out_w)) * up(taps);
  if (op == ConvOp::WeightGrad) shared *= std::min<double>(16, double(p.batch));
  const double im2col = double(p.batch) * taps * P;
  return kThreads * per_thread + shared <= im2col / 4;
}

template <typename T>
void smallc_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const SmallcKernel<T>& k = kernels().smallc<T>();
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t C = p.in_c, K = p.out_c, Kp = round_up(K, k.lanes), P = p.out_plane();
  const int64_t KH = p.k_h, KW = p.k_w;
  const int64_t Hp = p.in_h + p.pad_top + p.pad_bottom, Wp = p.in_w + p.pad_left + p.pad_right;
  AlignedArray<T> wb(checked_mul(p.kk() * C, Kp, "workspace size"));  // [kh][c][kw][Kp]
  wb.zero();
  const WeightAt<T> wat{p, w};
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kw = 0; kw < KW; ++kw)
        for (int64_t o = 0; o < K; ++o)
          wb.data()[((kh * C + c) * KW + kw) * Kp + o] = wat(o, c, kh, kw);
  AlignedArray<T> bp;
  if (bias) {
    bp.reset(Kp);
    bp.zero();
    std::memcpy(bp.data(), bias, sizeof(T) * static_cast<size_t>(K));
  }
  // NCHW with output rows that fill the vectors better than the output channels do
  // (lenet_conv1: 28 of 32 lanes against 6 of 8): output columns in the lanes, weights
  // broadcast, rows stored straight into y (same sums in the same order). Else channels in
  // the lanes, transposed per image from scratch.
  const auto fill = [&](int64_t n) { return double(n) / double(round_up(n, k.lanes)); };
  const bool col_lanes = nchw && fill(p.out_w) > fill(K);
  const int64_t Wl = round_up(p.out_w, k.lanes);
  AlignedArray<T> bt;  // bias per output row of the column-lanes pass, [K][Wl]
  if (col_lanes && bias) {
    bt.reset(checked_mul(K, Wl, "workspace size"));
    for (int64_t o = 0; o < K; ++o)
      std::fill(bt.data() + o * Wl, bt.data() + (o + 1) * Wl, bias[o]);
  }
  // (+ 16: the column-lanes pass reads whole vectors past the last row's end)
  const int64_t xs = image_size(Hp, Wp, C) + 16;
  const int64_t ys = nchw && !col_lanes ? checked_mul(P, Kp, "workspace size") : 0;
  const int64_t ld = nchw ? Kp : K;
  Scratch<T> s(threads_for(p.batch), xs + ys);
  parallel_for(p.batch, s.threads, [&](int64_t n, int tid) {
    T* buf = s.at(tid);
    pack_planar(x + n * C * p.in_h * p.in_w, nchw, C, p.in_h, p.in_w, p.pad_top, p.pad_left, Wp,
                buf);
    if (col_lanes) {
      SmallcArgs<T> A;
      A.a = wb.data();  // [(kh, c)][kw][o], r = o
      A.a_is = KW * Kp;
      A.a_ts = Kp;
      A.b_is = Wp;
      A.b_ts = 1;
      A.ni = KH * C;
      A.nt = KW;
      A.init = bias ? bt.data() : nullptr;
      A.init_rs = Wl;
      A.o_rs = P;
      A.nr = K;
      A.nl = p.out_w;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        A.b = buf + oh * p.stride_h * C * Wp;
        A.out = y + n * K * P + oh * p.out_w;
        k.run(A);
      }
      return;
    }
    T* out = nchw ? buf + xs : y + n * P * K;
    SmallcArgs<T> A;
    A.a_is = Wp;
    A.a_ts = 1;
    A.b = wb.data();
    A.b_is = KW * Kp;
    A.b_ts = Kp;
    A.ni = KH * C;
    A.nt = KW;
    A.init = bias ? bp.data() : nullptr;
    A.init_rs = 0;
    A.o_rs = ld;
    A.nr = p.out_w;
    A.nl = ld;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      A.a = buf + oh * p.stride_h * C * Wp;
      A.out = out + oh * p.out_w * ld;
      k.run(A);
    }
    if (nchw) change_layout(k, true, out, Kp, P, K, y + n * K * P);
  });
}

template <typename T>
void smallc_input_grad(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  const SmallcKernel<T>& k = kernels().smallc<T>();
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t C = p.in_c, K = p.out_c, P = p.out_plane(), Wo = p.out_w;
  const int64_t KWC = p.k_w * C, Q = p.k_h * KWC, Qp = round_up(Q, k.lanes);
  const int64_t Hp = p.in_h + p.pad_top + p.pad_bottom, Wp = p.in_w + p.pad_left + p.pad_right;
  AlignedArray<T> wq(checked_mul(K, Qp, "workspace size"));  // [o][(kh, kw, c)]
  wq.zero();
  const WeightAt<T> wat{p, w};
  for (int64_t o = 0; o < K; ++o)
    for (int64_t q = 0; q < Q; ++q)
      wq.data()[o * Qp + q] = wat(o, q % C, q / KWC, (q % KWC) / C);
  // output rows per dcol block: ~12 pixels, so the block (one 10 x 160-float row for
  // lenet_conv2) stays in L1 next to the weights, image and grad_out between the kernel and
  // col2im. lenet_conv2 at 2 threads (1 thread ~0.66 ms throughout) on the loaded 2-core
  // machine: 64-pixel blocks (38 KiB) 0.55 ms, 24 pixels 0.48-0.53 ms, 12 pixels 0.36-0.41 ms.
  const int64_t rows = std::max<int64_t>(1, kDcolPixels / Wo);
  const int64_t xs = image_size(Hp, Wp, C);
  const int64_t cs = checked_mul(rows * Wo, Qp, "workspace size");
  const int64_t ds = nchw ? 0 : checked_mul(P, K, "workspace size");
  Scratch<T> s(threads_for(p.batch), xs + cs + ds);
  parallel_for(p.batch, s.threads, [&](int64_t n, int tid) {
    T* img = s.at(tid);
    T* dcol = img + xs;
    const T* planes = dy + n * K * P;  // [o][p]
    if (!nchw) {
      change_layout(k, true, planes, K, P, K, dcol + cs);
      planes = dcol + cs;
    }
    std::memset(static_cast<void*>(img), 0, sizeof(T) * static_cast<size_t>(xs));
    SmallcArgs<T> A;
    A.a_is = 0;
    A.a_ts = P;
    A.b = wq.data();
    A.b_is = 0;
    A.b_ts = Qp;
    A.ni = 1;
    A.nt = K;
    A.init = nullptr;
    A.init_rs = 0;
    A.out = dcol;
    A.o_rs = Qp;
    A.nl = Qp;
    for (int64_t oh0 = 0; oh0 < p.out_h; oh0 += rows) {
      const int64_t oh1 = std::min(p.out_h, oh0 + rows);
      A.a = planes + oh0 * Wo;
      A.nr = (oh1 - oh0) * Wo;
      k.run(A);
      col2im_rows(p, dcol, Qp, oh0, oh1, Wp, img);
    }
    T* dxn = dx + n * C * p.in_plane();
    for (int64_t h = 0; h < p.in_h; ++h) {
      const T* r = img + ((h + p.pad_top) * Wp + p.pad_left) * C;
      if (!nchw) {
        std::memcpy(dxn + h * p.in_w * C, r, sizeof(T) * static_cast<size_t>(p.in_w * C));
        continue;
      }
      for (int64_t c = 0; c < C; ++c)
        for (int64_t w = 0; w < p.in_w; ++w) dxn[(c * p.in_h + h) * p.in_w + w] = r[w * C + c];
    }
  });
}

template <typename T>
void smallc_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  const SmallcKernel<T>& k = kernels().smallc<T>();
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t N = p.batch, C = p.in_c, K = p.out_c, Kp = round_up(K, k.lanes);
  const int64_t P = p.out_plane(), KH = p.k_h, KW = p.k_w, taps = KH * KW * C;
  const int64_t Hp = p.in_h + p.pad_top + p.pad_bottom, Wp = p.in_w + p.pad_left + p.pad_right;
  const int64_t wsize = checked_mul(taps, Kp, "workspace size");
  // Chunks of images: a count fixed by the shape (smallc_wgrad_mem), so sums never depend on
  // the threads; the threads are capped so their scratch stays within the memory plan.
  const WgradMem mem = smallc_wgrad_mem(p);
  const int64_t per_chunk = div_up(N, std::max<int64_t>(mem.chunks, 1));
  const int64_t chunks = div_up(N, per_chunk);
  AlignedArray<T> partial(checked_mul(chunks, wsize, "workspace size"));
  // Planar: x padded into planar rows [h][c][w] (row copies), one call per (kh, c) over the KW
  // taps; the partial gradient is [kh][c][kw][Kp]. Otherwise x channels-last [h][w][c] (NHWC
  // read in place when unpadded, NCHW transposed per image), one call per kh over the KW*C
  // contiguous taps; [kh][kw][c][Kp]. Planar is for NCHW images of few channels (<= 16 in,
  // <= 32 out: LeNet): lenet_conv2 planar 0.35 ms, channels-last 0.38; the ResNet stem
  // channels-last 22.2 ms, planar 33.
  const bool planar = nchw && smallc_few_channels(p);
  const bool direct_x = !nchw && !has_padding(p);
  const bool direct_dy = !nchw && K == Kp;  // NHWC rows already padded to whole vectors
  const int64_t xs = direct_x ? 0 : image_size(Hp, Wp, C);
  const int64_t dys = direct_dy ? 0 : checked_mul(P, Kp, "workspace size");
  const int64_t calls = planar ? KH * C : KH, run = taps / calls;  // taps per call
  Scratch<T> s(std::min(threads_for(chunks), mem.threads), xs + dys);
  parallel_for(chunks, s.threads, [&](int64_t ch, int tid) {
    T* buf = s.at(tid);
    T* part = partial.data() + ch * wsize;
    std::memset(static_cast<void*>(part), 0, sizeof(T) * static_cast<size_t>(wsize));
    SmallcArgs<T> A;
    A.a_is = p.stride_h * Wp * C;
    A.a_ts = planar ? p.stride_w : p.stride_w * C;
    A.b_is = p.out_w * Kp;
    A.b_ts = Kp;
    A.ni = p.out_h;
    A.nt = p.out_w;
    A.init_rs = Kp;
    A.o_rs = Kp;
    A.nr = run;
    A.nl = Kp;
    const int64_t n1 = std::min(N, (ch + 1) * per_chunk);
    for (int64_t n = ch * per_chunk; n < n1; ++n) {
      const T* xn = x + n * C * p.in_h * p.in_w;
      const T* dyn = dy + n * K * P;
      if (planar)
        pack_planar(xn, true, C, p.in_h, p.in_w, p.pad_top, p.pad_left, Wp, buf);
      else if (!direct_x)
        pack_image(k, xn, nchw, C, p.in_h, p.in_w, p.pad_top, p.pad_left, Wp, buf);
      T* db = buf + xs;
      if (nchw)
        change_layout(k, false, dyn, Kp, P, K, db);
      else if (!direct_dy)
        for (int64_t q = 0; q < P; ++q)
          for (int64_t o = 0; o < K; ++o) db[q * Kp + o] = dyn[q * K + o];
      const T* a = direct_x ? xn : buf;
      A.b = direct_dy ? dyn : db;
      for (int64_t call = 0; call < calls; ++call) {  // (kh, c) rows of the planar image, or kh
        A.a = a + call * (planar ? Wp : Wp * C);
        A.init = part + call * run * Kp;
        A.out = part + call * run * Kp;
        k.run(A);
      }
    }
  });
  // dw = sum of the partials in chunk order, in the caller's weight layout
  const T* pt = partial.data();
  for (int64_t q = 0; q < taps; ++q) {
    for (int64_t o = 0; o < K; ++o) {
      T v = pt[q * Kp + o];
      for (int64_t ch = 1; ch < chunks; ++ch) v += pt[ch * wsize + q * Kp + o];
      if (planar) {  // q = (kh*C + c)*KW + kw
        const int64_t kw = q % KW, c = (q / KW) % C, kh = q / (KW * C);
        dw[((o * C + c) * KH + kh) * KW + kw] = v;
      } else if (nchw) {  // q = (kh*KW + kw)*C + c into OIHW
        const int64_t c = q % C, kw = (q / C) % KW, kh = q / (C * KW);
        dw[((o * C + c) * KH + kh) * KW + kw] = v;
      } else {  // q = (kh*KW + kw)*C + c, the HWIO order itself
        dw[q * K + o] = v;
      }
    }
  }
}

#define FC_INSTANTIATE(T)                                                                      \
  template void smallc_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*);     \
  template void smallc_input_grad<T>(const Conv2dParams&, const T*, const T*, T*);            \
  template void smallc_weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
