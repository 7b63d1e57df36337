// Winograd F(4x4, 3x3) transforms for avx2 (contract in kernels.h, formulas in winograd_f43.h).
#include <immintrin.h>

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
    __m256 r0 = _mm256_loadu_ps(src + off[e + 0]), r1 = _mm256_loadu_ps(src + off[e + 1]);
    __m256 r2 = _mm256_loadu_ps(src + off[e + 2]), r3 = _mm256_loadu_ps(src + off[e + 3]);
    __m256 r4 = _mm256_loadu_ps(src + off[e + 4]), r5 = _mm256_loadu_ps(src + off[e + 5]);
    __m256 r6 = _mm256_loadu_ps(src + off[e + 6]), r7 = _mm256_loadu_ps(src + off[e + 7]);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    const __m256 m = _mm256_loadu_ps(msk + e);
    _mm256_storeu_ps(d + 0 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u0, u4, 0x20), m));
    _mm256_storeu_ps(d + 1 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u1, u5, 0x20), m));
    _mm256_storeu_ps(d + 2 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u2, u6, 0x20), m));
    _mm256_storeu_ps(d + 3 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u3, u7, 0x20), m));
    _mm256_storeu_ps(d + 4 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u0, u4, 0x31), m));
    _mm256_storeu_ps(d + 5 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u1, u5, 0x31), m));
    _mm256_storeu_ps(d + 6 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u2, u6, 0x31), m));
    _mm256_storeu_ps(d + 7 * ds + e, _mm256_mul_ps(_mm256_permute2f128_ps(u3, u7, 0x31), m));
  }
}

void wino_gather_rows8_f32(float* d, const float* const* rows, const float* msk, int64_t NR,
                           int64_t l0) {
  const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);  // load 6 of 8
  for (int64_t r = 0; r < 6; ++r) {
    const float* const* o = rows + r * 8;
    __m256 r0 = _mm256_maskload_ps(o[0], six), r1 = _mm256_maskload_ps(o[1], six);
    __m256 r2 = _mm256_maskload_ps(o[2], six), r3 = _mm256_maskload_ps(o[3], six);
    __m256 r4 = _mm256_maskload_ps(o[4], six), r5 = _mm256_maskload_ps(o[5], six);
    __m256 r6 = _mm256_maskload_ps(o[6], six), r7 = _mm256_maskload_ps(o[7], six);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    float* dr = d + r * 6 * NR + l0;
    const float* mr = msk + r * 6 * NR + l0;
    // column s of the 8 rows: s = 0..3 from the low halves, 4..5 from the high halves
    _mm256_storeu_ps(dr + 0 * NR, _mm256_mul_ps(_mm256_permute2f128_ps(u0, u4, 0x20),
                                                _mm256_loadu_ps(mr + 0 * NR)));
    _mm256_storeu_ps(dr + 1 * NR, _mm256_mul_ps(_mm256_permute2f128_ps(u1, u5, 0x20),
                                                _mm256_loadu_ps(mr + 1 * NR)));
    _mm256_storeu_ps(dr + 2 * NR, _mm256_mul_ps(_mm256_permute2f128_ps(u2, u6, 0x20),
                                                _mm256_loadu_ps(mr + 2 * NR)));
    _mm256_storeu_ps(dr + 3 * NR, _mm256_mul_ps(_mm256_permute2f128_ps(u3, u7, 0x20),
                                                _mm256_loadu_ps(mr + 3 * NR)));
    _mm256_storeu_ps(dr + 4 * NR, _mm256_mul_ps(_mm256_permute2f128_ps(u0, u4, 0x31),
                                                _mm256_loadu_ps(mr + 4 * NR)));
    _mm256_storeu_ps(dr + 5 * NR, _mm256_mul_ps(_mm256_permute2f128_ps(u1, u5, 0x31),
                                                _mm256_loadu_ps(mr + 5 * NR)));
  }
}

void wino_scatter8_f32(float* y, const int64_t* doff, const float* e, int64_t es,
                       const float* bias) {
  const __m256 r0 = _mm256_loadu_ps(e + 0 * es), r1 = _mm256_loadu_ps(e + 1 * es);
  const __m256 r2 = _mm256_loadu_ps(e + 2 * es), r3 = _mm256_loadu_ps(e + 3 * es);
  const __m256 r4 = _mm256_loadu_ps(e + 4 * es), r5 = _mm256_loadu_ps(e + 5 * es);
  const __m256 r6 = _mm256_loadu_ps(e + 6 * es), r7 = _mm256_loadu_ps(e + 7 * es);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  const __m256 b = _mm256_loadu_ps(bias);
  _mm256_storeu_ps(y + doff[0], _mm256_add_ps(_mm256_permute2f128_ps(u0, u4, 0x20), b));
  _mm256_storeu_ps(y + doff[1], _mm256_add_ps(_mm256_permute2f128_ps(u1, u5, 0x20), b));
  _mm256_storeu_ps(y + doff[2], _mm256_add_ps(_mm256_permute2f128_ps(u2, u6, 0x20), b));
  _mm256_storeu_ps(y + doff[3], _mm256_add_ps(_mm256_permute2f128_ps(u3, u7, 0x20), b));
  _mm256_storeu_ps(y + doff[4], _mm256_add_ps(_mm256_permute2f128_ps(u0, u4, 0x31), b));
  _mm256_storeu_ps(y + doff[5], _mm256_add_ps(_mm256_permute2f128_ps(u1, u5, 0x31), b));
  _mm256_storeu_ps(y + doff[6], _mm256_add_ps(_mm256_permute2f128_ps(u2, u6, 0x31), b));
  _mm256_storeu_ps(y + doff[7], _mm256_add_ps(_mm256_permute2f128_ps(u3, u7, 0x31), b));
}

}  // namespace avx2
}  // namespace fastconv
