// Winograd F(4x4, 3x3): y tile (4x4) = A^T [ sum_c U[o][c] .* V[c][tile] ] A with
// U = G g G^T (transformed filters) and V = B^T d B (transformed 6x6 input tiles).
//
// Both directions are one "correlation" problem Corr: per group, out[n][o][h][w] =
// sum_{c,a,b} f(o, c, a, b) * in[n][c][h - pad_top + a][w - pad_left + b] (+ bias[o]), with the
// operands described by element strides, so NCHW/NHWC and the rotated, channel-swapped filters
// of the input gradient are only different strides.
//
// Work: the tiles of all images of a group form one sequence (small images share a block).
// A task is (group, o-block, tile-block); it loops over c-blocks:
//   gather + input transform of the c-block -> V[36][tile panel][c][NR]  (GEMM B panels)
//   36 GEMMs  M[xi][o][tile] (+)= U[xi][o panel][c][MR] * V[xi][panel][c][NR]  (microkernel)
// then the output transform writes y (bias added, partial edge tiles cut). Tasks own disjoint
// outputs and sum in a fixed order (c within a block, then blocks in order), so results do not
// depend on the thread count. Transforms run NR tiles (or filters) at once in the vector lanes
// (kernels/<isa>/winograd.cpp); gathers and scatters are scalar copies, except the AVX2 8x8
// transposing gathers for float inputs (NHWC: 8 channels; NCHW: rows of interior tiles).
#include "cpu/conv/winograd.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "common/workspace.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace fastconv {
namespace {

inline int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return div_up(a, b) * b; }

constexpr int64_t kChunk = 8;  // channels gathered (inputs) / transformed (outputs) at once

// dst[0, n) = src[0, n) for n <= NR: fixed-size (inlined vector) copies for a full NR.
template <int W, typename T>
inline void copy_fixed(T* __restrict__ dst, const T* __restrict__ src) {
  for (int l = 0; l < W; ++l) dst[l] = src[l];
}
template <typename T>
inline void copy_lanes(T* __restrict__ dst, const T* __restrict__ src, int64_t n, int64_t NR) {
  if (n == NR) {
    switch (NR) {
      case 4: return copy_fixed<4>(dst, src);
      case 8: return copy_fixed<8>(dst, src);
      case 16: return copy_fixed<16>(dst, src);
      case 32: return copy_fixed<32>(dst, src);
      default: break;
    }
  }
  for (int64_t l = 0; l < n; ++l) dst[l] = src[l];
}

// d[e] = src[off[e]] * msk[e], e < n (a separate function keeps the loop's pointers in registers)
template <typename T>
__attribute__((noinline)) void gather_masked(T* __restrict__ d, const T* __restrict__ src,
                                             const int64_t* __restrict__ off,
                                             const T* __restrict__ msk, int64_t n) {
  for (int64_t e = 0; e < n; ++e) d[e] = src[off[e]] * msk[e];
}

// y[doff[i]] = e[eidx[i]] + b, i < k
template <typename T>
__attribute__((noinline)) void scatter_bias(T* __restrict__ y, const T* __restrict__ e,
                                            const int64_t* __restrict__ doff,
                                            const int64_t* __restrict__ eidx, int64_t k, T b) {
  for (int64_t i = 0; i < k; ++i) y[doff[i]] = e[eidx[i]] + b;
}

// Channels-contiguous input (NHWC): d[c*ds + e] = src[off[e] + c] * msk[e], e < n, c < nc.
// Channel-inner keeps each source line in L1 across the chunk's channels.
template <typename T>
__attribute__((noinline)) void gather_masked_cinner(T* __restrict__ d, int64_t ds,
                                                    const T* __restrict__ src,
                                                    const int64_t* __restrict__ off,
                                                    const T* __restrict__ msk, int64_t n,
                                                    int64_t nc) {
  for (int64_t e = 0; e < n; ++e) {
    const T* s = src + off[e];
    const T m = msk[e];
    for (int64_t c = 0; c < nc; ++c) d[c * ds + e] = s[c] * m;
  }
}

struct Corr {
  int64_t N = 0, G = 0, Cg = 0, Og = 0;  // images, groups, in/out channels per group
  int64_t H = 0, W = 0, Ho = 0, Wo = 0;  // input and output spatial sizes
  int64_t pt = 0, pl = 0;                // padding top/left (negative: cropping)
  int64_t xn = 0, xc = 0, xh = 0, xw = 0;  // input element strides (channel: global index)
  int64_t yn = 0, yc = 0, yh = 0, yw = 0;  // output element strides
  int64_t fg = 0, fo = 0, fc = 0, fa = 0, fb = 0;  // filter strides (may be negative)
  int64_t budget = 0;                    // elements of extra memory allowed
};

