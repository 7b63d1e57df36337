// KernelTable: the microkernels and tile sizes for one ISA level. The only place that names
// ISA-specific symbols is dispatch.cpp; drivers ask for kernels() and never test the ISA.
#pragma once
#include "cpu/isa.h"
#include "cpu/kernels/kernels.h"

namespace fastconv {

template <typename T>
struct GemmKernel {
  GemmUkr<T> ukr = nullptr;
  int mr = 0, nr = 0;     // register tile
  int64_t kc = 0, mc = 0, nc = 0;  // cache blocking: KC (L1), MC (L2), NC (B block width)
};

// Dot-product microkernel (both operands with k contiguous): the weight gradient's tiles.
template <typename T>
struct DotKernel {
  DotUkr<T> ukr = nullptr;
  int mr = 0, nr = 0;  // output tile
  int64_t kb = 0;      // depth block: kb x (rows of A and B) stays in L2
};

struct KernelTable {
  Isa isa;
  GemmKernel<float> gemm_f32;
  GemmKernel<double> gemm_f64;
  DotKernel<float> dot_f32;
  DotKernel<double> dot_f64;

  template <typename T>
  const GemmKernel<T>& gemm() const;
  template <typename T>
  const DotKernel<T>& dot() const;
};

template <>
inline const GemmKernel<float>& KernelTable::gemm<float>() const { return gemm_f32; }
template <>
inline const GemmKernel<double>& KernelTable::gemm<double>() const { return gemm_f64; }
template <>
inline const DotKernel<float>& KernelTable::dot<float>() const { return dot_f32; }
template <>
inline const DotKernel<double>& KernelTable::dot<double>() const { return dot_f64; }

const KernelTable& kernels_for(Isa isa);
inline const KernelTable& kernels() { return kernels_for(active_isa()); }

}  // namespace fastconv
