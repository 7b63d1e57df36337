// AVX-512F dot-product microkernels, 4 x 3 outputs (contract in kernels.h, body in
// dot_impl.h): 12 zmm partial sums.
#include <immintrin.h>

#include "cpu/kernels/dot_impl.h"
#include "cpu/kernels/avx512/vec.h"

namespace fastconv {
namespace avx512 {

void dot_f32_4x3(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<VF, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

void dot_f64_4x3(int64_t kc, const double* a, int64_t lda, const double* b, int64_t ldb,
                 double* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<VD, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