// Blocking of one call; sizes in elements of T.
struct Plan {
  bool ok = false;
  int64_t nr = 0, mr = 0;
  int64_t tiles_w = 0, tiles_img = 0, tiles = 0;  // per row, per image, per group (all images)
  int64_t nt = 0, nb = 0;   // tiles per block (multiple of nr), blocks
  int64_t ob = 0, nob = 0;  // output channels per block, blocks
  int64_t cb = 0, ncb = 0;  // input channels per block, blocks
  int64_t ublk = 0;         // one U block (36 x round_up(ob, mr) x cb)
  bool shared_u = false;    // all U blocks computed once per call (else per task and c-block)
  int64_t per_thread = 0, shared = 0;
  int max_threads = 1;
};

// Per-thread scratch (elements) for blocks (cb, ob, nt), plus the U block when not shared.
int64_t scratch_of(int64_t cb, int64_t ob, int64_t nt, int64_t nr) {
  // V, M, gathered inputs (also a panel's filter taps, 9 x nr x mr, while weights are
  // transformed), output staging, filter taps, U tile, masks, offsets (int64 as 2 T for
  // float), alignment slack
  return 36 * cb * nt + 36 * ob * nt + kChunk * 36 * nr + kChunk * 16 * nr + 9 * nr + 36 * nr +
         36 * nr + 36 * nr * 2 + 64 + 16;
}

// Blocking: the cheapest candidate by a small cost model (cycles, roughly calibrated on Zen 3
// AVX2 float32 with perf) among those that fit the memory bound:
//   GEMM        36 * ob_padded * Cg * tiles_padded multiply-adds, NR*2 per cycle
//   inputs      gathered and transformed once per o-block (nob times), ~gi cycles per tile x c
//   weights     transformed once per call (shared U) or once per tile block (per-task U)
//   outputs     once, ~go cycles per tile x o
// divided by the threads that can run (tasks, and the memory bound per thread).
// The c-block fixes the summation order, so it must not depend on the thread count: it is
// chosen by a one-thread search (want = 1, cb_fixed = 0), then the other blocks are searched
// again with the real thread count and that c-block (cb_fixed).
Plan make_plan(const Corr& q, int64_t nr, int64_t mr, int64_t elem_bytes, int want,
               int64_t cb_fixed) {
  Plan pl;
  pl.nr = nr;
  pl.mr = mr;
  pl.tiles_w = div_up(q.Wo, 4);
  pl.tiles_img = div_up(q.Ho, 4) * pl.tiles_w;
  pl.tiles = checked_mul(q.N, pl.tiles_img, "winograd tiles");
  if (pl.tiles == 0 || q.Cg == 0 || q.Og == 0) return pl;
  checked_mul(checked_mul(q.G, q.Og, "winograd size"), checked_mul(q.Cg, 36, "winograd size"),
              "winograd size");
  const double c_mac = 1.15 / (2.0 * nr), c_in = 40.0 + 240.0 / nr, c_w = 30.0 + 160.0 / nr,
               c_out = 20.0 + 300.0 / nr;
  const double l2 = double(512 << 10) / elem_bytes;
  static const int64_t splits[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128};
  double best = 0;
  int64_t prev_ob = -1;
  for (int64_t ko : splits) {
    const int64_t ob = std::min(q.Og, round_up(div_up(q.Og, ko), mr));
    if (ko > 1 && ob < 16) break;
    if (ob == prev_ob) continue;
    prev_ob = ob;
    const int64_t nob = div_up(q.Og, ob);
    int64_t prev_cb = -1;
    for (int64_t kc : splits) {
      const int64_t cb = div_up(q.Cg, kc);
      if (kc > 1 && cb < 8) break;
      if (cb > 256 || cb == prev_cb || (cb_fixed && cb != cb_fixed)) continue;
      prev_cb = cb;
      const int64_t ncb = div_up(q.Cg, cb);
      const int64_t ublk = 36 * round_up(ob, mr) * cb;
      const int64_t all_u = q.G * nob * ncb * ublk;
      int64_t prev_nt = -1;
      for (int64_t kt : splits) {
        const int64_t nt = round_up(div_up(pl.tiles, kt), nr);
        if (nt == prev_nt) continue;
        prev_nt = nt;
        const int64_t nb = div_up(pl.tiles, nt);
        const int64_t tasks = q.G * nob * nb;
        const double tpad = double(nb) * round_up(std::min(nt, pl.tiles), nr);
        const double ws = 36.0 * (cb + ob) * nt;
        // short GEMM depth: the C tile load/store per microkernel call is paid per cb
        const double gemm = 36.0 * round_up(ob, mr) * nob * q.Cg * tpad * c_mac *
                            (ws > l2 ? 1.15 : 1.0) * (1.0 + 6.0 / double(cb));
        const double base = q.G * (gemm + double(nob) * q.Cg * tpad * c_in + double(q.Og) * tpad * c_out);
        for (int shared = 1; shared >= 0; --shared) {
          const int64_t per = scratch_of(cb, ob, nt, nr) + (shared ? 0 : ublk);
          const int64_t fixed = shared ? all_u : 0;
          if (fixed + per > q.budget) continue;
          const int64_t thr = std::min<int64_t>({int64_t(want), tasks, (q.budget - fixed) / per});
          const double wcost = double(q.G) * q.Og * q.Cg * c_w * (shared ? 1.0 : double(nb));
          // shared U is transformed in parallel over its blocks
          const double t = (base + (shared ? 0.0 : wcost)) / double(thr) +
                           (shared ? wcost / double(std::min<int64_t>(want, q.G * nob * ncb)) : 0.0);
          if (pl.ok && t >= best) continue;
          best = t;
          pl.ok = true;
          pl.nt = nt;
          pl.nb = nb;
          pl.ob = ob;
          pl.nob = nob;
          pl.cb = cb;
          pl.ncb = ncb;
          pl.ublk = ublk;
          pl.shared_u = shared;
          pl.per_thread = per;
          pl.shared = fixed;
          pl.max_threads = static_cast<int>(thr);
        }
        if (nt == nr) break;
      }
    }
  }
  return pl;
}

