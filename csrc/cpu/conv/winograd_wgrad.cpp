// Winograd F(4x4, 3x3) weight gradient of 3x3 stride-1 dilation-1 layers (groups == 1).
//
// The forward pass computes each 4x4 output tile as y = A^T [ U .* V ] A with U = G g G^T and
// V = B^T d B (winograd_f43.h), so the gradient of one filter g[o][c] is
//   dg[o][c] = G^T [ sum over tiles of  M[o](tile) .* V[c](tile) ] G,   M = A dy A^T
// with dy the grad_y tile (zero past the output) and d the 6x6 input tile (zero in the
// padding). The sum over tiles is 36 independent products S[xi][c][o] = sum_t V[xi][t][c] *
// M[xi][t][o], each a block product with the tiles as the reduction: the smallc kernel
// (kernels.h, SmallcArgs) runs it with c broadcast and o in the vector lanes, nothing packed.
// 36 multiply-adds per 4x4 tile and channel pair instead of 144.
//
// Work: a task is (tile chunk, c-block, o-block). It loops over blocks of nt tiles: gather and
// transform the c-block's input tiles into V[36][nt][cb] and the o-block's grad_y tiles into
// M[36][nt][ob] (channels in the transform lanes), then adds the 36 products into its S block;
// at the end G^T S G gives its block of the filter gradient. Channels-last (NHWC) tiles are
// transformed in place (edge tiles gathered with zeros first); NCHW images are copied one at a
// time, the task's channel blocks only, into zero-bordered channels-last buffers (8x8 block
// transposes over whole planes) and transformed in place there. The tiles are cut into a number
// of chunks fixed by the shape (never the thread count), summed in chunk order: every element
// of S adds its tiles in increasing order, so the result does not depend on the threads or the
// blocking. Per-thread S, V and M blocks, plus the chunk partials, stay within the same memory
// bound as the other Winograd paths (a quarter of the layer's im2col matrix).
//
// Non-finite data: the transforms mix whole tiles, so a NaN or an infinity would reach filter
// taps that never read it; the gradient is then checked, and when any value is NaN/Inf the
// function returns false and the caller recomputes it by another algorithm.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "common/workspace.h"
#include "cpu/conv/winograd.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace fastconv {
namespace {

inline int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return div_up(a, b) * b; }
constexpr int64_t kSumBlock = 4096;  // elements per task of the chunk sum
constexpr int64_t kFilterRun = 8;    // input channels per filter-transform batch (NCHW runs)

bool wgrad_shape_ok(const Conv2dParams& p) {
  return p.k_h == 3 && p.k_w == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
         p.dil_w == 1 && p.groups == 1 && p.batch > 0 && p.in_c > 0 && p.out_c > 0 &&
         p.out_h > 0 && p.out_w > 0 && p.in_h > 0 && p.in_w > 0;
}

struct WgPlan {
  bool ok = false;
  int64_t L = 0;                         // transform lanes
  int64_t tw = 0, tiles_img = 0, tiles = 0;
  int64_t chunks = 1, per_chunk = 0;     // tile chunks (shape only), tiles per chunk
  int64_t cb = 0, ncb = 0;               // input channels per block (multiple of L), blocks
  int64_t ob = 0, nob = 0;               // output channels per block (multiple of L), blocks
  int64_t nt = 0;                        // tiles per transform / product block
  int64_t xpack = 0, ypack = 0;          // NCHW: per-thread channels-last image copies
  int64_t per_thread = 0, shared = 0;    // elements
  int threads = 1;
};

// Tile chunks: 1, 2 or 4 of at least 400 tiles each (an even count, so that two threads get
// the same number of chunk tasks), fewer where their partial gradients (all but the first,
// 9*C*O each) would take more than half of the memory bound. A function of the shape only: it
// fixes the summation order.
int64_t chunk_count(const Conv2dParams& p, int64_t tiles, int64_t budget) {
  const int64_t wsize = 9 * p.in_c * p.out_c;
  int64_t c = tiles >= 1600 ? 4 : tiles >= 800 ? 2 : 1;
  while (c > 1 && (c - 1) * wsize > budget / 2) c /= 2;
  return c;
}

