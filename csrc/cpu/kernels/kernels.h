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
//
// Row-A GEMM microkernel  gemm_rows_<dtype>_<MR>x<NR>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, acc)
//   The GEMM microkernel's contract with A read in place as rows, k contiguous:
//     C[i][j] (+)= sum_k a[i*lda + k] * b[k*NR + j]     (b: packed [kc][NR] as above)
//   Rows i >= mr of A are never read. Sums run over k in increasing order. Used by the NCHW
//   weight gradient, whose operands both have the reduction index contiguous: only the B side
//   is transposed while packing. Body in gemm_rows_impl.h.
//
// Indirect-B GEMM microkernel  gemm_ind_<dtype>_<MR>x<NR>(kc, a, b, boff, c, rs_c, cs_c, mr, nr,
//   acc): the GEMM microkernel's contract with B read in place, depth row k being the NR
//   contiguous values at b + boff[k] (all NR readable, even when nr < NR):
//     C[i][j] (+)= sum_k a[k*MR + i] * b[boff[k] + j]     (a: packed [kc][MR] as above)
//   Sums run over k in increasing order. Used by the NCHW stride-phase forward (runs of the
//   phase planes): no B packing.
//   Body in gemm_6x2_impl.h (instantiated next to the row-A kernels, gemm_rows.cpp).
//
// Segmented row-A GEMM microkernel  gemm_seg_<dtype>_<MR>x<NR>(nseg, kc, a, lda, b, c, rs_c,
//   cs_c, mr, nr, acc): one register tile summed over nseg row-A products of depth kc,
//     C[i][j] (+)= sum_s sum_k a[s][i*lda[s] + k] * b[s][k*NR + j]
//   (segments in order, k increasing within each). Rows i >= mr of A are never read. Used by
//   the NHWC direct forward: one segment per kernel tap, its pixels read in place.
//   Body in gemm_rows_impl.h.
//
// Transposing pack  pack_rows_t_<dtype>_<NR>(src, ld, nl, kn, dst): B micro-panels for it from
//   nl rows with k contiguous: dst[(l/NR)*kn*NR + k*NR + l%NR] = src[l*ld + k] for l < nl,
//   k < kn; lanes past nl in the last panel are zero. (Optional per ISA: drivers fall back to
//   a portable loop.)
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
using GemmRowsUkr = void (*)(int64_t kc, const T* a, int64_t lda, const T* b, T* c, int64_t rs_c,
                             int64_t cs_c, int64_t mr, int64_t nr, bool accumulate);

#define FC_DECLARE_GEMM_ROWS(isa, dtype, T, MR, NR)                                            \
  namespace isa {                                                                              \
  void gemm_rows_##dtype##_##MR##x##NR(int64_t kc, const T* a, int64_t lda, const T* b, T* c,  \
                                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,     \
                                       bool accumulate);                                      \
  }

template <typename T>
using GemmIndUkr = void (*)(int64_t kc, const T* a, const T* b, const int64_t* boff, T* c,
                            int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate);

#define FC_DECLARE_GEMM_IND(isa, dtype, T, MR, NR)                                             \
  namespace isa {                                                                              \
  void gemm_ind_##dtype##_##MR##x##NR(int64_t kc, const T* a, const T* b, const int64_t* boff, \
                                      T* c, int64_t rs_c, int64_t cs_c, int64_t mr,            \
                                      int64_t nr, bool accumulate);                            \
  }

template <typename T>
using GemmSegUkr = void (*)(int64_t nseg, int64_t kc, const T* const* a, const int64_t* lda,
                            const T* const* b, T* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                            int64_t nr, bool accumulate);

#define FC_DECLARE_GEMM_SEG(isa, dtype, T, MR, NR)                                             \
  namespace isa {                                                                              \
  void gemm_seg_##dtype##_##MR##x##NR(int64_t nseg, int64_t kc, const T* const* a,             \
                                      const int64_t* lda, const T* const* b, T* c,             \
                                      int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,      \
                                      bool accumulate);                                        \
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

// In-place GEMM microkernel (the ISA's GEMM register tile, MR x NR): as GemmUkr, but nothing
// is packed. A's depth row k is the MR values at a + k*lda (all MR are read even when mr < MR,
// so they must be readable); B's depth row k is the NR values at b[k] + bo. The NHWC weight
// gradient reads grad_out rows (A) and input pixel rows (B; a zero row for padding) this way.
template <typename T>
using GemmSapUkr = void (*)(int64_t kc, const T* a, int64_t lda, const T* const* b, int64_t bo,
                            T* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                            bool accumulate);

