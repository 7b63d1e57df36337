// AVX-512F float32 GEMM microkernel, 6 x 32 (contract in kernels.h; body in gemm_6x2_impl.h):
// 12 zmm accumulators. Compiled with -mavx512f only in this directory; selected at run time
// when the CPU has it.
#include <immintrin.h>

#include "cpu/kernels/gemm_6x2_impl.h"
#include "cpu/kernels/avx512/vec.h"

namespace fastconv {
namespace avx512 {

void gemm_f32_6x32(int64_t kc, const float* a, const float* b, float* c, int64_t rs_c,
                   int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_6x2<VF>(kc, a, b, c, rs_c, cs_c, mr, nr, accumulate);
}

// In place (kernels.h): the shared 6 x (2 vectors) body.
void gemm_sap_f32_6x32(int64_t kc, const float* a, int64_t lda, const float* const* b, int64_t bo,
                       float* c, int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr,
                       bool accumulate) {
  gemm_sap_6x2<VF>(kc, a, lda, b, bo, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