int64_t scratch_of(int64_t rows, int64_t cb, int64_t ob, int64_t nt, int64_t L) {
  // S (rows <= cb input channels), V, M, the gathered input / grad_y tiles, kFilterRun filter
  // tiles of L lanes, alignment slack
  return 36 * rows * ob + 36 * nt * (cb + ob) + 36 * L + 16 * L + 9 * kFilterRun * L + 64;
}

// Blocking with the least estimated time (cycles, roughly; measured on Zen 4 AVX-512 float32)
// for `want` threads: the products (36 multiply-adds per tile and channel pair, W lanes per
// cycle at ~85 % of peak), the input and grad_y transforms (repeated once per o-block and
// c-block respectively), and the S block's load and store per tile block.
WgPlan make_wg_plan(const Conv2dParams& p, int64_t L, int64_t W, int want, bool pack) {
  WgPlan pl;
  if (!wgrad_shape_ok(p) || L <= 0 || W <= 0 || L % W != 0) return pl;
  pl.L = L;
  pl.tw = div_up(p.out_w, 4);
  const int64_t th = div_up(p.out_h, 4);
  pl.tiles_img = checked_mul(th, pl.tw, "winograd tiles");
  pl.tiles = checked_mul(p.batch, pl.tiles_img, "winograd tiles");
  const int64_t C = p.in_c, O = p.out_c;
  const bool nchw = p.layout == Layout::NCHW;
  checked_mul(checked_mul(C, O, "winograd size"), 36, "winograd size");
  const int64_t budget = winograd_memory_budget(p);
  pl.chunks = chunk_count(p, pl.tiles, budget);
  pl.per_chunk = div_up(pl.tiles, pl.chunks);
  pl.chunks = div_up(pl.tiles, pl.per_chunk);
  pl.shared = (pl.chunks - 1) * 9 * C * O;
  // per tile and channel, the transform and its share of the gathers or image copies: NCHW
  // copies are transposes of the task's channel blocks, repeated per o-block (x) and c-block
  // (grad_y), about 12-16 % of r3x3_256@14 (perf); without copies, scalar gathers
  const double cx = nchw ? (pack ? 8.0 : 10.0) : 3.0, cdy = nchw ? 8.0 : 2.0;
  double best = 0;
  // block counts 1..16, then ~25 % apart: a bounded search (~50 candidates per axis) even for
  // very wide layers
  const auto next = [](int64_t k) { return k < 16 ? k + 1 : k + k / 4; };
  for (int64_t kc = 1, prev_cb = -1; kc <= div_up(C, L); kc = next(kc)) {
    const int64_t cb = round_up(div_up(C, kc), L);
    if (cb == prev_cb) continue;
    prev_cb = cb;
    const int64_t ncb = div_up(C, cb);
    for (int64_t ko = 1, prev_ob = -1; ko <= div_up(O, L); ko = next(ko)) {
      const int64_t ob = round_up(div_up(O, ko), L);
      if (ob == prev_ob) continue;
      prev_ob = ob;
      const int64_t nob = div_up(O, ob);
      for (int64_t nt : {4, 8, 16, 24, 32, 48, 64, 96}) {
        if (nt > round_up(pl.per_chunk, 8)) break;
        const int64_t xpack = pack ? (4 * th + 2) * (4 * pl.tw + 2) * cb : 0;
        const int64_t ypack = pack ? 16 * th * pl.tw * ob : 0;
        const int64_t per = scratch_of(std::min(cb, C), cb, ob, nt, L) + xpack + ypack;
        if (pl.shared + per > budget) continue;
        const int64_t tasks = pl.chunks * ncb * nob;
        const int64_t thr = std::min<int64_t>({int64_t(want), tasks, (budget - pl.shared) / per});
        const double pc = double(pl.per_chunk), nblk = double(div_up(pl.per_chunk, nt));
        const double cost_task = 36.0 * double(cb) * double(ob) * pc / double(W) * 1.15 +
                                 cx * double(cb) * pc + cdy * double(ob) * pc +
                                 2.0 * 36.0 * double(cb) * double(ob) * nblk / double(W);
        const double cost = double(div_up(tasks, thr)) * cost_task;
        if (!pl.ok || cost < best) {
          best = cost;
          pl.ok = true;
          pl.cb = cb; pl.ncb = ncb; pl.ob = ob; pl.nob = nob; pl.nt = nt;
          pl.per_thread = per;
          pl.xpack = xpack;
          pl.ypack = ypack;
          pl.threads = static_cast<int>(thr);
        }
      }
    }
  }
  return pl;
}

