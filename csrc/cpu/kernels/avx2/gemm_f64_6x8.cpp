// AVX2/FMA float64 GEMM microkernel, 6 x 8 (contract in kernels.h; body in gemm_6x2_impl.h):
// 12 ymm accumulators, 2 for B, 1 for the A broadcast.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"

namespace fastconv {
namespace avx2 {
namespace {

struct VD {
  using T = double;
  using R = __m256d;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static R bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
};

}  // namespace

void gemm_f64_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2<VD>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx2
}  // namespace fastconv
