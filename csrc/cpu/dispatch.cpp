#include "cpu/dispatch.h"

namespace fastconv {
namespace {

// Cache blocking. KC: a B micro-panel (KC x NR) stays in L1 while A micro-panels stream;
// MC x KC of A stays in L2; NC x KC of B is the per-task packed block.
template <typename T>
GemmKernel<T> make(GemmUkr<T> f, int mr, int nr, int64_t kc, int64_t mc, int64_t nc) {
  GemmKernel<T> g;
  g.ukr = f;
  g.mr = mr;
  g.nr = nr;
  g.kc = kc;
  g.mc = (mc / mr) * mr;
  g.nc = (nc / nr) * nr;
  return g;
}

KernelTable make_scalar() {
  KernelTable t;
  t.isa = Isa::Scalar;
  t.gemm_f32 = make<float>(&scalar::gemm_f32_4x8, 4, 8, 256, 128, 512);
  t.gemm_f64 = make<double>(&scalar::gemm_f64_4x4, 4, 4, 256, 128, 512);
  return t;
}

#if defined(FASTCONV_HAVE_AVX2)
KernelTable make_avx2() {
  KernelTable t;
  t.isa = Isa::Avx2;
  t.gemm_f32 = make<float>(&avx2::gemm_f32_6x16, 6, 16, 256, 144, 384);
  t.gemm_f64 = make<double>(&avx2::gemm_f64_6x8, 6, 8, 192, 96, 384);
  avx2::fill_pool_kernels_f32(t.pool_f32);
  return t;
}
#endif
#if defined(FASTCONV_HAVE_AVX512)
KernelTable make_avx512() {
  KernelTable t;
  t.isa = Isa::Avx512;
  t.gemm_f32 = make<float>(&avx512::gemm_f32_6x32, 6, 32, 256, 144, 384);
  t.gemm_f64 = make<double>(&avx512::gemm_f64_6x16, 6, 16, 192, 96, 384);
  avx512::fill_pool_kernels_f32(t.pool_f32);
  return t;
}
#endif
#if defined(FASTCONV_HAVE_NEON)
KernelTable make_neon() {
  KernelTable t;
  t.isa = Isa::Neon;
  t.gemm_f32 = make<float>(&neon::gemm_f32_6x8, 6, 8, 256, 144, 384);
  t.gemm_f64 = make<double>(&neon::gemm_f64_6x4, 6, 4, 192, 96, 384);
  return t;
}
#endif

}  // namespace

const KernelTable& kernels_for(Isa isa) {
  static const KernelTable scalar_t = make_scalar();
  switch (isa) {
#if defined(FASTCONV_HAVE_AVX2)
    case Isa::Avx2: {
      static const KernelTable t = make_avx2();
      return t;
    }
#endif
#if defined(FASTCONV_HAVE_AVX512)
    case Isa::Avx512: {
      static const KernelTable t = make_avx512();
      return t;
    }
#endif
#if defined(FASTCONV_HAVE_NEON)
    case Isa::Neon: {
      static const KernelTable t = make_neon();
      return t;
    }
#endif
    default:
      return scalar_t;
  }
}

}  // namespace fastconv