template <typename T>
WgPlan plan_for(const Conv2dParams& p, int want) {
  const KernelTable& kt = kernels();
  // NCHW: with channels-last copies of the images where they fit, scalar gathers otherwise
  const bool nchw = p.layout == Layout::NCHW;
  const WgPlan pl = make_wg_plan(p, kt.wino<T>().lanes, kt.smallc<T>().lanes, want, nchw);
  return pl.ok || !nchw ? pl : make_wg_plan(p, kt.wino<T>().lanes, kt.smallc<T>().lanes, want,
                                            false);
}

// The S x S tile at (h0, w0) of image n (H x W, C channels, NCHW or NHWC), channels
// [c0, c0 + nc) in the lanes, zeros past them and outside the image: d[(r*S + s)*L + l]. For
// NHWC edge tiles (interior ones are transformed in place) and NCHW layers too small for the
// image copies; input tiles are 6 x 6 (the padding outside), grad_y tiles 4 x 4.
template <typename T>
void gather_tile(const T* src, bool nchw, int64_t n, int64_t C, int64_t H, int64_t W,
                 int64_t h0, int64_t w0, int S, int64_t c0, int64_t nc, int64_t L, T* d) {
  const int64_t r0 = std::max<int64_t>(0, -h0), r1 = std::min<int64_t>(S, H - h0);
  const int64_t s0 = std::max<int64_t>(0, -w0), s1 = std::min<int64_t>(S, W - w0);
  if (nchw) {
    std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(S * S * L));
    for (int64_t l = 0; l < nc; ++l) {
      const T* plane = src + (n * C + c0 + l) * H * W;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t s = s0; s < s1; ++s) d[(r * S + s) * L + l] = plane[(h0 + r) * W + w0 + s];
    }
    return;
  }
  for (int64_t r = 0; r < S; ++r)
    for (int64_t s = 0; s < S; ++s) {
      T* dst = d + (r * S + s) * L;
      int64_t l = 0;
      if (r >= r0 && r < r1 && s >= s0 && s < s1) {
        const T* px = src + ((n * H + h0 + r) * W + w0 + s) * C + c0;
        for (; l < nc; ++l) dst[l] = px[l];
      }
      for (; l < L; ++l) dst[l] = T(0);
    }
}

// planes_to_channels_last (below) with TB x TB block transposes (TB == 1: element copies).
template <typename T, int TB>
void planes_to_channels_last_tb(const SmallcKernel<T>& k, const T* src, int64_t C, int64_t H,
                                int64_t W, int64_t top, int64_t left, int64_t Wp, int64_t ld,
                                T* dst) {
  const int64_t P = H * W;
  const auto at = [&](int64_t q) { return dst + ((q / W + top) * Wp + left + q % W) * ld; };
  const int64_t cb = TB > 1 ? C / TB * TB : 0, pb = TB > 1 ? P / TB * TB : 0;
  if (TB > 1 && W % TB == 0) {  // whole blocks in every row: transposed straight into place
    for (int64_t h = 0; h < H; ++h) {
      T* row = dst + ((h + top) * Wp + left) * ld;
      for (int64_t w = 0; w < W; w += TB)
        for (int64_t c = 0; c < cb; c += TB)
          k.transpose(src + c * P + h * W + w, P, row + w * ld + c, ld);
    }
  } else if (TB > 1) {
    alignas(64) T t[TB * TB];
    T* px[TB];
    for (int64_t q = 0; q < pb; q += TB) {
      for (int j = 0; j < TB; ++j) px[j] = at(q + j);
      for (int64_t c = 0; c < cb; c += TB) {
        k.transpose(src + c * P + q, P, t, TB);  // t[j*TB + i] = channel c+i of pixel q+j
        for (int j = 0; j < TB; ++j)
          for (int i = 0; i < TB; ++i) px[j][c + i] = t[j * TB + i];
      }
    }
  }
  for (int64_t q = 0; q < P; ++q) {
    T* d = at(q);
    for (int64_t c = q < pb ? cb : 0; c < C; ++c) d[c] = src[c * P + q];
  }
}

