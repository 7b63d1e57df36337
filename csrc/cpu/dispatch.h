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
  GemmSapUkr<T> sap = nullptr;     // in-place variant (kernels.h); nullptr: drivers pack
};

// Dot-product microkernel (both operands with k contiguous): the weight gradient's tiles.
template <typename T>
struct DotKernel {
  DotUkr<T> ukr = nullptr;
  int mr = 0, nr = 0;  // output tile
  int64_t kb = 0;      // depth block: kb x (rows of A and B) stays in L2
};

// Row-A GEMM microkernel (kernels.h) and its depth block: the NCHW weight gradient's tiles.
template <typename T>
struct GemmRowsKernel {
  GemmRowsUkr<T> ukr = nullptr;
  int mr = 0, nr = 0;  // register tile
  int64_t kc = 0;      // depth block: a packed kc x NR B micro-panel stays in L1
  // optional transposing pack of B (kernels.h); nullptr: the driver's portable loop
  void (*pack_t)(const T* src, int64_t ld, int64_t nl, int64_t kn, T* dst) = nullptr;
  // indirect-B microkernel with the same register tile (kernels.h); nullptr: drivers pack B
  GemmIndUkr<T> ind = nullptr;
  // segmented row-A microkernel with the same register tile (kernels.h); nullptr: not used
  GemmSegUkr<T> seg = nullptr;
};

// Winograd F(4x4, 3x3) transforms (kernels.h); `lanes` equals the GEMM's NR for the dtype.
template <typename T>
struct WinoKernel {
  void (*in)(const T* d, T* v, int64_t vs) = nullptr;
  void (*out)(const T* m, int64_t ms, T* o) = nullptr;
  void (*weight)(const T* g, T* u) = nullptr;
  void (*in_at)(const T* d, int64_t rs, int64_t ss, T* v, int64_t vs) = nullptr;  // in place
  void (*dy)(const T* d, int64_t rs, int64_t ss, T* m, int64_t ms) = nullptr;  // grad_y tiles
  void (*dw)(const T* s, int64_t ss, T* g) = nullptr;   // weight gradient: summed products
  // optional: 8-channel gather for channels-contiguous inputs (kernels.h); nullptr: portable
  void (*gather8)(T* d, int64_t ds, const T* src, const int64_t* off, const T* msk,
                  int64_t n) = nullptr;
  // optional: 8-lane gather of rows of 6 contiguous columns (kernels.h); nullptr: portable
  void (*gather_rows8)(T* d, const T* const* rows, const T* msk, int64_t NR,
                       int64_t l0) = nullptr;
  // optional: 8-channel store for channels-contiguous outputs (kernels.h); nullptr: portable
  void (*scatter8)(T* y, const int64_t* doff, const T* e, int64_t es, const T* bias) = nullptr;
  int lanes = 0;
};

struct KernelTable {
  Isa isa;
  GemmKernel<float> gemm_f32;
  GemmKernel<double> gemm_f64;
  DotKernel<float> dot_f32;
  DotKernel<double> dot_f64;
  GemmRowsKernel<float> rows_f32;
  GemmRowsKernel<double> rows_f64;
  WinoKernel<float> wino_f32;
  WinoKernel<double> wino_f64;
  DwKernels<float> dw_f32;
  DwKernels<double> dw_f64;
  SmallcKernel<float> smallc_f32;
  SmallcKernel<double> smallc_f64;
  PoolKernelsF32 pool_f32;  // pooling row kernels (lanes == 0: none, the drivers' own loops)

  template <typename T>
  const GemmKernel<T>& gemm() const;
  template <typename T>
  const DotKernel<T>& dot() const;
  template <typename T>
  const GemmRowsKernel<T>& rows() const;
  template <typename T>
  const WinoKernel<T>& wino() const;
  template <typename T>
  const DwKernels<T>& dw() const;
  template <typename T>
  const SmallcKernel<T>& smallc() const;
};

template <>
inline const GemmKernel<float>& KernelTable::gemm<float>() const { return gemm_f32; }
template <>
inline const GemmKernel<double>& KernelTable::gemm<double>() const { return gemm_f64; }
template <>
inline const DotKernel<float>& KernelTable::dot<float>() const { return dot_f32; }
template <>
inline const DotKernel<double>& KernelTable::dot<double>() const { return dot_f64; }
template <>
inline const GemmRowsKernel<float>& KernelTable::rows<float>() const { return rows_f32; }
template <>
inline const GemmRowsKernel<double>& KernelTable::rows<double>() const { return rows_f64; }

template <>
inline const WinoKernel<float>& KernelTable::wino<float>() const { return wino_f32; }
template <>
inline const WinoKernel<double>& KernelTable::wino<double>() const { return wino_f64; }
template <>
inline const DwKernels<float>& KernelTable::dw<float>() const { return dw_f32; }
template <>
inline const DwKernels<double>& KernelTable::dw<double>() const { return dw_f64; }
template <>
inline const SmallcKernel<float>& KernelTable::smallc<float>() const { return smallc_f32; }
template <>
inline const SmallcKernel<double>& KernelTable::smallc<double>() const { return smallc_f64; }

const KernelTable& kernels_for(Isa isa);
// Micro-architecture tuning of the tables (on by default): where split_512_datapath(), the
// AVX-512 table takes some AVX2 kernels (dispatch.cpp). Tests turn it off to run the AVX-512
// versions on such CPUs too.
void set_uarch_tuning(bool on);
bool uarch_tuning();
inline const KernelTable& kernels() { return kernels_for(active_isa()); }

}  // namespace fastconv
