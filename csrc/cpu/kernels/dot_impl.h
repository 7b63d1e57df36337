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
  static_assert(MR == 4 && NR == 3, "the body below names a 4 x 3 tile");
  using T = typename V::T;
  using R = typename V::R;
  // Named accumulators (an array of vectors ended up on the stack).
  const T* a0 = a;
  const T* a1 = a + std::min<int64_t>(1, mr - 1) * lda;
  const T* a2 = a + std::min<int64_t>(2, mr - 1) * lda;
  const T* a3 = a + std::min<int64_t>(3, mr - 1) * lda;
  const T* b0 = b;
  const T* b1 = b + std::min<int64_t>(1, nr - 1) * ldb;
  const T* b2 = b + std::min<int64_t>(2, nr - 1) * ldb;
  R s00 = V::zero(), s01 = V::zero(), s02 = V::zero(), s10 = V::zero(), s11 = V::zero(),
    s12 = V::zero(), s20 = V::zero(), s21 = V::zero(), s22 = V::zero(), s30 = V::zero(),
    s31 = V::zero(), s32 = V::zero();
  int64_t k = 0;
  for (; k + V::W <= kc; k += V::W) {
    const R v0 = V::load(b0 + k), v1 = V::load(b1 + k), v2 = V::load(b2 + k);
    R av = V::load(a0 + k);
    s00 = V::fma(av, v0, s00); s01 = V::fma(av, v1, s01); s02 = V::fma(av, v2, s02);
    av = V::load(a1 + k);
    s10 = V::fma(av, v0, s10); s11 = V::fma(av, v1, s11); s12 = V::fma(av, v2, s12);
    av = V::load(a2 + k);
    s20 = V::fma(av, v0, s20); s21 = V::fma(av, v1, s21); s22 = V::fma(av, v2, s22);
    av = V::load(a3 + k);
    s30 = V::fma(av, v0, s30); s31 = V::fma(av, v1, s31); s32 = V::fma(av, v2, s32);
  }
  const T* A[4] = {a0, a1, a2, a3};
  const T* B[3] = {b0, b1, b2};
  T out[12] = {V::hsum(s00), V::hsum(s01), V::hsum(s02), V::hsum(s10), V::hsum(s11),
               V::hsum(s12), V::hsum(s20), V::hsum(s21), V::hsum(s22), V::hsum(s30),
               V::hsum(s31), V::hsum(s32)};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      for (int64_t kk = k; kk < kc; ++kk) out[i * 3 + j] += A[i][kk] * B[j][kk];
  store_tile(out, NR, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace fastconv