// NCHW planes [C][H][W] (plane stride H*W) into the interior of a channels-last buffer
// [.][Wp][ld] at row `top`, column `left`: dst[((h + top)*Wp + left + w)*ld + c], through the
// kernel's 8x8 block transposes. Rows of whole blocks are transposed straight into place;
// otherwise each plane is taken as one run of H*W pixels, so the blocks cover it whatever the
// width (14-wide rows would leave 6 of every 14 pixels to scalar copies), a transposed block
// going through a small buffer and each pixel's 8 channels stored where that pixel lies.
// The tails are copied element by element.
template <typename T>
void planes_to_channels_last(const T* src, int64_t C, int64_t H, int64_t W, int64_t top,
                             int64_t left, int64_t Wp, int64_t ld, T* dst) {
  const SmallcKernel<T>& k = kernels().smallc<T>();
  if (k.transpose && k.tb == 8)
    planes_to_channels_last_tb<T, 8>(k, src, C, H, W, top, left, Wp, ld, dst);
  else
    planes_to_channels_last_tb<T, 1>(k, src, C, H, W, top, left, Wp, ld, dst);
}

// 1 when a[0, n) holds a NaN or an infinity (x - x is 0 exactly for finite x); an integer OR
// reduction, so it vectorises (a float sum of x * 0 would be one serial add chain).
template <typename T>
int non_finite(const T* a, int64_t n) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= !(a[i] - a[i] == T(0));
  return bad;
}

