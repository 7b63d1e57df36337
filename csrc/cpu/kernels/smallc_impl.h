// Small-channel block product body (contract in kernels.h: SmallcArgs), shared by every ISA:
// each ISA's smallc.cpp includes it with a vector policy V (T, R, W, zero, load, store,
// store_n, bcast, fma) and returns smallcimpl::table<V>().
//
// The lanes are cut into groups of NV <= 2 vectors and the rows r into near-equal blocks of at
// most kRows[NV] rows, so one block keeps R x NV accumulators in registers (<= 12 for one
// vector, 6 x 2 = 12 for two): per step t, NV vector loads of b and R broadcasts of a feed
// R x NV FMAs. Blocks of every size 1..kRows[NV] are instantiated (18 small functions), so a
// row of 10 runs as 5 + 5, not 6 + 4 or 8 + 2. Each accumulator starts from init and adds
// the (i, t) terms in increasing order: the result does not depend on the blocking.
#pragma once
#include <cstdint>

#include "cpu/kernels/kernels.h"

namespace fastconv {
namespace smallcimpl {

constexpr int kRowsOne = 12;  // rows per block with one vector of lanes
constexpr int kRowsTwo = 6;  // with two

template <class V, int NV, int R>
void block(const SmallcArgs<typename V::T>& A, int64_t r0, int64_t l0, int64_t nl) {
  using T = typename V::T;
  using Vec = typename V::R;
  constexpr int W = V::W;
  Vec acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      acc[r][v] = A.init ? V::load(A.init + (r0 + r) * A.init_rs + l0 + v * W) : V::zero();
  const T* ai = A.a + r0;
  const T* bi = A.b + l0;
  for (int64_t i = 0; i < A.ni; ++i) {
    const T* bt = bi;
    const T* at = ai;
    for (int64_t t = 0; t < A.nt; ++t) {
      Vec bv[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) bv[v] = V::load(bt + v * W);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const Vec av = V::bcast(at + r);  // one base register, constant displacements
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
      }
      bt += A.b_ts;
      at += A.a_ts;
    }
    bi += A.b_is;
    ai += A.a_is;
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    T* o = A.out + (r0 + r) * A.o_rs + l0;
    // rows of a packed output (o_rs == nl, one lane group) store whole vectors into the next
    // row, which is stored later; only the tail of the call's output needs a masked store
    const bool spill = A.o_rs == A.nl && A.nl <= 2 * W && (r0 + r) * A.o_rs + NV * W <= A.nr * A.nl;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const int64_t n = nl - v * W;
      if (n >= W || (n > 0 && spill))
        V::store(o + v * W, acc[r][v]);
      else if (n > 0)
        V::store_n(o + v * W, acc[r][v], static_cast<int>(n));
    }
  }
}

template <class V, int NV>
using BlockFn = void (*)(const SmallcArgs<typename V::T>&, int64_t, int64_t, int64_t);

template <class V>
void run(const SmallcArgs<typename V::T>& A) {
  constexpr int W = V::W;
  if (A.nr <= 0 || A.nl <= 0) return;
  static const BlockFn<V, 1> one[kRowsOne] = {
      &block<V, 1, 1>, &block<V, 1, 2>, &block<V, 1, 3>, &block<V, 1, 4>,
      &block<V, 1, 5>, &block<V, 1, 6>, &block<V, 1, 7>, &block<V, 1, 8>,
      &block<V, 1, 9>, &block<V, 1, 10>, &block<V, 1, 11>, &block<V, 1, 12>};
  static const BlockFn<V, 2> two[kRowsTwo] = {&block<V, 2, 1>, &block<V, 2, 2>,
                                               &block<V, 2, 3>, &block<V, 2, 4>,
                                               &block<V, 2, 5>, &block<V, 2, 6>};
  for (int64_t l0 = 0; l0 < A.nl; l0 += 2 * W) {
    const int64_t nl = A.nl - l0 < 2 * W ? A.nl - l0 : 2 * W;
    const bool pair = nl > W;
    const int64_t rmax = pair ? kRowsTwo : kRowsOne;
    const int64_t nb = (A.nr + rmax - 1) / rmax;  // near-equal blocks of <= rmax rows
    const int64_t base = A.nr / nb, extra = A.nr % nb;
    int64_t r0 = 0;
    for (int64_t k = 0; k < nb; ++k) {
      const int64_t rows = base + (k < extra ? 1 : 0);
      if (pair)
        two[rows - 1](A, r0, l0, nl);
      else
        one[rows - 1](A, r0, l0, nl);
      r0 += rows;
    }
  }
}

template <class V>
SmallcKernel<typename V::T> table() {
  SmallcKernel<typename V::T> k;
  k.run = &run<V>;
  k.lanes = V::W;
  return k;
}

}  // namespace smallcimpl
}  // namespace fastconv
