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

template <class V>
inline void gemm_rows_6x2(int64_t kc, const typename V::T* a, int64_t lda,
                          const typename V::T* b, typename V::T* c, int64_t rs_c, int64_t cs_c,
                          int64_t mr, int64_t nr, bool accumulate) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int W = V::W, NR = 2 * V::W;
  const T* a0 = a;
  const T* a1 = a + std::min<int64_t>(1, mr - 1) * lda;
  const T* a2 = a + std::min<int64_t>(2, mr - 1) * lda;
  const T* a3 = a + std::min<int64_t>(3, mr - 1) * lda;
  const T* a4 = a + std::min<int64_t>(4, mr - 1) * lda;
  const T* a5 = a + std::min<int64_t>(5, mr - 1) * lda;
  R c00 = V::zero(), c01 = V::zero(), c10 = V::zero(), c11 = V::zero();
  R c20 = V::zero(), c21 = V::zero(), c30 = V::zero(), c31 = V::zero();
  R c40 = V::zero(), c41 = V::zero(), c50 = V::zero(), c51 = V::zero();
#define FC_ROW(ai, x0, x1)                \
  {                                       \
    const R av = V::bcast(ai + k);        \
    x0 = V::fma(av, b0, x0);              \
    x1 = V::fma(av, b1, x1);              \
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const R b0 = V::load(b);
    const R b1 = V::load(b + W);
    FC_ROW(a0, c00, c01) FC_ROW(a1, c10, c11) FC_ROW(a2, c20, c21)
    FC_ROW(a3, c30, c31) FC_ROW(a4, c40, c41) FC_ROW(a5, c50, c51)
    b += NR;
  }
#undef FC_ROW
  store_6x2<V>(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c, rs_c, cs_c, mr,
               nr, accumulate);
}

}  // namespace fastconv