template <typename T>
struct Runner {
  const Corr& q;
  const Plan& pl;
  const GemmKernel<T>& g;
  const WinoKernel<T>& wk;
  const T* x;
  const T* f;
  const T* bias;
  T* y;

  // t[c*MR + r] = f[r*fo + c*fc] for c < cbl, r < rows (zero for rows <= r < MR): one tap of
  // an output panel's filter; the HWIO strides are spelled out so the copies run along the
  // filter's contiguous dimension with constant bounds.
  void panel_taps(const T* f0, int64_t rows, int64_t cbl, T* t) const {
    const int64_t MR = pl.mr;
    if (MR == 6 && rows == 6 && q.fo == 1) {  // HWIO forward: 6 contiguous outputs per channel
      for (int64_t c = 0; c < cbl; ++c) std::memcpy(t + c * 6, f0 + c * q.fc, 6 * sizeof(T));
      return;
    }
    if (MR == 6 && rows == 6 && q.fc == 1) {  // HWIO input gradient: channels contiguous
      // (the 6 rows of the 9 taps lie far apart, 54 short runs per panel step that the
      // hardware prefetchers do not follow: the same runs of the next step are prefetched)
      for (int64_t r = 0; r < 6; ++r) {
        const T* s = f0 + r * q.fo;
        const char* nx = reinterpret_cast<const char*>(s + cbl);
        for (int64_t b = 0; b < cbl * int64_t(sizeof(T)); b += 64) __builtin_prefetch(nx + b);
        for (int64_t c = 0; c < cbl; ++c) t[c * 6 + r] = s[c];
      }
      return;
    }
    for (int64_t c = 0; c < cbl; ++c)
      for (int64_t r = 0; r < MR; ++r) t[c * MR + r] = r < rows ? f0[r * q.fo + c * q.fc] : T(0);
  }

  // U block (group gi, o-block ob, c-block cb) into u: [36][o panel][c][MR], zero rows past Og.
  // The lanes of one transform are NR consecutive elements of a panel's flat (c, o % MR) index,
  // so each of the 36 results is one contiguous run of the packed A panel. The panel's filter
  // taps are first copied, NR channels at a time, into taps [9][NR * MR] (panel_taps), so each
  // transform's 9 x NR inputs are 9 contiguous runs. (Gathering them lane by lane from the
  // filter took 12 % (forward) and 21 % (input gradient) of r3x3_512@7 NHWC, whose 9 taps lie
  // Cg * O apart in HWIO.)
  void weight_block(int64_t gi, int64_t obi, int64_t cbi, T* u, T* gbuf, T* ubuf,
                    T* taps) const {
    const int64_t NR = pl.nr, MR = pl.mr;
    const int64_t o0 = obi * pl.ob, obl = std::min(pl.ob, q.Og - o0);
    const int64_t c0 = cbi * pl.cb, cbl = std::min(pl.cb, q.Cg - c0);
    const int64_t nop = div_up(obl, MR), flat = cbl * MR, xs = nop * flat;
    const T* fb = f + gi * q.fg + o0 * q.fo + c0 * q.fc;
    for (int64_t op = 0; op < nop; ++op) {
      const int64_t rows = std::min(MR, obl - op * MR);
      // NR channels at a time: NR * MR lanes, a whole number of transforms
      for (int64_t c1 = 0; c1 < cbl; c1 += NR) {
        const int64_t cn = std::min(NR, cbl - c1), cflat = cn * MR;
        for (int64_t k = 0; k < 9; ++k)
          panel_taps(fb + (k / 3) * q.fa + (k % 3) * q.fb + op * MR * q.fo + c1 * q.fc, rows, cn,
                     taps + k * cflat);
        for (int64_t e0 = 0; e0 < cflat; e0 += NR) {
          const int64_t n = std::min(NR, cflat - e0);
          for (int64_t k = 0; k < 9; ++k) {
            std::memcpy(gbuf + k * NR, taps + k * cflat + e0, sizeof(T) * static_cast<size_t>(n));
            if (n < NR)
              std::memset(static_cast<void*>(gbuf + k * NR + n), 0,
                          sizeof(T) * static_cast<size_t>(NR - n));
          }
          wk.weight(gbuf, ubuf);
          T* dst = u + op * flat + c1 * MR + e0;
          for (int64_t xi = 0; xi < 36; ++xi) copy_lanes(dst + xi * xs, ubuf + xi * NR, n, NR);
        }
      }
    }
  }

