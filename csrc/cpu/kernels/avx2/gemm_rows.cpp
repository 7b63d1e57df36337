// AVX2/FMA row-A GEMM microkernels, 6 x 16 (float32) and 6 x 8 (float64): contract in
// kernels.h, body in gemm_rows_impl.h; and the float32 transposing pack of their B operand.
#include "cpu/kernels/gemm_rows_impl.h"
#include "cpu/kernels/avx2/vec.h"

namespace fastconv {
namespace avx2 {

void gemm_rows_f32_6x16(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                        int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_6x2<VF>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_rows_f64_6x8(int64_t kc, const double* a, int64_t lda, const double* b, double* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_6x2<VD>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

// Full NR-lane panels go through NR/8 8x8 register transposes per 8 depth rows; partial panels
// and the depth tail are copied element by element. NR = 16 for AVX2's tile, 32 for AVX-512's
// (AVX-512 machines run AVX2).
template <int NR>
void pack_rows_t_f32(const float* src, int64_t ld, int64_t nl, int64_t kn, float* dst) {
  for (int64_t p0 = 0; p0 < nl; p0 += NR) {
    float* d = dst + (p0 / NR) * kn * NR;
    const float* s = src + p0 * ld;
    const int64_t lanes = std::min<int64_t>(NR, nl - p0);
    int64_t k = 0;
    if (lanes == NR) {
      for (; k + 8 <= kn; k += 8)
        for (int h = 0; h < NR / 8; ++h) {
          __m256 r[8];
          for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + (h * 8 + i) * ld + k);
          transpose8(r);
          for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + (k + j) * NR + h * 8, r[j]);
        }
    }
    for (; k < kn; ++k)
      for (int64_t l = 0; l < NR; ++l) d[k * NR + l] = l < lanes ? s[l * ld + k] : 0.0f;
  }
}

void pack_rows_t_f32_16(const float* src, int64_t ld, int64_t nl, int64_t kn, float* dst) {
  pack_rows_t_f32<16>(src, ld, nl, kn, dst);
}

void pack_rows_t_f32_32(const float* src, int64_t ld, int64_t nl, int64_t kn, float* dst) {
  pack_rows_t_f32<32>(src, ld, nl, kn, dst);
}

void gemm_ind_f32_6x16(int64_t kc, const float* a, const float* b, const int64_t* boff, float* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ind_6x2<VF>(kc, a, b, boff, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_ind_f64_6x8(int64_t kc, const double* a, const double* b, const int64_t* boff, double* c,
                      int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ind_6x2<VD>(kc, a, b, boff, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_seg_f32_6x16(int64_t nseg, int64_t kc, const float* const* a, const int64_t* lda,
                      const float* const* b, float* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                      int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<VF>(nseg, kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_seg_f64_6x8(int64_t nseg, int64_t kc, const double* const* a, const int64_t* lda,
                      const double* const* b, double* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                      int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<VD>(nseg, kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx2
}  // namespace fastconv
