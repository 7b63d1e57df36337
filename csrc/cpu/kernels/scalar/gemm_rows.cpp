// Portable row-A GEMM microkernels, 6 x 8 (contract in kernels.h, body in gemm_rows_impl.h),
// over 4-lane plain arrays the compiler may map to the baseline vector unit.
#include "cpu/kernels/gemm_rows_impl.h"

namespace fastconv {
namespace scalar {
namespace {

template <typename TT>
struct Vec4 {
  using T = TT;
  struct R { T v[4]; };
  static constexpr int W = 4;
  static R zero() { return R{}; }
  static R load(const T* p) { return R{{p[0], p[1], p[2], p[3]}}; }
  static void store(T* p, const R& r) {
    for (int l = 0; l < 4; ++l) p[l] = r.v[l];
  }
  static R bcast(const T* p) { return R{{*p, *p, *p, *p}}; }
  static R fma(const R& a, const R& b, R c) {
    for (int l = 0; l < 4; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static R add(R a, const R& b) {
    for (int l = 0; l < 4; ++l) a.v[l] += b.v[l];
    return a;
  }
};

}  // namespace

void gemm_rows_f32_6x8(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_6x2<Vec4<float>>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_rows_f64_6x8(int64_t kc, const double* a, int64_t lda, const double* b, double* c,
                       int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_rows_6x2<Vec4<double>>(kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_ind_f32_6x8(int64_t kc, const float* a, const float* b, const int64_t* boff, float* c,
                      int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ind_6x2<Vec4<float>>(kc, a, b, boff, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_ind_f64_6x8(int64_t kc, const double* a, const double* b, const int64_t* boff, double* c,
                      int64_t rs_c, int64_t cs_c, int64_t mr, int64_t nr, bool accumulate) {
  gemm_ind_6x2<Vec4<double>>(kc, a, b, boff, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_seg_f32_6x8(int64_t nseg, int64_t kc, const float* const* a, const int64_t* lda,
                      const float* const* b, float* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                      int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<Vec4<float>>(nseg, kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

void gemm_seg_f64_6x8(int64_t nseg, int64_t kc, const double* const* a, const int64_t* lda,
                      const double* const* b, double* c, int64_t rs_c, int64_t cs_c, int64_t mr,
                      int64_t nr, bool accumulate) {
  gemm_rows_seg_6x2<Vec4<double>>(nseg, kc, a, lda, b, c, rs_c, cs_c, mr, nr, accumulate);
}

}  // namespace scalar
}  // namespace fastconv
