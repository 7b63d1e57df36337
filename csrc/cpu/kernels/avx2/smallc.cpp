// AVX2/FMA small-channel block products (contract in kernels.h, body in smallc_impl.h).
#include <immintrin.h>

#include "cpu/kernels/avx2/vec.h"
#include "cpu/kernels/smallc_impl.h"

namespace fastconv {
namespace avx2 {
namespace {

struct SF : VF {  // + the partial store of the last vector of a row (n < 8 lanes)
  static void store_n(float* p, R v, int n) {
    const __m256i m =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p, m, v);
  }
};

struct SD : VD {
  static void store_n(double* p, R v, int n) {
    const __m256i m = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    _mm256_maskstore_pd(p, m, v);
  }
};

void transpose_f32(const float* s, int64_t s_rs, float* d, int64_t d_rs) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * s_rs);
  transpose8(r);
  for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + j * d_rs, r[j]);
}

}  // namespace

SmallcKernel<float> smallc_f32() {
  SmallcKernel<float> k = smallcimpl::table<SF>();
  k.transpose = &transpose_f32;
  k.tb = 8;
  return k;
}
SmallcKernel<double> smallc_f64() { return smallcimpl::table<SD>(); }

}  // namespace avx2
}  // namespace fastconv
