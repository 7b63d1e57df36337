// AVX-512F row-A GEMM microkernels, 6 x 32 (float32) and 6 x 16 (float64): contract in
// kernels.h, body in gemm_rows_impl.h.
#include "cpu/kernels/gemm_rows_impl.h"
#include "cpu/kernels/avx512/vec.h"

namespace fastconv {
namespace avx512 {

void gemm_rows_f32_6x32(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                        int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_6x2<VF>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_rows_f64_6x16(int64_t kc, const double* a, int64_t lda, const double* b, double* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_6x2<VD>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_ind_f32_6x32(int64_t kc, const float* a, const float* b, const int64_t* boff, float* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ind_6x2<VF>(kc, a, b, boff, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_ind_f64_6x16(int64_t kc, const double* a, const double* b, const int64_t* boff, double* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ind_6x2<VD>(kc, a, b, boff, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_seg_f32_6x32(int64_t nseg, int64_t kc, const float* const* a, const int64_t* lda,
                      const float* const* b, float* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                      int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<VF>(nseg, kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_seg_f64_6x16(int64_t nseg, int64_t kc, const double* const* a, const int64_t* lda,
                      const double* const* b, double* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                      int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<VD>(nseg, kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace avx512
}  // namespace fastconv
