// AVX2/FMA dot-product microkernels, 4 x 3 outputs (contract in kernels.h, body in
// dot_impl.h): 12 ymm partial sums, 3 B rows and 1 A row loaded per step.
#include <immintrin.h>

#include "cpu/kernels/dot_impl.h"
#include "cpu/kernels/avx2/vec.h"

namespace fastconv {
namespace avx2 {

void dot_f32_4x3(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<VF, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

void dot_f64_4x3(int64_t kc, const double* a, int64_t lda, const double* b, int64_t ldb,
                 double* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  dot_tile<VD, 4, 3>(kc, a, lda, b, ldb, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx2
}  // namespace fastconv
