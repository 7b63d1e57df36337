#include "cpu/gemm/gemm.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "common/check.h"
#include "common/workspace.h"

namespace fastconv {

KBlocks k_blocks(int64_t K, int64_t kc_max) {
  if (K <= 0) return {0, 0};
  const int64_t count = (K + kc_max - 1) / kc_max;
  return {(K + count - 1) / count, count};
}

template <typename T>
const T* StridedSource<T>::pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W,
                                T* buf) const {
  const int64_t panels = (nl + W - 1) / W;
  if (lane_stride == 1) {
    // Depth row by depth row: each row of the block is one contiguous read, spread over the
    // panels (reading panel by panel would keep kc memory streams open at once).
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = base + l0 + (k0 + k) * k_stride;
      if (k + 2 < kc) {  // rows are short streams: fetch two rows ahead
        const char* nx = reinterpret_cast<const char*>(s + 2 * k_stride);
        for (int64_t b = 0; b < nl * static_cast<int64_t>(sizeof(T)); b += 64)
          __builtin_prefetch(nx + b);
      }
      const int64_t full = nl / W;
      T* d = buf + k * W;
      const int64_t pstride = kc * W;
      switch (W) {  // fixed-size copies compile to a few vector moves
        case 16:
          for (int64_t p = 0; p < full; ++p) std::memcpy(d + p * pstride, s + p * 16, 16 * sizeof(T));
          break;
        case 8:
          for (int64_t p = 0; p < full; ++p) std::memcpy(d + p * pstride, s + p * 8, 8 * sizeof(T));
          break;
        case 32:
          for (int64_t p = 0; p < full; ++p) std::memcpy(d + p * pstride, s + p * 32, 32 * sizeof(T));
          break;
        default:
          for (int64_t p = 0; p < full; ++p)
            for (int64_t l = 0; l < W; ++l) d[p * pstride + l] = s[p * W + l];
      }
      if (full < panels) {
        const int64_t lanes = nl - full * W;
        T* dl = d + full * pstride;
        for (int64_t l = 0; l < lanes; ++l) dl[l] = s[full * W + l];
        for (int64_t l = lanes; l < W; ++l) dl[l] = T(0);
      }
    }
    return buf;
  }
  for (int64_t p = 0; p < panels; ++p) {
    T* dst = buf + p * kc * W;
    const int64_t lanes = std::min<int64_t>(W, nl - p * W);
    const T* src = base + (l0 + p * W) * lane_stride + k0 * k_stride;
    for (int64_t l = 0; l < lanes; ++l) {
      const T* s = src + l * lane_stride;
      for (int64_t k = 0; k < kc; ++k) dst[k * W + l] = s[k * k_stride];
    }
    if (lanes < W)
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t l = lanes; l < W; ++l) dst[k * W + l] = T(0);
  }
  return buf;
}

template <typename T>
PrepackedSource<T>::PrepackedSource(const PanelSource<T>& src, int64_t L, int64_t K, int W,
                                    int64_t kc_max) {
  lanes_padded_ = (L + W - 1) / W * W;
  const int64_t n = checked_mul(lanes_padded_, std::max<int64_t>(K, 1), "packed weight size");
  const int64_t bytes = checked_mul(n, static_cast<int64_t>(sizeof(T)), "packed weight size");
  data_ = static_cast<T*>(std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64)));
  if (!data_) throw std::bad_alloc();
  const KBlocks kb = k_blocks(K, kc_max);
  for (int64_t b = 0; b < kb.count; ++b) {
    const int64_t k0 = b * kb.size, kc = std::min(kb.size, K - k0);
    T* dst = data_ + k0 * lanes_padded_;
    const T* got = src.pack(0, L, k0, kc, W, dst);
    if (got != dst) std::memcpy(dst, got, sizeof(T) * static_cast<size_t>(kc * lanes_padded_));
  }
}

template <typename T>
PrepackedSource<T>::~PrepackedSource() {
  std::free(data_);
}

template <typename T>
const T* PrepackedSource<T>::pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W,
                                  T* buf) const {
  const T* blk = data_ + k0 * lanes_padded_;
  if (l0 % W == 0) return blk + (l0 / W) * W * kc;
  // Unaligned lane start: re-pack from the packed block (lanes past nl are zero-filled).
  for (int64_t p = 0; p * W < nl; ++p)
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t l = 0; l < W; ++l) {
        const int64_t lane = l0 + p * W + l;
        buf[(p * kc + k) * W + l] =
            (p * W + l < nl) ? blk[(lane / W) * W * kc + k * W + lane % W] : T(0);
      }
  return buf;
}

template <typename T>
int64_t gemm_workspace_size(const GemmKernel<T>& g) {
  // A block (MC x KC) + B block (KC x NC), each rounded to a cache line.
  return (g.mc * g.kc + 16) + (g.kc * g.nc + 16);
}

template <typename T>
void gemm_serial(const GemmKernel<T>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                 int64_t k0, int64_t k1, const PanelSource<T>& A, const PanelSource<T>& B, T* c,
                 int64_t rs_c, int64_t cs_c, bool accumulate, T* workspace) {
  const int MR = g.mr, NR = g.nr;
  if (i1 <= i0 || j1 <= j0) return;
  if (k1 <= k0) {  // empty reduction: C = 0 (or unchanged)
    if (!accumulate)
      for (int64_t i = 0; i < i1 - i0; ++i)
        for (int64_t j = 0; j < j1 - j0; ++j) c[i * rs_c + j * cs_c] = T(0);
    return;
  }
  T* bufA = workspace;
  T* bufB = workspace + ((g.mc * g.kc + 15) / 16 * 16);
  const KBlocks kb = k_blocks(k1 - k0, g.kc);
  for (int64_t jc = j0; jc < j1; jc += g.nc) {
    const int64_t nc = std::min(g.nc, j1 - jc);
    for (int64_t b = 0; b < kb.count; ++b) {
      const int64_t pc = k0 + b * kb.size;
      const int64_t kc = std::min(kb.size, k1 - pc);
      const bool acc = accumulate || b > 0;
      const T* Bp = B.pack(jc, nc, pc, kc, NR, bufB);
      for (int64_t ic = i0; ic < i1; ic += g.mc) {
        const int64_t mc = std::min(g.mc, i1 - ic);
        const T* Ap = A.pack(ic, mc, pc, kc, MR, bufA);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min<int64_t>(NR, nc - jr);
          const T* bp = Bp + (jr / NR) * kc * NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - ir);
            g.ukr(kc, Ap + (ir / MR) * kc * MR, bp, c + (ic - i0 + ir) * rs_c + (jc - j0 + jr) * cs_c, rs_c,
                  cs_c, mr, nr, acc);
          }
        }
      }
    }
  }
}

#define FC_INSTANTIATE(T)                                                                      \
  template struct StridedSource<T>;                                                            \
  template struct PrepackedSource<T>;                                                          \
  template int64_t gemm_workspace_size<T>(const GemmKernel<T>&);                               \
  template void gemm_serial<T>(const GemmKernel<T>&, int64_t, int64_t, int64_t, int64_t,       \
                               int64_t, int64_t, const PanelSource<T>&, const PanelSource<T>&, \
                               T*, int64_t, int64_t, bool, T*);
FC_INSTANTIATE(float)
FC_INSTANTIATE(double)

}  // namespace fastconv