#define FC_DECLARE_GEMM_SAP(isa, dtype, T, MR, NR)                                             \
  namespace isa {                                                                              \
  void gemm_sap_##dtype##_##MR##x##NR(int64_t kc, const T* a, int64_t lda, const T* const* b,  \
                                      int64_t bo, T* c, int64_t rs_c, int64_t cs_c,            \
                                      int64_t mr, int64_t nr, bool accumulate);                \
  }

FC_DECLARE_GEMM(scalar, f32, float, 4, 8)
FC_DECLARE_GEMM(scalar, f64, double, 4, 4)
FC_DECLARE_GEMM(avx2, f32, float, 6, 16)
FC_DECLARE_GEMM(avx2, f64, double, 6, 8)
FC_DECLARE_GEMM(avx512, f32, float, 6, 32)
FC_DECLARE_GEMM(avx512, f64, double, 6, 16)
FC_DECLARE_GEMM(neon, f32, float, 6, 8)
FC_DECLARE_GEMM(neon, f64, double, 6, 4)
FC_DECLARE_GEMM_SAP(avx2, f32, float, 6, 16)
FC_DECLARE_GEMM_SAP(avx2, f64, double, 6, 8)
FC_DECLARE_GEMM_SAP(avx512, f32, float, 6, 32)
FC_DECLARE_GEMM_SAP(avx512, f64, double, 6, 16)
FC_DECLARE_GEMM_ROWS(scalar, f32, float, 6, 8)
FC_DECLARE_GEMM_ROWS(scalar, f64, double, 6, 8)
FC_DECLARE_GEMM_ROWS(avx2, f32, float, 6, 16)
FC_DECLARE_GEMM_ROWS(avx2, f64, double, 6, 8)
FC_DECLARE_GEMM_ROWS(avx512, f32, float, 6, 32)
FC_DECLARE_GEMM_ROWS(avx512, f64, double, 6, 16)
FC_DECLARE_GEMM_IND(scalar, f32, float, 6, 8)
FC_DECLARE_GEMM_IND(scalar, f64, double, 6, 8)
FC_DECLARE_GEMM_IND(avx2, f32, float, 6, 16)
FC_DECLARE_GEMM_IND(avx2, f64, double, 6, 8)
FC_DECLARE_GEMM_IND(avx512, f32, float, 6, 32)
FC_DECLARE_GEMM_IND(avx512, f64, double, 6, 16)
FC_DECLARE_GEMM_SEG(scalar, f32, float, 6, 8)
FC_DECLARE_GEMM_SEG(scalar, f64, double, 6, 8)
FC_DECLARE_GEMM_SEG(avx2, f32, float, 6, 16)
FC_DECLARE_GEMM_SEG(avx2, f64, double, 6, 8)
FC_DECLARE_GEMM_SEG(avx512, f32, float, 6, 32)
FC_DECLARE_GEMM_SEG(avx512, f64, double, 6, 16)
namespace avx2 {
void pack_rows_t_f32_16(const float* src, int64_t ld, int64_t nl, int64_t kn, float* dst);
void pack_rows_t_f32_32(const float* src, int64_t ld, int64_t nl, int64_t kn, float* dst);
}
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
//   wino_in_at_<dtype>(d, rs, ss, v, vs): wino_in with input (r, s) of lane l read in place at
//                               d[r*rs + s*ss + l] (channels-last images, channels in lanes).
//   wino_dy_<dtype>(d, rs, ss, m, ms): grad_y (a, b) of a 4x4 tile at d[a*rs + b*ss + l];
//                               writes m[(i*6+j)*ms + l] = (A d A^T)[i][j] (weight gradient).
//   wino_dw_<dtype>(s, ss, g):  s[(i*6+j)*ss + l] = products summed over tiles;
//                               writes g[(a*3+b)*L + l] = (G^T s G)[a][b], the 3x3 filter grad.
#define FC_DECLARE_WINO(isa, dtype, T, L)                                                      \
  namespace isa {                                                                              \
  void wino_in_##dtype(const T* d, T* v, int64_t vs);                                          \
  void wino_out_##dtype(const T* m, int64_t ms, T* o);                                         \
  void wino_w_##dtype(const T* g, T* u);                                                       \
  void wino_in_at_##dtype(const T* d, int64_t rs, int64_t ss, T* v, int64_t vs);              \
  void wino_dy_##dtype(const T* d, int64_t rs, int64_t ss, T* m, int64_t ms);                  \
  void wino_dw_##dtype(const T* s, int64_t ss, T* g);                                          \
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


// ------------------------------------------------------------------------------------------
// Depthwise convolution kernels (one input channel per group). Shared logic lives in
// kernels/depthwise_impl.h, templated on a vector policy; each ISA's depthwise.cpp instantiates
// it. Driver: cpu/conv/depthwise.cpp. Every sum runs in a fixed order (independent of threads).
//
// dw_rows  (NCHW, SIMD along the row), nr output rows at once:
//   y[i*y_rs + j] = init + sum_{t < ntaps} wts[t] * src[t][i*src_rs + j]
//   for i in [0, nr), j in [0, n), t summed in order. src[t] are arbitrary (unaligned) pointers.
//
// dw_rows3x3  (NCHW, 3x3 kernel, stride 1, dilation 1): the same as dw_rows with the nine taps
//   src[a*3 + b] = s + a*rs + b and wts = w9, i.e.
//   y[i*y_rs + j] = init + sum_{a, b < 3} w9[a*3 + b] * s[(i + a)*rs + j + b]
//   with the weights held in registers and each source vector shared by 3 output rows.
//   Results may differ from dw_rows in the last bit (another summation order).
//
// dw_rows3x3_pad1  (NCHW, 3x3, stride 1, dilation 1, one zero column each side), read in place:
//   y[i*y_rs + j] = init + sum_{a, b < 3} w9[a*3 + b] * r[i + a][j - 1 + b]   (0 outside [0, n))
//   for i < nr, j < n; r holds nr + 2 row pointers of n elements (a zero row for padding rows).
//   The same products in the same order as dw_rows3x3 on the zero-padded plane.
//
// dw_dot   (NCHW, SIMD along the row)
//   acc[t*kDwLanes + l] += sum over i < nr, j < n with lane(j) == l of
//                          dy[i*dy_rs + j] * src[t][i*src_rs + j]
//   for every tap t < ntaps; lane(j) and the summation order are fixed functions of (nr, n), so
//   the caller reduces the kDwLanes partial sums of each tap in lane order.
//
// dw_nhwc_row  (NHWC, SIMD across channels), one output row of `ncols` pixels:
//   y[j*y_ps + c] = (bias ? bias[c] : 0)
//       + sum_{r < nrows} sum_{k < cnt[j]} w[row_woff[r] + col_woff[j*kmax + k] + c]
//                                          * rows[r][col_xoff[j*kmax + k] + c]      c in [0, C)
//   summed over r, then k, in order. (One plan serves forward and input gradient.) Pixels
//   j, j + jstep, ... with the same taps and evenly spaced sources are computed together.
//
// dw_nhwc_row3x3  (NHWC, 3x3, stride 1, dilation 1, one zero pixel each side), nout (1 or 2)
//   output rows i from the nout + 2 source rows rows[q] (nullptr: a padding row, skipped):
//   y[i*y_rs + j*C + c] = (bias ? bias[c] : 0)
//       + sum_{a < 3, rows[i+a]} sum_{b < 3, 0 <= j-1+b < ncols} w[(a*3 + b)*C + c]
//                                                              * rows[i+a][(j-1+b)*C + c]
//   summed over a, then b, in order.
//
// dw_nhwc_dot  (NHWC weight gradient), for c in [0, C):
//   acc[c] += sum_{i < count} dy[i*dy_ps + c] * x[i*x_step + c]   (i in increasing order)
//
// dw_nhwc_dot3  (NHWC weight gradient, three adjacent taps, stride 1, dilation 1), b in 0..2:
//   acc[b*C + c] += sum_{j < n, 0 <= j + off + b < W} dy[j*C + c] * x[(j + off + b)*C + c]
//   (j in increasing order: the same sums, in the same order, as three dw_nhwc_dot calls)
// ------------------------------------------------------------------------------------------
constexpr int kDwLanes = 16;  // the widest vector of any ISA (AVX-512 float32)

template <typename T>
struct DwNhwcRow {
  int64_t nrows;
  const T* const* rows;      // nrows source rows (already offset to the row's first pixel)
  const int64_t* row_woff;   // weight offset per source row
  int64_t ncols;             // output pixels in the row
  const int64_t* cnt;        // taps per output pixel (<= kmax)
  const int64_t* col_xoff;   // [ncols][kmax] element offset into the source row
  const int64_t* col_woff;   // [ncols][kmax] weight offset
  int64_t kmax;
  int64_t jstep;             // pixels j and j + jstep are tried as one block (stride phase)
  const T* w;
  const T* bias;             // nullptr: 0
  T* y;
  int64_t y_ps;              // element stride between output pixels
  int64_t C;                 // channels (vector dimension)
  const void* prefetch;      // optional: bytes to prefetch while the row computes (next row's
  int64_t prefetch_bytes;    // new source row), spread over the row's pixel blocks
  void* prefetch_out;        // optional: the same number of bytes to prefetch for writing
};

template <typename T>
struct DwNhwc3x3 {
  int64_t nout;             // output rows: 1 or 2
  const T* const* rows;     // nout + 2 source rows (first pixel; pixel stride C), nullptr: zero
  int64_t ncols;            // pixels in each output row = in each source row
  const T* w;               // [9][C], tap a*3 + b at w + (a*3 + b)*C
  const T* bias;            // nullptr: 0
  T* y;                     // output row i at y + i*y_rs, ncols pixels, pixel stride C
  int64_t y_rs;
  int64_t C;
  const void* prefetch;     // optional: bytes to prefetch while the rows compute (the next
  int64_t prefetch_bytes;   // task's new source rows), spread over the pixel blocks
  void* prefetch_out;       // optional: the same number of bytes to prefetch for writing
};

template <typename T>
struct DwKernels {
  void (*rows)(const T* const* src, const T* wts, int64_t ntaps, T init, T* y, int64_t n,
               int64_t nr, int64_t src_rs, int64_t y_rs) = nullptr;
  void (*rows3x3)(const T* s, int64_t rs, const T* w9, T init, T* y, int64_t n, int64_t nr,
                  int64_t y_rs) = nullptr;
  void (*dot)(const T* dy, int64_t dy_rs, const T* const* src, int64_t ntaps, int64_t src_rs,
              int64_t nr, int64_t n, T* acc) = nullptr;
  void (*rows3x3_pad1)(const T* const* r, const T* w9, T init, T* y, int64_t n, int64_t nr,
                       int64_t y_rs) = nullptr;
  void (*nhwc_row)(const DwNhwcRow<T>& a) = nullptr;
  void (*nhwc_row3x3)(const DwNhwc3x3<T>& a) = nullptr;
  void (*nhwc_dot)(const T* dy, int64_t dy_ps, const T* x, int64_t x_step, int64_t count,
                   int64_t C, T* acc) = nullptr;
  void (*nhwc_dot3)(const T* dy, const T* x, int64_t n, int64_t W, int64_t off, int64_t C,
                    T* acc) = nullptr;
};

#define FC_DECLARE_DW(isa)                      \
  namespace isa {                               \
  DwKernels<float> depthwise_f32();             \
  DwKernels<double> depthwise_f64();            \
  }
FC_DECLARE_DW(scalar)
FC_DECLARE_DW(avx2)
FC_DECLARE_DW(avx512)
// NEON builds use the scalar depthwise kernels (dispatch.cpp).

// ------------------------------------------------------------------------------------------
// Small-channel direct convolution (body in kernels/smallc_impl.h, driver cpu/conv/smallc.cpp):
// one channels-in-lanes block product that serves the forward pass (r = output columns of a
// row, i = (kh, c) rows of a planar padded image, t = kw), the weight gradient (r = (kw, c)
// taps of a kernel row, i = output rows, t = output columns) and the input gradient (r =
// output pixels, t = output channel: the im2col-shaped gradient, scattered by the driver):
//   out[r*o_rs + l] = init[r*init_rs + l]
//                     + sum_{i < ni} sum_{t < nt} a[r + i*a_is + t*a_ts] * b[i*b_is + t*b_ts + l]
//   for r < nr, l < nl; init == nullptr: 0. Sums run from init over i, then t, in increasing
//   order (independent of any blocking). b and init must be readable for lanes l < nl rounded
//   up to `lanes` (the vector width). Only out[r*o_rs + l], l < nl, is written, except that
//   when o_rs == nl <= 2 * lanes a row may first be stored whole into the next row's first
//   elements (still inside out[0, nr*nl)), which get their final values afterwards: full
//   vector stores instead of masked ones. init may alias out only when o_rs != nl or
//   nl is a multiple of `lanes`.
// ------------------------------------------------------------------------------------------
template <typename T>
struct SmallcArgs {
  const T* a;  // broadcast operand, r contiguous
  int64_t a_is, a_ts;
  const T* b;  // vector operand, lanes contiguous
  int64_t b_is, b_ts;
  int64_t ni, nt;
  const T* init;  // nullptr: 0
  int64_t init_rs;
  T* out;
  int64_t o_rs;
  int64_t nr, nl;
};

template <typename T>
struct SmallcKernel {
  void (*run)(const SmallcArgs<T>& args) = nullptr;
  int lanes = 0;  // vector width: b / init rows are padded to a multiple of it
  // optional (nullptr: the driver's scalar loops): d[j*d_rs + i] = s[i*s_rs + j], i, j < tb
  void (*transpose)(const T* s, int64_t s_rs, T* d, int64_t d_rs) = nullptr;
  int tb = 0;
};

#define FC_DECLARE_SMALLC(isa)                  \
  namespace isa {                               \
  SmallcKernel<float> smallc_f32();             \
  SmallcKernel<double> smallc_f64();            \
  }
FC_DECLARE_SMALLC(scalar)
FC_DECLARE_SMALLC(avx2)
FC_DECLARE_SMALLC(avx512)

}  // namespace fastconv
