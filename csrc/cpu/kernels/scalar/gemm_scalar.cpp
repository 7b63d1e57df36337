// Portable GEMM microkernels (contract in kernels.h). Compiled without any SIMD flags; the
// compiler may still use the baseline vector unit (SSE2 / NEON) for these plain loops.
#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace scalar {
namespace {

template <typename T, int MR, int NR>
inline void gemm_ref(int64_t kc, const T* a, const T* b, T* c, int64_t rs_c, int64_t cs_c,
                     int64_t mr, int64_t nr, bool accumulate) {
  T acc[MR * NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* ak = a + k * MR;
    const T* bk = b + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i * NR + j] += ak[i] * bk[j];
  }
  store_tile(acc, NR, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace

void gemm_f32_4x8(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ref<float, 4, 8>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_f64_4x4(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ref<double, 4, 4>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace scalar
}  // namespace fastconv
