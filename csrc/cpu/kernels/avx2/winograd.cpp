// Winograd F(4x4, 3x3) transforms for avx2 (contract in kernels.h, formulas in winograd_f43.h).
#include <immintrin.h>

#include "cpu/kernels/avx2/vec.h"
#include "cpu/kernels/kernels.h"
#include "cpu/kernels/winograd_f43.h"

namespace fastconv {
namespace avx2 {

FC_DEFINE_WINO(f32, float, wino_f32_lanes)
FC_DEFINE_WINO(f64, double, wino_f64_lanes)

void wino_gather8_f32(float* d, int64_t ds, const float* src, const int64_t* off,
                      const float* msk, int64_t n) {
  for (int64_t e = 0; e < n; e += 8) {
    // rows: 8 channels of lanes e .. e+7; transpose to 8 channels x 8 lanes
    __m256 r[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + off[e + j]);
    transpose8(r);
    const __m256 m = _mm256_loadu_ps(msk + e);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + j * ds + e, _mm256_mul_ps(r[j], m));
  }
}

void wino_gather_rows8_f32(float* d, const float* const* rows, const float* msk, int64_t NR,
                           int64_t l0) {
  const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);  // load 6 of 8
  for (int64_t r = 0; r < 6; ++r) {
    const float* const* o = rows + r * 8;
    __m256 v[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) v[j] = _mm256_maskload_ps(o[j], six);
    transpose8(v);
    float* dr = d + r * 6 * NR + l0;
    const float* mr = msk + r * 6 * NR + l0;
    // column s of the 8 rows (s = 0..5; 6 and 7 were not loaded)
#pragma GCC unroll 6
    for (int s = 0; s < 6; ++s)
      _mm256_storeu_ps(dr + s * NR, _mm256_mul_ps(v[s], _mm256_loadu_ps(mr + s * NR)));
  }
}

void wino_scatter8_f32(float* y, const int64_t* doff, const float* e, int64_t es,
                       const float* bias) {
  __m256 r[8];
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(e + j * es);
  transpose8(r);
  const __m256 b = _mm256_loadu_ps(bias);
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) _mm256_storeu_ps(y + doff[j], _mm256_add_ps(r[j], b));
}

}  // namespace avx2
}  // namespace fastconv
