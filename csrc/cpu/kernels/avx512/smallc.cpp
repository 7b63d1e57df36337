// AVX-512F small-channel block products (contract in kernels.h, body in smallc_impl.h).
#include <immintrin.h>

#include "cpu/kernels/avx512/vec.h"
#include "cpu/kernels/smallc_impl.h"

namespace fastconv {
namespace avx512 {
namespace {

struct SF : VF {  // + the partial store of the last vector of a row (n < 16 lanes)
  static void store_n(float* p, R v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
  }
};

struct SD : VD {
  static void store_n(double* p, R v, int n) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), v);
  }
};

}  // namespace

SmallcKernel<float> smallc_f32() { return smallcimpl::table<SF>(); }
SmallcKernel<double> smallc_f64() { return smallcimpl::table<SD>(); }

}  // namespace avx512
}  // namespace fastconv
