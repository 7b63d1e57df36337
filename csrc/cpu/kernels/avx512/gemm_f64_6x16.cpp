// AVX-512F float64 GEMM microkernel, 6 x 16 (contract in kernels.h; body in gemm_6x2_impl.h):
// 12 zmm accumulators.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"
#include "cpu/kernels/avx512/vec.h"

namespace fastconv {
namespace avx512 {

void gemm_f64_6x16(int64_t kc, const double* a, const double* b, double* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2<VD>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

// In place (kernels.h): the shared 6 x (2 vectors) body.
void gemm_sap_f64_6x16(int64_t kc, const double* a, int64_t lda, const double* const* b, int64_t bo,
                       double* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                       bool accumulate) {
  gemm_sap_6x2<VD>(kc, a, lda, b, bo, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