  // Tile t of the group's sequence -> image, top-left output pixel.
  void tile_pos(int64_t t, int64_t& n, int64_t& oh, int64_t& ow) const {
    n = t / pl.tiles_img;
    const int64_t r = t % pl.tiles_img;
    oh = (r / pl.tiles_w) * 4;
    ow = (r % pl.tiles_w) * 4;
  }

  // V for channels [c0, c0+cbl) of group gi and tiles [t0, t0+ntl): [36][panel][c][NR].
  // Gather: per tile panel a table of 36 x NR source offsets (clamped into the image) and 0/1
  // masks; out-of-range inputs become x * 0 = 0, exact because the operands were checked to be
  // finite. The lane loop has contiguous stores (it vectorises with element-wise loads).
  void input_block(int64_t gi, int64_t c0, int64_t cbl, int64_t t0, int64_t ntl, T* v,
                   T* dbuf, int64_t* off, T* msk) const {
    const int64_t NR = pl.nr, np = div_up(ntl, NR);
    const int64_t vs = np * cbl * NR;  // stride between the 36 positions
    const T* xg = x + (gi * q.Cg + c0) * q.xc;
    alignas(64) static const T zeros[8] = {};  // a readable row for lanes patched afterwards
    for (int64_t p = 0; p < np; ++p) {
      // Lanes whose 6 columns are all inside the image (width-contiguous inputs): their rows
      // go through the vector row gather, the others are patched with scalar copies.
      uint64_t interior = 0;
      const bool rows_vec = wk.gather_rows8 && q.xw == 1 && NR % 8 == 0 && NR <= 64;
      for (int64_t l = 0; l < NR; ++l) {
        const int64_t t = p * NR + l;
        int64_t n = 0, oh = 0, ow = 0;
        const bool live = t < ntl;
        if (live) tile_pos(t0 + t, n, oh, ow);
        if (rows_vec && live && ow - q.pl >= 0 && ow - q.pl + 6 <= q.W)
          interior |= uint64_t(1) << l;
        for (int64_t r = 0; r < 6; ++r) {
          const int64_t h = oh - q.pt + r, hc = std::min(std::max<int64_t>(h, 0), q.H - 1);
          for (int64_t s = 0; s < 6; ++s) {
            const int64_t w = ow - q.pl + s, wc = std::min(std::max<int64_t>(w, 0), q.W - 1);
            const bool in = live && h == hc && w == wc;
            off[(r * 6 + s) * NR + l] = n * q.xn + hc * q.xh + wc * q.xw;
            msk[(r * 6 + s) * NR + l] = in ? T(1) : T(0);
          }
        }
      }
      for (int64_t cc = 0; cc < cbl; cc += kChunk) {
        const int64_t nc = std::min(kChunk, cbl - cc);
        if (q.xc == 1 && nc == 8 && wk.gather8) {
          wk.gather8(dbuf, 36 * NR, xg + cc, off, msk, 36 * NR);
        } else if (q.xc == 1) {
          gather_masked_cinner(dbuf, 36 * NR, xg + cc, off, msk, 36 * NR, nc);
        } else {
          for (int64_t c = 0; c < nc; ++c) {
            T* d = dbuf + c * 36 * NR;
            const T* xcp = xg + (cc + c) * q.xc;
            if (interior == 0) {
              gather_masked(d, xcp, off, msk, 36 * NR);
              continue;
            }
            for (int64_t l0 = 0; l0 < NR; l0 += 8) {
              const unsigned grp = static_cast<unsigned>((interior >> l0) & 0xff);
              if (grp) {
                const T* rows[48];
                for (int64_t r = 0; r < 6; ++r)
                  for (int64_t i = 0; i < 8; ++i)
                    rows[r * 8 + i] = ((grp >> i) & 1) ? xcp + off[r * 6 * NR + l0 + i] : zeros;
                wk.gather_rows8(d, rows, msk, NR, l0);
              }
              for (int64_t i = 0; i < 8; ++i) {
                if ((grp >> i) & 1) continue;
                const int64_t l = l0 + i;
                for (int64_t e = 0; e < 36; ++e)
                  d[e * NR + l] = xcp[off[e * NR + l]] * msk[e * NR + l];
              }
            }
          }
        }
        for (int64_t c = 0; c < nc; ++c)
          wk.in(dbuf + c * 36 * NR, v + (p * cbl + cc + c) * NR, vs);
      }
    }
  }

