// Microkernel contracts. Every ISA implements the same contract in a file of the same name under
// kernels/<isa>/, in namespace fastconv::<isa>. Microkernels take raw pointers only: no
// allocation, no threads, no validation.
//
// GEMM microkernel  gemm_<dtype>_<MR>x<NR>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate)
//   Computes the MR x NR product of one packed A micro-panel and one packed B micro-panel,
//   and stores its top-left mr x nr corner (1 <= mr <= MR, 1 <= nr <= NR):
//     accumulate == false:  C[i][j]  = sum_k A[i][k] * B[k][j]
//     accumulate == true:   C[i][j] += sum_k A[i][k] * B[k][j]
//   a: packed A, [kc][MR]  (a[k*MR + i]), rows past the matrix edge are zero-filled
//   b: packed B, [kc][NR]  (b[k*NR + j]), columns past the edge are zero-filled
//   c: C element (i, j) at c[i*rs_c + j*cs_c]; any strides (the fast path is cs_c == 1).
//   kc may be 0 (then C = 0 or C unchanged). Sums run over k in increasing order, so the result
//   depends only on the packed data, never on threading.
//
// Dot-product microkernel  dot_<dtype>_<MR>x<NR>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, acc)
//   C[i][j] (+)= sum_k a[i*lda + k] * b[j*ldb + k]  for i < mr <= MR, j < nr <= NR: both operands
//   with k contiguous (the weight gradient's grad_out rows and packed im2col rows). Body and
//   summation order in dot_impl.h.
#pragma once
#include <cstdint>

namespace fastconv {

template <typename T>
using DotUkr = void (*)(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
                        int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate);

#define FC_DECLARE_DOT(isa, dtype, T, MR, NR)                                                   \
  namespace isa {                                                                              \
  void dot_##dtype##_##MR##x##NR(int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, \
                                 T* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,    \
                                 bool accumulate);                                            \
  }

template <typename T>
using GemmUkr = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t rs_c, int64_t cs_c,
                         int64_t mr, int64_t nr, bool accumulate);

// Declares the per-ISA symbols; kernels.inc lists every kernel once.
#define FC_DECLARE_GEMM(isa, dtype, T, MR, NR)                                                 \
  namespace isa {                                                                              \
  void gemm_##dtype##_##MR##x##NR(int64_t kc, const T* a, const T* b, T* c, int64_t rs_c,      \
                                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate);      \
  constexpr int gemm_##dtype##_mr = MR;                                                        \
  constexpr int gemm_##dtype##_nr = NR;                                                        \
  }

FC_DECLARE_GEMM(scalar, f32, float, 4, 8)
FC_DECLARE_GEMM(scalar, f64, double, 4, 4)
FC_DECLARE_GEMM(avx2, f32, float, 6, 16)
FC_DECLARE_GEMM(avx2, f64, double, 6, 8)
FC_DECLARE_GEMM(avx512, f32, float, 6, 32)
FC_DECLARE_GEMM(avx512, f64, double, 6, 16)
FC_DECLARE_GEMM(neon, f32, float, 6, 8)
FC_DECLARE_GEMM(neon, f64, double, 6, 4)
FC_DECLARE_DOT(scalar, f32, float, 4, 3)
FC_DECLARE_DOT(scalar, f64, double, 4, 3)
FC_DECLARE_DOT(avx2, f32, float, 4, 3)
FC_DECLARE_DOT(avx2, f64, double, 4, 3)
FC_DECLARE_DOT(avx512, f32, float, 4, 3)
FC_DECLARE_DOT(avx512, f64, double, 4, 3)

// Shared store epilogue: writes an MR x NR accumulator tile held in `acc` (row-major, NR wide)
// into C with arbitrary strides. Used by every ISA for partial tiles and strided C.
template <typename T>
inline void store_tile(const T* acc, int64_t nr_full, T* c, int64_t rs_c, int64_t cs_c,
                       int64_t mr, int64_t nr, bool accumulate) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      T& dst = c[i * rs_c + j * cs_c];
      dst = accumulate ? dst + acc[i * nr_full + j] : acc[i * nr_full + j];
    }
}

}  // namespace fastconv
