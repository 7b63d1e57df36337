// AVX-512F float32 GEMM microkernel, 6 x 32 (contract in kernels.h; body in gemm_6x2_impl.h):
// 12 zmm accumulators. Compiled with -mavx512f only in this directory; selected at run time
// when the CPU has it.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"

namespace fastconv {
namespace avx512 {
namespace {

struct VF {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
};

}  // namespace

void gemm_f32_6x32(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2<VF>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
