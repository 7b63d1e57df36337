// AVX-512F float64 GEMM microkernel, 6 x 16 (contract in kernels.h; body in gemm_6x2_impl.h):
// 12 zmm accumulators.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"

namespace fastconv {
namespace avx512 {
namespace {

struct VD {
  using T = double;
  using R = __m512d;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
};

}  // namespace

void gemm_f64_6x16(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2<VD>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
