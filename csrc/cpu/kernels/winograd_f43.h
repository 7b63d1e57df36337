// Winograd F(4x4, 3x3) transforms, written once as plain loops over L lanes (L = the GEMM
// microkernel's NR) and included by each ISA's kernels/<isa>/winograd.cpp, where the per-ISA
// compile flags make the lane loops vectorise. Contract in kernels.h.
//
// Interpolation points 0, 1, -1, 1/2, -2 and infinity. Against the usual 0, +-1, +-2, inf this
// roughly halves the float32 error (measured on random data with C = 256: 4.9e-6 vs 9.1e-6 of
// sqrt(9 C)), because the output transform A^T no longer has entries 8 and the powers of 2
// and 1/2 balance. Only G has non-dyadic entries (1/3, 1/15): the data transforms B^T and A^T
// multiply by powers of two and small integers only.
//
//   B^T = [ 1  -3/2   -2   3/2    1  0 ]     G = [    1      0      0 ]   A^T = [1  1  1   1    1 0]
//         [ 0    -1  1/2   5/2    1  0 ]         [  1/3    1/3    1/3 ]         [0  1 -1 1/2   -2 0]
//         [ 0     1 -5/2   1/2    1  0 ]         [ -1/3    1/3   -1/3 ]         [0  1  1 1/4    4 0]
//         [ 0    -2   -1     2    1  0 ]         [-16/15 -8/15  -4/15 ]         [0  1 -1 1/8   -8 1]
//         [ 0   1/2   -1  -1/2    1  0 ]         [ 1/15  -2/15   4/15 ]
//         [ 0     1 -3/2    -2  3/2  1 ]         [    0      0      1 ]
// y = A^T [ (G g G^T) .* (B^T d B) ] A: the 4x4 outputs y[i][j] = sum_{a,b} g[a][b] d[i+a][j+b].
// No -ffast-math anywhere: expressions are evaluated as written (no contraction in ISO C++).
#pragma once
#include <cstdint>