// Returns false when any value of the gradient is NaN or +-Inf.
template <typename T>
bool run_wgrad(const Conv2dParams& p, const WgPlan& pl, const T* dy, const T* x, T* dw) {
  const KernelTable& kt = kernels();
  const WinoKernel<T>& wk = kt.wino<T>();
  const SmallcKernel<T>& sk = kt.smallc<T>();
  const int64_t C = p.in_c, O = p.out_c, L = pl.L, wsize = 9 * C * O;
  const bool nchw = p.layout == Layout::NCHW;
  AlignedArray<T> partial(pl.shared);
  const int64_t per = round_up(pl.per_thread, 16);
  AlignedArray<T> scratch(checked_mul(per, pl.threads, "workspace size"));
  const int64_t tasks = pl.chunks * pl.ncb * pl.nob;
  std::vector<unsigned char> zeroed(pl.threads, 0);
  const bool pack = pl.xpack > 0;
  const int64_t nblk = pl.chunks > 1 ? div_up(wsize, kSumBlock) : 0;  // chunk-sum tasks
  AlignedArray<unsigned char> bad(tasks + nblk);
  parallel_for(tasks, pl.threads, [&](int64_t task, int tid) {
    const int64_t k = task / (pl.ncb * pl.nob), cbi = (task / pl.nob) % pl.ncb,
                  obi = task % pl.nob;
    const int64_t c0 = cbi * pl.cb, nc = std::min(pl.cb, C - c0);
    const int64_t o0 = obi * pl.ob, no = std::min(pl.ob, O - o0);
    const int64_t cbv = round_up(nc, L), obm = round_up(no, L), nt = pl.nt;
    // NCHW image copies first (the same place for every task of the thread), then S, V, M,
    // the gathered tiles and the filter tiles (sized by this task's blocks)
    T* xb = scratch.data() + tid * per;
    T* yb = xb + pl.xpack;
    T* S = yb + pl.ypack;
    T* V = S + 36 * nc * obm;
    T* M = V + 36 * nt * cbv;
    T* d = M + 36 * nt * obm;
    T* e = d + 36 * L;
    T* g = e + 16 * L;
    // NCHW: zero-bordered channels-last copies of one image's channel blocks, xb [4*th + 2]
    // [xw][cb] with the image at (pad_top, pad_left) and yb [4*th][yw][ob] (the plan's block
    // sizes: the same layout for every task), so every tile is read in place like an interior
    // NHWC one. Zeroed once per thread: only the interiors are rewritten (lanes past a smaller
    // last block keep values of an earlier block that no output reads).
    const int64_t xw = 4 * pl.tw + 2, yw = 4 * pl.tw;
    if (pack && !zeroed[tid]) {
      std::memset(static_cast<void*>(xb), 0, sizeof(T) * static_cast<size_t>(pl.xpack + pl.ypack));
      zeroed[tid] = 1;
    }
    int64_t packed = -1;
    const int64_t t0 = k * pl.per_chunk, t1 = std::min(pl.tiles, t0 + pl.per_chunk);
    SmallcArgs<T> A;
    A.a_is = 0;
    A.a_ts = cbv;
    A.b_is = 0;
    A.b_ts = obm;
    A.ni = 1;
    A.init_rs = obm;
    A.o_rs = obm;
    A.nr = nc;
    A.nl = obm;
    for (int64_t tb = t0; tb < t1; tb += nt) {
      const int64_t nb = std::min(nt, t1 - tb);
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t t = tb + j, n = t / pl.tiles_img, ti = (t % pl.tiles_img) / pl.tw,
                      tj = t % pl.tw;
        if (pack && n != packed) {  // the task's channel blocks of image n, channels-last
          planes_to_channels_last(x + (n * C + c0) * p.in_h * p.in_w, nc, p.in_h, p.in_w,
                                  p.pad_top, p.pad_left, xw, pl.cb, xb);
          planes_to_channels_last(dy + (n * O + o0) * p.out_h * p.out_w, no, p.out_h, p.out_w,
                                  0, 0, yw, pl.ob, yb);
          packed = n;
        }
        const int64_t h0 = 4 * ti - p.pad_top, w0 = 4 * tj - p.pad_left;
        const bool x_inside = h0 >= 0 && h0 + 6 <= p.in_h && w0 >= 0 && w0 + 6 <= p.in_w;
        const bool dy_inside = 4 * ti + 4 <= p.out_h && 4 * tj + 4 <= p.out_w;
        for (int64_t c = 0; c < cbv; c += L) {
          T* v = V + j * cbv + c;
          if (pack) {
            wk.in_at(xb + (4 * ti * xw + 4 * tj) * pl.cb + c, xw * pl.cb, pl.cb, v, nt * cbv);
          } else if (!nchw && x_inside && c + L <= nc) {  // channels-last tile read in place
            wk.in_at(x + ((n * p.in_h + h0) * p.in_w + w0) * C + c0 + c, p.in_w * C, C, v,
                     nt * cbv);
          } else {
            gather_tile(x, nchw, n, C, p.in_h, p.in_w, h0, w0, 6, c0 + c,
                        std::max<int64_t>(0, std::min(L, nc - c)), L, d);
            wk.in_at(d, 6 * L, L, v, nt * cbv);
          }
        }
        for (int64_t o = 0; o < obm; o += L) {
          T* m = M + j * obm + o;
          if (pack) {
            wk.dy(yb + (4 * ti * yw + 4 * tj) * pl.ob + o, yw * pl.ob, pl.ob, m, nt * obm);
          } else if (!nchw && dy_inside && o + L <= no) {
            wk.dy(dy + ((n * p.out_h + 4 * ti) * p.out_w + 4 * tj) * O + o0 + o, p.out_w * O,
                  O, m, nt * obm);
          } else {
            gather_tile(dy, nchw, n, O, p.out_h, p.out_w, 4 * ti, 4 * tj, 4, o0 + o,
                        std::max<int64_t>(0, std::min(L, no - o)), L, e);
            wk.dy(e, 4 * L, L, m, nt * obm);
          }
        }
      }
      A.nt = nb;
      for (int64_t xi = 0; xi < 36; ++xi) {
        A.a = V + xi * nt * cbv;
        A.b = M + xi * nt * obm;
        A.out = S + xi * nc * obm;
        A.init = tb == t0 ? nullptr : A.out;
        sk.run(A);
      }
    }
    // G^T S G for every (c, o) of the block, into dw (chunk 0) or the chunk's partial, in the
    // caller's weight layout
    T* out = k == 0 ? dw : partial.data() + (k - 1) * wsize;
    int bad_task = 0;
    for (int64_t c = 0; c < nc; c += kFilterRun)
      for (int64_t o = 0; o < no; o += L) {
        const int64_t nl = std::min(L, no - o), ncr = std::min(kFilterRun, nc - c);
        for (int64_t cc = 0; cc < ncr; ++cc) {
          T* gc = g + cc * 9 * L;
          wk.dw(S + (c + cc) * obm + o, nc * obm, gc);
          bad_task |= non_finite(gc, 9 * L);
          if (!nchw)  // HWIO: the lanes are contiguous output channels
            for (int64_t ab = 0; ab < 9; ++ab) {
              T* dst = out + (ab * C + c0 + c + cc) * O + o0 + o;
              for (int64_t l = 0; l < nl; ++l) dst[l] = gc[ab * L + l];
            }
        }
        if (nchw)  // OIHW: per output channel, the ncr x 9 taps are one contiguous run
          for (int64_t l = 0; l < nl; ++l) {
            T* dst = out + ((o0 + o + l) * C + c0 + c) * 9;
            for (int64_t cc = 0; cc < ncr; ++cc)
              for (int64_t ab = 0; ab < 9; ++ab) dst[cc * 9 + ab] = g[(cc * 9 + ab) * L + l];
          }
      }
    bad.data()[task] = static_cast<unsigned char>(bad_task);
  });
  // dw = ((chunk 0 + chunk 1) + chunk 2) + ..., element by element
  parallel_for(nblk, [&](int64_t b, int) {
    const int64_t e0 = b * kSumBlock, e1 = std::min(wsize, e0 + kSumBlock);
    for (int64_t k = 1; k < pl.chunks; ++k) {
      const T* src = partial.data() + (k - 1) * wsize;
      for (int64_t e = e0; e < e1; ++e) dw[e] += src[e];
    }
    bad.data()[tasks + b] = static_cast<unsigned char>(non_finite(dw + e0, e1 - e0));
  });
  for (int64_t i = 0; i < tasks + nblk; ++i)
    if (bad.data()[i]) return false;
  return true;
}

}  // namespace