  // y for o-block [o0, o0+obl) and tiles [t0, t0+ntl) from M[36][o][nt]: per tile panel, the
  // list of (staging index, y offset) of the outputs inside the image, then one indexed pass
  // per output channel with the bias added.
  void output_block(int64_t gi, int64_t o0, int64_t obl, int64_t t0, int64_t ntl, const T* m,
                    T* ebuf, int64_t* doff, int64_t* eidx) const {
    const int64_t NR = pl.nr, ms = obl * pl.nt;
    T* yg = y + (gi * q.Og + o0) * q.yc;
    const int64_t np = div_up(ntl, NR);
    const bool vec = wk.scatter8 && q.yc == 1 && NR % 8 == 0;
    for (int64_t p = 0; p < np; ++p) {
      const int64_t nl = std::min(NR, ntl - p * NR);
      if (vec) {  // channels-contiguous y: 8 channels x 8 lanes per vector store
        int64_t* grid = doff;  // [16][NR] y offsets, -1 outside the image
        for (int64_t ab = 0; ab < 16; ++ab)
          for (int64_t l = 0; l < NR; ++l) {
            int64_t n = 0, oh = 0, ow = 0;
            if (l < nl) tile_pos(t0 + p * NR + l, n, oh, ow);
            const int64_t h = oh + ab / 4, w = ow + ab % 4;
            grid[ab * NR + l] = (l < nl && h < q.Ho && w < q.Wo) ? n * q.yn + h * q.yh + w * q.yw
                                                                 : -1;
          }
        for (int64_t oc = 0; oc < obl; oc += kChunk) {
          const int64_t no = std::min(kChunk, obl - oc);
          for (int64_t o = 0; o < no; ++o)
            wk.out(m + (oc + o) * pl.nt + p * NR, ms, ebuf + o * 16 * NR);
          T bv[kChunk];
          for (int64_t o = 0; o < no; ++o) bv[o] = bias ? bias[gi * q.Og + o0 + oc + o] : T(0);
          T* yo = yg + oc;
          for (int64_t ab = 0; ab < 16; ++ab)
            for (int64_t l0 = 0; l0 < NR; l0 += 8) {
              const int64_t* g8 = grid + ab * NR + l0;
              bool full = no == 8;
              for (int64_t i = 0; i < 8; ++i) full = full && g8[i] >= 0;
              if (full) {
                wk.scatter8(yo, g8, ebuf + ab * NR + l0, 16 * NR, bv);
                continue;
              }
              for (int64_t i = 0; i < 8; ++i) {
                if (g8[i] < 0) continue;
                for (int64_t o = 0; o < no; ++o)
                  yo[g8[i] + o] = ebuf[(o * 16 + ab) * NR + l0 + i] + bv[o];
              }
            }
        }
        continue;
      }
      int64_t k = 0;
      for (int64_t ab = 0; ab < 16; ++ab)
        for (int64_t l = 0; l < nl; ++l) {
          int64_t n, oh, ow;
          tile_pos(t0 + p * NR + l, n, oh, ow);
          const int64_t h = oh + ab / 4, w = ow + ab % 4;
          if (h >= q.Ho || w >= q.Wo) continue;
          doff[k] = n * q.yn + h * q.yh + w * q.yw;
          eidx[k++] = ab * NR + l;
        }
      for (int64_t oc = 0; oc < obl; oc += kChunk) {
        const int64_t no = std::min(kChunk, obl - oc);
        for (int64_t o = 0; o < no; ++o)
          wk.out(m + (oc + o) * pl.nt + p * NR, ms, ebuf + o * 16 * NR);
        for (int64_t o = 0; o < no; ++o)
          scatter_bias(yg + (oc + o) * q.yc, ebuf + o * 16 * NR, doff, eidx, k,
                       bias ? bias[gi * q.Og + o0 + oc + o] : T(0));
      }
    }
  }