namespace fastconv {
namespace wino_f43 {

// B^T applied to one column of six lane vectors.
template <typename T, int L>
inline void bt6(const T* __restrict__ d0, const T* __restrict__ d1, const T* __restrict__ d2,
                const T* __restrict__ d3, const T* __restrict__ d4, const T* __restrict__ d5,
                T* __restrict__ v, int64_t vs) {
  // d_k[l] at dk[l]; output row i at v + i*vs.
  for (int l = 0; l < L; ++l) {
    const T a0 = d0[l], a1 = d1[l], a2 = d2[l], a3 = d3[l], a4 = d4[l], a5 = d5[l];
    const T h1 = T(0.5) * a1, h2 = T(0.5) * a2, h3 = T(0.5) * a3;
    v[0 * vs + l] = (a0 - a1 - h1) + (a3 + h3 - a2 - a2) + a4;
    v[1 * vs + l] = (h2 - a1) + (a3 + a3 + h3) + a4;
    v[2 * vs + l] = (a1 - a2 - a2 - h2) + h3 + a4;
    v[3 * vs + l] = ((a3 - a1) + (a3 - a1)) - a2 + a4;
    v[4 * vs + l] = (h1 - h3) - a2 + a4;
    v[5 * vs + l] = (a1 - a2 - h2) - (a3 + a3) + (a4 + T(0.5) * a4) + a5;
  }
}

// Input transform of a tile read in place: element (r, s) of lane l at d[r*rs + s*ss + l] ->
// v[(i*6+j)*vs + l] = (B^T d B)[i][j].
template <typename T, int L>
inline void input_tile_at(const T* d, int64_t rs, int64_t ss, T* v, int64_t vs) {
  alignas(64) T t[36 * L];  // t[(i*6+s)*L + l] = (B^T d)[i][s]
  for (int s = 0; s < 6; ++s) {
    const T* c = d + s * ss;
    bt6<T, L>(c, c + rs, c + 2 * rs, c + 3 * rs, c + 4 * rs, c + 5 * rs, t + s * L, 6 * L);
  }
  for (int i = 0; i < 6; ++i) {
    const T* r = t + i * 6 * L;
    alignas(64) T o[6 * L];  // rows of L with a compile-time stride vectorise; then 6 copies
    bt6<T, L>(r, r + L, r + 2 * L, r + 3 * L, r + 4 * L, r + 5 * L, o, L);
    for (int j = 0; j < 6; ++j) {
      T* __restrict__ dst = v + (i * 6 + j) * vs;
      for (int l = 0; l < L; ++l) dst[l] = o[j * L + l];
    }
  }
}

// Input transform: d = [36][L] (element (r, s) of lane l at d[(r*6+s)*L + l]) ->
// v[(i*6+j)*vs + l] = (B^T d B)[i][j].
template <typename T, int L>
inline void input_tile(const T* d, T* v, int64_t vs) {
  input_tile_at<T, L>(d, 6 * L, L, v, vs);
}

// A^T applied to six lane vectors -> four.
template <typename T, int L>
inline void at6(const T* __restrict__ m0, const T* __restrict__ m1, const T* __restrict__ m2,
                const T* __restrict__ m3, const T* __restrict__ m4, const T* __restrict__ m5,
                T* __restrict__ o, int64_t os) {
  for (int l = 0; l < L; ++l) {
    const T a0 = m0[l], a1 = m1[l], a2 = m2[l], a3 = m3[l], a4 = m4[l], a5 = m5[l];
    const T p = a1 + a2, q = a1 - a2;
    o[0 * os + l] = (a0 + p) + (a3 + a4);
    o[1 * os + l] = q + (T(0.5) * a3 - T(2) * a4);
    o[2 * os + l] = p + (T(0.25) * a3 + T(4) * a4);
    o[3 * os + l] = (q + (T(0.125) * a3 - T(8) * a4)) + a5;
  }
}

// Output transform: m[(i*6+j)*ms + l] -> o[(a*4+b)*L + l] = (A^T m A)[a][b].
template <typename T, int L>
inline void output_tile(const T* m, int64_t ms, T* o) {
  alignas(64) T t[24 * L];  // t[(a*6+j)*L + l] = (A^T m)[a][j]
  for (int j = 0; j < 6; ++j)
    at6<T, L>(m + (0 * 6 + j) * ms, m + (1 * 6 + j) * ms, m + (2 * 6 + j) * ms,
              m + (3 * 6 + j) * ms, m + (4 * 6 + j) * ms, m + (5 * 6 + j) * ms, t + j * L, 6 * L);
  for (int a = 0; a < 4; ++a) {
    const T* r = t + a * 6 * L;
    at6<T, L>(r, r + L, r + 2 * L, r + 3 * L, r + 4 * L, r + 5 * L, o + a * 4 * L, L);
  }
}

// G applied to three lane vectors -> six.
template <typename T, int L>
inline void g3(const T* __restrict__ g0, const T* __restrict__ g1, const T* __restrict__ g2,
               T* __restrict__ u, int64_t us) {
  const T third = T(1) / T(3), fifteenth = T(1) / T(15);
  for (int l = 0; l < L; ++l) {
    const T a0 = g0[l], a1 = g1[l], a2 = g2[l];
    u[0 * us + l] = a0;
    u[1 * us + l] = ((a0 + a2) + a1) * third;
    u[2 * us + l] = (a1 - (a0 + a2)) * third;
    u[3 * us + l] = -(((a0 + a0) + a1) + T(0.5) * a2) * (T(8) * fifteenth);
    u[4 * us + l] = ((a0 + T(4) * a2) - (a1 + a1)) * fifteenth;
    u[5 * us + l] = a2;
  }
}

// Weight transform: g = [9][L] (tap (a, b) of lane l at g[(a*3+b)*L + l]) ->
// u[(i*6+j)*L + l] = (G g G^T)[i][j].
template <typename T, int L>
inline void weight_tile(const T* g, T* u) {
  alignas(64) T t[18 * L];  // t[(i*3+b)*L + l] = (G g)[i][b]
  for (int b = 0; b < 3; ++b) g3<T, L>(g + b * L, g + (3 + b) * L, g + (6 + b) * L, t + b * L, 3 * L);
  for (int i = 0; i < 6; ++i) {
    const T* r = t + i * 3 * L;
    g3<T, L>(r, r + L, r + 2 * L, u + i * 6 * L, L);
  }
}

// Weight-gradient transforms. The forward output is y = A^T [U .* V] A with U = G g G^T, so for
// a grad_y tile dy, sum_ij dy_ij y_ij = sum_xi (A dy A^T)_xi U_xi V_xi, and the gradient of the
// 3x3 filter taps is G^T [ sum over tiles of (A dy A^T) .* V ] G.

// A (the transpose of A^T above) applied to four lane vectors -> six.
template <typename T, int L>
inline void a4(const T* __restrict__ y0, const T* __restrict__ y1, const T* __restrict__ y2,
               const T* __restrict__ y3, T* __restrict__ m, int64_t ms) {
  for (int l = 0; l < L; ++l) {
    const T b0 = y0[l], b1 = y1[l], b2 = y2[l], b3 = y3[l];
    const T e = b0 + b2, o = b1 + b3;
    m[0 * ms + l] = b0;
    m[1 * ms + l] = e + o;
    m[2 * ms + l] = e - o;
    m[3 * ms + l] = (b0 + T(0.25) * b2) + (T(0.5) * b1 + T(0.125) * b3);
    m[4 * ms + l] = (b0 + T(4) * b2) - (T(2) * b1 + T(8) * b3);
    m[5 * ms + l] = b3;
  }
}

// grad_y transform: element (a, b) of lane l at d[a*rs + b*ss + l] (a gathered [16][L] tile:
// rs = 4L, ss = L) -> m[(i*6+j)*ms + l] = (A d A^T)[i][j].
template <typename T, int L>
inline void grad_tile(const T* d, int64_t rs, int64_t ss, T* m, int64_t ms) {
  alignas(64) T t[24 * L];  // t[(i*4+b)*L + l] = (A d)[i][b]
  for (int b = 0; b < 4; ++b) {
    const T* c = d + b * ss;
    a4<T, L>(c, c + rs, c + 2 * rs, c + 3 * rs, t + b * L, 4 * L);
  }
  for (int i = 0; i < 6; ++i) {
    const T* r = t + i * 4 * L;
    alignas(64) T o[6 * L];
    a4<T, L>(r, r + L, r + 2 * L, r + 3 * L, o, L);
    for (int j = 0; j < 6; ++j) {
      T* __restrict__ dst = m + (i * 6 + j) * ms;
      for (int l = 0; l < L; ++l) dst[l] = o[j * L + l];
    }
  }
}

// G^T applied to six lane vectors -> three.
template <typename T, int L>
inline void gt6(const T* __restrict__ s0, const T* __restrict__ s1, const T* __restrict__ s2,
                const T* __restrict__ s3, const T* __restrict__ s4, const T* __restrict__ s5,
                T* __restrict__ g, int64_t gs) {
  const T third = T(1) / T(3), fifteenth = T(1) / T(15);
  for (int l = 0; l < L; ++l) {
    const T a0 = s0[l], a1 = s1[l], a2 = s2[l], a3 = s3[l], a4v = s4[l], a5 = s5[l];
    g[0 * gs + l] = a0 + ((a1 - a2) * third + (a4v - T(16) * a3) * fifteenth);
    g[1 * gs + l] = (a1 + a2) * third - (T(8) * a3 + (a4v + a4v)) * fifteenth;
    g[2 * gs + l] = ((a1 - a2) * third + (a4v - a3) * (T(4) * fifteenth)) + a5;
  }
}

// Filter-gradient transform: s[(i*6+j)*ss + l] = summed product (i, j) ->
// g[(a*3+b)*L + l] = (G^T s G)[a][b].
template <typename T, int L>
inline void filter_grad_tile(const T* s, int64_t ss, T* g) {
  alignas(64) T t[18 * L];  // t[(a*6+j)*L + l] = (G^T s)[a][j]
  for (int j = 0; j < 6; ++j)
    gt6<T, L>(s + (0 * 6 + j) * ss, s + (1 * 6 + j) * ss, s + (2 * 6 + j) * ss,
              s + (3 * 6 + j) * ss, s + (4 * 6 + j) * ss, s + (5 * 6 + j) * ss, t + j * L, 6 * L);
  for (int a = 0; a < 3; ++a) {
    const T* r = t + a * 6 * L;
    gt6<T, L>(r, r + L, r + 2 * L, r + 3 * L, r + 4 * L, r + 5 * L, g + a * 3 * L, L);
  }
}

}  // namespace wino_f43
}  // namespace fastconv

