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
// at the end G^T S G gives its block of the filter gradient. The tiles are cut into a number
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
constexpr int64_t kMaxLanes = 64;    // transform lanes (the GEMM's NR) at most

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
  // S (rows <= cb input channels), V, M, the gathered input / grad_y tiles, one filter tile of
  // L lanes, alignment slack
  return 36 * rows * ob + 36 * nt * (cb + ob) + 36 * L + 16 * L + 9 * L + 64;
}

// Blocking with the least estimated time (cycles, roughly; measured on Zen 4 AVX-512 float32)
// for `want` threads: the products (36 multiply-adds per tile and channel pair, W lanes per
// cycle at ~85 % of peak), the input and grad_y transforms (repeated once per o-block and
// c-block respectively), and the S block's load and store per tile block.
WgPlan make_wg_plan(const Conv2dParams& p, int64_t L, int64_t W, int want) {
  WgPlan pl;
  if (!wgrad_shape_ok(p) || L <= 0 || W <= 0 || L % W != 0) return pl;
  pl.L = L;
  pl.tw = div_up(p.out_w, 4);
  pl.tiles_img = checked_mul(div_up(p.out_h, 4), pl.tw, "winograd tiles");
  pl.tiles = checked_mul(p.batch, pl.tiles_img, "winograd tiles");
  const int64_t C = p.in_c, O = p.out_c;
  const bool nchw = p.layout == Layout::NCHW;
  checked_mul(checked_mul(C, O, "winograd size"), 36, "winograd size");
  const int64_t budget = winograd_memory_budget(p);
  pl.chunks = chunk_count(p, pl.tiles, budget);
  pl.per_chunk = div_up(pl.tiles, pl.chunks);
  pl.chunks = div_up(pl.tiles, pl.per_chunk);
  pl.shared = (pl.chunks - 1) * 9 * C * O;
  const double cx = nchw ? 10.0 : 3.0, cdy = nchw ? 8.0 : 2.0;  // per tile and channel
  double best = 0;
  for (int64_t kc = 1; kc <= div_up(C, L); ++kc) {
    const int64_t cb = round_up(div_up(C, kc), L);
    if (kc > 1 && cb == round_up(div_up(C, kc - 1), L)) continue;
    const int64_t ncb = div_up(C, cb);
    for (int64_t ko = 1; ko <= div_up(O, L); ++ko) {
      const int64_t ob = round_up(div_up(O, ko), L);
      if (ko > 1 && ob == round_up(div_up(O, ko - 1), L)) continue;
      const int64_t nob = div_up(O, ob);
      for (int64_t nt : {4, 8, 16, 24, 32, 48, 64, 96}) {
        if (nt > round_up(pl.per_chunk, 8)) break;
        const int64_t per = scratch_of(std::min(cb, C), cb, ob, nt, L);
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
  return make_wg_plan(p, kt.wino<T>().lanes, kt.smallc<T>().lanes, want);
}

// The input tile of tile (n, ti, tj), channels [c0, c0 + nc) in the lanes (zeros past them and
// in the padding): d[(r*6+s)*L + l].
template <typename T>
void gather_x(const Conv2dParams& p, const T* x, int64_t n, int64_t ti, int64_t tj, int64_t c0,
              int64_t nc, int64_t L, T* d) {
  const int64_t H = p.in_h, Wd = p.in_w, C = p.in_c;
  const int64_t h0 = 4 * ti - p.pad_top, w0 = 4 * tj - p.pad_left;
  if (p.layout == Layout::NHWC) {
    for (int r = 0; r < 6; ++r) {
      const int64_t h = h0 + r;
      for (int s = 0; s < 6; ++s) {
        const int64_t w = w0 + s;
        T* dst = d + (r * 6 + s) * L;
        int64_t l = 0;
        if (h >= 0 && h < H && w >= 0 && w < Wd) {
          const T* src = x + ((n * H + h) * Wd + w) * C + c0;
          for (; l < nc; ++l) dst[l] = src[l];
        }
        for (; l < L; ++l) dst[l] = T(0);
      }
    }
    return;
  }
  std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(36 * L));
  const int64_t r0 = std::max<int64_t>(0, -h0), r1 = std::min<int64_t>(6, H - h0);
  const int64_t s0 = std::max<int64_t>(0, -w0), s1 = std::min<int64_t>(6, Wd - w0);
  for (int64_t l = 0; l < nc; ++l) {
    const T* plane = x + (n * C + c0 + l) * H * Wd;
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = plane + (h0 + r) * Wd + w0;
      for (int64_t s = s0; s < s1; ++s) d[(r * 6 + s) * L + l] = row[s];
    }
  }
}

// An interior tile of an NCHW image, channels [c0, c0 + nc) with nc a multiple of 8, through
// the kernel's 8-lane row gather (8x8 transposes); lanes past nc are zeroed.
template <typename T>
void gather_rows(const Conv2dParams& p, const T* x, int64_t n, int64_t h0, int64_t w0,
                 int64_t c0, int64_t nc, int64_t L, const T** rows, const T* ones, T* d) {
  const WinoKernel<T>& wk = kernels().wino<T>();
  const int64_t HW = p.in_h * p.in_w;
  const T* base = x + (n * p.in_c + c0) * HW + h0 * p.in_w + w0;
  for (int64_t l0 = 0; l0 < nc; l0 += 8) {
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t i = 0; i < 8; ++i) rows[r * 8 + i] = base + (l0 + i) * HW + r * p.in_w;
    wk.gather_rows8(d, rows, ones, L, l0);
  }
  if (nc < L)
    for (int64_t rs = 0; rs < 36; ++rs)
      for (int64_t l = nc; l < L; ++l) d[rs * L + l] = T(0);
}