  void run() const {
    const int64_t NR = pl.nr, MR = pl.mr;
    AlignedArray<T> ushared;
    if (pl.shared_u) {
      ushared.reset(pl.shared);
      const int64_t nblk = q.G * pl.nob * pl.ncb;
      const int threads = std::min<int>(threads_for(nblk), pl.max_threads);
      const int64_t wper = 48 * NR + 9 * NR * MR;
      AlignedArray<T> wtmp(checked_mul(threads, wper, "winograd workspace"));
      parallel_for(nblk, threads, [&](int64_t b, int tid) {
        const int64_t cbi = b % pl.ncb, obi = (b / pl.ncb) % pl.nob, gi = b / (pl.ncb * pl.nob);
        T* tmp = wtmp.data() + tid * wper;
        weight_block(gi, obi, cbi, ushared.data() + b * pl.ublk, tmp, tmp + 9 * NR, tmp + 48 * NR);
      });
    }
    const int64_t tasks = q.G * pl.nob * pl.nb;
    const int threads = std::min<int>(threads_for(tasks), pl.max_threads);
    const int64_t per = round_up(pl.per_thread, 16);
    AlignedArray<T> scratch(checked_mul(per, threads, "winograd workspace"));
    parallel_for(tasks, threads, [&](int64_t task, int tid) {
      const int64_t tb = task % pl.nb, obi = (task / pl.nb) % pl.nob, gi = task / (pl.nb * pl.nob);
      const int64_t t0 = tb * pl.nt, ntl = std::min(pl.nt, pl.tiles - t0);
      const int64_t o0 = obi * pl.ob, obl = std::min(pl.ob, q.Og - o0), nop = div_up(obl, MR);
      const int64_t np = div_up(ntl, NR);
      T* s = scratch.data() + tid * per;
      T* v = s;
      T* m = v + 36 * pl.cb * pl.nt;
      T* dbuf = m + 36 * pl.ob * pl.nt;
      T* ebuf = dbuf + kChunk * 36 * NR;
      T* gbuf = ebuf + kChunk * 16 * NR;
      T* ubuf = gbuf + 9 * NR;
      T* msk = ubuf + 36 * NR;
      int64_t* off = reinterpret_cast<int64_t*>(msk + 36 * NR);  // 36 * NR int64 (as 2 T each)
      T* uown = msk + 36 * NR + 36 * NR * (sizeof(int64_t) / sizeof(T)) + 64;
      for (int64_t cbi = 0; cbi < pl.ncb; ++cbi) {
        const int64_t c0 = cbi * pl.cb, cbl = std::min(pl.cb, q.Cg - c0);
        const T* u;
        if (pl.shared_u) {
          u = ushared.data() + ((gi * pl.nob + obi) * pl.ncb + cbi) * pl.ublk;
        } else {
          weight_block(gi, obi, cbi, uown, gbuf, ubuf, dbuf);  // dbuf: free until input_block
          u = uown;
        }
        input_block(gi, c0, cbl, t0, ntl, v, dbuf, off, msk);
        const bool acc = cbi > 0;
        for (int64_t xi = 0; xi < 36; ++xi) {
          const T* uxi = u + xi * nop * cbl * MR;
          const T* vxi = v + xi * np * cbl * NR;
          T* mxi = m + xi * obl * pl.nt;
          for (int64_t p = 0; p < np; ++p) {
            const T* bp = vxi + p * cbl * NR;
            for (int64_t op = 0; op < nop; ++op)
              g.ukr(cbl, uxi + op * cbl * MR, bp, mxi + op * MR * pl.nt + p * NR, pl.nt, 1,
                    std::min<int64_t>(MR, obl - op * MR), NR, acc);
          }
        }
      }
      output_block(gi, o0, obl, t0, ntl, m, ebuf, off, off + 16 * NR);
    });
  }
};

bool shape_ok(const Conv2dParams& p) {
  return p.k_h == 3 && p.k_w == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
         p.dil_w == 1 && p.groups >= 1 && p.batch > 0 && p.in_cg() > 0 && p.out_cg() > 0 &&
         p.out_h > 0 && p.out_w > 0 && p.in_h > 0 && p.in_w > 0;
}

