// The 6 x (2 vectors) GEMM microkernel body shared by the AVX2 float64 and the AVX-512 kernels
// (contract in kernels.h). Each ISA's .cpp includes it with its own vector policy V. The 12
// accumulators are named variables, not an array: GCC kept an array of vectors on the stack
// (a load and a store around every FMA), which ran the float64 kernel at a third of its peak.
#pragma once
#include <cstdint>

#include "cpu/kernels/kernels.h"

namespace fastconv {

// Stores the 6 x (2 vectors) accumulator tile (rows i: xi0, xi1) into C (kernels.h contract):
// full tiles with unit column stride directly, partial or strided ones through store_tile.
template <class V>
inline void store_6x2(typename V::R c00, typename V::R c01, typename V::R c10, typename V::R c11,
                      typename V::R c20, typename V::R c21, typename V::R c30, typename V::R c31,
                      typename V::R c40, typename V::R c41, typename V::R c50, typename V::R c51,
                      typename V::T* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                      bool accumulate) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int W = V::W, NR = 2 * V::W;
  if (mr == 6 && nr == NR && cs_c == 1) {
#define FC_STORE(i, x0, x1)                                   \
  {                                                           \
    T* r = c + (i) * rs_c;                                    \
    R lo = x0, hi = x1;                                       \
    if (accumulate) {                                         \
      lo = V::add(lo, V::load(r));                            \
      hi = V::add(hi, V::load(r + W));                        \
    }                                                         \
    V::store(r, lo);                                          \
    V::store(r + W, hi);                                      \
  }
    FC_STORE(0, c00, c01) FC_STORE(1, c10, c11) FC_STORE(2, c20, c21)
    FC_STORE(3, c30, c31) FC_STORE(4, c40, c41) FC_STORE(5, c50, c51)
#undef FC_STORE
    return;
  }
  T tile[6 * NR];
  V::store(tile + 0 * NR, c00); V::store(tile + 0 * NR + W, c01);
  V::store(tile + 1 * NR, c10); V::store(tile + 1 * NR + W, c11);
  V::store(tile + 2 * NR, c20); V::store(tile + 2 * NR + W, c21);
  V::store(tile + 3 * NR, c30); V::store(tile + 3 * NR + W, c31);
  V::store(tile + 4 * NR, c40); V::store(tile + 4 * NR + W, c41);
  V::store(tile + 5 * NR, c50); V::store(tile + 5 * NR + W, c51);
  store_tile(tile, NR, c, rs_c, cs_c, mr, nr, accumulate);
}

// The 6 x (2 vectors) product over depth kc, depth row k of B being the 2 vectors at brow(k):
// a packed panel (gemm_6x2), a run read in place (gemm_ind_6x2) or a row given by pointer
// (gemm_sap_6x2). A's depth row k is the 6 values at a + k*as: packed [kc][6] (as = 6) or read
// in place (gemm_sap_6x2).
template <class V, class BRow>
inline void gemm_6x2_over(int64_t kc, const typename V::T* a, int64_t as, BRow brow,
                          typename V::T* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                          bool accumulate) {
  using R = typename V::R;
  constexpr int W = V::W;
  R c00 = V::zero(), c01 = V::zero(), c10 = V::zero(), c11 = V::zero();
  R c20 = V::zero(), c21 = V::zero(), c30 = V::zero(), c31 = V::zero();
  R c40 = V::zero(), c41 = V::zero(), c50 = V::zero(), c51 = V::zero();
#define FC_ROW(i, x0, x1)                 \
  {                                       \
    const R av = V::bcast(a + (i));       \
    x0 = V::fma(av, b0, x0);              \
    x1 = V::fma(av, b1, x1);              \
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const typename V::T* bk = brow(k);
    const R b0 = V::load(bk);
    const R b1 = V::load(bk + W);
    FC_ROW(0, c00, c01) FC_ROW(1, c10, c11) FC_ROW(2, c20, c21)
    FC_ROW(3, c30, c31) FC_ROW(4, c40, c41) FC_ROW(5, c50, c51)
    a += as;
  }
#undef FC_ROW
  store_6x2<V>(c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c, rs_c, cs_c, mr,
               nr, accumulate);
}

template <class V>
inline void gemm_6x2(int64_t kc, const typename V::T* a, const typename V::T* b,
                     typename V::T* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                     bool accumulate) {
  constexpr int NR = 2 * V::W;
  gemm_6x2_over<V>(kc, a, 6, [b](int64_t k) { return b + k * NR; }, c, rs_c, cs_c, mr, nr,
                   accumulate);
}

// The in-place GEMM microkernel body (contract in kernels.h): A's depth row k at a + k*lda,
// B's the NR values at b[k] + bo.
template <class V>
inline void gemm_sap_6x2(int64_t kc, const typename V::T* a, int64_t lda,
                         const typename V::T* const* b, int64_t bo, typename V::T* c,
                         int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2_over<V>(kc, a, lda, [b, bo](int64_t k) { return b[k] + bo; }, c, rs_c, cs_c, mr, nr,
                   accumulate);
}

// The indirect-B GEMM microkernel body (contract in kernels.h): B read in place, depth row k
// being the NR contiguous values at b + boff[k] (a run of a stride-phase plane).
template <class V>
inline void gemm_ind_6x2(int64_t kc, const typename V::T* a, const typename V::T* b,
                         const int64_t* boff, typename V::T* c, int64_t rs_c, int64_t cs_c,
                         int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2_over<V>(kc, a, 6, [b, boff](int64_t k) { return b + boff[k]; }, c, rs_c, cs_c, mr, nr,
                   accumulate);
}

}  // namespace fastconv
