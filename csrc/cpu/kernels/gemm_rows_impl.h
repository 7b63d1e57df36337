// The row-A GEMM microkernel body (contract in kernels.h), shared by every ISA: each ISA's
// gemm_rows.cpp includes it with its own vector policy V and instantiates gemm_rows_6x2.
//
//   C[i][j] (+)= sum_k a[i*lda + k] * b[k*NR + j]    i < mr <= 6, j < nr <= NR = 2*V::W
//
// A is read in place as 6 rows with k contiguous (grad_out rows or im2col rows of the NCHW
// weight gradient): the broadcast operand needs no transposing pack. B is an ordinary packed
// [kc][NR] micro-panel. Rows i >= mr are never read (the last valid row is reused) and never
// stored. Sums run over k in increasing order (one FMA chain per output).
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/kernels/gemm_6x2_impl.h"

namespace fastconv {

// The segmented row-A microkernel body (contract in kernels.h): one register tile accumulated
// over nseg segments, segment s being a row-A product of depth kc with A's row i at
// a[s] + i*lda[s] and B the packed [kc][NR] panel b[s] (an NHWC convolution: one segment per
// kernel tap, the tap's input pixels read in place at the stride). One store per tile.
template <class V>
inline void gemm_rows_seg_6x2(int64_t nseg, int64_t kc, const typename V::T* const* a,
                              const int64_t* lda, const typename V::T* const* b,
                              typename V::T* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                              int64_t nr, bool accumulate) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int W = V::W, NR = 2 * V::W;
  R c00 = V::zero(), c01 = V::zero(), c10 = V::zero(), c11 = V::zero();
  R c20 = V::zero(), c21 = V::zero(), c30 = V::zero(), c31 = V::zero();
  R c40 = V::zero(), c41 = V::zero(), c50 = V::zero(), c51 = V::zero();
  const int64_t r1 = std::min<int64_t>(1, mr - 1), r2 = std::min<int64_t>(2, mr - 1);
  const int64_t r3 = std::min<int64_t>(3, mr - 1), r4 = std::min<int64_t>(4, mr - 1);
  const int64_t r5 = std::min<int64_t>(5, mr - 1);
#define FC_ROW(ai, x0, x1)                \
  {                                       \
    const R av = V::bcast(ai + k);        \
    x0 = V::fma(av, b0, x0);              \
    x1 = V::fma(av, b1, x1);              \
  }
  for (int64_t s = 0; s < nseg; ++s) {
    const T* a0 = a[s];
    const int64_t ld = lda[s];
    const T* a1 = a0 + r1 * ld;
    const T* a2 = a0 + r2 * ld;
    const T* a3 = a0 + r3 * ld;
    const T* a4 = a0 + r4 * ld;
    const T* a5 = a0 + r5 * ld;
    const T* bs = b[s];
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      const R b0 = V::load(bs);
      const R b1 = V::load(bs + W);
      FC_ROW(a0, c00, c01) FC_ROW(a1, c10, c11) FC_ROW(a2, c20, c21)
      FC_ROW(a3, c30, c31) FC_ROW(a4, c40, c41) FC_ROW(a5, c50, c51)
      bs += NR;
    }
  }
#undef FC_ROW
  store_6x2<V>(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c, rs_c, cs_c, mr,
               nr, accumulate);
}

// The row-A kernel is the segmented one with a single segment.
template <class V>
inline void gemm_rows_6x2(int64_t kc, const typename V::T* a, int64_t lda,
                          const typename V::T* b, typename V::T* c, int64_t rs_c, int64_t cs_c,
                          int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<V>(1, kc, &a, &lda, &b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace fastconv