// Extra memory allowed: a quarter of the layer's im2col matrix (N * C * 9 * Ho * Wo elements),
// but at least 64K elements so that tiny layers are not refused for their fixed per-thread
// scratch (the GEMM path's own packing workspace is ~135K elements per thread anyway).
int64_t budget_of(const Conv2dParams& p) {
  const int64_t im2col = checked_mul(
      checked_mul(checked_mul(p.batch, p.in_c, "im2col"), 9, "im2col"), p.out_plane(), "im2col");
  const int64_t bound = std::max<int64_t>(im2col / 4, int64_t(1) << 16);
  // Plan against 1/8 less: allocator and page rounding, the small tables outside the plan.
  // (1/32 less measured 0.273-0.275 of the im2col buffer on r3x3_512@7 with AVX-512's 32-lane
  // tiles, in the benchmark's fresh-process measurement.)
  return bound - bound / 8;
}

Corr forward_corr(const Conv2dParams& p) {
  Corr q;
  q.N = p.batch; q.G = p.groups; q.Cg = p.in_cg(); q.Og = p.out_cg();
  q.H = p.in_h; q.W = p.in_w; q.Ho = p.out_h; q.Wo = p.out_w;
  q.pt = p.pad_top; q.pl = p.pad_left;
  const int64_t C = p.in_c, O = p.out_c;
  if (p.layout == Layout::NCHW) {
    q.xw = 1; q.xh = p.in_w; q.xc = p.in_h * p.in_w; q.xn = C * q.xc;
    q.yw = 1; q.yh = p.out_w; q.yc = p.out_h * p.out_w; q.yn = O * q.yc;
    // w[g*Og + o][c][a][b]
    q.fo = q.Cg * 9; q.fg = q.Og * q.fo; q.fc = 9; q.fa = 3; q.fb = 1;
  } else {
    q.xc = 1; q.xw = C; q.xh = p.in_w * C; q.xn = p.in_h * q.xh;
    q.yc = 1; q.yw = O; q.yh = p.out_w * O; q.yn = p.out_h * q.yh;
    // w[a][b][c][g*Og + o]
    q.fo = 1; q.fg = q.Og; q.fc = O; q.fb = q.Cg * O; q.fa = 3 * q.fb;
  }
  q.budget = budget_of(p);
  return q;
}

// grad_x = correlation of grad_y (Og channels per group, Ho x Wo) with f'(c, o, a, b) =
// w(o, c, 2 - a, 2 - b), padding 2 - pad (top/left; bottom/right follow from the sizes).
// Returns the filter base offset (the element of tap (0, 0)) in `f0`.
Corr input_grad_corr(const Conv2dParams& p, int64_t& f0) {
  Corr q;
  q.N = p.batch; q.G = p.groups; q.Cg = p.out_cg(); q.Og = p.in_cg();
  q.H = p.out_h; q.W = p.out_w; q.Ho = p.in_h; q.Wo = p.in_w;
  q.pt = 2 - p.pad_top; q.pl = 2 - p.pad_left;
  const int64_t C = p.in_c, O = p.out_c, Cg = p.in_cg(), Og = p.out_cg();
  if (p.layout == Layout::NCHW) {
    q.xw = 1; q.xh = p.out_w; q.xc = p.out_h * p.out_w; q.xn = O * q.xc;
    q.yw = 1; q.yh = p.in_w; q.yc = p.in_h * p.in_w; q.yn = C * q.yc;
    // w[g*Og + c'][o'][2 - a][2 - b]
    q.fg = Og * Cg * 9; q.fc = Cg * 9; q.fo = 9; q.fa = -3; q.fb = -1;
    f0 = 8;
  } else {
    q.xc = 1; q.xw = O; q.xh = p.out_w * O; q.xn = p.out_h * q.xh;
    q.yc = 1; q.yw = C; q.yh = p.in_w * C; q.yn = p.in_h * q.yh;
    // w[2 - a][2 - b][o'][g*Og + c']
    q.fg = Og; q.fc = 1; q.fo = O; q.fb = -Cg * O; q.fa = 3 * q.fb;
    f0 = 8 * Cg * O;
  }
  q.budget = budget_of(p);
  return q;
}

template <typename T>
Plan plan_for(const Corr& q) {
  const KernelTable& kt = kernels();
  const GemmKernel<T>& g = kt.gemm<T>();
  // (a panel's filter taps, 9 x nr x mr, borrow the gathered-inputs scratch: mr <= 32)
  if (kt.wino<T>().lanes != g.nr || g.nr > 64 || 9 * g.mr > kChunk * 36) return Plan{};
  const Plan one = make_plan(q, g.nr, g.mr, sizeof(T), 1, 0);
  if (!one.ok) return one;
  const int want = threads_for(checked_mul(q.G, one.tiles, "winograd tasks"));
  if (want == 1) return one;
  const Plan many = make_plan(q, g.nr, g.mr, sizeof(T), want, one.cb);
  return many.ok ? many : one;
}

