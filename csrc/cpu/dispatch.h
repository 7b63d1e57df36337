// KernelTable: the microkernels and tile sizes for one ISA level. The only place that names
// ISA-specific symbols is dispatch.cpp; drivers ask for kernels() and never test the ISA.
#pragma once
#include "cpu/isa.h"
#include "cpu/kernels/kernels.h"
#include "cpu/kernels/pool_kernels.h"

namespace fastconv {

template <typename T>
struct GemmKernel {
  GemmUkr<T> ukr = nullptr;
  int mr = 0, nr = 0;     // register tile
  int64_t kc = 0, mc = 0, nc = 0;  // cache blocking: KC (L1), MC (L2), NC (B block width)
};

struct KernelTable {
  Isa isa;
  GemmKernel<float> gemm_f32;
  GemmKernel<double> gemm_f64;
  PoolKernelsF32 pool_f32;  // pooling row kernels (lanes == 0: none, the drivers' own loops)

  template <typename T>
  const GemmKernel<T>& gemm() const;
};

template <>
inline const GemmKernel<float>& KernelTable::gemm<float>() const { return gemm_f32; }
template <>
inline const GemmKernel<double>& KernelTable::gemm<double>() const { return gemm_f64; }

const KernelTable& kernels_for(Isa isa);
inline const KernelTable& kernels() { return kernels_for(active_isa()); }

}  // namespace fastconv
