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

// Winograd F(4x4, 3x3) transforms over L lanes (L = the GEMM's NR for that dtype and ISA;
// formulas in winograd_f43.h). Lane l is an independent tile (or filter).
//   wino_in_<dtype>(d, v, vs):  d = [36][L], d[(r*6+s)*L + l] = input (r, s) of a 6x6 tile;
//                               writes v[(i*6+j)*vs + l] = (B^T d B)[i][j], 36 rows of L.
//   wino_out_<dtype>(m, ms, o): m[(i*6+j)*ms + l] = product (i, j);
//                               writes o[(a*4+b)*L + l] = (A^T m A)[a][b], 16 rows of L.
//   wino_w_<dtype>(g, u):       g = [9][L], g[(a*3+b)*L + l] = 3x3 filter tap (a, b);
//                               writes u[(i*6+j)*L + l] = (G g G^T)[i][j], 36 rows of L.
#define FC_DECLARE_WINO(isa, dtype, T, L)                                                      \
  namespace isa {                                                                              \
  void wino_in_##dtype(const T* d, T* v, int64_t vs);                                          \
  void wino_out_##dtype(const T* m, int64_t ms, T* o);                                         \
  void wino_w_##dtype(const T* g, T* u);                                                       \
  constexpr int wino_##dtype##_lanes = L;                                                      \
  }

// Channels-contiguous gather of 8 channels (AVX2 float only, an 8x8 transpose per 8 lanes):
//   d[c*ds + e] = src[off[e] + c] * msk[e]  for c < 8, e < n  (n a multiple of 8)
namespace avx2 {
void wino_gather8_f32(float* d, int64_t ds, const float* src, const int64_t* off,
                      const float* msk, int64_t n);
// Row gather of 8 lanes (AVX2 float only): rows[r*8 + i] points at 6 readable contiguous
// values (columns s < 6 of row r of lane l0 + i);
//   d[(r*6+s)*NR + l0 + i] = rows[r*8 + i][s] * msk[(r*6+s)*NR + l0 + i].
void wino_gather_rows8_f32(float* d, const float* const* rows, const float* msk, int64_t NR,
                           int64_t l0);
// Channels-contiguous store of 8 channels x 8 lanes (AVX2 float only):
//   y[doff[i] + o] = e[o*es + i] + bias[o]  for o < 8, i < 8
void wino_scatter8_f32(float* y, const int64_t* doff, const float* e, int64_t es,
                       const float* bias);
}

// NEON uses the scalar transforms (same lane counts as its GEMM: 8 for f32, 4 for f64).
FC_DECLARE_WINO(scalar, f32, float, 8)
FC_DECLARE_WINO(scalar, f64, double, 4)
FC_DECLARE_WINO(avx2, f32, float, 16)
FC_DECLARE_WINO(avx2, f64, double, 8)
FC_DECLARE_WINO(avx512, f32, float, 32)
FC_DECLARE_WINO(avx512, f64, double, 16)

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