template <typename T>
void run(const Corr& q, const T* x, const T* f, const T* bias, T* y) {
  const Plan pl = plan_for<T>(q);
  FC_CHECK(pl.ok, "winograd", "layer not supported (check winograd_applicable first)");
  const KernelTable& kt = kernels();
  const Runner<T> r{q, pl, kt.gemm<T>(), kt.wino<T>(), x, f, bias, y};
  r.run();
}

// True when no element of a[0, n) is NaN or +-Inf. x * 0 is 0 for finite x and NaN otherwise;
// eight running sums keep the loop vectorisable without reassociation.
template <typename T>
bool all_finite(const T* a, int64_t n) {
  const int64_t blk = int64_t(1) << 16, nblk = div_up(n, blk);
  AlignedArray<unsigned char> bad(nblk);
  parallel_for(nblk, [&](int64_t b, int) {
    const T* p = a + b * blk;
    const int64_t len = std::min(blk, n - b * blk);
    T acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += p[i + j] * T(0);
    for (; i < len; ++i) acc[0] += p[i] * T(0);
    T s = T(0);
    for (int j = 0; j < 8; ++j) s += acc[j];
    bad.data()[b] = s == s ? 0 : 1;
  });
  for (int64_t b = 0; b < nblk; ++b)
    if (bad.data()[b]) return false;
  return true;
}

}  // namespace

int64_t winograd_memory_budget(const Conv2dParams& p) { return budget_of(p); }

bool winograd_applicable(const Conv2dParams& p) {
  if (!shape_ok(p)) return false;
  int64_t f0 = 0;
  const Corr fq = forward_corr(p), bq = input_grad_corr(p, f0);
  // The smallest blocks need ~25K elements per thread, under the 64K floor of the bound, so
  // this only refuses channel counts past the block limits.
  return plan_for<float>(fq).ok && plan_for<float>(bq).ok;
}

template <typename T>
bool winograd_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  FC_CHECK(shape_ok(p), "winograd_forward", "needs a 3x3 stride-1 dilation-1 layer");
  if (!all_finite(w, p.out_c * p.in_cg() * 9) ||
      !all_finite(x, p.batch * p.in_c * p.in_h * p.in_w))
    return false;
  run(forward_corr(p), x, w, bias, y);
  return true;
}

template <typename T>
bool winograd_input_grad(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  FC_CHECK(shape_ok(p), "winograd_input_grad", "needs a 3x3 stride-1 dilation-1 layer");
  if (!all_finite(w, p.out_c * p.in_cg() * 9) ||
      !all_finite(dy, p.batch * p.out_c * p.out_h * p.out_w))
    return false;
  int64_t f0 = 0;
  const Corr q = input_grad_corr(p, f0);
  run<T>(q, dy, w + f0, nullptr, dx);
  return true;
}

template <typename T>
bool winograd_all_finite(const T* a, int64_t n) {
  return all_finite(a, n);
}

template <typename T>
void winograd_forward_view(const Conv2dParams& p, const T* x, const WinoView& xv, const T* w,
                           const T* bias, T* y, const WinoView& yv) {
  FC_CHECK(shape_ok(p), "winograd_forward", "needs a 3x3 stride-1 dilation-1 layer");
  Corr q = forward_corr(p);
  q.xn = xv.n; q.xc = xv.c; q.xh = xv.h; q.xw = xv.w;
  q.yn = yv.n; q.yc = yv.c; q.yh = yv.h; q.yw = yv.w;
  run(q, x, w, bias, y);
}

template <typename T>
void winograd_input_grad_view(const Conv2dParams& p, const T* dy, const WinoView& dyv,
                              const T* w, T* dx, const WinoView& dxv) {
  FC_CHECK(shape_ok(p), "winograd_input_grad", "needs a 3x3 stride-1 dilation-1 layer");
  int64_t f0 = 0;
  Corr q = input_grad_corr(p, f0);
  q.xn = dyv.n; q.xc = dyv.c; q.xh = dyv.h; q.xw = dyv.w;
  q.yn = dxv.n; q.yc = dxv.c; q.yh = dxv.h; q.yw = dxv.w;
  run<T>(q, dy, w + f0, nullptr, dx);
}

#define FC_INSTANTIATE(T)                                                                     \
  template bool winograd_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template bool winograd_input_grad<T>(const Conv2dParams&, const T*, const T*, T*);         \
  template bool winograd_all_finite<T>(const T*, int64_t);                                   \
  template void winograd_forward_view<T>(const Conv2dParams&, const T*, const WinoView&,      \
                                         const T*, const T*, T*, const WinoView&);           \
  template void winograd_input_grad_view<T>(const Conv2dParams&, const T*, const WinoView&,   \
                                            const T*, T*, const WinoView&);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
