// NEON float32 GEMM microkernel, 6 x 8 (contract in kernels.h): 12 q-register accumulators.
#include <arm_neon.h>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace neon {

void gemm_f32_6x8(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  float32x4_t acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = vdupq_n_f32(0.f);
  for (int64_t k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
    for (int i = 0; i < 6; ++i) {
      acc[i][0] = vfmaq_n_f32(acc[i][0], b0, a[i]);
      acc[i][1] = vfmaq_n_f32(acc[i][1], b1, a[i]);
    }
    a += 6;
    b += 8;
  }
  float tile[6 * 8];
  for (int i = 0; i < 6; ++i) {
    vst1q_f32(tile + i * 8, acc[i][0]);
    vst1q_f32(tile + i * 8 + 4, acc[i][1]);
  }
  store_tile(tile, 8, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace neon
}  // namespace fastconv