// Defines the per-ISA entry points (inside namespace fastconv::<isa>).
#define FC_DEFINE_WINO(dtype, T, L)                                                           \
  void wino_in_##dtype(const T* d, T* v, int64_t vs) {                                        \
    ::fastconv::wino_f43::input_tile<T, L>(d, v, vs);                                         \
  }                                                                                           \
  void wino_out_##dtype(const T* m, int64_t ms, T* o) {                                       \
    ::fastconv::wino_f43::output_tile<T, L>(m, ms, o);                                        \
  }                                                                                           \
  void wino_w_##dtype(const T* g, T* u) { ::fastconv::wino_f43::weight_tile<T, L>(g, u); }    \
  void wino_in_at_##dtype(const T* d, int64_t rs, int64_t ss, T* v, int64_t vs) {            \
    ::fastconv::wino_f43::input_tile_at<T, L>(d, rs, ss, v, vs);                              \
  }                                                                                           \
  void wino_dy_##dtype(const T* d, int64_t rs, int64_t ss, T* m, int64_t ms) {                \
    ::fastconv::wino_f43::grad_tile<T, L>(d, rs, ss, m, ms);                                  \
  }                                                                                           \
  void wino_dw_##dtype(const T* s, int64_t ss, T* g) {                                        \
    ::fastconv::wino_f43::filter_grad_tile<T, L>(s, ss, g);                                   \
  }
