#include "cpu/dispatch.h"

#include <atomic>

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

template <typename T>
DotKernel<T> make_dot(DotUkr<T> f, int mr, int nr, int64_t kb) {
  DotKernel<T> d;
  d.ukr = f;
  d.mr = mr;
  d.nr = nr;
  d.kb = kb;
  return d;
}

template <typename T>
WinoKernel<T> wino(void (*in)(const T*, T*, int64_t), void (*out)(const T*, int64_t, T*),
                   void (*w)(const T*, T*), void (*in_at)(const T*, int64_t, int64_t, T*, int64_t),
                   void (*dy)(const T*, int64_t, int64_t, T*, int64_t),
                   void (*dw)(const T*, int64_t, T*), int lanes) {
  WinoKernel<T> k;
  k.in_at = in_at;
  k.dy = dy;
  k.dw = dw;
  k.in = in;
  k.out = out;
  k.weight = w;
  k.lanes = lanes;
  return k;
}
#define FC_WINO(ns, dtype)                                                                 \
  wino(&ns::wino_in_##dtype, &ns::wino_out_##dtype, &ns::wino_w_##dtype,                     \
       &ns::wino_in_at_##dtype, &ns::wino_dy_##dtype, &ns::wino_dw_##dtype,                     \
       ns::wino_##dtype##_lanes)

KernelTable make_scalar() {
  KernelTable t;
  t.isa = Isa::Scalar;
  t.gemm_f32 = make<float>(&scalar::gemm_f32_4x8, 4, 8, 256, 128, 512);
  t.gemm_f64 = make<double>(&scalar::gemm_f64_4x4, 4, 4, 256, 128, 512);
  t.dot_f32 = make_dot<float>(&scalar::dot_f32_4x3, 4, 3, 1024);
  t.dot_f64 = make_dot<double>(&scalar::dot_f64_4x3, 4, 3, 512);
  t.rows_f32 = GemmRowsKernel<float>{&scalar::gemm_rows_f32_6x8, 6, 8, 256};
  t.rows_f64 = GemmRowsKernel<double>{&scalar::gemm_rows_f64_6x8, 6, 8, 256};
  t.rows_f32.ind = &scalar::gemm_ind_f32_6x8;
  t.rows_f64.ind = &scalar::gemm_ind_f64_6x8;
  t.rows_f32.seg = &scalar::gemm_seg_f32_6x8;
  t.rows_f64.seg = &scalar::gemm_seg_f64_6x8;
  t.wino_f32 = FC_WINO(scalar, f32);
  t.wino_f64 = FC_WINO(scalar, f64);
  t.dw_f32 = scalar::depthwise_f32();
  t.dw_f64 = scalar::depthwise_f64();
  t.smallc_f32 = scalar::smallc_f32();
  t.smallc_f64 = scalar::smallc_f64();
  return t;
}

#if defined(FASTCONV_HAVE_AVX2)
KernelTable make_avx2() {
  KernelTable t;
  t.isa = Isa::Avx2;
  t.gemm_f32 = make<float>(&avx2::gemm_f32_6x16, 6, 16, 256, 144, 384);
  t.gemm_f64 = make<double>(&avx2::gemm_f64_6x8, 6, 8, 192, 96, 384);
  t.gemm_f32.sap = &avx2::gemm_sap_f32_6x16;
  t.gemm_f64.sap = &avx2::gemm_sap_f64_6x8;
  t.dot_f32 = make_dot<float>(&avx2::dot_f32_4x3, 4, 3, 1024);
  t.dot_f64 = make_dot<double>(&avx2::dot_f64_4x3, 4, 3, 512);
  t.rows_f32 = GemmRowsKernel<float>{&avx2::gemm_rows_f32_6x16, 6, 16, 256};
  t.rows_f32.pack_t = &avx2::pack_rows_t_f32_16;
  t.rows_f64 = GemmRowsKernel<double>{&avx2::gemm_rows_f64_6x8, 6, 8, 256};
  t.rows_f32.ind = &avx2::gemm_ind_f32_6x16;
  t.rows_f64.ind = &avx2::gemm_ind_f64_6x8;
  t.rows_f32.seg = &avx2::gemm_seg_f32_6x16;
  t.rows_f64.seg = &avx2::gemm_seg_f64_6x8;
  t.wino_f32 = FC_WINO(avx2, f32);
  t.wino_f32.gather8 = &avx2::wino_gather8_f32;
  t.wino_f32.gather_rows8 = &avx2::wino_gather_rows8_f32;
  t.wino_f32.scatter8 = &avx2::wino_scatter8_f32;
  t.wino_f64 = FC_WINO(avx2, f64);
  t.dw_f32 = avx2::depthwise_f32();
  t.dw_f64 = avx2::depthwise_f64();
  t.smallc_f32 = avx2::smallc_f32();
  t.smallc_f64 = avx2::smallc_f64();
  avx2::fill_pool_kernels_f32(t.pool_f32);
  return t;
}
#endif
#if defined(FASTCONV_HAVE_AVX512)
KernelTable make_avx512(bool split_512) {
  KernelTable t;
  t.isa = Isa::Avx512;
  t.gemm_f32 = make<float>(&avx512::gemm_f32_6x32, 6, 32, 256, 144, 384);
  t.gemm_f64 = make<double>(&avx512::gemm_f64_6x16, 6, 16, 192, 96, 384);
  t.gemm_f32.sap = &avx512::gemm_sap_f32_6x32;
  t.gemm_f64.sap = &avx512::gemm_sap_f64_6x16;
  t.dot_f32 = make_dot<float>(&avx512::dot_f32_4x3, 4, 3, 1024);
  t.dot_f64 = make_dot<double>(&avx512::dot_f64_4x3, 4, 3, 512);
  t.rows_f32 = GemmRowsKernel<float>{&avx512::gemm_rows_f32_6x32, 6, 32, 128};
  t.rows_f32.pack_t = &avx2::pack_rows_t_f32_32;  // AVX-512 machines run AVX2
  t.rows_f64 = GemmRowsKernel<double>{&avx512::gemm_rows_f64_6x16, 6, 16, 128};
  t.rows_f32.ind = &avx512::gemm_ind_f32_6x32;
  t.rows_f64.ind = &avx512::gemm_ind_f64_6x16;
  t.rows_f32.seg = &avx512::gemm_seg_f32_6x32;
  t.rows_f64.seg = &avx512::gemm_seg_f64_6x16;
  t.wino_f32 = FC_WINO(avx512, f32);
  t.wino_f32.gather8 = &avx2::wino_gather8_f32;  // AVX-512 machines run AVX2
  t.wino_f32.gather_rows8 = &avx2::wino_gather_rows8_f32;
  t.wino_f32.scatter8 = &avx2::wino_scatter8_f32;
  t.wino_f64 = FC_WINO(avx512, f64);
  t.dw_f32 = avx512::depthwise_f32();
  t.dw_f64 = avx512::depthwise_f64();
  if (split_512) {
    // Zen 4: the NCHW row kernels (SIMD along output rows) keep AVX2's. A 56-wide row is 3.5
    // zmm vectors, which cost as much as 8 ymm ones there, against 7. Measured (dw3x3_128@56,
    // 1 thread, interleaved in one process), AVX2 / AVX-512 ms: forward 0.95 / 1.13, input
    // gradient 0.94 / 1.13, weight gradient 3.73 / 4.54. The NHWC kernels (SIMD across 128
    // channels) are faster in AVX-512 (weight gradient 5.06 / 3.72) and stay.
    const DwKernels<float> d2 = avx2::depthwise_f32();
    t.dw_f32.rows = d2.rows;
    t.dw_f32.rows3x3 = d2.rows3x3;
    t.dw_f32.dot = d2.dot;
    t.dw_f32.rows3x3_pad1 = d2.rows3x3_pad1;
  }
  t.smallc_f32 = avx512::smallc_f32();
  t.smallc_f32.transpose = avx2::smallc_f32().transpose;  // AVX-512 machines run AVX2
  t.smallc_f32.tb = avx2::smallc_f32().tb;
  t.smallc_f64 = avx512::smallc_f64();
  avx2::fill_pool_kernels_f32(t.pool_f32);  // entries without an AVX-512 version keep AVX2's
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
  t.dot_f32 = make_dot<float>(&scalar::dot_f32_4x3, 4, 3, 1024);  // portable body
  t.dot_f64 = make_dot<double>(&scalar::dot_f64_4x3, 4, 3, 512);
  t.rows_f32 = GemmRowsKernel<float>{&scalar::gemm_rows_f32_6x8, 6, 8, 256};  // portable body
  t.rows_f64 = GemmRowsKernel<double>{&scalar::gemm_rows_f64_6x8, 6, 8, 256};
  t.rows_f32.ind = &scalar::gemm_ind_f32_6x8;
  t.rows_f64.ind = &scalar::gemm_ind_f64_6x8;
  t.rows_f32.seg = &scalar::gemm_seg_f32_6x8;
  t.rows_f64.seg = &scalar::gemm_seg_f64_6x8;
  t.wino_f32 = FC_WINO(scalar, f32);
  t.wino_f64 = FC_WINO(scalar, f64);
  // NEON: the portable depthwise kernels serve (no NEON-specific depthwise code yet).
  t.dw_f32 = scalar::depthwise_f32();
  t.dw_f64 = scalar::depthwise_f64();
  t.smallc_f32 = scalar::smallc_f32();
  t.smallc_f64 = scalar::smallc_f64();
  return t;
}
#endif

std::atomic<bool> g_uarch_tuning{true};

}  // namespace

void set_uarch_tuning(bool on) { g_uarch_tuning.store(on); }
bool uarch_tuning() { return g_uarch_tuning.load(std::memory_order_relaxed); }

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
      static const KernelTable t = make_avx512(false);
      static const bool split = split_512_datapath();
      if (split && uarch_tuning()) {
        static const KernelTable tuned = make_avx512(true);
        return tuned;
      }
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
