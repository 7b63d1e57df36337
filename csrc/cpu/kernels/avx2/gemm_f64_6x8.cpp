// AVX2/FMA float64 GEMM microkernel, 6 x 8 (contract in kernels.h; body in gemm_6x2_impl.h):
// 12 ymm accumulators, 2 for B, 1 for the A broadcast.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"
#include "cpu/kernels/avx2/vec.h"

namespace fastconv {
namespace avx2 {

void gemm_f64_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                  int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2<VD>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

// In place (kernels.h): the shared 6 x (2 vectors) body.
void gemm_sap_f64_6x8(int64_t kc, const double* a, int64_t lda, const double* const* b, int64_t bo,
                      double* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                      bool accumulate) {
  gemm_sap_6x2<VD>(kc, a, lda, b, bo, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx2
}  // namespace fastconv