// The grad_y tile of tile (n, ti, tj), channels [o0, o0 + no) in the lanes (zeros past the
// output): d[(a*4+b)*L + l].
template <typename T>
void gather_dy(const Conv2dParams& p, const T* dy, int64_t n, int64_t ti, int64_t tj,
               int64_t o0, int64_t no, int64_t L, T* d) {
  const int64_t Ho = p.out_h, Wo = p.out_w, O = p.out_c;
  const int64_t h0 = 4 * ti, w0 = 4 * tj;
  if (p.layout == Layout::NHWC) {
    for (int a = 0; a < 4; ++a) {
      const int64_t h = h0 + a;
      for (int b = 0; b < 4; ++b) {
        const int64_t w = w0 + b;
        T* dst = d + (a * 4 + b) * L;
        int64_t l = 0;
        if (h < Ho && w < Wo) {
          const T* src = dy + ((n * Ho + h) * Wo + w) * O + o0;
          for (; l < no; ++l) dst[l] = src[l];
        }
        for (; l < L; ++l) dst[l] = T(0);
      }
    }
    return;
  }
  std::memset(static_cast<void*>(d), 0, sizeof(T) * static_cast<size_t>(16 * L));
  const int64_t a1 = std::min<int64_t>(4, Ho - h0), b1 = std::min<int64_t>(4, Wo - w0);
  for (int64_t l = 0; l < no; ++l) {
    const T* plane = dy + (n * O + o0 + l) * Ho * Wo;
    for (int64_t a = 0; a < a1; ++a) {
      const T* row = plane + (h0 + a) * Wo + w0;
      for (int64_t b = 0; b < b1; ++b) d[(a * 4 + b) * L + l] = row[b];
    }
  }
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
  static const std::vector<T> ones(36 * kMaxLanes, T(1));  // the row gather's mask
  FC_CHECK(L <= kMaxLanes, "winograd_weight_grad", "too many transform lanes");
  AlignedArray<unsigned char> bad(tasks + div_up(wsize, kSumBlock));
  parallel_for(tasks, pl.threads, [&](int64_t task, int tid) {
    const int64_t k = task / (pl.ncb * pl.nob), cbi = (task / pl.nob) % pl.ncb,
                  obi = task % pl.nob;
    const int64_t c0 = cbi * pl.cb, nc = std::min(pl.cb, C - c0);
    const int64_t o0 = obi * pl.ob, no = std::min(pl.ob, O - o0);
    const int64_t cbv = round_up(nc, L), obm = round_up(no, L), nt = pl.nt;
    T* S = scratch.data() + tid * per;
    T* V = S + 36 * nc * obm;
    T* M = V + 36 * nt * cbv;
    T* d = M + 36 * nt * obm;
    T* e = d + 36 * L;
    T* g = e + 16 * L;
    const T* rows[48];
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
        const int64_t h0 = 4 * ti - p.pad_top, w0 = 4 * tj - p.pad_left;
        const bool x_inside = h0 >= 0 && h0 + 6 <= p.in_h && w0 >= 0 && w0 + 6 <= p.in_w;
        const bool dy_inside = 4 * ti + 4 <= p.out_h && 4 * tj + 4 <= p.out_w;
        for (int64_t c = 0; c < cbv; c += L) {
          const int64_t lanes = std::max<int64_t>(0, std::min(L, nc - c));
          T* v = V + j * cbv + c;
          if (!nchw && x_inside && lanes == L) {  // channels-last tile read in place
            wk.in_at(x + ((n * p.in_h + h0) * p.in_w + w0) * C + c0 + c, p.in_w * C, C, v,
                     nt * cbv);
            continue;
          }
          if (nchw && x_inside && wk.gather_rows8 && lanes % 8 == 0)  // 8x8 transposes
            gather_rows(p, x, n, h0, w0, c0 + c, lanes, L, rows, ones.data(), d);
          else
            gather_x(p, x, n, ti, tj, c0 + c, lanes, L, d);
          wk.in_at(d, 6 * L, L, v, nt * cbv);
        }
        for (int64_t o = 0; o < obm; o += L) {
          const int64_t lanes = std::max<int64_t>(0, std::min(L, no - o));
          T* m = M + j * obm + o;
          if (!nchw && dy_inside && lanes == L) {
            wk.dy(dy + ((n * p.out_h + 4 * ti) * p.out_w + 4 * tj) * O + o0 + o, p.out_w * O,
                  O, m, nt * obm);
            continue;
          }
          gather_dy(p, dy, n, ti, tj, o0 + o, lanes, L, e);
          wk.dy(e, 4 * L, L, m, nt * obm);
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
    T chk = T(0);  // x * 0: 0 for finite x, NaN otherwise
    for (int64_t c = 0; c < nc; ++c)
      for (int64_t o = 0; o < no; o += L) {
        wk.dw(S + c * obm + o, nc * obm, g);
        const int64_t nl = std::min(L, no - o);
        for (int64_t ab = 0; ab < 9; ++ab) {
          const T* src = g + ab * L;
          for (int64_t l = 0; l < nl; ++l) chk += src[l] * T(0);
          if (nchw) {  // OIHW
            T* dst = out + ((o0 + o) * C + c0 + c) * 9 + ab;
            for (int64_t l = 0; l < nl; ++l) dst[l * C * 9] = src[l];
          } else {  // HWIO
            T* dst = out + (ab * C + c0 + c) * O + o0 + o;
            for (int64_t l = 0; l < nl; ++l) dst[l] = src[l];
          }
        }
      }
    bad.data()[task] = chk == chk ? 0 : 1;
  });
  // dw = ((chunk 0 + chunk 1) + chunk 2) + ..., element by element
  const int64_t nblk = pl.chunks > 1 ? div_up(wsize, kSumBlock) : 0;
  parallel_for(nblk, [&](int64_t b, int) {
    const int64_t e0 = b * kSumBlock, e1 = std::min(wsize, e0 + kSumBlock);
    for (int64_t k = 1; k < pl.chunks; ++k) {
      const T* src = partial.data() + (k - 1) * wsize;
      for (int64_t e = e0; e < e1; ++e) dw[e] += src[e];
    }
    T chk = T(0);
    for (int64_t e = e0; e < e1; ++e) chk += dw[e] * T(0);
    bad.data()[tasks + b] = chk == chk ? 0 : 1;
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