bool winograd_weight_grad_applicable(const Conv2dParams& p) {
  return wgrad_shape_ok(p) && plan_for<float>(p, 1).ok && plan_for<double>(p, 1).ok;
}

template <typename T>
bool winograd_weight_grad(const Conv2dParams& p, const T* dy, const T* x, T* dw) {
  FC_CHECK(wgrad_shape_ok(p), "winograd_weight_grad",
           "needs a 3x3 stride-1 dilation-1 layer without groups");
  const int64_t tiles = p.batch * div_up(p.out_h, 4) * div_up(p.out_w, 4);
  const int want = threads_for(std::max<int64_t>(tiles, 1));
  const WgPlan pl = plan_for<T>(p, want);
  FC_CHECK(pl.ok, "winograd_weight_grad",
           "layer not supported (check winograd_weight_grad_applicable first)");
  // NaN/Inf anywhere in the operands reaches the gradient as a NaN/Inf (0 * inf is NaN in
  // the products); the caller then recomputes it with the library's exact propagation rule
  return run_wgrad(p, pl, dy, x, dw);
}

template bool winograd_weight_grad<float>(const Conv2dParams&, const float*, const float*,
                                          float*);
template bool winograd_weight_grad<double>(const Conv2dParams&, const double*, const double*,
                                           double*);

}  // namespace fastconv
