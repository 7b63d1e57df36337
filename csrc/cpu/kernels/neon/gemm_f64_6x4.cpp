// NEON float64 GEMM microkernel, 6 x 4 (contract in kernels.h): 12 q-register accumulators.
#include <arm_neon.h>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace neon {

void gemm_f64_6x4(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  float64x2_t acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = vdupq_n_f64(0.0);
  for (int64_t k = 0; k < kc; ++k) {
    const float64x2_t b0 = vld1q_f64(b), b1 = vld1q_f64(b + 2);
    for (int i = 0; i < 6; ++i) {
      acc[i][0] = vfmaq_n_f64(acc[i][0], b0, a[i]);
      acc[i][1] = vfmaq_n_f64(acc[i][1], b1, a[i]);
    }
    a += 6;
    b += 4;
  }
  double tile[6 * 4];
  for (int i = 0; i < 6; ++i) {
    vst1q_f64(tile + i * 4, acc[i][0]);
    vst1q_f64(tile + i * 4 + 2, acc[i][1]);
  }
  store_tile(tile, 4, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace neon
}  // namespace fastconv
