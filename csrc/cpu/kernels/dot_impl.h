// Dot-product microkernel body, shared by every ISA: each ISA's dot.cpp includes this header
// with its own vector policy V (compiled with that ISA's flags) and instantiates dot_tile.
//
//   C[i][j] (+)= sum_k A_i[k] * B_j[k]    for i < mr <= MR, j < nr <= NR
//   A_i = a + i*lda, B_j = b + j*ldb: both operands have k contiguous (rows of grad_out and of
//   the packed im2col in the weight gradient), so nothing is transposed while packing.
// Rows i >= mr / j >= nr are never read (the last valid row is reused) and never stored.
// Summation order is fixed: V::W partial sums per (i, j) over k, a fixed-order horizontal sum,
// then the k tail in order — the result depends only on kc and the data.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu/kernels/kernels.h"

namespace fastconv {

template <class V, int MR, int NR>
inline void dot_tile(int64_t kc, const typename V::T* a, int64_t lda, const typename V::T* b,
                     int64_t ldb, typename V::T* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                     int64_t nr, bool accumulate) {
  using T = typename V::T;
  using R = typename V::R;
  const T* A[MR];
  const T* B[NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) A[i] = a + std::min<int64_t>(i, mr - 1) * lda;
#pragma GCC unroll 8
  for (int j = 0; j < NR; ++j) B[j] = b + std::min<int64_t>(j, nr - 1) * ldb;
  R s[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) s[i][j] = V::zero();
  int64_t k = 0;
  for (; k + V::W <= kc; k += V::W) {
    R bv[NR];
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) bv[j] = V::load(B[j] + k);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const R av = V::load(A[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) s[i][j] = V::fma(av, bv[j], s[i][j]);
    }
  }
  T out[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      T t = V::hsum(s[i][j]);
      for (int64_t kk = k; kk < kc; ++kk) t += A[i][kk] * B[j][kk];
      out[i * NR + j] = t;
    }
  store_tile(out, NR, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace fastconv
