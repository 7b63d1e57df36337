// BLIS-style blocked GEMM driver:  C[i][j] (+)= sum_k A[i][k] * B[k][j]
//
// Loops, outermost first: jc (NC columns) -> pc (KC depth) -> pack B -> ic (MC rows) -> pack A
// -> jr (NR) -> ir (MR) -> microkernel. A and B are not matrices but PanelSources: anything
// that can write a block of itself as micro-panels (a strided matrix, a pre-packed weight, a
// virtual im2col matrix read straight from the image). The driver is serial; callers cut the
// problem into tasks (parallel_for) whose boundaries never depend on the thread count.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastconv {

// A block of a (virtual) matrix seen as "lanes" x "depth": for A the lanes are rows, for B
// columns; depth is the reduction index k.
template <typename T>
struct PanelSource {
  virtual ~PanelSource() = default;
  // Packs lanes [l0, l0+nl) x depth [k0, k0+kc) into ceil(nl/W) panels laid out [kc][W]
  // (panel p at offset p*kc*W), zero-filling lanes past nl. Returns the packed block: `buf`, or
  // a pointer into storage packed earlier (then l0 % W == 0 and [k0, k0+kc) is one of
  // k_block()'s blocks).
  virtual const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const = 0;
};

// Depth blocking used by the driver: K is cut into equal blocks of at most g.kc.
struct KBlocks {
  int64_t size;   // block length (the last block may be shorter)
  int64_t count;
};
KBlocks k_blocks(int64_t K, int64_t kc_max);

// Element (lane, k) = base[lane * lane_stride + k * k_stride].
template <typename T>
struct StridedSource final : PanelSource<T> {
  const T* base;
  int64_t lane_stride, k_stride;
  StridedSource(const T* b, int64_t ls, int64_t ks) : base(b), lane_stride(ls), k_stride(ks) {}
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override;
};

// Packs a source once for all lanes [0, L) and depth [0, K) with the driver's k-blocking, so
// every later pack() is a pointer lookup. Used for weights, reused across images and tiles.
template <typename T>
struct PrepackedSource final : PanelSource<T> {
  PrepackedSource(const PanelSource<T>& src, int64_t L, int64_t K, int W, int64_t kc_max);
  ~PrepackedSource() override;
  const T* pack(int64_t l0, int64_t nl, int64_t k0, int64_t kc, int W, T* buf) const override;

 private:
  T* data_ = nullptr;
  int64_t lanes_padded_ = 0;
};

// Scratch (elements of T) one gemm_serial call needs.
template <typename T>
int64_t gemm_workspace_size(const GemmKernel<T>& g);

// Computes the block rows [i0, i1) x cols [j0, j1) of C over depth [k0, k1):
//   C = A*B (accumulate == false) or C += A*B. c points at element (i0, j0) of C.
// Depth blocks are k_blocks(k1 - k0, g.kc) offset by k0.
template <typename T>
void gemm_serial(const GemmKernel<T>& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                 int64_t k0, int64_t k1, const PanelSource<T>& A, const PanelSource<T>& B, T* c,
                 int64_t rs_c, int64_t cs_c, bool accumulate, T* workspace);

}  // namespace fastconv
